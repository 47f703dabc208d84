"""StatefulSet claims: the PVCs of `volumeClaimTemplates` and their retention policy
(pkg/controller/statefulset/stateful_set_utils.go, v1.32).

Each ordinal's pod mounts PVC `<template>-<set>-<ordinal>`, created before the pod and never
deleted here. Ownership decides what the garbage collector removes: with the retention
policy's whenDeleted=Delete a claim is owned by its set; with whenScaled=Delete the claims of
a pod a scale-down removes are owned by that pod alone just before it is deleted. Retain (the
default for both) leaves claims unowned, so they outlive pods and the set and are reattached
when the ordinal comes back.
"""

from __future__ import annotations

import copy
from typing import Any

from navio.api import errors
from navio.client import NORMAL, WARNING
from navio.client.volumes import PVCS

__all__ = ["PVCS", "claim_name", "claims_for", "create_claims", "retain_claims"]

Obj = dict[str, Any]


def _ordinal(pod: Obj) -> int:
    name = pod["metadata"]["name"]
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def claim_name(set_: Obj, template: Obj, ordinal: int) -> str:
    return f"{template['metadata']['name']}-{set_['metadata']['name']}-{ordinal}"


def claims_for(set_: Obj, ordinal: int) -> dict[str, Obj]:
    """getPersistentVolumeClaims: template name -> the PVC this ordinal uses."""
    match = dict(((set_["spec"].get("selector") or {}).get("matchLabels")) or {})
    out = {}
    for tmpl in set_["spec"].get("volumeClaimTemplates") or ():
        claim = copy.deepcopy(tmpl)
        claim.pop("status", None)
        meta = claim.setdefault("metadata", {})
        meta["name"] = claim_name(set_, tmpl, ordinal)
        meta["namespace"] = set_["metadata"]["namespace"]
        meta["labels"] = {**(meta.get("labels") or {}), **match}
        claim.update(apiVersion="v1", kind="PersistentVolumeClaim")
        out[tmpl["metadata"]["name"]] = claim
    return out


async def retain_claims(client: Any, claims: Any, set_: Obj, pod: Obj, *, condemned: bool
                        ) -> None:
    """updateClaimOwnerRefForSetAndPod (StatefulSetAutoDeletePVC): with whenScaled=Delete
    the claims of a pod removed by a scale-down are owned by that pod, so the garbage
    collector deletes them after it; otherwise they carry no pod reference. The set's
    reference follows whenDeleted the same way."""
    policy = set_["spec"].get("persistentVolumeClaimRetentionPolicy") or {}
    if policy.get("whenScaled", "Retain") == "Retain" and \
            policy.get("whenDeleted", "Retain") == "Retain":
        return
    ordinal = _ordinal(pod)
    set_ref = {"apiVersion": "apps/v1", "kind": "StatefulSet",
               "name": set_["metadata"]["name"], "uid": set_["metadata"]["uid"]}
    pod_ref = {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"],
               "uid": pod["metadata"]["uid"]}
    for claim in claims_for(set_, ordinal).values():
        key = f"{claim['metadata']['namespace']}/{claim['metadata']['name']}"
        current = claims.get(key)
        if current is None:
            continue
        refs = [r for r in current["metadata"].get("ownerReferences") or ()
                if r.get("uid") not in (set_ref["uid"], pod_ref["uid"])]
        scaled_away = condemned and policy.get("whenScaled") == "Delete"
        if policy.get("whenDeleted") == "Delete" and not scaled_away:
            refs.append(set_ref)
        if scaled_away:
            refs.append(pod_ref)          # the pod alone, so its deletion frees the claim
        if refs == list(current["metadata"].get("ownerReferences") or ()):
            continue
        body = copy.deepcopy(current)
        body["metadata"]["ownerReferences"] = refs
        if not refs:
            body["metadata"].pop("ownerReferences")
        await client.update(PVCS, body)


async def create_claims(client: Any, claims: Any, recorder: Any, set_: Obj, pod: Obj,
                        ordinal: int) -> None:
    """Create the ordinal's missing claims (before its pod), with the set as owner under
    whenDeleted=Delete; events as upstream writes them."""
    policy = set_["spec"].get("persistentVolumeClaimRetentionPolicy") or {}
    for claim in claims_for(set_, ordinal).values():
        key = f"{claim['metadata']['namespace']}/{claim['metadata']['name']}"
        if claims.get(key) is not None:
            continue
        if policy.get("whenDeleted") == "Delete":
            claim["metadata"]["ownerReferences"] = [{
                "apiVersion": "apps/v1", "kind": "StatefulSet",
                "name": set_["metadata"]["name"], "uid": set_["metadata"]["uid"]}]
        try:
            await client.create(PVCS, claim)
        except errors.AlreadyExists:
            continue
        except errors.ApiError as exc:
            recorder.event(set_, WARNING, "FailedCreate",
                           f"create Claim {claim['metadata']['name']} for Pod "
                           f"{pod['metadata']['name']} in StatefulSet "
                           f"{set_['metadata']['name']} failed error: {exc}")
            raise
        recorder.event(set_, NORMAL, "SuccessfulCreate",
                       f"create Claim {claim['metadata']['name']} Pod "
                       f"{pod['metadata']['name']} in StatefulSet "
                       f"{set_['metadata']['name']} success")
