"""The connection to etcd: endpoints, TLS, the v3 gRPC stubs, and what a failure means.

Why these pieces and not a ready client: the etcd v3 API is gRPC; `aetcd` (pinned) is the
maintained asyncio client and ships the generated v3 stubs, which navio uses. Its `Client`
connects to one endpoint without TLS and hides watch progress notifications, both of which
navio needs, so the channel and the watch stream are navio's own (as kube's clientv3 has them):
- One gRPC channel over every endpoint (`--datastore etcd://a:2379,b:2379`), balanced
  round-robin; a member that stops answering is skipped and retried by gRPC itself.
- TLS with a client certificate when `--etcd-cafile/--etcd-certfile/--etcd-keyfile` are given;
  the key must be a 0600 file (navio's rule for every credential).
- Every call has a deadline; a call that fails for want of etcd (no quorum, no member
  reachable, timed out) raises `StoreUnavailable` with etcd's own message, which the API server
  returns as kube-apiserver does: a 500 Status whose message is etcd's error.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, TypeVar
from urllib.parse import urlsplit

import grpc
import grpc.aio
from aetcd import rpc

from navio.pki.privatefiles import check_private_file
from navio.storage.protocol import StorageError, StoreUnavailable

__all__ = ["EtcdConfig", "EtcdConnection", "StoreUnavailable", "parse_datastore", "rpc"]

T = TypeVar("T")

# gRPC's default receive limit (4 MiB) is below what one list page or watch response can be.
_MAX_MESSAGE = 512 << 20


@dataclass(frozen=True)
class EtcdConfig:
    endpoints: tuple[tuple[str, int], ...]
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = field(default=None, repr=False)
    timeout: float = 10.0          # per request (kube: --etcd request timeout is 10 s-ish)

    @property
    def tls(self) -> bool:
        return self.cafile is not None or self.certfile is not None

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise ValueError("etcd: no endpoints")
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("--etcd-certfile and --etcd-keyfile must be given together")


def parse_datastore(url: str, *, cafile: Path | None = None, certfile: Path | None = None,
                    keyfile: Path | None = None) -> EtcdConfig:
    """`etcd://host:port[,host:port…]` (or `https://` / `http://` endpoints, kube's
    `--etcd-servers` form, comma-separated) as an EtcdConfig."""
    endpoints: list[tuple[str, int]] = []
    scheme_tls = False
    rest = url
    if rest.startswith("etcd://"):
        rest = rest[len("etcd://"):]
    for item in rest.split(","):
        item = item.strip()
        if not item:
            continue
        if "://" not in item:
            item = "etcd://" + item
        parts = urlsplit(item)
        if parts.scheme not in ("etcd", "http", "https") or not parts.hostname:
            raise ValueError(f"datastore {url!r}: want etcd://host:port[,host:port...]")
        scheme_tls |= parts.scheme == "https"
        try:
            port = parts.port or 2379
        except ValueError:
            raise ValueError(f"datastore {url!r}: bad port in {item!r}") from None
        endpoints.append((parts.hostname, port))
    if scheme_tls and cafile is None:
        raise ValueError("https:// etcd endpoints need --etcd-cafile")
    return EtcdConfig(tuple(endpoints), cafile, certfile, keyfile)


def _target(endpoints: tuple[tuple[str, int], ...]) -> str:
    """A gRPC target over every endpoint: `ipv4:a:p,b:p` (names resolved now, once)."""
    addrs: list[str] = []
    for host, port in endpoints:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            ip = ipaddress.ip_address(infos[0][4][0])
        addrs.append(f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}")
    scheme = "ipv6" if all(a.startswith("[") for a in addrs) else "ipv4"
    return f"{scheme}:" + ",".join(addrs)


def _credentials(config: EtcdConfig) -> grpc.ChannelCredentials:
    key = cert = None
    if config.keyfile is not None and config.certfile is not None:
        check_private_file(config.keyfile)
        key = config.keyfile.read_bytes()
        cert = config.certfile.read_bytes()
    ca = config.cafile.read_bytes() if config.cafile is not None else None
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key,
                                        certificate_chain=cert)


class EtcdConnection:
    """The channel and stubs; `call` runs one unary RPC with the deadline and error mapping."""

    def __init__(self, config: EtcdConfig) -> None:
        self.config = config
        options: list[tuple[str, Any]] = [
            ("grpc.lb_policy_name", "round_robin"),
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.max_send_message_length", _MAX_MESSAGE),
            ("grpc.keepalive_time_ms", 10_000),
            ("grpc.keepalive_timeout_ms", 5_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ]
        target = _target(config.endpoints)
        if config.tls:
            # Certificates name the members by host name or IP; the target holds IPs, so
            # verify against the first endpoint's name (etcd certificates list them all).
            host = config.endpoints[0][0]
            options.append(("grpc.ssl_target_name_override", host))
            self.channel = grpc.aio.secure_channel(target, _credentials(config), options)
        else:
            self.channel = grpc.aio.insecure_channel(target, options)
        self.kv = rpc.KVStub(self.channel)
        self.watch = rpc.WatchStub(self.channel)
        self.maintenance = rpc.MaintenanceStub(self.channel)

    async def call(self, rpc_call: Awaitable[T]) -> T:
        try:
            return await rpc_call
        except grpc.aio.AioRpcError as exc:
            raise unavailable(exc) from None

    def deadline(self) -> dict[str, Any]:
        """Keyword arguments of every unary call: its deadline, and waiting for a member."""
        return {"timeout": self.config.timeout, "wait_for_ready": True}

    async def close(self) -> None:
        await self.channel.close(grace=None)


def unavailable(exc: grpc.aio.AioRpcError) -> StorageError:
    """A gRPC failure as navio's storage error, with etcd's words."""
    code = exc.code()
    details = exc.details() or ""
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return StoreUnavailable(details if details.startswith("etcdserver")
                                else "context deadline exceeded")
    if code == grpc.StatusCode.CANCELLED:
        return StoreUnavailable("context canceled")
    if code == grpc.StatusCode.UNAVAILABLE and not details.startswith("etcdserver"):
        return StoreUnavailable(f"etcd unavailable: {details}" if details
                                else "etcd unavailable")
    return StoreUnavailable(details or code.name.lower())
