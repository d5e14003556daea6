"""The importer's shortcuts give exactly what the general code gives.

Per-column JSON encoders against ``json_value(coerce(...))``, description keys and lookup blocks
against describing every number, the COPY text format against PostgreSQL reading it back.
"""

from __future__ import annotations

import dataclasses
import importlib
import random
import re
from typing import Any

import pytest

from dialer.contact import copytext
from dialer.contact.phonelookup import PhoneLookup
from dialer.contact.values import FieldSpec, json_encoder, json_value
from dialer.fieldvalues import FieldValueError, coerce
from dialer.models.enums import FieldType
from dialer.phone import InvalidPhone, describe, to_e164
from dialer.timezone.codes import CodeInfo, CodeTable, number_range

normalize_module = importlib.import_module("dialer.phone.normalize")


@pytest.fixture(autouse=True)
def background_tasks_done() -> None:
    """Replaces the package's fixture: these tests need no application (nor a database)."""

CELLS = [
    "0", "7", "007", "000", "42", "-5", "+5", "1 234", "1 234,56", "1,234.56", "12,5", "12.50", "0,10", "00.5",
    ".5", "5.", "1e5", "1.0E+5", "много", "١٢٣", "١٢,٥", "999999999999999999", "1234567890123456789",
    "01.03.2024", "31.02.2024", "2024-03-01", "2024-02-30", "1.3.2024", "01/03/2024", "20240301", "45000",
    "01.03.24", "01.03.2024 10:30", "2024-03-01T10:30:00+03:00", "2024-03-01 25:00", "да", "Нет", "TRUE",
    "0", "1", "+", "y", "VIP", "vip", "Обычный", "  VIP", "a\"b\\c", "табуляция\tвнутри", "перенос\nстроки",
    "x" * 300, "٠١.٠٣.٢٠٢٤",
]


@pytest.mark.parametrize("ftype", list(FieldType))
@pytest.mark.parametrize("mask", [None, r"\d+(\.\d+)?|\d{4}-\d{2}-\d{2}|true|false|VIP"])
def test_json_encoder_is_json_value_of_coerce(ftype: FieldType, mask: str | None) -> None:
    spec = FieldSpec(1, "f", ftype, mask=mask, options=("VIP", "Обычный") if ftype == FieldType.enum else ())
    encode = json_encoder(spec)
    rng = random.Random(7)
    generated = [f"{rng.randrange(10 ** rng.randrange(1, 25))}{rng.choice(['', ',', '.'])}"
                 f"{rng.randrange(10 ** rng.randrange(1, 8)) if rng.random() < 0.7 else ''}" for _ in range(300)]
    generated += [f"{rng.randrange(0, 35):02d}.{rng.randrange(0, 14):02d}.{rng.randrange(1890, 2100)}"
                  for _ in range(300)]
    for text in [c.strip() for c in CELLS + generated if c.strip()]:
        try:
            value = coerce(text, type=ftype.value, mask=mask, options=spec.options or None)
        except FieldValueError as err:
            with pytest.raises(FieldValueError) as raised:
                encode(text)
            assert str(raised.value) == str(err), text
            continue
        expected = None if value is None else json_value(value)
        assert encode(text) == expected, text
        assert encode(text) == expected, text  # and again, from the memo


def test_deciding_digits_reads_patterns() -> None:
    deciding = normalize_module._deciding_digits
    assert deciding(re.compile(r"9\d{9}"), 10, whole=True) == 1
    assert deciding(re.compile(r"(?:3(?:0[12]|36))\d{7}"), 10, whole=True) == 3
    assert deciding(re.compile(r"\d{10}"), 10, whole=True) == 0
    assert deciding(re.compile(r"8\d{13}|[78]\d{9}"), 10, whole=True) == 1  # the 14-digit branch cannot match
    assert deciding(re.compile(r"7(?:0[0-25-8]|47)\d{7}"), 10, whole=True) == 3
    assert deciding(re.compile(r"33|7"), 10, whole=False) == 2
    assert deciding(re.compile(r"[^5]\d{9}"), 10, whole=True) == 1
    assert deciding(re.compile(r"^9\d{9}$"), 10, whole=True) is None  # anchors are not modelled: no sharing
    assert deciding(re.compile(r"(?=9)\d{10}"), 10, whole=True) is None


def _valid_numbers(rng: random.Random, count: int, prefix: str = "") -> list[str]:
    """Up to ``count`` valid +7 numbers starting with ``prefix`` (national digits)."""
    found: list[str] = []
    for _ in range(count * 50):
        national = prefix + "".join(rng.choice("0123456789") for _ in range(10 - len(prefix)))
        try:
            found.append(to_e164("+7" + national))
        except InvalidPhone:
            continue
        if len(found) == count:
            break
    return found


def _without_e164(e164: str) -> Any:
    return dataclasses.replace(describe(e164), e164="")


def test_numbers_with_one_description_key_get_one_description() -> None:
    rng = random.Random(11)
    codes = ["912", "900", "9004", "930", "495", "343", "812", "701", "727", "800", "958", "999", "336"]
    checked = 0
    for code in codes:
        for e164 in _valid_numbers(rng, 40, code):
            key = normalize_module.description_key(e164)
            assert key is not None and e164.startswith(key) and len(key) >= 8
            block = key[2:]
            for other in _valid_numbers(rng, 5, block):
                assert normalize_module.description_key(other) == key
                assert _without_e164(other) == _without_e164(e164), (e164, other)
                checked += 1
    assert checked > 1000
    assert normalize_module.description_key("+442079460958") is None
    assert normalize_module.description_key("+7912345678") is None


def test_lookup_blocks_respect_the_code_table() -> None:
    lo, hi = number_range("+79120000000", "+79123456788")  # ends in the middle of a block
    table = CodeTable([(lo, hi, CodeInfo("Asia/Yekaterinburg", "Свердловская обл.", "МТС", manual=False))])
    exact = PhoneLookup(table, boundary_digits=11)
    assert exact.block_key("+79123456788") == "+79123456788"  # the table needs every digit here
    assert exact.details("+79123456788").timezones == ("Asia/Yekaterinburg",)
    assert exact.details("+79123456789").timezones != ("Asia/Yekaterinburg",)
    assert PhoneLookup(table).block_key("+79123456788") is None  # boundaries unknown: no sharing
    coarse = PhoneLookup(CodeTable([(*number_range("+79120000000", "+79129999999"),
                                     CodeInfo("Asia/Omsk", None, None, manual=False))]), boundary_digits=4)
    assert coarse.block_key("+79123456789") == "+7912345"
    empty = PhoneLookup()
    rng = random.Random(5)
    numbers = _valid_numbers(rng, 300, "9")
    assert numbers
    for e164 in numbers:
        assert empty.details(e164) == PhoneLookup()._details(e164)  # the shared answer = one by one


def test_copy_text_escapes() -> None:
    assert copytext.text("a\\b\tc\nd\re") == "a\\\\b\\tc\\nd\\re"
    assert copytext.text("plain") == "plain"
    assert copytext.optional(None) == "\\N"
    assert copytext.text_array([]) == "{}"
    assert copytext.text_array(['a"b', "c,d", "e\\f"]) == '{"a\\\\"b","c,d","e\\\\\\\\f"}'
