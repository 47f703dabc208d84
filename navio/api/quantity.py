"""Resource quantities (`100m`, `1Gi`, `1e3`), parsed and printed as `resource.Quantity` does.

Everything that reads or writes a quantity (validation, quota, the scheduler's fit checks, table
cells) goes through here, so navio accepts exactly the strings Kubernetes accepts and prints the
same canonical form: `0.5` → `500m`, `1.5Gi` → `1536Mi`, `1024Mi` → `1Gi`.

Guarantees, as k8s.io/apimachinery/pkg/api/resource/quantity.go (v1.32):

- Values are exact (`decimal.Decimal` under a context that never rounds); nothing goes through a
  float. Parsing rounds a non-zero value *up in magnitude* to nano precision (`0.1n` → `1n`)
  and caps BinarySI values at 2^63-1, as `ParseQuantity`'s slow path does.
- The format (DecimalSI, BinarySI, DecimalExponent) is remembered from the suffix, and a string
  the parser judged canonical is printed back verbatim (the `Quantity.s` cache) — including its
  quirks: `+1`, `010` and `100.035k` come back unchanged, `1E3` stays `1E3`.
- `value()` / `milli_value()` round up away from zero like `ScaledValue`; for a value parsed by
  the slow path (inf.Dec backed) a negative fraction rounds as scale_int.go does (toward +inf,
  plus one).
- Invalid strings raise `QuantityError` (a ValueError) carrying Kubernetes' message, e.g.
  `quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`.

Deliberate differences, both newer upstream fixes rather than v1.32 behaviour: a DecimalSI value
beyond `E` (or below `n`), or a BinarySI value beyond `Ei`, prints in exponent form (`1e21`)
instead of losing its magnitude (`1000E` → `1` in v1.32); and an exponent outside int32 is
rejected instead of being truncated. Huge exponents are also never expanded into integers, so a
hostile `1e999999999` costs nothing.
"""

from __future__ import annotations

import decimal
import functools
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "DECIMAL_SI", "BINARY_SI", "DECIMAL_EXPONENT", "FORMAT_ERROR", "NUMERIC_ERROR",
    "SUFFIX_ERROR", "Quantity", "QuantityError", "parse_quantity", "format_quantity",
    "canonicalize", "value", "milli_value", "compare",
]

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"

_SPLIT_RE = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
FORMAT_ERROR = f"quantities must match the regular expression '{_SPLIT_RE}'"
NUMERIC_ERROR = "unable to parse numeric part of quantity"
SUFFIX_ERROR = "unable to parse quantity's suffix"

_DEC_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15,
                 "E": 18}
_BIN_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DEC_BY_EXP = {e: s for s, e in _DEC_SUFFIXES.items()}
_BIN_BY_EXP = {e: s for s, e in _BIN_SUFFIXES.items()}
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_DIGITS = frozenset("0123456789")
_MAX_INT64 = (1 << 63) - 1
_MAX_INT32 = (1 << 31) - 1
_MAX_INT64_FACTORS = 18  # decimal digits that always fit an int64 (quantity.go)
_NANO = -9
# Exact arithmetic: no rounding, the widest exponent range; an inexact result would be a bug.
_CTX = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN,
                       traps=[decimal.InvalidOperation, decimal.DivisionByZero,
                              decimal.Overflow])
# Beyond this many integer digits a value is never expanded into a Python int.
_HUGE_DIGITS = 4000


class QuantityError(ValueError):
    """A string that is not a quantity; str() is Kubernetes' error message."""


@functools.total_ordering
@dataclass(frozen=True, slots=True, eq=False)
class Quantity:
    """A parsed quantity: its exact `amount`, the `format` it prints in, and the parsed text
    when Kubernetes would print that text back unchanged. Compares and hashes by amount."""

    amount: Decimal
    format: str = DECIMAL_SI
    text: str = ""
    # int64Amount (True) or inf.Dec (False) backing; only changes how negatives round.
    int64_backed: bool = True

    @classmethod
    def parse(cls, s: str) -> Quantity:
        return _parse(s)

    def __str__(self) -> str:
        return self.text or format_quantity(self.amount, self.format)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self.amount == other.amount

    def __lt__(self, other: Quantity) -> bool:
        return self.amount < other.amount

    def __hash__(self) -> int:
        return hash(self.amount)

    def scaled_value(self, scale: int) -> int:
        """ceil(amount / 10^scale) as an int64, like `Quantity.ScaledValue`."""
        return _scaled_value(self.amount, scale, self.int64_backed)

    def value(self) -> int:
        return self.scaled_value(0)

    def milli_value(self) -> int:
        return self.scaled_value(-3)


