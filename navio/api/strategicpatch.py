"""Kubernetes strategic merge patch (`application/strategic-merge-patch+json`), server side.

kubectl's `apply` (three-way patch), `edit` and `rollout restart` send this format; the server
applies it as k8s.io/apimachinery/pkg/util/strategicpatch/patch.go `StrategicMergeMapPatch`
does (merging the parallel lists, ignoring unmatched nulls), and this module ports that code.
What each field does comes from the schema in `navio.api.schema`: a list whose property has
`x-kubernetes-patch-strategy: merge` merges its elements by `x-kubernetes-patch-merge-key`
(containers by name, ports by containerPort) or, for scalars, as a set (finalizers); any other
list is replaced; a map with strategy `replace` is replaced; other maps merge recursively.
Fields the schema does not know merge like a JSON merge patch (maps recurse, lists replace).

Directives: `null` deletes a key; `$patch: replace|delete` in a map; `$patch: delete|replace`
as a list element; `$setElementOrder/<list>` orders the merged list; `$retainKeys` clears the
keys it does not name; `$deleteFromPrimitiveList/<list>` removes scalars.

Order of a merged list, as upstream: `$setElementOrder` first, then the order of the patch
list, then that of the live list; elements the live list did not have come before the live
elements that the patch does not mention. Two of upstream's accidents are reproduced because
results depend on them: `$setElementOrder` orders by the live slice as Go's in-place deletes
and appends left it (a fixture in patch_test.go relies on this), and an order list that omits
elements is applied with Go's insertion sort and its inconsistent comparator (exact up to the
20 elements sort.SliceStable sorts that way). Go visits a patch's keys in random order; here a
`$deleteFromPrimitiveList` always applies after the list's own additions.

Deliberate differences, each where upstream's result is an accident of its implementation:
- a map carrying `$patch: replace` for a key the document lacks becomes that map (upstream's
  `removeDirectives` drops it silently);
- `$deleteFromPrimitiveList/<list>` deletes from a list without merge strategy too (upstream
  replaces the list by the deletion list);
- directives left in values taken verbatim are removed here (upstream leaves them for the typed
  decoder, which keeps a `$patch: delete` element as an ordinary one).

Errors follow handlers/patch.go `interpretPatchError`: a malformed directive is 400
BadRequest; a list of lists is 422 (`UnprocessablePatch`); anything else the library reports
(unknown `$patch`, missing merge key, mismatched element types) is a 500 `PatchError`.
The inputs are never mutated; the result shares no structure with them.
"""

from __future__ import annotations

import json
from typing import Any

from navio.api import errors
from navio.api import schema as _schema
from navio.api.patch import PatchError, UnprocessablePatch, clone

__all__ = ["strategic_merge_patch"]

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder"
_DELETE_PRIMITIVES = "$deleteFromPrimitiveList"

# k8s.io/apimachinery/pkg/util/mergepatch/errors.go
_BAD_ORDER_FORMAT = "invalid patch format of setElementOrder list"
_BAD_PRIMITIVES_FORMAT = "invalid patch format of primitive list"
_BAD_RETAIN_FORMAT = "invalid patch format of retainKeys"
_NO_LIST_OF_LISTS = "lists of lists are not supported"

_DROP = object()  # a value that removes its key or list element instead of being stored

Schema = dict[str, Any] | None


def strategic_merge_patch(doc: dict[str, Any], patch: Any,
                          schema: dict[str, Any] | str | None) -> dict[str, Any]:
    """`doc` with strategic merge patch `patch` applied, guided by `schema` (a definition name
    such as `io.k8s.api.apps.v1.Deployment`, a schema dict, or None for no schema).

    An empty patch, or None (a JSON `null` body, which Go decodes to an empty map), returns an
    equal copy. Raises BadRequest, UnprocessablePatch or PatchError as described above."""
    if patch is None:
        patch = {}
    if not isinstance(patch, dict):
        kind = {"slice": "array", "map": "object"}.get(_type(patch), _type(patch))
        raise errors.BadRequest(f"json: cannot unmarshal {kind} into Go value of type "
                                "map[string]interface {}")
    root = _schema.resolve(schema) if schema else None
    return _merge_map(clone(doc) if isinstance(doc, dict) else {}, clone(patch), root)


