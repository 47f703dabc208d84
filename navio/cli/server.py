"""`navio server`: a whole single-node cluster in one command.

Starts the API server on embedded SQLite, creating on first start the cluster CA, the serving
certificate and an admin kubeconfig, so that `KUBECONFIG=<dir>/admin.kubeconfig kubectl get ns`
works at once. Stops cleanly on SIGINT/SIGTERM: intake stops first, then components, then the
store (every acknowledged write is already durable).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from navio.api.registry import default_registry
from navio.apiserver import gctune, nodeproxy
from navio.apiserver.app import ApiServer, tls_context
from navio.apiserver.bootstrap import ensure_bootstrap_objects
from navio.apiserver.resources import Resources
from navio.cli.logs import setup_logging
from navio.cli.components import Component, Supervisor
from navio.pki.certs import CertificateAuthority, CertPair, load_or_create_ca
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
    single_process: bool = False
    disabled: tuple[str, ...] = ()

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
    p.add_argument("--single-process", action="store_true",
                   help="run every component in this process (least memory) instead of one "
                        "child process each (uses every core)")
    p.add_argument("--disable", default="",
                   help="comma-separated components not to run (controller-manager, "
                        "scheduler, agent)")
    p.add_argument("--v", dest="verbosity", type=int, default=0, help="log verbosity (klog)")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    config = ServerConfig(data_dir=args.data_dir, bind_address=args.bind_address,
                          port=args.port, service_cidr=args.service_cidr, agent=args.agent,
                          verbosity=args.verbosity, single_process=args.single_process,
                          disabled=tuple(d.strip() for d in args.disable.split(",")
                                         if d.strip()))
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
    admin_pair = _client_cert(ca, pki, "admin", "kubernetes-admin", ("system:masters",))

    store = await SQLiteStore.open(data / "db" / "state.db")
    resources = Resources(default_registry(), store, service_cidr=config.service_cidr)
    await resources.start()
    api = ApiServer(resources)
    # The API server reaches kubelets (logs, exec, port-forward) with its own client cert.
    nodeproxy.configure_with_ca(api.app, ca)
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
    components = _components(config, ca, pki, url)
    supervisor = Supervisor(components, single_process=config.single_process,
                            log_dir=data / "logs")
    supervisor.start()
    gctune.tune_for_serving()
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
        await supervisor.stop()
        await site.stop()
        await runner.cleanup()
        await resources.stop()
        await store.close()
        log.info("stopped")


def _client_cert(ca: CertificateAuthority, pki: Path, stem: str, cn: str,
                 orgs: tuple[str, ...] = ()) -> CertPair:
    pair = CertPair(pki / f"{stem}.crt", pki / f"{stem}.key")
    if pair.cert.exists() and pair.key.exists():
        return pair
    return ca.issue(pki, stem, cn=cn, orgs=orgs)


def _components(config: ServerConfig, ca: CertificateAuthority, pki: Path,
                url: str) -> list[Component]:
    """The components this server runs beside the API server, each with its own identity."""
    from navio.controllers.manager import ControllerManagerConfig
    from navio.controllers.manager import run as run_controllers

    def kubeconfig_for(stem: str, cn: str, orgs: tuple[str, ...] = ()) -> Path:
        pair = _client_cert(ca, pki, stem, cn, orgs)
        path = config.data_dir / f"{stem}.kubeconfig"
        write_kubeconfig(path, server=url, ca_cert=ca.pair.cert, client=pair, user=cn)
        return path

    verbosity = ("--v", str(config.verbosity))
    out: list[Component] = []
    if "controller-manager" not in config.disabled:
        kc = kubeconfig_for("controller-manager", "system:kube-controller-manager")
        out.append(Component(
            "controller-manager",
            ("controller-manager", "--kubeconfig", str(kc), "--leader-elect", "false",
             *verbosity),
            lambda: run_controllers(ControllerManagerConfig(kubeconfig=kc,
                                                            leader_elect=False))))
    if config.agent and "agent" not in config.disabled:
        from navio.cli.agent import default_node_name, local_agent_component
        node = default_node_name()
        kc_n = kubeconfig_for("kubelet", f"system:node:{node}", ("system:nodes",))
        agent = local_agent_component(data_dir=config.data_dir, ca=ca, kubeconfig=kc_n,
                                      node_name=node, verbosity=config.verbosity)
        # Always its own process: creating pod network namespaces forks the agent, and the
        # fork's signals would reach the server's own loop (see NOTES.md).
        out.append(dataclasses.replace(agent, in_process=None))
    if "scheduler" not in config.disabled:
        kc_s = kubeconfig_for("scheduler", "system:kube-scheduler")

        async def run_scheduler() -> None:
            from navio.scheduler import SchedulerConfig
            from navio.scheduler import run as run_sched
            await run_sched(SchedulerConfig(kubeconfig=kc_s, leader_elect=False))
        out.append(Component(
            "scheduler",
            ("scheduler", "--kubeconfig", str(kc_s), "--leader-elect", "false", *verbosity),
            run_scheduler))
    return out


def _bound_port(site: web.TCPSite) -> int | None:
    server = site._server  # aiohttp keeps the asyncio server here
    if server is None or not getattr(server, "sockets", None):
        return None
    return int(server.sockets[0].getsockname()[1])
