"""Field paths and field sets, and their FieldsV1 encoding in `metadata.managedFields`.

Server-side apply records, per manager, the set of fields it owns. A field is named by a path of
elements, each one of (in this order of precedence, as structured-merge-diff orders them):

    f:<name>            a field of a struct or a key of a map        `f:spec`
    k:<json object>     an item of an associative list, by its keys  `k:{"name":"c"}`
    v:<json value>      an item of a set, by its value               `v:"finalizer"`
    i:<n>               an item of a list by index                   `i:0`

A `FieldSet` is a set of such paths. Its FieldsV1 form is a tree of JSON objects keyed by the
encoded elements; `{}` marks a leaf member and `".": {}` marks a node that is itself a member and
has members below it. Guarantees, matching sigs.k8s.io/structured-merge-diff/v4 `fieldpath`
(`serialize.go`, `serialize-pe.go`, `element.go`):

- keys of one level are emitted in SMD's element order (fields < keys < values < indexes; fields
  by name, keys and values by SMD's value order: numbers < strings < bools < lists < maps < null),
  with `"."` first (as current API servers write it); `to_json` reproduces SMD's bytes;
- `k:`/`v:` contents are compact JSON with sorted object keys and Go's HTML escaping; field names
  after `f:` are raw;
- decoding ignores element types it does not know (as SMD does) and treats `{}`, `{".": {}}` and
  a subtree with `"."` as membership.

Sets are immutable values; set algebra is plain path-set algebra (membership of a path does not
imply membership of its parents, as in SMD).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

import orjson

__all__ = ["FIELD", "KEY", "VALUE", "INDEX", "PathElement", "Path", "FieldSet", "field",
           "key", "value", "index", "make_path", "path_string", "element_string", "go_json",
           "canonical", "uncanonical"]

FIELD, KEY, VALUE, INDEX = 0, 1, 2, 3


class PathElement(NamedTuple):
    """One step of a path. `payload`: the name (FIELD), a sorted tuple of `(name, canonical
    value)` (KEY), a canonical value (VALUE) or an int (INDEX).

    A NamedTuple rather than a dataclass: paths are hashed and sorted on every write, and tuple
    comparison gives SMD's element order directly."""

    kind: int
    payload: Any


Path = tuple[PathElement, ...]

# Canonical values: hashable, ordered like SMD's value.Compare (numbers, strings, bools, lists,
# maps, null), equal where SMD's value.Equals is (1 == 1.0, but True != 1).
_NUM, _STR, _BOOL, _LIST, _MAP, _NULL = range(6)


def canonical(v: Any) -> tuple[Any, ...]:
    """A JSON value as a hashable, SMD-ordered tuple."""
    if v is None:
        return (_NULL,)
    if isinstance(v, bool):
        return (_BOOL, v)
    if isinstance(v, (int, float)):
        return (_NUM, v)
    if isinstance(v, str):
        return (_STR, v)
    if isinstance(v, (list, tuple)):
        return (_LIST, tuple(canonical(x) for x in v))
    if isinstance(v, Mapping):
        return (_MAP, tuple(sorted((str(k), canonical(x)) for k, x in v.items())))
    raise TypeError(f"not a JSON value: {type(v).__name__}")


def uncanonical(c: tuple[Any, ...]) -> Any:
    """The JSON value a canonical tuple stands for."""
    tag = c[0]
    if tag == _NULL:
        return None
    if tag == _LIST:
        return [uncanonical(x) for x in c[1]]
    if tag == _MAP:
        return {k: uncanonical(x) for k, x in c[1]}
    return c[1]


_field_elements: dict[str, PathElement] = {}


def field(name: str) -> PathElement:
    # Interned: every write builds paths from the same few hundred field names.
    pe = _field_elements.get(name)
    if pe is None:
        if len(_field_elements) >= 50_000:
            _field_elements.clear()
        pe = _field_elements[name] = PathElement(FIELD, name)
    return pe


def key(fields: Mapping[str, Any]) -> PathElement:
    """The element naming the associative-list item whose key fields have these values."""
    return PathElement(KEY, tuple(sorted((k, canonical(v)) for k, v in fields.items())))


def value(v: Any) -> PathElement:
    return PathElement(VALUE, canonical(v))


def index(i: int) -> PathElement:
    return PathElement(INDEX, i)


def make_path(*parts: str | int | Mapping[str, Any] | PathElement) -> Path:
    """`make_path("spec", "containers", {"name": "c"}, "image")`: str → field, int → index,
    mapping → key; a PathElement is taken as is (use `value(...)` for set items)."""
    out = []
    for p in parts:
        if isinstance(p, PathElement):
            out.append(p)
        elif isinstance(p, str):
            out.append(field(p))
        elif isinstance(p, bool):
            raise TypeError("a path part may not be a bool")
        elif isinstance(p, int):
            out.append(index(p))
        else:
            out.append(key(p))
    return tuple(out)


