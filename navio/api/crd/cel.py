"""CEL validation rules (`x-kubernetes-validations`) of CRD schemas.

Rules run with the `common-expression-language` package (Python bindings of the cel-rust
interpreter; chosen over cel-python for speed, ~1-20 µs per evaluation against ~300 µs, and
over Google's young cel-expr-python for maturity and size). `self` is the value at the schema
node carrying the rule; transition rules (those naming `oldSelf`) run only on updates where the
node has an old value, as kube's; values an update leaves unchanged are not re-checked
(kube's validation ratcheting). Failures are worded as kube-apiserver's
(apiextensions-apiserver/pkg/apiserver/schema/cel/validation.go): `spec: Invalid value:
"object": failed rule: <rule>`, or the rule's `message` / `messageExpression`, at `fieldPath`
below the node, with the `reason` given (FieldValueInvalid by default).

kube's CEL libraries are added as functions where the interpreter lacks them: the strings
extension (lowerAscii, upperAscii, split, indexOf, lastIndexOf, replace, substring, trim,
charAt, join), lists (isSorted, sum, min, max, indexOf), `format`, `isURL`/`url` with its
getters, quantities (isQuantity, quantity, compareTo, isGreaterThan, isLessThan, asInteger,
asApproximateFloat, isInteger, sign; a quantity is carried as its canonical string) and IPs
(isIP, ip, isCIDR, cidr, family, containsIP; carried as strings). Programs are compiled
once per rule text.

Cost: kube's static cost estimator (which refuses CRDs whose rules could be too expensive) is
not reproduced; rules longer than kube's limit are refused, and each evaluation is costed from
the data it runs over (values visited, plus the largest collection to the power of the rule's
comprehension nesting) against kube's per-call limit (1e6) and per-object budget (1e7), failing
with kube's messages.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import urllib.parse
from decimal import Decimal
from typing import Any

import cel

from navio.api import quantity
from navio.api.errors import cause
from navio.api.crd.validator import json_type

__all__ = ["check_rules", "compile_error", "comprehension_depth", "estimated_cost",
           "evaluate", "runtime_message", "MAX_RULE_LENGTH", "PER_CALL_LIMIT",
           "RUNTIME_BUDGET"]

Cause = dict[str, str]
MAX_RULE_LENGTH = 10_000
_REASONS = {"FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired",
            "FieldValueDuplicate"}


def _ordered(xs: list[Any]) -> bool:
    return all(a <= b for a, b in zip(xs, xs[1:]))


def _format(fmt: str, args: list[Any]) -> str:
    out, i, n = [], 0, 0
    while i < len(fmt):
        c = fmt[i]
        if c == "%" and i + 1 < len(fmt):
            spec = fmt[i + 1]
            if spec == "%":
                out.append("%")
            else:
                arg = args[n] if n < len(args) else ""
                n += 1
                out.append(str(arg).lower() if isinstance(arg, bool) else
                           format(arg, "x") if spec == "x" and isinstance(arg, int) else
                           str(arg))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _is_url(s: str) -> bool:
    p = urllib.parse.urlparse(s)
    return bool(p.scheme) and (bool(p.netloc) or s.startswith(p.scheme + ":/"))


def _is_quantity(s: str) -> bool:
    try:
        quantity.parse_quantity(s)
        return True
    except quantity.QuantityError:
        return False


def _quantity(s: str) -> str:
    """kube's quantity(): represented by its canonical string (its methods parse it)."""
    return quantity.canonicalize(s)


def _amount(q: str) -> Decimal:
    return quantity.parse_quantity(q)


def _is_ip(s: str, *family: int) -> bool:
    try:
        ip = ipaddress.ip_address(s)
    except ValueError:
        return False
    return not family or ip.version == family[0]


def _is_cidr(s: str) -> bool:
    try:
        ipaddress.ip_network(s, strict=False)
        return "/" in s
    except ValueError:
        return False


