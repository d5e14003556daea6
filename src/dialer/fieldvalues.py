"""Turn the text of a table cell into the typed, JSON-storable value of a contact field.

Contacts keep their custom fields in a JSONB column, and lists are filtered and sorted with
expressions like ``(data->'amount')::numeric`` -- so numbers must be stored as JSON numbers and
dates as ISO strings (which sort correctly as text). :func:`coerce` produces exactly that:

=========  ==========================================================================
type       canonical value
=========  ==========================================================================
string     ``str``, stripped
phone      ``str``, stripped raw text (normalised separately by the phone module)
integer    ``int``
decimal    ``decimal.Decimal`` -- see below
date       ``str`` ``"YYYY-MM-DD"``
datetime   ``str`` ``"YYYY-MM-DDTHH:MM:SS"`` plus ``"+HH:MM"`` when the input had an offset
boolean    ``bool``
enum       ``str``, the option exactly as defined
=========  ==========================================================================

Empty (or whitespace-only) input is ``None`` for every type.

Why ``Decimal`` for decimals: a float would turn "0.1" into 0.1000000000000000055... in
arithmetic and silently round amounts with more than 15 significant digits, while a string
would make ``::numeric`` casts and JSON numeric comparisons impossible. A ``Decimal`` keeps the
digits the user typed (including the scale, "100.50" stays 100.50) and must be written to JSON
as a *number*: stdlib ``json`` cannot do that, so use :func:`dumps_json` (for example as
SQLAlchemy's ``json_serializer``) and :func:`loads_json` to read numbers back as ``Decimal``.
"""

import json
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from functools import lru_cache
from typing import Any

from dialer.models.enums import FieldType

__all__ = [
    "FieldValue",
    "FieldValueError",
    "canonical_text",
    "coerce",
    "dumps_json",
    "format_amount",
    "format_date",
    "format_datetime",
    "loads_json",
    "validate_mask",
]


FieldValue = str | int | Decimal | bool | None


class FieldValueError(ValueError):
    """A value does not fit its field; ``str(error)`` is a reason to show to the user."""


MAX_MASK_LENGTH = 1000
# Longer numbers are certainly a mistake (and int() refuses > 4300 digits anyway).
_MAX_DIGITS = 100
# Excel serial day numbers accepted as dates: 10000 = 1927-05-18, 99999 = 2173-10-14. Shorter
# numbers are more likely years or codes than dates, and they also hit Excel's 1900 leap bug.
_SERIAL_MIN, _SERIAL_MAX = 10_000, 99_999
_EXCEL_EPOCH = date(1899, 12, 30)

_TRUE = frozenset({"да", "true", "1", "yes", "y", "истина", "+"})
_FALSE = frozenset({"нет", "false", "0", "no", "n", "ложь", "-"})

# Spaces of all kinds and apostrophes ("1'234") only ever group digits.
_GROUPING = " \u00a0\u202f\u2009\u2007'’"
_NUMBER = re.compile(r"(?P<sign>[-+−])?\s*(?P<body>[\d\s.,'’]*\d[\d\s.,'’]*)")
# A currency sign or abbreviation before or after an amount, as CRMs and 1C export money as text.
_CURRENCY = re.compile(
    r"\A(?:[₽$€£]|руб\.?|rub|usd|eur)\s*|\s*(?:[₽$€£]|руб(?:лей|ля|ль)?\.?|р\.?|rub|usd|eur)\Z", re.IGNORECASE
)
_SCIENTIFIC = re.compile(r"[-+−]?[\d\s.,]*\d[eE][-+]?\d+")
_GROUPED = re.compile(r"\d{1,3}(?:(?P<sep>[^\d])\d{3})?(?:(?P=sep)\d{3})*")

