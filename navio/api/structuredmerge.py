"""Schema-driven walks over objects: field sets, comparison, merge and removal.

This is what sigs.k8s.io/structured-merge-diff/v4 `typed` does for server-side apply, driven by
navio's JSON Schema (`navio.api.schema`) instead of SMD's schema; kube-openapi `schemaconv`
decides how a schema node maps to SMD's types, and that mapping is repeated here:

- arrays: `x-kubernetes-list-type` atomic | set (items named `v:`) | map (items named
  `k:{…}` by `x-kubernetes-list-map-keys`); without it, `x-kubernetes-patch-strategy: merge`
  with `x-kubernetes-patch-merge-key` makes a map list keyed by the merge key; else atomic;
- objects: `properties` are struct fields, `additionalProperties` map values;
  `x-kubernetes-map-type: atomic` makes the whole object a leaf; an object with neither, or
  with `x-kubernetes-preserve-unknown-fields`, holds "deduced" values: maps granular, lists
  atomic;
- a schema with no type (`JSON`) is an atomic leaf; int-or-string and quantities are scalars.

Kubernetes compares *typed* Go objects, in which null and absent are the same, and
non-pointer struct fields, `metav1.Time` fields and fields without `omitempty` always exist.
navio's objects are plain dicts, so for built-in kinds `compare` gives such fields their Go
value (`{}` or null) when their parent exists: the `_VALUE_STRUCTS` names, Time fields and each
struct's `required` fields. That keeps `".": {}` markers where Kubernetes writes them (`f:spec`
has none, `f:rollingUpdate` and list items do) and records `f:lastProbeTime` as it does.

All functions are pure and never mutate their inputs; merge and removal return new containers
but may share unchanged leaves with the inputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field as dc_field
from typing import Any

from navio.api import schema as _schema
from navio.api.fieldpath import FIELD, KEY, FieldSet, Path, PathElement, field, index, key, \
    value

__all__ = ["MISSING", "Comparison", "to_field_set", "compare", "merge", "remove_items",
           "ensure_named_fields_are_members", "paths_of", "values_equal", "is_builtin"]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""An absent field, as opposed to one holding JSON null (None)."""

# Sentinel schemas for values the schema says nothing about.
_DEDUCED: dict[str, Any] = {"x-navio-untyped": "deduced"}
_UNTYPED: dict[str, Any] = {"x-navio-untyped": "atomic"}

# Non-pointer struct fields of the built-in Go types that Kubernetes' typed objects always carry
# (see the module docstring); only applied where the schema says the field is a struct.
_VALUE_STRUCTS = frozenset({
    "metadata", "spec", "status", "template", "strategy", "updateStrategy", "resources",
    "loadBalancer", "jobTemplate", "roleRef", "involvedObject", "source", "nodeInfo",
    "daemonEndpoints", "kubeletEndpoint", "scaleTargetRef", "state", "lastState",
})

_TIME_TYPES = frozenset({"io.k8s.apimachinery.pkg.apis.meta.v1.Time",
                         "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"})

# Key fields with a default in Kubernetes' published OpenAPI (`+default="TCP"` on every port
# protocol) that the JSON Schema we ship dropped; SMD fills missing keys from the default.
_KEY_DEFAULTS = {"protocol": "TCP"}


@dataclass(frozen=True, slots=True)
class _Atom:
    kind: str                                   # "scalar" | "map" | "list" | "any"
    atomic: bool = False
    fields: dict[str, Any] = dc_field(default_factory=dict)   # struct fields (schemas)
    elem: Any = None                            # map value / list item schema
    keys: tuple[str, ...] | None = None         # list: None = atomic, () = set, else map keys
    required: frozenset[str] = frozenset()
    times: frozenset[str] = frozenset()         # struct fields of type meta/v1 Time
    skeletons: dict[str, Any] = dc_field(default_factory=dict, compare=False)  # _skeleton's


_atoms: dict[int, tuple[Any, _Atom]] = {}
_ATOM_CACHE_LIMIT = 20_000   # built-in kinds need ~3,000; bounds callers passing fresh dicts


def _atom(sch: Any) -> _Atom:
    hit = _atoms.get(id(sch))
    if hit is not None and hit[0] is sch:
        return hit[1]
    a = _make_atom(sch)
    if len(_atoms) >= _ATOM_CACHE_LIMIT:
        _atoms.clear()
    _atoms[id(sch)] = (sch, a)   # keeping `sch` alive keeps its id unique
    return a


