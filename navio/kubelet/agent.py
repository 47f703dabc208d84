"""The agent (kubelet) process: wires the node, the pods and the kubelet API together.

Why: `navio agent` and the local node of `navio server` are this `run(config)`.

Start-up order (so that `kubectl get nodes` shows the node Ready within a couple of
seconds): runtime → kubelet API listener → Node registration (Ready) → Lease heartbeat →
pod informer and relister → orphan reconciliation. The agent then runs until cancelled.

Guarantees:
- Only pods with spec.nodeName = this node are run (a field-selected informer).
- After a restart (even `kill -9`) the runtime reports the containers the previous agent
  started; pods still bound here are adopted as they are (nothing is started twice), and
  sandboxes of pods that no longer exist are stopped and removed once the first pod list
  and the first relist are both complete.
- Shutdown stops intake first, then cancels the pod workers and background tasks; running
  containers are left alone (they belong to the node, not to the agent process).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import socket
import struct
import time
from typing import TYPE_CHECKING, Any, Callable

from navio.api import errors
from navio.client import (
    CONFIGMAPS,
    PODS,
    SECRETS,
    SERVICES,
    Client,
    EventRecorder,
    Informer,
    TransportError,
)
from navio.client.volumes import CSIDRIVERS, PVCS, PVS, VOLUMEATTACHMENTS
from navio.kubelet import tls
from navio.kubelet.backoff import Backoff
from navio.kubelet.config import AgentConfig
from navio.kubelet.containers import MINIMUM_GRACE, ContainerRunner
from navio.kubelet.env import service_env
from navio.kubelet.images import ImageManager
from navio.kubelet.csi.attacher import CSIAttacher
from navio.kubelet.csi.mounter import CSIMounter
from navio.kubelet.csi.plugins import CSIPlugins
from navio.kubelet.csi.provisioner import CSIProvisioner
from navio.kubelet.lease import LeaseHeartbeat
from navio.kubelet.localpath import LocalPathVolumes
from navio.kubelet.netsetup import prepare_node_network
from navio.kubelet.node import NodeStatus
from navio.kubelet.pleg import RuntimeCache
from navio.kubelet.podfiles import load_host_resolv_conf
from navio.kubelet.podworkers import PodWorkers
from navio.kubelet.prober import ProbeManager
from navio.kubelet.projected import ServiceAccountTokens
from navio.kubelet.runtimeclass import RuntimeClassCheck
from navio.kubelet.runtimes import collect_images, make_runtime, report_images
from navio.kubelet.probes import ProbeRunner
from navio.kubelet.server import KubeletServer, serve
from navio.kubelet.status import StatusManager
from navio.kubelet.sync import PodSyncer
from navio.kubelet.volumes import VolumeManager
from navio.runtime.protocol import ContainerStatus, SandboxInfo

__all__ = ["Agent", "run", "detect_node_ip"]

log = logging.getLogger(__name__)

_LOOKUP_TTL = 2.0
_LOOKUP_RESOURCES = {"configmap": CONFIGMAPS, "secret": SECRETS, "persistentvolumeclaim": PVCS,
                     "persistentvolume": PVS, "csidriver": CSIDRIVERS,
                     "volumeattachment": VOLUMEATTACHMENTS}
_SIOCGIFADDR = 0x8915


def detect_node_ip() -> str:
    """The IPv4 address of the interface holding the default route (kubelet's default node
    IP), from /proc/net/route and an ioctl; 127.0.0.1 when there is none. Sends nothing."""
    try:
        with open("/proc/net/route") as f:
            next(f)
            for line in f:
                fields = line.split()
                if len(fields) > 2 and fields[1] == "00000000":
                    iface = fields[0]
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                        packed = fcntl.ioctl(s.fileno(), _SIOCGIFADDR,
                                             struct.pack("256s", iface[:15].encode()))
                    return socket.inet_ntoa(packed[20:24])
    except (OSError, StopIteration):
        pass
    return "127.0.0.1"


def _spec_or_meta(pod: dict[str, Any]) -> tuple[Any, Any]:
    meta = {k: v for k, v in (pod.get("metadata") or {}).items()
            if k not in ("resourceVersion", "managedFields")}
    return meta, pod.get("spec")


def _pod_event_ref(pod: dict[str, Any]) -> dict[str, Any]:
    meta = pod.get("metadata") or {}
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion")
                         if meta.get(k)}}


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        if config.kubeconfig is None:
            raise ValueError("the agent needs a kubeconfig (run() writes one when joining "
                             "with --token-file)")
        if config.pod_cidr is None and config.runtime != "sim":
            raise ValueError("the agent needs a pod CIDR (run() waits for the one the "
                             "control plane assigns)")
        self.config = config
        self.node_ip = config.node_ip or detect_node_ip()
        self.client = Client.from_kubeconfig(config.kubeconfig, component="kubelet",
                                             qps=config.kube_api_qps, burst=config.kube_api_burst)
        self.runtime = make_runtime(config, self.node_ip)
        self.recorder = EventRecorder(self.client, "kubelet", host=config.node_name)
        self.port = config.port
        self._tasks: list[asyncio.Task[None]] = []
        self._lookups: dict[tuple[str, str, str], tuple[float, dict[str, Any] | None]] = {}
        self._runner: Any = None
        self.routes: Any = None        # host-gw routes to other nodes' pods (pod network)
        self._egress = False           # masquerade of pod traffic leaving the cluster CIDR
        self.pod_informer = Informer(self.client, PODS,
                             field_selector=f"spec.nodeName={config.node_name}")
        self.services = Informer(self.client, SERVICES)
        self.cache = RuntimeCache(self.runtime, period=config.relist_period,
                                  on_change=self._changed)
        self.probes = ProbeRunner(self.runtime, node_netns=config.node_netns)
        self.prober = ProbeManager(self.probes, on_change=self._changed, event=self.event)
        self.status = StatusManager(self.client)
        self.node = NodeStatus(self.client, config, node_ip=self.node_ip,
                               capabilities=self.runtime.capabilities,
                               runtime_name=self.runtime.name,
                               healthy=lambda: self.cache.healthy, event=self.node_event)
        self.csi_plugins = CSIPlugins(self.client, config.node_name,
                                      config.root_dir / "plugins_registry")
        self.csi_provisioner = CSIProvisioner(self.client, config.node_name, self.csi_plugins)
        self.csi_attacher = CSIAttacher(self.client, config.node_name, self.csi_plugins)
        self.volumes = VolumeManager(config.pods_dir, self.lookup,
                                     allocatable=lambda: self.node.allocatable,
                                     tmpfs=self.runtime.capabilities.mounts,
                                     tokens=ServiceAccountTokens(self.client),
                                     csi=CSIMounter(self.csi_plugins, config.pods_dir,
                                                    config.root_dir / "plugins"))
        reasons: dict[tuple[str, str], tuple[str, str]] = {}
        image_service = getattr(self.runtime, "images", None)
        self.images = None if image_service is None else ImageManager(
            image_service, event=self.event,
            secret=lambda namespace, name: self.lookup("secret", namespace, name))
        self.containers = ContainerRunner(
            self.runtime, self.probes, lookup=self.lookup, event=self.event, reasons=reasons,
            services_env=self._services_env, host_ips=self.host_ips,
            allocatable=lambda: self.node.allocatable, refresh=self.cache.refresh_container,
            seccomp_root=str(config.root_dir / "seccomp"), images=self.images)
        self.syncer = PodSyncer(
            runtime=self.runtime, cache=self.cache, prober=self.prober, runner=self.containers,
            volumes=self.volumes, status=self.status, event=self.event,
            backoff=Backoff(clock=time.time), reasons=reasons, host_ips=self.host_ips,
            pod_logs_dir=config.pod_logs_dir,
            dns={"cluster_dns": config.cluster_dns, "cluster_domain": config.cluster_domain,
                 "host_resolv": load_host_resolv_conf(config.resolv_conf)},
            sync_frequency=config.sync_frequency,
            runtime_class=RuntimeClassCheck(self.client, self.runtime.name))
        self.workers = PodWorkers(self.syncer)
        self.local_path = LocalPathVolumes(self.client, config.node_name,
                                           config.root_dir / "storage")
        self.lease = LeaseHeartbeat(self.client, config.node_name,
                                    duration_seconds=config.node_lease_duration_seconds,
                                    renew_interval=config.lease_renew_interval)

    # ---- helpers shared by the components ------------------------------------------------

    def host_ips(self) -> list[str]:
        return [self.node_ip]

    def event(self, pod: Any, kind: str, reason: str, message: str) -> None:
        self.recorder.event(_pod_event_ref(pod), kind, reason, message)

    def node_event(self, kind: str, reason: str, message: str) -> None:
        name = self.config.node_name
        self.recorder.event({"kind": "Node", "apiVersion": "v1",
                             "metadata": {"name": name, "uid": name}}, kind, reason, message)

    def _changed(self, uid: str) -> None:
        self.workers.notify(uid)

    def _services_env(self, pod: dict[str, Any]) -> dict[str, str]:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        return service_env(self.services.list(), str(meta.get("namespace") or "default"),
                           spec.get("enableServiceLinks", True) is not False)

    async def lookup(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A ConfigMap, Secret, PersistentVolumeClaim, PersistentVolume, CSIDriver or
        VolumeAttachment, cached for 2 s (None when it does not exist)."""
        key = (kind, namespace, name)
        now = time.monotonic()
        hit = self._lookups.get(key)
        if hit is not None and now - hit[0] < _LOOKUP_TTL:
            return hit[1]
        resource = _LOOKUP_RESOURCES[kind]
        try:
            obj: dict[str, Any] | None = await self.client.get(resource, name, namespace)
        except errors.NotFound:
            obj = None
        self._lookups[key] = (now, obj)
        return obj

    # ---- KubeletHost (the kubelet API's view) --------------------------------------------

    def find_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.pod_informer.get(f"{namespace}/{name}")

    def pods(self) -> list[dict[str, Any]]:
        return self.pod_informer.list()

    def pod_status(self, pod: dict[str, Any]) -> dict[str, Any]:
        uid = str((pod.get("metadata") or {}).get("uid"))
        return self.status.get(uid) or dict(pod.get("status") or {})

    def sandbox_of(self, pod: dict[str, Any]) -> SandboxInfo | None:
        return self.cache.ready_sandbox(str((pod.get("metadata") or {}).get("uid")))

    async def container_by_id(self, container_id: str) -> ContainerStatus | None:
        return await self.cache.refresh_container(container_id)

    # ---- life -----------------------------------------------------------------------------

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def start(self) -> None:
        config = self.config
        if self.runtime.capabilities.pod_network:
            await prepare_node_network(config.node_netns, config.cluster_cidr,
                                       config.service_cidr, bridge=config.bridge,
                                       pod_cidr=config.pod_cidr or "")
        for note in self.runtime.capabilities.notes:
            log.warning("runtime limitation", extra={"note": note})
        await self._start_server()
        await self.node.register()
        self.lease.node_uid = self.node.uid
        self.node_event("Normal", "Starting", "Starting kubelet.")
        self._spawn(self.lease.run(), "lease")
        self._spawn(self.node.run(), "node status")
        if self.runtime.capabilities.pod_network:
            from navio.kubelet.routes import NodeRoutes
            self.routes = NodeRoutes(self.client, config.node_name, config.node_netns,
                                     pod_cidr=config.pod_cidr, node_ip=self.node_ip,
                                     backend=config.pod_network_backend)
            self.routes.start()
            from navio.kubelet.egress import install_egress_masquerade
            self._egress = await install_egress_masquerade(
                config.node_netns, config.cluster_cidr, config.service_cidr)
        await self.local_path.start()
        self.csi_plugins.start()
        self.csi_provisioner.start()
        self.csi_attacher.start()
        self.pod_informer.add_handler(on_add=self._pod_added, on_update=self._pod_updated,
                                      on_delete=self.workers.remove)
        self.services.start()
        self.pod_informer.start()
        self._spawn(self._reconcile_orphans(), "orphans")
        self._spawn(self.cache.run(), "pleg")
        if self.images is not None:
            self._spawn(collect_images(self.images.service, config, self.node_event),
                        "image gc")
            self._spawn(report_images(self.images.service,
                                      lambda found: setattr(self.node, "images", found),
                                      config.node_status_update_frequency), "node images")
        log.info("agent started", extra={"node": config.node_name, "runtime": self.runtime.name,
                                         "kubelet_port": self.port, "node_ip": self.node_ip})

    def _pod_added(self, pod: dict[str, Any]) -> None:
        if (pod.get("spec") or {}).get("nodeName") == self.config.node_name:
            self.workers.update(pod)

    def _pod_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if (new.get("spec") or {}).get("nodeName") != self.config.node_name:
            return
        # A change of status alone (mostly our own write coming back) needs no sync.
        self.workers.update(new, wake=_spec_or_meta(old) != _spec_or_meta(new))

    async def _start_server(self) -> None:
        config = self.config
        if config.tls_cert_file is not None and config.tls_private_key_file is not None:
            cert, key = config.tls_cert_file, config.tls_private_key_file
        else:
            cert, key = await asyncio.to_thread(
                tls.ensure_self_signed, config.root_dir / "pki",
                (config.node_name, self.node_ip, "localhost", "127.0.0.1"))
        ctx = tls.server_context(cert, key, client_ca_file=config.client_ca_file,
                                 client_ca_data=None if config.client_ca_file
                                 else self.client.config.ca_data)
        server = KubeletServer(self, node_name=config.node_name)
        self._runner, self.port = await serve(server.app, config.address, config.port, ctx)
        self.node.config = _with_port(config, self.port)

    async def _reconcile_orphans(self) -> None:
        """Stop and remove sandboxes whose pod is not bound here any more."""
        try:
            async with asyncio.timeout(120):
                while not (self.pod_informer.has_synced() and self.cache.listed):
                    await asyncio.sleep(0.1)
        except TimeoutError:
            log.warning("orphan check skipped: pods or runtime not listed in time")
            return
        known = {str((p.get("metadata") or {}).get("uid")) for p in self.pod_informer.list()}
        for uid in self.cache.uids() - known:
            sandbox = self.cache.pod_sandboxes(uid)[0]
            # (its spec is gone: the minimum grace period, as for a force-deleted pod)
            ghost = {"metadata": {"name": sandbox.name, "namespace": sandbox.namespace,
                                  "uid": uid},
                     "spec": {"terminationGracePeriodSeconds": MINIMUM_GRACE}}
            log.info("removing pod that is no longer bound here",
                     extra={"pod": f"{sandbox.namespace}/{sandbox.name}"})
            self.workers.update(ghost)
            self.workers.remove(ghost)

    async def stop(self) -> None:
        await self.pod_informer.stop()
        await self.services.stop()
        await self.local_path.stop()
        await self.csi_provisioner.stop()
        await self.csi_attacher.stop()
        await self.csi_plugins.stop()
        if self.routes is not None:
            await self.routes.stop()
        if self._egress:
            from navio.kubelet.egress import remove_egress_masquerade
            await remove_egress_masquerade(self.config.node_netns)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.workers.stop()
        await self.prober.stop()
        await self.status.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        try:
            await self.recorder.stop(2.0)
        except (errors.ApiError, TransportError):
            pass
        await self.runtime.close()
        await self.client.close()
        log.info("agent stopped", extra={"node": self.config.node_name})


