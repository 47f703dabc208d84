"""Field ownership (`metadata.managedFields`) for writes and server-side apply.

Every write records which manager owns which fields, so that server-side apply can merge an
applied configuration with the live object, prune what an applier stopped applying, and
refuse (409 Conflict) to change a field another manager owns unless forced. This module
repeats the manager stack of k8s.io/apimachinery/pkg/util/managedfields/internal
(fieldmanager.go) over plain dicts, with the SMD walks of `navio.api.structuredmerge`:

    lastappliedupdater → lastappliedmanager → skipnonapplied → capmanagers
    → buildmanagerinfo → managedfieldsupdater → stripmeta → structuredmerge (merge.Updater)

Guarantees, as upstream:
- an Update (create, update, non-apply patch) gives the writer the fields it added or changed
  and takes them from every other manager; removed fields leave every manager; a manager whose
  set empties disappears; timestamps move only for the writer, and only when it took fields;
- an existing object without managedFields gains none from an Update (skipnonapplied); a client
  may replace them through the main resource, or clear them with `[]` / `[{}]`;
- an Apply merges the configuration into the live object, prunes fields the applier applied
  before and no manager owns now, and conflicts on fields whose value it changes and another
  manager owns, Apply or Update; `force` takes them instead; same-value appliers share fields;
- apiVersion, kind and the server-owned metadata fields are never owned (stripmeta); status on
  the main resource of kinds with a status subresource, and spec on `status`, are ignored;
- at most 10 Update entries are kept; older ones merge into `ancient-changes` per apiVersion;
- `kubectl` upgrading from client-side apply may take fields whose live value still matches
  the last-applied annotation, and keeps that annotation in sync (lastapplied*.go).

Not repeated: conversion between apiVersions (every entry is compared in the object's version),
and defaulting after apply (the caller defaults the returned object, as the REST layer does).
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from navio.api import schema as _schema
from navio.api.errors import BadRequest, Conflict
from navio.api.fieldpath import FieldSet, go_json, path_string
from navio.api.structuredmerge import compare, ensure_named_fields_are_members, merge, \
    paths_of, remove_items, to_field_set, values_equal

__all__ = ["LAST_APPLIED_ANNOTATION", "MAX_UPDATE_MANAGERS", "fields_of", "update_managed_fields",
           "apply", "decode_managed_fields", "encode_managed_fields", "ManagedSet"]

LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
MAX_UPDATE_MANAGERS = 10
_BEFORE_FIRST_APPLY = "before-first-apply"
_ANCIENT_CHANGES = "ancient-changes"
_CURRENT_OPERATION = "current-operation"

# stripmeta.go: never part of anyone's managed fields.
_STRIPPED = paths_of([("apiVersion",), ("kind",), ("metadata",), ("metadata", "name"),
                      ("metadata", "namespace"), ("metadata", "creationTimestamp"),
                      ("metadata", "selfLink"), ("metadata", "uid"), ("metadata", "clusterName"),
                      ("metadata", "generation"), ("metadata", "managedFields"),
                      ("metadata", "resourceVersion")])


@dataclass(frozen=True, slots=True)
class ManagedSet:
    """One manager's fields (SMD VersionedSet) and when it last changed them."""

    fields: FieldSet
    api_version: str
    applied: bool
    time: str | None = None


_Managed = dict[str, ManagedSet]   # by manager identifier (BuildManagerIdentifier's JSON)


@functools.lru_cache(maxsize=4096)
def _identifier(manager: str, operation: str, api_version: str, subresource: str) -> str:
    # BuildManagerIdentifier: the entry as JSON without time, fields and (for Apply) apiVersion.
    # Cached: a cluster has few managers, and every write names one or more.
    entry = {"manager": manager, "operation": operation,
             "apiVersion": api_version if operation == "Update" else "",
             "subresource": subresource}
    return "{" + ",".join(f"{go_json(k)}:{go_json(v)}" for k, v in entry.items() if v) + "}"


def decode_managed_fields(entries: list[dict[str, Any]] | None) -> dict[str, ManagedSet]:
    """managedFields entries by manager identifier; ValueError if one is malformed."""
    out: _Managed = {}
    for i, e in enumerate(entries or ()):
        if not isinstance(e, dict):
            raise ValueError(f"managed fields entry {i} is not an object")
        op = e.get("operation")
        if op not in ("Apply", "Update"):
            raise ValueError("operation must be `Apply` or `Update`")
        if not e.get("apiVersion"):
            raise ValueError("apiVersion must not be empty")
        if e.get("fieldsType") != "FieldsV1":
            raise ValueError(f"invalid fieldsType {e.get('fieldsType')!r} in managed fields "
                             f"entry {i}")
        ident = _identifier(e.get("manager") or "", op, e["apiVersion"],
                            e.get("subresource") or "")
        out[ident] = ManagedSet(FieldSet.from_fields_v1(e.get("fieldsV1")), e["apiVersion"],
                                op == "Apply", e.get("time"))
    return out


