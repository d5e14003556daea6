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
    #: Shown on the operator's client card.
    in_card: bool = True

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
                   bool(link.required) if link else False, link.position if link else 0,
                   bool(link.in_card) if link else True)


def coerce_value(spec: FieldSpec, value: Any) -> FieldValue:
    """The canonical value of ``value`` for a field (phones stay raw text); raises FieldValueError."""
    if isinstance(value, dict | list):
        raise FieldValueError(f"expected a single value, got a {type(value).__name__}")
    return coerce(value, type=spec.type.value, mask=spec.mask, options=spec.options or None)


# ASCII digits only: other Unicode digits take the general path, which converts them the same way.
_INT = re.compile(r"[0-9]{1,18}")
_DEC = re.compile(r"([0-9]{1,30})(?:[.,]([0-9]{1,30}))?")
_DMY = re.compile(r"([0-9]{2})\.([0-9]{2})\.([0-9]{4})")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: Distinct cell texts remembered per column by :func:`json_encoder` for types with few distinct
#: values (dates, enums, booleans, datetimes); past it new texts are converted without being kept.
MEMO_SIZE = 1 << 16

JsonEncoder = Callable[[str], str | None]


def json_encoder(spec: FieldSpec) -> JsonEncoder:
    """A fast ``cell text -> JSON text`` for one field (the importer's hot path).

    For stripped, non-empty cell text it returns exactly ``json_value(coerce(text, ...))`` and
    raises the same :class:`FieldValueError`: common plain forms ("1500,50", "01.03.2024") take
    shortcuts, anything else — and every field with a mask — goes through :func:`coerce`. Returns
    None where ``coerce`` gives None (nothing to store).
    """
    ftype, mask, options = spec.type.value, spec.mask, spec.options or None

    def general(text: str) -> str | None:
        value = coerce(text, type=ftype, mask=mask, options=options)
        return None if value is None else json_value(value)

    if mask:
        return general
    if spec.type in (FieldType.string, FieldType.phone):
        return _encode_str  # the stripped text is the value
    if spec.type == FieldType.integer:
        def integer(text: str) -> str | None:
            # int(text) without the int: the digits less their leading zeros.
            return (text.lstrip("0") or "0") if _INT.fullmatch(text) else general(text)
        return integer
    if spec.type == FieldType.decimal:
        def decimal(text: str) -> str | None:
            # format(Decimal(text), "f") of a plain number: leading zeros go, the scale stays ("1,50" → 1.50).
            m = _DEC.fullmatch(text)
            if m is None:
                return general(text)
            whole, fraction = m.group(1, 2)
            whole = whole.lstrip("0") or "0"
            return whole if fraction is None else f"{whole}.{fraction}"
        return decimal  # amounts rarely repeat: nothing to remember
    if spec.type == FieldType.date:
        def day(text: str) -> str | None:
            m = _DMY.fullmatch(text)
            try:
                if m is not None:
                    return f'"{date(int(m[3]), int(m[2]), int(m[1])).isoformat()}"'
                if _ISO_DATE.fullmatch(text):
                    return f'"{date.fromisoformat(text).isoformat()}"'
            except ValueError:
                pass  # coerce words the error
            return general(text)
        return _memoized(day)
    return _memoized(general)


def _memoized(encode: JsonEncoder, limit: int = MEMO_SIZE) -> JsonEncoder:
    """``encode`` remembering up to ``limit`` results (errors are raised again each time, not kept)."""
    if limit <= 0:
        return encode
    memo: dict[str, str | None] = {}

    def cached(text: str) -> str | None:
        try:
            return memo[text]
        except KeyError:
            pass
        found = encode(text)
        if len(memo) < limit:
            memo[text] = found
        return found
    return cached


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
