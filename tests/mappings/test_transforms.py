"""Transforms: each one forward and back, bad values, bad parameters."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.errors import RecordMappingError
from hub.mapping.specerror import SpecError
from hub.mapping.transforms import build_transform, compile_chain, compile_inverse

KNOWN = ("bool, country, date, datetime, decimal, default, domain, int, join, lower, map, "
         "minor_units, phone, split, string, trim, upper")

_MAP = {"map": {"values": {"lead": "Lead", "customer": "Customer"}, "fallback": "Other"}}

# (transform as written, native value, canonical value, native value written back)
CASES: list[tuple[Any, Any, Any, Any]] = [
    ("trim", "  Ann ", "Ann", "Ann"),
    ("trim", 5, 5, 5),
    ("lower", "Ann@X.COM", "ann@x.com", "ann@x.com"),
    ("upper", "usd", "USD", "USD"),
    ({"split": ";"}, "a; b;;c ", ["a", "b", "c"], "a;b;c"),
    ({"split": {"sep": "|", "trim": False}}, " a| b", [" a", " b"], " a| b"),
    ({"join": ", "}, ["a", "b"], "a, b", ["a", "b"]),
    ({"default": "Unknown"}, None, "Unknown", "Unknown"),
    ({"default": {"value": 0}}, 3, 3, 3),
    (_MAP, "lead", "Lead", "lead"),
    (_MAP, "zombie", "Other", "Other"),
    ({"map": {"values": {"A": 1}, "out_fallback": "A"}}, "A", 1, "A"),
    ({"map": {"true": "yes"}}, True, "yes", "true"),
    ("date", "2024-05-01", "2024-05-01", "2024-05-01"),
    ("date", "2024-05-01T23:30:00-05:00", "2024-05-01", "2024-05-01"),
    ("date", date(2024, 5, 1), "2024-05-01", "2024-05-01"),
    ({"date": "%d/%m/%Y"}, "01/05/2024", "2024-05-01", "01/05/2024"),
    ({"date": "xero"}, "/Date(1541116800000+0000)/", "2018-11-02", "/Date(1541116800000+0000)/"),
    ({"date": "ms"}, 1714521600000, "2024-05-01", 1714521600000),
    ("datetime", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z"),
    ("datetime", "2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z"),
    ("datetime", "2024-05-01T10:00:00.000Z", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z"),
    ("datetime", "2024-05-01 10:00:00.5", "2024-05-01T10:00:00.500Z", "2024-05-01T10:00:00.500Z"),
    ("datetime", "2024-05-01T10:00:00.123456Z", "2024-05-01T10:00:00.123456Z",
     "2024-05-01T10:00:00.123456Z"),
    ("datetime", datetime(2024, 5, 1, 10), "2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z"),
    ({"datetime": "ms"}, "1541176290160", "2018-11-02T16:31:30.160Z", 1541176290160),
    ({"datetime": "unix"}, 1541176290, "2018-11-02T16:31:30Z", 1541176290),
    ({"datetime": "unix"}, 1541176290.5, "2018-11-02T16:31:30.500Z", 1541176290.5),
    ({"datetime": "xero"}, "/Date(1541176290160+0000)/", "2018-11-02T16:31:30.160Z",
     "/Date(1541176290160+0000)/"),
    ({"datetime": "%d.%m.%Y %H:%M"}, "02.11.2018 16:31", "2018-11-02T16:31:00Z",
     "02.11.2018 16:31"),
    ("decimal", "1234.50", "1234.5", "1234.5"),
    ("decimal", 1e3, "1000", "1000"),
    ("decimal", 0.1, "0.1", "0.1"),
    ("decimal", "-0.00", "0", "0"),
    ("decimal", "1E-7", "0.0000001", "0.0000001"),
    ("decimal", Decimal("12.300"), "12.3", "12.3"),
    ("decimal", "  ", None, None),
    ({"decimal": {"places": 2}}, 1234.5, "1234.50", "1234.50"),
    ({"decimal": {"native": "number"}}, 61.75, "61.75", 61.75),
    ({"decimal": {"native": "number"}}, "2", "2", 2),
    ({"minor_units": "USD"}, 1050, "10.5", 1050),
    ({"minor_units": "JPY"}, 1050, "1050", 1050),
    ({"minor_units": "KWD"}, 1050, "1.05", 1050),
    ("minor_units", "99", "0.99", 99),
    ({"phone": "US"}, "(415) 555-0100", "+14155550100", "+14155550100"),
    ("phone", "+44 20 7946 0958", "+442079460958", "+442079460958"),
    # A trunk prefix written after the country code is not part of the number.
    ("phone", "+44 (0)20 7946 0958", "+442079460958", "+442079460958"),
    ({"phone": "US"}, "+49 030 1234567", "+49301234567", "+49301234567"),
    ("phone", "+39 06 1234 5678", "+390612345678", "+390612345678"),  # Italy keeps its 0
    # What a country's national-prefix rule makes of its numbers (a carrier code dropped,
    # an area code added), though the number as written has a possible length too.
    ("phone", "+86 129771785037", "+861785037", "+861785037"),
    ("phone", "+261 8448794", "+261208448794", "+261208448794"),
    ("country", "Germany", "DE", "DE"),
    ("country", "deu", "DE", "DE"),
    ("country", "UK", "GB", "GB"),
    ({"country": {"to": "name"}}, "FR", "FR", "France"),
    ({"country": "alpha_3"}, "United States", "US", "USA"),
    ("bool", "Yes", True, "true"),
    ("bool", "0", False, "false"),
    ("bool", 1, True, "true"),
    ({"bool": {"native": "bool"}}, "True", True, True),
    ("bool", "", None, None),
    ("string", 42, "42", "42"),
    ("string", 2134.0, "2134", "2134"),
    ("string", False, "false", "false"),
    ("int", "42", 42, 42),
    ("int", 7.0, 7, 7),
    ("domain", "https://www.Example.com/about", "example.com", "example.com"),
    ("domain", "ann@Sub.Example.org", "sub.example.org", "sub.example.org"),
    ("domain", "example.co.uk.", "example.co.uk", "example.co.uk"),
]


@pytest.mark.parametrize(("raw", "native", "canonical", "back"), CASES)
def test_forward_and_back(raw: Any, native: Any, canonical: Any, back: Any) -> None:
    t = build_transform(raw)
    forward = compile_chain([t])
    inverse, blocker = compile_inverse([t])
    assert blocker is None
    assert forward is not None
    got = forward(native)
    assert got == canonical and type(got) is type(canonical)
    written = inverse(got) if inverse is not None else got
    assert written == back and type(written) is type(back)


@pytest.mark.parametrize("raw", [
    "trim", "split", "decimal", "bool", "datetime", "date", "phone", "country", "domain", "int",
    _MAP, "minor_units",
])
def test_null_stays_null(raw: Any) -> None:
    t = build_transform(raw)
    assert t.forward(None) is None
    if t.inverse is not None:
        assert t.inverse(None) is None


@pytest.mark.parametrize(("raw", "value", "message"), [
    ("decimal", "12,50", "decimal: expected a number like 1234.50, got '12,50'"),
    ("decimal", "NaN", "decimal: expected a finite number, got 'NaN'"),
    ("decimal", True, "decimal: expected a number like 1234.50, got True"),
    ("int", "4.5", "int: expected a whole number, got '4.5'"),
    ("minor_units", "10.5", ("minor_units: expected a whole number of minor units (cents), "
                            "got '10.5'")),
    ("bool", "maybe", "bool: expected true/false, yes/no or 1/0, got 'maybe'"),
    ("date", "2024-13-01", "date: expected a date like 2024-05-01, got '2024-13-01'"),
    ("datetime", "yesterday", ("datetime: expected an ISO 8601 date-time like "
                              "2024-05-01T10:00:00Z, got 'yesterday'")),
    ("datetime", "2024-02-30T10:00:00Z", ("datetime: expected a real date-time like "
                                         "2024-05-01T10:00:00Z, got '2024-02-30T10:00:00Z'")),
    ({"datetime": "xero"}, "/Date(x)/", ("datetime: expected a Xero date like "
                                        "/Date(1541176290160+0000)/, got '/Date(x)/'")),
    ({"date": "%d/%m/%Y"}, "2024-05-01", ("date: expected text in the format '%d/%m/%Y', "
                                         "got '2024-05-01'")),
    ({"phone": "US"}, "12", ("phone: expected a phone number (international, or national for "
                            "US), got '12'")),
    ("phone", "+999 1234567", ("phone: expected a phone number in international form "
                               "(+44 20 7946 0958), got '+999 1234567'")),  # no such country
    ("phone", "not a phone", ("phone: expected a phone number in international form "
                             "(+44 20 7946 0958), got 'not a phone'")),
    ("country", "Atlantis", ("country: expected a country name or ISO 3166 code like DE or DEU, "
                            "got 'Atlantis'")),
    ({"map": {"a": "A"}}, "b", "map: expected one of 'a', got 'b'"),
    ({"split": ";"}, 5, "split: expected text separated by ';', got 5"),
    ("string", {"a": 1}, ("string: expected a single value (text, number or true/false), "
                         "got {'a': 1}")),
    ("domain", "https://", ("domain: expected a web address, email address or domain, "
                           "got 'https://'")),
])
def test_bad_values(raw: Any, value: Any, message: str) -> None:
    with pytest.raises(RecordMappingError) as info:
        build_transform(raw).forward(value)
    assert str(info.value) == message


def test_minor_units_inverse_refuses_fractions_of_a_cent() -> None:
    with pytest.raises(RecordMappingError) as info:
        build_transform({"minor_units": "USD"}).inverse("1.005")  # type: ignore[misc]
    assert str(info.value) == "minor_units: expected at most 2 decimal places, got '1.005'"


@pytest.mark.parametrize(("raw", "message"), [
    ("titlecase", f"unknown transform 'titlecase'; known transforms: {KNOWN}"),
    ({"trim": "x"}, "transform trim takes no value; write it as plain `trim`"),
    ({"trim": {"x": 1}}, "transform trim: unknown parameter(s) x (accepted: none)"),
    ({"split": 5}, "transform split: sep must be text, got 5"),
    ({"split": ""}, "transform split: sep must not be empty"),
    ({"split": {"sep": ";", "trim": "no"}}, ("transform split: trim must be true or false, "
                                            "got 'no'")),
    ("default", "transform default: needs a value, like {default: Unknown}"),
    ("map", "transform map: values must be a non-empty table of native: canonical"),
    ({"map": {"a": [1]}}, "transform map: value for 'a' must be a single value, not list"),
    ({"date": "dd/mm/yyyy"}, ("transform date: format must be iso, ms, unix, xero or a strftime "
                             "pattern like %d/%m/%Y, got 'dd/mm/yyyy'")),
    ({"decimal": {"native": "float"}}, ("transform decimal: native must be string or number, "
                                       "got 'float'")),
    ({"decimal": {"places": -1}}, "transform decimal: places must be between 0 and 18"),
    ({"minor_units": "dollars"}, ("transform minor_units: currency must be an ISO 4217 code like "
                                 "USD, got 'dollars'")),
    ({"phone": "XX"}, ("transform phone: unknown region 'XX' (use a two-letter country code "
                      "like US or GB)")),
    ({"country": "iso"}, "transform country: to must be name, alpha_3 or alpha_2, got 'iso'"),
    ({"bool": "yes"}, "transform bool: native must be string or bool, got 'yes'"),
    (["trim"], ("a transform is a name (like trim) or a one-key object (like {split: \";\"}); "
               f"known transforms: {KNOWN}")),
])
def test_bad_params(raw: Any, message: str) -> None:
    with pytest.raises(SpecError) as info:
        build_transform(raw)
    assert str(info.value) == message


def test_chain_fuses_text_normalisers_and_inverts_in_reverse() -> None:
    ts = [build_transform(r) for r in ("trim", "lower", {"split": ","},
                                       {"map": {"a": "A", "b": "B"}})]
    forward = compile_chain(ts[:3])
    assert forward is not None and forward("  A,b ") == ["a", "b"]
    inverse, blocker = compile_inverse(ts[:3])
    assert blocker is None and inverse is not None and inverse(["a", "b"]) == "a,b"


@given(st.decimals(allow_nan=False, allow_infinity=False, places=4))
def test_decimal_round_trip_keeps_the_value(value: Decimal) -> None:
    t = build_transform({"decimal": {"native": "number"}})
    canonical = t.forward(str(value))
    assert "E" not in canonical and Decimal(canonical) == value
    assert t.forward(canonical) == canonical  # canonical form is a fixed point


def _phonenumbers(text: str, region: str | None) -> str | None:
    """phonenumbers' own E.164 for `text` (None: it refuses it), as the transform's slow path
    asks it."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
