"""Tests for dialer.fieldvalues."""

import json
from decimal import Decimal

import pytest

from dialer.fieldvalues import (
    FieldValueError,
    canonical_text,
    coerce,
    dumps_json,
    loads_json,
    validate_mask,
)
from dialer.models.enums import FieldType


def test_field_type_values_are_the_stored_strings() -> None:
    assert [t.value for t in FieldType] == [
        "string",
        "integer",
        "decimal",
        "date",
        "datetime",
        "boolean",
        "phone",
        "enum",
    ]


@pytest.mark.parametrize("field_type", list(FieldType))
@pytest.mark.parametrize("value", ["", "   ", "\u00a0\t", None])
def test_empty_is_none_for_every_type(field_type: FieldType, value: str | None) -> None:
    assert coerce(value, type=field_type, mask=r"\d+", options=["A"]) is None


def test_string_and_phone_are_trimmed_raw_text() -> None:
    assert coerce("  Иванов  Иван \u00a0", type=FieldType.string) == "Иванов  Иван"
    assert coerce(" +7 (912) 345-67-89 ", type=FieldType.phone) == "+7 (912) 345-67-89"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42),
        ("-42", -42),
        ("+7", 7),
        ("1 234 567", 1234567),
        ("1\u00a0234", 1234),
        ("1,234,567", 1234567),
        ("1.234.567", 1234567),
        ("123.0", 123),
        ("123,00", 123),
        ("-0", 0),
        ("007", 7),
        ("79123456789", 79123456789),
    ],
)
def test_integer(text: str, expected: int) -> None:
    result = coerce(text, type="integer")
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("abc", "expected an integer, got 'abc'"),
        ("12.5", "expected an integer, got '12.5'"),
        # A single comma is a decimal mark ("1,234" is 1.234 in Russian notation).
        ("1,234", "expected an integer, got '1,234'"),
        ("12 34", "expected an integer, got '12 34'"),
        ("+7 912 345-67-89", "expected an integer, got '+7 912 345-67-89'"),
        ("1" * 101, "expected an integer, got a number with more than 100 digits"),
    ],
)
def test_integer_errors(text: str, reason: str) -> None:
    with pytest.raises(FieldValueError) as caught:
        coerce(text, type=FieldType.integer)
    assert str(caught.value) == reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 234,56", "1234.56"),
        ("1234.56", "1234.56"),
        ("1\u00a0234,56", "1234.56"),
        ("1\u202f234,56", "1234.56"),
        ("-12,5", "-12.5"),
        ("−12,5", "-12.5"),  # typographic minus
        ("1,234.56", "1234.56"),
        ("1.234,56", "1234.56"),
        ("1.234.567,89", "1234567.89"),
        ("1'234.5", "1234.5"),
        ("100,50", "100.50"),  # the scale the user typed is kept
        (",5", "0.5"),
        ("0", "0"),
        ("-0,00", "0.00"),
        ("12345678901234567890.123456789", "12345678901234567890.123456789"),
    ],
)
def test_decimal(text: str, expected: str) -> None:
    result = coerce(text, type=FieldType.decimal)
    assert isinstance(result, Decimal)
    assert result == Decimal(expected)
    assert canonical_text(result) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("abc", "expected a number, got 'abc'"),
        ("-", "expected a number, got '-'"),
        ("1,2,3.4.5", "expected a number, got '1,2,3.4.5'"),
        ("12,34,5", "expected a number, got '12,34,5'"),
        ("1 234.567,5", "expected a number, got '1 234.567,5'"),
        ("12%", "expected a number, got '12%'"),
        ("7,91235E+10", "expected a number, got '7,91235E+10': scientific notation is not accepted"),
    ],
)
def test_decimal_errors(text: str, reason: str) -> None:
    with pytest.raises(FieldValueError) as caught:
        coerce(text, type=FieldType.decimal)
    assert str(caught.value).startswith(reason)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("01.02.2024", "2024-02-01"),
        ("1.2.2024", "2024-02-01"),
        ("2024-02-01", "2024-02-01"),
        ("01/02/2024", "2024-02-01"),  # day first
        ("01-02-2024", "2024-02-01"),
        ("2024.02.01", "2024-02-01"),
        ("20240201", "2024-02-01"),
        ("29.02.2024", "2024-02-29"),
        ("45321", "2024-01-30"),  # Excel serial day number
        ("45321.0", "2024-01-30"),
        ("01.02.2024 0:00", "2024-02-01"),  # Excel writes date cells like this
        ("2024-02-01T00:00:00", "2024-02-01"),
    ],
)
def test_date(text: str, expected: str) -> None:
    assert coerce(text, type=FieldType.date) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("31.02.2024", "date '31.02.2024' does not exist"),
        ("29.02.2023", "date '29.02.2023' does not exist"),
        ("2024-13-01", "date '2024-13-01' does not exist"),
        ("abc", "expected a date like 31.12.2024 or 2024-12-31, got 'abc'"),
        ("2024", "expected a date like 31.12.2024 or 2024-12-31, got '2024'"),
        ("01.02.24", "the year in '01.02.24' is ambiguous; write it with four digits"),
        ("01.02.2024 10:20", "expected a date without a time, got '01.02.2024 10:20'"),
        ("01.02-2024", "expected a date like 31.12.2024 or 2024-12-31, got '01.02-2024'"),
    ],
)
def test_date_errors(text: str, reason: str) -> None:
    with pytest.raises(FieldValueError) as caught:
        coerce(text, type=FieldType.date)
    assert str(caught.value) == reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("01.02.2024 10:20", "2024-02-01T10:20:00"),
        ("1.2.2024 9:05", "2024-02-01T09:05:00"),
        ("2024-02-01 10:20:30", "2024-02-01T10:20:30"),
        ("2024-02-01T10:20:30", "2024-02-01T10:20:30"),
        ("2024-02-01T10:20:30.987", "2024-02-01T10:20:30"),
        ("2024-02-01T10:20:30+03:00", "2024-02-01T10:20:30+03:00"),
        ("2024-02-01 10:20:30 +0530", "2024-02-01T10:20:30+05:30"),
        ("2024-02-01T10:20-05", "2024-02-01T10:20:00-05:00"),
        ("2024-02-01T10:20:30Z", "2024-02-01T10:20:30+00:00"),
        ("01.02.2024", "2024-02-01T00:00:00"),
        ("45321.4375", "2024-01-30T10:30:00"),
    ],
)
def test_datetime(text: str, expected: str) -> None:
    assert coerce(text, type=FieldType.datetime) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("01.02.2024 25:00", "date and time '01.02.2024 25:00' does not exist"),
        ("01.02.2024 10:61", "date and time '01.02.2024 10:61' does not exist"),
        ("30.02.2024 10:00", "date '30.02.2024 10:00' does not exist"),
        ("2024-02-01T10:20+25:00", "date and time '2024-02-01T10:20+25:00' does not exist"),
        ("tomorrow", "expected a date and time like 31.12.2024 or 2024-12-31, got 'tomorrow'"),
    ],
)
def test_datetime_errors(text: str, reason: str) -> None:
    with pytest.raises(FieldValueError) as caught:
        coerce(text, type=FieldType.datetime)
    assert str(caught.value) == reason