def parse_quantity(s: str) -> Decimal:
    """The exact value of quantity string `s` (after Kubernetes' rounding to nano)."""
    return _parse(s).amount


def canonicalize(s: str) -> str:
    """How the API server re-serialises quantity `s` (`0.5` → `500m`, `1024Mi` → `1Gi`)."""
    return str(_parse(s))


def value(q: str | Quantity) -> int:
    """The quantity rounded up to an integer, away from zero (`Quantity.Value`)."""
    return _as_quantity(q).value()


def milli_value(q: str | Quantity) -> int:
    """The quantity in thousandths, rounded up (`Quantity.MilliValue`): `100m` → 100."""
    return _as_quantity(q).milli_value()


def compare(a: str | Quantity, b: str | Quantity) -> int:
    """-1, 0 or 1 as `Quantity.Cmp`: `compare("1", "1000m") == 0`."""
    x, y = _as_quantity(a).amount, _as_quantity(b).amount
    return (x > y) - (x < y)


def _as_quantity(q: str | Quantity) -> Quantity:
    return q if isinstance(q, Quantity) else _parse(q)


# --- parsing ---------------------------------------------------------------------------------


def _scan(s: str) -> tuple[bool, str, str, str, str]:
    """parseQuantityString: (positive, value, num, denom, suffix); `num` lacks leading zeros."""
    positive, pos, end = True, 0, len(s)
    if end and s[0] in "+-":
        positive = s[0] == "+"
        pos = 1
    while pos < end and s[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "0", "", ""
    start = pos
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    num = s[start:pos] or "0"
    if pos >= end:
        return positive, s, num, "", ""
    denom = ""
    if s[pos] == ".":
        pos += 1
        start = pos
        while pos < end and s[pos] in _DIGITS:
            pos += 1
        denom = s[start:pos]
        if pos >= end:
            return positive, s, num, denom, ""
    value_part, suffix_start = s[:pos], pos
    while pos < end and s[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and s[pos] in "+-":
        pos += 1
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    if pos < end:
        # A character that is neither a suffix letter nor an exponent digit.
        raise QuantityError(FORMAT_ERROR)
    return positive, value_part, num, denom, s[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, str]:
    """suffix.go interpret: (base, exponent, format)."""
    if suffix in _DEC_SUFFIXES:
        return 10, _DEC_SUFFIXES[suffix], DECIMAL_SI
    if suffix in _BIN_SUFFIXES:
        return 2, _BIN_SUFFIXES[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        exp = suffix[1:]
        body = exp[1:] if exp[0] in "+-" else exp
        if body.isdigit() and body.isascii() and abs(int(exp)) <= _MAX_INT32:
            return 10, int(exp), DECIMAL_EXPONENT
    raise QuantityError(SUFFIX_ERROR)


def _parse(s: str) -> Quantity:
    if not isinstance(s, str) or not s:
        raise QuantityError(FORMAT_ERROR)
    if s == "0":
        return Quantity(Decimal(0), DECIMAL_SI, "0")
    positive, value_part, num, denom, suffix = _scan(s)
    base, exponent, fmt = _interpret(suffix)

    # The int64 fast path of ParseQuantity: exact, no rounding, and it may keep `s` verbatim.
    precision, scale, mantissa = -1, 0, 1
    if fmt != BINARY_SI:
        scale = exponent
        precision = _MAX_INT64_FACTORS - (len(num) + len(denom))
    elif not denom:
        mantissa = 1 << exponent
        # 1Mi (2^20) has ~6 digits of decimal precision (quantity.go's estimate).
        precision = 15 - len(num) - int(exponent * 3 / 10) - 1
    if precision >= 0:
        scale -= len(denom)
        if scale >= _NANO:
            shifted = num + denom
            digits = int(shifted)
            result = digits * mantissa
            if result <= _MAX_INT64:
                amount = _CTX.scaleb(Decimal(result if positive else -result), scale)
                if fmt == BINARY_SI:
                    keep = exponent % 10 == 0 and digits & 0x07 != 0
                else:
                    keep = scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0"
                return Quantity(amount, fmt, s if keep else "")

    try:
        amount = Decimal(value_part)
    except decimal.InvalidOperation:
        raise QuantityError(NUMERIC_ERROR) from None
    amount = (_CTX.scaleb(amount, exponent) if base == 10
              else _CTX.multiply(amount, Decimal(1 << exponent)))
    negative = amount.is_signed() and amount != 0
    amount = amount.copy_abs()
    if amount != 0 and amount.as_tuple().exponent < _NANO:  # type: ignore[operator]
        # Round non-zero values up to the smallest representable amount: asking for a tiny
        # amount of a resource should get some of it.
        amount = amount.quantize(Decimal("1e-9"), rounding=decimal.ROUND_UP, context=_CTX)
    if fmt == BINARY_SI and amount > _MAX_INT64:
        amount = Decimal(_MAX_INT64)
    if fmt == BINARY_SI and 0 < amount < 1:
        fmt = DECIMAL_SI
    return Quantity(amount.copy_negate() if negative else amount, fmt, "", int64_backed=False)


# --- printing --------------------------------------------------------------------------------


def format_quantity(amount: Decimal | int | str, fmt: str = DECIMAL_SI) -> str:
    """The canonical string of an exact `amount` in format `fmt` (CanonicalizeBytes)."""
    amount = Decimal(amount) if not isinstance(amount, Decimal) else amount
    if amount == 0:
        return "0"
    if fmt == BINARY_SI:
        if -1024 < amount < 1024 or not _is_integer(amount):
            fmt = DECIMAL_SI  # avoids rounding, and hopefully confusion, too
        elif (binary := _binary_form(amount)) is not None:
            return binary
        else:
            fmt = DECIMAL_EXPONENT
    elif fmt != DECIMAL_SI:
        fmt = DECIMAL_EXPONENT
    mantissa, exponent = _canonical_decimal(amount)
    if fmt == DECIMAL_SI and exponent in _DEC_BY_EXP:
        return f"{mantissa}{_DEC_BY_EXP[exponent]}"
    return f"{mantissa}e{exponent}" if exponent else str(mantissa)


def _canonical_decimal(amount: Decimal) -> tuple[int, int]:
    """(m, e) with amount = m·10^e, no factor 10 left in m beyond what makes e a multiple of 3."""
    sign, digits, exponent = amount.as_tuple()
    text = "".join(map(str, digits)).rstrip("0")
    exponent += len(digits) - len(text)  # type: ignore[operator]
    shift = exponent % 3  # lower the exponent to the next multiple of 3
    m = int(text + "0" * shift)
    return (-m if sign else m), exponent - shift


def _binary_form(amount: Decimal) -> str | None:
    if amount.adjusted() > _HUGE_DIGITS:
        return None
    n, k = int(amount), 0
    while abs(n) >= 1024 and n % 1024 == 0:
        n, k = n // 1024, k + 1
    if k == 0:
        return str(n)
    suffix = _BIN_BY_EXP.get(10 * k)
    return None if suffix is None else f"{n}{suffix}"


def _is_integer(amount: Decimal) -> bool:
    return amount == amount.to_integral_value(context=_CTX)


# --- integer views ---------------------------------------------------------------------------


def _scaled_value(amount: Decimal, scale: int, int64_backed: bool) -> int:
    if amount == 0:
        return 0
    x = _CTX.scaleb(amount, -scale)
    sign, digits, exp = x.as_tuple()
    if x.adjusted() > 40 and exp > 0:  # type: ignore[operator]
        # Far outside int64 and maybe astronomically so: never materialise the integer.
        if int64_backed:
            return 0  # positiveScaleInt64 gives up on overflow
        coefficient = int("".join(map(str, digits)))
        low = coefficient * pow(10, exp, 1 << 64) % (1 << 64)  # type: ignore[arg-type]
        return _go_int64(-low if sign else low)
    whole = int(x)  # truncates toward zero
    exact = x == whole
    if int64_backed:
        # negativeScaleInt64 rounds away from zero; an overflowing result reads as 0.
        result = whole if exact else whole + (1 if x > 0 else -1)
        return result if -_MAX_INT64 - 1 <= result <= _MAX_INT64 else 0
    # scale_int.go scaledValue: Go's truncating division, plus one when inexact — for a
    # negative fraction that lands one above the ceiling.
    return _go_int64(whole if exact else whole + 1)


def _go_int64(n: int) -> int:
    """big.Int.Int64(): the low 64 bits of |n| as int64, negated for negative n."""
    low = abs(n) & ((1 << 64) - 1)
    low = low - (1 << 64) if low > _MAX_INT64 else low
    return -low if n < 0 else low