_FUNCTIONS: dict[str, Any] = {
    # Kubernetes quantity library (k8s.io/apiserver/pkg/cel/library/quantity.go).
    "isQuantity": _is_quantity,
    "quantity": _quantity,
    "isGreaterThan": lambda a, b: _amount(a) > _amount(b),
    "isLessThan": lambda a, b: _amount(a) < _amount(b),
    "compareTo": lambda a, b: (_amount(a) > _amount(b)) - (_amount(a) < _amount(b)),
    "asInteger": lambda q: int(_amount(q)),
    "asApproximateFloat": lambda q: float(_amount(q)),
    "isInteger": lambda q: _amount(q) == int(_amount(q)),
    "sign": lambda q: (_amount(q) > 0) - (_amount(q) < 0),
    # IP and CIDR library (ip.go, cidr.go): checks and families.
    "isIP": _is_ip,
    "isCIDR": _is_cidr,
    "ip": lambda s: str(ipaddress.ip_address(s)),
    "cidr": lambda s: str(ipaddress.ip_network(s, strict=False)),
    "family": lambda s: (ipaddress.ip_network(s, strict=False) if "/" in s
                         else ipaddress.ip_address(s)).version,
    "containsIP": lambda c, ip: ipaddress.ip_address(ip) in ipaddress.ip_network(
        c, strict=False),
    "lowerAscii": lambda s: s.lower(),
    "upperAscii": lambda s: s.upper(),
    "split": lambda s, sep, *n: s.split(sep) if not n or n[0] < 0 else
    ([] if n[0] == 0 else s.split(sep, n[0] - 1)),
    "indexOf": lambda s, x, *start: s.index(x, *start) if isinstance(s, list) and x in s
    else -1 if isinstance(s, list) else s.find(x, *start),
    "lastIndexOf": lambda s, x: (len(s) - 1 - s[::-1].index(x)) if isinstance(s, list) and
    x in s else -1 if isinstance(s, list) else s.rfind(x),
    "replace": lambda s, a, b, *n: s.replace(a, b, *(n if n and n[0] >= 0 else ())),
    "substring": lambda s, a, *b: s[a:b[0]] if b else s[a:],
    "trim": lambda s: s.strip(),
    "charAt": lambda s, i: s[i] if i < len(s) else "",
    "join": lambda xs, *sep: (sep[0] if sep else "").join(xs),
    "isSorted": lambda xs: _ordered(list(xs)),
    "sum": lambda xs: sum(xs),
    "min": lambda xs: min(xs),
    "max": lambda xs: max(xs),
    "reverse": lambda s: s[::-1],
    "format": _format,
    "isURL": _is_url,
    "url": lambda s: s,
    "getScheme": lambda u: urllib.parse.urlparse(u).scheme,
    "getHost": lambda u: urllib.parse.urlparse(u).netloc,
    "getHostname": lambda u: urllib.parse.urlparse(u).hostname or "",
    "getPort": lambda u: str(urllib.parse.urlparse(u).port or ""),
    "getEscapedPath": lambda u: urllib.parse.urlparse(u).path,
    "getQuery": lambda u: {k: v for k, v in urllib.parse.parse_qs(
        urllib.parse.urlparse(u).query).items()},
}


@functools.lru_cache(maxsize=4096)
def _compiled(rule: str) -> Any:
    return cel.compile(rule)


def compile_error(rule: str) -> str | None:
    """Why `rule` does not compile, or None (CRD validation reports it)."""
    if len(rule) > MAX_RULE_LENGTH:
        return f"rule too long: {len(rule)} bytes, may be at most {MAX_RULE_LENGTH}"
    try:
        _compiled(rule)
    except Exception as exc:  # the binding raises ValueError and RuntimeError variants
        return f"compilation failed: {exc}"
    return None


def _run(rule: str, self_value: Any, old: Any, has_old: bool) -> Any:
    ctx = cel.Context()
    ctx.add_variable("self", self_value)
    if has_old:
        ctx.add_variable("oldSelf", old)
    for name, fn in _FUNCTIONS.items():
        ctx.add_function(name, fn)
    return _compiled(rule).execute(ctx)


def evaluate(expression: str, variables: dict[str, Any]) -> Any:
    """`expression` over `variables` (kube's admission CEL: `object`, `request`, …), with
    kube's extension functions; raises what the interpreter raises."""
    ctx = cel.Context()
    for name, value in variables.items():
        ctx.add_variable(name, value)
    for name, fn in _FUNCTIONS.items():
        ctx.add_function(name, fn)
    return _compiled(expression).execute(ctx)


def runtime_message(exc: Exception) -> str:
    """An evaluation failure worded as cel-go words it (`no such key: x`)."""
    return _runtime_message(exc)


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _rule_cause(rule: dict[str, Any], path: str, value: Any, detail: str) -> Cause:
    reason = rule.get("reason") or "FieldValueInvalid"
    if reason not in _REASONS:
        reason = "FieldValueInvalid"
    fp = rule.get("fieldPath") or ""
    where = path + fp if fp.startswith(".") or fp.startswith("[") else _child(path, fp) \
        if fp else path
    where = where.lstrip(".")
    if reason == "FieldValueInvalid":
        return cause(reason, where, detail, json_type(value))
    if reason == "FieldValueDuplicate":
        return cause(reason, where, detail, json_type(value))
    return cause(reason, where, detail)


# kube's runtime limits (k8s.io/apiserver/pkg/apis/cel/config.go): one rule evaluation may
# cost PerCallLimit, all the rules of one object RuntimeCELCostBudget.
PER_CALL_LIMIT = 1_000_000
RUNTIME_BUDGET = 10_000_000
_MACROS = re.compile(r"\.(all|exists_one|exists|map|filter)\s*\(")


