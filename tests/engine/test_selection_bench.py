"""The hopper with 1,000,000 contacts: fill_hopper(limit=100) finds its calls and EXPLAIN shows indexes.

The contacts are generated in SQL (``INSERT … SELECT … generate_series``), like a big import:
three lists (two of them the campaign's), a fifth of the contacts retried or finished, phones in
six zones (and some without a zone or with two candidates), a blacklist of ~10,000 numbers and a
prefix, 500 calls in progress. Each scenario runs several times; the median and the worst are
printed (``pytest -s``: 10–30 ms for the usual cases, about 200 ms for the night case where 1% of the phones are in
an open zone, on a quiet machine) but not asserted — a test never asserts a speed; the plans are asserted.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.contact.indexes import wanted_indexes
from dialer.engine.selection import CampaignPlan, dialable_count, fill_hopper
from dialer.models import ContactList, Selection, campaign_lists
from dialer.models.enums import FieldType
from tests.engine.selection_data import NOW, World, create_indexes, make_world

pytestmark = pytest.mark.slow

N = 1_000_000
RUNS = 7
GENERATE = """
INSERT INTO contacts (list_id, data, status, attempts_total, attempts_today, attempts_day, last_outcome,
                      last_attempt_at, next_call_at, created_at, updated_at)
SELECT CASE WHEN i % 20 IN (5, 11) THEN CAST(:l2 AS bigint) WHEN i % 20 = 6 THEN CAST(:l3 AS bigint)
            ELSE CAST(:l1 AS bigint) END,
       jsonb_build_object(CAST(:city AS text), (ARRAY['Москва', 'Казань', 'Омск', 'Пермь'])[1 + i % 4],
                          CAST(:amount AS text), (i::bigint * 7919) % 10000),
       CASE WHEN i % 10 = 0 THEN 'done' WHEN i % 10 IN (1, 2) THEN 'in_progress' ELSE 'new' END,
       CASE WHEN i % 10 IN (0, 1, 2) THEN 1 + i % 3 ELSE 0 END,
       CASE WHEN i % 10 IN (1, 2) THEN 1 ELSE 0 END,
       CASE WHEN i % 10 IN (1, 2) THEN CAST(:today AS date) END,
       CASE WHEN i % 10 IN (0, 1, 2) THEN 'no_answer' END,
       CASE WHEN i % 10 IN (0, 1, 2) THEN CAST(:now AS timestamptz) - interval '4 hours' END,
       CASE WHEN i % 10 IN (1, 2) THEN CAST(:now AS timestamptz) + ((i % 1000) - 500) * interval '1 minute' END,
       now(), now()
FROM generate_series(1, CAST(:n AS int)) i;

INSERT INTO contact_phones (contact_id, list_id, field_id, phone_type, position, raw, e164, timezones, tz_uncertain)
SELECT c.id, c.list_id, CAST(:phone_field AS bigint), 'mobile', 0, '', '+79' || lpad(c.id::text, 9, '0'),
       CASE WHEN c.id % 100 < 60 THEN ARRAY['Europe/Moscow'] WHEN c.id % 100 < 70 THEN ARRAY['Asia/Yekaterinburg']
            WHEN c.id % 100 < 80 THEN ARRAY['Asia/Novosibirsk'] WHEN c.id % 100 < 89 THEN ARRAY['Asia/Vladivostok']
            WHEN c.id % 100 = 89 THEN ARRAY['Asia/Kamchatka'] WHEN c.id % 100 < 95 THEN ARRAY[]::text[]
            ELSE ARRAY['Europe/Moscow', 'Asia/Yekaterinburg'] END,
       c.id % 100 >= 95
FROM contacts c;

INSERT INTO contact_phones (contact_id, list_id, field_id, phone_type, position, raw, e164, timezones, tz_uncertain)
SELECT c.id, c.list_id, CAST(:home_field AS bigint), 'home', 1, '', '+74' || lpad(c.id::text, 9, '0'),
       ARRAY['Europe/Moscow'], false
FROM contacts c WHERE c.id % 5 = 0;

INSERT INTO dnc_entries (list_id, number, is_prefix, comment, created_at)
SELECT CAST(:dnc AS bigint), '+79' || lpad(i::text, 9, '0'), false, '', now()
FROM generate_series(7, CAST(:n AS int), 97) i;

