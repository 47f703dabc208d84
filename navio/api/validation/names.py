"""String format checks with apimachinery's exact messages (Kubernetes v1.32).

Mirrors k8s.io/apimachinery/pkg/util/validation/validation.go and ip.go, the content package
(`IsLabelKey`, `IsLabelValue`) and api/validation/generic.go (`NameIs*` with the trailing-dash
mask for generateName prefixes). Each `is_*` returns a list of messages, empty when valid, in
the order upstream appends them; callers wrap each message in `field.invalid`.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Any, Callable, TypeVar

__all__ = [
    "DNS1123_LABEL_MAX_LENGTH", "DNS1123_SUBDOMAIN_MAX_LENGTH", "DNS1035_LABEL_MAX_LENGTH",
    "LABEL_VALUE_MAX_LENGTH", "is_dns1123_label", "is_dns1123_subdomain", "is_dns1035_label",
    "is_qualified_name", "is_valid_label_value", "is_config_map_key", "is_env_var_name",
    "is_relaxed_env_var_name", "is_valid_port_num", "is_valid_port_name", "is_valid_percent",
    "is_http_header_name", "is_valid_ip", "is_valid_cidr", "is_valid_user_id",
    "is_valid_group_id", "inclusive_range_error", "max_len_error", "regex_error", "EMPTY_ERROR",
    "name_is_dns_subdomain", "name_is_dns_label", "name_is_dns1035_label",
    "validate_path_segment_name",
]

DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
DNS1035_LABEL_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63
_QUALIFIED_NAME_MAX_LENGTH = 63
EMPTY_ERROR = "must be non-empty"


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    # Built as upstream's RegexError does, double space before "or" included.
    out = msg + " (e.g. "
    for i, e in enumerate(examples):
        if i > 0:
            out += " or "
        out += f"'{e}', "
    return out + f"regex used for validation is '{fmt}')"


def _full(fmt: str) -> re.Pattern[str]:
    # Go's regexp `^...$` has no trailing-newline leniency, unlike Python's `$`.
    return re.compile(f"(?:{fmt})\\Z")


_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric "
                      "characters or '-', and must start and end with an alphanumeric character")
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                          "characters, '-' or '.', and must start and end with an alphanumeric "
                          "character")
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or "
                      "'-', start with an alphabetic character, and end with an alphanumeric "
                      "character")
_LABEL_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_KEY_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and "
                  "end with an alphanumeric character")
_LABEL_VALUE_FMT = "(" + _LABEL_KEY_FMT + ")?"
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, "
                    "'-', '_' or '.', and must start and end with an alphanumeric character")
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
_ENV_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*"
_ENV_MSG = ("a valid environment variable name must consist of alphabetic characters, digits, "
            "'_', '-', or '.', and must not start with a digit")
_RELAXED_ENV_MSG = ("a valid environment variable name must consist only of printable ASCII "
                    "characters other than '='")
_PERCENT_FMT = "[0-9]+%"
_HTTP_HEADER_FMT = "[-A-Za-z0-9]+"

_DNS1123_LABEL_RE = _full(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = _full(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE = _full(_DNS1035_LABEL_FMT)
_LABEL_KEY_RE = _full(_LABEL_KEY_FMT)
_LABEL_VALUE_RE = _full(_LABEL_VALUE_FMT)
_CONFIG_KEY_RE = _full(_CONFIG_KEY_FMT)
_ENV_RE = _full(_ENV_FMT)
_PERCENT_RE = _full(_PERCENT_FMT)
_HTTP_HEADER_RE = _full(_HTTP_HEADER_FMT)
_PORT_NAME_CHARSET_RE = _full("[-a-z0-9]+")


_F = TypeVar("_F", bound=Callable[..., list[str]])
_MEMO_LIMIT = 16_384


def _memo(fn: _F) -> _F:
    """Remember a pure string check's messages (names, label keys and values repeat across
    writes); each call gets its own list, which callers may extend."""
    seen: dict[tuple[Any, ...], list[str]] = {}

    @functools.wraps(fn)
    def wrapper(*args: Any) -> list[str]:
        try:
            hit = seen.get(args)
        except TypeError:          # an unhashable argument: no memo
            return fn(*args)
        if hit is None:
            if len(seen) >= _MEMO_LIMIT:
                seen.clear()
            hit = seen[args] = fn(*args)
        return list(hit)
    return wrapper  # type: ignore[return-value]


def _blen(value: str) -> int:
    # Go's len() counts bytes.
    return len(value.encode("utf-8", "surrogatepass"))


@_memo
def is_dns1123_label(value: str) -> list[str]:
    errs = []
    if _blen(value) > DNS1123_LABEL_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_LABEL_MAX_LENGTH))
    if not _DNS1123_LABEL_RE.match(value):
        if _DNS1123_SUBDOMAIN_RE.match(value):
            # A valid subdomain but not a label: with the length checked, it must be dots.
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


@_memo
def is_dns1123_subdomain(value: str) -> list[str]:
    errs = []
    if _blen(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


@_memo
def is_dns1035_label(value: str) -> list[str]:
    errs = []
    if _blen(value) > DNS1035_LABEL_MAX_LENGTH:
        errs.append(max_len_error(DNS1035_LABEL_MAX_LENGTH))
    if not _DNS1035_LABEL_RE.match(value):
        errs.append(regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


@_memo
def is_qualified_name(value: str) -> list[str]:
    """content.IsLabelKey (validation.IsQualifiedName): `[prefix/]name`."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + EMPTY_ERROR)
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return ["a valid label key " + regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName",
                                                   "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part " + EMPTY_ERROR)
    elif _blen(name) > _QUALIFIED_NAME_MAX_LENGTH:
        errs.append("name part " + max_len_error(_QUALIFIED_NAME_MAX_LENGTH))
    if not _LABEL_KEY_RE.match(name):
        errs.append("name part " + regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName",
                                               "my.name", "123-abc"))
    return errs


