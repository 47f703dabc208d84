"""Kubeconfig loading: contexts, embedded and file credentials, TLS, and no leaked secrets."""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import stat
from pathlib import Path

import pytest
import yaml

from navio.client import kubeconfig as kc
from navio.client.kubeconfig import KubeconfigError, in_cluster_config, load_kubeconfig
from navio.pki.certs import load_or_create_ca
from navio.pki.kubeconfig import write_kubeconfig

TOKEN = "s3cr3t-token-value"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    ca = load_or_create_ca(d)
    server = ca.issue(d, "server", cn="server", client=False, server_names=("127.0.0.1",))
    client = ca.issue(d, "client", cn="admin", orgs=("system:masters",))
    other = load_or_create_ca(tmp_path_factory.mktemp("other"))
    return {"ca": ca.pair.cert, "server_crt": server.cert, "server_key": server.key,
            "client_crt": client.cert, "client_key": client.key, "other_ca": other.pair.cert,
            "dir": d}


def _write(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def _doc(cluster: dict, user: dict, *, current: str = "main") -> dict:
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "clusters": [{"name": "c", "cluster": cluster},
                     {"name": "other", "cluster": {"server": "https://10.0.0.1:6443"}}],
        "users": [{"name": "u", "user": user}, {"name": "nobody", "user": {}}],
        "contexts": [{"name": "main", "context": {"cluster": "c", "user": "u"}},
                     {"name": "alt", "context": {"cluster": "other", "user": "nobody"}}],
    }


def test_the_servers_own_admin_kubeconfig_loads_with_embedded_credentials(pki, tmp_path):
    from navio.pki.certs import CertPair
    path = tmp_path / "admin.kubeconfig"
    write_kubeconfig(path, server="https://127.0.0.1:6443", ca_cert=pki["ca"],
                     client=CertPair(pki["client_crt"], pki["client_key"]), user="admin")
    cfg = load_kubeconfig(path)
    assert cfg.server == "https://127.0.0.1:6443"
    assert cfg.ca_data == pki["ca"].read_bytes()
    assert cfg.cert_data == pki["client_crt"].read_bytes()
    assert cfg.key_data == pki["client_key"].read_bytes()
    assert cfg.bearer_token() is None


def test_file_references_resolve_relative_to_the_kubeconfig(pki, tmp_path):
    (tmp_path / "certs").mkdir()
    for src, dst in (("ca", "ca.crt"), ("client_crt", "c.crt"), ("client_key", "c.key")):
        (tmp_path / "certs" / dst).write_bytes(pki[src].read_bytes())
    path = _write(tmp_path / "config", _doc(
        {"server": "https://127.0.0.1:1/", "certificate-authority": "certs/ca.crt"},
        {"client-certificate": "certs/c.crt", "client-key": "certs/c.key"}))
    cfg = load_kubeconfig(path)
    assert cfg.server == "https://127.0.0.1:1"          # trailing slash dropped
    assert cfg.ca_data == pki["ca"].read_bytes()
    assert cfg.key_data == pki["client_key"].read_bytes()


def test_a_named_context_overrides_the_current_one(tmp_path):
    path = _write(tmp_path / "config", _doc({"server": "https://127.0.0.1:1"}, {}))
    assert load_kubeconfig(path, context="alt").server == "https://10.0.0.1:6443"


def test_token_file_wins_over_inline_token_and_is_re_read(tmp_path, monkeypatch):
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    path = _write(tmp_path / "config", _doc({"server": "https://127.0.0.1:1"},
                                            {"token": TOKEN, "tokenFile": "token"}))
    cfg = load_kubeconfig(path)
    assert cfg.bearer_token() == "from-file"
    token_file.write_text("rotated")
    assert cfg.bearer_token() == "from-file"            # cached within a minute
    monkeypatch.setattr(kc, "_TOKEN_REREAD", 0.0)
    assert cfg.bearer_token() == "rotated"
    token_file.unlink()
    assert cfg.bearer_token() == "rotated"              # last good value kept


def test_inline_token_is_used_without_a_token_file(tmp_path):
    path = _write(tmp_path / "config", _doc({"server": "https://127.0.0.1:1"}, {"token": TOKEN}))
    assert load_kubeconfig(path).bearer_token() == TOKEN


def test_credentials_never_appear_in_repr(pki, tmp_path):
    path = _write(tmp_path / "config", _doc(
        {"server": "https://127.0.0.1:1",
         "certificate-authority-data": base64.b64encode(pki["ca"].read_bytes()).decode()},
        {"token": TOKEN,
         "client-certificate-data": base64.b64encode(pki["client_crt"].read_bytes()).decode(),
         "client-key-data": base64.b64encode(pki["client_key"].read_bytes()).decode()}))
    text = repr(load_kubeconfig(path))
    assert TOKEN not in text and "PRIVATE KEY" not in text and "CERTIFICATE" not in text


@pytest.mark.parametrize("cluster, user, context, needle", [
    ({"server": "http://127.0.0.1:1"}, {}, None, "https"),
    ({"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": True}, {}, None,
     "insecure-skip-tls-verify"),
    ({"server": "https://127.0.0.1:1"}, {"exec": {"command": "x"}}, None, "exec"),
    ({"server": "https://127.0.0.1:1", "certificate-authority-data": "!!notbase64"}, {}, None,
     "base64"),
    ({"server": "https://127.0.0.1:1"}, {"client-key-data": base64.b64encode(
        TOKEN.encode()).decode()}, None, "together"),
    ({"server": "https://127.0.0.1:1"}, {}, "missing", "not found"),
    ({}, {}, None, "no server"),
    ({"server": "https://127.0.0.1:1", "certificate-authority": "/nonexistent/ca.crt"}, {},
     None, "cannot read"),
], ids=["plain http is refused", "skipping TLS verification is refused",
        "exec plugins are refused", "bad base64 is reported", "a key without a cert is refused",
        "an unknown context is reported", "a cluster without server is reported",
        "an unreadable CA file is reported"])
