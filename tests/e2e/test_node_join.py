"""A node joins with a bootstrap token (issue 3): `navio server --no-agent`, then
`navio token create --output-file F` and `navio agent --server URL --token-file F --ca-file
CA` with the sim runtime. The agent's CSR is auto-approved and signed, it writes its own 0600
kubeconfig and registers its Node as `system:node:NAME`; pods on it get the kube-api-access
projected volume with a pod-bound token; the certificate rotates through a new CSR; no token or
key is in any process's argv or environment.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from cryptography import x509

from cluster import Kubectl, NavioServer, wait_for

NODE = "joiner-e2e"


class Joined:
    def __init__(self, server: NavioServer, kubectl: Kubectl, root: Path, token_file: Path,
                 token: str, ca_hash: str) -> None:
        self.server, self.kubectl, self.root = server, kubectl, root
        self.ca_hash = ca_hash
        self.token_file, self.token = token_file, token
        self.agent: subprocess.Popen[str] | None = None
        self.log = root.parent / "agent.log"

    def start_agent(self) -> subprocess.Popen[str]:
        with open(self.log, "a") as log:
            self.agent = subprocess.Popen(
                [sys.executable, "-m", "navio.cli.main", "agent", "--server", self.server.url,
                 "--token-file", str(self.token_file), "--ca-file",
                 str(self.server.data_dir / "pki" / "ca.crt"), "--ca-cert-hash", self.ca_hash,
                 "--runtime", "sim", "--root-dir", str(self.root), "--node-name", NODE, "--port", "0",
                 "--address", "127.0.0.1", "--node-ip", "127.0.0.1",
                 "--node-status-update-frequency", "2s"],
                stdout=log, stderr=subprocess.STDOUT, text=True)
        return self.agent

    def stop_agent(self) -> None:
        if self.agent is not None and self.agent.poll() is None:
            self.agent.terminate()
            try:
                self.agent.wait(20)
            except subprocess.TimeoutExpired:
                self.agent.kill()
                self.agent.wait(5)
        self.agent = None

    def node_ready(self) -> bool:
        proc = self.kubectl.run("get", "node", NODE, "-o", "json", check=False)
        if proc.returncode != 0:
            return False
        conds = json.loads(proc.stdout).get("status", {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def _navio_token(server: NavioServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "navio.cli.main", "token", "--data-dir",
                           str(server.data_dir), *args], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture(scope="module")
def joined(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Joined]:
    base = tmp_path_factory.mktemp("join")
    server = NavioServer(base / "data").start()
    kubectl = Kubectl(server.kubeconfig, tmp_path_factory.mktemp("joinhome"))
    token_file = base / "join.token"
    made = _navio_token(server, "create", "--ttl", "1h", "--output-file", str(token_file),
                        "--print-join-command")
    assert made.returncode == 0, made.stderr
    token = token_file.read_text().strip()
    assert token not in made.stdout and token not in made.stderr
    assert f"--token-file {token_file}" in made.stdout
    ca_hash = made.stdout.split("--ca-cert-hash ")[1].split()[0]
    assert ca_hash.startswith("sha256:") and len(ca_hash) == 71
    j = Joined(server, kubectl, base / "agent", token_file, token, ca_hash)
    try:
        j.start_agent()
        wait_for(j.node_ready, 90, "the joined node to be Ready", interval=0.5)
        yield j
    finally:
        j.stop_agent()
        server.stop()


def test_the_node_joined_with_its_own_certificate(joined: Joined) -> None:
    kubectl = joined.kubectl
    token_id = joined.token.split(".")[0]
    csrs = [c for c in kubectl.json("get", "csr")["items"]
            if c["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"]
    assert len(csrs) == 1
    csr = csrs[0]
    assert csr["metadata"]["name"].startswith("node-csr-")
    assert csr["spec"]["username"] == f"system:bootstrap:{token_id}"
    assert "system:bootstrappers" in csr["spec"]["groups"]
    assert csr["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
    assert sorted(csr["spec"]["usages"]) == ["client auth", "digital signature"]
    approved = [c for c in csr["status"]["conditions"] if c["type"] == "Approved"]
    assert approved and approved[0]["reason"] == "AutoApproved"
    assert "Approved,Issued" in kubectl("get", "csr", csr["metadata"]["name"], "--no-headers")
    cert = x509.load_pem_x509_certificate(base64.b64decode(csr["status"]["certificate"]))
    assert cert.subject.rfc4514_string() == f"CN=system:node:{NODE},O=system:nodes"
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime.total_seconds() <= 7 * 24 * 3600 + 301
    kubeconfig = joined.root / "kubelet.kubeconfig"
    pem = joined.root / "pki" / "kubelet-client-current.pem"
    assert kubeconfig.stat().st_mode & 0o777 == 0o600
    assert pem.stat().st_mode & 0o777 == 0o600
    assert pem.parent.stat().st_mode & 0o777 == 0o700
    doc = yaml.safe_load(kubeconfig.read_text())
    assert "token" not in json.dumps(doc["users"])
    who = json.loads(kubectl("--kubeconfig", str(kubeconfig), "auth", "whoami", "-o",
                             "json"))["status"]["userInfo"]
    assert who == {"username": f"system:node:{NODE}",
                   "groups": ["system:nodes", "system:authenticated"]}
    # Its kubelet API serves a CA-signed certificate (the API server verifies it).
    serving = [c for c in kubectl.json("get", "csr")["items"]
               if c["spec"]["signerName"] == "kubernetes.io/kubelet-serving"]
    assert len(serving) == 1 and serving[0]["spec"]["username"] == f"system:node:{NODE}"
    assert "Approved,Issued" in kubectl("get", "csr", serving[0]["metadata"]["name"],
                                        "--no-headers")
    served = x509.load_pem_x509_certificate(
        (joined.root / "pki" / "kubelet-server-current.pem").read_bytes())
    san = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert NODE in san.get_values_for_type(x509.DNSName)
    # The agent had no other credential once joined; its log never shows the token.
    assert joined.token.split(".")[1] not in joined.log.read_text()


def test_no_credential_in_argv_or_environment(joined: Joined) -> None:
    assert joined.agent is not None and joined.server.proc is not None
    secrets = [joined.token.encode(), joined.token.split(".")[1].encode(),
               b"PRIVATE KEY"]
    for pid in (joined.agent.pid, joined.server.proc.pid):
        for name in ("cmdline", "environ"):
            blob = Path(f"/proc/{pid}/{name}").read_bytes()
            assert not [s for s in secrets if s in blob], f"/proc/{pid}/{name}"


def test_pods_get_a_bound_token_volume(joined: Joined, tmp_path: Path) -> None:
    kubectl = joined.kubectl
    wait_for(lambda: kubectl.run("get", "sa", "default", check=False).returncode == 0, 30,
             "the default service account")
    wait_for(lambda: kubectl.run("get", "cm", "kube-root-ca.crt", check=False).returncode
             == 0, 30, "the root CA ConfigMap")
    kubectl("run", "tokened", "--image=none", "--restart=Never")
    kubectl("run", "tokenless", "--image=none", "--restart=Never", "--overrides",
            json.dumps({"spec": {"automountServiceAccountToken": False}}))
    pod = kubectl.json("get", "pod", "tokened")
    vols = [v for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api-access-")]
    assert len(vols) == 1
    assert vols[0]["projected"]["sources"][0] == {
        "serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert {"name": vols[0]["name"], "readOnly": True,
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"} in \
        pod["spec"]["containers"][0]["volumeMounts"]
    assert "volumes" not in kubectl.json("get", "pod", "tokenless")["spec"]
    wait_for(lambda: kubectl("get", "pod", "tokened", "-o", "jsonpath={.status.phase}")
             == "Running", 60, "the pod to run")
    # API server -> kubelet over TLS verified against the cluster CA.
    logs = kubectl.run("logs", "tokened", check=False)
    assert logs.returncode == 0, logs.stderr
    uid = pod["metadata"]["uid"]
    vol_dir = joined.root / "pods" / uid / "volumes" / "kubernetes.io~projected" / \
        vols[0]["name"]
    wait_for(lambda: (vol_dir / "token").exists(), 60, "the token file")
    assert (vol_dir / "namespace").read_text() == "default"
    assert (vol_dir / "ca.crt").read_bytes() == \
        (joined.server.data_dir / "pki" / "ca.crt").read_bytes()
    token = (vol_dir / "token").read_text()
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["kubernetes.io"]["pod"] == {"name": "tokened", "uid": uid}
    assert claims["kubernetes.io"]["node"]["name"] == NODE
    assert claims["exp"] - claims["iat"] == 3607
    kc = tmp_path / "kubeconfig"
    kc.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": joined.server.url,
                                               "certificate-authority": str(vol_dir /
                                                                            "ca.crt")}}],
        "users": [{"name": "u", "user": {"tokenFile": str(vol_dir / "token")}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c"}))
    who = json.loads(kubectl("--kubeconfig", str(kc), "auth", "whoami", "-o",
                             "json"))["status"]["userInfo"]
    assert who["username"] == "system:serviceaccount:default:default"
    assert who["extra"]["authentication.kubernetes.io/pod-name"] == ["tokened"]
    assert who["extra"]["authentication.kubernetes.io/node-name"] == [NODE]
    kubectl("delete", "pod", "tokened", "--grace-period=0", "--force")
    (tmp_path / "ca.crt").write_bytes((joined.server.data_dir / "pki" / "ca.crt").read_bytes())
    (tmp_path / "token").write_text(token)
    doc = yaml.safe_load(kc.read_text())
    doc["clusters"][0]["cluster"]["certificate-authority"] = str(tmp_path / "ca.crt")
    doc["users"][0]["user"]["tokenFile"] = str(tmp_path / "token")
    kc.write_text(yaml.safe_dump(doc))
    wait_for(lambda: "Unauthorized" in kubectl.run("--kubeconfig", str(kc), "get", "pods",
                                                   check=False).stderr,
             30, "the deleted pod's token to be refused")


async def test_the_node_certificate_rotates_through_a_new_csr(joined: Joined,
                                                              tmp_path: Path) -> None:
    from navio.client import Client, ClientConfig
    from navio.kubelet.bootstrap import CertificateRotator
    pem = joined.root / "pki" / "kubelet-client-current.pem"
    copy = tmp_path / "client.pem"
    copy.write_bytes(pem.read_bytes())
    old = x509.load_pem_x509_certificate(copy.read_bytes())
    ca = (joined.server.data_dir / "pki" / "ca.crt").read_bytes()
    config = ClientConfig(server=joined.server.url, ca_data=ca, cert_data=copy.read_bytes(),
                          key_data=copy.read_bytes())
    async with Client(config, component="test") as client:
        await CertificateRotator(client, NODE, copy).rotate()
    new = x509.load_pem_x509_certificate(copy.read_bytes())
    assert new.serial_number != old.serial_number
    assert new.subject == old.subject
    assert copy.stat().st_mode & 0o777 == 0o600
    csrs = joined.kubectl.json("get", "csr")["items"]
    mine = [c for c in csrs if c["spec"]["username"] == f"system:node:{NODE}"
            and c["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"]
    assert len(mine) == 1
    assert "self kubelet client" in mine[0]["status"]["conditions"][0]["message"]


def test_a_wrong_token_is_refused_with_a_clear_message(joined: Joined, tmp_path: Path
                                                       ) -> None:
    bad = tmp_path / "bad.token"
    bad.write_text("abcdef.0123456789abcdef\n")
    bad.chmod(0o600)
    proc = subprocess.run(
        [sys.executable, "-m", "navio.cli.main", "agent", "--server", joined.server.url,
         "--token-file", str(bad), "--ca-file", str(joined.server.data_dir / "pki" / "ca.crt"),
         "--runtime", "sim", "--root-dir", str(tmp_path / "agent"), "--node-name", "intruder",
         "--port", "0", "--address", "127.0.0.1", "--node-ip", "127.0.0.1"],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "refused the bootstrap token (Unauthorized)" in proc.stderr
    assert "Traceback" not in proc.stderr and "0123456789abcdef" not in proc.stderr
    assert joined.kubectl.run("get", "node", "intruder", check=False).returncode != 0
    # A CA file that does not match the pinned hash is refused before anything is sent.
    wrong_pin = subprocess.run(
        [sys.executable, "-m", "navio.cli.main", "agent", "--server", joined.server.url,
         "--token-file", str(joined.token_file), "--ca-file",
         str(joined.server.data_dir / "pki" / "ca.crt"), "--ca-cert-hash", "sha256:" + "0" * 64,
         "--runtime", "sim", "--root-dir", str(tmp_path / "agent2"), "--node-name", "pinned",
         "--port", "0", "--address", "127.0.0.1", "--node-ip", "127.0.0.1"],
        capture_output=True, text=True, timeout=60)
    assert wrong_pin.returncode != 0 and "does not match --ca-cert-hash" in wrong_pin.stderr


def test_restart_reuses_the_certificate_without_the_token(joined: Joined) -> None:
    token_id = joined.token.split(".")[0]
    assert _navio_token(joined.server, "delete", token_id).returncode == 0
    joined.stop_agent()
    before = len(joined.kubectl.json("get", "csr")["items"])
    joined.start_agent()
    wait_for(lambda: joined.agent is not None and "agent started" in joined.log.read_text()
             .split("agent stopped")[-1], 60, "the agent to start again")
    wait_for(joined.node_ready, 60, "the node to be Ready again")
    assert len(joined.kubectl.json("get", "csr")["items"]) == before
    assert os.path.exists(joined.root / "kubelet.kubeconfig")
