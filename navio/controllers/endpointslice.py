"""EndpointSlices for every Service with a selector (kube-controller-manager's
"endpointslice", with the reconciler of staging/src/k8s.io/endpointslice).

Why: kube-proxy and DNS read EndpointSlices; they must say, per pod, which addresses serve
which ports and whether each endpoint is ready, serving or terminating.

Guarantees (v1.32):
- One set of slices per address type of the Service (`ipFamilies`); endpoints are grouped by
  their resolved port set; a slice holds at most `max-endpoints-per-slice` (100) endpoints.
- An endpoint per pod that is not terminal and has an IP of that family, terminating pods
  included: `serving` = pod Ready, `terminating` = deletionTimestamp set, `ready` = serving
  and not terminating (always true with `publishNotReadyAddresses`); `nodeName`, the node's
  `topology.kubernetes.io/zone` as `zone`, `hostname` when the pod's subdomain is the
  Service, and a `targetRef` to the pod. Pods on unknown nodes are left out (and the key
  retried) unless `publishNotReadyAddresses`.
- Slices are named `<service>-<random>`, labelled `kubernetes.io/service-name` and
  `endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io` plus the
  Service's labels (and `service.kubernetes.io/headless` when headless), owned by the Service
  (controller, blockOwnerDeletion), and carry `endpoints.kubernetes.io/last-change-trigger-
  time`. Existing slices are updated in place, filled before new ones are created, and a
  slice that would be deleted is reused for a create; a Service without endpoints keeps one
  empty placeholder slice. Writes happen only when something changed.
- Failures record a `FailedToUpdateEndpointSlices` event on the Service and are retried.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import orjson

from navio.api import errors
from navio.api.selectors import selector_from_set
from navio.client import ENDPOINTSLICES, NAMESPACE_INDEX, NODES, PODS, SERVICES, WARNING
from navio.controllers.base import Controller, ControllerContext
from navio.controllers.endpoints import (HEADLESS_LABEL, TRIGGER_TIME_ANNOTATION,
                                         TriggerTimeTracker, ensure_namespace_index, find_port,
                                         format_trigger_time, is_headless, is_ipv6,
                                         is_pod_ready, pod_ips, pod_services,
                                         should_pod_be_in_endpoints, should_set_hostname)
from navio.controllers.controller_utils import add_index
from navio.controllers.manager import register

__all__ = ["EndpointSliceController", "SERVICE_NAME_LABEL", "MANAGED_BY_LABEL",
           "CONTROLLER_NAME", "pod_to_endpoint", "endpoint_ports", "plan_slices"]

log = logging.getLogger(__name__)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
_ZONE_LABEL = "topology.kubernetes.io/zone"
_SERVICE_INDEX = "endpointslice-service"
_RESERVED = (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)

Obj = dict[str, Any]


def _canon(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def address_types(service: Obj) -> list[str]:
    """getAddressTypesForService."""
    spec = service.get("spec") or {}
    fams = [f for f in spec.get("ipFamilies") or () if f in ("IPv4", "IPv6")]
    if fams:
        return sorted(set(fams))
    if not is_headless(service):
        return ["IPv6" if is_ipv6(spec.get("clusterIP", "")) else "IPv4"]
    return ["IPv4", "IPv6"]


def endpoint_ports(service: Obj, pod: Obj) -> list[Obj]:
    """getEndpointPorts: the Service's ports resolved on this pod, unresolvable ones left out."""
    spec = service.get("spec") or {}
    out = []
    for sp in spec.get("ports") or ():
        number = find_port(pod, sp)
        if number is None:
            continue
        port: Obj = {"name": sp.get("name") or "", "port": number,
                     "protocol": sp.get("protocol") or "TCP"}
        if sp.get("appProtocol"):
            port["appProtocol"] = sp["appProtocol"]
        out.append(port)
    return out


