"""Quantities parse, round and print as resource.Quantity does.

Cases ported from k8s.io/apimachinery/pkg/api/resource/quantity_test.go (TestQuantityParse,
TestQuantityString, TestQuantityParseEmit, TestQuantityCmp, the invalid list).
"""

from decimal import Decimal

import pytest

from navio.api.quantity import (
    BINARY_SI, DECIMAL_EXPONENT, DECIMAL_SI, FORMAT_ERROR, SUFFIX_ERROR, Quantity, QuantityError,
    canonicalize, compare, format_quantity, milli_value, parse_quantity, value)


def D(mantissa: int, exponent: int = 0) -> Decimal:
    return Decimal(mantissa).scaleb(exponent)


PARSE = [
    ("0", D(0), DECIMAL_SI), ("0n", D(0), DECIMAL_SI), ("0Ki", D(0), BINARY_SI),
    ("0M", D(0), DECIMAL_SI), ("0Ti", D(0), BINARY_SI),
    ("1", D(1), DECIMAL_SI),
    ("1Ki", D(1024), BINARY_SI), ("8Ki", D(8 * 1024), BINARY_SI),
    ("7Mi", D(7 * 1024**2), BINARY_SI), ("6Gi", D(6 * 1024**3), BINARY_SI),
    ("5Ti", D(5 * 1024**4), BINARY_SI), ("4Pi", D(4 * 1024**5), BINARY_SI),
    ("3Ei", D(3 * 1024**6), BINARY_SI), ("100Ti", D(100 * 1024**4), BINARY_SI),
    ("5n", D(5, -9), DECIMAL_SI), ("4u", D(4, -6), DECIMAL_SI), ("3m", D(3, -3), DECIMAL_SI),
    ("8k", D(8, 3), DECIMAL_SI), ("50k", D(5, 4), DECIMAL_SI), ("7M", D(7, 6), DECIMAL_SI),
    ("6G", D(6, 9), DECIMAL_SI), ("300T", D(3, 14), DECIMAL_SI), ("2P", D(2, 15), DECIMAL_SI),
    ("1E", D(1, 18), DECIMAL_SI),
    ("1E-3", D(1, -3), DECIMAL_EXPONENT), ("1e3", D(1, 3), DECIMAL_EXPONENT),
    ("1E18", D(1, 18), DECIMAL_EXPONENT), ("1e14", D(1, 14), DECIMAL_EXPONENT),
    ("100.035k", D(100035), DECIMAL_SI),
    ("0.001", D(1, -3), DECIMAL_SI), ("0.0005k", D(5, -1), DECIMAL_SI),
    ("0.5", D(5, -1), DECIMAL_SI), ("0.50000", D(5, -1), DECIMAL_SI),
    ("0.5e-2", D(5, -3), DECIMAL_EXPONENT), ("10.035M", D(10035, 3), DECIMAL_SI),
    ("1.3E+6", D(13, 5), DECIMAL_EXPONENT), ("1.53E12", D(153, 10), DECIMAL_EXPONENT),
    ("6.987654321G", D(6987654321), DECIMAL_SI), ("1.01E", D(101, 16), DECIMAL_SI),
    ("3.001n", D(4, -9), DECIMAL_SI), ("1.1E-9", D(2, -9), DECIMAL_EXPONENT),
    ("0.0000000001", D(1, -9), DECIMAL_SI), ("0.00000000050", D(1, -9), DECIMAL_SI),
    ("0.9n", D(1, -9), DECIMAL_SI), ("0.00000012345", D(124, -9), DECIMAL_SI),
    ("9Ei", D(2**63 - 1), BINARY_SI), ("9223372036854775807Ki", D(2**63 - 1), BINARY_SI),
    ("12E", D(12, 18), DECIMAL_SI),
    ("100.035Ki", D(10243584, -2), BINARY_SI), ("0.5Mi", D(512 * 1024), BINARY_SI),
    ("0.025Ti", D(274877906944, -1), BINARY_SI),
    ("0.000000000001Ki", D(2, -9), DECIMAL_SI), (".001", D(1, -3), DECIMAL_SI),
    (".0001k", D(100, -3), DECIMAL_SI), ("1.", D(1), DECIMAL_SI), ("1.G", D(1, 9), DECIMAL_SI),
]