@functools.lru_cache(maxsize=4096)
def comprehension_depth(rule: str) -> int:
    """How deeply the rule nests comprehension macros (`all`, `exists`, `map`, ...)."""
    depth = best = 0
    stack: list[bool] = []          # per open parenthesis: does it open a macro?
    i = 0
    while i < len(rule):
        c = rule[i]
        if c in "'\"":                       # skip string literals
            j = rule.find(c, i + 1)
            i = len(rule) if j < 0 else j + 1
            continue
        m = _MACROS.match(rule, i)
        if m is not None:
            stack.append(True)
            depth += 1
            best = max(best, depth)
            i = m.end()
            continue
        if c == "(":
            stack.append(False)
        elif c == ")" and stack:
            depth -= int(stack.pop())
        i += 1
    return best


def _size(value: Any) -> tuple[int, int]:
    """(JSON nodes, largest collection or string length) of a value."""
    nodes, largest = 1, 0
    todo = [value]
    while todo:
        v = todo.pop()
        if isinstance(v, dict):
            largest = max(largest, len(v))
            nodes += len(v)
            todo.extend(v.values())
        elif isinstance(v, list):
            largest = max(largest, len(v))
            nodes += len(v)
            todo.extend(v)
        elif isinstance(v, str):
            largest = max(largest, len(v))
    return nodes, largest


def estimated_cost(rule: str, value: Any) -> int:
    """A runtime cost estimate in kube's units: one per value visited, and the largest
    collection to the power of the comprehension nesting (what iterating it costs)."""
    nodes, largest = _size(value)
    depth = comprehension_depth(rule)
    return nodes + (max(largest, 1) ** depth if depth else 0)


class _Budget:
    def __init__(self) -> None:
        self.left = RUNTIME_BUDGET
        self.exhausted = False


def _eval_rules(rules: list[dict[str, Any]], value: Any, old: Any, has_old: bool, path: str,
                errs: list[Cause], budget: _Budget) -> None:
    for rule in rules:
        if budget.exhausted:
            return
        text = rule.get("rule", "")
        if "oldSelf" in text and not has_old and not rule.get("optionalOldSelf"):
            continue
        cost = estimated_cost(text, value)
        if cost > PER_CALL_LIMIT:
            errs.append(_rule_cause({}, path, value,
                                    f"call cost exceeds limit for rule: {text.strip()}"))
            continue
        budget.left -= cost
        if budget.left < 0:
            budget.exhausted = True
            errs.append(_rule_cause({}, path, value, "validation failed due to running out of "
                                                     "cost budget, no further validation rules "
                                                     "will be run"))
            return
        try:
            ok = _run(text, value, old, has_old)
        except Exception as exc:
            errs.append(_rule_cause(rule, path, value, f"{_runtime_message(exc)} evaluating "
                                                       f"rule: {text}"))
            continue
        if ok is True:
            continue
        detail = rule.get("message") or f"failed rule: {text.strip()}"
        if rule.get("messageExpression"):
            try:
                msg = _run(rule["messageExpression"], value, old, has_old)
                if isinstance(msg, str) and msg.strip():
                    detail = msg
            except Exception:
                pass
        errs.append(_rule_cause(rule, path, value, detail))


def _runtime_message(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"no such key: {exc.args[0] if exc.args else ''}"
    return str(exc).split(". Check that")[0]


def check_rules(schema: dict[str, Any], new: Any, old: Any = None,
                has_old: bool = False, path: str = "") -> list[Cause]:
    """Errors of every rule in `schema` over `new` (and `old` for transition rules)."""
    errs: list[Cause] = []
    _walk(schema, new, old, has_old, path, errs, _Budget())
    return errs


def _walk(sch: dict[str, Any], new: Any, old: Any, has_old: bool, path: str,
          errs: list[Cause], budget: _Budget) -> None:
    if new is None or (has_old and new == old):
        return      # validation ratcheting (GA in 1.30): unchanged values are not re-checked
    rules = sch.get("x-kubernetes-validations")
    if rules:
        _eval_rules(rules, new, old, has_old, path, errs, budget)
    if isinstance(new, dict):
        props = sch.get("properties") or {}
        addl = sch.get("additionalProperties")
        olds = old if has_old and isinstance(old, dict) else {}
        for k, v in new.items():
            sub = props.get(k)
            if sub is None and isinstance(addl, dict):
                sub = addl
            if sub is not None and (path or k not in ("apiVersion", "kind", "metadata")):
                _walk(sub, v, olds.get(k), k in olds, _child(path, k), errs, budget)
    elif isinstance(new, list) and isinstance(sch.get("items"), dict):
        items = sch["items"]
        keys = sch.get("x-kubernetes-list-map-keys") or []
        by_key: dict[tuple[Any, ...], Any] = {}
        if has_old and isinstance(old, list) and sch.get("x-kubernetes-list-type") == "map":
            by_key = {tuple(o.get(x) for x in keys): o for o in old if isinstance(o, dict)}
        for i, item in enumerate(new):
            k = tuple(item.get(x) for x in keys) if isinstance(item, dict) else ()
            _walk(items, item, by_key.get(k), k in by_key, f"{path}[{i}]", errs, budget)