def pod_to_endpoint(pod: Obj, node: Obj | None, service: Obj, address_type: str) -> Obj:
    serving = is_pod_ready(pod)
    terminating = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
    ready = bool((service.get("spec") or {}).get("publishNotReadyAddresses")) or \
        (serving and not terminating)
    meta = pod["metadata"]
    ep: Obj = {"addresses": [ip for ip in pod_ips(pod) if is_ipv6(ip) == (address_type == "IPv6")],
               "conditions": {"ready": ready, "serving": serving, "terminating": terminating}}
    if should_set_hostname(pod, service):
        ep["hostname"] = pod["spec"]["hostname"]
    ep["targetRef"] = {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"],
                       "uid": meta.get("uid", "")}
    if (pod.get("spec") or {}).get("nodeName"):
        ep["nodeName"] = pod["spec"]["nodeName"]
    zone = (((node or {}).get("metadata") or {}).get("labels") or {}).get(_ZONE_LABEL)
    if zone:
        ep["zone"] = zone
    return ep


def _ep_key(ep: Obj) -> tuple[Any, ...]:
    """hashEndpoint: the identity of an endpoint across syncs."""
    ref = ep.get("targetRef") or {}
    return (tuple(sorted(ep.get("addresses") or ())), ep.get("hostname") or "",
            ref.get("namespace", ""), ref.get("name", ""))


def _ports_key(ports: list[Obj] | None) -> bytes:
    return b"\n".join(sorted(_canon(p) for p in ports or ()))


def _labels(service: Obj) -> dict[str, str]:
    """setEndpointSliceLabels: the Service's labels plus the reserved ones."""
    labels = {k: v for k, v in ((service.get("metadata") or {}).get("labels") or {}).items()
              if k not in _RESERVED}
    if is_headless(service):
        labels[HEADLESS_LABEL] = ""
    labels[SERVICE_NAME_LABEL] = service["metadata"]["name"]
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


def _new_slice(service: Obj, ports: list[Obj], address_type: str) -> Obj:
    meta = service["metadata"]
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": f"{meta['name']}-", "namespace": meta["namespace"],
                         "labels": _labels(service),
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Service",
                                              "name": meta["name"], "uid": meta.get("uid"),
                                              "controller": True,
                                              "blockOwnerDeletion": True}]},
            "addressType": address_type, "endpoints": [], "ports": ports}


def _owned(slice_: Obj, service: Obj) -> bool:
    uid = service["metadata"].get("uid")
    return any(o.get("uid") == uid and o.get("kind") == "Service" and o.get("apiVersion") == "v1"
               for o in (slice_.get("metadata") or {}).get("ownerReferences") or ())


def plan_slices(service: Obj, desired: dict[bytes, tuple[list[Obj], dict[Any, Obj]]],
                existing: list[Obj], address_type: str, max_per_slice: int
                ) -> tuple[list[Obj], list[Obj], list[Obj]]:
    """reconcileByAddressType + reconcileByPortMapping + finalize's create→update reuse:
    (slices to create, slices to update, slices to delete). Pure; inputs are not mutated."""
    by_ports: dict[bytes, list[Obj]] = {}
    to_create: list[Obj] = []
    to_update: list[Obj] = []
    to_delete: list[Obj] = []
    for s in existing:
        if _owned(s, service):
            by_ports.setdefault(_ports_key(s.get("ports")), []).append(s)
        else:
            to_delete.append(s)
    labels = _labels(service)
    for pkey, (ports, eps) in desired.items():
        want = dict(eps)
        updated: list[Obj] = []
        unchanged: list[Obj] = []
        for s in by_ports.get(pkey, []):
            keep = []
            changed = False
            for ep in s.get("endpoints") or ():
                got = want.pop(_ep_key(ep), None)
                if got is not None:
                    keep.append(got)
                    changed = changed or _canon(got) != _canon(ep)
            labels_changed = (s["metadata"].get("labels") or {}) != labels
            if changed or len(keep) != len(s.get("endpoints") or ()):
                if not keep:
                    to_delete.append(s)
                else:
                    updated.append({**s, "metadata": {**s["metadata"], "labels": labels},
                                    "endpoints": keep})
            elif labels_changed:
                updated.append({**s, "metadata": {**s["metadata"], "labels": labels}})
            else:
                unchanged.append(s)
        rest = list(want.values())
        for s in sorted(updated, key=lambda x: -len(x["endpoints"])):
            room = max_per_slice - len(s["endpoints"])
            if rest and room > 0:
                s["endpoints"] = s["endpoints"] + rest[:room]
                rest = rest[room:]
        while rest:
            fill = None
            if len(rest) < max_per_slice and unchanged:
                fits = [s for s in unchanged
                        if len(s.get("endpoints") or ()) + len(rest) <= max_per_slice]
                if fits:
                    fill = max(fits, key=lambda s: len(s.get("endpoints") or ()))
                    unchanged.remove(fill)
                    fill = {**fill, "endpoints": list(fill.get("endpoints") or ())}
            if fill is None:
                fill = _new_slice(service, ports, address_type)
            room = max_per_slice - len(fill["endpoints"])
            fill["endpoints"] = fill["endpoints"] + rest[:room]
            rest = rest[room:]
            (updated if fill["metadata"].get("name") else to_create).append(fill)
        to_update.extend(updated)
    for pkey, slices in by_ports.items():
        if pkey not in desired:
            to_delete.extend(slices)
    if len(existing) == len(to_delete) and not to_create:
        placeholder = _new_slice(service, [], address_type)
        if len(to_delete) == 1 and _is_placeholder(to_delete[0], placeholder):
            to_delete = []
        else:
            to_create.append(placeholder)
    # finalize: turn creates into updates of slices that would otherwise be deleted.
    for s in list(to_delete):
        if not to_create:
            break
        if s.get("addressType") == address_type and _owned(s, service):
            new = to_create.pop()
            new["metadata"] = {**s["metadata"], "labels": new["metadata"]["labels"]}
            to_update.append(new)
            to_delete.remove(s)
    return to_create, to_update, to_delete


