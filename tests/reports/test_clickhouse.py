"""The ClickHouse copy (issue #14 §4) on chdb, embedded as configured by default: the triggers fill the outbox in the
changing transaction, the copier moves it, and every report read from ClickHouse equals PostgreSQL's — on the
hand-made day with its local-day and time-zone edges, after updates, a batch sent twice and a deletion, and on what
the simulated engine wrote."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.models.enums import DialMode, OutcomeCategory
from dialer.reports import rollup, service
from dialer.reports.clickhouse import copier
from dialer.reports.clickhouse.client import Clickhouse, Embedded, Server
from dialer.reports.clickhouse.queries import Reader
from dialer.reports.period import Period, ReportFilter
from tests.engine.engine_world import NOW, Harness, engine_world, scenario
from tests.reports.data import Day, attempt, make_day, utc
from tests.reports.test_direction import add_inbound

MSK = ZoneInfo("Europe/Moscow")
SORTS = ("-id", "queued_at", "operator,-talk_ms", "-campaign", "outcome", "direction,number")


@pytest.fixture(scope="session")
def chdb(tmp_path_factory: pytest.TempPathFactory) -> Embedded:
    """One chdb session for the test process (importing and starting it is the slow part)."""
    return Embedded(Path(tmp_path_factory.mktemp("clickhouse")))


@pytest.fixture
async def ch(chdb: Embedded) -> AsyncIterator[Clickhouse]:
    found = Clickhouse(chdb, f"t_{uuid.uuid4().hex[:12]}")
    yield found
    await found.command(f"DROP DATABASE IF EXISTS {found.database}")


async def assert_same(maker: async_sessionmaker[AsyncSession], ch: Clickhouse, f: ReportFilter) -> None:
    """Every report of ``f`` from ClickHouse equals PostgreSQL's."""
    reader = Reader(ch)
    async with maker() as session:
        for name in ("outcomes", "operators", "states", "codes", "abandon"):
            report = getattr(service, name)
            assert await report(session, f, None, reader) == await report(session, f, None), (name, f.describe())
        for dimension in service.DIMENSIONS:
            assert await service.outcome_slices(session, f, dimension, reader) == \
                await service.outcome_slices(session, f, dimension), dimension
        for sort in SORTS:
            for outcome in (None, "answered", "error"):
                pg = await service.calls(session, f, None, outcome=outcome, page=1, per_page=4, sort=sort)
                got = await service.calls(session, f, None, outcome=outcome, page=1, per_page=4, sort=sort,
                                          ch=reader)
                assert got == pg, (sort, outcome)
        assert (await service.calls(session, f, None, outcome=None, page=2, per_page=3, sort="queued_at",
                                    ch=reader)).items == \
            (await service.calls(session, f, None, outcome=None, page=2, per_page=3, sort="queued_at")).items


def filters(day: date, now_days: int = 2, **kw: object) -> list[ReportFilter]:
    now = utc(day.year, day.month, day.day, 12) + timedelta(days=now_days)
    out = []
    for tz in ("Europe/Moscow", "UTC", "Asia/Kolkata"):  # Kolkata: +05:30, days cut inside UTC hours
        out.append(ReportFilter(period=Period(day, day, ZoneInfo(tz)), now=now, **kw))  # type: ignore[arg-type]
    out.append(ReportFilter(period=Period(day.replace(day=1), day + timedelta(days=3), MSK), now=now))
    return out