# --------------------------------------------------------------------------- schema lookups

def _field(schema: Schema, key: str) -> tuple[Schema, str, str]:
    """The schema of field `key`, its patch strategy ("merge", "replace" or "") and merge key.

    The `x-kubernetes-patch-*` extensions sit on the property beside its `$ref`, so they are
    read before the reference is followed."""
    if not schema:
        return None, "", ""
    raw = (schema.get("properties") or {}).get(key)
    if raw is None:
        extra = schema.get("additionalProperties")
        if not isinstance(extra, dict):
            return None, "", ""
        raw = extra
    try:
        resolved = _schema.resolve(raw)
    except KeyError:  # a dangling $ref: treat the field as unknown
        return None, "", ""
    strategy = raw.get("x-kubernetes-patch-strategy") or resolved.get(
        "x-kubernetes-patch-strategy") or ""
    merge_key = raw.get("x-kubernetes-patch-merge-key") or resolved.get(
        "x-kubernetes-patch-merge-key") or ""
    # extractRetainKeysPatchStrategy: retainKeys only shapes the client's diff.
    strategies = [s for s in strategy.split(",") if s and s != "retainKeys"]
    return resolved, strategies[0] if strategies else "", merge_key


def _items(schema: Schema) -> Schema:
    items = schema.get("items") if schema else None
    try:
        return _schema.resolve(items) if isinstance(items, dict) else None
    except KeyError:
        return None


# --------------------------------------------------------------------------- values

def _hkey(value: Any) -> tuple[Any, ...]:
    """A hashable stand-in for a JSON value, equal exactly when Go's `==` on the decoded
    values would be (true is not 1); maps and lists compare by content instead of panicking."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    if value is None:
        return ("null",)
    return ("json", json.dumps(value, sort_keys=True))


def _type(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "slice"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "string" if isinstance(value, str) else "null"


def _is_directive(key: str) -> bool:
    return key in (_DIRECTIVE, _RETAIN_KEYS) or key.startswith((_SET_ORDER, _DELETE_PRIMITIVES))


def _fresh(value: Any) -> Any:
    """A patch value stored where the document has nothing to merge it with: null members are
    dropped (discardNullValuesFromPatch) and so are directives (removeDirectives)."""
    if isinstance(value, dict):
        if _DIRECTIVE in value and value[_DIRECTIVE] != "replace":
            return _DROP
        out = {}
        for k, v in value.items():
            if v is not None and not _is_directive(k):
                v = _fresh(v)
                if v is not _DROP:
                    out[k] = v
        return out
    if isinstance(value, list):
        return [_fresh(v) for v in value if not (isinstance(v, dict) and _DIRECTIVE in v)]
    return value


def _extract_key(key: str, prefix: str) -> str:
    head, sep, rest = key.partition("/")
    if not sep or head != prefix:
        if prefix == _SET_ORDER:
            raise errors.BadRequest(_BAD_ORDER_FORMAT)
        raise errors.BadRequest(_BAD_PRIMITIVES_FORMAT)
    return rest


def _go(value: Any) -> str:
    """A value as Go's `%v` prints it in the upstream error messages: `map[k:v]`, `[a b]`."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def _no_merge_key(value: Any, merge_key: str) -> PatchError:
    return PatchError(f"map: {_go(value)} does not contain declared merge key: {merge_key}")


def _bad_type(expected: str, value: Any) -> PatchError:
    return PatchError(f"expected a {expected}, but received a {_type(value)}")


# --------------------------------------------------------------------------- maps