@functools.lru_cache(maxsize=1024)
def _unix(t: str | None) -> int:
    if not t:
        return 0
    try:
        parsed = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        return 0
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp())


@functools.lru_cache(maxsize=4096)
def _parse_identifier(ident: str) -> dict[str, str]:
    parsed: dict[str, str] = json.loads(ident)
    return parsed


def encode_managed_fields(managed: dict[str, ManagedSet]) -> list[dict[str, Any]]:
    """The managedFields list, sorted as Kubernetes sorts it: Apply before Update, then by time
    (seconds), manager, apiVersion and subresource."""
    entries = []
    for ident, vs in managed.items():
        info = _parse_identifier(ident)
        entry: dict[str, Any] = {}
        if info.get("manager"):
            entry["manager"] = info["manager"]
        entry["operation"] = "Apply" if vs.applied else info.get("operation", "Update")
        entry["apiVersion"] = vs.api_version
        if vs.time is not None:
            entry["time"] = vs.time
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = vs.fields.to_fields_v1()
        if info.get("subresource"):
            entry["subresource"] = info["subresource"]
        entries.append(entry)
    if len(entries) > 1:
        entries.sort(key=lambda e: (e["operation"], _unix(e.get("time")),
                                    e.get("manager", ""), e["apiVersion"],
                                    e.get("subresource", "")))
    return entries


def _ignored(subresource: str, status_subresource: bool) -> FieldSet:
    # The strategies' ResetFields: status on the main resource, spec on the status subresource.
    if subresource == "status":
        return paths_of([("spec",)])
    if not subresource and status_subresource:
        return paths_of([("status",)])
    return FieldSet()


def _api_version(obj: dict[str, Any] | None, sch: Any) -> str:
    if obj and obj.get("apiVersion"):
        return obj["apiVersion"]
    for gvk in _schema.resolve(sch).get("x-kubernetes-group-version-kind", ()):
        return f"{gvk['group']}/{gvk['version']}" if gvk.get("group") else gvk["version"]
    return ""


def _without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    # Shallow: the walks below never mutate what they are given, and a deep copy of a pod was
    # half the cost of an update's field tracking.
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return dict(obj)


class _Conflicts(Exception):
    def __init__(self, conflicts: dict[str, FieldSet]) -> None:
        super().__init__("apply conflicts")
        self.conflicts = conflicts


def _settle(managers: _Managed, old: Any, new: Any, sch: Any, workflow: str, force: bool,
            ignored: FieldSet) -> Any:
    """merge.Updater.update: take changed fields from other managers (or raise _Conflicts when
    not forced) and drop removed fields from them. Returns the comparison."""
    cmp = compare(old, new, sch).exclude(ignored)
    changed = cmp.modified | cmp.added
    conflicts = {m: vs.fields & changed for m, vs in managers.items()
                 if m != workflow and vs.fields & changed}
    if conflicts and not force:
        raise _Conflicts(conflicts)
    for m, vs in list(managers.items()):
        if m == workflow:
            continue
        left = vs.fields - conflicts.get(m, FieldSet()) - cmp.removed
        if left:
            managers[m] = replace(vs, fields=left)
        else:
            del managers[m]
    return cmp


def _cap_update_managers(managers: _Managed) -> None:
    """capmanagers.go: merge the oldest Update entries into one bucket per apiVersion."""
    updaters = [m for m, vs in managers.items() if not vs.applied]
    if len(updaters) <= MAX_UPDATE_MANAGERS:
        return
    updaters.sort(key=lambda m: (_unix(managers[m].time), m))
    first_of: dict[str, str] = {}
    length = len(updaters)
    for m in updaters:
        if length <= MAX_UPDATE_MANAGERS:
            break
        vs = managers[m]
        bucket = _identifier(_ANCIENT_CHANGES, "Update", vs.api_version, "")
        if vs.api_version not in first_of:
            first_of[vs.api_version] = m
            continue
        if bucket not in managers:
            managers[bucket] = managers.pop(first_of[vs.api_version])
        managers[bucket] = ManagedSet(vs.fields | managers[bucket].fields, vs.api_version,
                                      False, vs.time)
        del managers[m]
        length -= 1