def _is_placeholder(s: Obj, placeholder: Obj) -> bool:
    return not s.get("endpoints") and not s.get("ports") and \
        (s["metadata"].get("labels") or {}) == placeholder["metadata"]["labels"] and \
        s.get("addressType") == placeholder["addressType"]


@register("endpointslice")
class EndpointSliceController(Controller):
    name = "endpointslice"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.max_per_slice = int(ctx.options.get("max-endpoints-per-slice", 100))
        self.services = ctx.informers.get(SERVICES)
        self.pods = ctx.informers.get(PODS)
        self.nodes = ctx.informers.get(NODES)
        self.slices = ctx.informers.get(ENDPOINTSLICES)
        ensure_namespace_index(self.services)
        ensure_namespace_index(self.pods)
        add_index(self.slices, _SERVICE_INDEX, _slice_service)
        self.tracker = TriggerTimeTracker()
        self._written: dict[str, int] = {}     # slice key -> generation this controller wrote
        self.services.add_handler(**self.handlers(self.enqueue))
        self.pods.add_handler(on_add=self._pod, on_update=self._pod_update, on_delete=self._pod)
        self.slices.add_handler(on_add=self._slice, on_update=lambda o, n: self._slice(n),
                                on_delete=self._slice_deleted)

    def _pod(self, pod: Obj) -> None:
        for key in pod_services(self.services, pod):
            self.queue.add(key)

    def _pod_update(self, old: Obj, new: Obj) -> None:
        keys = set(pod_services(self.services, new))
        if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
            keys |= set(pod_services(self.services, old))
        for key in keys:
            self.queue.add(key)

    def _slice(self, s: Obj) -> None:
        """EndpointSliceTracker.ShouldSync: react to slices changed by someone else."""
        svc = _slice_service(s)
        meta = s.get("metadata") or {}
        written = self._written.get(f"{meta.get('namespace')}/{meta.get('name')}")
        if svc and (written is None or int(meta.get("generation") or 0) > written):
            self.queue.add(svc[0])

    def _slice_deleted(self, s: Obj) -> None:
        meta = s.get("metadata") or {}
        self._written.pop(f"{meta.get('namespace')}/{meta.get('name')}", None)
        for key in _slice_service(s):
            if self.services.get(key) is not None:
                self.queue.add(key)

    async def reconcile(self, key: str) -> None:
        ns, _, name = key.partition("/")
        service = self.services.get(key)
        if service is None:
            self.tracker.delete(key)          # the garbage collector deletes owned slices
            return
        spec = service.get("spec") or {}
        if not spec.get("selector") or spec.get("type") == "ExternalName":
            return
        selector = selector_from_set(spec["selector"])
        pods = [p for p in self.pods.by_index(NAMESPACE_INDEX, ns)
                if selector.matches((p.get("metadata") or {}).get("labels") or {})]
        trigger = self.tracker.compute(key, service, pods)
        existing = self.slices.by_index(_SERVICE_INDEX, key)
        types = address_types(service)
        problems: list[str] = []
        stale = [s for s in existing if s.get("addressType") not in types]
        for address_type in types:
            desired = self._desired(service, pods, address_type, problems)
            mine = [s for s in existing if s.get("addressType") == address_type]
            create, update, delete = plan_slices(service, desired, mine, address_type,
                                                 self.max_per_slice)
            try:
                await self._finalize(service, create, update, delete, trigger)
            except errors.ApiError as exc:
                problems.append(str(exc))
        try:
            await self._finalize(service, [], [], stale, trigger)
        except errors.ApiError as exc:
            problems.append(str(exc))
        if problems:
            self.recorder.event(service, WARNING, "FailedToUpdateEndpointSlices",
                                f"Error updating Endpoint Slices for Service {ns}/{name}: "
                                f"{'; '.join(problems)}")
            raise RuntimeError(f"endpoint slices of {key}: {'; '.join(problems)}")
        self.tracker.commit(key)

    def _desired(self, service: Obj, pods: list[Obj], address_type: str, problems: list[str]
                 ) -> dict[bytes, tuple[list[Obj], dict[Any, Obj]]]:
        publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
        desired: dict[bytes, tuple[list[Obj], dict[Any, Obj]]] = {}
        for pod in pods:
            if not should_pod_be_in_endpoints(pod, True):
                continue
            ports = endpoint_ports(service, pod)
            node_name = (pod.get("spec") or {}).get("nodeName") or ""
            node = self.nodes.get(node_name) if node_name else None
            if node is None and not publish:
                problems.append(f"skipping Pod {pod['metadata']['name']} for Service "
                                f"{service['metadata']['namespace']}/"
                                f"{service['metadata']['name']}: Node {node_name} Not Found")
                continue
            ep = pod_to_endpoint(pod, node, service, address_type)
            if ep["addresses"]:
                group = desired.setdefault(_ports_key(ports), (ports, {}))
                group[1][_ep_key(ep)] = ep
        return desired

    async def _finalize(self, service: Obj, create: list[Obj], update: list[Obj],
                        delete: list[Obj], trigger: datetime | None) -> None:
        ns = service["metadata"]["namespace"]
        for s in create + update:
            annotations = dict(s["metadata"].get("annotations") or {})
            if trigger is not None:
                annotations[TRIGGER_TIME_ANNOTATION] = format_trigger_time(trigger)
            else:
                annotations.pop(TRIGGER_TIME_ANNOTATION, None)
            s["metadata"] = {**s["metadata"], "annotations": annotations}
        if not service["metadata"].get("deletionTimestamp"):
            for s in create:
                self._remember(await self.client.create(ENDPOINTSLICES, s, ns))
        for s in update:
            self._remember(await self.client.update(ENDPOINTSLICES, s, ns))
        for s in delete:
            try:
                await self.client.delete(ENDPOINTSLICES, s["metadata"]["name"], ns)
            except errors.NotFound:
                pass
        if create or update or delete:
            log.debug("endpoint slices written",
                      extra={"service": f"{ns}/{service['metadata']['name']}",
                             "slices_created": len(create), "slices_updated": len(update),
                             "slices_deleted": len(delete)})

    def _remember(self, written: Obj) -> None:
        meta = written.get("metadata") or {}
        self._written[f"{meta.get('namespace')}/{meta.get('name')}"] = \
            int(meta.get("generation") or 0)


def _slice_service(s: Obj) -> list[str]:
    meta = s.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != CONTROLLER_NAME or not labels.get(SERVICE_NAME_LABEL):
        return []
    return [f"{meta.get('namespace')}/{labels[SERVICE_NAME_LABEL]}"]
