"""Selector error text exactly as Go prints it.

Selector errors reach users verbatim in a 400 `Status` (`unable to parse requirement:
values[0][app]: Invalid value: "a@b": ...`), and Kubernetes builds them with `fmt`'s `%q` /
`%#v` and apimachinery's `field.Error`. This module reproduces those renderings so that the selector
modules can assemble the same strings; it knows nothing about selectors themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["go_quote", "go_string_slice", "invalid", "aggregate",
           "label_key_errors", "label_value_errors"]

_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_quote(s: str) -> str:
    """`fmt.Sprintf("%q", s)`: a double-quoted Go string literal."""
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def go_string_slice(values: Sequence[str] | None) -> str:
    """`fmt.Sprintf("%#v", []string{...})`; None is the nil slice."""
    if values is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(go_quote(v) for v in values) + "}"


def invalid(path: str, value: str | Sequence[str] | None, detail: str) -> str:
    """`field.Invalid(path, value, detail).Error()`; a nil path prints as `<nil>`."""
    rendered = go_quote(value) if isinstance(value, str) else go_string_slice(value)
    return f"{path}: Invalid value: {rendered}: {detail}"


def aggregate(messages: list[str]) -> str:
    """`utilerrors.NewAggregate(...).Error()`: one message alone, several as `[a, b]`."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


# k8s.io/apimachinery/pkg/util/validation/validation.go (v1.32) messages.
_QNAME_CHAR = "[A-Za-z0-9]"
_QNAME_EXT = "[-A-Za-z0-9_.]"
_QNAME_FMT = f"({_QNAME_CHAR}{_QNAME_EXT}*)?{_QNAME_CHAR}"
_QNAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
              "with an alphanumeric character")
_LABEL_VALUE_FMT = f"({_QNAME_FMT})?"
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, "
                    "'-', '_' or '.', and must start and end with an alphanumeric character")
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                          "characters, '-' or '.', and must start and end with an alphanumeric "
                          "character")


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    # validation.RegexError, double spaces and all: "(e.g. 'MyValue',  or 'my_value', ...".
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    listed = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {listed}regex used for validation is '{fmt}')"


def _max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


def _is_qualified_name_part(name: str) -> bool:
    if not name or not name.isascii():
        return False
    ok_ext = all(c.isalnum() or c in "-_." for c in name)
    return ok_ext and name[0].isalnum() and name[-1].isalnum()


def _is_dns1123_subdomain(value: str) -> bool:
    if not value or not value.isascii():
        return False
    for label in value.split("."):
        if not label or not (label[0].isdigit() or label[0].islower()):
            return False
        if not (label[-1].isdigit() or label[-1].islower()):
            return False
        if not all(c.isdigit() or c.islower() or c == "-" for c in label):
            return False
    return True


def label_key_errors(key: str) -> list[str]:
    """validation.IsQualifiedName: why `key` is not a label key (empty when it is one)."""
    errs: list[str] = []
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            if len(prefix.encode()) > 253:
                errs.append("prefix part " + _max_len_error(253))
            if not _is_dns1123_subdomain(prefix):
                errs.append("prefix part " + _regex_error(_DNS1123_SUBDOMAIN_MSG,
                                                          _DNS1123_SUBDOMAIN_FMT, "example.com"))
    else:
        return [
            "a qualified name " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name",
                                               "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name.encode()) > 63:
        errs.append("name part " + _max_len_error(63))
    if not _is_qualified_name_part(name):
        errs.append("name part " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name",
                                                "123-abc"))
    return errs


def label_value_errors(value: str) -> list[str]:
    """validation.IsValidLabelValue: why `value` is not a label value."""
    errs: list[str] = []
    if len(value.encode()) > 63:
        errs.append(_max_len_error(63))
    if value and not _is_qualified_name_part(value):
        errs.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value",
                                 "12345"))
    return errs
