"""`navio server`: a whole single-node cluster in one command.

Starts the API server on embedded SQLite, creating on first start the cluster CA, the serving
certificate and an admin kubeconfig, so that `KUBECONFIG=<dir>/admin.kubeconfig kubectl get ns`
works at once. Stops cleanly on SIGINT/SIGTERM: intake stops first, then components, then the
store (every acknowledged write is already durable).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from navio.api.registry import default_registry
from navio.apiserver import gctune, nodeproxy, revocation
from navio.apiserver.app import ApiServer, tls_context
from navio.apiserver.audit import Auditor
from navio.apiserver.auditpolicy import load_policy
from navio.apiserver.podsecurityconfig import load_admission_config
from navio.apiserver.bootstrap import ensure_bootstrap_objects
from navio.apiserver import builtincrds
from navio.apiserver.crds import CustomResourceDefinitions
from navio.apiserver.tokenauth import install_token_authentication
from navio.apiserver.resources import Resources
from navio.apiserver.masterleases import MasterLeases
from navio.apiserver.sharedallocations import follow_shared_allocations
from navio.cli.flags import duration
from navio.cli.logs import setup_logging
from navio.cli.components import Component, Supervisor
from navio.cli.datastore import DatastoreSpec, add_datastore_flags, open_datastore
from navio.pki.certs import CertificateAuthority, CertPair, load_or_create_ca
from navio.pki.kubeconfig import write_kubeconfig
from navio.pki.privatefiles import KeyFileError, check_private_files
from navio.storage.encryption import EncryptedStore
from navio.storage.protocol import StorageError
from navio.storage.encryptionconfig import load_or_create_config

__all__ = ["add_parser", "add_apiserver_flags", "run_server", "ServerConfig"]

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
    cluster_cidr: str = "10.42.0.0/16"    # pod network; node IPAM cuts it into /24s
    cluster_dns: str = ""                 # "": the service CIDR's 10th address (10.43.0.10)
    node_netns: str | None = None         # the local node's pods in this netns (tests)
    resolv_conf: str | None = None        # the agent's --resolv-conf (None: its default)
    proxy_mode: str = "auto"
    runtime: str = "auto"                 # the local node's container runtime
    kubelet_port: int = 10250             # the local node's kubelet API (0: any free port)
    agent: bool = True
    verbosity: int = 0
    single_process: bool = False
    disabled: tuple[str, ...] = ()
    encryption_config: Path | None = None   # default: <data>/pki/encryption-config.yaml
    audit_policy_file: Path | None = None   # default: Metadata for everything
    audit_log_path: Path | None = None      # default: <data>/logs/audit.log
    audit_log_maxsize: int = 100            # MB before rotation (CIS 1.2.19)
    audit_log_maxbackup: int = 10           # rotated files kept; 0: any number (CIS 1.2.18)
    audit_log_maxage: int = 30              # days rotated files are kept; 0: any (CIS 1.2.17)
    admission_config_file: Path | None = None   # AdmissionConfiguration (PodSecurity)
    compaction_interval: float = 300.0      # store history kept at least this long; 0: never
    datastore: str = ""                     # sqlite:PATH or etcd://host:port[,...]; "": sqlite
    etcd_cafile: Path | None = None
    etcd_certfile: Path | None = None
    etcd_keyfile: Path | None = None
    advertise_address: str = ""             # the address in the kubernetes Endpoints

    def __post_init__(self) -> None:
        if not 0 <= self.port < 65536:
            raise ValueError(f"--port {self.port}: not a valid TCP port")
        if not 0 <= self.kubelet_port < 65536:
            raise ValueError(f"--kubelet-port {self.kubelet_port}: not a valid TCP port")
        self.datastore_spec()   # a bad --datastore fails here, before anything starts
        if self.advertise_address:
            ipaddress.ip_address(self.advertise_address)   # ValueError: not an IP address
        net = ipaddress.ip_network(self.service_cidr)
        for flag in ("maxsize", "maxbackup", "maxage"):
            if getattr(self, f"audit_log_{flag}") < 0:
                raise ValueError(f"--audit-log-{flag} must not be negative")
        if self.cluster_dns and ipaddress.ip_address(self.cluster_dns) not in net:
            raise ValueError(f"--cluster-dns {self.cluster_dns} is not in {self.service_cidr}")

    def datastore_spec(self) -> DatastoreSpec:
        return DatastoreSpec(self.datastore, cafile=self.etcd_cafile,
                             certfile=self.etcd_certfile, keyfile=self.etcd_keyfile)

    @property
    def dns_ip(self) -> str:
        """The cluster DNS Service address: --cluster-dns, or the service CIDR's 10th."""
        return self.cluster_dns or str(ipaddress.ip_network(self.service_cidr)[10])