def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """mergeMap: merge `patch` into `original`; both are private copies this call may change."""
    if _DIRECTIVE in patch:
        directive = patch[_DIRECTIVE]
        if directive == "replace":
            return _fresh(patch)
        if directive == "delete":
            return {}
        raise PatchError(f"unknown patch type: {directive} in map: {_go(patch)}")
    _apply_retain_keys(original, patch)
    _apply_element_orders(original, patch, schema)
    # Go visits the keys in random order; deleting after merging is the order the
    # `$setElementOrder` path (which kubectl always sends) takes, so take it every time.
    for key, value in sorted(patch.items(), key=lambda kv: kv[0].startswith(_DELETE_PRIMITIVES)):
        deletion = key.startswith(_DELETE_PRIMITIVES)
        if deletion:
            key = _extract_key(key, _DELETE_PRIMITIVES)
        if value is None:
            original.pop(key, None)
            continue
        if key not in original or _type(original[key]) != _type(value):
            if not deletion:
                value = _fresh(value)
                if value is _DROP:
                    original.pop(key, None)
                else:
                    original[key] = value
            continue
        sub, strategy, merge_key = _field(schema, key)
        if isinstance(value, dict):
            if strategy == "replace":
                value = _fresh({k: v for k, v in value.items() if k != _DIRECTIVE})
                original[key] = value
            else:
                original[key] = _merge_map(original[key], value, sub)
        elif isinstance(value, list):
            original[key] = _merge_list_field(original[key], value, sub, strategy, merge_key,
                                              deletion)
        else:
            original[key] = value
    return original


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """applyRetainKeysDirective: drop the keys of `original` that `$retainKeys` does not list."""
    if _RETAIN_KEYS not in patch:
        return
    keys = patch.pop(_RETAIN_KEYS)
    if not isinstance(keys, list):
        raise errors.BadRequest(_BAD_RETAIN_FORMAT)
    retained = {k for k in keys if isinstance(k, str)}
    for key, value in patch.items():
        if value is None or key.startswith((_DELETE_PRIMITIVES, _SET_ORDER)):
            continue
        if key not in retained:
            raise errors.BadRequest(_BAD_RETAIN_FORMAT)
    for key in [k for k in original if k not in retained]:
        del original[key]


def _apply_element_orders(original: dict[str, Any], patch: dict[str, Any],
                          schema: Schema) -> None:
    """mergePatchIntoOriginal: merge each list named by a `$setElementOrder/<list>` directive
    and order it: the directive's order first, then the live list's for elements it omits."""
    for directive in [k for k in patch if k.startswith(_SET_ORDER)]:
        order = patch.pop(directive)
        if not isinstance(order, list):
            raise _bad_type("slice", order)
        key = _extract_key(directive, _SET_ORDER)
        in_original, in_patch = key in original, key in patch
        live, given = original.get(key, []), patch.get(key, [])
        if not isinstance(live, list):
            raise _bad_type("slice", live)
        if not isinstance(given, list):
            raise _bad_type("slice", given)
        sub, strategy, merge_key = _field(schema, key)
        _check_order(given, order, merge_key)
        view = list(live)
        if in_original and in_patch:
            merged = _merge_list_field(live, given, sub, strategy, merge_key, False, view)
        elif in_patch:
            merged = _fresh(given)
        elif in_original:
            merged = live
        else:
            continue
        ours, theirs = _partition(merged, order, merge_key)
        kind = _element_kind(live, given)
        original[key] = _normalize_order(ours, theirs, order, view, merge_key, kind)
        patch.pop(key, None)


def _check_order(given: list[Any], order: list[Any], merge_key: str) -> None:
    """validatePatchWithSetOrderList: the patch list must follow the directive's order."""
    if not given or not order:
        return
    whole = given
    if merge_key:
        for item in given:
            if not isinstance(item, dict):
                raise _bad_type("map", item)
        given = [v for v in given if v.get(_DIRECTIVE) != "delete"]
    p = o = 0
    while p < len(given) and o < len(order):
        if isinstance(given[p], dict) and _DIRECTIVE in given[p]:
            p += 1
            continue
        if _key_of(given[p], merge_key, strict=True) == _key_of(order[o], merge_key, strict=True):
            p += 1
        o += 1
    if p < len(given) and o >= len(order):
        raise PatchError(f"The order in patch list:\n{_go(whole)}\n doesn't match "
                         f"{_SET_ORDER} list:\n{_go(order)}\n")


# --------------------------------------------------------------------------- lists

