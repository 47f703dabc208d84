"""Certificates for the API server ↔ kubelet connection.

The API server proxies logs, exec, attach and port-forward to each node's kubelet API with its
own client certificate (kube-apiserver's `--kubelet-client-certificate`, CN
`kube-apiserver-kubelet-client`, O `system:masters`), and checks the kubelet's serving
certificate against the cluster CA. Both are signed by the cluster CA, made once and reused;
key files are 0600 (certs.py).
"""

from __future__ import annotations

from pathlib import Path

from navio.pki.certs import CertificateAuthority, CertPair

__all__ = ["KUBELET_CLIENT_CN", "ensure_kubelet_client_cert", "ensure_kubelet_serving_cert"]

KUBELET_CLIENT_CN = "kube-apiserver-kubelet-client"


def _existing(directory: Path, stem: str) -> CertPair | None:
    pair = CertPair(directory / f"{stem}.crt", directory / f"{stem}.key")
    return pair if pair.cert.exists() and pair.key.exists() else None


def ensure_kubelet_client_cert(ca: CertificateAuthority, directory: Path) -> CertPair:
    """`apiserver-kubelet-client.{crt,key}` in `directory`, issued if missing."""
    stem = "apiserver-kubelet-client"
    return _existing(directory, stem) or ca.issue(directory, stem, cn=KUBELET_CLIENT_CN,
                                                  orgs=("system:masters",))


def ensure_kubelet_serving_cert(ca: CertificateAuthority, directory: Path, node_name: str,
                                names: tuple[str, ...]) -> CertPair:
    """`kubelet-<node>.{crt,key}`: the node's kubelet serving certificate, for `names` (DNS
    names and IPs the API server may dial) plus the node name, issued if missing."""
    stem = f"kubelet-{node_name}"
    return _existing(directory, stem) or ca.issue(
        directory, stem, cn=f"system:node:{node_name}", orgs=("system:nodes",), client=False,
        server_names=tuple(dict.fromkeys((node_name, *names))))
