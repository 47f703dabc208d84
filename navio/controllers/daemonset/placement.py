"""Where daemon pods go: which nodes should run a DaemonSet's pod, with which tolerations
and node affinity (pkg/controller/daemon/util and NodeShouldRunDaemonPod, v1.32).

Guarantees:
- A node is eligible when the template's nodeName (if any), nodeSelector and required node
  affinity match it and every NoSchedule/NoExecute taint is tolerated, counting the
  tolerations every daemon pod gets: not-ready and unreachable (NoExecute, forever),
  disk/memory/pid-pressure and unschedulable (NoSchedule), and network-unavailable with
  hostNetwork. A pod stays on a node that became ineligible only through untolerated
  NoSchedule taints.
- Pods are pinned with required node affinity `metadata.name In [<node>]` replacing the
  template's required terms, so the scheduler places them.
"""

from __future__ import annotations

import copy
from typing import Any

from navio.api import nodeaffinity
from navio.controllers.nodelifecycle import NOT_READY, UNREACHABLE, tolerates

__all__ = ["daemon_tolerations", "required_affinity_matches", "node_should_run",
           "node_affinity_for", "target_node"]

Obj = dict[str, Any]


def daemon_tolerations(spec: Obj) -> list[Obj]:
    """util.AddOrUpdateDaemonPodTolerations applied to a pod spec's tolerations."""
    tols = [dict(t) for t in spec.get("tolerations") or ()]
    extra = [(NOT_READY, "NoExecute"), (UNREACHABLE, "NoExecute"),
             ("node.kubernetes.io/disk-pressure", "NoSchedule"),
             ("node.kubernetes.io/memory-pressure", "NoSchedule"),
             ("node.kubernetes.io/pid-pressure", "NoSchedule"),
             ("node.kubernetes.io/unschedulable", "NoSchedule")]
    if spec.get("hostNetwork"):
        extra.append(("node.kubernetes.io/network-unavailable", "NoSchedule"))
    for key, effect in extra:
        want = {"key": key, "operator": "Exists", "effect": effect}
        same = [i for i, t in enumerate(tols) if t.get("key") == key and t.get("effect") == effect
                and (t.get("operator") or "Equal") == "Exists" and not t.get("value")]
        if same:
            tols[same[0]] = want          # AddOrUpdateTolerationInPodSpec replaces
        else:
            tols.append(want)
    return tols


def required_affinity_matches(spec: Obj, node: Obj) -> bool:
    """nodeaffinity.GetRequiredNodeAffinity(pod).Match(node): nodeSelector AND terms."""
    return nodeaffinity.required_matches(spec, node)


def _untolerated(taints: list[Obj], tols: list[Obj], effects: tuple[str, ...]) -> bool:
    return any(t.get("effect") in effects and not any(tolerates(x, t) for x in tols)
               for t in taints)


def node_should_run(node: Obj, ds: Obj) -> tuple[bool, bool]:
    """NodeShouldRunDaemonPod: (should run, should continue running)."""
    spec = (ds["spec"].get("template") or {}).get("spec") or {}
    name = node["metadata"]["name"]
    if spec.get("nodeName") and spec["nodeName"] != name:
        return False, False
    if not required_affinity_matches(spec, node):
        return False, False
    taints = (node.get("spec") or {}).get("taints") or []
    tols = daemon_tolerations(spec)
    if _untolerated(taints, tols, ("NoSchedule", "NoExecute")):
        return False, not _untolerated(taints, tols, ("NoExecute",))
    return True, True


def node_affinity_for(affinity: Obj | None, node: str) -> Obj:
    """util.ReplaceDaemonSetPodNodeNameNodeAffinity."""
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
    affinity = copy.deepcopy(affinity) if affinity else {}
    na = affinity.setdefault("nodeAffinity", {})
    req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
    if req is None:
        na["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [term]}
    else:
        req["nodeSelectorTerms"] = [term]
    return affinity


def target_node(pod: Obj) -> str | None:
    """util.GetTargetNodeName: spec.nodeName, else the node the affinity pins."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    req = ((((spec.get("affinity") or {}).get("nodeAffinity") or {})
            .get("requiredDuringSchedulingIgnoredDuringExecution")) or {})
    for term in req.get("nodeSelectorTerms") or ():
        for f in term.get("matchFields") or ():
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and \
                    len(f.get("values") or []) == 1:
                return str(f["values"][0])
    return None

