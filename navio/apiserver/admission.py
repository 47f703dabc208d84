"""Built-in admission: the checks and mutations kube-apiserver's default plugins make.

NamespaceLifecycle (no new content in a missing or terminating namespace; the four system
namespaces cannot be deleted), DefaultStorageClass, StorageObjectInUseProtection (claims
and volumes) and PersistentVolumeClaimResize and the Service IP / node port allocation that kube-apiserver's
service REST storage performs. Each create hook returns an undo callable, run if the write does
not happen, so a failed or dry-run create leaves no allocation behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from navio.api import errors
from navio.api.errors import cause
from navio.api.quantity import QuantityError
from navio.api.validation.resources import parse_json_quantity
from navio.api.registry import Kind
from navio.apiserver.allocationclaims import held_by, ip_key, port_key
from navio.apiserver.runtimeclass import admit_runtime_class
from navio.apiserver.serviceaccountadmission import mount_service_account_token

if TYPE_CHECKING:
    from navio.apiserver.resources import Resources, WriteOptions

__all__ = ["IMMORTAL_NAMESPACES", "check_namespace", "admit_create", "admit_update",
           "after_delete", "after_update", "check_delete", "Request", "Validator", "validate",
           "default_storage_class", "PVC_PROTECTION", "PV_PROTECTION"]

IMMORTAL_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})

Undo = Callable[[], None]


def _noop() -> None:
    pass


@dataclass(frozen=True, slots=True)
class Request:
    """One write as validating admission sees it (kube's admission.Attributes)."""
    kind: Kind
    operation: str                     # CREATE, UPDATE, DELETE
    obj: dict[str, Any]                # the object to store (the current one for DELETE)
    old: dict[str, Any] | None
    opts: "WriteOptions"
    subresource: str = ""
    options: dict[str, Any] | None = None   # DELETE: the DeleteOptions (for webhooks)


Validator = Callable[["Resources", Request], Awaitable[None]]


async def validate(resources: "Resources", request: Request) -> None:
    """Run the validating plugins that need the writer: NodeRestriction
    (`noderestriction`) and RBAC escalation checks (`authz.escalation`), which the API
    server's authorization registers in `resources.validators`."""
    for plugin in resources.validators:
        await plugin(resources, request)


async def check_namespace(resources: "Resources", kind: Kind, namespace: str) -> None:
    """NamespaceLifecycle for creates: the namespace must exist and not be terminating."""
    if not kind.namespaced:
        return
    ns_kind = resources.registry.resource("", "v1", "namespaces")
    assert ns_kind is not None
    cache = resources.cache(ns_kind)
    ns = cache.get(ns_kind.storage_key(None, namespace))
    if ns is None:
        await cache.consistent()
        ns = cache.get(ns_kind.storage_key(None, namespace))
    if ns is None:
        raise errors.NotFound(f'namespaces "{namespace}" not found',
                              details={"name": namespace, "kind": "namespaces"})
    if ns.get("metadata", {}).get("deletionTimestamp") or \
            ns.get("status", {}).get("phase") == "Terminating":
        raise errors.Forbidden(
            f"{kind.plural} \"{'<name>'}\" is forbidden: unable to create new content in "
            f"namespace {namespace} because it is being terminated",
            details={"kind": kind.plural, "causes": [{
                "reason": "NamespaceTerminating",
                "message": f"namespace {namespace} is being terminated",
                "field": "metadata.namespace"}]})


def check_delete(kind: Kind, name: str) -> None:
    if kind.group == "" and kind.kind == "Namespace" and name in IMMORTAL_NAMESPACES:
        raise errors.Forbidden(f'namespaces "{name}" is forbidden: this namespace may not be '
                               f'deleted', details={"name": name, "kind": "namespaces"})


async def admit_create(resources: "Resources", kind: Kind, obj: dict[str, Any]) -> Undo:
    if kind.group == "" and kind.kind == "Service":
        return await _allocate_service(resources, obj, None)
    if kind.group == "" and kind.kind == "Pod":
        _admit_pod(resources, obj)
    elif kind.group == "" and kind.kind in ("PersistentVolumeClaim", "PersistentVolume"):
        _admit_storage_object(resources, kind.kind, obj)
    return _noop


# StorageObjectInUseProtection's finalizers and DefaultStorageClass's annotations.
PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"
_IS_DEFAULT = ("storageclass.kubernetes.io/is-default-class",
               "storageclass.beta.kubernetes.io/is-default-class")
_BETA_CLASS = "volume.beta.kubernetes.io/storage-class"


def default_storage_class(classes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The class marked default; the newest when several are (then by name), as
    storageutil.GetDefaultClass picks."""
    marked = [c for c in classes
              if any(((c.get("metadata") or {}).get("annotations") or {}).get(a) == "true"
                     for a in _IS_DEFAULT)]
    if not marked:
        return None
    marked.sort(key=lambda c: (c["metadata"].get("creationTimestamp") or "",
                               c["metadata"].get("name", "")), reverse=True)
    return marked[0]


def _admit_storage_object(resources: "Resources", kind: str, obj: dict[str, Any]) -> None:
    """StorageObjectInUseProtection: every new claim and volume carries its protection
    finalizer; DefaultStorageClass: a claim that names no class (neither
    `spec.storageClassName` nor the beta annotation) gets the default class, if any."""
    meta = obj.setdefault("metadata", {})
    finalizer = PVC_PROTECTION if kind == "PersistentVolumeClaim" else PV_PROTECTION
    finalizers = meta.setdefault("finalizers", [])
    if finalizer not in finalizers:
        finalizers.append(finalizer)
    if kind != "PersistentVolumeClaim":
        _phase_transition_time(resources, obj, None)
        return
    spec = obj.setdefault("spec", {})
    if spec.get("storageClassName") is not None or _BETA_CLASS in (meta.get("annotations") or {}):
        return
    sc_kind = resources.registry.resource("storage.k8s.io", "v1", "storageclasses")
    if sc_kind is None:
        return
    default = default_storage_class([o for _, o in resources.cache(sc_kind).list()])
    if default is not None:
        spec["storageClassName"] = default["metadata"]["name"]


# DefaultTolerationSeconds: how long pods stay on a node that stopped reporting.
DEFAULT_TOLERATION_SECONDS = 300
_DEFAULT_TOLERATIONS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def _admit_pod(resources: "Resources", pod: dict[str, Any]) -> None:
    """The mutating admission kube-apiserver applies to every new pod: ServiceAccount's
    default account and token volume, Priority's resolution of priorityClassName,
    DefaultTolerationSeconds, then RuntimeClass (`runtimeclass`)."""
    spec = pod.setdefault("spec", {})
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec.get("serviceAccount") or "default"
    spec["serviceAccount"] = spec["serviceAccountName"]
    mount_service_account_token(resources, pod)
    _resolve_priority(resources, pod, spec)
    tolerations = spec.setdefault("tolerations", [])
    for key in _DEFAULT_TOLERATIONS:
        if any(t.get("key") == key and t.get("effect") in ("NoExecute", None, "")
               or (t.get("operator") == "Exists" and not t.get("key"))
               for t in tolerations):
            continue
        tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                            "tolerationSeconds": DEFAULT_TOLERATION_SECONDS})
    admit_runtime_class(resources, pod)


def _resolve_priority(resources: "Resources", pod: dict[str, Any],
                      spec: dict[str, Any]) -> None:
    """Priority admission: `priorityClassName` becomes `priority` (and preemptionPolicy);
    a missing class is 403, as kube-apiserver answers."""
    pc_kind = resources.registry.resource("scheduling.k8s.io", "v1", "priorityclasses")
    name = spec.get("priorityClassName")
    classes = [o for _, o in resources.cache(pc_kind).list()] if pc_kind else []
    if name:
        pc = next((c for c in classes if c["metadata"]["name"] == name), None)
        if pc is None:
            if name in _SYSTEM_PRIORITIES:
                value, policy = _SYSTEM_PRIORITIES[name], "PreemptLowerPriority"
            else:
                raise errors.Forbidden(
                    f'pods "{pod.get("metadata", {}).get("name", "")}" is forbidden: no '
                    f'PriorityClass with name {name} was found',
                    details={"kind": "pods"})
        else:
            value, policy = int(pc.get("value", 0)), pc.get("preemptionPolicy",
                                                             "PreemptLowerPriority")
    else:
        default = next((c for c in classes if c.get("globalDefault")), None)
        value = int(default.get("value", 0)) if default else 0
        policy = default.get("preemptionPolicy", "PreemptLowerPriority") if default \
            else "PreemptLowerPriority"
        if default:
            spec["priorityClassName"] = default["metadata"]["name"]
    if spec.get("priority") is not None and spec["priority"] != value:
        raise errors.Forbidden(
            f'pods "{pod.get("metadata", {}).get("name", "")}" is forbidden: the integer '
            f"value of priority ({spec['priority']}) must not be provided in pod spec; "
            f"priority admission controller computed {value} from the given PriorityClass "
            f"name", details={"kind": "pods"})
    spec["priority"] = value
    spec.setdefault("preemptionPolicy", policy)


_SYSTEM_PRIORITIES = {"system-cluster-critical": 2000000000,
                      "system-node-critical": 2000001000}


async def admit_update(resources: "Resources", kind: Kind, new: dict[str, Any],
                       old: dict[str, Any]) -> Undo:
    if kind.group == "" and kind.kind == "Service":
        return await _allocate_service(resources, new, old)
    if kind.group == "" and kind.kind == "PersistentVolumeClaim":
        _admit_claim_resize(resources, new, old)
    elif kind.group == "" and kind.kind == "PersistentVolume":
        _phase_transition_time(resources, new, old)
    return _noop


def _phase_transition_time(resources: "Resources", new: dict[str, Any],
                           old: dict[str, Any] | None) -> None:
    """The PV strategy's status.lastPhaseTransitionTime (GA in 1.31): set at creation and
    whenever the phase changes, unless the writer set a new time itself."""
    status = new.setdefault("status", {})
    old_status = (old or {}).get("status") or {}
    if old is not None and status.get("phase") == old_status.get("phase"):
        return
    if old is None or status.get("lastPhaseTransitionTime") in (
            None, old_status.get("lastPhaseTransitionTime")):
        status["lastPhaseTransitionTime"] = resources.now()


def _storage_bytes(pvc: dict[str, Any]) -> float | None:
    raw = (((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
    try:
        return float(parse_json_quantity(raw).amount) if raw is not None else None
    except QuantityError:
        return None


def _claim_class(pvc: dict[str, Any]) -> str:
    ann = (pvc.get("metadata") or {}).get("annotations") or {}
    return str(ann.get(_BETA_CLASS) or (pvc.get("spec") or {}).get("storageClassName") or "")


def _admit_claim_resize(resources: "Resources", new: dict[str, Any],
                        old: dict[str, Any]) -> None:
    """PersistentVolumeClaimResize: a claim may grow only when bound and when its class (the
    same before and after) allows volume expansion."""
    new_size, old_size = _storage_bytes(new), _storage_bytes(old)
    if new_size is None or old_size is None or new_size <= old_size:
        return
    name = (new.get("metadata") or {}).get("name", "")

    def forbidden(why: str) -> errors.Forbidden:
        return errors.Forbidden(f'persistentvolumeclaims "{name}" is forbidden: {why}',
                                details={"name": name, "kind": "persistentvolumeclaims"})
    if (old.get("status") or {}).get("phase") != "Bound":
        raise forbidden("Only bound persistent volume claims can be resized")
    cls, old_cls = _claim_class(new), _claim_class(old)
    sc_kind = resources.registry.resource("storage.k8s.io", "v1", "storageclasses")
    sc = resources.cache(sc_kind).get(sc_kind.storage_key(None, cls)) \
        if sc_kind is not None and cls and cls == old_cls else None
    if sc is None or sc.get("allowVolumeExpansion") is not True:
        raise forbidden("only dynamically provisioned pvc can be resized and the storageclass "
                        "that provisions the pvc must support resize")


def after_delete(resources: "Resources", kind: Kind, obj: dict[str, Any]) -> None:
    if kind.group == "" and kind.kind == "Service":
        resources.claims.release(obj, held_by(obj))


def after_update(resources: "Resources", kind: Kind, new: dict[str, Any],
                 old: dict[str, Any]) -> None:
    """A stored update of a Service frees what it no longer holds (node ports of a Service
    turned ClusterIP, the address of one turned ExternalName)."""
    if kind.group == "" and kind.kind == "Service":
        resources.claims.release(old, held_by(old) - held_by(new))


def _invalid(obj: dict[str, Any], field: str, value: Any, detail: str) -> errors.Invalid:
    return errors.Invalid("Service", obj.get("metadata", {}).get("name", ""),
                          [cause("FieldValueInvalid", field, detail, value)])


async def _allocate_service(resources: "Resources", obj: dict[str, Any],
                            old: dict[str, Any] | None) -> Undo:
    """Give a Service its cluster IP and node ports, keeping those it already holds. Each new
    value is claimed in the store (`allocationclaims`), so no other API server hands it out."""
    spec = obj.setdefault("spec", {})
    old_spec = (old or {}).get("spec", {})
    svc_type = spec.get("type", "ClusterIP")
    claimed: set[str] = set()
    claims = resources.claims
    try:
        if svc_type != "ExternalName":
            old_ip = old_spec.get("clusterIP")
            ip = spec.get("clusterIP")
            if old is not None and old_ip and (not ip or ip == old_ip):
                spec["clusterIP"] = old_ip
                spec["clusterIPs"] = old_spec.get("clusterIPs") or [old_ip]
            elif ip == "None":
                spec["clusterIPs"] = ["None"]
            elif ip:
                try:
                    ok = await claims.reserve_ip(obj, ip)
                except ValueError as exc:
                    raise _invalid(obj, "spec.clusterIPs", [ip], str(exc)) from None
                if not ok:
                    raise _invalid(obj, "spec.clusterIPs", [ip], f"failed to allocate IP {ip}: "
                                   f"provided IP is already allocated")
                claimed.add(ip_key(ip))
                spec["clusterIPs"] = [ip]
            else:
                ip = await claims.allocate_ip(obj)
                claimed.add(ip_key(ip))
                spec["clusterIP"] = ip
                spec["clusterIPs"] = [ip]
        if svc_type in ("NodePort", "LoadBalancer"):
            old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                         for p in old_spec.get("ports", ())}
            for i, p in enumerate(spec.get("ports", ())):
                held = old_ports.get((p.get("port"), p.get("protocol", "TCP")))
                want = p.get("nodePort")
                if want and want == held:
                    continue
                if want:
                    if port_key(want) in claimed:
                        ok = False
                    else:
                        try:
                            ok = await claims.reserve_port(obj, want)
                        except ValueError as exc:
                            raise _invalid(obj, f"spec.ports[{i}].nodePort", want,
                                           str(exc)) from None
                    if not ok:
                        raise _invalid(obj, f"spec.ports[{i}].nodePort", want,
                                       "provided port is already allocated")
                elif held:
                    p["nodePort"] = held
                    continue
                else:
                    want = await claims.allocate_port(obj)
                    p["nodePort"] = want
                claimed.add(port_key(want))
    except BaseException:
        claims.release(obj, claimed)
        raise

    def rollback() -> None:
        claims.release(obj, claimed)
    return rollback