# --- Go-compatible JSON text -------------------------------------------------------------------

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
            "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _go_string(s: str, *, html: bool = True) -> str:
    out = ['"']
    for ch in s:
        esc = _ESCAPES.get(ch)
        if esc is not None and (html or ch not in "<>&"):
            out.append(esc)
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _go_float(f: float) -> str:
    # encoding/json: shortest repr, positional unless the exponent is < -6 or >= 21.
    if f != f or f in (float("inf"), float("-inf")):
        raise ValueError(f"unsupported value: {f}")
    a = abs(f)
    if a == 0 or 1e-6 <= a < 1e21:
        if f == int(f):
            return str(int(f))
        r = repr(f)
        if "e" not in r:
            return r
        return format(Decimal(r), "f")
    mant, _, exp = repr(f).partition("e")
    sign = "-" if exp.startswith("-") else "+"
    return f"{mant}e{sign}{exp.lstrip('+-').lstrip('0') or '0'}"


def go_json(v: Any, *, html: bool = True) -> str:
    """Compact JSON as Go's encoding/json (and jsoniter's compatible mode) writes it: object
    keys sorted, `<>&` escaped when `html`, integral floats without a fraction."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, str):
        return _go_string(v, html=html)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(go_json(x, html=html) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ",".join(f"{_go_string(str(k), html=html)}:{go_json(v[k], html=html)}"
                              for k in sorted(v, key=str)) + "}"
    raise TypeError(f"not a JSON value: {type(v).__name__}")


# --- path elements as text ---------------------------------------------------------------------

def _serialize(pe: PathElement) -> str:
    kind, payload = pe
    if kind == FIELD:
        return "f:" + payload
    if kind == KEY:
        # jsoniter writes the key names with WriteObjectField (no HTML escaping) and the values
        # with WriteVal (HTML-escaped).
        return "k:{" + ",".join(f"{_go_string(n, html=False)}:{go_json(uncanonical(c))}"
                                for n, c in payload) + "}"
    if kind == VALUE:
        return "v:" + go_json(uncanonical(payload))
    return f"i:{payload}"


def _deserialize(s: str) -> PathElement | None:
    """The element `s` encodes; None for an element type this version does not know."""
    if len(s) < 2 or s[1] != ":":
        raise ValueError(f"invalid path element {s!r}")
    kind, body = s[0], s[2:]
    if kind == "f":
        return PathElement(FIELD, body)
    if kind == "k":
        fields = json.loads(body)
        if fields is None:
            fields = {}
        if not isinstance(fields, dict):
            raise ValueError(f"invalid key path element {s!r}")
        return key(fields)
    if kind == "v":
        return value(json.loads(body))
    if kind == "i":
        if not body.isdigit():
            raise ValueError(f"invalid index path element {s!r}")
        return PathElement(INDEX, int(body))
    return None


def _go_value_string(c: tuple[Any, ...]) -> str:
    # SMD value.ToString: Go's %v for numbers and bools, %q for strings.
    tag = c[0]
    if tag == _NULL:
        return "null"
    if tag == _STR:
        return json.dumps(c[1], ensure_ascii=False)
    if tag == _BOOL:
        return "true" if c[1] else "false"
    if tag == _NUM:
        n = c[1]
        if isinstance(n, int):
            return str(n)
        if n == 0 or 1e-4 <= abs(n) < 1e21:  # %v: %g with shortest digits, exponent from 21
            r = repr(n)
            if "e" in r:
                r = format(Decimal(r), "f")
            return r[:-2] if r.endswith(".0") else r
        mant, _, exp = repr(n).partition("e")
        return f"{mant}e{'-' if exp.startswith('-') else '+'}{exp.lstrip('+-').zfill(2)}"
    if tag == _LIST:
        return "[" + ",".join(_go_value_string(x) for x in c[1]) + "]"
    return "".join(f"{k}={_go_value_string(x)}" for k, x in c[1])


def element_string(pe: PathElement) -> str:
    """SMD's PathElement.String(): `.name`, `[k=v,…]`, `[=v]`, `[i]`."""
    kind, payload = pe
    if kind == FIELD:
        return "." + payload
    if kind == KEY:
        return "[" + ",".join(f"{n}={_go_value_string(c)}" for n, c in payload) + "]"
    if kind == VALUE:
        return f"[={_go_value_string(payload)}]"
    return f"[{payload}]"


def path_string(path: Path) -> str:
    """How Kubernetes prints a path in conflict messages: `.spec.containers[name="c"].image`."""
    return "".join(element_string(pe) for pe in path)


# --- sets ----------------------------------------------------------------------------------------

class _Node:
    __slots__ = ("member", "children")

    def __init__(self) -> None:
        self.member = False
        self.children: dict[PathElement, _Node] = {}


def _trie(paths: Iterable[Path]) -> _Node:
    root = _Node()
    for p in paths:
        node = root
        for pe in p:
            nxt = node.children.get(pe)
            if nxt is None:
                nxt = node.children[pe] = _Node()
            node = nxt
        node.member = True
    return root


def _emit(node: _Node) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pe in sorted(node.children):
        child = node.children[pe]
        if child.children:
            # `"."` first, as emitContentsV1 writes it today (early SMD versions wrote it last).
            sub: dict[str, Any] = {".": {}} if child.member else {}
            sub.update(_emit(child))
            out[_serialize(pe)] = sub
        else:
            out[_serialize(pe)] = {}
    return out


