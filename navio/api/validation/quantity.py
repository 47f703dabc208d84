"""resource.Quantity: parsing, comparison and the canonical string kube-apiserver writes back.

Mirrors k8s.io/apimachinery/pkg/api/resource (quantity.go, suffix.go, amount.go). Values are
exact `Fraction`s, so comparisons never round. `canonical()` reproduces
`Quantity.String()`: decimal values use an exponent that is a multiple of three with the
largest suffix that keeps an integer mantissa ("1000" -> "1k", "0.5" -> "500m"), binary values
at least 1024 in magnitude are written in base 1024 when integral ("1024Mi" -> "1Gi"), and
`e` notation is kept. `round_up_milli()` is SetDefaults_ResourceList's `RoundUp(-3)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

__all__ = ["Quantity", "QuantityError", "parse", "canonical", "round_up_milli", "go_quantity",
           "FORMAT_ERROR", "SUFFIX_ERROR"]

FORMAT_ERROR = ("quantities must match the regular expression "
                "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
SUFFIX_ERROR = "unable to parse quantity's suffix"

_DEC = {"": 0, "n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BIN = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DEC_SUFFIX = {v: k for k, v in _DEC.items()}
_BIN_SUFFIX = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
_SUFFIX_CHARS = set("eEinumkKMGTP")


class QuantityError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Quantity:
    value: Fraction
    format: str          # "DecimalSI" | "BinarySI" | "DecimalExponent"
    text: str            # the string it was parsed from

    def __str__(self) -> str:
        return canonical(self)


def _split(s: str) -> tuple[bool, str, str, str]:
    """resource.parseQuantityString: (positive, numerator, denominator, suffix)."""
    pos, end, positive = 0, len(s), True
    if s[:1] in ("-", "+"):
        positive = s[0] == "+"
        pos = 1
    start = pos
    while pos < end and s[pos].isdigit() and s[pos].isascii():
        pos += 1
    num = s[start:pos].lstrip("0") or "0"
    denom = ""
    if pos < end and s[pos] == ".":
        pos += 1
        d0 = pos
        while pos < end and s[pos].isdigit() and s[pos].isascii():
            pos += 1
        denom = s[d0:pos]
    suffix_start = pos
    while pos < end and s[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and s[pos] in "+-":
        pos += 1
    while pos < end and s[pos].isdigit() and s[pos].isascii():
        pos += 1
    if pos != end:
        raise QuantityError(FORMAT_ERROR)
    return positive, num, denom, s[suffix_start:end]


def parse(raw: Any) -> Quantity:
    """Parse a quantity as the JSON decoder does (strings, or bare JSON numbers)."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise QuantityError(FORMAT_ERROR)
    text = raw if isinstance(raw, str) else (str(raw) if isinstance(raw, int) else repr(raw))
    s = text.strip()
    if not s:
        raise QuantityError(FORMAT_ERROR)
    positive, num, denom, suffix = _split(s)
    mantissa = Fraction(int(num + denom), 10 ** len(denom))
    if suffix in _DEC:
        fmt, value = "DecimalSI", mantissa * Fraction(10) ** _DEC[suffix]
    elif suffix in _BIN:
        fmt, value = "BinarySI", mantissa * 2 ** _BIN[suffix]
    elif len(suffix) > 1 and suffix[0] in "eE":
        try:
            exp = int(suffix[1:])
        except ValueError:
            raise QuantityError(SUFFIX_ERROR) from None
        fmt, value = "DecimalExponent", mantissa * Fraction(10) ** exp
    else:
        raise QuantityError(SUFFIX_ERROR)
    return Quantity(value if positive else -value, fmt, text)


def _decimal(value: Fraction, fmt: str) -> str:
    # int64Amount.AsCanonicalBytes: drop trailing zeros into the exponent, then lower the
    # exponent to a multiple of three. Precision below nano is rounded up (away from zero).
    sign = "-" if value < 0 else ""
    mantissa = math.ceil(abs(value) * 10 ** 9)
    exp = -9
    while mantissa and mantissa % 10 == 0:
        mantissa //= 10
        exp += 1
    while exp % 3:
        mantissa *= 10
        exp -= 1
    if fmt == "DecimalExponent":
        return f"{sign}{mantissa}" + (f"e{exp}" if exp else "")
    if exp in _DEC_SUFFIX:
        return f"{sign}{mantissa}{_DEC_SUFFIX[exp]}"
    # Beyond "E" or below "n" upstream has no suffix; keep the largest one that fits.
    while exp > 18:
        mantissa *= 1000
        exp -= 3
    return f"{sign}{mantissa}{_DEC_SUFFIX[exp]}"


def canonical(q: Quantity) -> str:
    """Quantity.String() (CanonicalizeBytes)."""
    v = q.value
    if v == 0:
        return "0"
    if q.format == "BinarySI" and abs(v) >= 1024 and v.denominator == 1:
        sign = "-" if v < 0 else ""
        n, e = abs(v.numerator), 0
        while n % 1024 == 0 and e < len(_BIN_SUFFIX) - 1:
            n //= 1024
            e += 1
        return f"{sign}{n}{_BIN_SUFFIX[e]}"
    return _decimal(v, "DecimalExponent" if q.format == "DecimalExponent" else "DecimalSI")


def round_up_milli(q: Quantity) -> Quantity:
    """Quantity.RoundUp(-3): to milli precision, away from zero."""
    v = q.value * 1000
    if v.denominator == 1:
        return q
    r = Fraction(math.ceil(abs(v)), 1000)
    return Quantity(r if q.value > 0 else -r, q.format, q.text)


def go_quantity(q: Quantity) -> Any:
    """A resource.Quantity value as `%#v` prints it (the rare "must be an integer" error
    reports the struct, not its string). The cached string `s` is kept, as ParseQuantity's
    fast path does, only when the input was already in canonical decimal form."""
    from navio.api.errors import GoValue
    try:
        positive, num, denom, suffix = _split(q.text.strip())
    except QuantityError:
        return GoValue(str(q))
    exp = _DEC.get(suffix)
    if exp is None and len(suffix) > 1 and suffix[0] in "eE":
        exp = int(suffix[1:])
    if exp is None:                      # binary suffixes: value at scale 0
        value, scale, s = int(q.value), 0, ""
    else:
        shifted = num + denom
        value, scale = int(shifted), exp - len(denom)
        canonical_form = scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0"
        s = q.text if canonical_form else ""
        value = value if positive else -value
    fmt = q.format
    return GoValue(f"resource.Quantity{{i:resource.int64Amount{{value:{value}, scale:{scale}}}, "
                   f'd:resource.infDecAmount{{Dec:(*inf.Dec)(nil)}}, s:"{s}", Format:"{fmt}"}}')