@pytest.mark.parametrize(
    "text", ["да", "Да", "TRUE", "true", "1", "yes", "Y", "y", "истина", "ИСТИНА", "+", " да "]
)
def test_boolean_true(text: str) -> None:
    assert coerce(text, type=FieldType.boolean) is True


@pytest.mark.parametrize("text", ["нет", "НЕТ", "false", "False", "0", "no", "N", "n", "ложь", "ЛОЖЬ", "-"])
def test_boolean_false(text: str) -> None:
    assert coerce(text, type=FieldType.boolean) is False


def test_boolean_error() -> None:
    with pytest.raises(FieldValueError, match=r"^expected yes or no .*, got 'возможно'$"):
        coerce("возможно", type=FieldType.boolean)


def test_enum_matches_case_and_space_insensitively_and_returns_the_option() -> None:
    options = ["Новый клиент", "VIP", "B"]
    assert coerce("новый   КЛИЕНТ", type=FieldType.enum, options=options) == "Новый клиент"
    assert coerce("vip", type=FieldType.enum, options=options) == "VIP"
    with pytest.raises(FieldValueError) as caught:
        coerce("xyz", type=FieldType.enum, options=["A", "B"])
    assert str(caught.value) == "'xyz' is not one of: A, B"


def test_enum_error_lists_at_most_ten_options() -> None:
    options = [f"o{i}" for i in range(25)]
    with pytest.raises(FieldValueError) as caught:
        coerce("x", type=FieldType.enum, options=options)
    assert str(caught.value) == "'x' is not one of: o0, o1, o2, o3, o4, o5, o6, o7, o8, o9 (and 15 more)"


def test_enum_without_options_is_a_definition_error() -> None:
    with pytest.raises(ValueError, match="needs a list of options") as caught:
        coerce("A", type=FieldType.enum)
    assert not isinstance(caught.value, FieldValueError)


def test_mask_is_matched_against_the_canonical_text() -> None:
    assert coerce(" 123456 ", type=FieldType.string, mask=r"^\d{6}$") == "123456"
    # The decimal canonical form uses a dot, whatever the input used.
    assert coerce("1 234,50", type=FieldType.decimal, mask=r"\d+\.\d{2}") == Decimal("1234.50")
    assert coerce("01.02.2024", type=FieldType.date, mask=r"2024-.*") == "2024-02-01"
    with pytest.raises(FieldValueError) as caught:
        coerce("12345", type=FieldType.string, mask=r"^\d{6}$")
    assert str(caught.value) == r"'12345' does not match mask ^\d{6}$"
    # fullmatch: a prefix match is not enough.
    with pytest.raises(FieldValueError):
        coerce("1234567", type=FieldType.string, mask=r"\d{6}")