def _merge_list_field(live: list[Any], given: list[Any], schema: Schema, strategy: str,
                      merge_key: str, deletion: bool,
                      view: list[Any] | None = None) -> list[Any]:
    """mergeSliceHandler: merge by strategy, or replace the list."""
    if strategy == "merge":
        return _merge_list(live, given, _items(schema), merge_key, deletion, view)
    return _without(live, given) if deletion else _fresh(given)


def _without(live: list[Any], drop: list[Any]) -> list[Any]:
    """deleteFromSlice: `live` less every value that `drop` lists."""
    dropped = {_hkey(v) for v in drop}
    return [v for v in live if _hkey(v) not in dropped]


def _merge_list(live: list[Any], given: list[Any], items: Schema, merge_key: str,
                deletion: bool, view: list[Any] | None = None) -> list[Any]:
    """mergeSlice: merge a list whose patch strategy is "merge".

    `view`, when given, is a copy of `live` that ends up as the caller's Go slice would: upstream
    deletes and appends in place on the live list's backing array, and `$setElementOrder`
    then orders by what its own, longer slice header still sees there (live elements after the
    deletions, then the first new elements). Kubernetes' fixtures depend on that order."""
    if not live and not given:
        return live
    kind = _element_kind(live, given)
    if kind != "map":
        if deletion:
            return _without(live, given)
        merged = _dedupe(live + given)
    else:
        if not merge_key:
            raise PatchError("cannot merge lists without merge key for type struct")
        backing = view if view is not None else list(live)
        size, given, replace = _special_elements(backing, len(live), given, merge_key)
        live = given if replace else backing[:size]
        given = [] if replace else given
        merged = list(live)
        for element in given:
            if merge_key not in element:
                raise _no_merge_key(element, merge_key)
            at = _find(merged, merge_key, element[merge_key])
            if at is None:
                if len(merged) < len(backing):
                    backing[len(merged)] = element  # Go's append into the shared array
                merged.append(_fresh(element))
            else:
                merged[at] = _merge_map(merged[at], element, items)
    ours, theirs = _partition(merged, given, merge_key)
    return _normalize_order(ours, theirs, given, live, merge_key, kind)


def _dedupe(values: list[Any]) -> list[Any]:
    """deduplicateScalars, in its order: each later duplicate is overwritten by the last value."""
    keys = [_hkey(v) for v in values]
    last, i = len(values) - 1, 0
    while i < last:
        j = i + 1
        while j <= last:
            if keys[i] == keys[j]:
                values[j], keys[j] = values[last], keys[last]
                last -= 1
            else:
                j += 1
        i += 1
    return values[:last + 1]


def _special_elements(backing: list[Any], size: int, given: list[Any],
                      merge_key: str) -> tuple[int, list[Any], bool]:
    """mergeSliceWithSpecialElements: apply the `$patch` elements of `given` to the first
    `size` elements of `backing`, in place as Go does; return the new size, the patch's other
    elements (made fresh when one element asked to replace the list) and whether it did."""
    plain, replace = [], False
    for element in given:
        if _DIRECTIVE not in element:
            plain.append(element)
            continue
        directive = element[_DIRECTIVE]
        if directive == "delete":
            if merge_key not in element:
                raise _no_merge_key(element, merge_key)
            while (at := _find(backing[:size], merge_key, element[merge_key])) is not None:
                backing[at:size - 1] = backing[at + 1:size]
                size -= 1
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchError("merging lists cannot yet be specified in the patch")
        else:
            raise PatchError(f"unknown patch type: {directive} in map: {_go(element)}")
    if replace:
        return size, [_fresh(v) for v in plain], True
    return size, plain, False


def _element_kind(*lists: list[Any]) -> str:
    """sliceElementType: "map" or "scalar"; lists of lists are refused (422)."""
    first = None
    for items in lists:
        for value in items:
            kind = _type(value)
            if first is None:
                if kind == "slice":
                    raise UnprocessablePatch(_NO_LIST_OF_LISTS)
                first = kind
            elif kind != first:
                raise PatchError(f"list element types are not identical: {_go(list(lists))}")
    if first is None:
        raise PatchError("no elements in any of the given slices")
    return "map" if first == "map" else "scalar"