_INTERNATIONAL = st.builds(
    lambda code, trunk, digits, seps: "+" + "".join(
        c + s for c, s in zip(f"{code}{trunk}{digits}", seps + [""] * 40, strict=False)),
    st.one_of(st.sampled_from(_CODES), st.integers(1, 999)),
    st.sampled_from(["", "0", "(0)", "8", "1", "06", "00"]),
    st.text("0123456789", min_size=1, max_size=14),
    st.lists(st.sampled_from(["", "", "", " ", "-", ".", "(", ")", "/", "\u00a0"]), max_size=20))


@settings(max_examples=400)
@given(_INTERNATIONAL, st.sampled_from([None, "US", "GB", "DE"]))
def test_phone_written_internationally_gets_phonenumbers_answer(text: str,
                                                                region: str | None) -> None:
    # The transform answers numbers written with "+" without phonenumbers' parser when it
    # can: the answer, or the refusal, must be phonenumbers' own.
    t = build_transform({"phone": region} if region else "phone")
    expected = _phonenumbers(text, region)
    if expected is None:
        with pytest.raises(RecordMappingError):
            t.forward(text)
    else:
        assert t.forward(text) == expected


@given(st.integers(-10**12, 10**12), st.sampled_from(["USD", "JPY", "KWD"]))
def test_minor_units_round_trip(cents: int, currency: str) -> None:
    t = build_transform({"minor_units": currency})
    assert t.inverse is not None and t.inverse(t.forward(cents)) == cents


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)))
def test_datetime_formats_round_trip(value: datetime) -> None:
    value = value.replace(microsecond=value.microsecond // 1000 * 1000)
    canonical = build_transform("datetime").forward(value.isoformat())
    for fmt in ("iso", "ms", "xero", "unix"):
        t = build_transform({"datetime": fmt})
        assert t.inverse is not None
        assert t.forward(t.inverse(canonical)) == canonical
