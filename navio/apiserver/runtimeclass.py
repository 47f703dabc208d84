"""RuntimeClass admission: a pod's runtime class applied to it when it is created.

As kube-apiserver's RuntimeClass plugin (plugin/pkg/admission/runtimeclass, v1.32), for pod
creates only (no subresource):

* mutating (`admit_runtime_class`): the class's `overhead.podFixed` becomes the pod's
  `spec.overhead` (a pod that already sets a different one is refused), the class's
  `scheduling.nodeSelector` is merged into the pod's (a key set to another value is refused
  with kube's `conflict: ...` message) and its tolerations are merged into the pod's as
  kube's MergeTolerations does (a toleration another one covers is dropped);
* validating (`validate_runtime_class`): the stored overhead must still be the class's, and
  a pod without a class overhead may not carry one.

A class that does not exist is not refused here: kube admits the pod and its kubelet then
fails to create the sandbox (`runtimeclass.node.k8s.io "x" not found`), as navio's does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from navio.api import errors
from navio.api.quantity import Quantity, QuantityError

if TYPE_CHECKING:
    from navio.apiserver.admission import Request
    from navio.apiserver.resources import Resources

__all__ = ["admit_runtime_class", "validate_runtime_class", "merge_tolerations"]

_MISMATCH = "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"
_UNDECLARED = "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"


def _runtime_class(resources: "Resources", pod: dict[str, Any]) -> dict[str, Any] | None:
    name = (pod.get("spec") or {}).get("runtimeClassName")
    kind = resources.registry.resource("node.k8s.io", "v1", "runtimeclasses")
    if not name or kind is None:
        return None
    return resources.cache(kind).get(kind.storage_key(None, name))


def _forbidden(pod: dict[str, Any], why: str) -> errors.Forbidden:
    name = (pod.get("metadata") or {}).get("name", "")
    return errors.Forbidden(f'pods "{name}" is forbidden: {why}',
                            details={"name": name, "kind": "pods"})


def _quantities(resources: Any) -> dict[str, Any] | None:
    """A ResourceList compared as apiequality.Semantic does (quantities by value)."""
    if resources is None:
        return None
    out: dict[str, Any] = {}
    for k, v in resources.items():
        try:
            out[k] = Quantity.parse(str(v).strip()).amount
        except QuantityError:
            out[k] = v
    return out


def _class_overhead(rc: dict[str, Any] | None) -> dict[str, Any] | None:
    overhead = (rc or {}).get("overhead")
    return None if overhead is None else dict(overhead.get("podFixed") or {})


def admit_runtime_class(resources: "Resources", pod: dict[str, Any]) -> None:
    rc = _runtime_class(resources, pod)
    if rc is None:
        return
    spec = pod.setdefault("spec", {})
    fixed = _class_overhead(rc)
    if fixed is not None:
        if spec.get("overhead") and _quantities(spec["overhead"]) != _quantities(fixed):
            raise _forbidden(pod, _MISMATCH)
        spec["overhead"] = fixed
    scheduling = rc.get("scheduling")
    if scheduling is None:
        return
    wanted = scheduling.get("nodeSelector") or {}
    selector = spec.get("nodeSelector")
    if selector is None:
        selector = dict(wanted) if scheduling.get("nodeSelector") is not None else None
    else:
        for key, value in wanted.items():
            if key in selector and selector[key] != value:
                raise _forbidden(pod, f"conflict: runtimeClass.scheduling.nodeSelector[{key}] = "
                                      f"{value}; pod.spec.nodeSelector[{key}] = {selector[key]}")
            selector[key] = value
    if selector is not None:
        spec["nodeSelector"] = selector
    merged = merge_tolerations(spec.get("tolerations") or [], scheduling.get("tolerations") or [])
    if merged:
        spec["tolerations"] = merged


async def validate_runtime_class(resources: "Resources", request: "Request") -> None:
    kind = request.kind
    if (kind.group, kind.kind) != ("", "Pod") or request.operation != "CREATE" or \
            request.subresource:
        return
    pod = request.obj
    fixed = _class_overhead(_runtime_class(resources, pod))
    overhead = (pod.get("spec") or {}).get("overhead")
    if fixed is not None:
        if _quantities(fixed) != _quantities(overhead):
            raise _forbidden(pod, _MISMATCH)
    elif overhead is not None:
        raise _forbidden(pod, _UNDECLARED)


def _normal(t: dict[str, Any]) -> tuple[Any, ...]:
    return (t.get("key") or "", t.get("operator") or "", t.get("value") or "",
            t.get("effect") or "", t.get("tolerationSeconds"))


def _is_superset(ss: dict[str, Any], t: dict[str, Any]) -> bool:
    """Whether `ss` tolerates everything `t` does (kube's isSuperset)."""
    if _normal(ss) == _normal(t):
        return True
    ss_key, ss_op = ss.get("key") or "", ss.get("operator") or ""
    if (t.get("key") or "") != ss_key and (ss_key != "" or ss_op != "Exists"):
        return False
    ss_effect = ss.get("effect") or ""
    if (t.get("effect") or "") != ss_effect and ss_effect != "":
        return False
    if ss_effect == "NoExecute" and ss.get("tolerationSeconds") is not None:
        if t.get("tolerationSeconds") is None or t["tolerationSeconds"] > ss["tolerationSeconds"]:
            return False
    if ss_op in ("Equal", ""):
        return (t.get("operator") or "") == "Equal" and \
            (t.get("value") or "") == (ss.get("value") or "")
    return ss_op == "Exists"


def merge_tolerations(first: list[dict[str, Any]],
                      second: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """kube's tolerations.MergeTolerations: both lists, without those another one covers
    (of two equal tolerations the first is kept)."""
    everything = [*first, *second]
    merged: list[dict[str, Any]] = []
    for i, t in enumerate(everything):
        if any(_is_superset(m, t) for m in merged):
            continue
        if any(_normal(t) != _normal(t2) and _is_superset(t2, t)
               for t2 in everything[i + 1:]):
            continue
        merged.append(t)
    return merged
