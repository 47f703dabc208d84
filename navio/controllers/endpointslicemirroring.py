"""EndpointSlices mirrored from custom Endpoints (kube-controller-manager's
"endpointslice-mirroring", pkg/controller/endpointslicemirroring, v1.32).

Why: users (and older tools) still write Endpoints by hand for Services without a selector;
kube-proxy and DNS read only EndpointSlices, so the Endpoints must be mirrored.

Guarantees:
- Endpoints are mirrored only when a Service of the same name exists and has no selector,
  the Endpoints do not carry `endpointslice.kubernetes.io/skip-mirror: "true"` nor the
  `control-plane.alpha.kubernetes.io/leader` annotation; otherwise their mirrored slices are
  deleted (also when the Endpoints or the Service go).
- One slice per (address type, port set): the addresses of all subsets with those ports,
  ready ones with `ready: true`, not-ready ones with `ready: false`, each with its
  hostname, nodeName and targetRef; at most `mirroring-max-endpoints-per-subset` (1000)
  addresses per subset are mirrored (a `TooManyAddressesToMirror` warning says how many
  were not), addresses that are not IPs are skipped (an `InvalidIPAddress` warning).
- Slices are named `<endpoints>-<random>`, carry the Endpoints' labels plus
  `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by:
  endpointslicemirroring-controller.k8s.io`, its annotations except the last-change
  trigger time and kubectl's last-applied configuration, and are owned by the Endpoints.
  A slice is rewritten only when its endpoints, labels or annotations differ; extra slices
  are reused for creates, then deleted.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import orjson

from navio.api import errors
from navio.client import ENDPOINTS, ENDPOINTSLICES, SERVICES, WARNING
from navio.controllers.base import Controller, ControllerContext
from navio.controllers.controller_utils import add_index
from navio.controllers.endpoints import TRIGGER_TIME_ANNOTATION
from navio.controllers.endpointslice import MANAGED_BY_LABEL, SERVICE_NAME_LABEL
from navio.controllers.manager import register

__all__ = ["EndpointSliceMirroringController", "CONTROLLER_NAME", "SKIP_MIRROR_LABEL",
           "should_mirror", "desired_endpoints", "plan_mirrored_slices"]

log = logging.getLogger(__name__)

CONTROLLER_NAME = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
_LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_MIRRORED_INDEX = "endpointslicemirroring-endpoints"
Obj = dict[str, Any]
Key = tuple[str, bytes]


def _canon(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def should_mirror(endpoints: Obj | None) -> bool:
    """shouldMirror: not opted out, not a leader-election lock."""
    if endpoints is None:
        return False
    meta = endpoints.get("metadata") or {}
    return (meta.get("labels") or {}).get(SKIP_MIRROR_LABEL) != "true" and \
        _LEADER_ANNOTATION not in (meta.get("annotations") or {})


def _address_type(ip: str) -> str | None:
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return None


def _slice_ports(ports: list[Obj]) -> list[Obj]:
    """epPortsToEpsPorts."""
    out = []
    for p in ports:
        port: Obj = {"name": p.get("name") or "", "port": p.get("port"),
                     "protocol": p.get("protocol") or "TCP"}
        if p.get("appProtocol"):
            port["appProtocol"] = p["appProtocol"]
        out.append(port)
    return out


def _endpoint(address: Obj, ready: bool) -> Obj:
    """addressToEndpoint."""
    ep: Obj = {"addresses": [address["ip"]], "conditions": {"ready": ready}}
    if address.get("hostname"):
        ep["hostname"] = address["hostname"]
    if address.get("nodeName"):
        ep["nodeName"] = address["nodeName"]
    if address.get("targetRef"):
        ep["targetRef"] = address["targetRef"]
    return ep


def _ep_key(ep: Obj) -> tuple[Any, ...]:
    ref = ep.get("targetRef") or {}
    return (tuple(sorted(ep.get("addresses") or ())), ep.get("hostname") or "",
            ref.get("namespace", ""), ref.get("name", ""))


def _slice_key(slice_: Obj) -> Key:
    return (str(slice_.get("addressType")),
            b"\n".join(sorted(_canon(p) for p in slice_.get("ports") or ())))


def desired_endpoints(endpoints: Obj, max_per_subset: int
                      ) -> tuple[dict[Key, tuple[list[Obj], dict[Any, Obj]]], int, int]:
    """desiredCalc: per (address type, ports), the ports and the endpoints by identity;
    plus the numbers of invalid and of skipped addresses."""
    desired: dict[Key, tuple[list[Obj], dict[Any, Obj]]] = {}
    invalid = skipped = 0
    for subset in endpoints.get("subsets") or ():
        ports = _slice_ports(subset.get("ports") or [])
        ports_key = b"\n".join(sorted(_canon(p) for p in ports))
        entries = [(a, True) for a in subset.get("addresses") or ()] + \
            [(a, False) for a in subset.get("notReadyAddresses") or ()]
        added = 0
        for address, ready in entries:
            if added >= max_per_subset:
                break
            kind = _address_type(str(address.get("ip") or ""))
            if kind is None:
                invalid += 1
                continue
            ep = _endpoint(address, ready)
            _, eps = desired.setdefault((kind, ports_key), (ports, {}))
            eps.setdefault(_ep_key(ep), ep)
            added += 1
        skipped += len(entries) - added
    return desired, invalid, skipped


def _new_slice(endpoints: Obj, ports: list[Obj], address_type: str, name: str | None) -> Obj:
    """newEndpointSlice."""
    meta = endpoints["metadata"]
    labels = dict(meta.get("labels") or {})
    labels[SERVICE_NAME_LABEL] = meta["name"]
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k not in (TRIGGER_TIME_ANNOTATION, _LAST_APPLIED)}
    smeta: Obj = {"namespace": meta["namespace"], "labels": labels, "annotations": annotations,
                  "ownerReferences": [{"apiVersion": "v1", "kind": "Endpoints",
                                       "name": meta["name"], "uid": meta.get("uid"),
                                       "controller": True, "blockOwnerDeletion": True}]}
    if name:
        smeta["name"] = name
    else:
        smeta["generateName"] = f"{meta['name']}-"
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": smeta,
            "addressType": address_type, "ports": ports, "endpoints": []}


def plan_mirrored_slices(endpoints: Obj, existing: list[Obj], max_per_subset: int
                         ) -> tuple[list[Obj], list[Obj], list[Obj]]:
    """reconcile + reconcileByPortMapping + recycleSlices: (create, update, delete)."""
    desired, _, _ = desired_endpoints(endpoints, max_per_subset)
    by_key: dict[Key, list[Obj]] = {}
    for s in sorted(existing, key=lambda s: s["metadata"].get("name", "")):
        by_key.setdefault(_slice_key(s), []).append(s)
    create: list[Obj] = []
    update: list[Obj] = []
    delete: list[Obj] = []
    for key, (ports, eps) in desired.items():
        have = by_key.get(key, [])
        delete += have[1:]
        new = _new_slice(endpoints, ports, key[0], None)
        new["endpoints"] = list(eps.values())[:max_per_subset]
        if have:
            first = have[0]
            same_eps = {_ep_key(e): _canon(e) for e in first.get("endpoints") or ()} == \
                {k: _canon(e) for k, e in eps.items()}
            if same_eps and (first["metadata"].get("labels") or {}) == \
                    new["metadata"]["labels"] and \
                    (first["metadata"].get("annotations") or {}) == \
                    new["metadata"]["annotations"]:
                continue
            new["metadata"]["name"] = first["metadata"]["name"]
            new["metadata"].pop("generateName", None)
            new["metadata"]["resourceVersion"] = first["metadata"].get("resourceVersion")
            update.append(new)
        else:
            create.append(new)
    for key, slices in by_key.items():
        if key not in desired:
            delete += slices
    while create and delete:                     # recycleSlices
        old, new = delete.pop(), create.pop()
        new["metadata"]["name"] = old["metadata"]["name"]
        new["metadata"].pop("generateName", None)
        new["metadata"]["resourceVersion"] = old["metadata"].get("resourceVersion")
        update.append(new)
    return create, update, delete


def _mirrored_for(s: Obj) -> list[str]:
    meta = s.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != CONTROLLER_NAME or not labels.get(SERVICE_NAME_LABEL):
        return []
    return [f"{meta.get('namespace')}/{labels[SERVICE_NAME_LABEL]}"]


@register("endpointslicemirroring")
class EndpointSliceMirroringController(Controller):
    name = "endpointslicemirroring"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.max_per_subset = int(ctx.options.get("mirroring-max-endpoints-per-subset", 1000))
        self.endpoints = ctx.informers.get(ENDPOINTS)
        self.services = ctx.informers.get(SERVICES)
        self.slices = ctx.informers.get(ENDPOINTSLICES)
        add_index(self.slices, _MIRRORED_INDEX, _mirrored_for)
        self.endpoints.add_handler(**self.handlers(self.enqueue))
        self.services.add_handler(**self.handlers(self.enqueue))
        self.slices.add_handler(**self.handlers(self._slice))

    def _slice(self, s: Obj) -> None:
        for key in _mirrored_for(s):
            self.queue.add(key)

    async def reconcile(self, key: str) -> None:
        """syncEndpoints: mirror Endpoints `key`, or delete its mirrored slices."""
        endpoints = self.endpoints.get(key)
        service = self.services.get(key)
        existing = self.slices.by_index(_MIRRORED_INDEX, key)
        if endpoints is None or not should_mirror(endpoints) or service is None or \
                (service.get("spec") or {}).get("selector"):
            await self._delete(existing)
            return
        _, invalid, skipped = desired_endpoints(endpoints, self.max_per_subset)
        if invalid:
            self.recorder.event(endpoints, WARNING, "InvalidIPAddress",
                                f"Skipped {invalid} invalid IP addresses when mirroring to "
                                "EndpointSlices")
        if skipped > invalid:
            self.recorder.event(endpoints, WARNING, "TooManyAddressesToMirror",
                                f"A max of {self.max_per_subset} addresses can be mirrored to "
                                f"EndpointSlices per Endpoints subset. {skipped} addresses "
                                "were skipped")
        create, update, delete = plan_mirrored_slices(endpoints, existing, self.max_per_subset)
        if not endpoints["metadata"].get("deletionTimestamp"):
            for s in create:
                try:
                    await self.client.create(ENDPOINTSLICES, s)
                except errors.Forbidden as exc:
                    if "being terminated" in str(exc):
                        return
                    raise
        for s in update:
            await self.client.update(ENDPOINTSLICES, s)
        await self._delete(delete)
        if create or update or delete:
            log.info("endpoints mirrored", extra={"endpoints": key, "created": len(create),
                                                  "updated": len(update),
                                                  "deleted": len(delete)})

    async def _delete(self, slices: list[Obj]) -> None:
        for s in slices:
            try:
                await self.client.delete(ENDPOINTSLICES, s["metadata"]["name"],
                                         s["metadata"]["namespace"])
            except errors.NotFound:
                pass
