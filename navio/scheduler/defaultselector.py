"""The selector PodTopologySpread's system-default constraints spread a pod by.

helper.DefaultSelector (framework/plugins/helper/spread.go): the union of the selectors of
the Services selecting the pod, plus the selector of its controlling ReplicationController,
ReplicaSet or StatefulSet. Empty (no service, no such owner) means the pod is not spread by
default — which is why a bare pod is placed purely by resources, while a Deployment's pods
spread over nodes and zones.
"""

from __future__ import annotations

from typing import Any

from navio.api.errors import BadRequest
from navio.api.selectors import LabelSelector, label_selector_from_spec, selector_from_set
from navio.client import NAMESPACE_INDEX, Informer
from navio.scheduler.podinfo import PodInfo

__all__ = ["DefaultSelector"]

_OWNERS = {("v1", "ReplicationController"): "rc", ("apps/v1", "ReplicaSet"): "rs",
           ("apps/v1", "StatefulSet"): "ss"}


def _controller(pod: dict[str, Any]) -> dict[str, Any] | None:
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref  # type: ignore[no-any-return]
    return None


class DefaultSelector:
    def __init__(self, services: Informer | None, rcs: Informer | None,
                 replicasets: Informer | None, statefulsets: Informer | None) -> None:
        self.services = services
        self.owners = {"rc": rcs, "rs": replicasets, "ss": statefulsets}

    def __call__(self, pod: PodInfo) -> LabelSelector:
        labels: dict[str, str] = {}
        if self.services is not None:
            for svc in self.services.by_index(NAMESPACE_INDEX, pod.namespace):
                sel = (svc.get("spec") or {}).get("selector")
                if sel is not None and selector_from_set(sel).matches(pod.labels):
                    labels.update(sel)
        selector = selector_from_set(labels)
        ref = _controller(pod.pod)
        if ref is None:
            return selector
        kind = _OWNERS.get((ref.get("apiVersion", ""), ref.get("kind", "")))
        informer = self.owners.get(kind or "")
        if informer is None:
            return selector
        owner = informer.get(f"{pod.namespace}/{ref.get('name', '')}")
        if owner is None:
            return selector
        spec_sel = (owner.get("spec") or {}).get("selector")
        if kind == "rc":
            labels.update(spec_sel or {})
            return selector_from_set(labels)
        try:
            other = label_selector_from_spec(spec_sel)
        except BadRequest:
            return selector
        if other.nothing:
            return selector
        return LabelSelector(tuple(sorted(selector.requirements + other.requirements,
                                          key=lambda r: r.key)))