def add_parser(sub: Any) -> None:
    p = sub.add_parser("server", help="run a single-node cluster (API server, controllers, "
                       "scheduler and a local node)")
    add_apiserver_flags(p)
    p.add_argument("--cluster-cidr", default="10.42.0.0/16",
                   help="the cluster's pod network; each node is given a /24 of it")
    p.add_argument("--cluster-dns", default="",
                   help="the cluster DNS Service address (default: the service range's 10th "
                        "address, 10.43.0.10); the local node answers DNS there")
    p.add_argument("--node-netns", default=None,
                   help="put the local node's pod network in this named netns (/run/netns) "
                        "instead of the host's (tests: a namespace with no route out)")
    p.add_argument("--resolv-conf", default=None,
                   help="the resolv.conf the local node gives dnsPolicy Default pods and "
                        "whose nameservers cluster DNS forwards to (default /etc/resolv.conf)")
    p.add_argument("--kubelet-port", type=int, default=10250,
                   help="the local node's kubelet API port on 127.0.0.1 (0 picks a free one)")
    p.add_argument("--proxy-mode", default="auto",
                   choices=("auto", "nftables", "iptables", "userspace", "none"),
                   help="the local node's Service proxy (default: nftables when root, "
                        "else userspace)")
    p.add_argument("--runtime", choices=("auto", "oci", "process", "sim"), default="auto",
                   help="the local node's container runtime (default auto: oci when runc is "
                        "installed and this runs as root, else process)")
    p.add_argument("--no-agent", dest="agent", action="store_false",
                   help="run the control plane only, without a local node")
    p.add_argument("--single-process", action="store_true",
                   help="run every component in this process (least memory) instead of one "
                        "child process each (uses every core)")
    p.add_argument("--disable", default="",
                   help="comma-separated components not to run (controller-manager, "
                        "scheduler, agent)")
    p.set_defaults(run=_run)


def add_apiserver_flags(p: Any) -> None:
    """The flags `navio server` and `navio apiserver` share."""
    p.add_argument("--data-dir", type=Path, default=_default_data_dir(),
                   help="where state, certificates and the admin kubeconfig live "
                        "(default: %(default)s)")
    p.add_argument("--port", "--secure-port", dest="port", type=int, default=6443,
                   help="HTTPS port of the API server (0 picks a free one; default 6443)")
    p.add_argument("--bind-address", default="127.0.0.1")
    p.add_argument("--advertise-address", default="",
                   help="the IP address this API server is reached at, listed in the "
                        "default/kubernetes Endpoints (default: --bind-address); with a "
                        "shared etcd every live API server's address is listed there")
    p.add_argument("--service-cluster-ip-range", dest="service_cidr", default="10.43.0.0/16")
    p.add_argument("--encryption-provider-config", dest="encryption_config", type=Path,
                   help="EncryptionConfiguration with the keys secrets are encrypted with "
                        "(default: DATA/pki/encryption-config.yaml, made on first start)")
    p.add_argument("--audit-policy-file", type=Path,
                   help="audit.k8s.io/v1 Policy (default: every request at Metadata)")
    p.add_argument("--audit-log-path", type=Path,
                   help="audit log, JSON lines (default: DATA/logs/audit.log)")
    p.add_argument("--audit-log-maxsize", type=int, default=100,
                   help="maximum size in megabytes of the audit log file before it gets "
                        "rotated (default 100; 0: 100)")
    p.add_argument("--audit-log-maxbackup", type=int, default=10,
                   help="maximum number of old audit log files to retain (default 10; 0: no "
                        "limit)")
    p.add_argument("--audit-log-maxage", type=int, default=30,
                   help="maximum number of days to retain old audit log files based on the "
                        "timestamp encoded in their filename (default 30; 0: no limit)")
    p.add_argument("--admission-control-config-file", dest="admission_config_file", type=Path,
                   help="AdmissionConfiguration (apiserver.config.k8s.io/v1) configuring the "
                        "PodSecurity plugin's defaults and exemptions")
    p.add_argument("--etcd-compaction-interval", "--compaction-interval",
                   dest="compaction_interval", type=duration, default=300.0,
                   help="compact the store's history this often, keeping at least one "
                        "interval of it for watches to resume from (kube's flag; default 5m, "
                        "0 never)")
    p.add_argument("--v", dest="verbosity", type=int, default=0, help="log verbosity (klog)")
    add_datastore_flags(p)