@pytest.mark.parametrize("text,amount,fmt", PARSE, ids=[
    f"{t} parses to {a} in {f}" for t, a, f in PARSE])
def test_quantity_parses_to_its_exact_value_and_format(text, amount, fmt):
    q = Quantity.parse(text)
    assert (q.amount, q.format) == (amount, fmt)
    assert parse_quantity(text) == amount


@pytest.mark.parametrize("sign", ["-", "+"], ids=["with a minus sign", "with a plus sign"])
@pytest.mark.parametrize("text,amount,fmt", PARSE[::4], ids=[t for t, _, _ in PARSE[::4]])
def test_signed_quantity_keeps_format_and_flips_only_for_minus(sign, text, amount, fmt):
    q = Quantity.parse(sign + text)
    assert q.amount == (-amount if sign == "-" else amount)
    assert q.format == fmt


INVALID = [
    ("", FORMAT_ERROR), ("1.1.M", FORMAT_ERROR), ("1+1.0M", FORMAT_ERROR),
    ("0.1mi", SUFFIX_ERROR), ("0.1am", FORMAT_ERROR), ("aoeu", FORMAT_ERROR),
    (".5i", SUFFIX_ERROR), ("1i", SUFFIX_ERROR), ("-3.01i", SUFFIX_ERROR),
    ("-3.01e-", SUFFIX_ERROR), ("1e4294967297", SUFFIX_ERROR), (" 1", FORMAT_ERROR),
    ("1 ", FORMAT_ERROR), ("1Gb", FORMAT_ERROR), ("1e", SUFFIX_ERROR), ("1ki", SUFFIX_ERROR),
]


@pytest.mark.parametrize("text,message", INVALID, ids=[
    f"{t!r} is rejected" for t, _ in INVALID])
def test_invalid_quantity_is_rejected_with_kubernetes_message(text, message):
    with pytest.raises(QuantityError) as e:
        Quantity.parse(text)
    assert str(e.value) == message
    assert isinstance(e.value, ValueError)