def _make_atom(sch: Any) -> _Atom:
    if sch is None or sch is _DEDUCED:
        return _Atom("any", atomic=False, elem=_DEDUCED)
    if sch is _UNTYPED:
        return _Atom("any", atomic=True, elem=_UNTYPED)
    s = _schema.resolve(sch)
    types = _schema.types_of(s)
    if s.get("x-kubernetes-int-or-string") or (not types and ("oneOf" in s or "anyOf" in s)):
        return _Atom("scalar")
    if "array" in types or (not types and "items" in s):
        return _Atom("list", atomic=_list_keys(s) is None, elem=s.get("items", _UNTYPED),
                     keys=_list_keys(s))
    props, extra = s.get("properties"), s.get("additionalProperties")
    if "object" in types or props is not None or extra is not None:
        if isinstance(extra, dict):
            elem = extra
        elif props and not s.get("x-kubernetes-preserve-unknown-fields") and extra is not True:
            elem = None
        else:
            elem = _DEDUCED
        props = props or {}
        return _Atom("map", atomic=s.get("x-kubernetes-map-type") == "atomic",
                     fields=dict(props), elem=elem, required=frozenset(s.get("required", ())),
                     times=frozenset(n for n, p in props.items()
                                     if _schema.ref_name(p) in _TIME_TYPES))
    if types:
        return _Atom("scalar")
    if s.get("x-kubernetes-preserve-unknown-fields"):
        return _Atom("any", atomic=False, elem=_DEDUCED)
    return _Atom("any", atomic=True, elem=_UNTYPED)


def _list_keys(s: dict[str, Any]) -> tuple[str, ...] | None:
    # kube-openapi schemaconv getListElementRelationship.
    lt = s.get("x-kubernetes-list-type")
    if lt == "set":
        return ()
    if lt == "map":
        return tuple(s.get("x-kubernetes-list-map-keys") or ())
    if lt is None and s.get("x-kubernetes-patch-strategy") in ("merge", "merge,retainKeys"):
        mk = s.get("x-kubernetes-patch-merge-key")
        return (mk,) if mk else None
    return None


def _shape(a: _Atom, v: Any) -> str:
    """Which of the atom's forms applies to `v` (SMD deduceAtom); a mismatch is a leaf."""
    if a.kind == "any":
        return "map" if isinstance(v, dict) else "list" if isinstance(v, list) else "scalar"
    if a.kind == "map":
        return "map" if v is None or isinstance(v, dict) else "scalar"
    if a.kind == "list":
        return "list" if v is None or isinstance(v, list) else "scalar"
    return "scalar"


def _child(a: _Atom, name: str) -> Any:
    if name in a.fields:
        return a.fields[name]
    return a.elem if a.elem is not None else _DEDUCED


def _item_element(a: _Atom, item: Any, i: int) -> PathElement:
    """SMD listItemToPathElement; an item that cannot be keyed falls back to its index."""
    if a.keys == ():
        return value(item)
    if a.keys and isinstance(item, dict):
        item_atom = _atom(a.elem)
        fields = {}
        for k in a.keys:
            if k in item:
                fields[k] = item[k]
            else:
                sub = _schema.resolve(item_atom.fields[k]) if k in item_atom.fields else {}
                if "default" in sub:
                    fields[k] = sub["default"]
                elif k in _KEY_DEFAULTS:
                    fields[k] = _KEY_DEFAULTS[k]
        return key(fields)
    return index(i)


def _index_items(a: _Atom, items: Any) -> dict[PathElement, Any]:
    """Items by element, in order; repeated elements keep the first (SMD ignores the rest)."""
    out: dict[PathElement, Any] = {}
    if isinstance(items, list):
        for i, item in enumerate(items):
            out.setdefault(_item_element(a, item, i), item)
    return out


