"""JSON Patch (RFC 6902) and JSON merge patch (RFC 7386), as kube-apiserver applies them.

kube-apiserver applies `application/json-patch+json` with gopkg.in/evanphx/json-patch.v4
(v4.12.0) and `application/merge-patch+json` with its `MergePatch`; kubectl relies on their
exact behaviour (`rollout undo` sends a JSON patch, `label`/`annotate`/`scale` merge patches), so
this module follows those libraries rather than the RFC texts where the two differ:

- JSON patch `replace` of a missing object member adds it; array indices may be negative
  (`-1` is the last element for `remove`, "before the end" for `add`); `copy` from a missing
  member copies `null`; `test` of a missing member against `null` succeeds.
- merge patch prunes `null`s inside a value placed where the document had no object, even
  inside arrays (evanphx's `pruneNulls`), and keeps them when the document had an object.

Two inputs that evanphx mishandles are refused here with 422 instead: a pointer that does not
start with "/" (evanphx ignores whatever precedes the first "/") and a `replace` of the root by
a scalar (evanphx wraps a nil error and silently skips the operation).

Errors follow staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go (`applyJSPatch`):
a body that does not decode as a patch is 400 BadRequest; more than 10000 operations is 413; a
patch that decodes but cannot be applied (unknown op, missing path, failed test) is 422 Invalid
with the fixed message of `NewGenericServerResponse`, which drops the cause from the reply — it
is kept on the exception as `cause` for logs. Where the server's default `fieldValidation`
(Warn) decodes the body strictly first, a non-string `op`/`path`/`from` is a 400 too.

Every function returns a new document and never mutates nor aliases its arguments.
"""

from __future__ import annotations

import re
from typing import Any

from navio.api import errors

__all__ = ["MAX_JSON_PATCH_OPERATIONS", "UnprocessablePatch", "PatchError",
           "json_patch", "merge_patch", "clone", "json_equal"]

# handlers/patch.go: maxJSONPatchOperations
MAX_JSON_PATCH_OPERATIONS = 10000

_GENERIC_422 = "the server rejected our request due to an error in our request"


class UnprocessablePatch(errors.Invalid):
    """422 Invalid: a well-formed patch that does not apply to this document.

    kube-apiserver answers these with `NewGenericServerResponse(422, …)`, whose message is fixed
    and whose details carry no cause; `cause` keeps the library's explanation for logging."""

    def __init__(self, cause: str) -> None:
        errors.ApiError.__init__(self, _GENERIC_422)
        self.causes: list[dict[str, str]] = []
        self.cause = cause


class PatchError(errors.InternalError):
    """500 with no reason: a strategic-merge-patch error that `interpretPatchError` passes
    through unclassified (unknown `$patch` value, missing merge key, mixed list element types);
    `ErrorToAPIStatus` turns it into code 500 with StatusReasonUnknown and the error's text."""

    reason = ""


# --------------------------------------------------------------------------- shared values

def clone(value: Any) -> Any:
    """Deep copy of a JSON value (dicts, lists, scalars); faster than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: 1 == 1.0, but true is not 1 (Python's bool is an int)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict):
        return (isinstance(b, dict) and a.keys() == b.keys()
                and all(json_equal(v, b[k]) for k, v in a.items()))
    if isinstance(a, list):
        return (isinstance(b, list) and len(a) == len(b)
                and all(json_equal(x, y) for x, y in zip(a, b)))
    if isinstance(a, (int, float)):
        return isinstance(b, (int, float)) and a == b
    return type(a) is type(b) and a == b


def _go_type(value: Any) -> str:
    """How encoding/json names a JSON value's type in its unmarshal errors."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


# --------------------------------------------------------------------------- RFC 7386

def merge_patch(doc: dict[str, Any], patch: Any) -> dict[str, Any]:
    """`doc` with JSON merge patch `patch` applied: `null` deletes a member, an object merges
    recursively, any other value replaces. An empty patch `{}` returns an equal copy.

    The body of an `application/merge-patch+json` request must be an object (400 otherwise),
    as kube-apiserver's strict decoding into a map demands; JSON `null` is evanphx's
    ErrBadJSONPatch, also 400."""
    if patch is None:
        raise errors.BadRequest("Invalid JSON Patch")
    if not isinstance(patch, dict):
        raise errors.BadRequest(f"error decoding patch: json: cannot unmarshal {_go_type(patch)}"
                                " into Go value of type map[string]interface {}")
    result = clone(doc) if isinstance(doc, dict) else {}
    _merge_docs(result, patch)
    return result