async def test_copy_through_the_outbox_answers_as_postgresql(sessionmaker: async_sessionmaker[AsyncSession],
                                                             ch: Clickhouse) -> None:
    await copier.start(sessionmaker, ch)  # triggers installed before the calls are written
    day = await make_day(sessionmaker)
    inbound = await add_inbound(sessionmaker, day)
    async with sessionmaker() as session:
        status = await copier.status(session)
    assert status["triggers"] and status["pending"] > 0 and status["oldest_at"] is not None
    sent = await copier.copy_all(sessionmaker, ch, size=7)  # several batches
    assert sent >= 20
    async with sessionmaker() as session:
        status = await copier.status(session)
    assert (status["pending"], status["last_error"]) == (0, "") and status["copied_rows"] == sent
    march_4 = date(2026, 3, 4)
    for f in filters(march_4):
        await assert_same(sessionmaker, ch, f)
    for kw in ({"direction": "inbound"}, {"operator_ids": (day.op1,)}, {"list_ids": (day.world.list_id,)},
               {"code_ids": (day.agreed, day.world.codes["busy"])}, {"campaign_ids": (day.world.campaign_id,)}):
        await assert_same(sessionmaker, ch, filters(march_4, **kw)[0])

    # A late code, a period closed, an attempt deleted: copied as new versions and a tombstone, counted once.
    async with sessionmaker() as session, session.begin():
        await session.execute(text("UPDATE attempts SET completion_code_id = :c WHERE id = :i"),
                              {"c": day.refused, "i": inbound[0]})
        await session.execute(text("UPDATE operator_state_log SET ended_at = started_at + interval '90 minutes'"
                                   " WHERE id = (SELECT max(id) FROM operator_state_log)"))
        await session.execute(text("DELETE FROM attempts WHERE id = :i"), {"i": inbound[1]})
    await copier.copy_all(sessionmaker, ch)
    # A batch ClickHouse received but whose outbox deletion was lost (a crash between the two): sent again.
    async with sessionmaker() as session, session.begin():
        await session.execute(text("UPDATE attempts SET comment = 'again' WHERE queued_at::date = '2026-03-04'"))
        again = (await session.execute(text("SELECT id, source, row_id, at FROM clickhouse_outbox"))).all()
    assert again
    await copier.copy_all(sessionmaker, ch)
    async with sessionmaker() as session, session.begin():
        for row in again:
            await session.execute(text("INSERT INTO clickhouse_outbox (id, source, row_id, at)"
                                       " VALUES (:i, :s, :r, :a)"),
                                  {"i": row[0], "s": row[1], "r": row[2], "a": row[3]})
    await copier.copy_all(sessionmaker, ch)
    for f in filters(march_4)[:2]:
        await assert_same(sessionmaker, ch, f)
    rows = await ch.rows(f"SELECT count() FROM {ch.table('attempts')} FINAL")
    async with sessionmaker() as session:
        assert rows[0][0] == await session.scalar(text("SELECT count(*) FROM attempts WHERE state = 'done'"))


async def test_clickhouse_connect_runs_the_same_sql(sessionmaker: async_sessionmaker[AsyncSession],
                                                    chdb: Embedded) -> None:
    """The server driver (clickhouse-connect, as for DIALER_CLICKHOUSE_URL) creates, fills and reads the copy with the
    same SQL text; here it reaches the test's own ClickHouse engine through clickhouse-connect's chdb DSN."""
    ch = Clickhouse(Server(f"chdb://{chdb.path}"), f"s_{uuid.uuid4().hex[:12]}")
    try:
        await copier.start(sessionmaker, ch)
        day = await make_day(sessionmaker)
        await add_inbound(sessionmaker, day)
        assert await copier.copy_all(sessionmaker, ch) >= 20
        for f in filters(date(2026, 3, 4))[:2]:
            await assert_same(sessionmaker, ch, f)
    finally:
        await ch.command(f"DROP DATABASE IF EXISTS {ch.database}")


async def test_off_removes_the_triggers_and_a_failure_is_shown(sessionmaker: async_sessionmaker[AsyncSession],
                                                               ch: Clickhouse) -> None:
    await copier.start(sessionmaker, ch)
    await make_day(sessionmaker)
    broken = Clickhouse(ch.driver, f"missing_{uuid.uuid4().hex[:8]}")  # no such database: the insert fails
    with pytest.raises(Exception) as failure:
        await copier.copy_batch(sessionmaker, broken, 100)
    await copier.record_error(sessionmaker, failure.value)
    async with sessionmaker() as session:
        status = await copier.status(session)
    assert status["pending"] > 0 and status["last_error"] and status["last_error_at"] is not None
    await copier.start(sessionmaker, None)  # DIALER_CLICKHOUSE=off
    async with sessionmaker() as session:
        status = await copier.status(session)
        assert not status["triggers"] and status["pending"] == 0
        await session.execute(text("UPDATE attempts SET comment = 'x'"))
        assert await session.scalar(text("SELECT count(*) FROM clickhouse_outbox")) == 0
        await session.rollback()
    # On again: the triggers come back and every row is enqueued, so the copy starts complete.
    await copier.start(sessionmaker, ch)
    await copier.copy_all(sessionmaker, ch)
    await assert_same(sessionmaker, ch, filters(date(2026, 3, 4))[0])
    # ClickHouse's data lost while the triggers stay: its tables are new at the next start, every row is sent again.
    await ch.command(f"DROP DATABASE {ch.database}")
    await copier.start(sessionmaker, ch)
    assert await copier.copy_all(sessionmaker, ch) >= 20
    await assert_same(sessionmaker, ch, filters(date(2026, 3, 4))[0])