def _do_update(old: Any, new: Any, sch: Any, managed: _Managed, ident: str, api_version: str,
               ignored: FieldSet, now: str) -> _Managed:
    """The Update path below skipnonapplied; returns the new managers."""
    managers = dict(managed)
    cmp = _settle(managers, old, new, sch, _CURRENT_OPERATION, True, ignored)
    taken = (cmp.modified | cmp.added).recursive_difference(ignored) - _STRIPPED
    if taken:
        prev = managers.get(ident)
        managers[ident] = ManagedSet(taken | prev.fields if prev else taken, api_version,
                                     False, now)
    _cap_update_managers(managers)
    return managers


def _prune(merged: Any, managers: _Managed, last: ManagedSet | None, sch: Any) -> Any:
    """merge.Updater.prune: remove what the applier applied last time, does not apply now, and
    no manager owns; fields the applier never applied stay."""
    if last is None or not last.fields:
        return merged

    def named(s: FieldSet) -> FieldSet:
        return ensure_named_fields_are_members(s, sch)

    last_set = named(last.fields)
    pruned = remove_items(merged, sch, last_set)
    owned = FieldSet()
    for vs in managers.values():
        owned |= vs.fields
    merged_set = named(to_field_set(merged, sch))
    pruned = remove_items(merged, sch,
                          merged_set - (named(to_field_set(pruned, sch)) | named(owned)))
    return remove_items(merged, sch,
                        (merged_set - named(to_field_set(pruned, sch))) & last_set)


def _do_apply(live: Any, config: dict[str, Any], sch: Any, managed: _Managed, ident: str,
              api_version: str, ignored: FieldSet, force: bool, now: str
              ) -> tuple[Any, _Managed]:
    managers = dict(managed)
    merged = merge(live, config, sch)
    last = managers.get(ident)
    applied = to_field_set(config, sch).recursive_difference(ignored)
    managers[ident] = ManagedSet(applied, api_version, True, last.time if last else None)
    merged = _prune(merged, managers, last, sch)
    _settle(managers, live, merged, sch, ident, force, ignored)
    mine = managers[ident]
    if not values_equal(live, merged):
        mine = replace(mine, time=now)
    if mine.fields - _STRIPPED:
        managers[ident] = replace(mine, fields=mine.fields - _STRIPPED)
    else:
        del managers[ident]
    return merged, managers


def _print_manager(ident: str) -> str:
    info = json.loads(ident)
    out = json.dumps(info.get("manager", ""), ensure_ascii=False)
    if info.get("subresource"):
        out += f" with subresource {json.dumps(info['subresource'], ensure_ascii=False)}"
    if info.get("operation") == "Update":
        out += f" using {info.get('apiVersion', '')}"
    return out


def _conflict_error(conflicts: dict[str, FieldSet]) -> Conflict:
    """conflict.go NewConflictError: 409 with one FieldManagerConflict cause per field."""
    pairs = [(m, p) for m in sorted(conflicts) for p in conflicts[m]]
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {_print_manager(m)}",
               "field": path_string(p)} for m, p in pairs]
    if len(pairs) == 1:
        m, p = pairs[0]
        message = f"Apply failed with 1 conflict: conflict with {_print_manager(m)}: " \
                  f"{path_string(p)}"
    else:
        lines = []
        for m in sorted(conflicts):
            lines.append(f"conflicts with {_print_manager(m)}:")
            lines.extend(f"- {path_string(p)}" for p in conflicts[m])
        message = f"Apply failed with {len(pairs)} conflicts: " + "\n".join(lines)
    return Conflict(message, details={"causes": causes})


def _allowed_from_last_applied(live: dict[str, Any], sch: Any, api_version: str
                               ) -> FieldSet | None:
    """lastappliedmanager.go: fields of the last-applied annotation whose live value still
    matches it; None when there is no usable annotation."""
    text = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED_ANNOTATION)
    if not text:
        return None
    try:
        last = json.loads(text)
    except ValueError:
        return None
    if not isinstance(last, dict) or last.get("apiVersion") != api_version:
        return None
    cmp = compare(last, live, sch)
    return to_field_set(last, sch) - cmp.modified - cmp.added - cmp.removed


def _last_applied_value(config: dict[str, Any]) -> str:
    # lastappliedupdater.go buildLastApplied: the applied object without the annotation, as
    # encoding/json writes it (sorted keys, HTML-escaped, trailing newline).
    obj = copy.deepcopy(config)
    meta = obj.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict):
        meta["annotations"].pop(LAST_APPLIED_ANNOTATION, None)
    return go_json(obj) + "\n"


def _reset(obj: dict[str, Any], live: dict[str, Any] | None, ignored: FieldSet) -> None:
    """Put ignored top-level fields back to their live values, as the strategies'
    PrepareForCreate/PrepareForUpdate do."""
    for p in ignored.paths:
        name = p[0].payload
        if live is not None and name in live:
            obj[name] = copy.deepcopy(live[name])
        else:
            obj.pop(name, None)


