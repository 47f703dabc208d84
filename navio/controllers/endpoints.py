"""Endpoints for every Service with a selector (kube-controller-manager's "endpoint").

Why: the core/v1 Endpoints object is what older clients and many tools still read; it lists
the IPs of the pods a Service selects, as pkg/controller/endpoint/endpoints_controller.go
computes them. The helpers here (which pods count, how ports resolve, the trigger-time
tracker) are shared with the EndpointSlice controller, as upstream shares
k8s.io/endpointslice/util.

Guarantees (v1.32):
- A pod counts when it is not terminal, has an IP of the Service's first IP family, and is
  not terminating (terminating pods count only with `publishNotReadyAddresses`). Ready pods,
  or all with `publishNotReadyAddresses`, go to `addresses`, others to `notReadyAddresses`.
- Each Service port resolves per pod: a numeric targetPort as is, a named one through the
  pod's container ports of that name and protocol (a pod without it is left out of that
  port only). A headless Service without ports lists addresses without ports.
- Subsets are repacked as RepackSubsets does (pods grouped by identical port sets, ready
  wins over not-ready, addresses sorted by IP) and written only when they, the labels, or
  the over-capacity state differ; labels are the Service's plus `service.kubernetes.io/
  headless` for headless Services; `endpoints.kubernetes.io/last-change-trigger-time` is the
  earliest Ready transition (or Service creation) not yet exported; above 1000 addresses the
  list is truncated with `endpoints.kubernetes.io/over-capacity: truncated`.
- Pod events are not batched, so a readiness change reaches the Endpoints within a
  reconcile; the Endpoints of a deleted Service are deleted, including leftovers at start.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from datetime import datetime, timezone
from typing import Any

from navio.api import errors
from navio.api.selectors import selector_from_set
from navio.client import ENDPOINTS, NAMESPACE_INDEX, PODS, SERVICES, WARNING, namespace_index
from navio.controllers.base import Controller, ControllerContext
from navio.controllers.controller_utils import add_index, is_pod_ready
from navio.controllers.manager import register

__all__ = ["EndpointsController", "TriggerTimeTracker", "should_pod_be_in_endpoints",
           "is_pod_ready", "find_port", "should_set_hostname", "pod_services",
           "ensure_namespace_index", "repack_subsets", "format_trigger_time",
           "TRIGGER_TIME_ANNOTATION", "HEADLESS_LABEL"]

log = logging.getLogger(__name__)

TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"
HEADLESS_LABEL = "service.kubernetes.io/headless"
_LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
_MAX_CAPACITY = 1000


# ---- shared with endpointslice.py ---------------------------------------------------------

def ensure_namespace_index(informer: Any) -> None:
    add_index(informer, NAMESPACE_INDEX, namespace_index)


def should_pod_be_in_endpoints(pod: dict[str, Any], include_terminating: bool) -> bool:
    """endpointsliceutil.ShouldPodBeInEndpoints."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return False
    if not status.get("podIP") and not status.get("podIPs"):
        return False
    return include_terminating or not (pod.get("metadata") or {}).get("deletionTimestamp")


def pod_ips(pod: dict[str, Any]) -> list[str]:
    status = pod.get("status") or {}
    ips = [p.get("ip") for p in status.get("podIPs") or () if p.get("ip")]
    return ips or ([status["podIP"]] if status.get("podIP") else [])


def is_ipv6(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).version == 6
    except ValueError:
        return False


def find_port(pod: dict[str, Any], service_port: dict[str, Any]) -> int | None:
    """podutil.FindPort: the container port a Service port targets on this pod, or None."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    proto = service_port.get("protocol") or "TCP"
    spec = pod.get("spec") or {}
    sidecars = [c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"]
    for container in list(spec.get("containers") or ()) + sidecars:
        for port in container.get("ports") or ():
            if port.get("name") == target and (port.get("protocol") or "TCP") == proto:
                return int(port["containerPort"])
    return None


def should_set_hostname(pod: dict[str, Any], service: dict[str, Any]) -> bool:
    spec, meta = pod.get("spec") or {}, pod.get("metadata") or {}
    return bool(spec.get("hostname")) and spec.get("subdomain") == service["metadata"]["name"] \
        and meta.get("namespace") == service["metadata"].get("namespace")


def is_headless(service: dict[str, Any]) -> bool:
    cluster_ip = (service.get("spec") or {}).get("clusterIP")
    return not cluster_ip or cluster_ip == "None"


def pod_services(services: Any, pod: dict[str, Any]) -> list[str]:
    """Keys of the Services (with a selector) in the pod's namespace that select it."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    keys = []
    for svc in services.by_index(NAMESPACE_INDEX, meta.get("namespace", "")):
        selector = (svc.get("spec") or {}).get("selector")
        if selector and selector_from_set(selector).matches(labels):
            keys.append(f"{svc['metadata']['namespace']}/{svc['metadata']['name']}")
    return keys


