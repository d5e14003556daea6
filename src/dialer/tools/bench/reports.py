"""``dialer bench reports``: every report over a day, a month and a year of generated calls, through the hourly
rollups and through the naive GROUP BY over the raw tables, in the same run on the same data.

A scratch database on the configured server gets N finished attempts spread over a year (working hours in Moscow,
five campaigns, three lists, a mix of the six outcomes, operators with talk and wrap-up) and the operators' state
periods their calls imply (ready between calls, reserved, in call, wrap-up, a lunch pause a day). The rollups are
built from nothing (timed), then each report runs once untimed and then ``repeats`` times per period both ways
(half as often for the year); the figures are p95 milliseconds, and ``identical`` says whether every answer
equals the baseline's. The database is dropped at the end.

When ``chdb`` is installed (or ``clickhouse=True``) the same run also copies the attempts and periods to an embedded
ClickHouse in a temporary directory through the outbox and the copier the product uses (timed: ``clickhouse_copy_s``)
and times the same reports read from it: ``clickhouse`` has the shape of ``reports``, ``clickhouse_identical`` says
whether every answer equals the baseline's.
"""

from __future__ import annotations

import asyncio
import importlib.util
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from dialer.stats import percentile
from dialer.tools.bench.common import bench_database, peak_rss_mb, run_tag

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from dialer.reports.clickhouse.queries import Reader
    from dialer.reports.facts import Sealed
    from dialer.reports.period import ReportFilter

MSK = ZoneInfo("Europe/Moscow")
CAMPAIGNS = 5
LISTS = 3
LAST_DAY = date(2026, 11, 30)
DAYS = 365
SHIFT_H = 9  # 09:00–18:00 Moscow, 06:00–15:00 UTC
#: Share of attempts answered by a person and connected to an operator; the rest spread over the other outcomes.
ANSWERED = 0.35


async def _admin(server_url: str) -> Any:
    import asyncpg

    from dialer.db import asyncpg_dsn, with_database

    return await asyncpg.connect(asyncpg_dsn(with_database(server_url, "postgres")))


async def _config(session: AsyncSession, operators: int) -> dict[str, Any]:
    from sqlalchemy import insert, select

    from dialer.models import (
        Campaign,
        CompletionCode,
        CompletionCodeGroup,
        ContactList,
        Operator,
        OperatorPool,
        Strategy,
        SuccessfulCode,
        campaign_lists,
        completion_code_group_members,
        pool_operators,
    )
    from dialer.models.enums import OutcomeCategory

    system = {c.system_key: c.id for c in (await session.scalars(select(CompletionCode))).all() if c.system_key}
    answered_codes = []
    for name in ("Согласен", "Отказ", "Перезвонить", "Думает"):
        code = CompletionCode(name=f"Бенч: {name}", category=OutcomeCategory.answered)
        session.add(code)
        await session.flush()
        answered_codes.append(code.id)
    session.add(SuccessfulCode(code_id=answered_codes[0]))
    group = CompletionCodeGroup(name="Бенч: коды")
    strategy = Strategy(name="Бенч: стратегия")
    pool = OperatorPool(name="Бенч: смена")
    lists = [ContactList(name=f"Бенч: список {i + 1}") for i in range(LISTS)]
    session.add_all([group, strategy, pool, *lists])
    await session.flush()
    await session.execute(insert(completion_code_group_members), [
        {"group_id": group.id, "code_id": c} for c in [*answered_codes, *system.values()]])
    campaigns = [Campaign(name=f"Бенч: кампания {i + 1}", strategy_id=strategy.id, completion_code_group_id=group.id,
                          dial_params={}) for i in range(CAMPAIGNS)]
    ops = [Operator(name=f"Оператор {i + 1:03d}") for i in range(operators)]
    session.add_all([*campaigns, *ops])
    await session.flush()
    await session.execute(insert(campaign_lists), [{"campaign_id": c.id, "list_id": lists[i % LISTS].id}
                                                   for i, c in enumerate(campaigns)])
    await session.execute(insert(pool_operators), [{"pool_id": pool.id, "operator_id": o.id} for o in ops])
    return {"system": system, "answered_codes": answered_codes, "campaigns": [c.id for c in campaigns],
            "lists": [x.id for x in lists], "operators": [o.id for o in ops]}


