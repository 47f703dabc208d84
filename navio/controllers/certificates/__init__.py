"""The certificates controllers: CSR approver, CSR signer and the root CA publisher.

kube-controller-manager's `csrapproving`, `csrsigning` and `root-ca-cert-publisher`
(pkg/controller/certificates). Importing this package registers all three with the manager.
"""

from navio.controllers.certificates import approver, rootca, signer
from navio.controllers.certificates.common import CSRS

__all__ = ["CSRS", "approver", "rootca", "signer"]
