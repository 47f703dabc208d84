"""Token authentication against a real navio server, through the real kubectl (issue 3).

Service-account tokens from `kubectl create token` authenticate as the account; expired,
wrong-audience, tampered and orphaned tokens get 401; TokenReview and `kubectl auth whoami`
answer as kube does; bootstrap tokens made by `navio token` authenticate as
`system:bootstrap:<id>`; CSRs are approved, denied and signed with `kubectl certificate`.
(`kubectl --token` puts a token on kubectl's argv: fine for testing kubectl; navio's own
commands take credentials from files only.)
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cluster import Kubectl, NavioServer, wait_for
from navio.pki import jwt


@pytest.fixture(scope="module")
def token_kubeconfig(server: NavioServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig with the cluster and CA but no credentials (tokens come per call)."""
    d = tmp_path_factory.mktemp("tokenkc")
    path = d / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {
            "server": server.url,
            "certificate-authority": str(server.data_dir / "pki" / "ca.crt")}}],
        "users": [{"name": "u", "user": {"token": "placeholder-overridden-by-flag"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c"}))
    return path


def as_token(kubectl: Kubectl, kc: Path, token: str, *args: str, check: bool = False
             ) -> subprocess.CompletedProcess[str]:
    return kubectl.run("--kubeconfig", str(kc), "--token", token, *args, check=check)


def whoami(kubectl: Kubectl, kc: Path, token: str) -> dict:
    proc = as_token(kubectl, kc, token, "auth", "whoami", "-o", "json", check=True)
    return json.loads(proc.stdout)["status"]["userInfo"]


def unauthorized(proc: subprocess.CompletedProcess[str]) -> bool:
    return proc.returncode != 0 and "Unauthorized" in proc.stderr


def test_create_token_authenticates_as_the_service_account(kubectl, ns, token_kubeconfig):
    wait_for(lambda: kubectl.run("get", "sa", "default", "-n", ns, check=False).returncode
             == 0, 30, "the default service account")
    token = kubectl("create", "token", "default", "-n", ns).strip()
    assert token.count(".") == 2
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert header["alg"] == "ES256" and header["kid"]
    sa = kubectl.json("get", "sa", "default", "-n", ns)
    assert claims["iss"] == "https://kubernetes.default.svc.cluster.local"
    assert claims["aud"] == ["https://kubernetes.default.svc.cluster.local"]
    assert claims["sub"] == f"system:serviceaccount:{ns}:default"
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]
    assert claims["kubernetes.io"] == {"namespace": ns, "serviceaccount": {
        "name": "default", "uid": sa["metadata"]["uid"]}}
    user = whoami(kubectl, token_kubeconfig, token)
    assert user["username"] == f"system:serviceaccount:{ns}:default"
    assert user["uid"] == sa["metadata"]["uid"]
    assert user["groups"] == ["system:serviceaccounts", f"system:serviceaccounts:{ns}",
                              "system:authenticated"]
    assert user["extra"]["authentication.kubernetes.io/credential-id"] == \
        [f"JTI={claims['jti']}"]
    # Authenticated is not authorized: RBAC grants the service account nothing yet...
    denied = as_token(kubectl, token_kubeconfig, token, "get", "pods", "-n", ns)
    assert denied.returncode == 1 and "Forbidden" in denied.stderr
    # ...until a binding names it.
    kubectl("create", "rolebinding", "sa-view", "--clusterrole", "view",
            f"--serviceaccount={ns}:default", "-n", ns)
    listed = as_token(kubectl, token_kubeconfig, token, "get", "pods", "-n", ns, check=True)
    assert listed.returncode == 0


def test_bad_tokens_get_401(kubectl, ns, token_kubeconfig, server):
    kubectl("create", "serviceaccount", "robot", "-n", ns)
    good = kubectl("create", "token", "robot", "-n", ns).strip()
    assert whoami(kubectl, token_kubeconfig, good)["username"].endswith(":robot")
    other_aud = kubectl("create", "token", "robot", "-n", ns, "--audience", "vault").strip()
    assert unauthorized(as_token(kubectl, token_kubeconfig, other_aud, "get", "pods"))
    head, body, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["sub"] = f"system:serviceaccount:{ns}:admin"
    forged = ".".join([head, base64.urlsafe_b64encode(json.dumps(claims).encode())
                      .rstrip(b"=").decode(), sig])
    assert unauthorized(as_token(kubectl, token_kubeconfig, forged, "get", "pods"))
    assert unauthorized(as_token(kubectl, token_kubeconfig, "not-a-token", "get", "pods"))
    # An expired token, signed with the server's own key (a token past its exp).
    key = jwt.load_or_create_signing_key(server.data_dir / "pki" / "sa.key")
    now = int(time.time())
    expired = dict(json.loads(base64.urlsafe_b64decode(body + "==")), iat=now - 7200,
                   nbf=now - 7200, exp=now - 60)
    assert unauthorized(as_token(kubectl, token_kubeconfig, jwt.sign(expired, key),
                                 "get", "pods"))
    still_valid = dict(expired, exp=now + 600)
    assert whoami(kubectl, token_kubeconfig, jwt.sign(still_valid, key))["username"] \
        .endswith(":robot")
    # A key the server never had.
    stranger = jwt.SigningKey(ec.generate_private_key(ec.SECP256R1()))
    assert unauthorized(as_token(kubectl, token_kubeconfig, jwt.sign(still_valid, stranger),
                                 "get", "pods"))
    # Deleting the account invalidates its tokens; a new account of the same name does not
    # revive them (its uid differs).
    kubectl("delete", "serviceaccount", "robot", "-n", ns)
    wait_for(lambda: unauthorized(as_token(kubectl, token_kubeconfig, good, "get", "pods")),
             30, "the deleted account's token to be refused")
    kubectl("create", "serviceaccount", "robot", "-n", ns)
    time.sleep(0.5)
    assert unauthorized(as_token(kubectl, token_kubeconfig, good, "get", "pods"))


def test_token_bound_to_a_secret_dies_with_it(kubectl, ns, token_kubeconfig):
    kubectl("create", "serviceaccount", "bound", "-n", ns)
    kubectl("create", "secret", "generic", "anchor", "-n", ns, "--from-literal=k=v")
    token = kubectl("create", "token", "bound", "-n", ns, "--bound-object-kind", "Secret",
                    "--bound-object-name", "anchor").strip()
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["kubernetes.io"]["secret"]["name"] == "anchor"
    assert whoami(kubectl, token_kubeconfig, token)["username"].endswith(":bound")
    kubectl("delete", "secret", "anchor", "-n", ns)
    wait_for(lambda: unauthorized(as_token(kubectl, token_kubeconfig, token, "get", "pods")),
             30, "the token bound to the deleted secret to be refused")


def test_token_request_errors_are_kubes(kubectl, ns):
    kubectl("create", "serviceaccount", "errs", "-n", ns)
    short = kubectl.run("create", "token", "errs", "-n", ns, "--duration", "5m", check=False)
    assert short.returncode != 0
    assert 'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: ' \
           'Invalid value: 300: may not specify a duration less than 10 minutes' in short.stderr
    missing = kubectl.run("create", "token", "nobody", "-n", ns, check=False)
    assert 'serviceaccounts "nobody" not found' in missing.stderr
    unbound = kubectl.run("create", "token", "errs", "-n", ns, "--bound-object-kind", "Pod",
                          "--bound-object-name", "ghost", check=False)
    assert 'pods "ghost" not found' in unbound.stderr
    answer = yaml.safe_load(kubectl("create", "token", "errs", "-n", ns, "-o", "yaml"))
    assert answer["kind"] == "TokenRequest" and answer["metadata"]["name"] == "errs"
    # (kubectl prints the typed object: boundObjectRef has no omitempty in Go)
    assert answer["spec"] == {"audiences": ["https://kubernetes.default.svc.cluster.local"],
                              "expirationSeconds": 3600, "boundObjectRef": None}
    assert answer["status"]["token"].count(".") == 2
    token = kubectl("create", "token", "errs", "-n", ns, "--duration", "2h").strip()
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["exp"] - claims["iat"] == 7200


def test_token_review_answers_for_any_token(kubectl, ns, tmp_path):
    kubectl("create", "serviceaccount", "reviewed", "-n", ns)
    token = kubectl("create", "token", "reviewed", "-n", ns, "--audience", "api",
                    "--audience", "vault").strip()

    def review(tok: str, audiences: list[str]) -> dict:
        f = tmp_path / "review.json"
        f.write_text(json.dumps({"apiVersion": "authentication.k8s.io/v1",
                                 "kind": "TokenReview",
                                 "spec": {"token": tok, "audiences": audiences}}))
        out = kubectl("create", "--raw", "/apis/authentication.k8s.io/v1/tokenreviews",
                      "-f", str(f))
        return json.loads(out)["status"]

    ok = review(token, ["vault"])
    assert ok["authenticated"] is True and ok["audiences"] == ["vault"]
    assert ok["user"]["username"] == f"system:serviceaccount:{ns}:reviewed"
    bad = review(token, ["elsewhere"])
    assert not bad.get("authenticated") and "audiences" in bad["error"]
    assert token not in json.dumps(bad)
    garbage = review("x.y.z", [])
    assert not garbage.get("authenticated") and garbage["error"]
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"apiVersion": "authentication.k8s.io/v1",
                                 "kind": "TokenReview", "spec": {}}))
    refused = kubectl.run("create", "--raw", "/apis/authentication.k8s.io/v1/tokenreviews",
                          "-f", str(empty), check=False)
    assert refused.returncode != 0 and "token is required for TokenReview" in refused.stderr


