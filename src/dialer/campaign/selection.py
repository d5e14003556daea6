"""Selection conditions and sort orders, validated and compiled to SQL over the ``contacts`` table.

A selection (001 "Правила выборки") picks the contacts a campaign dials. Its conditions are all
required to hold (AND); its sort orders the contacts that match. Both are JSON, stored as given
after :func:`normalize_conditions` / :func:`normalize_sort`::

    conditions: [{"field": 12, "op": "gt", "value": 1000},
                 {"field": "attempts_today", "op": "lt", "value": 3},
                 {"field": "last_outcome", "op": "in", "value": ["busy", "no_answer"]},
                 {"field": 15, "op": "today_plus", "value": -1}]
    sort:       [{"field": "next_call_at", "dir": "asc"}, {"field": 12, "dir": "desc"}]

``field`` is a contact field id (an integer or its decimal string; stored as an integer) or one of
the system attributes in :data:`SYSTEM_ATTRIBUTES`. Operators and the field types they apply to:

============  ==========================================  ======================================
op            meaning                                     field types
============  ==========================================  ======================================
eq, ne        =, ≠ (``value: null``: is empty / not)      all
gt lt ge le   >, <, ≥, ≤                                  integer, decimal, date, datetime
in            one of a non-empty list                     all but boolean and datetime
contains      case-insensitive substring                  string, phone, enum
today_plus    on the day today + N (N may be negative)    date, datetime
============  ==========================================  ======================================

How values are read (the contract with the contact package): ``contacts.data`` is JSONB keyed by
``str(field.id)``; numbers are JSON numbers, dates ``"YYYY-MM-DD"`` strings (which order correctly
as text), datetimes ISO-8601 strings (a value without an offset is local time of the campaign),
booleans JSON ``true``/``false``, everything else JSON strings.

Every field condition and sort is written with the expression of the field's own index
(:mod:`dialer.contact.indexes`, the key as a literal), so the planner can use that index: numbers
as ``((data->'id')::numeric)`` (equality too), everything else as ``(data->>'id')`` — booleans as
the text ``'true'``/``'false'``. Datetimes are compared as ``timestamptz`` (offsets differ between
values), and a range on one also gets a text range on ``(data->>'id')`` one day wider, which every
value in the range satisfies, for the index to narrow the rows down.

Semantics worth knowing:

* ``ne`` also matches contacts that have no value (``IS DISTINCT FROM``); the order operators,
  ``in``, ``contains`` and ``today_plus`` never match an empty value.
* ``eq``/``in`` on text are exact; ``contains`` ignores case and treats ``%``/``_`` literally.
* "Today" is the campaign's date in its time zone, passed in as ``today``; a naive datetime in a
  condition means the campaign's time zone ``tz``. For a datetime, a date-only value compares whole
  local days: ``eq`` that day, ``gt`` after it, ``ge`` from its start, ``lt`` before it, ``le`` up
  to its end.
* ``attempts_today`` counts only when ``contacts.attempts_day`` is ``today`` (otherwise it is 0).

Everything here is pure: no I/O, the same input gives the same SQL. The engine compiles a
selection once per pass and adds its own clauses (time windows, DNC, retry timers).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, String, and_, case, cast, func, not_, or_, true
from sqlalchemy.dialects.postgresql import TIMESTAMP

from dialer.contact.indexes import numeric_expr, text_expr
from dialer.models import Contact
from dialer.models.enums import ContactStatus, FieldType, OutcomeCategory

#: Largest ``in`` list and ``today_plus`` offset accepted.
MAX_IN_VALUES = 1000
MAX_DAYS = 36_500


class Op(StrEnum):
    eq = "eq"
    ne = "ne"
    gt = "gt"
    lt = "lt"
    ge = "ge"
    le = "le"
    in_ = "in"
    contains = "contains"
    today_plus = "today_plus"


class SortDir(StrEnum):
    asc = "asc"
    desc = "desc"


_ORDER = frozenset({Op.gt, Op.lt, Op.ge, Op.le})
_TEXTUAL = frozenset({Op.eq, Op.ne, Op.in_, Op.contains})
_NUMERIC = frozenset({Op.eq, Op.ne, Op.in_}) | _ORDER

#: Which operators apply to which field type.
OPS: dict[FieldType, frozenset[Op]] = {
    FieldType.string: _TEXTUAL,
    FieldType.phone: _TEXTUAL,
    FieldType.enum: _TEXTUAL,
    FieldType.integer: _NUMERIC,
    FieldType.decimal: _NUMERIC,
    FieldType.date: _NUMERIC | {Op.today_plus},
    FieldType.datetime: frozenset({Op.eq, Op.ne, Op.today_plus}) | _ORDER,
    FieldType.boolean: frozenset({Op.eq, Op.ne}),
}
#: A stored datetime's text (its local reading) is less than a day away from the moment it means.
_READING_SLACK = timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """What the compiler needs to know about a contact field."""

    id: int
    name: str
    type: FieldType
    options: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class SystemAttribute:
    """A column of ``contacts`` that selections may use like a field."""

    name: str
    type: FieldType
    options: tuple[str, ...] = ()


#: The system attributes of a contact, by the name used in conditions and sorts.
SYSTEM_ATTRIBUTES: dict[str, SystemAttribute] = {
    a.name: a for a in (
        SystemAttribute("attempts_total", FieldType.integer),
        SystemAttribute("attempts_today", FieldType.integer),
        SystemAttribute("last_outcome", FieldType.enum, tuple(o.value for o in OutcomeCategory)),
        SystemAttribute("created_at", FieldType.datetime),
        SystemAttribute("next_call_at", FieldType.datetime),
        SystemAttribute("last_attempt_at", FieldType.datetime),
        SystemAttribute("status", FieldType.enum, tuple(s.value for s in ContactStatus)),
    )
}


class ConditionError(ValueError):
    """A condition or sort item is wrong; ``path`` names the part (``conditions.2.value``)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class _Target:
    key: int | str  # field id, or system attribute name
    label: str
    type: FieldType
    options: tuple[str, ...]
    system: bool


