"""ControllerRevisions: the template history of DaemonSets and StatefulSets.

Why: both controllers roll pods forward (and back) by comparing a pod's
`controller-revision-hash` label with the revision of the current template, and they keep
the templates they rolled through as `apps/v1` ControllerRevisions owned by the set, as
kube-controller-manager's pkg/controller/history and daemon/update.go do.

Guarantees:
- `template_patch(obj)` is upstream's `getPatch`: `{"spec": {"template": {..., "$patch":
  "replace"}}}`; two revisions are equal when their data are equal as JSON values.
- `revision_hash(data, probe)` is FNV-1 32 over the canonical JSON of the data and then the
  collision count, rendered with `rand.SafeEncodeString` (pkg/controller/history
  HashControllerRevision); `template_hash(template, collision)` is FNV-1a 32 of the canonical
  JSON of the pod template plus the little-endian collision count (controller.ComputeHash).
  Both are deterministic across restarts; they cannot equal Go's byte-for-byte because Go
  hashes its own encoding.
- `ensure_revision` returns the stored revision for a name, creating it if absent; a
  stored revision of that name with other data raises `RevisionCollision`, upon which the
  caller bumps `status.collisionCount` (upstream's collision protocol).
- `truncate_history` deletes the oldest revisions that no live pod uses, keeping at most
  `limit` of them besides the ones in use; it is safe to repeat.
- `revision_for(client, revisions, data)` finds the revision already holding `data` and,
  if it is not the newest, renumbers it newest (a rollback), as both controllers do; it
  also returns the newest number, for a new revision's number.
- `claim_revisions` is ClaimControllerRevisions: revisions matching the owner's selector
  with no controller are adopted, owned ones that stopped matching are released.
"""

from __future__ import annotations

import copy
import logging
import struct
from typing import Any, Iterable

import orjson

from navio.api import errors
from navio.api.selectors import label_selector_from_spec
from navio.client import CONTROLLERREVISIONS, Client, ResourceRef
from navio.controllers.controller_utils import claim

__all__ = ["REVISION_HASH_LABEL", "RevisionCollision", "template_patch", "revision_hash",
           "template_hash", "safe_encode", "controller_ref", "ensure_revision",
           "bump_revision", "truncate_history", "revision_number", "equal_data",
           "owned_revisions", "claim_revisions", "revision_for"]

log = logging.getLogger(__name__)

REVISION_HASH_LABEL = "controller-revision-hash"
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
_FNV_OFFSET, _FNV_PRIME = 0x811C9DC5, 0x01000193


class RevisionCollision(Exception):
    """A ControllerRevision with the wanted name holds another template."""


def _fnv32(data: bytes, *, a: bool) -> int:
    h = _FNV_OFFSET
    for b in data:
        if a:
            h = ((h ^ b) * _FNV_PRIME) & 0xFFFFFFFF
        else:
            h = ((h * _FNV_PRIME) & 0xFFFFFFFF) ^ b
    return h


