"""Label selectors: the `labelSelector` query language and `metav1.LabelSelector`.

A port of k8s.io/apimachinery/pkg/labels/selector.go (lexer, parser, `NewRequirement`) and of
meta/v1 `LabelSelectorAsSelector` / `FormatLabelSelector` (helpers.go), v1.32. Guarantees:

- Parsing accepts and rejects exactly what Kubernetes does, and a rejection raises
  `BadRequest` with Kubernetes' message (`unable to parse requirement: ...`, `found ',',
  expected: ...`), since the API server returns that text in its 400.
- Requirements are kept sorted by key and `in`/`notin` values print sorted, so `str()` of a
  selector is deterministic and equal to the Go `String()`.
- `EVERYTHING` (the empty selector) matches every object; `NOTHING` matches none. A nil
  `metav1.LabelSelector` selects nothing, an empty one (`{}`) selects everything — the rule
  controllers rely on so that a workload without a selector never adopts every pod.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from navio.api.errors import BadRequest
from navio.api.selectors.field_errors import (
    aggregate, invalid, label_key_errors, label_value_errors)

__all__ = [
    "EXISTS", "DOES_NOT_EXIST", "EQUALS", "DOUBLE_EQUALS", "NOT_EQUALS", "IN", "NOT_IN",
    "GREATER_THAN", "LESS_THAN", "Requirement", "LabelSelector", "EVERYTHING", "NOTHING",
    "parse_label_selector", "new_requirement", "label_selector_from_spec",
    "format_label_selector", "format_labels", "selector_from_set",
]

# selection.Operator values, verbatim.
DOES_NOT_EXIST, EQUALS, DOUBLE_EQUALS, IN, NOT_EQUALS = "!", "=", "==", "in", "!="
NOT_IN, EXISTS, GREATER_THAN, LESS_THAN = "notin", "exists", "gt", "lt"
_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
_SPELLING = {EQUALS: "=", DOUBLE_EQUALS: "==", NOT_EQUALS: "!=", IN: " in ", NOT_IN: " notin ",
             GREATER_THAN: ">", LESS_THAN: "<"}
_INT64 = re.compile(r"[+-]?[0-9]+\Z")  # what strconv.ParseInt(s, 10, 64) accepts (and range)


def _parse_int64(s: str) -> int | None:
    if not _INT64.match(s):
        return None
    n = int(s)
    return n if -(1 << 63) <= n < (1 << 63) else None


@dataclass(frozen=True, slots=True)
class Requirement:
    """One `key op values` term; build it with `new_requirement` to get validation."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op, present = self.operator, self.key in labels
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return present and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return not present or labels[self.key] not in self.values
        if op == EXISTS:
            return present
        if op == DOES_NOT_EXIST:
            return not present
        if op in (GREATER_THAN, LESS_THAN) and present and len(self.values) == 1:
            have, want = _parse_int64(labels[self.key]), _parse_int64(self.values[0])
            if have is None or want is None:
                return False
            return have > want if op == GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        if self.operator in (EXISTS, DOES_NOT_EXIST):
            return ("!" if self.operator == DOES_NOT_EXIST else "") + self.key
        values = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if self.operator in (IN, NOT_IN):
            values = f"({values})"
        return f"{self.key}{_SPELLING.get(self.operator, '')}{values}"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A conjunction of requirements, or (`nothing=True`) the selector that matches nothing."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def empty(self) -> bool:
        """True when the selector does not restrict anything (it selects everything)."""
        return not self.nothing and not self.requirements

    def requires_exact_match(self, key: str) -> str | None:
        """The single value `key` must have (`a=b`, `a==b`, `a in (b)`), if the selector
        pins one; used to turn a selector into an index lookup."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(nothing=True)


def new_requirement(key: str, operator: str, values: Sequence[str] | None = (),
                    path: str | None = None) -> Requirement:
    """labels.NewRequirement: a validated requirement, or BadRequest with Go's field errors.

    `path` prefixes field paths as `field.WithPath` does (`None` prints `key`, `values[0]`)."""
    def child(name: str) -> str:
        return f"{path}.{name}" if path else name

    errs: list[str] = []
    if key_errs := label_key_errors(key):
        errs.append(invalid(child("key"), key, "; ".join(key_errs)))
    vals = list(values) if values is not None else None
    n = len(vals or ())
    if operator in (IN, NOT_IN):
        if n == 0:
            errs.append(invalid(child("values"), vals,
                                "for 'in', 'notin' operators, values set can't be empty"))
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if n != 1:
            errs.append(invalid(child("values"), vals,
                                "exact-match compatibility requires one single value"))
    elif operator in (EXISTS, DOES_NOT_EXIST):
        if n != 0:
            errs.append(invalid(child("values"), vals,
                                "values set must be empty for exists and does not exist"))
    elif operator in (GREATER_THAN, LESS_THAN):
        if n != 1:
            errs.append(invalid(child("values"), vals,
                                "for 'Gt', 'Lt' operators, exactly one value is required"))
        for i, v in enumerate(vals or ()):
            if _parse_int64(v) is None:
                errs.append(invalid(f"{child('values')}[{i}]", v,
                                    "for 'Gt', 'Lt' operators, the value must be an integer"))
    else:
        supported = ", ".join(f'"{o}"' for o in (*_BINARY_OPERATORS, EXISTS, DOES_NOT_EXIST))
        errs.append(f'{child("operator")}: Unsupported value: "{operator}": '
                    f"supported values: {supported}")
    for i, v in enumerate(vals or ()):
        if value_errs := label_value_errors(v):
            errs.append(invalid(f"{child('values')}[{i}][{key}]", v, "; ".join(value_errs)))
    if errs:
        raise BadRequest(aggregate(errs))
    return Requirement(key, operator, tuple(vals or ()))


# --- the lexer and parser of selector.go ------------------------------------------------------

_EOS, _IDENT, _ERROR = "end", "identifier", "error"
_TOKENS = {")": ")", ",": ",", "!": "!", "==": "==", "=": "=", ">": ">", "in": "in", "<": "<",
           "!=": "!=", "notin": "notin", "(": "("}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")


def _lex(s: str) -> list[tuple[str, str]]:
    """All (token, literal) pairs up to and including end of string.

    Go's lexer reads bytes and treats a NUL byte as the end of input; so does this one."""
    items: list[tuple[str, str]] = []
    pos, n = 0, len(s)
    while True:
        while pos < n and s[pos] in _WHITESPACE:
            pos += 1
        if pos >= n or s[pos] == "\x00":
            items.append((_EOS, ""))
            return items
        if s[pos] in _SPECIAL:
            # Longest run of special characters that still forms a token ("!=", "==").
            end, best = pos, None
            while end < n and s[end] in _SPECIAL:
                end += 1
                if s[pos:end] in _TOKENS:
                    best = end
                elif best is not None:
                    break
            if best is None:  # unreachable: every single special character is a token
                items.append((_ERROR, f"error expected: keyword found '{s[pos:end]}'"))
                pos = end
                continue
            items.append((_TOKENS[s[pos:best]], s[pos:best]))
            pos = best
            continue
        start = pos
        while pos < n and s[pos] not in _SPECIAL and s[pos] not in _WHITESPACE \
                and s[pos] != "\x00":
            pos += 1
        word = s[start:pos]
        items.append((_TOKENS.get(word, _IDENT), word))