def test_format_error_message_quotes_the_kubernetes_regex():
    assert FORMAT_ERROR == ("quantities must match the regular expression "
                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


STRING = [
    (D(1024**3), BINARY_SI, "1Gi", "1024Mi"), (D(300 * 1024**2), BINARY_SI, "300Mi", "307200Ki"),
    (D(6 * 1024), BINARY_SI, "6Ki", ""), (D(1001 * 1024**3), BINARY_SI, "1001Gi", "1025024Mi"),
    (D(1024**4), BINARY_SI, "1Ti", "1024Gi"), (D(5), BINARY_SI, "5", "5000m"),
    (D(500, -3), BINARY_SI, "500m", "0.5"), (D(1, 9), DECIMAL_SI, "1G", "1000M"),
    (D(1000, 6), DECIMAL_SI, "1G", "0.001T"), (D(1, -3), DECIMAL_SI, "1m", "1000u"),
    (D(80, -3), DECIMAL_SI, "80m", ""), (D(1080, -3), DECIMAL_SI, "1080m", "1.08"),
    (D(108, -2), DECIMAL_SI, "1080m", "1080000000n"), (D(300, 6), DECIMAL_SI, "300M", ""),
    (D(1, 18), DECIMAL_SI, "1E", ""), (D(1234567, 6), DECIMAL_SI, "1234567M", ""),
    (D(1234567, -3), BINARY_SI, "1234567m", ""), (D(3, 3), DECIMAL_SI, "3k", ""),
    (D(1025), BINARY_SI, "1025", ""), (D(0), DECIMAL_SI, "0", ""), (D(0), BINARY_SI, "0", ""),
    (D(1, 9), DECIMAL_EXPONENT, "1e9", ".001e12"), (D(1, -3), DECIMAL_EXPONENT, "1e-3", "0.001e0"),
    (D(1, -9), DECIMAL_EXPONENT, "1e-9", "1000e-12"), (D(80, -3), DECIMAL_EXPONENT, "80e-3", ""),
    (D(300, 6), DECIMAL_EXPONENT, "300e6", ""), (D(0), DECIMAL_EXPONENT, "0", "00"),
    (D(1, -9), DECIMAL_SI, "1n", ""), (D(10800, -10), DECIMAL_SI, "1080n", ""),
    (D(80, -6), DECIMAL_SI, "80u", ""),
    # Beyond the largest suffix: exponent form, not a silently truncated number.
    (D(1, 21), DECIMAL_SI, "1e21", "1000E"), (D(1, 70), BINARY_SI, "10e69", ""),
    (D(2**70), BINARY_SI, "1180591620717411303424", ""),
]


@pytest.mark.parametrize("amount,fmt,expect,alternate", STRING, ids=[
    f"{a} in {f} prints as {e}" for a, f, e, _ in STRING])
def test_canonical_string_matches_kubernetes(amount, fmt, expect, alternate):
    assert format_quantity(amount, fmt) == expect
    assert str(Quantity.parse(expect)) == expect  # parse keeps a canonical string
    if alternate:
        assert canonicalize(alternate) == expect
    if amount:
        assert format_quantity(-amount, fmt) == "-" + expect


def test_a_value_below_nano_prints_in_exponent_form_though_parsing_would_round_it():
    assert format_quantity(D(1, -10), DECIMAL_SI) == "100e-12"
    assert format_quantity(D(1, -12), DECIMAL_SI) == "1e-12"
    assert canonicalize("100e-12") == "1e-9"


EMIT = [("1Ki", "1Ki"), ("1Mi", "1Mi"), ("1Gi", "1Gi"), ("1024Mi", "1Gi"), ("1000M", "1G"),
        (".001Ki", "1024m"), (".000001Ki", "1024u"), (".000000001Ki", "1024n"),
        (".000000000001Ki", "2n"), ("0.5", "500m"), ("100m", "100m"), ("1.5Gi", "1536Mi"),
        ("1500m", "1500m"), ("1e3", "1e3"), ("2000m", "2")]


@pytest.mark.parametrize("text,expect", EMIT, ids=[f"{t} is re-emitted as {e}" for t, e in EMIT])
def test_parsed_quantity_is_re_emitted_canonically(text, expect):
    assert canonicalize(text) == expect
    assert canonicalize("-" + text) == "-" + expect


QUIRKS = [("+1", "+1"), ("010", "010"), ("100.035k", "100.035k"), ("1E3", "1E3"),
          ("1.500", "1.500")]


@pytest.mark.parametrize("text,expect", QUIRKS, ids=[
    f"{t} comes back verbatim as the parser cached it" for t, _ in QUIRKS])
def test_strings_the_parser_deems_canonical_come_back_verbatim(text, expect):
    assert canonicalize(text) == expect


CMP = [("0", "0", 0), ("100m", "50m", 1), ("50m", "100m", -1), ("10000T", "100Gi", 1),
       ("1", "1000m", 0), ("1Ki", "1024", 0)]


@pytest.mark.parametrize("a,b,expect", CMP, ids=[f"{a} vs {b} is {e}" for a, b, e in CMP])
def test_quantities_compare_by_value(a, b, expect):
    assert compare(a, b) == expect
    assert compare(b, a) == -expect
    assert (Quantity.parse(a) == Quantity.parse(b)) == (expect == 0)
    assert (Quantity.parse(a) < Quantity.parse(b)) == (expect < 0)


SCALED = [
    ("100m", 1, 100), ("1", 1, 1000), ("1.5", 2, 1500), ("0.1m", 1, 1), ("1Gi", 1 << 30,
                                                                         (1 << 30) * 1000),
    ("-1.5", -2, -1500), ("12E", 0, 0),  # an int64-backed overflow reads as 0
    ("-0.0000000001", 1, 1),  # slow-path negative fraction: truncate, then +1 (scale_int.go)
    ("9Ei", 2**63 - 1, -1000),  # capped BinarySI times 1000 wraps like Go's int64 multiply
]


@pytest.mark.parametrize("text,expect_value,expect_milli", SCALED, ids=[
    f"{t} has value {v} and milli value {m}" for t, v, m in SCALED])
def test_value_and_milli_value_round_up_like_scaled_value(text, expect_value, expect_milli):
    assert value(text) == expect_value
    assert milli_value(text) == expect_milli


def test_a_huge_exponent_neither_hangs_nor_overflows():
    q = Quantity.parse("1e999999999")
    assert str(q) == "1e999999999"
    assert q.value() == 0
    assert compare("1e999999999", "1Ei") == 1


def test_quantities_hash_by_value_so_equal_ones_deduplicate():
    assert len({Quantity.parse("1"), Quantity.parse("1000m"), Quantity.parse("1e0")}) == 1
