"""navio's own kinds, defined as CustomResourceDefinitions installed at server start.

There is one mechanism for kinds beyond Kubernetes' own: a CRD. `install` creates each CRD
missing from the store, or brings a stored one up to this version's definition, before the
CRD controller starts (so the kinds are served from the first request on).

- `podgroups.scheduling.navio.dev` (PodGroup, v1alpha1): gangs of pods bound all-or-nothing
  by the scheduler (navio/scheduler/gang.py); status is written through `/status`.
- `pytorchjobs.kubeflow.org` (PyTorchJob, v1): Kubeflow's training jobs, run by the
  controller manager's `pytorchjob` controller (navio/api/kubeflow.py has the definition).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from navio.api import errors
from navio.api.kubeflow import pytorchjob_crd
from navio.apiserver.resources import Resources, WriteOptions

__all__ = ["builtin_crds", "POD_GROUP_CRD", "install"]

log = logging.getLogger(__name__)

_OPTS = WriteOptions(field_manager="navio", user_agent="navio")

_CONDITION = {
    "type": "object",
    "description": "Condition contains details for one aspect of the current state of this "
                   "API Resource.",
    "required": ["type", "status", "lastTransitionTime", "reason", "message"],
    "properties": {
        "type": {"type": "string", "description": "type of condition in CamelCase.",
                 "maxLength": 316},
        "status": {"type": "string", "enum": ["True", "False", "Unknown"],
                   "description": "status of the condition, one of True, False, Unknown."},
        "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0,
                               "description": "the .metadata.generation the condition was "
                                              "set based upon."},
        "lastTransitionTime": {"type": "string", "format": "date-time",
                               "description": "the last time the condition transitioned "
                                              "from one status to another."},
        "reason": {"type": "string", "maxLength": 1024,
                   "description": "a programmatic identifier for the last transition."},
        "message": {"type": "string", "maxLength": 32768,
                    "description": "a human readable message about the transition."},
    },
}

POD_GROUP_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "podgroups.scheduling.navio.dev",
                 "labels": {"app.kubernetes.io/managed-by": "navio"}},
    "spec": {
        "group": "scheduling.navio.dev",
        "scope": "Namespaced",
        "names": {"plural": "podgroups", "singular": "podgroup", "kind": "PodGroup",
                  "listKind": "PodGroupList", "shortNames": ["pg"]},
        "versions": [{
            "name": "v1alpha1", "served": True, "storage": True,
            "subresources": {"status": {}},
            "additionalPrinterColumns": [
                {"name": "Min Member", "type": "integer", "jsonPath": ".spec.minMember",
                 "description": "Pods that must be bound at the same time."},
                {"name": "Scheduled", "type": "integer", "jsonPath": ".status.scheduled",
                 "description": "Pods of the group bound to nodes."},
                {"name": "Phase", "type": "string", "jsonPath": ".status.phase",
                 "description": "Pending, Scheduled or Unschedulable."},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "description": "PodGroup is a set of pods that must be scheduled together "
                               "(gang scheduling): none is bound until minMember of them fit "
                               "at once. Pods join a group with the label "
                               "scheduling.navio.dev/pod-group: <name>.",
                "properties": {
                    "spec": {
                        "type": "object",
                        "description": "spec says how many pods of the group must be placed "
                                       "together.",
                        "required": ["minMember"],
                        "properties": {
                            "minMember": {
                                "type": "integer", "format": "int32", "minimum": 1,
                                "description": "minMember is the number of pods of the group "
                                               "that must be bound at the same time; until "
                                               "that many fit, none of them is bound. At "
                                               "least 1."},
                            "scheduleTimeoutSeconds": {
                                "type": "integer", "format": "int32", "minimum": 1,
                                "description": "scheduleTimeoutSeconds: how long the "
                                               "group may stay Unschedulable while some "
                                               "members are bound; the controller that "
                                               "owns the gang (PyTorchJob) then deletes "
                                               "them to release their capacity. The "
                                               "scheduler keeps retrying the group."}}},
                    "status": {
                        "type": "object",
                        "description": "status is the scheduler's view of the group, written "
                                       "through the status subresource.",
                        "properties": {
                            "phase": {"type": "string",
                                      "enum": ["Pending", "Scheduled", "Unschedulable"],
                                      "description": "Pending (fewer pods than minMember "
                                                     "exist, or not tried yet), Scheduled (at "
                                                     "least minMember bound) or Unschedulable "
                                                     "(the last attempt could not place "
                                                     "minMember at once)."},
                            "scheduled": {"type": "integer", "format": "int32",
                                          "description": "scheduled is the number of pods of "
                                                         "the group bound to nodes."},
                            "conditions": {"type": "array", "items": _CONDITION,
                                           "x-kubernetes-list-type": "map",
                                           "x-kubernetes-list-map-keys": ["type"],
                                           "description": "a Scheduled condition whose "
                                                          "reason and message say why the "
                                                          "group is or is not scheduled."}}}},
            }},
        }],
    },
}

def builtin_crds() -> tuple[dict[str, Any], ...]:
    return (POD_GROUP_CRD, pytorchjob_crd())


async def install(resources: Resources) -> None:
    """Create the built-in CRDs, or update their spec to this version's."""
    kind = resources.registry.kind("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
    assert kind is not None
    for crd in builtin_crds():
        name = crd["metadata"]["name"]
        try:
            current = await resources.get(kind, "", name)
        except errors.NotFound:
            await resources.create(kind, "", copy.deepcopy(crd), _OPTS)
            log.info("built-in CRD installed", extra={"crd": name})
            continue
        if _spec_differs(current, crd):
            def mutate(cur: dict[str, Any] | None, crd: dict[str, Any] = crd
                       ) -> dict[str, Any]:
                new = copy.deepcopy(cur or {})
                new["spec"] = copy.deepcopy(crd["spec"])
                new.setdefault("metadata", {}).pop("resourceVersion", None)
                return new
            await resources.update(kind, "", name, mutate, _OPTS)
            log.info("built-in CRD updated", extra={"crd": name})


def _spec_differs(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether the stored spec lacks anything the wanted one says (server defaults, such as
    conversion, are in the stored one only)."""
    def covered(want: Any, have: Any) -> bool:
        if isinstance(want, dict):
            return isinstance(have, dict) and all(covered(v, have.get(k))
                                                  for k, v in want.items())
        return bool(want == have)
    return not covered(wanted["spec"], current.get("spec"))