def test_bad_kubeconfigs_are_rejected_without_echoing_secrets(tmp_path, cluster, user, context,
                                                              needle):
    path = _write(tmp_path / "config", _doc(cluster, user))
    with pytest.raises(KubeconfigError) as info:
        load_kubeconfig(path, context=context)
    assert needle in str(info.value)
    assert TOKEN not in str(info.value)


def test_a_missing_or_malformed_file_is_a_kubeconfig_error(tmp_path):
    with pytest.raises(KubeconfigError):
        load_kubeconfig(tmp_path / "absent")
    (tmp_path / "bad").write_text("- [unclosed")
    with pytest.raises(KubeconfigError):
        load_kubeconfig(tmp_path / "bad")


def test_ssl_context_requires_tls12_and_verifies_the_server(pki, tmp_path):
    path = _write(tmp_path / "config", _doc(
        {"server": "https://127.0.0.1:1", "certificate-authority": str(pki["ca"])}, {}))
    ctx = load_kubeconfig(path).ssl_context()
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def test_embedded_key_is_loaded_from_a_private_temp_dir_that_is_removed(pki, tmp_path,
                                                                         monkeypatch):
    path = _write(tmp_path / "config", _doc(
        {"server": "https://127.0.0.1:1"},
        {"client-certificate-data": base64.b64encode(pki["client_crt"].read_bytes()).decode(),
         "client-key-data": base64.b64encode(pki["client_key"].read_bytes()).decode()}))
    seen: dict[str, int] = {}
    original = ssl.SSLContext.load_cert_chain

    def spy(self, certfile, keyfile=None, password=None):
        seen["dir"] = stat.S_IMODE(os.stat(os.path.dirname(keyfile)).st_mode)
        seen["key"] = stat.S_IMODE(os.stat(keyfile).st_mode)
        seen["cert"] = stat.S_IMODE(os.stat(certfile).st_mode)
        seen["path"] = os.path.dirname(keyfile)
        return original(self, certfile, keyfile, password)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    load_kubeconfig(path).ssl_context()
    assert seen["dir"] == 0o700 and seen["key"] == 0o600 and seen["cert"] == 0o600
    assert not os.path.exists(seen["path"])


def test_a_mismatched_key_is_reported_and_the_temp_dir_still_removed(pki, tmp_path,
                                                                       monkeypatch):
    made: list[str] = []
    real_private_dir = kc._private_dir

    def tracking() -> str:
        made.append(real_private_dir())
        return made[-1]

    monkeypatch.setattr(kc, "_private_dir", tracking)
    cfg = kc.ClientConfig(server="https://127.0.0.1:1", cert_data=pki["client_crt"].read_bytes(),
                          key_data=pki["server_key"].read_bytes())
    with pytest.raises(KubeconfigError):
        cfg.ssl_context()
    assert made and not os.path.exists(made[0])


async def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> str | None:
    """Connect over TLS on loopback; the peer CN the server saw, or raise on failure."""
    seen: list[str | None] = []

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cert = writer.get_extra_info("peercert") or {}
        subject = dict(x[0] for x in cert.get("subject", ()))
        seen.append(subject.get("commonName"))
        writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        async with asyncio.timeout(10):
            _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx)
            await writer.drain()
            while not seen:
                await asyncio.sleep(0.01)
            writer.close()
    finally:
        server.close()
        await server.wait_closed()
    return seen[0]


def _server_ctx(pki) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki["ca"]))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(pki["server_crt"], pki["server_key"])
    return ctx


async def test_a_real_handshake_presents_the_client_certificate(pki, tmp_path):
    path = _write(tmp_path / "config", _doc(
        {"server": "https://127.0.0.1:1",
         "certificate-authority-data": base64.b64encode(pki["ca"].read_bytes()).decode()},
        {"client-certificate-data": base64.b64encode(pki["client_crt"].read_bytes()).decode(),
         "client-key-data": base64.b64encode(pki["client_key"].read_bytes()).decode()}))
    assert await _handshake(_server_ctx(pki), load_kubeconfig(path).ssl_context()) == "admin"


async def test_a_server_signed_by_another_ca_is_refused(pki, tmp_path):
    path = _write(tmp_path / "config", _doc(
        {"server": "https://127.0.0.1:1", "certificate-authority": str(pki["other_ca"])}, {}))
    with pytest.raises(ssl.SSLCertVerificationError):
        await _handshake(_server_ctx(pki), load_kubeconfig(path).ssl_context())


def test_in_cluster_config_reads_the_service_account_mount(tmp_path, monkeypatch, pki):
    (tmp_path / "ca.crt").write_bytes(pki["ca"].read_bytes())
    (tmp_path / "token").write_text(TOKEN)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    cfg = in_cluster_config(tmp_path)
    assert cfg.server == "https://10.96.0.1:443"
    assert cfg.bearer_token() == TOKEN
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(KubeconfigError):
        in_cluster_config(tmp_path)