def values_equal(a: Any, b: Any) -> bool:
    """SMD value.Equals: deep equality where 1 == 1.0 but true != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def is_builtin(sch: Any) -> bool:
    """True for the built-in kinds, whose objects Kubernetes compares as typed Go values."""
    return isinstance(sch, str) and sch.startswith("io.k8s.")


# --- to_field_set --------------------------------------------------------------------------------

def to_field_set(obj: Any, sch: Any) -> FieldSet:
    """Every leaf and item `obj` mentions (SMD TypedValue.ToFieldSet): scalars, atomic lists and
    maps, list items, and map entries that are not struct fields."""
    out: set[Path] = set()
    _tofs(obj, sch, (), out)
    out.discard(())
    return FieldSet(frozenset(out))


def _tofs(v: Any, sch: Any, path: Path, out: set[Path]) -> None:
    a = _atom(sch)
    shape = _shape(a, v)
    if shape == "scalar":
        out.add(path)
    elif shape == "list":
        if a.atomic or a.kind == "any":
            out.add(path)
        elif isinstance(v, list):
            for i, item in enumerate(v):
                p2 = path + (_item_element(a, item, i),)
                _tofs(item, a.elem, p2, out)
                out.add(p2)
    elif a.atomic:
        out.add(path)
    elif isinstance(v, dict):
        for k, val in v.items():
            p2 = path + (field(k),)
            _tofs(val, _child(a, k), p2, out)
            if k not in a.fields:
                out.add(p2)


# --- compare -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Comparison:
    """Fields `new` added, changed and removed relative to `old` (SMD typed.Comparison)."""

    added: FieldSet
    modified: FieldSet
    removed: FieldSet

    def exclude(self, ignored: FieldSet) -> Comparison:
        return Comparison(self.added.recursive_difference(ignored),
                          self.modified.recursive_difference(ignored),
                          self.removed.recursive_difference(ignored))


def compare(old: Any, new: Any, sch: Any) -> Comparison:
    """Compare two objects of one type. Leaves (scalars, atomic values, empty containers) are
    added, removed or modified; other nodes are added or removed when absent on one side."""
    res: tuple[set[Path], set[Path], set[Path]] = (set(), set(), set())
    _cmp(old, new, sch, (), res, is_builtin(sch))
    for s in res:
        s.discard(())
    return Comparison(*(FieldSet(frozenset(s)) for s in res))


_SCALAR_TYPES = frozenset({str, int, float, bool})
_UNKNOWN = object()


def _shape_fast(kind: str, v: Any) -> str:
    # _shape with the atom's kind already read (the comparison's innermost call).
    if kind == "map":
        return "map" if v is None or isinstance(v, dict) else "scalar"
    if kind == "any":
        return "map" if isinstance(v, dict) else "list" if isinstance(v, list) else "scalar"
    if kind == "list":
        return "list" if v is None or isinstance(v, list) else "scalar"
    return "scalar"


def _cmp(l: Any, r: Any, sch: Any, path: Path, res: tuple[set[Path], ...], typed: bool) -> None:
    a = _atom(sch)
    kind = a.kind
    sl = _shape_fast(kind, l) if l is not MISSING else None
    sr = _shape_fast(kind, r) if r is not MISSING else None
    shape = sr or sl
    leaf = (sl is not None and sr is not None and sl != sr) or shape == "scalar" or a.atomic
    if not leaf and shape == "list":
        leaf = kind == "any" or (not (isinstance(l, list) and l)
                                 and not (isinstance(r, list) and r))
    elif not leaf:
        leaf = not (isinstance(l, dict) and l) and not (isinstance(r, dict) and r)
    if leaf:
        if l is MISSING:
            res[0].add(path)
        elif r is MISSING:
            res[2].add(path)
        elif not (l is r or values_equal(l, r)):
            res[1].add(path)
        return
    if shape == "list":
        li, ri = _index_items(a, l), _index_items(a, r)
        for pe in li.keys() | ri.keys():
            _cmp(li.get(pe, MISSING), ri.get(pe, MISSING), a.elem, path + (pe,), res, typed)
    else:
        lm = l if isinstance(l, dict) else {}
        rm = r if isinstance(r, dict) else {}
        fields = a.fields
        elem = a.elem if a.elem is not None else _DEDUCED
        l_here, r_here = l is not MISSING, r is not MISSING
        for k in (lm.keys() | rm.keys() if lm and rm else lm or rm):
            lv, rv = lm.get(k, MISSING), rm.get(k, MISSING)
            if rv.__class__ in _SCALAR_TYPES:
                # A scalar on the right is a leaf whatever the schema says (its shape is
                # "scalar" or mismatches): what the recursive call would conclude, inline.
                if typed and l_here and (lv is None or lv is MISSING):
                    lv = _skeleton(a, k)
                if lv is MISSING:
                    res[0].add(path + (field(k),))
                elif not (lv is rv or values_equal(lv, rv)):
                    res[1].add(path + (field(k),))
                continue
            if typed:
                # What the typed Go objects hold: null and absent are one, some fields always
                # exist.
                if l_here and (lv is None or lv is MISSING):
                    lv = _skeleton(a, k)
                if r_here and (rv is None or rv is MISSING):
                    rv = _skeleton(a, k)
                if lv is MISSING and rv is MISSING:
                    continue
            _cmp(lv, rv, fields[k] if k in fields else elem, path + (field(k),), res, typed)
    if l is MISSING:
        res[0].add(path)
    elif r is MISSING:
        res[2].add(path)


def _skeleton(a: _Atom, name: str) -> Any:
    """What a typed Go object holds for a field the dict lacks or has as null: `{}` for a
    non-pointer struct, null for a Time (a struct, so never omitted) or a required field,
    MISSING for a pointer or omitempty field."""
    if name not in a.fields:
        return MISSING
    known = a.skeletons.get(name, _UNKNOWN)
    if known is not _UNKNOWN:
        return known   # a shared `{}` is safe: comparison never mutates what it compares
    if name in a.times:
        known = None
    else:
        child = _atom(a.fields[name])
        if child.kind == "map" and child.fields and (name in _VALUE_STRUCTS
                                                     or name in a.required):
            known = {}
        else:
            known = None if name in a.required else MISSING
    a.skeletons[name] = known
    return known


# --- merge ---------------------------------------------------------------------------------------

def merge(lhs: Any, rhs: Any, sch: Any) -> Any:
    """`rhs` merged into `lhs` (SMD TypedValue.Merge): rhs wins on leaves, maps are merged by
    key, associative lists by item identity in SMD's order; nothing is removed."""
    if rhs is MISSING:
        return lhs
    if lhs is MISSING:
        return rhs
    a = _atom(sch)
    sl, sr = _shape(a, lhs), _shape(a, rhs)
    if sl != sr or sr == "scalar" or a.atomic:
        return rhs
    if sr == "list":
        if a.kind == "any" or (not lhs and not rhs):
            return rhs
        return _merge_lists(a, lhs or [], rhs or [])
    if not lhs and not rhs:
        return rhs
    lm, rm = lhs or {}, rhs or {}
    out = {k: merge(v, rm.get(k, MISSING), _child(a, k)) for k, v in lm.items()}
    for k, v in rm.items():
        if k not in lm:
            out[k] = v
    return out