class _Parser:
    def __init__(self, s: str) -> None:
        self.items = _lex(s)
        self.pos = 0

    def lookahead(self, values: bool = True) -> tuple[str, str]:
        tok, lit = self.items[self.pos]
        # In a value position `in` and `notin` are ordinary identifiers (`x in (in)`).
        return (_IDENT if values and tok in (IN, NOT_IN) else tok), lit

    def consume(self, values: bool = True) -> tuple[str, str]:
        item = self.lookahead(values)
        self.pos += 1
        return item

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, lit = self.lookahead()
            if tok in (_IDENT, DOES_NOT_EXIST):
                try:
                    requirements.append(self.requirement())
                except BadRequest as e:
                    raise BadRequest(f"unable to parse requirement: {e.message}") from None
                tok, lit = self.consume()
                if tok == _EOS:
                    return requirements
                if tok != ",":
                    raise BadRequest(f"found '{lit}', expected: ',' or 'end of string'")
                tok2, lit2 = self.lookahead()
                if tok2 not in (_IDENT, DOES_NOT_EXIST):
                    raise BadRequest(f"found '{lit2}', expected: identifier after ','")
            elif tok == _EOS:
                return requirements
            else:
                raise BadRequest(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        operator = ""
        tok, key = self.consume()
        if tok == DOES_NOT_EXIST:
            operator = DOES_NOT_EXIST
            tok, key = self.consume()
        if tok != _IDENT:
            raise BadRequest(f"found '{key}', expected: identifier")
        if key_errs := label_key_errors(key):
            raise BadRequest(invalid("<nil>", key, "; ".join(key_errs)))
        if self.lookahead()[0] in (_EOS, ","):
            operator = operator or EXISTS
        if operator in (EXISTS, DOES_NOT_EXIST):
            return new_requirement(key, operator, [])
        tok, lit = self.consume(values=False)
        ops = {IN: IN, "=": EQUALS, "==": DOUBLE_EQUALS, ">": GREATER_THAN, "<": LESS_THAN,
               NOT_IN: NOT_IN, "!=": NOT_EQUALS}
        if tok not in ops:
            raise BadRequest(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        operator = ops[tok]
        values = self.value_set() if operator in (IN, NOT_IN) else self.exact_value()
        return new_requirement(key, operator, sorted(values))

    def value_set(self) -> set[str]:
        tok, lit = self.consume()
        if tok != "(":
            raise BadRequest(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok == ")":
            self.consume()
            return {""}
        if tok not in (_IDENT, ","):
            raise BadRequest(f"found '{lit}', expected: ',', ')' or identifier")
        values: set[str] = set()
        while True:
            tok, item = self.consume()
            if tok == _IDENT:
                values.add(item)
                tok2, lit2 = self.lookahead()
                if tok2 == ")":
                    break
                if tok2 != ",":
                    raise BadRequest(f"found '{lit2}', expected: ',' or ')'")
            elif tok == ",":
                if not values:
                    values.add("")  # "(," starts with an empty value
                tok2, _ = self.lookahead()
                if tok2 == ")":
                    values.add("")  # ",)" ends with one
                    break
                if tok2 == ",":
                    values.add("")  # ",," has one between
            else:
                raise BadRequest(f"found '{item}', expected: ',', or identifier")
        if self.consume()[0] != ")":  # pragma: no cover - the loop only stops before ")"
            raise BadRequest(f"found '{lit}', expected: ')'")
        return values

    def exact_value(self) -> set[str]:
        tok, _ = self.lookahead()
        if tok in (_EOS, ","):
            return {""}
        tok, lit = self.consume()
        if tok == _IDENT:
            return {lit}
        raise BadRequest(f"found '{lit}', expected: identifier")


def parse_label_selector(s: str) -> LabelSelector:
    """labels.Parse: `"app=web,tier in (fe,be),!canary"` → LabelSelector; BadRequest if bad.

    The empty string selects everything."""
    requirements = _Parser(s).parse()
    return LabelSelector(tuple(sorted(requirements, key=lambda r: r.key)))


_SPEC_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def label_selector_from_spec(spec: Mapping[str, Any] | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector for a `{matchLabels, matchExpressions}` dict.

    None (a nil selector) gives NOTHING; `{}` (empty) gives EVERYTHING. Invalid keys, values
    or operators raise BadRequest with the Go error text."""
    if spec is None:
        return NOTHING
    match_labels = spec.get("matchLabels") or {}
    expressions = spec.get("matchExpressions") or []
    if not match_labels and not expressions:
        return EVERYTHING
    requirements = [new_requirement(k, EQUALS, [v]) for k, v in sorted(match_labels.items())]
    for expr in expressions:
        op = expr.get("operator", "")
        if op not in _SPEC_OPERATORS:
            raise BadRequest(f'"{op}" is not a valid label selector operator')
        values = expr.get("values")
        requirements.append(new_requirement(expr.get("key", ""), _SPEC_OPERATORS[op],
                                            list(values) if values else None))
    return LabelSelector(tuple(sorted(requirements, key=lambda r: r.key)))


def format_label_selector(spec: Mapping[str, Any] | None) -> str:
    """metav1.FormatLabelSelector: the selector string, `<none>` if empty or nil, `<error>`
    if invalid (as Scale.status.selector and the SELECTOR table columns show it)."""
    try:
        text = str(label_selector_from_spec(spec))
    except BadRequest:
        return "<error>"
    return text or "<none>"


def format_labels(labels: Mapping[str, str] | None) -> str:
    """labels.FormatLabels: `a=b,c=d` sorted as whole `k=v` strings, `<none>` if empty."""
    return ",".join(sorted(f"{k}={v}" for k, v in (labels or {}).items())) or "<none>"


def selector_from_set(labels: Mapping[str, str] | None) -> LabelSelector:
    """labels.SelectorFromSet: exact-match on every pair, unvalidated; empty → EVERYTHING."""
    return LabelSelector(tuple(Requirement(k, EQUALS, (v,))
                               for k, v in sorted((labels or {}).items())))
