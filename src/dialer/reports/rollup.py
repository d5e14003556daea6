"""Keeps the hourly rollups sealed up to the last complete hour, from the reports' side.

Nothing here runs in the engine's journal: the rollups are rebuilt hour by hour from the raw tables, at most once
per hour (the first report asked for after an hour has passed does it; ``dialer bench reports`` and
``dialer reports rollup`` call it directly). An hour is sealed when it lies more than :data:`LAG` in the past and no
attempt queued in it or later is still live; each refresh also redoes the last :data:`RELOOK` before the old seal,
so a result recorded late (a conversation a crash cut off, coded by a supervisor the next morning) is counted.
Until an hour is sealed, reports read it from the raw tables, so they are exact either way.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.reports.facts import Sealed, Sql, floor_hour, raw_attempt_facts, raw_state_facts
from dialer.reports.period import ReportSettings

LAG = timedelta(minutes=10)
RELOOK = timedelta(hours=24)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: pg_advisory_xact_lock key: one refresh at a time across processes.
LOCK_KEY = 0x5EB0_0001


async def sealed(session: AsyncSession, tz: str | None = None) -> Sealed:
    """The marks; the day rollups' are those of ``tz`` (the centre's zone by default)."""
    tz = tz or ReportSettings().time_zone
    result = await session.execute(text("SELECT name, sealed_until FROM report_rollup_marks"))
    rows: dict[str, datetime] = {str(name): until for name, until in result.all()}
    days = rows.get(f"days:{tz}")
    return Sealed(attempts=rows.get("attempts", EPOCH), states=rows.get("states", EPOCH),
                  days=days if days is not None and days > EPOCH else None, days_tz=tz if days else None)


async def _boundaries(session: AsyncSession, now: datetime) -> tuple[datetime, datetime]:
    target = floor_hour(now - LAG)
    live = await session.scalar(text("SELECT min(queued_at) FROM attempts WHERE state <> 'done'"))
    attempts = min(target, floor_hour(live)) if live is not None else target
    return attempts, target


def is_due(current: Sealed, now: datetime) -> bool:
    target = floor_hour(now - LAG)
    return current.attempts < target or current.states < target or current.days is None


async def refresh(session: AsyncSession, now: datetime) -> Sealed:
    """Seal every hour that can be sealed now; returns the new marks (the old ones if another process is at it)."""
    if not await session.scalar(text(f"SELECT pg_try_advisory_xact_lock({LOCK_KEY})")):
        return await sealed(session)
    current = await sealed(session)
    attempts_to, states_to = await _boundaries(session, now)
    if current.attempts < attempts_to:
        since = await _since(session, current.attempts, "SELECT min(queued_at) FROM attempts")
        if since is not None and since < attempts_to:
            await session.execute(text("DELETE FROM report_attempt_hours WHERE hour >= :lo AND hour < :hi"),
                                  {"lo": since, "hi": attempts_to})
            sql = Sql()
            body = raw_attempt_facts(sql, None, since, attempts_to)
            await session.execute(text(
                "INSERT INTO report_attempt_hours (hour, campaign_id, list_id, operator_id, code_id, outcome,"
                f" direction, attempts, handled, talk_ms, wrap_ms) {body}"), sql.params)
            await session.execute(text("DELETE FROM report_outcome_hours WHERE hour >= :lo AND hour < :hi"),
                                  {"lo": since, "hi": attempts_to})
            await session.execute(text(
                "INSERT INTO report_outcome_hours (hour, campaign_id, list_id, code_id, outcome, direction, attempts,"
                " handled, talk_ms, wrap_ms) SELECT hour, campaign_id, list_id, code_id, outcome, direction,"
                " sum(attempts), sum(handled), sum(talk_ms), sum(wrap_ms) FROM report_attempt_hours"
                " WHERE hour >= :lo AND hour < :hi GROUP BY 1, 2, 3, 4, 5, 6"), {"lo": since, "hi": attempts_to})
        await _mark(session, "attempts", attempts_to)
    if current.states < states_to:
        since = await _since(session, current.states, "SELECT min(started_at) FROM operator_state_log")
        if since is not None and since < states_to:
            await session.execute(text("DELETE FROM report_state_hours WHERE hour >= :lo AND hour < :hi"),
                                  {"lo": since, "hi": states_to})
            sql = Sql()
            body = raw_state_facts(sql, None, since, states_to, now)
            await session.execute(text(
                f"INSERT INTO report_state_hours (hour, operator_id, state, reason, ms, first_at, last_at) {body}"),
                sql.params)
        await _mark(session, "states", states_to)
    await _seal_days(session, await sealed(session))
    return await sealed(session)


def _local_midnight(moment: datetime, tz: ZoneInfo) -> datetime:
    local = moment.astimezone(tz)
    return datetime.combine(local.date(), datetime.min.time(), tz).astimezone(UTC)


def _whole_hours(tz: ZoneInfo, lo: datetime, hi: datetime) -> bool:
    """Whether every local midnight in ``[lo, hi)`` is a whole UTC hour: then hours add up to local days."""
    day = lo
    while day < hi:
        if day.minute or day.second:
            return False
        day = _local_midnight(day + timedelta(hours=26), tz)
    return True


async def _seal_days(session: AsyncSession, marks: Sealed) -> None:
    """Fold whole sealed local days of the centre's zone from the hourly rollups into the day rollups."""
    name = ReportSettings().time_zone
    tz = ZoneInfo(name)
    days_to = _local_midnight(min(marks.attempts, marks.states), tz)
    old = marks.days if marks.days_tz == name and marks.days is not None else None
    if old is not None and old >= days_to:
        return
    if old is not None:
        since = _local_midnight(old - RELOOK - timedelta(hours=1), tz)
    else:
        # The centre's zone is new (or changed): days of another zone would overlap these, so they go.
        await session.execute(text("DELETE FROM report_rollup_marks WHERE name LIKE 'days:%'"))
        await session.execute(text("DELETE FROM report_operator_days"))
        await session.execute(text("DELETE FROM report_state_days"))
        first = await session.scalar(text("SELECT least((SELECT min(hour) FROM report_attempt_hours),"
                                          " (SELECT min(hour) FROM report_state_hours))"))
        if first is None:
            await _mark(session, f"days:{name}", days_to)
            return
        since = _local_midnight(first, tz)
    if since >= days_to or not _whole_hours(tz, since, days_to):
        return  # a zone with a fractional offset: reports read whole hours instead
    span = {"lo": since, "hi": days_to, "tz": name}
    day = "(date_trunc('day', hour AT TIME ZONE :tz) AT TIME ZONE :tz)"
    for table in ("report_operator_days", "report_state_days"):
        await session.execute(text(f"DELETE FROM {table} WHERE day >= :lo AND day < :hi"), span)
    await session.execute(text(
        "INSERT INTO report_operator_days (day, operator_id, campaign_id, code_id, outcome, direction, attempts,"
        f" handled, talk_ms, wrap_ms) SELECT {day}, operator_id, campaign_id, code_id, outcome, direction,"
        " sum(attempts), sum(handled), sum(talk_ms), sum(wrap_ms) FROM report_attempt_hours"
        " WHERE hour >= :lo AND hour < :hi AND operator_id <> 0 GROUP BY 1, 2, 3, 4, 5, 6"), span)
    await session.execute(text(
        f"INSERT INTO report_state_days (day, operator_id, state, reason, ms, first_at, last_at) SELECT {day},"
        " operator_id, state, reason, sum(ms), min(first_at), max(last_at) FROM report_state_hours"
        " WHERE hour >= :lo AND hour < :hi GROUP BY 1, 2, 3, 4"), span)
    await _mark(session, f"days:{name}", days_to)


async def _since(session: AsyncSession, old: datetime, first_query: str) -> datetime | None:
    if old > EPOCH:
        return old - RELOOK
    first = await session.scalar(text(first_query))
    return floor_hour(first) if first is not None else None


async def _mark(session: AsyncSession, name: str, until: datetime) -> None:
    await session.execute(text(
        "INSERT INTO report_rollup_marks (name, sealed_until) VALUES (:name, :until)"
        " ON CONFLICT (name) DO UPDATE SET sealed_until = EXCLUDED.sealed_until"), {"name": name, "until": until})


async def ensure_fresh(maker: async_sessionmaker[AsyncSession], now: datetime) -> Sealed:
    """The current marks, after sealing what can be sealed if an hour has passed since the last refresh."""
    async with maker() as session, session.begin():
        current = await sealed(session)
        if not is_due(current, now):
            return current
        return await refresh(session, now)