def _run(args: argparse.Namespace) -> int:
    try:
        config = _config_from_args(args)
    except ValueError as exc:
        raise SystemExit(f"navio server: {exc}") from None
    return run_server(config)


def run_server(config: ServerConfig) -> int:
    setup_logging(config.verbosity)
    if config.audit_policy_file is not None:
        try:
            load_policy(config.audit_policy_file)
        except ValueError as exc:
            print(f"navio server: {exc}", file=sys.stderr, flush=True)
            return 1
    if config.admission_config_file is not None:
        try:
            load_admission_config(config.admission_config_file)
        except ValueError as exc:
            print(f"navio server: {exc}", file=sys.stderr, flush=True)
            return 1
    try:
        import uvloop
        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; tolerate its absence
        pass
    try:
        asyncio.run(serve(config))
    except KeyboardInterrupt:
        pass
    except KeyFileError as exc:
        print(f"navio server: {exc}", file=sys.stderr, flush=True)
        return 1
    except StorageError as exc:
        print(f"navio server: datastore {config.datastore_spec().describe()}: {exc}",
              file=sys.stderr, flush=True)
        return 1
    return 0


def _config_from_args(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(data_dir=args.data_dir, bind_address=args.bind_address,
                        port=args.port, service_cidr=args.service_cidr,
                        cluster_cidr=args.cluster_cidr,
                        cluster_dns=args.cluster_dns, node_netns=args.node_netns,
                        resolv_conf=args.resolv_conf, proxy_mode=args.proxy_mode,
                        runtime=args.runtime,
                        kubelet_port=args.kubelet_port, agent=args.agent,
                        verbosity=args.verbosity, single_process=args.single_process,
                        disabled=tuple(d.strip() for d in args.disable.split(",")
                                       if d.strip()),
                        encryption_config=args.encryption_config,
                        audit_policy_file=args.audit_policy_file,
                        audit_log_path=args.audit_log_path,
                        audit_log_maxsize=args.audit_log_maxsize,
                        audit_log_maxbackup=args.audit_log_maxbackup,
                        audit_log_maxage=args.audit_log_maxage,
                        admission_config_file=args.admission_config_file,
                        compaction_interval=args.compaction_interval,
                        datastore=args.datastore, etcd_cafile=args.etcd_cafile,
                        etcd_certfile=args.etcd_certfile, etcd_keyfile=args.etcd_keyfile,
                        advertise_address=args.advertise_address)


def _server_names(bind: str, service_cidr: str, advertise: str = "") -> tuple[str, ...]:
    import ipaddress
    first = str(ipaddress.ip_network(service_cidr).network_address + 1)
    names = {"127.0.0.1", "::1", "localhost", bind, first, socket.gethostname(), "kubernetes",
             "kubernetes.default", "kubernetes.default.svc",
             "kubernetes.default.svc.cluster.local"}
    names.add(advertise or bind)
    names -= {"0.0.0.0", ""}
    return tuple(sorted(names))


async def serve(config: ServerConfig) -> None:
    data = config.data_dir
    data.mkdir(parents=True, exist_ok=True)
    os.chmod(data, 0o700)
    pki = data / "pki"
    encryption_config = config.encryption_config or pki / "encryption-config.yaml"
    # Refuse credentials others can read (keys, kubeconfigs, the encryption keys) before
    # reading any of them.
    spec = config.datastore_spec()
    check_private_files([*sorted(pki.glob("*.key")), *sorted(data.glob("*.kubeconfig")),
                         encryption_config,
                         *([config.etcd_keyfile] if config.etcd_keyfile else [])])
    ca = load_or_create_ca(pki)
    serving = pki / "apiserver.crt"
    if not serving.exists() or not (pki / "apiserver.key").exists():
        ca.issue(pki, "apiserver", cn="kube-apiserver", client=False,
                 server_names=_server_names(config.bind_address, config.service_cidr,
                                            config.advertise_address))
    admin_pair = _client_cert(ca, pki, "admin", "kubernetes-admin", ("system:masters",))
    load_or_create_config(encryption_config)   # a bad key file fails before the store opens
    backend = await open_datastore(spec, data)
    log.info("datastore opened", extra={"datastore": spec.describe()})
    if config.compaction_interval > 0:
        backend.start_compactor(config.compaction_interval)
    store = EncryptedStore(backend, encryption_config)
    store.start()
    resources = Resources(default_registry(), store, service_cidr=config.service_cidr)
    if config.admission_config_file is not None:
        resources.pod_security = load_admission_config(config.admission_config_file)
    await resources.start()
    # A shared store (etcd): other API servers allocate cluster IPs and node ports too.
    shared = follow_shared_allocations(resources) if spec.is_etcd else None
    repair = resources.claims.start_repair()   # claims left by a server that died mid-create
    api = ApiServer(resources)
    crds = CustomResourceDefinitions(resources, on_change=api.invalidate_openapi)
    await builtincrds.install(resources)     # navio's own kinds (PodGroup) are CRDs
    await crds.start()   # the kinds of stored CRDs are served before the first request
    Auditor(config.audit_log_path or data / "logs" / "audit.log",
            load_policy(config.audit_policy_file) if config.audit_policy_file else None,
            max_size=config.audit_log_maxsize, max_backups=config.audit_log_maxbackup,
            max_age=config.audit_log_maxage).install(api.app)
    revocation.install(api.app, pki / "revoked-serials")   # `navio cert revoke` writes it
    install_token_authentication(api.app, resources, pki)
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
    advertise = config.advertise_address or host
    # A shared store (etcd): every live API server's address is in the kubernetes Endpoints.
    await ensure_bootstrap_objects(resources, advertise, port, dns_ip=config.dns_ip,
                                   endpoints=not spec.is_etcd)
    leases = MasterLeases(resources, advertise, port).start() \
        if spec.is_etcd and not ipaddress.ip_address(advertise).is_loopback else None
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
        if leases is not None:
            await leases.stop()
        await supervisor.stop()
        await site.stop()
        await runner.cleanup()
        await crds.stop()
        repair.cancel()
        await asyncio.wait({repair})
        if shared is not None:
            shared.cancel()
            await asyncio.wait({shared})
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
        signing = {"cluster-signing-cert-file": ca.pair.cert,
                   "cluster-signing-key-file": ca.pair.key, "root-ca-file": ca.pair.cert,
                   "cluster-cidr": config.cluster_cidr}
        out.append(Component(
            "controller-manager",
            ("controller-manager", "--kubeconfig", str(kc), "--leader-elect", "false",
             *(a for k, v in signing.items() for a in (f"--{k}", str(v))), *verbosity),
            lambda: run_controllers(ControllerManagerConfig(kubeconfig=kc, leader_elect=False,
                                                            options=dict(signing)))))
    if config.agent and "agent" not in config.disabled:
        from navio.cli.agent import default_node_name, local_agent_component
        node = default_node_name()
        kc_n = kubeconfig_for("kubelet", f"system:node:{node}", ("system:nodes",))
        # Cluster DNS is served by the local node (it needs root for port 53 and for the pod
        # network that reaches it); without root pods keep dnsPolicy Default's resolv.conf.
        dns = (config.dns_ip,) if os.geteuid() == 0 else ()
        # The local node's pod CIDR comes from node IPAM like every node's, when this server
        # runs the controller manager; without it, the cluster CIDR's first /24.
        cluster = ipaddress.ip_network(config.cluster_cidr)
        pod_cidr = (None if "controller-manager" not in config.disabled else
                    str(next(cluster.subnets(new_prefix=max(24, cluster.prefixlen)))))
        agent = local_agent_component(data_dir=config.data_dir, ca=ca, kubeconfig=kc_n,
                                      node_name=node, port=config.kubelet_port,
                                      cluster_dns=dns, serve_dns=bool(dns),
                                      service_cidr=config.service_cidr,
                                      cluster_cidr=config.cluster_cidr, pod_cidr=pod_cidr,
                                      node_netns=config.node_netns,
                                      resolv_conf=config.resolv_conf,
                                      proxy_mode=config.proxy_mode,
                                      runtime=config.runtime,
                                      verbosity=config.verbosity)
        out.append(agent)   # (the runtime never forks the agent: in-process is safe)
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
