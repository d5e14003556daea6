"""Tests for dialer.phone.normalize: parsing written numbers, the fast path, and describe()."""

from __future__ import annotations

import dataclasses
import importlib
import random

import phonenumbers
import pytest
from phonenumbers import carrier as pn_carrier
from phonenumbers import geocoder as pn_geocoder
from phonenumbers import timezone as pn_timezone

from dialer.phone.normalize import (
    InvalidPhone,
    PhoneInfo,
    describe,
    normalize,
    to_e164,
    to_e164_with_extension,
)

# The package re-exports the normalize() function under the module's name, so fetch the module itself.
normalize_module = importlib.import_module("dialer.phone.normalize")

MOBILE = "+79123456789"


@pytest.mark.parametrize(
    "raw",
    [
        "8 (912) 345-67-89",
        "+7 912 345 6789",
        "+7(912)345-67-89",
        "89123456789",
        "79123456789",
        "9123456789",
        "007 912 345 67 89",
        "00 7 912 345 67 89",
        "+7 (912) 345-67-89 доб. 12",
        "79123456789.0",
        "7.9123456789E+10",
        "7,9123456789E+10",
        "  тел.: 8 912 345 67 89 (Иван)  ",
        "'89123456789",
        "8-912-345-67-89;",
        "8\u00a0912\u00a0345\u00a067\u00a089",
        "８９１２３４５６７８９",
        "tel:+7-912-345-67-89",
        "+89123456789",  # common typo: "+8" instead of "8"
        "8.912.345.67.89",
    ],
)
def test_common_written_forms_give_the_same_e164(raw: str) -> None:
    assert to_e164(raw) == MOBILE


def test_spreadsheet_values_int_and_float() -> None:
    assert to_e164(79123456789) == MOBILE
    assert to_e164(79123456789.0) == MOBILE
    assert to_e164(9123456789) == MOBILE
    with pytest.raises(InvalidPhone, match="not a phone number"):
        to_e164(7912345.5)
    with pytest.raises(InvalidPhone, match="not a phone number"):
        to_e164(True)


def test_excel_scientific_notation_that_lost_digits_is_rejected_not_invented() -> None:
    # 7.91234568E+10 would pad to 79123456800: a real but different person's number.
    with pytest.raises(InvalidPhone, match="Excel") as info:
        to_e164("7.91234568E+10")
    assert info.value.raw == "7.91234568E+10"


def test_russian_international_prefix_8_10_and_00() -> None:
    assert to_e164("8 10 49 30 1234567") == "+49301234567"
    assert to_e164("810 44 20 7946 0958") == "+442079460958"
    assert to_e164("00 44 20 7946 0958") == "+442079460958"


def test_fixed_line_and_kazakhstan_numbers() -> None:
    assert to_e164("8 (495) 123-45-67") == "+74951234567"
    assert to_e164("(3012) 21-00-00") == "+73012210000"
    assert to_e164("+7 7172 123456") == "+77172123456"
    assert to_e164("8 800 555 35 35") == "+78005553535"


def test_extension_is_dropped_by_to_e164_and_kept_by_normalize() -> None:
    raw = "+7 (495) 123-45-67 доб. 12"
    assert to_e164(raw) == "+74951234567"
    assert to_e164_with_extension(raw) == ("+74951234567", "12")
    info = normalize(raw)
    assert info.e164 == "+74951234567"
    assert info.extension == "12"
    for raw_ext, ext in [
        ("+7 495 1234567 добавочный 22", "22"),
        ("+7 495 1234567 вн. 5", "5"),
        ("+7 495 1234567 ext. 7", "7"),
        ("84951234567 x301", "301"),
        ("84951234567 #4", "4"),
    ]:
        assert to_e164_with_extension(raw_ext) == ("+74951234567", ext)
    assert normalize("84951234567").extension is None


def test_other_default_region() -> None:
    assert to_e164("030 1234567", "DE") == "+49301234567"
    assert to_e164("030 1234567", "de") == "+49301234567"
    assert to_e164("+7 912 345 67 89", "DE") == MOBILE
    with pytest.raises(ValueError, match="unknown default region") as info:
        to_e164("89123456789", "XX")
    assert not isinstance(info.value, InvalidPhone)  # a programming error, not bad data


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (None, "empty"),
        ("abc", "not a phone number"),
        ("нет телефона", "not a phone number"),
        ("12345", "too short"),
        ("8912345678901234567", "too long"),
        ("345-67-89", "missing area code"),
        ("+7 000 123 45 67", "invalid for region RU"),
        ("8 (112) 345-67-89", "invalid for region RU"),
        ("8912345678", "invalid for region RU"),
        ("+999 123 456", "invalid country code"),
        ("+44 20 7946 095", "invalid for region GB"),
        ("89123456789, 89161234567", "more than one phone number"),
        ("8 912 345 67 89 / 8 916 123 45 67", "more than one phone number"),
    ],
)
def test_invalid_input_has_a_clear_reason(raw: str | None, reason: str) -> None:
    with pytest.raises(InvalidPhone) as info:
        to_e164(raw)  # type: ignore[arg-type]
    assert info.value.reason == reason
    assert str(info.value) == reason
    assert isinstance(info.value, ValueError)
    assert info.value.raw == raw


