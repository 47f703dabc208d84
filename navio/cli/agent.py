"""`navio agent`: the node agent (kubelet) — registers a Node and runs the pods bound to it.

Flags follow the kubelet's where it has one (`--kubeconfig`, `--node-ip`, `--address`,
`--port=10250`, `--root-dir`, `--tls-cert-file`, `--tls-private-key-file`,
`--client-ca-file`, `--cluster-dns`, `--cluster-domain`, `--resolv-conf`, `--max-pods`,
`--node-labels`, `--node-status-update-frequency`, `--v`). Credentials only as files.
The agent also hosts this node's Service data plane (nodeservices.py): the proxy
(`--proxy-mode`, kube-proxy's flag) and, with `--serve-cluster-dns`, the node-local cluster DNS.

Joining with a bootstrap token: `--server URL --token-file F --ca-file CA` (TLS bootstrap,
see navio.kubelet.bootstrap).

Until `navio main` registers this subcommand it also runs as `python -m navio.cli.agent`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from navio.cli.components import Component
from navio.cli.flags import duration, refuse_shared_credentials
from navio.cli.logs import setup_logging
from navio.cli.nodeservices import PROXY_MODES, NodeServices, run_node_services
from navio.kubelet.config import AgentConfig, default_node_name, default_root_dir
from navio.pki.certs import CertificateAuthority
from navio.pki.kubeletclient import ensure_kubelet_serving_cert

__all__ = ["add_parser", "config_from_args", "node_services_from_args",
           "local_agent_component", "main"]

_TOKEN_NOTE = ("join with a bootstrap token (`navio token create --output-file F`): a file "
               "holding it, read once; the agent then submits a CSR, waits for its "
               "certificate and writes <root-dir>/kubelet.kubeconfig (or --kubeconfig)")


def _labels(text: str) -> tuple[tuple[str, str], ...]:
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"invalid label {part!r} (want key=value)")
        out.append((key, value))
    return tuple(out)


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", type=Path, help="credentials to reach the API server")
    p.add_argument("--server", help="API server URL, or several comma-separated (an HA "
                   "control plane: the agent fails over between them; with --token-file)")
    p.add_argument("--token-file", type=Path, help=_TOKEN_NOTE)
    p.add_argument("--ca-file", type=Path,
                   help="the cluster CA certificate (public; <server data dir>/pki/ca.crt) "
                        "that the API server's certificate must chain to when joining")
    p.add_argument("--ca-cert-hash", help="sha256:<hex> of the CA's public key (kubeadm's "
                                          "discovery hash, printed by `navio token create "
                                          "--print-join-command`): --ca-file must match it")
    p.add_argument("--node-name", "--hostname-override", dest="node_name",
                   default=default_node_name(), help="this node's name (default: hostname)")
    p.add_argument("--root-dir", type=Path, default=default_root_dir(),
                   help="the agent's state: pods, volumes, runtime records (default: "
                        "%(default)s)")
    p.add_argument("--runtime", choices=("process", "sim"), default="process",
                   help="process: containers are host processes (namespaces when root); "
                        "sim: nothing runs, containers are reported running")
    p.add_argument("--pod-cidr", default="",
                   help="this node's pod IP range (default: the one the control plane "
                        "assigns the Node, spec.podCIDR)")
    p.add_argument("--cluster-cidr", default="10.42.0.0/16")
    p.add_argument("--service-cluster-ip-range", dest="service_cidr", default="10.43.0.0/16")
    p.add_argument("--node-netns", help="named netns (/run/netns) holding the pods' bridge "
                                        "(tests: a node namespace with no route out)")
    p.add_argument("--node-ip", help="the node's InternalIP (default: the default route's "
                                     "interface address)")
    p.add_argument("--address", default="0.0.0.0", help="kubelet API bind address")
    p.add_argument("--port", type=int, default=10250, help="kubelet API port (0: any free)")
    p.add_argument("--tls-cert-file", type=Path)
    p.add_argument("--tls-private-key-file", type=Path)
    p.add_argument("--client-ca-file", type=Path,
                   help="CA of the client certificates allowed on the kubelet API (default: "
                        "the kubeconfig's cluster CA)")
    p.add_argument("--cluster-dns", default="", help="comma-separated DNS server IPs")
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--resolv-conf", default="/etc/resolv.conf",
                   help='the host resolv.conf pods with dnsPolicy Default get ("" for none)')
    p.add_argument("--max-pods", type=int, default=110)
    p.add_argument("--node-labels", type=_labels, default=(), help="key=value,...")
    p.add_argument("--node-status-update-frequency", type=duration, default=10.0)
    p.add_argument("--node-status-report-frequency", type=duration, default=60.0)
    p.add_argument("--sync-frequency", type=duration, default=60.0)
    p.add_argument("--node-lease-duration-seconds", type=int, default=40)
    p.add_argument("--cgroup-parent", default="/navio")
    p.add_argument("--no-isolation", dest="isolation", action="store_const", const=False,
                   default=None, help="process runtime: no namespaces/cgroups even as root")
    p.add_argument("--proxy-mode", choices=PROXY_MODES, default="auto",
                   help="the node's Service proxy: auto (nftables when root, else userspace), "
                        "nftables, iptables, userspace, or none")
    p.add_argument("--serve-cluster-dns", action="store_true",
                   help="answer cluster DNS on the --cluster-dns addresses on this node")
    p.add_argument("--v", dest="verbosity", type=int, default=0, help="log verbosity (klog)")


def node_services_from_args(args: argparse.Namespace) -> NodeServices:
    return NodeServices(proxy_mode=args.proxy_mode, serve_dns=args.serve_cluster_dns)


def config_from_args(args: argparse.Namespace) -> AgentConfig:
    return AgentConfig(
        node_name=args.node_name, kubeconfig=args.kubeconfig, server=args.server,
        token_file=args.token_file, ca_file=args.ca_file, ca_cert_hash=args.ca_cert_hash,
        root_dir=args.root_dir,
        runtime=args.runtime,
        pod_cidr=args.pod_cidr or None, cluster_cidr=args.cluster_cidr,
        service_cidr=args.service_cidr,
        node_netns=args.node_netns, node_ip=args.node_ip, address=args.address, port=args.port,
        tls_cert_file=args.tls_cert_file, tls_private_key_file=args.tls_private_key_file,
        client_ca_file=args.client_ca_file,
        cluster_dns=tuple(x.strip() for x in args.cluster_dns.split(",") if x.strip()),
        cluster_domain=args.cluster_domain,
        resolv_conf=Path(args.resolv_conf) if args.resolv_conf else None,
        max_pods=args.max_pods, node_labels=args.node_labels,
        node_status_update_frequency=args.node_status_update_frequency,
        node_status_report_frequency=args.node_status_report_frequency,
        sync_frequency=args.sync_frequency,
        node_lease_duration_seconds=args.node_lease_duration_seconds,
        cgroup_parent=args.cgroup_parent, isolation=args.isolation, verbosity=args.verbosity)


def _run(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
        services = node_services_from_args(args)
        if services.serve_dns and not config.cluster_dns:
            raise ValueError("--serve-cluster-dns needs --cluster-dns")
        if services.proxy_mode == "userspace" and config.node_netns:
            raise ValueError("--proxy-mode userspace cannot serve a --node-netns")
    except ValueError as exc:
        raise SystemExit(f"navio agent: {exc}") from None
    refuse_shared_credentials(config.kubeconfig, config.tls_private_key_file,
                              config.token_file)
    setup_logging(config.verbosity)
    try:
        import uvloop
        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency
        pass
    from navio.kubelet.bootstrap import BootstrapError
    try:
        asyncio.run(_serve(config, services))
    except BootstrapError as exc:
        raise SystemExit(f"navio agent: {exc}") from None
    return 0


async def _agent_and_services(config: AgentConfig, services: NodeServices) -> None:
    """The kubelet, then — once it has registered the node — the node's proxy/DNS beside it
    (so that they do not slow the node's first Ready); either failing ends both."""
    from navio.kubelet.agent import run
    ready = asyncio.Event()
    effective: list[AgentConfig] = []

    def on_ready(agent: Any) -> None:
        # The agent's own config: a joining agent has its kubeconfig only once it joined.
        effective.append(agent.config)
        ready.set()
    tasks = [asyncio.ensure_future(run(config, on_ready=on_ready))]
    waiter = asyncio.ensure_future(ready.wait())
    try:
        await asyncio.wait([tasks[0], waiter], return_when=asyncio.FIRST_COMPLETED)
        if tasks[0].done():
            tasks[0].result()
            return
        tasks.append(asyncio.ensure_future(run_node_services(effective[0], services)))
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            t.result()
        await asyncio.gather(*tasks)
    finally:
        waiter.cancel()
        for t in tasks:
            t.cancel()
        await asyncio.gather(waiter, *tasks, return_exceptions=True)


async def _serve(config: Any, services: NodeServices) -> None:
    """Run the agent until SIGINT/SIGTERM.

    Signals are taken with signal.signal, not loop.add_signal_handler: the runtime forks
    helper children (pyroute2's netns creation) that inherit the event loop's signal wakeup
    fd, and a SIGTERM sent to such a child would otherwise read as one sent to the agent."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(_agent_and_services(config, services))
    pid = os.getpid()

    def stop(signum: int, frame: object) -> None:
        if os.getpid() == pid:
            loop.call_soon_threadsafe(task.cancel)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    try:
        await task
    except asyncio.CancelledError:
        pass


def add_parser(sub: Any) -> None:
    p = sub.add_parser("agent", help="run the node agent (kubelet): register a node and run "
                                     "the pods bound to it")
    _configure(p)
    p.set_defaults(run=_run)


def local_agent_component(*, data_dir: Path, ca: CertificateAuthority, kubeconfig: Path,
                          node_name: str | None = None, port: int = 10250,
                          cluster_dns: tuple[str, ...] = (), serve_dns: bool = False,
                          service_cidr: str = "10.43.0.0/16", node_netns: str | None = None,
                          resolv_conf: str | None = None, proxy_mode: str = "auto",
                          verbosity: int = 0) -> Component:
    """The local node of `navio server`: its kubelet serving certificate (signed by the
    cluster CA, for 127.0.0.1), the `navio agent` argv and the same agent in-process.
    `kubeconfig` is the node's identity (user `system:node:<node>`, group `system:nodes`).
    The kubelet API listens on 127.0.0.1:`port` and the node's InternalIP is 127.0.0.1.
    The agent hosts the node's proxy (`proxy_mode`) and, with `serve_dns`, the cluster DNS
    on `cluster_dns`; `node_netns` puts the pods' bridge in that named namespace (tests)."""
    pki = data_dir / "pki"
    node = node_name or default_node_name()
    serving = ensure_kubelet_serving_cert(ca, pki, node, ("127.0.0.1", "localhost"))
    argv = ["agent", "--kubeconfig", str(kubeconfig), "--node-name", node, "--root-dir",
            str(data_dir / "agent"), "--node-ip", "127.0.0.1", "--address", "127.0.0.1",
            "--port", str(port), "--tls-cert-file", str(serving.cert),
            "--tls-private-key-file", str(serving.key), "--client-ca-file", str(ca.pair.cert),
            "--service-cluster-ip-range", service_cidr, "--proxy-mode", proxy_mode,
            "--pod-cidr", "10.42.0.0/24",
            "--v", str(verbosity)]
    if cluster_dns:
        argv += ["--cluster-dns", ",".join(cluster_dns)]
        if serve_dns:
            argv.append("--serve-cluster-dns")
    if node_netns:
        argv += ["--node-netns", node_netns]
    if resolv_conf is not None:
        argv += ["--resolv-conf", resolv_conf]
    parser = argparse.ArgumentParser(prog="navio agent")
    _configure(parser)
    args = parser.parse_args(argv[1:])
    config = config_from_args(args)
    services = node_services_from_args(args)

    async def in_process() -> None:
        await _agent_and_services(config, services)

    return Component("agent", tuple(argv), in_process)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="navio agent")
    _configure(p)
    return _run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