async def test_the_api_reads_clickhouse_and_shows_the_lag(app: FastAPI, admin: httpx.AsyncClient,
                                                          ch: Clickhouse) -> None:
    maker = app.state.sessionmaker
    ready = getattr(app.state, "clickhouse_ready", None)
    if ready is not None:  # the app's own copier (the copy is off in tests) has looked at the triggers first
        await ready.wait()
    await copier.start(maker, ch)
    day = await make_day(maker)
    params = {"period": "custom", "date_from": "2026-03-04", "date_to": "2026-03-04"}
    before = (await admin.get("/api/reports/shift", params=params)).json()
    status = (await admin.get("/api/reports/clickhouse")).json()
    assert status["mode"] == "off" and status["triggers"] and status["pending"] > 0
    await copier.copy_all(maker, ch)
    app.state.clickhouse = ch
    assert (await admin.get("/api/reports/shift", params=params)).json() == before
    view = (await admin.get("/api/reports/codes/view", params=params | {"operator_ids": str(day.op2)})).json()
    assert view["report"]["total"] == 1
    status = (await admin.get("/api/reports/clickhouse")).json()
    assert (status["mode"], status["pending"], status["lag_s"]) == ("embedded", 0, 0.0)
    assert status["initial_load_complete"] and status["loaded_at"] is not None
    # A copy an hour behind (here: ClickHouse emptied, changes waiting since): the reports read PostgreSQL.
    await copier.truncate(ch)
    async with maker() as session, session.begin():
        await session.execute(text("UPDATE attempts SET comment = 'seen' WHERE state = 'done'"))
        await session.execute(text("UPDATE clickhouse_outbox SET created_at = now() - interval '1 hour'"))
    assert (await admin.get("/api/reports/outcomes", params=params)).json() == before["outcomes"]
    assert (await admin.get("/api/reports/clickhouse")).json()["lag_s"] >= 3600
    # ClickHouse failing its queries (here: the copy's database gone): every report answers from PostgreSQL.
    await copier.copy_all(maker, ch)
    app.state.clickhouse = Clickhouse(ch.driver, f"gone_{uuid.uuid4().hex[:8]}")
    for name in ("shift", "outcomes", "operators", "states", "codes", "abandon", "calls", "outcomes/slices"):
        extra = {"dimension": "region"} if name == "outcomes/slices" else {}
        answer = await admin.get(f"/api/reports/{name}", params=params | extra)
        assert answer.status_code == 200, (name, answer.text)
        if name == "shift":
            assert answer.json() == before
    operator = await admin.get("/api/reports/clickhouse", headers={"Authorization": "Bearer nope"})
    assert operator.status_code == 401


async def test_reports_read_postgresql_until_the_initial_load_is_complete(app: FastAPI, admin: httpx.AsyncClient,
                                                                          ch: Clickhouse) -> None:
    """Turning the copy on over existing calls enqueues them all with a fresh ``created_at``: the lag looks fine
    while ClickHouse holds part of them, so the reports wait for the initial load to complete."""
    maker = app.state.sessionmaker
    ready = getattr(app.state, "clickhouse_ready", None)
    if ready is not None:
        await ready.wait()
    await make_day(maker)
    params = {"period": "custom", "date_from": "2026-03-04", "date_to": "2026-03-04"}
    before = (await admin.get("/api/reports/outcomes", params=params)).json()
    assert before["kpi"]["attempts"] > 5
    await copier.start(maker, ch)  # the copy turned on: triggers, every row enqueued
    app.state.clickhouse = ch
    status = (await admin.get("/api/reports/clickhouse")).json()
    assert status["pending"] > 5 and status["lag_s"] < 300 and not status["initial_load_complete"]
    assert (await admin.get("/api/reports/outcomes", params=params)).json() == before
    assert await copier.copy_batch(maker, ch, 3) == 3  # part of the load copied
    async with maker() as session:
        f = ReportFilter(period=Period(date(2026, 3, 4), date(2026, 3, 4), MSK), now=utc(2026, 3, 6))
        partial = await service.outcomes(session, f, None, Reader(ch))
    assert partial.kpi.attempts < before["kpi"]["attempts"]  # what reading the copy now would answer
    assert (await admin.get("/api/reports/outcomes", params=params)).json() == before
    assert not (await admin.get("/api/reports/clickhouse")).json()["initial_load_complete"]
    await copier.copy_all(maker, ch)
    status = (await admin.get("/api/reports/clickhouse")).json()
    assert status["initial_load_complete"] and status["loaded_at"] is not None and status["pending"] == 0
    assert (await admin.get("/api/reports/outcomes", params=params)).json() == before