def fields_of(obj: dict[str, Any], schema: dict[str, Any] | str, *, subresource: str = "",
              status_subresource: bool = False) -> FieldSet:
    """The fields `obj` sets, as an applier of `obj` would own them: leaves, list items and map
    entries, without apiVersion, kind, server-owned metadata and ignored fields."""
    return (to_field_set(obj, schema).recursive_difference(
        _ignored(subresource, status_subresource)) - _STRIPPED)


def update_managed_fields(old: dict[str, Any] | None, new: dict[str, Any], *, manager: str,
                          schema: dict[str, Any] | str, now: str, subresource: str = "",
                          status_subresource: bool = False, api_version: str | None = None
                          ) -> dict[str, Any]:
    """`new` (a copy) with `metadata.managedFields` updated for a create (`old` None), update
    or non-apply patch by `manager`. `now` is the RFC 3339 time to stamp."""
    result = dict(new)
    result["metadata"] = meta = dict(new.get("metadata") or {})
    version = api_version or _api_version(new, schema)
    # fieldmanager.go decodeLiveOrNew.
    old_meta = (old or {}).get("metadata") or {}
    try:
        managed = decode_managed_fields(old_meta.get("managedFields"))
    except ValueError:
        managed = {}
    if not subresource and "managedFields" in meta:
        sent = meta.get("managedFields")
        if sent is not None and (sent == [] or sent == [{}]):
            managed = {}
        else:
            try:
                decoded = decode_managed_fields(sent)
            except ValueError:
                decoded = {}
            if decoded:
                managed = decoded
    meta.pop("managedFields", None)
    if not managed and old is not None:   # skipnonapplied: no tracking starts on update
        return result
    ignored = _ignored(subresource, status_subresource)
    ident = _identifier(manager, "Update", version, subresource)
    base = _without_managed_fields(old) if old is not None else {}
    managed = _do_update(base, result, schema, managed, ident, version, ignored, now)
    if managed:
        meta["managedFields"] = encode_managed_fields(managed)
    return result


def apply(live: dict[str, Any] | None, config: dict[str, Any], *, manager: str, force: bool,
          schema: dict[str, Any] | str, now: str, subresource: str = "",
          status_subresource: bool = False, api_version: str | None = None) -> dict[str, Any]:
    """Server-side apply of `config` by `manager` to `live` (None: create). Returns the merged
    object with managedFields; raises Conflict (409) when `config` changes fields another
    manager owns and `force` is false, BadRequest when `config` carries managedFields."""
    cmeta = config.get("metadata")
    if isinstance(cmeta, dict) and cmeta.get("managedFields") is not None:
        raise BadRequest("metadata.managedFields must be nil")
    version = api_version or _api_version(config, schema) or _api_version(live, schema)
    ignored = _ignored(subresource, status_subresource)
    base = _without_managed_fields(live) if live is not None else {}
    try:
        managed = decode_managed_fields(((live or {}).get("metadata") or {}).get("managedFields"))
    except ValueError:
        managed = {}
    if not managed and live is not None:
        # skipnonapplied: whoever wrote the object so far becomes one Update manager.
        managed = _do_update({}, base, schema, managed,
                             _identifier(_BEFORE_FIRST_APPLY, "Update", version, subresource),
                             version, ignored, now)
    ident = _identifier(manager, "Apply", version, subresource)
    try:
        merged, managed = _do_apply(base, config, schema, managed, ident, version, ignored,
                                    force, now)
    except _Conflicts as exc:
        allowed = _allowed_from_last_applied(base, schema, version) \
            if manager == "kubectl" and live is not None else None
        if allowed is None:
            raise _conflict_error(exc.conflicts) from None
        left = {m: s - allowed for m, s in exc.conflicts.items() if s - allowed}
        if left:
            raise _conflict_error(left) from None
        merged, managed = _do_apply(base, config, schema, managed, ident, version, ignored,
                                    True, now)
    result = copy.deepcopy(merged) if isinstance(merged, dict) else {}
    _reset(result, base if live is not None else None, ignored)
    meta = result.setdefault("metadata", {})
    annotations = meta.get("annotations")
    if manager == "kubectl" and isinstance(annotations, dict) \
            and annotations.get(LAST_APPLIED_ANNOTATION):
        meta["annotations"] = {**annotations, LAST_APPLIED_ANNOTATION: _last_applied_value(config)}
    meta.pop("managedFields", None)
    if managed:
        meta["managedFields"] = encode_managed_fields(managed)
    return result
