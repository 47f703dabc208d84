"""Issue 3, revocation: `navio cert revoke` takes effect on the next request, no restart;
`navio kubeconfig admin` hands the operator a working admin kubeconfig again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cryptography import x509

from cluster import Kubectl, NavioServer


def navio(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "navio.cli.main", *args], capture_output=True,
                          text=True, timeout=60)


def test_revoked_admin_certificate_is_refused_on_its_next_request(tmp_path: Path) -> None:
    srv = NavioServer(tmp_path / "data").start()
    try:
        data = str(srv.data_dir)
        kubectl = Kubectl(srv.kubeconfig, tmp_path / "home")
        kept = tmp_path / "old-admin.kubeconfig"
        kept.write_bytes(srv.kubeconfig.read_bytes())
        old = Kubectl(kept, tmp_path / "home-old")
        assert "default" in old("get", "namespaces")   # warms kubectl's keep-alive connection

        # A second user, revoked by serial; the admin is untouched by that.
        out = navio("kubeconfig", "admin", "--user", "alice", "--data-dir", data)
        assert out.returncode == 0, out.stderr
        alice = Kubectl(srv.data_dir / "alice.kubeconfig", tmp_path / "home-alice")
        alice.run("get", "namespaces", check=False)     # authenticates (authorization aside)
        serial = out.stdout.rsplit("serial ", 1)[1].strip(" )\n")
        assert navio("cert", "revoke", serial, "--data-dir", data).returncode == 0
        denied = alice.run("get", "namespaces", check=False)
        assert denied.returncode != 0 and "Unauthorized" in denied.stderr, denied.stderr
        assert "default" in old("get", "namespaces")

        # The admin, revoked by user name: the very next request fails, without a restart.
        rev = navio("cert", "revoke", "--user", "kubernetes-admin", "--data-dir", data)
        assert rev.returncode == 0 and "revoked" in rev.stdout, rev.stderr
        denied = old.run("get", "namespaces", check=False)
        assert denied.returncode != 0 and "Unauthorized" in denied.stderr, denied.stderr
        assert srv.proc is not None and srv.proc.poll() is None    # no restart happened
        revoked = (srv.data_dir / "pki" / "revoked-serials").read_text()
        admin_serial = format(x509.load_pem_x509_certificate(
            (srv.data_dir / "pki" / "admin.crt").read_bytes()).serial_number, "X")
        assert admin_serial in revoked

        # Recovery: a new admin kubeconfig (new key, new serial) works at once.
        out = navio("kubeconfig", "admin", "--data-dir", data)
        assert out.returncode == 0 and "admin.kubeconfig" in out.stdout, out.stderr
        assert "default" in kubectl("get", "namespaces")
        denied = old.run("get", "namespaces", check=False)
        assert denied.returncode != 0 and "Unauthorized" in denied.stderr
    finally:
        srv.stop()


def test_revoke_needs_a_known_user_or_serial(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = navio("cert", "revoke", "--user", "nobody", "--data-dir", str(data))
    assert out.returncode == 1 and "nobody" in out.stderr
    out = navio("cert", "revoke", "not-hex", "--data-dir", str(data))
    assert out.returncode == 2 and "hexadecimal" in out.stderr