_FIELD_ID = re.compile(r"\d+", re.ASCII)
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
# A time followed by a UTC offset: the stored datetime is absolute.
_HAS_OFFSET = r"\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*([zZ]|[+-]\d{2}(:?\d{2})?)$"


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _resolve(raw: Any, fields: Mapping[int, FieldInfo], path: str) -> _Target:
    if (isinstance(raw, int) and not isinstance(raw, bool)) or (isinstance(raw, str) and _FIELD_ID.fullmatch(raw)):
        field_id = int(raw)
        info = fields.get(field_id)
        if info is None:
            raise ConditionError(path, f"contact field {field_id} does not exist")
        return _Target(field_id, f"field '{info.name}'", FieldType(info.type), tuple(info.options), False)
    if isinstance(raw, str) and raw in SYSTEM_ATTRIBUTES:
        attr = SYSTEM_ATTRIBUTES[raw]
        return _Target(raw, raw, attr.type, attr.options, True)
    raise ConditionError(path, f"unknown field {raw!r}: give a contact field id or one of "
                               f"{', '.join(SYSTEM_ATTRIBUTES)}")


def _scalar(target: _Target, value: Any, path: str) -> Any:
    """Check one value against the target's type; return it in its stored (JSON) form."""
    kind = target.type
    if value is None:
        raise ConditionError(path, "a value is required")
    if kind in (FieldType.string, FieldType.phone):
        if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            return str(value)
        raise ConditionError(path, f"{target.label} holds text, not {_json_kind(value)}")
    if kind is FieldType.enum:
        if not isinstance(value, str):
            raise ConditionError(path, f"{target.label} holds one of its options, not {_json_kind(value)}")
        if value not in target.options:
            raise ConditionError(path, f"{value!r} is not an option of {target.label}; "
                                       f"options: {', '.join(target.options) or 'none'}")
        return value
    if kind is FieldType.integer:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            return int(value.strip())
        raise ConditionError(path, f"{value!r} is not a whole number ({target.label} is an integer)")
    if kind is FieldType.decimal:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(value):
                return value
        elif isinstance(value, str):
            try:
                number = Decimal(value.strip().replace(",", "."))
            except InvalidOperation:
                pass
            else:
                if number.is_finite():
                    return str(number)
        raise ConditionError(path, f"{value!r} is not a number ({target.label} is a decimal)")
    if kind is FieldType.boolean:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ConditionError(path, f"{value!r} is not true or false ({target.label} is a boolean)")
    if kind is FieldType.date:
        if isinstance(value, str) and _DATE.fullmatch(value.strip()):
            try:
                return date.fromisoformat(value.strip()).isoformat()
            except ValueError:
                pass
        raise ConditionError(path, f"{value!r} is not a date YYYY-MM-DD")
    # datetime: a full ISO-8601 timestamp, or a date meaning the whole local day
    if isinstance(value, str):
        text = value.strip()
        try:
            if _DATE.fullmatch(text):
                return date.fromisoformat(text).isoformat()
            return datetime.fromisoformat(text).isoformat()
        except ValueError:
            pass
    raise ConditionError(path, f"{value!r} is not a date-time (ISO 8601, e.g. 2026-03-01T09:30:00+03:00) "
                               "or a date YYYY-MM-DD")


