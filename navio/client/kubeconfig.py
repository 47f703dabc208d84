"""Loading a kubeconfig into a client configuration and a TLS context.

Why: every navio component reaches the API server with the same credentials file kubectl uses
(client-go's clientcmd), so a component can run anywhere a kubeconfig can be copied.

What is guaranteed:
- The current context (or the one named) selects the cluster and user; file references are
  resolved relative to the kubeconfig's directory, as clientcmd does.
- Only HTTPS servers are accepted, TLS is 1.2 or newer and the server is verified against the
  cluster's CA (or the system trust store when none is given); `insecure-skip-tls-verify` is
  refused rather than honoured.
- Credentials never appear in `repr`, logs or exception messages. Client keys that arrive as
  embedded data are written only to a private 0700 directory as 0600 files (in /dev/shm when
  available, so they do not reach a disk), loaded, and removed before `ssl_context` returns.
- A `tokenFile` is re-read when it changes (service-account tokens rotate); its value wins
  over an inline `token`, as in client-go's transport config.
- Several API servers (an HA control plane): a kubeconfig names one `server` per cluster, as
  kube's does, and may list every API server in the cluster's extension `navio.dev/servers`
  (`extension: {servers: [https://a:6443, https://b:6443]}`), which kubectl keeps and ignores
  (as minikube's `cluster_info`); navio's client fails over between them (`endpoints`).
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ClientConfig", "KubeconfigError", "load_kubeconfig", "in_cluster_config",
           "SERVERS_EXTENSION", "split_servers"]

SERVERS_EXTENSION = "navio.dev/servers"

_SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_TOKEN_REREAD = 60.0   # client-go's cachingTokenSource re-reads a token file every minute


class KubeconfigError(ValueError):
    """The kubeconfig is missing, malformed, or asks for something navio does not support."""


@dataclass(frozen=True)
class ClientConfig:
    """Where the API server is and how to authenticate to it.

    `ca_data`, `cert_data` and `key_data` are PEM bytes; `token_file` is re-read on change."""

    server: str
    ca_data: bytes | None = field(default=None, repr=False)
    cert_data: bytes | None = field(default=None, repr=False)
    key_data: bytes | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    tls_server_name: str | None = None
    context: str = ""
    servers: tuple[str, ...] = ()      # every API server, `server` first (see module doc)
    _token_cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False,
                                         hash=False)

    def __post_init__(self) -> None:
        if not all(s.startswith("https://") for s in (self.server, *self.servers)):
            raise KubeconfigError("server must be an https:// URL")
        if (self.cert_data is None) != (self.key_data is None):
            raise KubeconfigError("client certificate and key must be given together")

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The API servers to use, in order of preference: `server`, then the others."""
        return (self.server, *(s for s in self.servers if s != self.server))

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context: TLS ≥ 1.2, server verified, client certificate loaded."""
        # With a CA given, only that CA is trusted (create_default_context then skips the
        # system store), as client-go does; without one, the system store is used.
        try:
            ctx = ssl.create_default_context(
                ssl.Purpose.SERVER_AUTH,
                cadata=self.ca_data.decode("ascii") if self.ca_data is not None else None)
        except (ssl.SSLError, UnicodeDecodeError, ValueError):
            raise KubeconfigError("certificate authority data is not valid PEM") from None
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_data is not None and self.key_data is not None:
            _load_cert_chain(ctx, self.cert_data, self.key_data)
        return ctx

    def bearer_token(self) -> str | None:
        """The token to send, re-reading `token_file` at most once a minute or on change."""
        if self.token_file is None:
            return self.token
        cache = self._token_cache
        now = time.monotonic()
        if cache and now - cache["read_at"] < _TOKEN_REREAD:
            return cache["token"]  # type: ignore[no-any-return]
        try:
            token = self.token_file.read_text().strip()
        except OSError:
            # Keep the last good token (client-go does) or fall back to the inline one.
            return cache.get("token", self.token)  # type: ignore[no-any-return]
        cache.update(token=token, read_at=now)
        return token


def _private_dir() -> str:
    shm = "/dev/shm"
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None
    return tempfile.mkdtemp(prefix="navio-tls-", dir=base)   # mkdtemp makes it 0700


def _write_private(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _load_cert_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    # ssl can only load a certificate chain from files, so the key spends a moment in a
    # private directory that is removed whatever happens.
    tmp = _private_dir()
    try:
        cert_path, key_path = os.path.join(tmp, "client.crt"), os.path.join(tmp, "client.key")
        _write_private(cert_path, cert)
        _write_private(key_path, key)
        try:
            ctx.load_cert_chain(cert_path, key_path)
        except ssl.SSLError:
            raise KubeconfigError("client certificate or key is not valid PEM, or they do "
                                  "not match") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _named(entries: Any, name: str, what: str, body: str) -> dict[str, Any]:
    for entry in entries or ():
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(body)
            return value if isinstance(value, dict) else {}
    raise KubeconfigError(f"{what} {name!r} not found in kubeconfig")


def _resolve(base: Path, value: str) -> Path:
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else base / p


def _material(section: dict[str, Any], key: str, base: Path, what: str) -> bytes | None:
    """`<key>-data` (base64) or `<key>` (a file), data first, as clientcmd prefers it."""
    data = section.get(f"{key}-data")
    if data:
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise KubeconfigError(f"{what}: {key}-data is not valid base64") from None
    path = section.get(key)
    if path:
        try:
            return _resolve(base, str(path)).read_bytes()
        except OSError as exc:
            raise KubeconfigError(f"{what}: cannot read {key} file: {exc.strerror}") from None
    return None


def load_kubeconfig(path: str | os.PathLike[str], context: str | None = None) -> ClientConfig:
    """The configuration of `context` (default: current-context) in the kubeconfig at `path`."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise KubeconfigError(f"cannot read kubeconfig {path}: {exc.strerror}") from None
    except yaml.YAMLError:
        raise KubeconfigError(f"kubeconfig {path} is not valid YAML") from None
    if not isinstance(doc, dict):
        raise KubeconfigError(f"kubeconfig {path} is not a mapping")
    name = context or doc.get("current-context")
    if not name:
        raise KubeconfigError(f"kubeconfig {path} has no current-context")
    ctx = _named(doc.get("contexts"), name, "context", "context")
    cluster_name, user_name = ctx.get("cluster"), ctx.get("user")
    if not cluster_name:
        raise KubeconfigError(f"context {name!r} names no cluster")
    cluster = _named(doc.get("clusters"), cluster_name, "cluster", "cluster")
    user = _named(doc.get("users"), user_name, "user", "user") if user_name else {}
    base = path.parent
    if cluster.get("insecure-skip-tls-verify"):
        raise KubeconfigError(f"cluster {cluster_name!r}: insecure-skip-tls-verify is not "
                              "supported; give certificate-authority(-data)")
    for unsupported in ("exec", "auth-provider", "username", "password"):
        if user.get(unsupported):
            raise KubeconfigError(f"user {user_name!r}: {unsupported} is not supported")
    server = cluster.get("server")
    if not server:
        raise KubeconfigError(f"cluster {cluster_name!r} has no server")
    token_file = user.get("tokenFile")
    return ClientConfig(
        server=str(server).rstrip("/"),
        servers=_extension_servers(cluster, cluster_name),
        ca_data=_material(cluster, "certificate-authority", base, f"cluster {cluster_name!r}"),
        cert_data=_material(user, "client-certificate", base, f"user {user_name!r}"),
        key_data=_material(user, "client-key", base, f"user {user_name!r}"),
        token=user.get("token") or None,
        token_file=_resolve(base, str(token_file)) if token_file else None,
        tls_server_name=cluster.get("tls-server-name") or None,
        context=name,
    )