def _parse(ts: Any) -> datetime | None:
    if not ts:
        return None
    try:
        return datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return None


def format_trigger_time(when: datetime) -> str:
    """time.RFC3339Nano in UTC: fractional seconds only when non-zero, zeros trimmed."""
    when = when.astimezone(timezone.utc)
    frac = f".{when.microsecond:06d}".rstrip("0") if when.microsecond else ""
    return when.strftime("%Y-%m-%dT%H:%M:%S") + frac.rstrip(".") + "Z"


class TriggerTimeTracker:
    """endpointsliceutil.TriggerTimeTracker: the earliest change not yet exported.

    Unlike upstream, what `compute` saw becomes "exported" only when the caller `commit`s it
    after its write succeeded: a write that fails (a conflict with a stale informer) would
    otherwise consume the change, and the retry would clear the annotation.
    """

    def __init__(self) -> None:
        self._states: dict[str, tuple[datetime | None, dict[str, datetime]]] = {}
        self._pending: dict[str, tuple[datetime | None, dict[str, datetime]]] = {}

    def compute(self, key: str, service: dict[str, Any], pods: list[dict[str, Any]]
                ) -> datetime | None:
        known = key in self._states
        last_svc, last_pods = self._states.get(key, (None, {}))
        changed: datetime | None = None
        pod_times: dict[str, datetime] = {}
        for pod in pods:
            ready = next((c for c in (pod.get("status") or {}).get("conditions") or ()
                          if c.get("type") == "Ready"), None)
            when = _parse((ready or {}).get("lastTransitionTime"))
            if when is None:
                continue
            name = pod["metadata"]["name"]
            pod_times[name] = when
            if name not in last_pods or when > last_pods[name]:
                changed = when if changed is None else min(changed, when)
        created = _parse(service["metadata"].get("creationTimestamp"))
        if created is not None and (last_svc is None or created > last_svc):
            changed = created if changed is None else min(changed, created)
        self._pending[key] = (created, pod_times)
        return created if not known else changed

    def commit(self, key: str) -> None:
        """The trigger `compute` last returned for key has been written."""
        if key in self._pending:
            self._states[key] = self._pending.pop(key)

    def delete(self, key: str) -> None:
        self._states.pop(key, None)
        self._pending.pop(key, None)


# ---- the Endpoints controller ---------------------------------------------------------------

def _address(pod: dict[str, Any], service: dict[str, Any]) -> dict[str, Any] | None:
    """podToEndpointAddressForService: the pod's IP of the Service's (first) IP family."""
    spec = service.get("spec") or {}
    families = spec.get("ipFamilies") or []
    if families:
        v6 = families[0] == "IPv6"
    else:
        v6 = is_ipv6(spec.get("clusterIP") or "") if not is_headless(service) else False
    ip = next((i for i in pod_ips(pod) if is_ipv6(i) == v6), None)
    if ip is None:
        return None
    meta = pod["metadata"]
    addr: dict[str, Any] = {"ip": ip}
    if should_set_hostname(pod, service):
        addr["hostname"] = pod["spec"]["hostname"]
    if (pod.get("spec") or {}).get("nodeName"):
        addr["nodeName"] = pod["spec"]["nodeName"]
    addr["targetRef"] = {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"],
                         "uid": meta.get("uid", "")}
    return addr


def _endpoint_port(sp: dict[str, Any], number: int) -> dict[str, Any]:
    port: dict[str, Any] = {"port": number, "protocol": sp.get("protocol") or "TCP"}
    if sp.get("name"):
        port["name"] = sp["name"]
    if sp.get("appProtocol"):
        port["appProtocol"] = sp["appProtocol"]
    return port