def _days(value: Any, path: str) -> int:
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConditionError(path, f"{value!r} is not a whole number of days (e.g. 0 for today, -1 for yesterday)")
    if abs(value) > MAX_DAYS:
        raise ConditionError(path, f"at most {MAX_DAYS} days either way")
    return value


def _value(target: _Target, op: Op, value: Any, path: str) -> Any:
    if op is Op.today_plus:
        return _days(value, path)
    if value is None:
        if op in (Op.eq, Op.ne):
            return None
        raise ConditionError(path, f"operator '{op}' needs a value")
    if op is Op.in_:
        if not isinstance(value, list) or not value:
            raise ConditionError(path, "operator 'in' needs a non-empty list of values")
        if len(value) > MAX_IN_VALUES:
            raise ConditionError(path, f"at most {MAX_IN_VALUES} values")
        return [_scalar(target, item, f"{path}.{i}") for i, item in enumerate(value)]
    if op is Op.contains:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise ConditionError(path, "operator 'contains' needs non-empty text")
        return value
    if isinstance(value, list):
        raise ConditionError(path, f"operator '{op}' compares with one value, not a list (use 'in')")
    return _scalar(target, value, path)


def normalize_condition(raw: Any, fields: Mapping[int, FieldInfo], path: str) -> dict[str, Any]:
    """Validate one condition; return it in stored form. Raises :class:`ConditionError`."""
    if not isinstance(raw, Mapping):
        raise ConditionError(path, "a condition is an object {field, op, value}")
    if unknown := sorted(set(raw) - {"field", "op", "value"}):
        raise ConditionError(f"{path}.{unknown[0]}", "unknown key; a condition has field, op and value")
    if "field" not in raw:
        raise ConditionError(f"{path}.field", "a field is required")
    target = _resolve(raw["field"], fields, f"{path}.field")
    try:
        op = Op(str(raw.get("op")))
    except ValueError:
        raise ConditionError(f"{path}.op", f"unknown operator {raw.get('op')!r}; use one of "
                                           f"{', '.join(o.value for o in Op)}")
    allowed = OPS[target.type]
    if op not in allowed:
        raise ConditionError(f"{path}.op", f"operator '{op}' does not apply to {target.label} ({target.type}); "
                                           f"allowed: {', '.join(o.value for o in Op if o in allowed)}")
    if "value" not in raw:
        raise ConditionError(f"{path}.value", "a value is required (null means 'is empty')")
    return {"field": target.key, "op": op.value, "value": _value(target, op, raw["value"], f"{path}.value")}


def normalize_conditions(conditions: Sequence[Any], fields: Mapping[int, FieldInfo],
                         path: str = "conditions") -> list[dict[str, Any]]:
    """Validate conditions against the fields' types; return them in stored form.

    Raises :class:`ConditionError` naming the exact part, e.g. ``conditions.2.value.1``.
    """
    return [normalize_condition(c, fields, f"{path}.{i}") for i, c in enumerate(conditions)]


def normalize_sort(sort: Sequence[Any], fields: Mapping[int, FieldInfo], path: str = "sort") -> list[dict[str, Any]]:
    """Validate sort items ``{"field", "dir"}``; return them in stored form."""
    result = []
    for i, raw in enumerate(sort):
        item_path = f"{path}.{i}"
        if not isinstance(raw, Mapping):
            raise ConditionError(item_path, "a sort item is an object {field, dir}")
        if unknown := sorted(set(raw) - {"field", "dir"}):
            raise ConditionError(f"{item_path}.{unknown[0]}", "unknown key; a sort item has field and dir")
        if "field" not in raw:
            raise ConditionError(f"{item_path}.field", "a field is required")
        target = _resolve(raw["field"], fields, f"{item_path}.field")
        try:
            direction = SortDir(raw.get("dir", "asc"))
        except ValueError:
            raise ConditionError(f"{item_path}.dir", f"{raw.get('dir')!r} is not asc or desc")
        result.append({"field": target.key, "dir": direction.value})
    return result