def safe_encode(s: str) -> str:
    """k8s.io/apimachinery/pkg/util/rand.SafeEncodeString: no vowels, no look-alikes."""
    return "".join(_ALPHANUMS[ord(c) % len(_ALPHANUMS)] for c in s)


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def template_patch(obj: dict[str, Any]) -> dict[str, Any]:
    """The revision data of a DaemonSet or StatefulSet: its pod template, replacing."""
    template = copy.deepcopy((obj.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def revision_hash(data: dict[str, Any], probe: int | None = None) -> str:
    raw = _canonical(data)
    if probe is not None:
        raw += str(probe).encode()
    return safe_encode(str(_fnv32(raw, a=False)))


def template_hash(template: dict[str, Any], collision_count: int | None = None) -> str:
    raw = _canonical(template or {})
    if collision_count is not None:
        raw += struct.pack("<I", collision_count & 0xFFFFFFFF)
    return safe_encode(str(_fnv32(raw, a=True)))


def controller_ref(owner: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    """metav1.NewControllerRef: the ownerReference a controller puts on what it creates."""
    meta = owner.get("metadata") or {}
    return {"apiVersion": api_version, "kind": kind, "name": meta.get("name"),
            "uid": meta.get("uid"), "controller": True, "blockOwnerDeletion": True}


def revision_number(rev: dict[str, Any]) -> int:
    return int(rev.get("revision") or 0)


def equal_data(rev: dict[str, Any], data: dict[str, Any]) -> bool:
    return _canonical(rev.get("data") or {}) == _canonical(data)


def owned_revisions(revisions: Iterable[dict[str, Any]], owner: dict[str, Any]
                    ) -> list[dict[str, Any]]:
    """Revisions controlled by `owner`, oldest (lowest revision number) first."""
    uid = (owner.get("metadata") or {}).get("uid")
    mine = [r for r in revisions
            if any(ref.get("controller") and ref.get("uid") == uid
                   for ref in (r.get("metadata") or {}).get("ownerReferences") or ())]
    return sorted(mine, key=lambda r: (revision_number(r), r["metadata"].get("name", "")))


async def ensure_revision(client: Client, owner: dict[str, Any], ref: dict[str, Any], *,
                          name: str, data: dict[str, Any], number: int,
                          labels: dict[str, str],
                          annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """Create revision `name` holding `data`, or return the stored one if it holds the same
    data; raises RevisionCollision when the name is taken by other data."""
    meta = owner.get("metadata") or {}
    body: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": name, "namespace": meta.get("namespace"),
                         "labels": dict(labels), "ownerReferences": [ref]},
            "data": data, "revision": number}
    if annotations:
        body["metadata"]["annotations"] = dict(annotations)
    try:
        created = await client.create(CONTROLLERREVISIONS, body)
        log.info("controller revision created",
                 extra={"revision": f"{meta.get('namespace')}/{name}", "number": number})
        return created
    except errors.AlreadyExists:
        existing = await client.get(CONTROLLERREVISIONS, name, meta.get("namespace"))
        if equal_data(existing, data):
            return existing
        raise RevisionCollision(name) from None


async def bump_revision(client: Client, rev: dict[str, Any], number: int) -> dict[str, Any]:
    """Give an older revision equal to the current template the newest number (a rollback)."""
    if revision_number(rev) == number:
        return rev
    meta = rev["metadata"]
    return await client.patch(CONTROLLERREVISIONS, meta["name"], {"revision": number},
                              meta.get("namespace"))


async def revision_for(client: Client, revisions: list[dict[str, Any]], data: dict[str, Any]
                       ) -> tuple[dict[str, Any] | None, int]:
    """(the revision holding `data`, made the newest; None if none does), and the newest
    revision number among `revisions` before that."""
    top = max((revision_number(r) for r in revisions), default=0)
    equal = [r for r in revisions if equal_data(r, data)]
    if not equal:
        return None, top
    current = equal[-1]
    if revision_number(current) < top:
        current = await bump_revision(client, current, top + 1)
    return current, top


async def truncate_history(client: Client, revisions: list[dict[str, Any]],
                           in_use: set[str], limit: int) -> int:
    """Delete the oldest revisions whose names are not in `in_use` until at most `limit`
    unused ones remain; returns how many were deleted."""
    unused = [r for r in revisions if r["metadata"]["name"] not in in_use]
    excess = len(unused) - max(limit, 0)
    deleted = 0
    for rev in sorted(unused, key=revision_number)[:max(excess, 0)]:
        meta = rev["metadata"]
        try:
            await client.delete(CONTROLLERREVISIONS, meta["name"], meta.get("namespace"))
            deleted += 1
        except errors.NotFound:
            pass
    return deleted


async def claim_revisions(client: Client, owner_resource: ResourceRef, owner: dict[str, Any],
                          revisions: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The revisions `owner` (a DaemonSet or StatefulSet) controls after adopting orphans its
    selector matches and releasing its own that stopped matching, oldest first (kube's
    controlledHistories / adoptOrphanRevisions). `revisions` are those of its namespace."""
    selector = label_selector_from_spec((owner.get("spec") or {}).get("selector"))
    uid = (owner.get("metadata") or {}).get("uid")
    candidates = [r for r in revisions
                  if not any(ref.get("controller") and ref.get("uid") != uid
                             for ref in (r.get("metadata") or {}).get("ownerReferences") or ())]
    claimed = await claim(client, CONTROLLERREVISIONS, owner_resource, owner,
                          lambda r: selector.matches((r.get("metadata") or {}).get("labels")),
                          candidates)
    return sorted(claimed, key=lambda r: (revision_number(r), r["metadata"].get("name", "")))