def _port_key(port: dict[str, Any]) -> tuple[Any, ...]:
    return (port.get("name", ""), port.get("port", -1), port.get("protocol", ""),
            port.get("appProtocol", ""))


def _addr_key(addr: dict[str, Any]) -> tuple[Any, ...]:
    ip = addr["ip"]
    try:
        packed: Any = ipaddress.ip_address(ip).packed
    except ValueError:
        packed = ip.encode()
    return (packed, (addr.get("targetRef") or {}).get("uid", ""))


def repack_subsets(entries: list[tuple[dict[str, Any], dict[str, Any] | None, bool]]
                   ) -> list[dict[str, Any]]:
    """endpoints.RepackSubsets over (address, port or None, ready) entries."""
    addrs: dict[tuple[Any, ...], dict[str, Any]] = {}
    by_port: dict[tuple[Any, ...], tuple[dict[str, Any] | None, dict[tuple[Any, ...], bool]]] = {}
    for addr, port, ready in entries:
        akey = _addr_key(addr)
        addrs.setdefault(akey, addr)
        pkey = _port_key(port) if port is not None else ("", -1, "", "")
        ready_map = by_port.setdefault(pkey, (port, {}))[1]
        ready_map[akey] = ready_map.get(akey, False) or ready
    groups: dict[tuple[Any, ...], tuple[dict[tuple[Any, ...], bool], list[dict[str, Any]]]] = {}
    for port, ready_map in by_port.values():
        gkey = tuple(sorted(ready_map.items()))
        group = groups.setdefault(gkey, (ready_map, []))
        if port is not None:
            group[1].append(port)
    subsets = []
    for ready_map, ports in groups.values():
        subset: dict[str, Any] = {}
        ready_addrs = [addrs[k] for k in sorted(ready_map) if ready_map[k]]
        not_ready = [addrs[k] for k in sorted(ready_map) if not ready_map[k]]
        if ready_addrs:
            subset["addresses"] = ready_addrs
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        if ports:
            subset["ports"] = sorted(ports, key=_port_key)
        subsets.append(subset)
    return sorted(subsets, key=lambda s: [_addr_key(a) for a in s.get("addresses", [])
                                          + s.get("notReadyAddresses", [])])


def _truncate(subsets: list[dict[str, Any]]) -> bool:
    """truncateEndpoints: keep at most 1000 addresses, ready ones first, proportionally."""
    ready = sum(len(s.get("addresses", [])) for s in subsets)
    not_ready = sum(len(s.get("notReadyAddresses", [])) for s in subsets)
    if ready + not_ready <= _MAX_CAPACITY:
        return False
    cut_ready = ready > _MAX_CAPACITY
    room, total = (_MAX_CAPACITY, ready) if cut_ready else (_MAX_CAPACITY - ready, not_ready)
    left = room
    for s in subsets:
        field = "addresses" if cut_ready else "notReadyAddresses"
        n = min(math.ceil(len(s.get(field, [])) / total * room), left)
        s[field] = s.get(field, [])[:n]
        if cut_ready:
            s.pop("notReadyAddresses", None)
        left -= len(s[field])
    return True


def _strip_rv(subsets: Any) -> Any:
    if isinstance(subsets, dict):
        return {k: _strip_rv(v) for k, v in subsets.items()
                if k != "resourceVersion" and v not in (None, [], {}, "")}
    if isinstance(subsets, list):
        return [_strip_rv(v) for v in subsets]
    return subsets