def _read(data: Mapping[str, Any], prefix: Path, out: set[Path]) -> bool:
    """Add the members below `prefix`; True if `prefix` itself is a member."""
    is_member, has_children = False, False
    for k, sub in data.items():
        if k == ".":
            is_member = True
            continue
        pe = _deserialize(k)
        if pe is None:
            continue
        has_children = True
        if not isinstance(sub, Mapping):
            raise ValueError(f"invalid FieldsV1 value under {k!r}")
        if _read(sub, prefix + (pe,), out):
            out.add(prefix + (pe,))
    return is_member or not has_children


def _iter_smd(node: _Node, prefix: Path) -> Iterator[Path]:
    # SMD's Set.Iterate: a level's members first, then each child's subtree, both in order.
    ordered = sorted(node.children)
    for pe in ordered:
        if node.children[pe].member:
            yield prefix + (pe,)
    for pe in ordered:
        child = node.children[pe]
        if child.children:
            yield from _iter_smd(child, prefix + (pe,))


_CODEC_CACHE_LIMIT = 4096
_decoded: dict[bytes, "FieldSet"] = {}
_encoded: dict[frozenset[Path], bytes] = {}


@dataclass(frozen=True, slots=True)
class FieldSet:
    """An immutable set of field paths; `|`, `&`, `-` and `in` work on paths."""

    paths: frozenset[Path] = frozenset()

    @classmethod
    def of(cls, *paths: Path) -> FieldSet:
        return cls(frozenset(p for p in paths if p))

    @classmethod
    def from_fields_v1(cls, data: Mapping[str, Any] | None) -> FieldSet:
        """Decode a `fieldsV1` object; raises ValueError if it is malformed."""
        out: set[Path] = set()
        if data:
            if not isinstance(data, Mapping):
                raise ValueError("FieldsV1 must be a JSON object")
            # Every write decodes the managers' sets of the object it replaces, which are
            # mostly the sets the previous write encoded: remembered by their JSON.
            try:
                text = orjson.dumps(data)
            except TypeError:
                text = b""
            hit = _decoded.get(text) if text else None
            if hit is not None:
                return hit
            _read(data, (), out)
            decoded = cls(frozenset(out))
            if text:
                if len(_decoded) >= _CODEC_CACHE_LIMIT:
                    _decoded.clear()
                _decoded[text] = decoded
            return decoded
        return cls(frozenset(out))

    @classmethod
    def from_json(cls, text: str | bytes) -> FieldSet:
        return cls.from_fields_v1(json.loads(text))

    def to_fields_v1(self) -> dict[str, Any]:
        """The `fieldsV1` object, its keys inserted in the order SMD writes them (a new dict
        each time; the encoding of a set is remembered)."""
        text = _encoded.get(self.paths)
        if text is None:
            text = orjson.dumps(_emit(_trie(self.paths)))
            if len(_encoded) >= _CODEC_CACHE_LIMIT:
                _encoded.clear()
            _encoded[self.paths] = text
        fields: dict[str, Any] = orjson.loads(text)
        return fields

    def to_json(self) -> str:
        """The exact bytes SMD's `Set.ToJSON` produces."""
        def dump(d: Mapping[str, Any]) -> str:
            return "{" + ",".join(f"{_go_string(k, html=False)}:{dump(v)}"
                                  for k, v in d.items()) + "}"
        return dump(self.to_fields_v1())

    def __iter__(self) -> Iterator[Path]:
        """Paths in SMD's iteration order (that of conflict messages)."""
        return _iter_smd(_trie(self.paths), ())

    def __len__(self) -> int:
        return len(self.paths)

    def __bool__(self) -> bool:
        return bool(self.paths)

    def __contains__(self, path: object) -> bool:
        return path in self.paths

    def __or__(self, other: FieldSet) -> FieldSet:
        return FieldSet(self.paths | other.paths)

    def __and__(self, other: FieldSet) -> FieldSet:
        return FieldSet(self.paths & other.paths)

    def __sub__(self, other: FieldSet) -> FieldSet:
        return FieldSet(self.paths - other.paths)

    def with_prefix(self, pe: PathElement) -> FieldSet:
        """The paths below `pe`, with `pe` taken off."""
        return FieldSet(frozenset(p[1:] for p in self.paths if len(p) > 1 and p[0] == pe))

    def recursive_difference(self, other: FieldSet) -> FieldSet:
        """This set without the paths of `other` and everything below them."""
        if not other.paths:
            return self
        if all(len(o) == 1 for o in other.paths):
            # The usual case (ignoring `status` or `spec`): a look at each path's first step.
            heads = {o[0] for o in other.paths}
            kept = frozenset(p for p in self.paths if not p or p[0] not in heads)
            return self if len(kept) == len(self.paths) else FieldSet(kept)
        return FieldSet(frozenset(p for p in self.paths
                                  if not any(p[:i] in other.paths for i in range(1, len(p) + 1))))

    def __repr__(self) -> str:
        return "FieldSet{" + ", ".join(path_string(p) for p in self) + "}"
