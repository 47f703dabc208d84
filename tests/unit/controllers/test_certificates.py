"""CSR validation, the kubelet-client approver's decisions and the signer's certificates."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from navio.api.validation import validate
from navio.apiserver import strategy
from navio.api.registry import default_registry
from navio.controllers.certificates.approver import recognize
from navio.pki import csr as pkicsr
from navio.pki.certs import load_or_create_ca

KUBELET = pkicsr.KUBELET_CLIENT_SIGNER


def _csr(cn: str, orgs: tuple[str, ...] = ("system:nodes",), *, signer: str = KUBELET,
         usages: tuple[str, ...] = ("digital signature", "client auth"), user: str = "",
         groups: tuple[str, ...] = (), sans: tuple[str, ...] = ()) -> dict:
    key = pkicsr.new_key()
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
        + [x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(s) for s in sans]), False)
    from cryptography.hazmat.primitives import serialization
    pem = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": "c1"},
            "spec": {"request": base64.b64encode(pem).decode(), "signerName": signer,
                     "usages": list(usages), "username": user, "groups": list(groups)}}


def test_validation_of_a_good_and_a_bad_request():
    assert validate("certificates.k8s.io", "CertificateSigningRequest", _csr("x")) == []
    bad = _csr("x")
    bad["spec"].update(request=base64.b64encode(b"junk").decode(), signerName="nodomain",
                       usages=["client auth", "client auth", "flying"], expirationSeconds=60)
    fields = {c["field"]: c["message"] for c in validate(
        "certificates.k8s.io", "CertificateSigningRequest", bad)}
    assert "PEM block type must be CERTIFICATE REQUEST" in fields["spec.request"]
    assert "example.com/signer-name" in fields["spec.signerName"]
    assert "Duplicate value" in fields["spec.usages[1]"]
    assert "Unsupported value" in fields["spec.usages[2]"]
    assert "less than 600 seconds" in fields["spec.expirationSeconds"]


def test_decisions_are_exclusive_and_permanent():
    approved = _csr("x")
    approved["status"] = {"conditions": [{"type": "Approved", "status": "True"}]}
    both = _csr("x")
    both["status"] = {"conditions": [{"type": "Approved", "status": "True"},
                                     {"type": "Denied", "status": "True"}]}
    causes = validate("certificates.k8s.io", "CertificateSigningRequest", both)
    assert any("mutually exclusive" in c["message"] for c in causes)
    approved["metadata"].update(uid="u", resourceVersion="1")
    undone = dict(approved, status={})
    causes = validate("certificates.k8s.io", "CertificateSigningRequest", undone, approved)
    assert any('may not remove a condition of type "Approved"' in c["message"]
               for c in causes)


def test_approval_and_status_writes_touch_only_their_part():
    kind = default_registry().resource("certificates.k8s.io", "v1",
                                       "certificatesigningrequests")
    old = _csr("x", user="system:bootstrap:abc")
    old["status"] = {}
    sneaky = _csr("y", user="root")
    sneaky["status"] = {"conditions": [{"type": "Approved", "status": "True"}],
                        "certificate": "Zm9v"}
    out = strategy.prepare_approval_update(kind, sneaky, old)
    assert out["spec"] == old["spec"]
    assert "certificate" not in out["status"]
    assert out["status"]["conditions"][0]["lastUpdateTime"]
    decided = dict(old, status={"conditions": [{"type": "Denied", "status": "True"}]})
    status_write = dict(sneaky)
    strategy.keep_csr_decisions(status_write, decided)
    assert [c["type"] for c in status_write["status"]["conditions"]] == ["Denied"]


@pytest.mark.parametrize("csr, approved", [
    (_csr("system:node:n1", groups=("system:bootstrappers", "system:authenticated")), True),
    (_csr("system:node:n1", user="system:node:n1", groups=("system:nodes",)), True),
    (_csr("system:node:n1", user="system:node:n2", groups=("system:nodes",)), False),
    (_csr("system:node:n1", groups=("system:authenticated",)), False),
    (_csr("system:node:n1", ("evil",), groups=("system:bootstrappers",)), False),
    (_csr("admin", groups=("system:bootstrappers",)), False),
    (_csr("system:node:n1", groups=("system:bootstrappers",), sans=("x.example",)), False),
    (_csr("system:node:n1", groups=("system:bootstrappers",),
          usages=("digital signature", "server auth")), False),
    (_csr("system:node:n1", groups=("system:bootstrappers",),
          signer=pkicsr.KUBE_APISERVER_CLIENT), False),
    (_csr("system:node:n1", user="system:node:n1", groups=("system:nodes",),
          signer=pkicsr.KUBELET_SERVING, sans=("n1",),
          usages=("digital signature", "server auth")), True),
    (_csr("system:node:n1", user="system:node:n2", groups=("system:nodes",),
          signer=pkicsr.KUBELET_SERVING, sans=("n1",),
          usages=("digital signature", "server auth")), False),
    (_csr("system:node:n1", user="system:node:n1", groups=("system:nodes",),
          signer=pkicsr.KUBELET_SERVING, sans=("kubernetes.default",),
          usages=("digital signature", "server auth")), False),
    (_csr("system:node:n1", user="system:node:n1", groups=("system:nodes",),
          signer=pkicsr.KUBELET_SERVING, sans=("n1",),
          usages=("digital signature", "client auth")), False),
], ids=["bootstrapper", "self renewal", "other node", "not a bootstrapper", "wrong org",
        "not a node", "with SANs", "server usage", "other signer", "own serving",
        "serving for another node", "serving another name", "serving with client usage"])
def test_approver_recognizes_only_the_nodes_own_requests(csr, approved):
    assert (recognize(csr) is not None) is approved


def test_signer_issues_what_was_asked_for_no_longer_than_the_duration(tmp_path):
    ca = load_or_create_ca(tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    req = pkicsr.parse_request(pkicsr.make_request(key, "system:node:n1", ("system:nodes",)))
    now = dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)
    pem = pkicsr.sign(req, ["digital signature", "client auth"], ca_cert=ca.cert,
                      ca_key=ca.key, duration=3600, now=now)
    cert = x509.load_pem_x509_certificate(pem)
    assert cert.subject == req.request.subject
    assert cert.not_valid_after_utc == now + dt.timedelta(hours=1)
    assert cert.not_valid_before_utc == now - dt.timedelta(minutes=5)
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    cert.verify_directly_issued_by(ca.cert)
    with pytest.raises(ValueError):
        pkicsr.parse_request(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                             b"-----END CERTIFICATE REQUEST-----\n")