def split_servers(value: str) -> tuple[str, ...]:
    """`https://a:6443,https://b:6443` (a `--server` flag) as a tuple of URLs."""
    return tuple(s.strip().rstrip("/") for s in value.split(",") if s.strip())


def _extension_servers(cluster: dict[str, Any], name: str) -> tuple[str, ...]:
    for ext in cluster.get("extensions") or ():
        if isinstance(ext, dict) and ext.get("name") == SERVERS_EXTENSION:
            body = ext.get("extension") or {}
            servers = body.get("servers") if isinstance(body, dict) else None
            if not isinstance(servers, list) or not all(isinstance(s, str) for s in servers):
                raise KubeconfigError(f"cluster {name!r}: extension {SERVERS_EXTENSION} "
                                      "needs servers: [https://host:port, ...]")
            return tuple(s.rstrip("/") for s in servers)
    return ()


def in_cluster_config(sa_dir: Path = _SA_DIR) -> ClientConfig:
    """The configuration of a pod: KUBERNETES_SERVICE_HOST/PORT, the mounted service-account
    token (re-read as it rotates) and CA, as client-go's rest.InClusterConfig."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise KubeconfigError("not running in a cluster: KUBERNETES_SERVICE_HOST/PORT unset")
    if ":" in host:
        host = f"[{host}]"
    try:
        ca = (sa_dir / "ca.crt").read_bytes()
    except OSError as exc:
        raise KubeconfigError(f"cannot read service-account CA: {exc.strerror}") from None
    return ClientConfig(server=f"https://{host}:{port}", ca_data=ca,
                        token_file=sa_dir / "token", context="in-cluster")