def _reference_e164(text: str) -> str | None:
    try:
        number = phonenumbers.parse(text, "RU")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def test_fast_path_agrees_with_phonenumbers_on_random_digit_strings() -> None:
    rng = random.Random(20240607)
    checked_valid = 0
    for _ in range(20000):
        national = rng.choice("1234789") + "".join(rng.choice("0123456789") for _ in range(9))
        text = rng.choice([national, "8" + national, "7" + national, "+7" + national])
        expected = _reference_e164(text)
        if expected is None:
            with pytest.raises(InvalidPhone):
                to_e164(text)
        else:
            checked_valid += 1
            assert to_e164(text) == expected, text
    assert checked_valid > 5000  # the sample really exercised the valid branch


def test_fast_path_does_not_call_phonenumbers_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("phonenumbers.parse called on the fast path")

    monkeypatch.setattr(normalize_module.phonenumbers, "parse", boom)
    assert to_e164("8 (912) 345-67-89") == MOBILE
    assert to_e164("+7 912 345 67 89") == MOBILE
    assert to_e164("9123456789") == MOBILE
    assert describe("+74951234567").e164 == "+74951234567"
    with pytest.raises(AssertionError):
        to_e164("+44 20 7946 0958")  # proves the patch is live for the slow path


def test_describe_moscow_fixed_line() -> None:
    info = describe("+74951234567")
    assert info.e164 == "+74951234567"
    assert info.country == "RU"
    assert info.number_type == "fixed_line"
    assert info.timezones == ("Europe/Moscow",)
    assert info.tz_uncertain is False
    assert info.region is not None and "Моск" in info.region
    assert info.extension is None


def test_describe_mobile_has_no_region_and_uncertain_zone() -> None:
    info = describe("+79261234567")
    assert info.number_type == "mobile"
    assert info.country == "RU"
    assert info.region is None  # the geocoder only knows "Россия" for mobiles; not a region
    assert info.carrier  # MegaFon range in phonenumbers' carrier data
    assert info.tz_uncertain is True
    assert "Europe/Moscow" in info.timezones
    assert "Etc/Unknown" not in info.timezones


def test_describe_other_countries_and_kazakhstan() -> None:
    gb = describe("+442079460958")
    assert (gb.country, gb.number_type, gb.timezones, gb.tz_uncertain) == (
        "GB",
        "fixed_line",
        ("Europe/London",),
        False,
    )
    kz = describe("+77172123456")
    assert kz.country == "KZ"
    assert kz.timezones == ("Asia/Almaty",)
    toll_free = describe("+78005553535")
    assert toll_free.number_type == "toll_free"
    assert toll_free.region is None


def test_describe_rejects_non_e164_and_invalid_numbers() -> None:
    with pytest.raises(InvalidPhone, match=r"E\.164"):
        describe("89123456789")
    with pytest.raises(InvalidPhone, match="invalid for region RU"):
        describe("+70001234567")
    with pytest.raises(InvalidPhone):
        describe("+999123456")


def _uncached(e164: str) -> tuple[object, ...]:
    number = phonenumbers.parse(e164, None)
    region = pn_geocoder.description_for_number(number, "ru") or None
    if region == pn_geocoder.country_name_for_number(number, "ru"):
        region = None
    carrier = pn_carrier.name_for_number(number, "ru") or pn_carrier.name_for_number(number, "en") or None
    zones = tuple(z for z in pn_timezone.time_zones_for_number(number) if z != "Etc/Unknown")
    ntype = phonenumbers.number_type(number)
    type_name = next(k.lower() for k, v in vars(phonenumbers.PhoneNumberType).items() if k.isupper() and v == ntype)
    return region, phonenumbers.region_code_for_number(number), carrier, zones, type_name


def test_prefix_cached_describe_matches_an_uncached_lookup() -> None:
    rng = random.Random(7)
    compared = 0
    while compared < 3000:
        e164 = "+7" + rng.choice("34789") + "".join(rng.choice("0123456789") for _ in range(9))
        try:
            info = describe(e164)
        except InvalidPhone:
            assert not phonenumbers.is_valid_number(phonenumbers.parse(e164, None))
            continue
        expected = _uncached(e164)
        assert (info.region, info.country, info.carrier, info.timezones, info.number_type) == expected, e164
        assert info.tz_uncertain == (len(info.timezones) > 1)
        compared += 1
    # Two numbers of the same range share a cache entry but keep their own e164.
    first, second = describe("+79031234567"), describe("+79031234568")
    assert (first.e164, second.e164) == ("+79031234567", "+79031234568")
    assert first.carrier == second.carrier


def test_normalize_combines_both_steps() -> None:
    info = normalize("8 (495) 123-45-67")
    assert info == describe("+74951234567")
    assert isinstance(info, PhoneInfo)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.e164 = "+70000000000"  # type: ignore[misc]
    with pytest.raises(InvalidPhone, match="too short"):
        normalize("12-34")