async def generate(session: AsyncSession, attempts: int, operators: int) -> dict[str, Any]:
    """The configuration, the contacts, ``attempts`` attempts and the operators' periods, by set-based SQL."""
    from sqlalchemy import text

    cfg = await _config(session, operators)
    first = LAST_DAY - timedelta(days=DAYS - 1)
    start = datetime.combine(first, datetime.min.time(), UTC) + timedelta(hours=6)  # 09:00 Moscow
    contacts = max(1000, attempts // 3)
    lists = cfg["lists"]
    await session.execute(text(
        "INSERT INTO contacts (list_id, data, tags, status, attempts_total, attempts_today, created_at, updated_at)"
        " SELECT (CAST(:lists AS bigint[]))[1 + g % :n], '{}', '{}', 'in_progress', 0, 0, now(), now()"
        " FROM generate_series(1, :contacts) g"), {"lists": lists, "n": len(lists), "contacts": contacts})
    first_contact = await session.scalar(text("SELECT min(id) FROM contacts"))
    answered = int(attempts * ANSWERED)
    # Answered calls: per operator and working day a timetable of calls (one every ``cycle`` seconds).
    per_op_day = max(1, answered // (operators * DAYS))
    cycle = SHIFT_H * 3600 // per_op_day
    jitter = max(1, cycle // 4)
    sys = cfg["system"]
    await session.execute(text(
        "INSERT INTO attempts (campaign_id, contact_id, number, caller_id, state, outcome, operator_id,"
        " completion_code_id, queued_at, dialed_at, ringing_at, answered_at, connected_at, hung_up_at,"
        " wrap_up_ended_at, hangup_cause, comment)"
        " SELECT (CAST(:campaigns AS bigint[]))[1 + (o + k) % :nc], :c0 + (hashint % :contacts),"
        " '+7916' || lpad((hashint % 10000000)::text, 7, '0'), '+7495000000' || (o % 5), 'done', 'answered',"
        " (CAST(:ops AS bigint[]))[o], (CAST(:codes AS bigint[]))[1 + hashint % 4], q, q + interval '1 second',"
        " q + interval '3 seconds', q + interval '10 seconds', q + interval '12 seconds',"
        " q + interval '12 seconds' + talk, q + interval '12 seconds' + talk + wrap, 'normal', ''"
        " FROM generate_series(0, :days - 1) d, generate_series(1, :nops) o, generate_series(0, :per - 1) k,"
        " LATERAL (SELECT abs(hashtext(d || ':' || o || ':' || k)) AS hashint) h,"
        f" LATERAL (SELECT CAST(:start AS timestamptz) + d * interval '1 day' + (k * {cycle} + h.hashint % {jitter})"
        " * interval '1 second' AS q,"
        f" ((20 + h.hashint % {max(1, cycle // 2 - 60)}) * interval '1 second') AS talk,"
        " ((3 + h.hashint % 25) * interval '1 second') AS wrap) t"),
        {"campaigns": cfg["campaigns"], "nc": CAMPAIGNS, "c0": first_contact, "contacts": contacts,
         "ops": cfg["operators"], "codes": cfg["answered_codes"], "days": DAYS, "nops": operators,
         "per": per_op_day, "start": start})
    # The other outcomes, at random moments of the working day.
    rest = attempts - per_op_day * operators * DAYS
    await session.execute(text(
        "INSERT INTO attempts (campaign_id, contact_id, number, caller_id, state, outcome, completion_code_id,"
        " queued_at, dialed_at, ringing_at, answered_at, hung_up_at, hangup_cause, comment)"
        " SELECT (CAST(:campaigns AS bigint[]))[1 + g % :nc], :c0 + (g::bigint * 7919 % :contacts),"
        " '+7926' || lpad((g % 10000000)::text, 7, '0'), '+7495000000' || (g % 5), 'done', x.outcome,"
        " x.code, q, q + interval '1 second', q + interval '3 seconds',"
        " CASE WHEN x.outcome = 'abandoned' THEN q + interval '10 seconds' END, q + interval '28 seconds',"
        " x.outcome, ''"
        " FROM generate_series(1, :rest) g,"
        " LATERAL (SELECT CAST(:start AS timestamptz) + (g % :days) * interval '1 day'"
        f" + ((g::bigint * 104729) % {SHIFT_H * 3600}) * interval '1 second' AS q) t,"
        " LATERAL (SELECT CASE WHEN g % 20 = 0 THEN 'abandoned' WHEN g % 20 < 11 THEN 'no_answer'"
        " WHEN g % 20 < 16 THEN 'busy' WHEN g % 20 < 18 THEN 'rejected' ELSE 'error' END AS outcome) o,"
        f" LATERAL (SELECT o.outcome, CASE o.outcome WHEN 'abandoned' THEN {int(sys['abandoned'])}"
        f" WHEN 'no_answer' THEN {int(sys['no_answer'])} WHEN 'busy' THEN {int(sys['busy'])}"
        f" WHEN 'rejected' THEN {int(sys['rejected'])} ELSE {int(sys['error'])} END AS code) x"),
        {"campaigns": cfg["campaigns"], "nc": CAMPAIGNS, "c0": first_contact, "contacts": contacts, "rest": rest,
         "start": start, "days": DAYS})
    # The operators' periods their calls imply: ready until the call is offered, reserved until connected, in call,
    # wrap-up; the middle call of the day is preceded by a lunch pause instead of ready.
    await session.execute(text(
        "INSERT INTO operator_state_log (operator_id, state, reason, campaign_id, attempt_id, started_at, ended_at)"
        " SELECT operator_id, s.state, s.reason, campaign_id, CASE WHEN s.state IN ('reserved', 'in_call',"
        " 'wrap_up') THEN id END, s.a, s.b FROM ("
        "  SELECT a.*, row_number() OVER w AS n, count(*) OVER (PARTITION BY operator_id, queued_at::date) AS day_n,"
        "  coalesce(lag(wrap_up_ended_at) OVER w, date_trunc('day', queued_at) + interval '6 hours') AS free_from"
        "  FROM attempts a WHERE operator_id IS NOT NULL"
        "  WINDOW w AS (PARTITION BY operator_id, queued_at::date ORDER BY queued_at)) x,"
        " LATERAL (VALUES (CASE WHEN n = day_n / 2 + 1 THEN 'paused' ELSE 'ready' END,"
        "  CASE WHEN n = day_n / 2 + 1 THEN 'Обед' ELSE '' END, least(free_from, answered_at), answered_at),"
        "  ('reserved', '', answered_at, connected_at), ('in_call', '', connected_at, hung_up_at),"
        "  ('wrap_up', '', hung_up_at, wrap_up_ended_at)) AS s(state, reason, a, b)"))
    await session.execute(text("UPDATE contacts SET status = 'new' WHERE id % 4 = 0"))
    return {"contacts": contacts, "operators": operators, "calls_per_operator_day": per_op_day,
            "first_day": first.isoformat(), "last_day": LAST_DAY.isoformat()}


def _filters(now: datetime) -> dict[str, ReportFilter]:
    from dialer.reports.period import Period, ReportFilter

    day = LAST_DAY - timedelta(days=14)
    month_last = LAST_DAY
    month_first = month_last.replace(day=1)
    return {
        "day": ReportFilter(period=Period(day, day, MSK), now=now),
        "month": ReportFilter(period=Period(month_first, month_last, MSK), now=now),
        "year": ReportFilter(period=Period(LAST_DAY - timedelta(days=DAYS - 1), LAST_DAY, MSK), now=now),
    }


Report = Callable[..., Awaitable[Any]]


def _reports() -> dict[str, Report]:
    from dialer.reports import service

    async def calls(session: AsyncSession, f: ReportFilter, sealed: Sealed | None, ch: Reader | None = None) -> Any:
        return await service.calls(session, f, sealed, outcome=None, page=1, per_page=50, sort="-id", ch=ch)

    return {"outcomes": service.outcomes, "operators": service.operators, "states": service.states,
            "codes": service.codes, "abandon": service.abandon, "calls": calls, "shift": service.shift}


async def _to_clickhouse(db: Any, result: dict[str, Any], where: str) -> Any:
    """Every row through the outbox into an embedded ClickHouse under ``where``; the reader of the copy."""
    from pathlib import Path

    from dialer.reports.clickhouse import copier
    from dialer.reports.clickhouse.client import Clickhouse, Embedded
    from dialer.reports.clickhouse.queries import Reader

    ch = Clickhouse(Embedded(Path(where)), "bench")
    t0 = time.perf_counter()
    await copier.create_schema(ch)
    async with db.maker() as session, session.begin():
        await copier.backfill(session)
    sent = await copier.copy_all(db.maker, ch, size=50_000)
    await ch.command(f"OPTIMIZE TABLE {ch.table('attempts')} FINAL")
    await ch.command(f"OPTIMIZE TABLE {ch.table('periods')} FINAL")
    result["clickhouse_copy_s"] = round(time.perf_counter() - t0, 1)
    result["clickhouse_rows"] = sent
    return Reader(ch)


async def bench_reports(attempts: int, *, repeats: int = 5, database_url: str | None = None,
                        keep: bool = False, clickhouse: bool | None = None) -> dict[str, Any]:
    from sqlalchemy import text

    from dialer.config import get_settings
    from dialer.db import resolve_url, with_database
    from dialer.migrate import prepare_database
    from dialer.reports import rollup
    from dialer.reports.clickhouse.client import Embedded

    settings = get_settings()
    server = database_url or await asyncio.to_thread(resolve_url, settings)
    if not server:
        raise RuntimeError("no database server configured")
    name = f"dialer_bench_reports_{run_tag('_')}"
    conn = await _admin(server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = with_database(server, name)
    operators = max(10, min(100, attempts // 100_000))
    result: dict[str, Any] = {"benchmark": "reports", "attempts": attempts, "database": name if keep else None}
    if clickhouse is None:
        clickhouse = importlib.util.find_spec("chdb") is not None
    scratch = tempfile.TemporaryDirectory(prefix="dialer-bench-clickhouse-") if clickhouse else None
    reader: Reader | None = None
    try:
        await prepare_database(url, settings)
        async with bench_database(pool_size=2, settings=settings, database_url=url) as db:
            t0 = time.perf_counter()
            async with db.maker() as session, session.begin():
                data = await generate(session, attempts, operators)
            result["data"] = data
            result["generate_s"] = round(time.perf_counter() - t0, 1)
            async with db.engine.connect() as c:
                await (await c.execution_options(isolation_level="AUTOCOMMIT")).execute(text("VACUUM ANALYZE"))
            now = datetime.combine(LAST_DAY + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=12)
            t0 = time.perf_counter()
            async with db.maker() as session, session.begin():
                sealed = await rollup.refresh(session, now)
            result["rollup_build_s"] = round(time.perf_counter() - t0, 1)
            async with db.maker() as session:
                result["rows"] = {t: int(await session.scalar(text(f"SELECT count(*) FROM {t}")) or 0) for t in (
                    "attempts", "operator_state_log", "report_attempt_hours", "report_outcome_hours",
                    "report_operator_days", "report_state_hours", "report_state_days")}
            async with db.engine.connect() as c:
                await (await c.execution_options(isolation_level="AUTOCOMMIT")).execute(text("VACUUM ANALYZE"))
            reader = await _to_clickhouse(db, result, scratch.name) if scratch is not None else None
            reports: dict[str, dict[str, float]] = {}
            baseline: dict[str, dict[str, float]] = {}
            on_ch: dict[str, dict[str, float]] = {}
            identical = True
            ch_identical = True
            differing: list[str] = []
            for report_name, report in _reports().items():
                reports[report_name], baseline[report_name], on_ch[report_name] = {}, {}, {}
                for span, f in _filters(now).items():
                    fast: list[float] = []
                    slow: list[float] = []
                    copy: list[float] = []
                    async with db.maker() as session:  # one untimed run each way: caches warm alike
                        await report(session, f, sealed)
                        await report(session, f, None)
                        if reader is not None:
                            await report(session, f, None, reader)
                    for _ in range(repeats if span != "year" else max(2, repeats // 2)):
                        async with db.maker() as session:
                            t0 = time.perf_counter()
                            rolled = await report(session, f, sealed)
                            fast.append((time.perf_counter() - t0) * 1000)
                            t0 = time.perf_counter()
                            raw = await report(session, f, None)
                            slow.append((time.perf_counter() - t0) * 1000)
                            if reader is not None:
                                t0 = time.perf_counter()
                                read = await report(session, f, None, reader)
                                copy.append((time.perf_counter() - t0) * 1000)
                                if read != raw:
                                    ch_identical = False
                                    differing.append(f"clickhouse:{report_name}/{span}")
                        if rolled != raw:
                            identical = False
                            differing.append(f"{report_name}/{span}")
                    reports[report_name][f"{span}_ms"] = round(percentile(fast, 0.95), 1)
                    baseline[report_name][f"{span}_ms"] = round(percentile(slow, 0.95), 1)
                    if copy:
                        on_ch[report_name][f"{span}_ms"] = round(percentile(copy, 0.95), 1)
            result.update(reports=reports, baseline=baseline, identical=identical, differing=differing,
                          repeats=repeats, peak_rss_mb=peak_rss_mb())
            if reader is not None:
                result.update(clickhouse=on_ch, clickhouse_identical=ch_identical)
    finally:
        if reader is not None and isinstance(reader.ch.driver, Embedded):
            reader.ch.driver.close()
        if scratch is not None:
            scratch.cleanup()
        if not keep:
            conn = await _admin(server)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()
    return result


async def bench_triggers(operators: int = 200, contacts: int = 200_000, *, seconds: float = 60.0,
                         rounds: int = 2) -> dict[str, Any]:
    """``dialer bench engine`` with and without the ClickHouse outbox's triggers, alternating (off, on, off, on …)
    on one scratch database, so the load of the machine falls on both alike. With the triggers on, every finished
    attempt and every operator's period adds an outbox row in the journal's transaction (no copier runs: what is
    measured is the commit path). Returns each run's figures and the medians of attempts/s and p99 decision time."""
    import statistics

    from dialer.config import get_settings
    from dialer.db import make_engine, make_sessionmaker, resolve_url, with_database
    from dialer.migrate import prepare_database
    from dialer.reports.clickhouse import copier
    from dialer.tools.bench.engine import bench_engine

    settings = get_settings()
    server = await asyncio.to_thread(resolve_url, settings)
    name = f"dialer_bench_triggers_{run_tag('_')}"
    conn = await _admin(server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = with_database(server, name)
    runs: list[dict[str, Any]] = []
    try:
        await prepare_database(url, settings)
        engine = make_engine(url, pool_size=2)
        maker = make_sessionmaker(engine)
        try:
            for i in range(rounds * 2):
                on = i % 2 == 1
                await copier.install_triggers(maker, on)
                figures = await bench_engine(operators, contacts, seconds=seconds, database_url=url,
                                             settings=settings, seed=1 + i // 2)
                async with maker() as session:
                    outbox = int(await session.scalar(text("SELECT count(*) FROM clickhouse_outbox")) or 0)
                runs.append({"triggers": on, "attempts_per_s": figures["attempts_per_s"],
                             "p99_decision_ms": figures["p99_decision_ms"], "attempts": figures["attempts"],
                             "journal_flushes": figures["journal_flushes"], "outbox_rows": outbox})
            await copier.install_triggers(maker, False)
        finally:
            await engine.dispose()
    finally:
        conn = await _admin(server)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    def median(on: bool, key: str) -> float:
        return round(statistics.median(r[key] for r in runs if r["triggers"] is on), 2)

    return {"benchmark": "engine with and without the ClickHouse outbox triggers", "operators": operators,
            "contacts": contacts, "seconds": seconds, "runs": runs,
            "without": {"attempts_per_s": median(False, "attempts_per_s"),
                        "p99_decision_ms": median(False, "p99_decision_ms")},
            "with": {"attempts_per_s": median(True, "attempts_per_s"),
                     "p99_decision_ms": median(True, "p99_decision_ms")}}


if __name__ == "__main__":  # python -m dialer.tools.bench.reports triggers [operators contacts seconds rounds]
    import json
    import sys

    if sys.argv[1:2] != ["triggers"]:
        raise SystemExit("usage: python -m dialer.tools.bench.reports triggers [operators contacts seconds rounds]")
    numbers = [float(x) for x in sys.argv[2:6]]
    defaults = [200, 200_000, 60.0, 2]
    ops, people, secs, times = [*numbers, *defaults[len(numbers):]]
    print(json.dumps(asyncio.run(bench_triggers(int(ops), int(people), seconds=secs, rounds=int(times))), indent=2))