def _merge_docs(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            doc.pop(key, None)
            continue
        current = doc.get(key)
        if not isinstance(current, dict):  # absent, null or not an object: take the value
            doc[key] = _pruned(value)
        elif not isinstance(value, dict):
            doc[key] = clone(value)  # evanphx's merge() returns a non-object patch unpruned
        else:
            _merge_docs(current, value)


def _pruned(value: Any) -> Any:
    """A copy without `null` object members, at any depth (arrays keep their `null`s)."""
    if isinstance(value, dict):
        return {k: _pruned(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


# --------------------------------------------------------------------------- RFC 6902

def json_patch(doc: dict[str, Any], ops: Any) -> dict[str, Any]:
    """`doc` with the RFC 6902 operations `ops` applied in order, all or nothing.

    Raises BadRequest (400) when `ops` is not a list of operation objects, TooLarge (413) past
    MAX_JSON_PATCH_OPERATIONS, and UnprocessablePatch (422) when an operation does not apply.
    `ops` of None (a JSON `null` body) is an empty patch, as in Go."""
    if ops is None:
        return clone(doc)
    if not isinstance(ops, list):
        raise errors.BadRequest(f"error decoding patch: json: cannot unmarshal {_go_type(ops)}"
                                " into Go value of type []handlers.jsonPatchOp")
    for op in ops:
        if op is not None and not isinstance(op, dict):
            raise errors.BadRequest(f"error decoding patch: json: cannot unmarshal "
                                    f"{_go_type(op)} into Go value of type handlers.jsonPatchOp")
        for field in ("op", "path", "from"):
            if op and op.get(field) is not None and not isinstance(op[field], str):
                raise errors.BadRequest(
                    f"error decoding patch: json: cannot unmarshal {_go_type(op[field])} into Go"
                    f" struct field jsonPatchOp.{field} of type string")
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise errors.TooLarge("Request entity too large: The allowed maximum operations in a "
                              f"JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}")
    root: Any = clone(doc)
    for op in ops:
        root = _apply(root, op or {})
    if not isinstance(root, dict):
        raise UnprocessablePatch("the patched document is not a JSON object")
    return root


_INDEX = re.compile(r"[+-]?[0-9]+")
_UNESCAPE = re.compile(r"~[01]")
_MISSING = object()


def _apply(root: Any, op: dict[str, Any]) -> Any:
    kind = op.get("op")
    if not isinstance(kind, str):
        kind = "unknown"
    handler = _OPS.get(kind)
    if handler is None:
        raise UnprocessablePatch(f"Unexpected kind: {kind}")
    return handler(root, op)


def _pointer(op: dict[str, Any], field: str) -> str:
    path = op.get(field)
    if path is None:
        raise UnprocessablePatch(f"{op['op']} operation failed to decode {field}: missing value")
    return path


def _locate(root: Any, path: str, op: str) -> tuple[dict[str, Any] | list[Any], str]:
    """The container holding the last token of `path`, and that (unescaped) token."""
    # evanphx ignores whatever precedes the first "/"; RFC 6901 makes such a pointer invalid,
    # and navio rejects it rather than guess.
    if not path.startswith("/"):
        raise UnprocessablePatch(f'{op} operation does not apply: doc is missing path: "{path}"')
    *parents, last = [_UNESCAPE.sub(lambda m: "/" if m[0] == "~1" else "~", token)
                      for token in path[1:].split("/")]
    node = root
    for token in parents:
        if isinstance(node, dict):
            node = node.get(token)
        elif isinstance(node, list) and _INDEX.fullmatch(token) and 0 <= int(token) < len(node):
            node = node[int(token)]
        else:
            node = None
        if not isinstance(node, (dict, list)):
            raise UnprocessablePatch(
                f'{op} operation does not apply: doc is missing path: "{path}"')
    return node, last


def _index(array: list[Any], token: str, path: str, *, extra: int = 0,
           negative: bool = True) -> int:
    """A valid index into `array` (of length + `extra`), negative ones counted from the end."""
    if not _INDEX.fullmatch(token):
        raise UnprocessablePatch(f"value was not a proper array index: '{token}' in {path}")
    idx, size = int(token), len(array) + extra
    if idx >= size or idx < (-size if negative else 0):
        raise UnprocessablePatch(f"Unable to access invalid index: {idx} in {path}")
    return idx + size if idx < 0 else idx


def _get(container: dict[str, Any] | list[Any], token: str, path: str) -> Any:
    if isinstance(container, dict):
        return container.get(token)  # a missing member reads as null, as in evanphx v4
    return container[_index(container, token, path, negative=False)]


def _add(container: dict[str, Any] | list[Any], token: str, value: Any, path: str) -> None:
    if isinstance(container, dict):
        container[token] = value
    elif token == "-":
        container.append(value)
    else:
        container.insert(_index(container, token, path, extra=1), value)


def _remove(container: dict[str, Any] | list[Any], token: str, path: str) -> Any:
    if isinstance(container, dict):
        if token not in container:
            raise UnprocessablePatch(f"Unable to remove nonexistent key: {token}: missing value")
        return container.pop(token)
    return container.pop(_index(container, token, path))


def _op_add(root: Any, op: dict[str, Any]) -> Any:
    path = _pointer(op, "path")
    if path == "":
        raise UnprocessablePatch('add operation does not apply: doc is missing path: ""')
    container, token = _locate(root, path, "add")
    _add(container, token, clone(op.get("value")), path)
    return root


def _op_remove(root: Any, op: dict[str, Any]) -> Any:
    path = _pointer(op, "path")
    if path == "":
        raise UnprocessablePatch('remove operation does not apply: doc is missing path: ""')
    container, token = _locate(root, path, "remove")
    _remove(container, token, path)
    return root


def _op_replace(root: Any, op: dict[str, Any]) -> Any:
    path = _pointer(op, "path")
    value = clone(op.get("value"))
    if path == "":
        if not isinstance(value, (dict, list)):
            raise UnprocessablePatch("replace operation value must be object or array")
        return value
    container, token = _locate(root, path, "replace")
    if isinstance(container, dict):
        container[token] = value  # v4 does not check that the member exists
    else:
        container[_index(container, token, path, negative=False)] = value
    return root


def _op_move(root: Any, op: dict[str, Any]) -> Any:
    source = _pointer(op, "from")
    container, token = _locate(root, source, "move") if source else (None, "")
    if container is None:
        raise UnprocessablePatch(f"move operation does not apply: doc is missing from path: "
                                 f"{source}")
    value = _remove(container, token, source)
    path = _pointer(op, "path")
    target, token = _locate(root, path, "move") if path else (None, "")
    if target is None:
        raise UnprocessablePatch(f"move operation does not apply: doc is missing destination "
                                 f"path: {path}")
    _add(target, token, value, path)
    return root


def _op_copy(root: Any, op: dict[str, Any]) -> Any:
    source = _pointer(op, "from")
    container, token = _locate(root, source, "copy") if source else (None, "")
    if container is None:
        raise UnprocessablePatch(f"copy operation does not apply: doc is missing from path: "
                                 f"{source}")
    value = clone(_get(container, token, source))
    path = _pointer(op, "path")
    target, token = _locate(root, path, "copy") if path else (None, "")
    if target is None:
        raise UnprocessablePatch(f"copy operation does not apply: doc is missing destination "
                                 f"path: {path}")
    _add(target, token, value, path)
    return root


def _op_test(root: Any, op: dict[str, Any]) -> Any:
    path = _pointer(op, "path")
    if path == "":
        actual = root
    else:
        container, token = _locate(root, path, "test")
        actual = _get(container, token, path)
    # An absent "value" never matches (evanphx v4 crashes on it when the target is null).
    expected = op.get("value", _MISSING)
    if expected is _MISSING or not json_equal(actual, expected):
        raise UnprocessablePatch(f"testing value {path} failed: test failed")
    return root


_OPS = {"add": _op_add, "remove": _op_remove, "replace": _op_replace, "move": _op_move,
        "copy": _op_copy, "test": _op_test}
