"""The selection compiler against a real database: every operator, every field type, the system attributes.

One database per module holds five contacts; each case runs one query, so the table of cases stays cheap.
Today is 2026-03-10 in Europe/Moscow (UTC+3): several values sit near midnight to prove that days are
local to the campaign's zone.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.campaign.selection import (
    ConditionError,
    FieldInfo,
    compile_conditions,
    compile_limits,
    compile_sort,
    normalize_conditions,
    normalize_sort,
)
from dialer.db import asyncpg_dsn, make_engine, make_sessionmaker, with_database
from dialer.models import Contact, ContactList, Field
from dialer.models.enums import ContactStatus, FieldType, OutcomeCategory
from tests.conftest import TEMPLATE

TZ = ZoneInfo("Europe/Moscow")
TODAY = date(2026, 3, 10)
MSK = timezone(timedelta(hours=3))


def msk(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=MSK)


FIELDS = {
    "city": FieldType.string, "amount": FieldType.decimal, "age": FieldType.integer, "birthday": FieldType.date,
    "paid_at": FieldType.datetime, "vip": FieldType.boolean, "segment": FieldType.enum, "phone": FieldType.phone,
}
CONTACTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "anna": ({"city": "Москва", "amount": Decimal("1500.50"), "age": 30, "birthday": "2026-03-10",
              "paid_at": "2026-03-09T23:30:00+03:00", "vip": True, "segment": "gold", "phone": "+7 (916) 123-45-67"},
             {"attempts_total": 2, "attempts_today": 1, "attempts_day": TODAY, "last_outcome": OutcomeCategory.busy,
              "status": ContactStatus.in_progress, "created_at": msk(2026, 3, 1, 10),
              "next_call_at": msk(2026, 3, 10, 12), "last_attempt_at": msk(2026, 3, 10, 9)}),
    "boris": ({"city": "москва-сити", "amount": 99, "age": 45, "birthday": "2026-03-11",
               "paid_at": "2026-03-10T08:00:00", "vip": False, "segment": "silver", "phone": "8 495 000-00-00"},
              {"attempts_total": 5, "attempts_today": 3, "attempts_day": TODAY - timedelta(days=1),
               "last_outcome": OutcomeCategory.no_answer, "status": ContactStatus.in_progress,
               "created_at": datetime(2026, 3, 9, 22, tzinfo=UTC), "next_call_at": msk(2026, 3, 11, 9),
               "last_attempt_at": msk(2026, 3, 9, 18)}),
    "vera": ({"city": "Казань", "age": 18, "birthday": "2026-03-09", "segment": "bronze"},
             {"status": ContactStatus.new, "created_at": msk(2026, 3, 10, 10)}),
    "gleb": ({"city": "100%_sale", "amount": 0, "age": 60, "vip": False, "paid_at": "2026-03-10T21:30:00Z"},
             {"attempts_total": 10, "last_outcome": OutcomeCategory.answered, "status": ContactStatus.done,
              "created_at": datetime(2025, 12, 31, 12, tzinfo=UTC)}),
    "dina": ({}, {"status": ContactStatus.new, "created_at": msk(2026, 3, 8)}),
}
EVERYONE = set(CONTACTS)


@dataclasses.dataclass
class World:
    maker: async_sessionmaker[AsyncSession]
    fields: dict[int, FieldInfo]
    field_ids: dict[str, int]
    names: dict[int, str]

    async def query(self, *, where: Any = None, order: Any = None) -> list[str]:
        stmt = select(Contact.id)
        if where is not None:
            stmt = stmt.where(where)
        stmt = stmt.order_by(*order) if order is not None else stmt.order_by(Contact.id)
        async with self.maker() as session:
            return [self.names[i] for i in (await session.scalars(stmt)).all()]


@pytest.fixture(scope="module")
async def world(server_url: str, template_url: str) -> AsyncIterator[World]:
    name = f"t_selection_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = asyncpg_dsn(with_database(server_url, "postgres"))
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}" STRATEGY FILE_COPY')
    await conn.close()
    engine = make_engine(with_database(server_url, name), pool_size=1)
    maker = make_sessionmaker(engine)
    async with maker() as session, session.begin():
        fields = {key: Field(name=key, type=kind, options=["gold", "silver", "bronze"] if kind == "enum" else [])
                  for key, kind in FIELDS.items()}
        contact_list = ContactList(name="Все")
        session.add_all([*fields.values(), contact_list])
        await session.flush()
        field_ids = {key: f.id for key, f in fields.items()}
        names = {}
        for label, (data, system) in CONTACTS.items():
            stored = {str(field_ids[k]): float(v) if isinstance(v, Decimal) else v for k, v in data.items()}
            contact = Contact(list_id=contact_list.id, data=stored, **system)
            session.add(contact)
            await session.flush()
            names[contact.id] = label
        infos = {f.id: FieldInfo(f.id, f.name, f.type, tuple(f.options)) for f in fields.values()}
    try:
        yield World(maker, infos, field_ids, names)
    finally:
        await engine.dispose()
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


# (field, op, value) → the contacts that match; a field named in FIELDS is a contact field.
CASES: list[tuple[str, str, Any, set[str]]] = [
    ("city", "eq", "Москва", {"anna"}),
    ("city", "ne", "Москва", EVERYONE - {"anna"}),
    ("city", "in", ["Казань", "Москва"], {"anna", "vera"}),
    ("city", "contains", "МОСКВА", {"anna", "boris"}),
    ("city", "contains", "%_", {"gleb"}),
    ("city", "contains", "_", {"gleb"}),
    ("city", "eq", None, {"dina"}),
    ("city", "ne", None, EVERYONE - {"dina"}),
    ("phone", "contains", "916", {"anna"}),
    ("phone", "eq", "8 495 000-00-00", {"boris"}),
    ("amount", "gt", 100, {"anna"}),
    ("amount", "le", "99", {"boris", "gleb"}),
    ("amount", "eq", "1500.5", {"anna"}),
    ("amount", "ne", 99, EVERYONE - {"boris"}),
    ("amount", "in", [0, 99], {"boris", "gleb"}),
    ("age", "eq", 30, {"anna"}),
    ("age", "ne", 30, EVERYONE - {"anna"}),
    ("age", "ge", 45, {"boris", "gleb"}),
    ("age", "lt", "20", {"vera"}),
    ("age", "in", [18, 60], {"vera", "gleb"}),
    ("birthday", "today_plus", 0, {"anna"}),
    ("birthday", "today_plus", 1, {"boris"}),
    ("birthday", "today_plus", -1, {"vera"}),
    ("birthday", "gt", "2026-03-09", {"anna", "boris"}),
    ("birthday", "le", "2026-03-10", {"anna", "vera"}),
    ("birthday", "in", ["2026-03-09", "2026-03-11"], {"vera", "boris"}),
    ("birthday", "eq", "2026-03-10", {"anna"}),
    ("paid_at", "today_plus", 0, {"boris"}),
    ("paid_at", "today_plus", -1, {"anna"}),
    ("paid_at", "today_plus", 1, {"gleb"}),
    ("paid_at", "lt", "2026-03-10T06:00:00+03:00", {"anna"}),
    ("paid_at", "ge", "2026-03-10T08:00:00", {"boris", "gleb"}),
    ("paid_at", "eq", "2026-03-10", {"boris"}),
    ("paid_at", "ne", "2026-03-10", EVERYONE - {"boris"}),
    ("paid_at", "gt", "2026-03-10", {"gleb"}),
    ("paid_at", "le", "2026-03-10", {"anna", "boris"}),
    ("vip", "eq", True, {"anna"}),
    ("vip", "eq", "false", {"boris", "gleb"}),
    ("vip", "ne", True, EVERYONE - {"anna"}),
    ("segment", "eq", "gold", {"anna"}),
    ("segment", "in", ["silver", "bronze"], {"boris", "vera"}),
    ("segment", "contains", "IL", {"boris"}),
    ("attempts_total", "gt", 2, {"boris", "gleb"}),
    ("attempts_total", "eq", 0, {"vera", "dina"}),
    ("attempts_total", "in", [2, 10], {"anna", "gleb"}),
    ("attempts_today", "ge", 1, {"anna"}),
    ("attempts_today", "eq", 0, EVERYONE - {"anna"}),
    ("last_outcome", "in", ["busy", "no_answer"], {"anna", "boris"}),
    ("last_outcome", "eq", None, {"vera", "dina"}),
    ("last_outcome", "ne", "busy", EVERYONE - {"anna"}),
    ("status", "eq", "new", {"vera", "dina"}),
    ("status", "ne", "done", EVERYONE - {"gleb"}),
    ("status", "contains", "PROG", {"anna", "boris"}),
    ("created_at", "today_plus", 0, {"boris", "vera"}),
    ("created_at", "lt", "2026-01-01", {"gleb"}),
    ("created_at", "ge", "2026-03-09T22:00:00Z", {"boris", "vera"}),
    ("next_call_at", "le", "2026-03-10T12:00:00+03:00", {"anna"}),
    ("next_call_at", "eq", None, EVERYONE - {"anna", "boris"}),
    ("next_call_at", "today_plus", 1, {"boris"}),
    ("last_attempt_at", "ge", "2026-03-10", {"anna"}),
    ("last_attempt_at", "lt", "2026-03-10T00:00:00", {"boris"}),
]


def _condition(world: World, field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": world.field_ids.get(field, field), "op": op, "value": value}


@pytest.mark.parametrize(("field", "op", "value", "expected"), CASES,
                         ids=[f"{f}-{o}-{v}" for f, o, v, _ in CASES])
async def test_condition(world: World, field: str, op: str, value: Any, expected: set[str]) -> None:
    clause = compile_conditions([_condition(world, field, op, value)], world.fields, today=TODAY, tz=TZ)
    assert set(await world.query(where=clause)) == expected


async def test_conditions_are_anded_and_ids_may_be_strings(world: World) -> None:
    conditions = [{"field": str(world.field_ids["city"]), "op": "contains", "value": "моск"},
                  {"field": "attempts_total", "op": "ge", "value": 5}]
    assert await world.query(where=compile_conditions(conditions, world.fields, today=TODAY, tz=TZ)) == ["boris"]
    assert set(await world.query(where=compile_conditions([], world.fields, today=TODAY, tz=TZ))) == EVERYONE


async def test_today_moves_with_the_campaign_zone(world: World) -> None:
    condition = [{"field": "created_at", "op": "today_plus", "value": 0}]
    # 22:00 UTC on the 9th is already the 10th in Moscow, still the 9th in London
    london = compile_conditions(condition, world.fields, today=date(2026, 3, 9), tz=ZoneInfo("Europe/London"))
    assert await world.query(where=london) == ["boris"]


@pytest.mark.parametrize(("sort", "expected"), [
    ([("amount", "desc")], ["anna", "boris", "gleb", "vera", "dina"]),
    ([("birthday", "asc")], ["vera", "anna", "boris", "gleb", "dina"]),
    ([("vip", "desc"), ("age", "asc")], ["anna", "boris", "gleb", "vera", "dina"]),
    ([("attempts_today", "desc"), ("created_at", "asc")], ["anna", "gleb", "dina", "boris", "vera"]),
    ([("paid_at", "asc")], ["anna", "boris", "gleb", "vera", "dina"]),
    ([("next_call_at", "asc")], ["anna", "boris", "vera", "gleb", "dina"]),
])
async def test_sort(world: World, sort: list[tuple[str, str]], expected: list[str]) -> None:
    items = [{"field": world.field_ids.get(f, f), "dir": d} for f, d in sort]
    assert await world.query(order=compile_sort(items, world.fields, today=TODAY, tz=TZ)) == expected


async def test_limits(world: World) -> None:
    now = msk(2026, 3, 10, 9, 30)

    async def limited(**kw: Any) -> set[str]:
        base = {"max_attempts_total": None, "max_attempts_per_day": None, "pause_between_attempts_s": None}
        return set(await world.query(where=compile_limits(**(base | kw), now=now, today=TODAY)))

    assert await limited() == EVERYONE
    assert await limited(max_attempts_total=5) == {"anna", "vera", "dina"}
    assert await limited(max_attempts_per_day=1) == EVERYONE - {"anna"}
    assert await limited(pause_between_attempts_s=3600) == EVERYONE - {"anna"}
    assert await limited(pause_between_attempts_s=1800) == EVERYONE


FIELD_INFO = {
    1: FieldInfo(1, "Город", FieldType.string), 2: FieldInfo(2, "VIP", FieldType.boolean),
    3: FieldInfo(3, "Сегмент", FieldType.enum, ("gold", "silver")), 4: FieldInfo(4, "Сумма", FieldType.decimal),
    5: FieldInfo(5, "Дата", FieldType.date), 6: FieldInfo(6, "Оплачен", FieldType.datetime),
    7: FieldInfo(7, "Возраст", FieldType.integer),
}


@pytest.mark.parametrize(("condition", "path", "reason"), [
    ({"field": 99, "op": "eq", "value": 1}, "conditions.0.field", "contact field 99 does not exist"),
    ({"field": "colour", "op": "eq", "value": 1}, "conditions.0.field", "unknown field 'colour'"),
    ({"field": 1, "op": "like", "value": "x"}, "conditions.0.op", "unknown operator 'like'"),
    ({"field": 2, "op": "gt", "value": True}, "conditions.0.op", "does not apply to field 'VIP' (boolean); "
                                                                 "allowed: eq, ne"),
    ({"field": 7, "op": "contains", "value": "1"}, "conditions.0.op", "does not apply"),
    ({"field": 6, "op": "in", "value": ["2026-01-01"]}, "conditions.0.op", "does not apply"),
    ({"field": "attempts_total", "op": "today_plus", "value": 1}, "conditions.0.op", "does not apply"),
    ({"field": 3, "op": "eq", "value": "platinum"}, "conditions.0.value", "'platinum' is not an option of field"),
    ({"field": 3, "op": "in", "value": ["gold", "tin"]}, "conditions.0.value.1", "'tin' is not an option"),
    ({"field": 4, "op": "gt", "value": "много"}, "conditions.0.value", "is not a number"),
    ({"field": 7, "op": "gt", "value": 1.5}, "conditions.0.value", "is not a whole number"),
    ({"field": 5, "op": "eq", "value": "10.03.2026"}, "conditions.0.value", "is not a date YYYY-MM-DD"),
    ({"field": 5, "op": "eq", "value": "2026-02-30"}, "conditions.0.value", "is not a date YYYY-MM-DD"),
    ({"field": 6, "op": "lt", "value": "вчера"}, "conditions.0.value", "is not a date-time"),
    ({"field": 5, "op": "today_plus", "value": "завтра"}, "conditions.0.value", "whole number of days"),
    ({"field": 2, "op": "eq", "value": "да"}, "conditions.0.value", "is not true or false"),
    ({"field": 1, "op": "in", "value": []}, "conditions.0.value", "non-empty list"),
    ({"field": 1, "op": "eq", "value": ["a"]}, "conditions.0.value", "use 'in'"),
    ({"field": 1, "op": "contains", "value": " "}, "conditions.0.value", "non-empty text"),
    ({"field": 4, "op": "gt", "value": None}, "conditions.0.value", "needs a value"),
    ({"field": 1, "op": "eq"}, "conditions.0.value", "a value is required"),
    ({"field": 1, "op": "eq", "value": "x", "extra": 1}, "conditions.0.extra", "unknown key"),
    ({"field": "last_outcome", "op": "eq", "value": "voicemail"}, "conditions.0.value", "not an option"),
])
def test_condition_errors_name_the_part(condition: dict[str, Any], path: str, reason: str) -> None:
    with pytest.raises(ConditionError) as err:
        normalize_conditions([condition], FIELD_INFO)
    assert err.value.path == path
    assert reason in err.value.reason


def test_normalized_form_is_stored_json() -> None:
    conditions = normalize_conditions([
        {"field": "7", "op": "ge", "value": "18"},
        {"field": 4, "op": "in", "value": [1, "2,5"]},
        {"field": 6, "op": "lt", "value": "2026-03-01T10:00"},
        {"field": 2, "op": "eq", "value": "TRUE"},
    ], FIELD_INFO)
    assert conditions == [
        {"field": 7, "op": "ge", "value": 18},
        {"field": 4, "op": "in", "value": [1, "2.5"]},
        {"field": 6, "op": "lt", "value": "2026-03-01T10:00:00"},
        {"field": 2, "op": "eq", "value": True},
    ]
    assert normalize_sort([{"field": "5"}, {"field": "created_at", "dir": "desc"}], FIELD_INFO) == [
        {"field": 5, "dir": "asc"}, {"field": "created_at", "dir": "desc"}]
    with pytest.raises(ConditionError) as err:
        normalize_sort([{"field": 5, "dir": "up"}], FIELD_INFO)
    assert err.value.path == "sort.0.dir"


async def test_field_conditions_and_sorts_use_the_field_indexes(db_url: str) -> None:
    """A few thousand contacts, the fields' own indexes, ANALYZE: the planner picks those indexes for
    a range on a number, equality on text, a range on a datetime, and a sort with a LIMIT."""
    from sqlalchemy import text

    from dialer.contact.indexes import ensure_field_indexes

    engine = make_engine(db_url, pool_size=1)
    maker = make_sessionmaker(engine)
    try:
        kinds = {"amount": FieldType.decimal, "age": FieldType.integer, "city": FieldType.string,
                 "paid_at": FieldType.datetime}
        async with maker() as session, session.begin():
            fields = {k: Field(name=k, type=t, options=[]) for k, t in kinds.items()}
            contact_list = ContactList(name="Много")
            session.add_all([*fields.values(), contact_list])
            await session.flush()
            ids = {k: f.id for k, f in fields.items()}
            await session.execute(text(
                "INSERT INTO contacts (list_id, data) SELECT :l, jsonb_build_object("
                "CAST(:a AS text), g * 1.5, CAST(:y AS text), g % 90, CAST(:c AS text), 'Город ' || g, "
                "CAST(:p AS text), to_char(timestamp '2026-01-01' + g * interval '1 hour', "
                "'YYYY-MM-DD\"T\"HH24:MI:SS') || '+03:00') FROM generate_series(1, 5000) g"),
                {"l": contact_list.id, "a": str(ids["amount"]), "y": str(ids["age"]), "c": str(ids["city"]),
                 "p": str(ids["paid_at"])})
        for key, kind in kinds.items():
            report = await ensure_field_indexes(engine, ids[key], kind)
            assert not report.failed, report
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE contacts"))
        infos = {fid: FieldInfo(fid, key, kinds[key]) for key, fid in ids.items()}

        async def plan(stmt: Any) -> str:
            sql = stmt.compile(engine.sync_engine, compile_kwargs={"literal_binds": True})
            async with engine.connect() as conn:
                return "\n".join(r[0] for r in (await conn.execute(text(f"EXPLAIN {sql}"))).all())

        def where(field: str, op: str, value: Any) -> Any:
            return select(Contact.id).where(compile_conditions(
                [{"field": ids[field], "op": op, "value": value}], infos, today=TODAY, tz=TZ))

        def ordered(field: str) -> Any:
            return select(Contact.id).order_by(
                *compile_sort([{"field": ids[field], "dir": "asc"}], infos, today=TODAY, tz=TZ)).limit(10)

        num, txt = "ix_contacts_f{}_num", "ix_contacts_f{}"
        cases = [
            (where("amount", "gt", 7470), num.format(ids["amount"])),
            (where("age", "eq", 7), num.format(ids["age"])),
            (where("city", "eq", "Город 42"), txt.format(ids["city"])),
            (where("paid_at", "ge", "2026-07-20T00:00:00+03:00"), txt.format(ids["paid_at"])),
            (where("paid_at", "today_plus", 1), txt.format(ids["paid_at"])),
            (ordered("amount"), num.format(ids["amount"])),
            (ordered("city"), txt.format(ids["city"])),
        ]
        for stmt, index in cases:
            explained = await plan(stmt)
            assert index in explained, explained
        # The narrowing text range on a datetime changes nothing about which contacts match.
        start, bound = datetime(2026, 1, 1, tzinfo=MSK), datetime(2026, 7, 27, 21, tzinfo=UTC)
        expected = sum(1 for g in range(1, 5001) if start + timedelta(hours=g) >= bound)
        async with maker() as session:
            found = (await session.scalars(where("paid_at", "ge", "2026-07-27T21:00:00Z"))).all()
            assert len(found) == expected == 9
    finally:
        await engine.dispose()
