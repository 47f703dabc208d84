"""Issue 3, credentials and logs, against a whole `navio server` (agent included):

- a key file readable by group/others stops the server with the file's name and the fix;
- the data dir is 0700;
- no navio process's argv or environment (read from /proc) holds a key, a token or secret data;
- no log file (server, components, agent, audit) holds secret data, and secret names appear
  only in the audit log (which records who touched which object, as kube's does).
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

from cluster import Kubectl, NavioServer, wait_for

MARKER = "cred-marker-5d1e0b77"
NAME = "marker-secret-9a8b"


def _children(pid: int) -> set[int]:
    out = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            continue
    return out


def _credentials(data: Path) -> set[bytes]:
    """Strings that must never appear in a process's argv or environment."""
    found = {b"PRIVATE KEY", MARKER.encode(), base64.b64encode(MARKER.encode())}
    for key in (data / "pki").glob("*.key"):
        body = [line for line in key.read_text().splitlines() if "-----" not in line]
        found |= {line.encode() for line in body if len(line) >= 16}
    enc = yaml.safe_load((data / "pki" / "encryption-config.yaml").read_text())
    for entry in enc["resources"]:
        for provider in entry["providers"]:
            for k in (provider.get("aesgcm") or {}).get("keys", []):
                found.add(k["secret"].encode())
    for kc in data.glob("*.kubeconfig"):
        for user in yaml.safe_load(kc.read_text())["users"]:
            found.add(user["user"]["client-key-data"].encode()[:40])
    return found


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NavioServer, Kubectl]]:
    base = tmp_path_factory.mktemp("cred")
    data = base / "data"
    data.mkdir(mode=0o755)
    srv = NavioServer(data, extra_args=()).start()
    try:
        yield srv, Kubectl(srv.kubeconfig, base / "home")
    finally:
        srv.stop()


def test_data_dir_is_private(full: tuple[NavioServer, Kubectl]) -> None:
    srv, _ = full
    assert srv.data_dir.stat().st_mode & 0o777 == 0o700
    for key in (srv.data_dir / "pki").glob("*.key"):
        assert key.stat().st_mode & 0o777 == 0o600, key


def test_no_credentials_in_argv_or_environment(full: tuple[NavioServer, Kubectl]) -> None:
    srv, kubectl = full
    kubectl("create", "secret", "generic", NAME, f"--from-literal=password={MARKER}")
    assert srv.proc is not None
    children = wait_for(lambda: (c := _children(srv.proc.pid)) and len(c) >= 3 and c, 60,
                        "the server's components")
    names = set()
    for pid in {srv.proc.pid, *children}:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        names |= {a for a in (b"agent", b"controller-manager", b"scheduler")
                  if a in argv.split(b"\0")}
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        for secret in _credentials(srv.data_dir):
            assert secret not in argv, (pid, argv)
            assert secret not in environ, pid
        assert b"--token" not in argv
    assert names == {b"agent", b"controller-manager", b"scheduler"}


def test_world_readable_key_file_refuses_to_start(tmp_path: Path) -> None:
    srv = NavioServer(tmp_path / "data").start()
    srv.stop()
    for victim in ("pki/admin.key", "pki/encryption-config.yaml", "admin.kubeconfig"):
        path = srv.data_dir / victim
        os.chmod(path, 0o644)
        proc = subprocess.run([sys.executable, "-m", "navio.cli.main", "server", "--data-dir",
                               str(srv.data_dir), "--port", "0", "--no-agent"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0
        assert str(path) in proc.stderr and f"chmod 600 {path}" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        os.chmod(path, 0o600)


def test_no_secret_data_or_names_in_logs(full: tuple[NavioServer, Kubectl]) -> None:
    srv, kubectl = full
    name = f"{NAME}-logs"
    kubectl("create", "secret", "generic", name, f"--from-literal=password={MARKER}")
    # A pod that mounts it and reads it through env: the agent handles the secret.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "uses-secret"},
           "spec": {"containers": [{"name": "c", "image": "python", "command": [
               "python3", "-c", "import time; time.sleep(3600)"],
               "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {
                   "name": name, "key": "password"}}}],
               "volumeMounts": [{"name": "s", "mountPath": "/etc/s"}]}],
               "volumes": [{"name": "s", "secret": {"secretName": name}}]}}
    kubectl("create", "-f", "-", input=json.dumps(pod))
    try:
        wait_for(lambda: kubectl("get", "pod", "uses-secret", "-o",
                                 "jsonpath={.status.phase}") == "Running", 90,
                 "the pod using the secret to run")
        kubectl("get", "secret", name, "-o", "yaml")
        kubectl("label", "secret", name, "touched=yes")
        kubectl("patch", "secret", name, "-p",
                json.dumps({"stringData": {"password": MARKER + "-2"}}))
        kubectl.run("create", "secret", "generic", name, "--from-literal=x=y", check=False)
        kubectl.run("patch", "secret", name, "--type=json", "-p",
                    '[{"op":"replace","path":"/type","value":"bad"}]', check=False)
        kubectl("describe", "secret", name)
    finally:
        kubectl("delete", "pod", "uses-secret", "--wait=true", "--timeout=60s",
                check=False, timeout=70)
    kubectl("delete", "secret", name)
    logs = [p for p in (srv.data_dir / "logs").rglob("*") if p.is_file()]
    logs += [p for p in (srv.data_dir / "agent").rglob("*.log") if "pods" not in p.parts]
    logs.append(srv.log_path)   # the server's own stderr
    audit = srv.data_dir / "logs" / "audit.log"
    assert audit in logs and len(logs) >= 4, logs
    forbidden = (MARKER.encode(), base64.b64encode(MARKER.encode()),
                 base64.b64encode((MARKER + "-2").encode()))
    for path in logs:
        text = path.read_bytes()
        for f in forbidden:
            assert f not in text, f"{path} contains secret data"
        if path != audit:
            assert name.encode() not in text, f"{path} names the secret at info level"
    assert name.encode() in audit.read_bytes()   # who touched it stays on record