def _merge_lists(a: _Atom, lhs: list[Any], rhs: list[Any]) -> list[Any]:
    # SMD mergingWalker.visitListItems: keep the lhs order, but place shared items where the rhs
    # puts them relative to each other and new rhs items after the item they follow.
    li, ri = _index_items(a, lhs), _index_items(a, rhs)
    lorder, rorder = list(li), list(ri)
    shared = [pe for pe in rorder if pe in li]
    nxt = iter(shared)
    next_shared = next(nxt, None)
    out: list[Any] = []
    lI = rI = 0
    while lI < len(lorder) or rI < len(rorder):
        if lI < len(lorder) and rI < len(rorder):
            pe = lorder[lI]
            if pe == rorder[rI]:
                out.append(merge(li[pe], ri[pe], a.elem))
                lI += 1
                rI += 1
                next_shared = next(nxt, None)
                continue
            if pe in ri and next_shared is not None and next_shared != pe:
                lI += 1
                continue
        if lI < len(lorder) and lorder[lI] not in ri:
            out.append(li[lorder[lI]])
            lI += 1
            continue
        if rI < len(rorder):
            pe = rorder[rI]
            out.append(merge(li.get(pe, MISSING), ri[pe], a.elem))
            rI += 1
            if next_shared is not None and next_shared == pe:
                next_shared = next(nxt, None)
        else:
            lI += 1   # a shared item the rhs already placed
    return out


# --- removal -------------------------------------------------------------------------------------

_DROP: Any = object()


def remove_items(obj: Any, sch: Any, paths: FieldSet) -> Any:
    """`obj` without the fields, map entries and list items in `paths` (SMD RemoveItems). A map
    or list emptied by the removal is dropped from its parent, as a typed round trip does."""
    out = _remove(obj, sch, paths)
    return {} if out is _DROP else out


def _remove(v: Any, sch: Any, paths: FieldSet) -> Any:
    a = _atom(sch)
    shape = _shape(a, v)
    if shape == "scalar" or a.atomic or not v:
        return v
    if shape == "list":
        if a.kind == "any":
            return v
        items = []
        for i, item in enumerate(v):
            pe = _item_element(a, item, i)
            if (pe,) in paths:
                continue
            sub = paths.with_prefix(pe)
            if sub:
                item = _remove(item, a.elem, sub)
                if item is _DROP:
                    item = {}
            items.append(item)
        return items or _DROP
    out = {}
    for k, val in v.items():
        pe = field(k)
        if (pe,) in paths:
            continue
        sub = paths.with_prefix(pe)
        if sub:
            val = _remove(val, _child(a, k), sub)
            if val is _DROP:
                continue
        out[k] = val
    return out or _DROP


def ensure_named_fields_are_members(paths: FieldSet, sch: Any) -> FieldSet:
    """`paths` plus every struct field that has members below it (SMD
    Set.EnsureNamedFieldsAreMembers), so that removal can take out whole struct fields."""
    extra: set[Path] = set()
    root = _atom(sch)
    for p in paths.paths:
        a = root
        for i in range(len(p) - 1):
            pe = p[i]
            if pe.kind == FIELD and a.kind in ("map", "any"):
                if pe.payload in a.fields:
                    extra.add(p[:i + 1])
                a = _atom(_child(a, pe.payload))
            elif pe.kind == KEY and a.kind in ("list", "any"):
                a = _atom(a.elem)
            else:
                break
    return FieldSet(paths.paths | extra)


def paths_of(names: Iterable[Iterable[str]]) -> FieldSet:
    """A set of field-name paths: `paths_of([("status",)])`."""
    return FieldSet(frozenset(tuple(field(n) for n in p) for p in names))