def test_whoami_as_the_admin(kubectl):
    out = kubectl("auth", "whoami")
    assert "kubernetes-admin" in out and "system:masters" in out


def _navio(server: NavioServer, *args: str) -> subprocess.CompletedProcess[str]:
    # (`navio token VERB --data-dir D ...`; test_node_join uses `token --data-dir D VERB`)
    return subprocess.run([sys.executable, "-m", "navio.cli.main", "token", args[0],
                           "--data-dir", str(server.data_dir), *args[1:]],
                          capture_output=True, text=True, timeout=60)


def test_bootstrap_tokens_authenticate_until_deleted_or_expired(server, kubectl,
                                                                token_kubeconfig, tmp_path):
    made = _navio(server, "create", "--ttl", "1h", "--description", "e2e")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    token_id = token.split(".")[0]
    secret = kubectl.json("get", "secret", f"bootstrap-token-{token_id}", "-n", "kube-system")
    assert secret["type"] == "bootstrap.kubernetes.io/token"
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["token-id"] == token_id and data["token-secret"] == token.split(".")[1]
    assert data["usage-bootstrap-authentication"] == "true"
    assert data["auth-extra-groups"] == "system:bootstrappers:kubeadm:default-node-token"
    user = whoami(kubectl, token_kubeconfig, token)
    assert user["username"] == f"system:bootstrap:{token_id}"
    assert user["groups"] == ["system:bootstrappers",
                              "system:bootstrappers:kubeadm:default-node-token",
                              "system:authenticated"]
    listed = _navio(server, "list")
    assert token_id in listed.stdout and token.split(".")[1] not in listed.stdout
    wrong = f"{token_id}.{'0' * 16}"
    assert unauthorized(as_token(kubectl, token_kubeconfig, wrong, "get", "pods"))
    assert _navio(server, "delete", token_id).returncode == 0
    wait_for(lambda: unauthorized(as_token(kubectl, token_kubeconfig, token, "get", "pods")),
             30, "the deleted bootstrap token to be refused")
    # Written to a 0600 file, never to stdout; refused once expired.
    out_file = tmp_path / "join.token"
    short = _navio(server, "create", "--ttl", "2s", "--output-file", str(out_file))
    assert short.returncode == 0 and short.stdout == ""
    assert out_file.stat().st_mode & 0o777 == 0o600
    short_token = out_file.read_text().strip()
    time.sleep(2.5)
    assert unauthorized(as_token(kubectl, token_kubeconfig, short_token, "get", "pods"))
    # The token cleaner deletes the expired token's Secret.
    wait_for(lambda: kubectl.run("get", "secret", "-n", "kube-system",
                                 f"bootstrap-token-{short_token[:6]}", check=False)
             .returncode != 0, 30, "the expired bootstrap token to be deleted")