def test_validate_mask() -> None:
    validate_mask(r"^[A-Z]{2}\d{4}$")
    with pytest.raises(
        ValueError, match="not a valid regular expression: missing \\), unterminated subpattern"
    ):
        validate_mask("(abc")
    with pytest.raises(ValueError, match="not a valid regular expression: nothing to repeat at position 0"):
        validate_mask("*a")
    with pytest.raises(ValueError, match="empty"):
        validate_mask("")
    with pytest.raises(ValueError, match="longer than 1000"):
        validate_mask("a" * 1001)


def test_invalid_mask_in_coerce_is_a_definition_error() -> None:
    with pytest.raises(ValueError, match="not a valid regular expression") as caught:
        coerce("x", type=FieldType.string, mask="[")
    assert not isinstance(caught.value, FieldValueError)


def test_unknown_type() -> None:
    with pytest.raises(ValueError, match="unknown field type 'money'"):
        coerce("1", type="money")


def test_accepts_the_stored_string_of_a_type() -> None:
    # a field row read without the ORM enum (raw SQL) carries the type as its stored text
    assert coerce("5", type="integer") == 5


def test_non_text_input_from_the_api() -> None:
    assert coerce(5, type=FieldType.integer) == 5
    assert coerce(12.5, type=FieldType.decimal) == Decimal("12.5")
    assert coerce(1e-7, type=FieldType.decimal) == Decimal("0.0000001")
    assert coerce(Decimal("2.50"), type=FieldType.decimal) == Decimal("2.50")
    assert coerce(True, type=FieldType.boolean) is True
    with pytest.raises(FieldValueError, match="expected an integer, got 'true'"):
        coerce(True, type=FieldType.integer)


def test_json_round_trip_keeps_decimals_as_numbers() -> None:
    data = {
        "amount": Decimal("1234.50"),
        "big": Decimal("1E+3"),
        "n": 5,
        "ok": True,
        "d": None,
        "s": 'Ё"',
        "l": [1],
    }
    text = dumps_json(data)
    assert text == '{"amount":1234.50,"big":1000,"n":5,"ok":true,"d":null,"s":"Ё\\"","l":[1]}'
    # Any JSON parser sees numbers; ours reads them back as Decimal without loss.
    assert json.loads(text)["amount"] == 1234.5
    assert loads_json(text) == {**data, "big": Decimal(1000)}
    assert loads_json(text)["amount"].as_tuple().exponent == -2
    with pytest.raises(ValueError, match="cannot be stored in JSON"):
        dumps_json({"x": Decimal("NaN")})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 234,56 ₽", "1234.56"),
        ("1\u00a0234,56\u00a0руб.", "1234.56"),  # 1C: NBSP groups and the currency after the amount
        ("1234,56 руб", "1234.56"),
        ("12 р.", "12"),
        ("5 рублей", "5"),
        ("100 RUB", "100"),
        ("$12.50", "12.50"),
        ("-5 ₽", "-5"),
    ],
)
def test_decimal_with_a_currency(text: str, expected: str) -> None:
    assert canonical_text(coerce(text, type=FieldType.decimal)) == expected


@pytest.mark.parametrize("text", ["₽", "руб.", "1 234,56 тыс. руб.", "12 руб 50 коп"])
def test_currency_alone_or_with_a_multiplier_is_not_a_number(text: str) -> None:
    with pytest.raises(FieldValueError, match="expected a number"):
        coerce(text, type=FieldType.decimal)


@pytest.mark.parametrize(
    ("text", "field_type", "expected"),
    [
        ("1 февраля 2024", FieldType.date, "2024-02-01"),
        ("1 февраля 2024 г.", FieldType.date, "2024-02-01"),  # 1C's long date format
        ("15 Мая 2023 года", FieldType.date, "2023-05-15"),
        ("01 фев. 2024", FieldType.date, "2024-02-01"),
        ("3 March 2024", FieldType.date, "2024-03-03"),
        ("1 февраля 2024 г. 10:30", FieldType.datetime, "2024-02-01T10:30:00"),
    ],
)
def test_dates_with_month_names(text: str, field_type: FieldType, expected: str) -> None:
    assert coerce(text, type=field_type) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("31 февраля 2024", "date '31 февраля 2024' does not exist"),
        ("3 мартобря 2024", "expected a date like 31.12.2024 or 2024-12-31, got '3 мартобря 2024'"),
        ("1 февраля 2024 г. 10:30", "expected a date without a time"),
    ],
)
def test_dates_with_month_names_errors(text: str, reason: str) -> None:
    with pytest.raises(FieldValueError) as caught:
        coerce(text, type=FieldType.date)
    assert str(caught.value).startswith(reason)