async def test_a_failed_truncation_is_retried(sessionmaker: async_sessionmaker[AsyncSession], ch: Clickhouse) -> None:
    """The copy off, an attempt deleted meanwhile, the copy on again: the triggers come back (the copier installs
    them before it reaches ClickHouse) but ClickHouse fails before its tables are emptied. The next start still
    empties them, so the deleted attempt is not counted."""
    await copier.start(sessionmaker, ch)
    await make_day(sessionmaker)
    await copier.copy_all(sessionmaker, ch)
    await copier.start(sessionmaker, None)  # off
    async with sessionmaker() as session, session.begin():
        await session.execute(text("DELETE FROM attempts WHERE id = (SELECT max(id) FROM attempts"
                                   " WHERE state = 'done')"))
    assert await copier.install_triggers(sessionmaker, True)  # on; then ClickHouse was unreachable
    async with sessionmaker() as session:
        assert not (await copier.status(session))["initial_load_complete"]
    await copier.start(sessionmaker, ch)  # the retry
    await copier.copy_all(sessionmaker, ch)
    rows = await ch.rows(f"SELECT count() FROM {ch.table('attempts')} FINAL")
    async with sessionmaker() as session:
        assert rows[0][0] == await session.scalar(text("SELECT count(*) FROM attempts WHERE state = 'done'"))
        assert (await copier.status(session))["initial_load_complete"]
    await assert_same(sessionmaker, ch, filters(date(2026, 3, 4))[0])


async def add_transfers(maker: async_sessionmaker[AsyncSession], day: Day) -> tuple[int, int]:
    """Two transferred calls on the 4th (before the call still in progress, so the rollups seal them): a blind one
    from Anna to Boris (Anna talks 60 s, lets go; Boris takes the customer 15 s later and talks 105 s), and one Anna
    consults Boris on and hands over (attended, at 50 s), Boris sends to a pool (requested at 80 s) and Anna takes
    back (at 100 s) until the hang-up at 150 s; besides, a transfer that failed (it moves nothing)."""
    async with maker() as session, session.begin():
        first = await attempt(session, day.world, day.contacts[0], utc(2026, 3, 4, 10, 15), OutcomeCategory.answered,
                              operator_id=day.op2, code_id=day.agreed, talk_s=180, wrap_s=7)
        second = await attempt(session, day.world, day.contacts[1], utc(2026, 3, 4, 11, 15),
                               OutcomeCategory.answered, operator_id=day.op1, code_id=day.refused, talk_s=150,
                               wrap_s=4)
        rows = []
        for attempt_id, kind, source, start, end, at, to, result in (
                (first, "operator", day.op1, day.op2, 60, 75, None, "connected"),
                (second, "attended", day.op1, day.op2, 30, 50, None, "connected"),
                (second, "pool", day.op2, day.op1, 80, 100, None, "connected"),
                (second, "operator", day.op1, day.op2, 140, None, 145, "failed")):
            connected = await session.scalar(text("SELECT connected_at FROM attempts WHERE id = :i"),
                                             {"i": attempt_id})
            rows.append({"a": attempt_id, "c": day.world.campaign_id, "k": kind, "f": source, "t": start,
                         "r": connected + timedelta(seconds=end),
                         "x": connected + timedelta(seconds=at) if at is not None else None,
                         "e": connected + timedelta(seconds=at if at is not None else to or 0), "res": result})
        for row in rows:
            await session.execute(text(
                "INSERT INTO call_transfers (attempt_id, campaign_id, kind, source, from_operator_id, to_operator_id,"
                " requested_at, connected_at, ended_at, result) VALUES (:a, :c, :k, 'panel', :f, :t, :r, :x, :e,"
                " :res)"), row)
    return first, second