@register("endpoint")
class EndpointsController(Controller):
    name = "endpoint"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.services = ctx.informers.get(SERVICES)
        self.pods = ctx.informers.get(PODS)
        self.endpoints = ctx.informers.get(ENDPOINTS)
        ensure_namespace_index(self.services)
        ensure_namespace_index(self.pods)
        self.tracker = TriggerTimeTracker()
        self.services.add_handler(**self.handlers(self.enqueue))
        self.pods.add_handler(on_add=self._pod, on_update=self._pod_update,
                              on_delete=self._pod)
        self.endpoints.add_handler(on_delete=self.enqueue)

    def _pod(self, pod: dict[str, Any]) -> None:
        for key in pod_services(self.services, pod):
            self.queue.add(key)

    def _pod_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        keys = set(pod_services(self.services, new))
        if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
            keys |= set(pod_services(self.services, old))
        for key in keys:
            self.queue.add(key)

    async def run(self, workers: int | None = None) -> None:
        # checkLeftoverEndpoints: Endpoints whose Service vanished while we were down.
        for ep in self.endpoints.list():
            if _LEADER_ANNOTATION not in ((ep.get("metadata") or {}).get("annotations") or {}):
                self.enqueue(ep)
        await super().run(workers)

    async def reconcile(self, key: str) -> None:
        ns, _, name = key.partition("/")
        service = self.services.get(key)
        if service is None:
            self.tracker.delete(key)
            try:
                await self.client.delete(ENDPOINTS, name, ns)
                log.info("endpoints deleted", extra={"endpoints": key})
            except errors.NotFound:
                pass
            return
        spec = service.get("spec") or {}
        if not spec.get("selector"):
            return                            # selector-less Services are managed by users
        selector = selector_from_set(spec["selector"])
        pods = [p for p in self.pods.by_index(NAMESPACE_INDEX, ns)
                if selector.matches((p.get("metadata") or {}).get("labels") or {})]
        trigger = self.tracker.compute(key, service, pods)
        publish = bool(spec.get("publishNotReadyAddresses"))
        entries: list[tuple[dict[str, Any], dict[str, Any] | None, bool]] = []
        for pod in pods:
            if not should_pod_be_in_endpoints(pod, publish):
                continue
            addr = _address(pod, service)
            if addr is None:
                continue
            ready = publish or is_pod_ready(pod)
            if not spec.get("ports"):
                if spec.get("clusterIP") == "None":
                    entries.append((addr, None, ready))
                continue
            for sp in spec["ports"]:
                number = find_port(pod, sp)
                if number is not None:
                    entries.append((addr, _endpoint_port(sp, number), ready))
        subsets = repack_subsets(entries)
        await self._write(service, key, subsets, trigger)
        self.tracker.commit(key)

    async def _write(self, service: dict[str, Any], key: str, subsets: list[dict[str, Any]],
                     trigger: datetime | None) -> None:
        ns, _, name = key.partition("/")
        current = self.endpoints.get(key)
        svc_labels = dict((service.get("metadata") or {}).get("labels") or {})
        if current is not None:
            meta = current.get("metadata") or {}
            labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != HEADLESS_LABEL}
            over = sum(len(s.get("addresses", [])) + len(s.get("notReadyAddresses", []))
                       for s in current.get("subsets") or ()) > _MAX_CAPACITY
            capacity_ok = not over and OVER_CAPACITY_ANNOTATION not in (
                meta.get("annotations") or {})
            if _strip_rv(current.get("subsets") or []) == _strip_rv(subsets) and \
                    labels == svc_labels and capacity_ok:
                return
        meta = dict((current or {}).get("metadata") or {"name": name, "namespace": ns})
        annotations = dict(meta.get("annotations") or {})
        if trigger is not None:
            annotations[TRIGGER_TIME_ANNOTATION] = format_trigger_time(trigger)
        else:
            annotations.pop(TRIGGER_TIME_ANNOTATION, None)
        if _truncate(subsets):
            annotations[OVER_CAPACITY_ANNOTATION] = "truncated"
        else:
            annotations.pop(OVER_CAPACITY_ANNOTATION, None)
        labels = dict(svc_labels)
        if is_headless(service):
            labels[HEADLESS_LABEL] = ""
        meta.update(labels=labels, annotations=annotations)
        body = {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta, "subsets": subsets}
        try:
            if current is None:
                await self.client.create(ENDPOINTS, body, ns)
            else:
                await self.client.update(ENDPOINTS, body, ns)
        except errors.ApiError as exc:
            if current is None and isinstance(exc, errors.Forbidden):
                if "being terminated" in str(exc):
                    return                    # the namespace is going away
            verb = ("FailedToCreateEndpoint", "create endpoint for service") if current is None \
                else ("FailedToUpdateEndpoint", "update endpoint")
            self.recorder.event(body, WARNING, verb[0],
                                f"Failed to {verb[1]} {ns}/{name}: {exc}")
            raise
        log.debug("endpoints written", extra={"endpoints": key, "subsets": len(subsets)})