INSERT INTO dnc_entries (list_id, number, is_prefix, comment, created_at)
SELECT CAST(:dnc AS bigint), '+7' || (800 + i)::text, true, '', now() FROM generate_series(0, 99) i;

INSERT INTO attempts (campaign_id, contact_id, number, state, queued_at, hangup_cause, comment)
SELECT CAST(:campaign AS bigint), c.id, '+79' || lpad(c.id::text, 9, '0'), 'dialing', now(), '', ''
FROM contacts c WHERE c.id % 2000 = 3;
"""


@contextmanager
def captured(session: AsyncSession) -> Iterator[list[tuple[str, Any]]]:
    """The statements the session runs, as sent to the driver."""
    seen: list[tuple[str, Any]] = []

    def remember(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.append((statement, parameters))

    engine = session.bind.sync_engine  # type: ignore[union-attr]
    event.listen(engine, "before_cursor_execute", remember)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", remember)


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def explain(world: World, plan: CampaignPlan, now: datetime) -> tuple[set[str], list[str]]:
    """Index names used and node types of the hopper's main query (the pairs query)."""
    async with world.sessionmaker() as session, session.begin():
        with captured(session) as seen:
            await fill_hopper(session, plan, now, 100)
        statement, parameters = next((s, p) for s, p in reversed(seen) if "contact_phones" in s and "LIMIT" in s
                                     and "callbacks" not in s)
        conn = await session.connection()  # the hopper's planner settings hold in this transaction
        raw: Any = (await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters)).scalar()
    tree = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    nodes = list(_nodes(tree))
    indexes = {n["Index Name"] for n in nodes if "Index Name" in n}
    seq = [n["Relation Name"] for n in nodes if n["Node Type"] == "Seq Scan" and "Relation Name" in n]
    return indexes, seq


async def measure(world: World, plan: CampaignPlan, now: datetime, exclude: list[int] | None = None,
                  limit: int = 100) -> tuple[float, float, int]:
    times = []
    found = 0
    for _ in range(RUNS):
        async with world.sessionmaker() as session, session.begin():
            started = time.perf_counter()
            got = await fill_hopper(session, plan, now, limit, exclude or ())
            times.append((time.perf_counter() - started) * 1000)
            found = len(got)
            assert len({c.contact_id for c in got}) == len(got)
    return statistics.median(times[1:]), max(times[1:]), found