@_memo
def is_valid_label_value(value: str) -> list[str]:
    errs = []
    if _blen(value) > LABEL_VALUE_MAX_LENGTH:
        errs.append(max_len_error(LABEL_VALUE_MAX_LENGTH))
    if not _LABEL_VALUE_RE.match(value):
        errs.append(regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def _chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


@_memo
def is_config_map_key(value: str) -> list[str]:
    errs = []
    if _blen(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _CONFIG_KEY_RE.match(value):
        errs.append(regex_error(_CONFIG_KEY_MSG, _CONFIG_KEY_FMT, "key.name", "KEY_NAME",
                                "key-name"))
    return errs + _chdir_prefix(value)


def is_env_var_name(value: str) -> list[str]:
    errs = []
    if not _ENV_RE.match(value):
        errs.append(regex_error(_ENV_MSG, _ENV_FMT, "my.env-name", "MY_ENV.NAME", "MyEnvName1"))
    return errs + _chdir_prefix(value)


def is_relaxed_env_var_name(value: str) -> list[str]:
    """The RelaxedEnvironmentVariableValidation rule, on by default (beta) in v1.32."""
    errs = []
    if not value:
        errs.append("environment variable name " + EMPTY_ERROR)
    if any(ord(c) > 0x7E or ord(c) < 0x20 or c == "=" for c in value):
        errs.append(_RELAXED_ENV_MSG)
    return errs


def is_valid_port_num(port: int) -> list[str]:
    return [] if 1 <= port <= 65535 else [inclusive_range_error(1, 65535)]


def is_valid_user_id(uid: int) -> list[str]:
    return [] if 0 <= uid <= 2147483647 else [inclusive_range_error(0, 2147483647)]


is_valid_group_id = is_valid_user_id


def is_valid_port_name(port: str) -> list[str]:
    errs = []
    if _blen(port) > 15:
        errs.append(max_len_error(15))
    if not _PORT_NAME_CHARSET_RE.match(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_valid_percent(percent: str) -> list[str]:
    if _PERCENT_RE.match(percent):
        return []
    return [regex_error("a valid percent string must be a numeric string followed by an ending "
                        "'%'", _PERCENT_FMT, "1%", "93%")]


def is_http_header_name(value: str) -> list[str]:
    if _HTTP_HEADER_RE.match(value):
        return []
    return [regex_error("a valid HTTP header must consist of alphanumeric characters or '-'",
                        _HTTP_HEADER_FMT, "X-Header-Name")]


def _parse_ip_sloppy(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # netutils.ParseIPSloppy accepts IPv4 octets with leading zeros (as decimal).
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        pass
    parts = value.split(".")
    if len(parts) == 4 and all(p.isdigit() and p.isascii() and 0 < len(p) for p in parts):
        try:
            return ipaddress.IPv4Address(".".join(str(int(p)) for p in parts))
        except ValueError:
            return None
    return None


def is_valid_ip(value: str) -> list[str]:
    if "%" not in value and _parse_ip_sloppy(value) is not None:
        return []
    return ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]


def is_valid_cidr(value: str) -> list[str]:
    addr, sep, bits = value.partition("/")
    ok = bool(sep) and bits.isdigit() and bits.isascii() and _parse_ip_sloppy(addr) is not None
    if ok:
        ip = _parse_ip_sloppy(addr)
        ok = ip is not None and int(bits) <= (32 if ip.version == 4 else 128)
    return [] if ok else ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]


def _mask_trailing_dash(name: str) -> str:
    # apimachinery generic.go maskTrailingDash: drops the last *two* characters and appends
    # "a", so a generateName prefix "foo-" validates as "foa".
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def name_is_dns_subdomain(name: str, prefix: bool = False) -> list[str]:
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool = False) -> list[str]:
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool = False) -> list[str]:
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


@_memo
def validate_path_segment_name(name: str, prefix: bool = False) -> list[str]:
    """apimachinery/pkg/api/validation/path/name.go: what any object name must satisfy to be a
    URL path segment; run after kind validation (rest.BeforeCreate)."""
    errs = []
    if not prefix:
        if name in (".", ".."):
            errs.append(f"may not be '{name}'")
    for bad in ("/", "%"):
        if bad in name:
            errs.append(f"may not contain '{bad}'")
    return errs