_DATE_PART = (
    r"(?:(?P<d>\d{1,2})(?P<s1>[./-])(?P<m>\d{1,2})(?P=s1)(?P<y>\d{4})"
    r"|(?P<Y>\d{4})(?P<s2>[./-])(?P<M>\d{1,2})(?P=s2)(?P<D>\d{1,2})"
    r"|(?P<cY>\d{4})(?P<cM>\d{2})(?P<cD>\d{2}))"
)
_TIME_PART = (
    r"(?:(?:\s+|T)(?P<H>\d{1,2}):(?P<Mi>\d{2})(?::(?P<S>\d{2})(?:[.,]\d{1,9})?)?"
    r"\s*(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?)?"
)
_DATETIME = re.compile(_DATE_PART + _TIME_PART, re.IGNORECASE)
_TWO_DIGIT_YEAR = re.compile(r"\d{1,2}([./-])\d{1,2}\1\d{2}(?:\s.*)?")
_WORDED_DATE = re.compile(
    r"(?P<day>\d{1,2})\s+(?P<month>[^\W\d_]+\.?)\s+(?P<year>\d{4})(?:\s*(?:г\.?|года))?\s*,?(?P<rest>(?:\s+.*)?)",
    re.IGNORECASE,
)
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("январь", "января", "янв", "january", "jan"),
            ("февраль", "февраля", "фев", "february", "feb"),
            ("март", "марта", "мар", "march", "mar"),
            ("апрель", "апреля", "апр", "april", "apr"),
            ("май", "мая", "may"),
            ("июнь", "июня", "июн", "june", "jun"),
            ("июль", "июля", "июл", "july", "jul"),
            ("август", "августа", "авг", "august", "aug"),
            ("сентябрь", "сентября", "сен", "сент", "september", "sep", "sept"),
            ("октябрь", "октября", "окт", "october", "oct"),
            ("ноябрь", "ноября", "ноя", "нояб", "november", "nov"),
            ("декабрь", "декабря", "дек", "december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_SERIAL = re.compile(r"(?P<days>\d{5})(?:[.,](?P<fraction>\d+))?")

_DATE_EXAMPLE = "like 31.12.2024 or 2024-12-31"


def coerce(
    value: str | int | float | Decimal | bool | None,
    *,
    type: FieldType | str,
    mask: str | None = None,
    options: Sequence[str] | None = None,
) -> FieldValue:
    """Convert cell text to the canonical value of a field of the given type.

    ``value`` is normally the text of a cell; numbers, ``bool`` and ``None`` (values that
    arrive through the JSON API) are accepted too and checked the same way. ``mask`` is a
    regular expression the canonical text of the value (see :func:`canonical_text`) must fully
    match; ``options`` are the allowed values of an ``enum`` field.

    Returns ``None`` for empty input (masks do not apply to it). Raises
    :class:`FieldValueError` with a reason for the user when the value does not fit, and a
    plain ``ValueError`` for a broken field definition (unknown type, invalid mask, enum
    without options).
    """
    try:
        field_type = FieldType(type)
    except ValueError:
        raise ValueError(f"unknown field type {type!r}") from None
    text = _as_text(value)
    if not text:
        return None
    result = _CONVERTERS[field_type](text, options)
    if mask:
        pattern = _compile_mask(mask)
        canonical = canonical_text(result)
        if pattern.fullmatch(canonical) is None:
            raise FieldValueError(f"{_quote(canonical)} does not match mask {mask}")
    return result


def validate_mask(mask: str) -> None:
    """Check that ``mask`` is a usable regular expression; raise ``ValueError`` saying why not."""
    if not mask:
        raise ValueError("the mask is empty; leave it out to accept any value")
    if len(mask) > MAX_MASK_LENGTH:
        raise ValueError(f"the mask is longer than {MAX_MASK_LENGTH} characters")
    try:
        re.compile(mask)
    except re.error as e:
        where = f" at position {e.pos}" if e.pos is not None else ""
        raise ValueError(f"the mask is not a valid regular expression: {e.msg}{where}") from None


def canonical_text(value: FieldValue) -> str:
    """The text form of a canonical value: what masks are matched against ("" for ``None``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def dumps_json(obj: Any) -> str:
    """Serialise like ``json.dumps(obj, ensure_ascii=False)`` but write ``Decimal`` as a JSON number.

    Meant as SQLAlchemy's ``json_serializer`` so decimal field values reach JSONB as numbers.
    """
    return "".join(_encode(obj))


def loads_json(text: str | bytes) -> Any:
    """Parse JSON reading non-integer numbers as ``Decimal`` (the inverse of :func:`dumps_json`)."""
    return json.loads(text, parse_float=Decimal)


# --- converters ------------------------------------------------------------------------------------


def _to_string(text: str, _options: Sequence[str] | None) -> str:
    return text


def _to_integer(text: str, _options: Sequence[str] | None) -> int:
    number = _parse_number(text, what="an integer")
    if number != number.to_integral_value():
        raise FieldValueError(f"expected an integer, got {_quote(text)}")
    return int(number)


def _to_decimal(text: str, _options: Sequence[str] | None) -> Decimal:
    return _parse_number(text, what="a number")


def _to_date(text: str, _options: Sequence[str] | None) -> str:
    moment, has_time, _ = _parse_moment(text, what="a date")
    if has_time and moment.time() != datetime.min.time():
        raise FieldValueError(f"expected a date without a time, got {_quote(text)}")
    return moment.date().isoformat()


def _to_datetime(text: str, _options: Sequence[str] | None) -> str:
    moment, _, _ = _parse_moment(text, what="a date and time")
    return moment.isoformat(timespec="seconds")


def _to_boolean(text: str, _options: Sequence[str] | None) -> bool:
    key = text.casefold()
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise FieldValueError(f"expected yes or no (да/нет, true/false, 1/0), got {_quote(text)}")


def _to_enum(text: str, options: Sequence[str] | None) -> str:
    if not options:
        raise ValueError("an enum field needs a list of options")
    index = _enum_index(tuple(options))
    found = index.get(_enum_key(text))
    if found is None:
        shown = ", ".join(options[:10])
        more = f" (and {len(options) - 10} more)" if len(options) > 10 else ""
        raise FieldValueError(f"{_quote(text)} is not one of: {shown}{more}")
    return found


_CONVERTERS: dict[FieldType, Callable[[str, Sequence[str] | None], FieldValue]] = {
    FieldType.string: _to_string,
    FieldType.phone: _to_string,
    FieldType.integer: _to_integer,
    FieldType.decimal: _to_decimal,
    FieldType.date: _to_date,
    FieldType.datetime: _to_datetime,
    FieldType.boolean: _to_boolean,
    FieldType.enum: _to_enum,
}


# --- parsing helpers -------------------------------------------------------------------------------


def _as_text(value: str | int | float | Decimal | bool | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # repr() is the shortest exact form; 'f' avoids "1e-07", which the parser refuses.
        return format(Decimal(repr(value)), "f")
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"cannot convert a {type(value).__name__} to a field value")


def _parse_number(text: str, *, what: str) -> Decimal:
    """Parse "1 234,56", "1,234.56", "-12,5", ".5" ...; the last of ',' and '.' is the decimal mark.

    A separator that occurs several times (and no other) groups thousands: "1,234,567".
    """
    match = _NUMBER.fullmatch(text)
    if match is None and (bare := _CURRENCY.sub("", text)) != text:
        match = _NUMBER.fullmatch(bare)  # "1 234,56 ₽", "1234,56 руб.", "$12.50"
    if match is None:
        if _SCIENTIFIC.fullmatch(text):
            raise FieldValueError(
                f"expected {what}, got {_quote(text)}: scientific notation is not accepted "
                "(Excel may have shortened the number; format the column as a number or text)"
            )
        raise FieldValueError(f"expected {what}, got {_quote(text)}")
    negative = match.group("sign") in ("-", "−")
    body = match.group("body")
    last_dot, last_comma = body.rfind("."), body.rfind(",")
    mark = "." if last_dot > last_comma else ","
    if last_dot == -1 and last_comma == -1:
        integer_part, fraction = body, ""
    elif (last_dot == -1 or last_comma == -1) and body.count(mark) > 1:
        integer_part, fraction = body, ""  # "1,234,567": the only separator, repeated
    else:
        integer_part, _, fraction = body.rpartition(mark)
    if not fraction.isdigit() and fraction:
        raise FieldValueError(f"expected {what}, got {_quote(text)}")
    integer_part = _ungroup(integer_part, text, what)
    digits = integer_part.lstrip("0") + fraction
    if len(digits) > _MAX_DIGITS:
        raise FieldValueError(f"expected {what}, got a number with more than {_MAX_DIGITS} digits")
    number = Decimal(f"{integer_part or '0'}.{fraction}" if fraction else integer_part or "0")
    if negative and number:
        number = -number
    return number


def _ungroup(integer_part: str, text: str, what: str) -> str:
    """Remove thousands separators, insisting on groups of three digits ("12 34" is no number)."""
    if integer_part.isdigit() or not integer_part:
        return integer_part
    normalized = integer_part
    for ch in _GROUPING:
        normalized = normalized.replace(ch, " ")
    if _GROUPED.fullmatch(normalized) is None:
        raise FieldValueError(f"expected {what}, got {_quote(text)}")
    return re.sub(r"\D", "", normalized)


def _parse_moment(text: str, *, what: str) -> tuple[datetime, bool, bool]:
    """Parse a date or date-time (day first) into (datetime, has_time, has_offset)."""
    serial = _SERIAL.fullmatch(text)
    if serial is not None:
        return _from_serial(serial.group("days"), serial.group("fraction"), text, what)
    match = _DATETIME.fullmatch(text)
    if match is None and (worded := _worded_date(text)) is not None:
        match = _DATETIME.fullmatch(worded)
    if match is None:
        if _TWO_DIGIT_YEAR.fullmatch(text):
            raise FieldValueError(f"the year in {_quote(text)} is ambiguous; write it with four digits")
        raise FieldValueError(f"expected {what} {_DATE_EXAMPLE}, got {_quote(text)}")
    g = match.groupdict()
    if g["y"] is not None:
        year, month, day = int(g["y"]), int(g["m"]), int(g["d"])
    elif g["Y"] is not None:
        year, month, day = int(g["Y"]), int(g["M"]), int(g["D"])
    else:
        year, month, day = int(g["cY"]), int(g["cM"]), int(g["cD"])
    has_time = g["H"] is not None
    try:
        moment = datetime(year, month, day)
    except ValueError:
        raise FieldValueError(f"date {_quote(text)} does not exist") from None
    if has_time:
        try:
            moment = moment.replace(hour=int(g["H"]), minute=int(g["Mi"]), second=int(g["S"] or 0))
            if g["tz"] is not None:
                moment = moment.replace(tzinfo=_parse_offset(g["tz"]))
        except ValueError:
            raise FieldValueError(f"date and time {_quote(text)} does not exist") from None
    return moment, has_time, g["tz"] is not None


def _worded_date(text: str) -> str | None:
    """"1 февраля 2024 г.", "01 фев. 2024 10:30" (1C's long date format) as "01.02.2024 10:30"."""
    match = _WORDED_DATE.fullmatch(text)
    if match is None:
        return None
    month = _MONTHS.get(match.group("month").casefold().replace("ё", "е").rstrip("."))
    if month is None:
        return None
    return f"{match.group('day')}.{month:02d}.{match.group('year')}{match.group('rest')}"


def _parse_offset(text: str) -> timezone:
    if text.upper() == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError("offset out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _from_serial(days: str, fraction: str | None, text: str, what: str) -> tuple[datetime, bool, bool]:
    """Excel stores dates as days since 1899-12-30 and times as fractions of a day."""
    whole = int(days)
    if not _SERIAL_MIN <= whole <= _SERIAL_MAX:
        raise FieldValueError(f"expected {what} {_DATE_EXAMPLE}, got {_quote(text)}")
    seconds = round(float(f"0.{fraction}") * 86400) if fraction else 0
    moment = datetime.combine(_EXCEL_EPOCH, datetime.min.time()) + timedelta(days=whole, seconds=seconds)
    return moment, bool(seconds), False


def _enum_key(text: str) -> str:
    return " ".join(text.split()).casefold()


@lru_cache(maxsize=256)
def _enum_index(options: tuple[str, ...]) -> dict[str, str]:
    index: dict[str, str] = {}
    for option in options:
        index.setdefault(_enum_key(option), option)
    return index


@lru_cache(maxsize=256)
def _compile_mask(mask: str) -> re.Pattern[str]:
    validate_mask(mask)
    return re.compile(mask)


def _quote(text: str, limit: int = 80) -> str:
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"'{text}'"


def _encode(obj: Any) -> Iterator[str]:
    """Yield JSON fragments; only containers are walked, leaves go through the json module."""
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise ValueError(f"{obj} cannot be stored in JSON")
        yield format(obj, "f")
    elif isinstance(obj, dict):
        yield "{"
        for i, (key, item) in enumerate(obj.items()):
            if i:
                yield ","
            yield json.dumps(key if isinstance(key, str) else str(key), ensure_ascii=False)
            yield ":"
            yield from _encode(item)
        yield "}"
    elif isinstance(obj, list | tuple):
        yield "["
        for i, item in enumerate(obj):
            if i:
                yield ","
            yield from _encode(item)
        yield "]"
    else:
        yield json.dumps(obj, ensure_ascii=False)


# --- values as people write them ----------------------------------------------------------------------------------

#: Thousands separator of Russian texts: a no-break space, so "12 345,67" never wraps between its groups.
GROUP_SEPARATOR = "\u00a0"


def format_amount(value: Decimal | int | float | str, *, places: int | None = 2, lang: str = "ru") -> str:
    """An amount as people write it: ``12345.67`` -> "12 345,67" in Russian (no-break space between thousands,
    a comma before the kopecks), "12,345.67" in English. ``places``: digits after the point (None: as given).
    The CSV exports write the same decimal comma without grouping ("12345,67"), which Excel in a Russian locale
    reads as a number."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if places is not None:
        number = number.quantize(Decimal(1).scaleb(-places))
    text = f"{number:,f}"
    if lang == "ru":
        text = text.replace(",", GROUP_SEPARATOR).replace(".", ",")
    return text.replace("-", "−") if lang == "ru" and text.startswith("-") else text


def format_date(value: date | datetime | str, *, lang: str = "ru") -> str:
    """A date as people write it: "25.12.2026" in Russian (the exports' CSV date fields too), ISO otherwise."""
    day = date.fromisoformat(value[:10]) if isinstance(value, str) else value
    if isinstance(day, datetime):
        day = day.date()
    return day.strftime("%d.%m.%Y") if lang == "ru" else day.isoformat()


def format_datetime(value: datetime | str, *, tz: tzinfo | None = None, lang: str = "ru") -> str:
    """A moment as people write it: "25.12.2026 14:30" in Russian ("2026-12-25 14:30" otherwise), in ``tz`` when
    given (else as it is)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if tz is not None and moment.tzinfo is not None:
        moment = moment.astimezone(tz)
    return moment.strftime("%d.%m.%Y %H:%M" if lang == "ru" else "%Y-%m-%d %H:%M")