async def build(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[World, float, float]:
    """The million contacts and their indexes; returns the world and the seconds to generate and to index."""
    world = await make_world(sessionmaker, lists=2, max_attempts_per_contact=5, pause_between_attempts_s=600)
    async with sessionmaker() as session, session.begin():
        stray = ContactList(name="Чужой список")
        session.add(stray)
        await session.flush()
        dnc = (await session.execute(text("SELECT id FROM dnc_lists WHERE is_global"))).scalar_one()
        started = time.perf_counter()
        params = {"l1": world.list_ids[0], "l2": world.list_ids[1], "l3": stray.id, "n": N,
                  "city": str(world.city_field_id), "amount": str(world.amount_field_id),
                  "today": NOW.date(), "now": NOW, "phone_field": world.phone_field_id,
                  "home_field": world.home_field_id, "dnc": dnc, "campaign": world.campaign_id}
        for statement in GENERATE.split(";\n"):
            if statement.strip():
                await session.execute(text(statement), {k: v for k, v in params.items() if f":{k}" in statement})
        generated_s = time.perf_counter() - started
    async with sessionmaker() as session, session.begin():
        started = time.perf_counter()
        await create_indexes(session)
        for fid, ftype in ((world.city_field_id, FieldType.string), (world.amount_field_id, FieldType.decimal)):
            for name, expr in wanted_indexes(fid, ftype).items():
                await session.execute(text(f'CREATE INDEX "{name}" ON contacts ({expr})'))
        indexed_s = time.perf_counter() - started
    async with sessionmaker() as session:
        conn = await session.connection()
        await conn.exec_driver_sql("COMMIT")
        await conn.exec_driver_sql("VACUUM ANALYZE contacts, contact_phones, dnc_entries, attempts")
        assert await session.scalar(text("SELECT count(*) FROM contacts")) == N
        in_campaign = text("SELECT count(*) FROM contacts c JOIN campaign_lists l ON l.list_id = c.list_id "
                           "WHERE l.campaign_id = :c")
        assert await session.scalar(in_campaign, {"c": world.campaign_id}) == N * 19 // 20
    return world, generated_s, indexed_s


async def test_hopper_with_a_million_contacts(sessionmaker: async_sessionmaker[AsyncSession],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    world, generated_s, indexed_s = await build(sessionmaker)
    print(f"\n1,000,000 contacts generated in {generated_s:.1f} s, the hopper's indexes built in {indexed_s:.1f} s")
    print(f"{'fill_hopper(limit=100) unless said':48} {'median ms':>10} {'worst ms':>10} {'found':>6}")
    plan = await world.plan()

    async def case(name: str, p: CampaignPlan, now: datetime, **kw: Any) -> None:
        # the times are printed, not asserted (a test never asserts a speed; the query plans below are what keeps
        # the hopper fast at any size, and `dialer bench engine` measures it)
        median, worst, found = await measure(world, p, now, **kw)
        print(f"{name:48} {median:10.1f} {worst:10.1f} {found:6d}", flush=True)
        assert found == kw.get("limit", 100), name

    day = NOW                                             # 13:00 in Moscow: every zone open
    morning = NOW.replace(hour=4)                         # 07:00 in Moscow: only the eastern zones (31%)
    kamchatka = NOW.replace(hour=21, minute=30)           # only Kamchatka (1% of the phones, none in list 2)

    await case("default order, day", plan, day)
    indexes, seq = await explain(world, plan, day)
    assert "ix_contacts_due" in indexes and not {"contacts", "contact_phones"} & set(seq), (indexes, seq)
    await case("default order, day, 1000 excluded", plan, day, exclude=list(range(1, 3000, 3)))
    await case("default order, limit 1000", plan, day, limit=1000)
    await case("default order, morning (east only)", plan, morning)
    await case("default order, only Kamchatka open", plan, kamchatka)
    indexes, seq = await explain(world, plan, kamchatka)
    assert "ix_contact_phones_timezones" in indexes and not {"contacts", "contact_phones"} & set(seq), (indexes, seq)

    # one list only (the index order is used directly, no merge)
    async with sessionmaker() as session, session.begin():
        await session.execute(campaign_lists.delete().where(campaign_lists.c.list_id == world.list_ids[1]))
    await case("one list, day", await world.plan(), day)
    async with sessionmaker() as session, session.begin():
        await session.execute(campaign_lists.insert().values(campaign_id=world.campaign_id,
                                                             list_id=world.list_ids[1]))

    city, amount = str(world.city_field_id), str(world.amount_field_id)
    moscow = await world.selection("Москва", 50, conditions=[{"field": city, "op": "eq", "value": "Москва"}])
    await case("selection city = Москва (25%)", await world.plan(), day)
    # a small selection first (about 70 contacts of the top amount, sorted), then Moscow fills the rest
    top = await world.selection("Крупные", 90, conditions=[{"field": amount, "op": "ge", "value": 9999}],
                                sort=[{"field": amount, "dir": "desc"}])
    await case("small sorted selection, then Москва", await world.plan(), day)
    # a big selection sorted by a field: the compiled sort expression matches no index (see the report)
    await world.update(Selection, top, is_active=False)
    await world.update(Selection, moscow, is_active=False)
    await world.selection("Половина по сумме", 70, conditions=[{"field": amount, "op": "ge", "value": 5000}],
                          sort=[{"field": amount, "dir": "desc"}])
    await case("big selection sorted by a field (50%)", await world.plan(), day)

    for name, cap in (("dialable_count, exact", None), ("dialable_count, cap=10000", 10_000)):
        async with world.sessionmaker() as session, session.begin():
            started = time.perf_counter()
            dialable = await dialable_count(session, plan, day, cap=cap)
            print(f"{name:48} {(time.perf_counter() - started) * 1000:10.1f} {'':>10} {dialable:6d}")
        assert dialable == cap if cap else dialable > 700_000