def referenced_field_ids(*items: Sequence[Any]) -> set[int]:
    """Ids of the contact fields that conditions or sort items refer to (junk is ignored)."""
    found: set[int] = set()
    for seq in items:
        for item in seq:
            raw = item.get("field") if isinstance(item, Mapping) else None
            if isinstance(raw, int) and not isinstance(raw, bool):
                found.add(raw)
            elif isinstance(raw, str) and _FIELD_ID.fullmatch(raw):
                found.add(int(raw))
    return found


# --- SQL ------------------------------------------------------------------------------------------


def _timestamp(field_id: int, tz: ZoneInfo) -> ColumnElement[Any]:
    """A datetime field as ``timestamptz``; values without an offset are local time of ``tz``."""
    text = text_expr(field_id)
    well_formed = text.regexp_match(r"^\d{4}-\d{2}-\d{2}")
    return case(
        (and_(well_formed, text.regexp_match(_HAS_OFFSET)), cast(text, TIMESTAMP(timezone=True))),
        (well_formed, func.timezone(tz.key, cast(text, TIMESTAMP()), type_=TIMESTAMP(timezone=True))),
        else_=None,
    )


def attempts_today(today: date) -> ColumnElement[Any]:
    """Attempts made on ``today``: the counter is stale when it was last bumped on another day."""
    return case((Contact.attempts_day == today, Contact.attempts_today), else_=0)


def _expr(target: _Target, today: date, tz: ZoneInfo) -> ColumnElement[Any]:
    if target.system:
        if target.key == "attempts_today":
            return attempts_today(today)
        column: ColumnElement[Any] = getattr(Contact, str(target.key))
        return column
    field_id = int(target.key)
    if target.type in (FieldType.integer, FieldType.decimal):
        return numeric_expr(field_id)
    if target.type is FieldType.datetime:
        return _timestamp(field_id, tz)
    return text_expr(field_id)  # booleans too: 'true' / 'false'


def _day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    return (datetime.combine(day, time(), tzinfo=tz),
            datetime.combine(day + timedelta(days=1), time(), tzinfo=tz))


def _sql_value(target: _Target, value: Any, tz: ZoneInfo) -> Any:
    if target.type is FieldType.decimal or (target.type is FieldType.integer and not target.system):
        return Decimal(str(value))
    if target.type is FieldType.datetime:
        moment = datetime.fromisoformat(value)
        return moment if moment.tzinfo else moment.replace(tzinfo=tz)
    if target.type is FieldType.boolean and not target.system:
        return "true" if value else "false"
    return value


def _reading_window(target: _Target, lo: datetime | None, hi: datetime | None) -> ColumnElement[bool]:
    """A text range on a datetime field's own index that holds for every value between ``lo`` and ``hi``.

    A stored value reads as its local time, less than a day from the moment it means (offsets are
    under 16 hours), so it reads no earlier than the day before ``lo`` and before the day after the
    day after ``hi`` (in UTC); ISO texts compare as the moments they read.
    """
    text = text_expr(int(target.key))
    clauses = []
    if lo is not None:
        clauses.append(text >= (lo.astimezone(UTC) - _READING_SLACK).date().isoformat())
    if hi is not None:
        clauses.append(text < (hi.astimezone(UTC) + 2 * _READING_SLACK).date().isoformat())
    return and_(*clauses)


def _narrowed(target: _Target, clause: ColumnElement[bool], lo: datetime | None,
              hi: datetime | None) -> ColumnElement[bool]:
    """``clause`` on a datetime field, plus the text range its own index can serve (nothing else changes)."""
    if target.system or target.type is not FieldType.datetime or (lo is None and hi is None):
        return clause
    return and_(_reading_window(target, lo, hi), clause)


def _escape_like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _empty(target: _Target, expr: ColumnElement[Any]) -> ColumnElement[bool]:
    if not target.system and target.type in (FieldType.string, FieldType.phone, FieldType.enum):
        return or_(expr.is_(None), expr == "")
    return expr.is_(None)


