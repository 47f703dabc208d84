"""Field selectors: the `fieldSelector` query parameter.

A port of k8s.io/apimachinery/pkg/fields/selector.go (v1.32). Terms are `field=value`,
`field==value` or `field!=value`, joined by commas (AND). A value may escape `\\`, `,` and `=`
with a backslash; the field name cannot be escaped, so the first operator splits a term.
Parse errors raise `BadRequest` with Kubernetes' message. A field an object does not have reads
as the empty string, so `spec.nodeName=` selects unscheduled pods. Which fields a kind supports
is decided in `navio.api.selectors.kinds`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from navio.api.errors import BadRequest

__all__ = ["FieldRequirement", "FieldSelector", "parse_field_selector",
           "field_selector_matches", "escape_field_value", "one_term_selector"]

_OPERATORS = ("!=", "==", "=")  # "==" before "=" so that the value keeps no leading "="


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """`field = value` (operator "=") or `field != value` (operator "!=")."""

    field: str
    operator: str
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        equal = fields.get(self.field, "") == self.value
        return equal if self.operator == "=" else not equal

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{escape_field_value(self.value)}"


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A conjunction of field terms; the empty selector matches everything."""

    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements

    def requires_exact_match(self, field: str) -> str | None:
        """The value `field` must equal (`metadata.name=web`), if a term pins it."""
        for r in self.requirements:
            if r.field == field and r.operator == "=":
                return r.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def escape_field_value(value: str) -> str:
    """fields.EscapeValue: backslash-escape `\\`, `,` and `=`."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape(value: str) -> str:
    if not any(c in value for c in "\\,="):
        return value
    out, in_slash = [], False
    for ch in value:
        if in_slash:
            if ch not in "\\,=":
                raise BadRequest(
                    f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch in ",=":
            # Go formats the rune with %v, so the message carries its code point ("61").
            raise BadRequest(
                f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if in_slash:
        raise BadRequest("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(s: str) -> list[str]:
    """Split on commas that are not backslash-escaped; the escapes stay in the terms."""
    if not s:
        return []
    terms, start, in_slash = [], 0, False
    for i, ch in enumerate(s):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append(s[start:i])
            start = i + 1
    terms.append(s[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in _OPERATORS:
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def parse_field_selector(s: str) -> FieldSelector:
    """fields.ParseSelector: `"metadata.name=web,status.phase!=Failed"` → FieldSelector.

    Terms are sorted as strings, as Go does, so `str()` is deterministic."""
    requirements = []
    for part in sorted(_split_terms(s)):
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise BadRequest(f"invalid selector: '{s}'; can't understand '{part}'")
        field, op, value = split
        requirements.append(FieldRequirement(field, "!=" if op == "!=" else "=",
                                             _unescape(value)))
    return FieldSelector(tuple(requirements))


def field_selector_matches(selector: FieldSelector, fields: Mapping[str, str]) -> bool:
    """Whether an object whose selectable fields are `fields` satisfies `selector`."""
    return selector.matches(fields)


def one_term_selector(field: str, value: str) -> FieldSelector:
    """fields.OneTermEqualSelector: `field=value` (e.g. `spec.nodeName=node-1`)."""
    return FieldSelector((FieldRequirement(field, "=", value),))