def _key_of(item: Any, merge_key: str, *, strict: bool = False) -> tuple[Any, ...]:
    """What identifies a list element: its merge key's value, or the scalar itself."""
    if not merge_key:
        return _hkey(item)
    if not isinstance(item, dict):
        if strict:
            raise _bad_type("map", item)
        return _hkey(None)
    if strict and merge_key not in item:
        raise _no_merge_key(item, merge_key)
    return _hkey(item.get(merge_key))


def _find(items: list[Any], merge_key: str, value: Any) -> int | None:
    """findMapInSliceBasedOnKeyValue: index of the first map whose merge key equals `value`."""
    want = _hkey(value)
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise PatchError(f"value for key {i} is not a map.")
        if merge_key in item and _hkey(item[merge_key]) == want:
            return i
    return None


def _partition(merged: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """The elements of `merged` that `by` mentions, and the others (server-only)."""
    if merge_key:
        mentioned = set()
        for item in by:
            if not isinstance(item, dict):
                raise PatchError("value for key 0 is not a map.")
            if merge_key in item:
                mentioned.add(_hkey(item[merge_key]))
        keys = [_key_of(v, merge_key, strict=True) for v in merged]
    else:
        mentioned = {_hkey(v) for v in by}
        keys = [_hkey(v) for v in merged]
    ours = [v for v, k in zip(merged, keys) if k in mentioned]
    theirs = [v for v, k in zip(merged, keys) if k not in mentioned]
    return ours, theirs


def _positions(order: list[Any], merge_key: str, kind: str) -> dict[tuple[Any, ...], int]:
    positions: dict[tuple[Any, ...], int] = {}
    for i, item in enumerate(order):
        positions.setdefault(_key_of(item, merge_key if kind == "map" else ""), i)
    return positions


def _sort_by(items: list[Any], order: list[Any], merge_key: str, kind: str) -> list[Any]:
    """normalizeSliceOrder: `items` in the order of `order`, `$patch: delete` ones last."""
    deleted: list[Any] = []
    if kind == "map":
        for item in items + order:
            _key_of(item, merge_key, strict=True)
        deleted = [v for v in items if v.get(_DIRECTIVE) == "delete"]
        items = [v for v in items if v.get(_DIRECTIVE) != "delete"]
    positions = _positions(order, merge_key, kind)
    key = merge_key if kind == "map" else ""
    ranked = [(positions.get(_key_of(v, key)), v) for v in items]
    if all(rank is not None for rank, _ in ranked):
        return [v for _, v in sorted(ranked, key=lambda rv: rv[0])] + deleted
    # Upstream's comparator answers "less" whenever an element is missing from `order`, which
    # is no ordering at all; replay Go's insertion sort (what sort.SliceStable runs on up to
    # 20 elements) so that such patches come out as they do there.
    for i in range(1, len(ranked)):
        j = i
        while j > 0 and (ranked[j][0] is None or ranked[j - 1][0] is None
                         or ranked[j][0] < ranked[j - 1][0]):
            ranked[j - 1], ranked[j] = ranked[j], ranked[j - 1]
            j -= 1
    return [v for _, v in ranked] + deleted


def _normalize_order(ours: list[Any], theirs: list[Any], our_order: list[Any],
                     live: list[Any], merge_key: str, kind: str) -> list[Any]:
    """normalizeElementOrder + mergeSortedSlice: interleave the patch's elements (in
    `our_order`) with the server-only ones (in live order); where the live list cannot place a
    patch element (it is new), the patch element goes first."""
    ours = _sort_by(ours, our_order, merge_key, kind)
    theirs = _sort_by(theirs, live, merge_key, kind)
    positions = _positions(live, merge_key, kind)
    key = merge_key if kind == "map" else ""
    out, i, j = [], 0, 0
    while i < len(theirs) or j < len(ours):
        if j >= len(ours):
            out.append(theirs[i])
            i += 1
            continue
        if i < len(theirs):
            left = positions.get(_key_of(theirs[i], key))
            right = positions.get(_key_of(ours[j], key))
            if left is not None and right is not None and left < right:
                out.append(theirs[i])
                i += 1
                continue
        out.append(ours[j])
        j += 1
    return out