async def _joined_serving_cert(config: AgentConfig) -> AgentConfig:
    """A joined node asks the cluster CA for its kubelet serving certificate (the API server
    verifies kubelets against it)."""
    from dataclasses import replace

    from navio.kubelet.bootstrap import serving_certificate
    assert config.kubeconfig is not None
    names = (config.node_name, config.node_ip or detect_node_ip())
    async with Client.from_kubeconfig(config.kubeconfig, component="kubelet") as client:
        pem = await serving_certificate(client, config.node_name, config.root_dir, names)
    if pem is None:
        return config
    return replace(config, tls_cert_file=pem, tls_private_key_file=pem)


async def _assigned_pod_cidr(config: AgentConfig) -> AgentConfig:
    """`config` with the pod CIDR node IPAM gave this Node (registering it if need be)."""
    from dataclasses import replace

    from navio.kubelet.podcidr import await_pod_cidr
    assert config.kubeconfig is not None
    async with Client.from_kubeconfig(config.kubeconfig, component="kubelet") as client:
        cidr = await await_pod_cidr(client, config.node_name)
    return replace(config, pod_cidr=cidr)


def _with_port(config: AgentConfig, port: int) -> AgentConfig:
    from dataclasses import replace
    return config if config.port == port else replace(config, port=port)