def _whole_days(target: _Target, op: Op, expr: ColumnElement[Any], lo: datetime,
                hi: datetime) -> ColumnElement[bool]:
    if op is Op.eq:
        return _narrowed(target, and_(expr >= lo, expr < hi), lo, hi)
    if op is Op.ne:
        return or_(expr.is_(None), expr < lo, expr >= hi)
    bounds = {Op.gt: (hi, None), Op.ge: (lo, None), Op.lt: (None, lo), Op.le: (None, hi)}[op]
    return _narrowed(target, {Op.gt: expr >= hi, Op.ge: expr >= lo, Op.lt: expr < lo, Op.le: expr < hi}[op], *bounds)


def _compile_one(cond: Mapping[str, Any], target: _Target, today: date, tz: ZoneInfo) -> ColumnElement[bool]:
    op = Op(cond["op"])
    value = cond["value"]
    expr = _expr(target, today, tz)
    if op is Op.today_plus:
        day = today + timedelta(days=value)
        if target.type is FieldType.date:
            return expr == day.isoformat()
        lo, hi = _day_bounds(day, tz)
        return _narrowed(target, and_(expr >= lo, expr < hi), lo, hi)
    if value is None:
        empty = _empty(target, expr)
        return empty if op is Op.eq else not_(empty)
    if op is Op.contains:
        return cast(expr, String).ilike(_escape_like(value), escape="\\")
    if op is Op.in_:
        return expr.in_([_sql_value(target, v, tz) for v in value])
    if target.type is FieldType.datetime and _DATE.fullmatch(value):
        return _whole_days(target, op, expr, *_day_bounds(date.fromisoformat(value), tz))
    sql_value = _sql_value(target, value, tz)
    if op is Op.eq:
        return _narrowed(target, expr == sql_value, sql_value, sql_value)
    if op is Op.ne:
        return expr.is_distinct_from(sql_value)
    if op in (Op.gt, Op.ge):
        return _narrowed(target, expr > sql_value if op is Op.gt else expr >= sql_value, sql_value, None)
    return _narrowed(target, expr < sql_value if op is Op.lt else expr <= sql_value, None, sql_value)


def compile_conditions(conditions: Sequence[Any], fields: Mapping[int, FieldInfo], *, today: date,
                       tz: ZoneInfo) -> ColumnElement[bool]:
    """One boolean clause over ``contacts`` that holds when every condition holds.

    ``fields`` maps field ids to their :class:`FieldInfo` (at least those the conditions use);
    ``today`` is the campaign's current date and ``tz`` its time zone. The conditions are
    validated first (:func:`normalize_conditions`), so stored JSON can be passed as it is.
    """
    clauses = []
    for i, raw in enumerate(conditions):
        cond = normalize_condition(raw, fields, f"conditions.{i}")
        target = _resolve(cond["field"], fields, f"conditions.{i}.field")
        clauses.append(_compile_one(cond, target, today, tz))
    return and_(true(), *clauses) if clauses else true()


def compile_sort(sort: Sequence[Any], fields: Mapping[int, FieldInfo], *, today: date,
                 tz: ZoneInfo) -> list[ColumnElement[Any]]:
    """ORDER BY expressions for the sort items, empty values last, ``contacts.id`` as the tie-breaker."""
    order: list[ColumnElement[Any]] = []
    for i, item in enumerate(normalize_sort(sort, fields)):
        target = _resolve(item["field"], fields, f"sort.{i}.field")
        expr = _expr(target, today, tz)  # a boolean as text: 'false' < 'true'
        order.append(expr.desc().nulls_last() if item["dir"] == SortDir.desc else expr.asc().nulls_last())
    order.append(Contact.id.asc())
    return order


def compile_limits(*, max_attempts_total: int | None, max_attempts_per_day: int | None,
                   pause_between_attempts_s: int | None, now: datetime, today: date) -> ColumnElement[bool]:
    """The selection's own limits: attempts in total and today, and the pause since the last attempt."""
    clauses: list[ColumnElement[bool]] = []
    if max_attempts_total is not None:
        clauses.append(Contact.attempts_total < max_attempts_total)
    if max_attempts_per_day is not None:
        clauses.append(attempts_today(today) < max_attempts_per_day)
    if pause_between_attempts_s:
        clauses.append(or_(Contact.last_attempt_at.is_(None),
                           Contact.last_attempt_at <= now - timedelta(seconds=pause_between_attempts_s)))
    return and_(true(), *clauses) if clauses else true()
