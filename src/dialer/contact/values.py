"""Field definitions as the contact code sees them, and field values in and out of ``contacts.data``.

The storage contract (other packages compile SQL on it): ``contacts.data`` is JSONB keyed by
``str(field.id)``; string, phone and enum values are JSON strings (a phone as its E.164 form),
integers and decimals JSON numbers, dates ``"YYYY-MM-DD"``, datetimes ISO-8601 strings,
booleans ``true``/``false``. An empty value is not stored at all (never JSON ``null``, so a
``::numeric`` cast never meets one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from dialer.fieldvalues import FieldValue, FieldValueError, canonical_text, coerce
from dialer.models import Field, ListField
from dialer.models.enums import FieldType, PhoneType

NUMERIC = frozenset({FieldType.integer, FieldType.decimal})

_encode_str: Callable[[str], str] = json.encoder.encode_basestring


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a list: its definition plus the list's ``required`` flag and position."""

    id: int
    name: str
    type: FieldType
    mask: str | None = None
    options: tuple[str, ...] = ()
    phone_type: PhoneType | None = None
    required: bool = False
    position: int = 0

    @property
    def key(self) -> str:
        return str(self.id)

    @property
    def is_phone(self) -> bool:
        return self.type == FieldType.phone

    @property
    def is_numeric(self) -> bool:
        return self.type in NUMERIC

    @classmethod
    def of(cls, field: Field, link: ListField | None = None) -> FieldSpec:
        return cls(field.id, field.name, FieldType(field.type), field.mask or None, tuple(field.options or ()),
                   PhoneType(field.phone_type) if field.phone_type else None,
                   bool(link.required) if link else False, link.position if link else 0)


def coerce_value(spec: FieldSpec, value: Any) -> FieldValue:
    """The canonical value of ``value`` for a field (phones stay raw text); raises FieldValueError."""
    if isinstance(value, dict | list):
        raise FieldValueError(f"expected a single value, got a {type(value).__name__}")
    return coerce(value, type=spec.type.value, mask=spec.mask, options=spec.options or None)


_INT = re.compile(r"\d{1,18}")
_DEC = re.compile(r"\d{1,30}(?:[.,]\d{1,30})?")
_DMY = re.compile(r"(\d{2})\.(\d{2})\.(\d{4})")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def converter(spec: FieldSpec) -> Callable[[str], FieldValue]:
    """A fast ``str -> value`` for one field: shortcuts for the common plain forms, :func:`coerce` otherwise.

    Each shortcut gives exactly what :func:`coerce` gives for the inputs it accepts (stripped,
    non-empty cell text); anything else — and every field with a mask — goes through ``coerce``.
    """
    ftype, mask, options = spec.type.value, spec.mask, spec.options or None

    def slow(text: str) -> FieldValue:
        return coerce(text, type=ftype, mask=mask, options=options)

    if mask:
        return slow
    if spec.type in (FieldType.string, FieldType.phone):
        return str
    if spec.type == FieldType.integer:
        def to_int(text: str) -> FieldValue:
            return int(text) if _INT.fullmatch(text) else slow(text)
        return to_int
    if spec.type == FieldType.decimal:
        def to_dec(text: str) -> FieldValue:
            return Decimal(text.replace(",", ".")) if _DEC.fullmatch(text) else slow(text)
        return to_dec
    if spec.type == FieldType.date:
        def to_date(text: str) -> FieldValue:
            m = _DMY.fullmatch(text)
            try:
                if m is not None:
                    return date(int(m[3]), int(m[2]), int(m[1])).isoformat()
                if _ISO_DATE.fullmatch(text):
                    return date.fromisoformat(text).isoformat()
            except ValueError:
                pass  # coerce words the error
            return slow(text)
        return to_date
    return slow


def json_value(value: FieldValue) -> str:
    """One canonical value as JSON text (a Decimal as a number, keeping its digits)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _encode_str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    raise TypeError(f"cannot store {value!r}")


def encode_data(data: Mapping[str, FieldValue]) -> str:
    """``contacts.data`` as JSON text; keys are field ids (digits, no escaping needed)."""
    return "{" + ",".join(f'"{k}":{json_value(v)}' for k, v in data.items() if v is not None) + "}"


def text_of(value: Any) -> str:
    """A stored value as the text a filter or an export compares/writes."""
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    return canonical_text(value)
