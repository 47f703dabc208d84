"""`navio server`: a whole single-node cluster in one command.

Starts the API server on embedded SQLite, creating on first start the cluster CA, the serving
certificate and an admin kubeconfig, so that `KUBECONFIG=<dir>/admin.kubeconfig kubectl get ns`
works at once. Stops cleanly on SIGINT/SIGTERM: intake stops first, then components, then the
store (every acknowledged write is already durable).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from navio.api.registry import default_registry
from navio.apiserver.app import ApiServer, ApiServerConfig, tls_context
from navio.apiserver.bootstrap import ensure_bootstrap_objects
from navio.apiserver.resources import Resources
from navio.cli.logs import setup_logging
from navio.pki.certs import load_or_create_ca
from navio.pki.kubeconfig import write_kubeconfig
from navio.storage.sqlite import SQLiteStore

__all__ = ["add_parser", "ServerConfig"]

log = logging.getLogger("navio.server")


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                           "share")
    return Path(base) / "navio"


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path
    bind_address: str = "127.0.0.1"
    port: int = 6443
    service_cidr: str = "10.43.0.0/16"
    agent: bool = True
    verbosity: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.port < 65536:
            raise ValueError(f"--port {self.port}: not a valid TCP port")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("server", help="run a single-node cluster (API server, controllers, "
                       "scheduler and a local node)")
    p.add_argument("--data-dir", type=Path, default=_default_data_dir(),
                   help="where state, certificates and the admin kubeconfig live "
                        "(default: %(default)s)")
    p.add_argument("--port", "--secure-port", dest="port", type=int, default=6443,
                   help="HTTPS port of the API server (0 picks a free one; default 6443)")
    p.add_argument("--bind-address", default="127.0.0.1")
    p.add_argument("--service-cluster-ip-range", dest="service_cidr", default="10.43.0.0/16")
    p.add_argument("--no-agent", dest="agent", action="store_false",
                   help="run the control plane only, without a local node")
    p.add_argument("--v", dest="verbosity", type=int, default=0, help="log verbosity (klog)")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    config = ServerConfig(data_dir=args.data_dir, bind_address=args.bind_address,
                          port=args.port, service_cidr=args.service_cidr, agent=args.agent,
                          verbosity=args.verbosity)
    setup_logging(config.verbosity)
    try:
        import uvloop
        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; tolerate its absence
        pass
    try:
        asyncio.run(serve(config))
    except KeyboardInterrupt:
        pass
    return 0


def _server_names(bind: str, service_cidr: str) -> tuple[str, ...]:
    import ipaddress
    first = str(ipaddress.ip_network(service_cidr).network_address + 1)
    names = {"127.0.0.1", "::1", "localhost", bind, first, socket.gethostname(), "kubernetes",
             "kubernetes.default", "kubernetes.default.svc",
             "kubernetes.default.svc.cluster.local"}
    names.discard("0.0.0.0")
    return tuple(sorted(names))


async def serve(config: ServerConfig) -> None:
    data = config.data_dir
    data.mkdir(parents=True, exist_ok=True)
    os.chmod(data, 0o700)
    pki = data / "pki"
    ca = load_or_create_ca(pki)
    serving = pki / "apiserver.crt"
    if not serving.exists() or not (pki / "apiserver.key").exists():
        ca.issue(pki, "apiserver", cn="kube-apiserver", client=False,
                 server_names=_server_names(config.bind_address, config.service_cidr))
    admin = pki / "admin.crt"
    if admin.exists() and (pki / "admin.key").exists():
        from navio.pki.certs import CertPair
        admin_pair = CertPair(admin, pki / "admin.key")
    else:
        admin_pair = ca.issue(pki, "admin", cn="kubernetes-admin", orgs=("system:masters",))

    store = await SQLiteStore.open(data / "db" / "state.db")
    resources = Resources(default_registry(), store, service_cidr=config.service_cidr)
    await resources.start()
    api = ApiServer(ApiServerConfig(bind_address=config.bind_address,
                                    secure_port=config.port, service_cidr=config.service_cidr),
                    resources)
    runner = web.AppRunner(api.app, handle_signals=False, access_log=None,
                           handler_cancellation=True, shutdown_timeout=5.0)
    await runner.setup()
    ssl_ctx = tls_context(pki / "apiserver.crt", pki / "apiserver.key", ca.pair.cert)
    site = web.TCPSite(runner, config.bind_address, config.port, ssl_context=ssl_ctx,
                       backlog=1024, reuse_address=True)
    await site.start()
    port = _bound_port(site) or config.port
    host = "127.0.0.1" if config.bind_address in ("0.0.0.0", "127.0.0.1") else \
        config.bind_address
    url = f"https://{host}:{port}"
    await ensure_bootstrap_objects(resources, host, port)
    kubeconfig = data / "admin.kubeconfig"
    write_kubeconfig(kubeconfig, server=url, ca_cert=ca.pair.cert, client=admin_pair,
                     user="kubernetes-admin")
    api.ready = True
    log.info("API server ready", extra={"url": url, "kubeconfig": str(kubeconfig)})
    print(f"navio: API server listening on {url}", flush=True)
    print(f"navio: admin kubeconfig written to {kubeconfig}", flush=True)
    print(f"navio: try: KUBECONFIG={kubeconfig} kubectl get namespaces", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        api.ready = False
        await site.stop()
        await runner.cleanup()
        await resources.stop()
        await store.close()
        log.info("stopped")


def _bound_port(site: web.TCPSite) -> int | None:
    server = site._server  # aiohttp keeps the asyncio server here
    if server is None or not getattr(server, "sockets", None):
        return None
    return int(server.sockets[0].getsockname()[1])