async def test_a_transferred_call_is_split_between_its_operators(sessionmaker: async_sessionmaker[AsyncSession],
                                                                  ch: Clickhouse) -> None:
    """Each operator gets his part of a transferred call's talk and counts it handled, from PostgreSQL's raw
    tables, its rollups and ClickHouse alike; the outcomes count the transferred calls, the call list their
    transfers."""
    await copier.start(sessionmaker, ch)
    day = await make_day(sessionmaker)
    f = filters(date(2026, 3, 4))[0]
    async with sessionmaker() as session:
        before = {r.operator_id: r for r in (await service.operators(session, f, None)).rows}
    first, second = await add_transfers(sessionmaker, day)
    await copier.copy_all(sessionmaker, ch)
    async with sessionmaker() as session, session.begin():
        marks = await rollup.refresh(session, utc(2026, 3, 7))
    assert marks.attempts >= utc(2026, 3, 4, 12)  # both transferred calls are in the rollups
    async with sessionmaker() as session:
        raw = await service.operators(session, f, None)
        assert await service.operators(session, f, marks) == raw
        assert await service.operators(session, f, None, Reader(ch)) == raw
        after = {r.operator_id: r for r in raw.rows}
        # Anna: 60 s of the first call; 50 + 50 s of the second (whose last operator she is), one handled call
        # for each of her three segments. Boris: 105 s of the first, 30 s of the second.
        assert (after[day.op1].handled - before[day.op1].handled, after[day.op1].talk_ms - before[day.op1].talk_ms) \
            == (3, 160_000)
        assert (after[day.op2].handled - before[day.op2].handled, after[day.op2].talk_ms - before[day.op2].talk_ms) \
            == (2, 135_000)
        # Filtered to one operator: only his segments, whoever the attempt's last operator is.
        for op in (day.op1, day.op2):
            one = dataclasses.replace(f, operator_ids=(op,))
            rows = (await service.operators(session, one, None)).rows
            assert [(r.operator_id, r.handled, r.talk_ms) for r in rows] == \
                [(op, after[op].handled, after[op].talk_ms)]
            assert await service.operators(session, one, marks) == await service.operators(session, one, None,
                                                                                             Reader(ch))
        outcomes = await service.outcomes(session, f, marks)
        assert outcomes.kpi.transferred == 2
        assert outcomes == await service.outcomes(session, f, None, Reader(ch))
        for reader in (None, Reader(ch)):
            page = await service.calls(session, f, None, outcome=None, page=1, per_page=50, sort="-id", ch=reader)
            assert {i.id: i.transfers for i in page.items if i.transfers} == {first: 1, second: 2}


@pytest.fixture
def clickhouse_down(monkeypatch: pytest.MonkeyPatch) -> str:
    """DIALER_CLICKHOUSE=server with a URL to a closed port (nothing listens there)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("DIALER_CLICKHOUSE", "server")
    monkeypatch.setenv("DIALER_CLICKHOUSE_URL", url)
    monkeypatch.setenv("DIALER_CLICKHOUSE_EVERY_S", "0.2")
    return url


async def test_an_unreachable_server_does_not_stop_the_api(clickhouse_down: str, app: FastAPI,
                                                           admin: httpx.AsyncClient) -> None:
    """The API starts, the copier keeps the triggers and shows the error, the reports answer from PostgreSQL."""
    maker = app.state.sessionmaker
    status: dict[str, object] = {}
    for _ in range(300):  # the copier's first attempt: well under a second; generous slack
        status = (await admin.get("/api/reports/clickhouse")).json()
        if status["last_error"]:
            break
        await asyncio.sleep(0.1)
    assert status["mode"] == "server" and status["triggers"] and status["last_error"], status
    assert "ClickhouseError" in str(status["last_error"]) and status["last_error_at"] is not None
    assert not status["initial_load_complete"]
    await make_day(maker)
    params = {"period": "custom", "date_from": "2026-03-04", "date_to": "2026-03-04"}
    answer = await admin.get("/api/reports/outcomes", params=params)
    assert answer.status_code == 200, answer.text
    f = ReportFilter(period=Period(date(2026, 3, 4), date(2026, 3, 4), MSK), now=utc(2026, 3, 6))
    async with maker() as session:
        expected = await service.outcomes(session, f, None)
    assert answer.json()["kpi"] == expected.kpi.model_dump(mode="json") and expected.kpi.attempts > 5
    assert (await admin.get("/api/reports/shift", params=params)).status_code == 200


@pytest.mark.slow
async def test_what_the_engine_wrote_reads_the_same_from_clickhouse(
        sessionmaker: async_sessionmaker[AsyncSession], ch: Clickhouse) -> None:
    await copier.start(sessionmaker, ch)
    world = await engine_world(sessionmaker, operators=4, mode=DialMode.predictive, contacts=80,
                               dial_params={"abandon_cap_pct": 20.0, "max_ratio": 4.0})
    await world.start()
    h = Harness(sessionmaker, scenario(human=0.45, machine=0.1, busy=0.15, failed=0.05, rejected=0.05, operators=4))
    async with h.running():
        await h.advance(1800)
    await copier.copy_all(sessionmaker, ch)
    day = NOW.astimezone(MSK).date()
    f = ReportFilter(period=Period(day, day, MSK), now=NOW + timedelta(hours=2))
    async with sessionmaker() as session:
        assert (await service.outcomes(session, f, None)).kpi.attempts > 20
    await assert_same(sessionmaker, ch, f)