def _csr_manifest(name: str, cn: str, orgs: tuple[str, ...], signer: str,
                  usages: list[str]) -> tuple[str, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
                        + [x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(
        key, hashes.SHA256())
    body = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": name},
            "spec": {"request": base64.b64encode(csr.public_bytes(
                serialization.Encoding.PEM)).decode(),
                "signerName": signer, "usages": usages, "expirationSeconds": 3600}}
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return json.dumps(body), key_pem


def test_csr_approve_and_deny_with_kubectl(kubectl, server, tmp_path, ns):
    name = f"{ns}-jane"
    manifest, key_pem = _csr_manifest(name, "jane", ("dev",),
                                      "kubernetes.io/kube-apiserver-client", ["client auth"])
    kubectl("create", "-f", "-", "--validate=false", input=manifest)
    csr = kubectl.json("get", "csr", name)
    assert csr["spec"]["username"] == "kubernetes-admin"
    assert "system:masters" in csr["spec"]["groups"]
    assert "Pending" in kubectl("get", "csr", name)
    time.sleep(1.0)
    assert not kubectl.json("get", "csr", name).get("status", {}).get("certificate"), \
        "a client CSR from a user is not auto-approved"
    kubectl("certificate", "approve", name)
    issued = wait_for(lambda: kubectl.json("get", "csr", name).get("status", {})
                      .get("certificate"), 30, "the signer to issue the certificate")
    row = kubectl("get", "csr", name, "--no-headers")
    assert "Approved,Issued" in row and "kubernetes-admin" in row and "60m" in row
    cert = x509.load_pem_x509_certificate(base64.b64decode(issued))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "jane"
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime.total_seconds() <= 3600 + 301
    cond = kubectl.json("get", "csr", name)["status"]["conditions"][0]
    assert (cond["type"], cond["reason"]) == ("Approved", "KubectlApprove")
    # The certificate is a working credential.
    (tmp_path / "jane.crt").write_bytes(base64.b64decode(issued))
    (tmp_path / "jane.key").write_bytes(key_pem)
    kc = tmp_path / "jane.kubeconfig"
    kc.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {
            "server": server.url,
            "certificate-authority": str(server.data_dir / "pki" / "ca.crt")}}],
        "users": [{"name": "jane", "user": {
            "client-certificate": str(tmp_path / "jane.crt"),
            "client-key": str(tmp_path / "jane.key")}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "jane"}}],
        "current-context": "c"}))
    out = kubectl("--kubeconfig", str(kc), "auth", "whoami", "-o", "json")
    assert json.loads(out)["status"]["userInfo"]["username"] == "jane"
    # Deny, and a decision cannot be taken back.
    name2 = f"{ns}-joe"
    manifest2, _ = _csr_manifest(name2, "joe", (), "kubernetes.io/kube-apiserver-client",
                                 ["client auth"])
    kubectl("create", "-f", "-", "--validate=false", input=manifest2)
    kubectl("certificate", "deny", name2)
    assert "Denied" in kubectl("get", "csr", name2, "--no-headers")
    again = kubectl.run("certificate", "approve", name2, check=False)
    assert again.returncode != 0 and "already Denied" in again.stderr
    time.sleep(1.0)
    assert not kubectl.json("get", "csr", name2).get("status", {}).get("certificate")


def test_csr_validation(kubectl, ns):
    bad = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
           "metadata": {"name": f"{ns}-bad"},
           "spec": {"request": base64.b64encode(b"nope").decode(), "signerName": "nodomain",
                    "usages": ["client auth", "flying"]}}
    proc = kubectl.run("create", "-f", "-", "--validate=false", input=json.dumps(bad),
                       check=False)
    assert proc.returncode != 0
    assert "spec.request: Invalid value" in proc.stderr
    assert "PEM block type must be CERTIFICATE REQUEST" in proc.stderr
    assert 'spec.usages[1]: Unsupported value: "flying"' in proc.stderr
    assert "spec.signerName: Invalid value" in proc.stderr