async def run(config: AgentConfig, *, on_ready: Callable[[Agent], None] | None = None) -> None:
    """Run the agent until cancelled (joining first with a bootstrap token if so
    configured). Several comma-separated `--server` URLs are reached through a local load
    balancer (apilb.py) that every component of the node uses."""
    if not (config.server and "," in config.server):
        await _run(config, on_ready=on_ready)
        return
    from dataclasses import replace

    from navio.kubelet.apilb import ApiLoadBalancer, parse_servers
    lb = ApiLoadBalancer(parse_servers(config.server), port=config.lb_server_port)
    try:
        await _run(replace(config, server=await lb.start()), on_ready=on_ready)
    finally:
        await asyncio.shield(lb.stop())


async def _run(config: AgentConfig, *, on_ready: Callable[[Agent], None] | None = None) -> None:
    rotator = None
    if config.token_file is not None:
        from dataclasses import replace

        from navio.kubelet.bootstrap import (CertificateRotator, bootstrap_client_certificate,
                                             pem_file_for)
        assert config.server is not None and config.ca_file is not None
        kubeconfig = await bootstrap_client_certificate(
            node_name=config.node_name, root_dir=config.root_dir, server=config.server,
            token_file=config.token_file, ca_file=config.ca_file, kubeconfig=config.kubeconfig,
            ca_hash=config.ca_cert_hash)
        config = replace(config, kubeconfig=kubeconfig)
        if config.tls_cert_file is None:
            config = await _joined_serving_cert(config)
    if config.pod_cidr is None and config.runtime != "sim":
        config = await _assigned_pod_cidr(config)
    if config.pod_network_backend == "vxlan" and config.runtime != "sim" and not config.pod_mtu:
        from dataclasses import replace

        from navio.kubelet.vxlan import overlay_pod_mtu
        config = replace(config, pod_mtu=await overlay_pod_mtu(
            config.node_netns, config.node_ip or detect_node_ip()))
    agent = Agent(config)
    if config.token_file is not None:
        rotator = asyncio.create_task(CertificateRotator(
            agent.client, config.node_name, pem_file_for(config.root_dir)).run(),
            name="certificate rotation")
    try:
        await agent.start()
        if on_ready is not None:
            on_ready(agent)
        await asyncio.Event().wait()
    finally:
        if rotator is not None:
            rotator.cancel()
        await asyncio.shield(agent.stop())


if TYPE_CHECKING:
    from navio.kubelet.server import KubeletHost
    _host: type[KubeletHost] = Agent
