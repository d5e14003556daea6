"""The copy of finished attempts and operators' state periods from PostgreSQL to ClickHouse, through an outbox.

Row triggers on ``attempts`` (finished ones: ``state = 'done'``) and ``operator_state_log`` insert a row into
``clickhouse_outbox`` in the very transaction that changes the source row, so a change is in the outbox exactly when
it is committed (a crash of either side loses nothing). The copier — a task of the API process, one at a time across
processes by an advisory lock — reads the oldest outbox rows, reads the current source rows they name, inserts them
into ClickHouse with ``version`` = the newest outbox id of each (a ``ReplacingMergeTree(version, deleted)`` keyed by
the sort moment and the row id keeps only the latest version of a row; a deleted row is sent as a tombstone), and
then deletes those outbox rows in the same PostgreSQL transaction. If that commit is lost the batch is sent again
with the same versions, which ClickHouse folds into one row: nothing is counted twice. Queries read ``FINAL``.

The triggers exist only while the copy is enabled (:func:`install_triggers`): with ``DIALER_CLICKHOUSE=off`` the
engine's journal pays nothing. Enabling it creates the triggers and enqueues every existing row in one transaction
(so the copy starts complete); disabling drops them and empties the outbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.reports.clickhouse.client import Clickhouse, ClickhouseSettings, connect
from dialer.reports.facts import ms
from dialer.reports.schemas import CATEGORIES

log = logging.getLogger(__name__)

#: pg_try_advisory_xact_lock key: one copier at a time across processes.
LOCK_KEY = 0x5EB0_0002

TRIGGERS = {
    "clickhouse_outbox_attempt": "CREATE TRIGGER clickhouse_outbox_attempt AFTER INSERT OR UPDATE ON attempts"
                                 " FOR EACH ROW WHEN (NEW.state = 'done') EXECUTE FUNCTION clickhouse_outbox_attempt()",
    "clickhouse_outbox_attempt_deleted": "CREATE TRIGGER clickhouse_outbox_attempt_deleted AFTER DELETE ON attempts"
                                         " FOR EACH ROW WHEN (OLD.state = 'done')"
                                         " EXECUTE FUNCTION clickhouse_outbox_attempt()",
    "clickhouse_outbox_period": "CREATE TRIGGER clickhouse_outbox_period AFTER INSERT OR UPDATE OR DELETE"
                                " ON operator_state_log FOR EACH ROW EXECUTE FUNCTION clickhouse_outbox_period()",
}

_DT = "DateTime64(6, 'UTC')"
SCHEMA = {
    "attempts": (
        "id UInt64, version UInt64, deleted UInt8, queued_at {dt}, campaign_id Int64, list_id Int64,"
        " contact_id Int64, operator_id Int64, code_id Int64, direction LowCardinality(String),"
        " outcome LowCardinality(String), number String, caller_id Nullable(String), hangup_cause String,"
        " region String, carrier String, zone String, selection String, dialed_at Nullable({dt}),"
        " ringing_at Nullable({dt}), answered_at Nullable({dt}), connected_at Nullable({dt}),"
        " hung_up_at Nullable({dt}), wrap_up_ended_at Nullable({dt}), handled UInt8, talk_ms Int64, wrap_ms Int64,"
        " call_talk_ms Nullable(Int64), oc UInt8, inbound UInt8", "(queued_at, id)"),
    "periods": (
        "id UInt64, version UInt64, deleted UInt8, started_at {dt}, ended_at Nullable({dt}), operator_id Int64,"
        " state LowCardinality(String), reason String", "(started_at, id)"),
}

def _ts(expr: str) -> str:
    return f"to_char({expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"


# What ClickHouse gets of an attempt, as PostgreSQL computes it: the facts' expressions (reports/facts.py), so the
# sums are PostgreSQL's; the outcome as its 1-based place in CATEGORIES (null counts as error) and the direction as
# 0/1 besides, since numbers group several times faster than strings.
_ATTEMPT = {
    "id": "a.id", "queued_at": _ts("a.queued_at"), "campaign_id": "a.campaign_id",
    "list_id": "coalesce(c.list_id, 0)", "contact_id": "coalesce(a.contact_id, 0)",
    "operator_id": "coalesce(a.operator_id, 0)", "code_id": "coalesce(a.completion_code_id, 0)",
    "direction": "a.direction", "outcome": "coalesce(a.outcome, '')", "number": "a.number", "caller_id": "a.caller_id",
    "hangup_cause": "a.hangup_cause", "region": "coalesce(p.region, '')", "carrier": "coalesce(p.carrier, '')",
    "zone": "coalesce(p.timezones[1], '')", "selection": "coalesce(sel.name, '')",
    **{k: _ts(f"a.{k}") for k in ("dialed_at", "ringing_at", "answered_at", "connected_at", "hung_up_at",
                                  "wrap_up_ended_at")},
    "handled": "(a.connected_at IS NOT NULL)::int", "talk_ms": ms("a.hung_up_at - a.connected_at"),
    "wrap_ms": f"CASE WHEN a.connected_at IS NOT NULL THEN {ms('a.wrap_up_ended_at - a.hung_up_at')} ELSE 0 END",
    "call_talk_ms": "(round(extract(epoch FROM (a.hung_up_at - a.connected_at)) * 1000))::bigint",
    "oc": f"coalesce(array_position(ARRAY{list(CATEGORIES)}::text[], coalesce(a.outcome, 'error')), 0)",
    "inbound": "(a.direction = 'inbound')::int",
}
_PERIOD = {"id": "id", "started_at": _ts("started_at"), "ended_at": _ts("ended_at"), "operator_id": "operator_id",
           "state": "state", "reason": "reason"}


def _json(columns: dict[str, str]) -> str:
    """A JSONEachRow line built by PostgreSQL (no per-value work in Python)."""
    return "json_build_object(" + ", ".join(f"'{k}', {v}" for k, v in columns.items()) + ")::text"


_ATTEMPTS_SQL = (
    f"SELECT a.id, {_json(_ATTEMPT)}"
    " FROM attempts a LEFT JOIN contacts c ON c.id = a.contact_id LEFT JOIN contact_phones p ON p.id = a.phone_id"
    " LEFT JOIN selections sel ON sel.id = a.selection_id"
    " WHERE a.id = ANY(CAST(:ids AS bigint[])) AND a.state = 'done'")
_PERIODS_SQL = f"SELECT id, {_json(_PERIOD)} FROM operator_state_log WHERE id = ANY(CAST(:ids AS bigint[]))"


def _versioned(line: str, version: int, deleted: int = 0) -> str:
    return f'{line[:-1]}, "version" : {version}, "deleted" : {deleted}}}'


def _tombstone(key: str, row_id: int, at: datetime, version: int) -> str:
    stamp = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return f'{{"id" : {row_id}, "{key}" : "{stamp}", "version" : {version}, "deleted" : 1}}'


async def create_schema(ch: Clickhouse) -> None:
    await ch.command(f"CREATE DATABASE IF NOT EXISTS {ch.database}")
    for name, (columns, key) in SCHEMA.items():
        await ch.command(f"CREATE TABLE IF NOT EXISTS {ch.table(name)} ({columns.format(dt=_DT)})"
                         f" ENGINE = ReplacingMergeTree(version, deleted) ORDER BY {key}")


async def truncate(ch: Clickhouse) -> None:
    for name in SCHEMA:
        await ch.command(f"TRUNCATE TABLE IF EXISTS {ch.table(name)}")


async def triggers_installed(session: AsyncSession) -> set[str]:
    rows = await session.scalars(text("SELECT tgname FROM pg_trigger WHERE tgname = ANY(CAST(:names AS text[]))"),
                                 {"names": list(TRIGGERS)})
    return set(rows.all())


async def backfill(session: AsyncSession) -> int:
    """Enqueue every finished attempt and every period (the copy's first load, or after it was off)."""
    a = await session.execute(text("INSERT INTO clickhouse_outbox (source, row_id, at)"
                                   " SELECT 'a', id, queued_at FROM attempts WHERE state = 'done'"))
    p = await session.execute(text("INSERT INTO clickhouse_outbox (source, row_id, at)"
                                   " SELECT 'p', id, started_at FROM operator_state_log"))
    return int(getattr(a, "rowcount", 0) or 0) + int(getattr(p, "rowcount", 0) or 0)


async def install_triggers(maker: async_sessionmaker[AsyncSession], enabled: bool) -> bool:
    """Make the triggers match the setting; True when they were just created (the copy starts from scratch). Creating
    them records, in the same transaction, that ClickHouse's tables must be emptied before copying (``needs_truncate``,
    cleared by :func:`start` once done, so a failure in between is retried) and that an initial load is under way."""
    async with maker() as session, session.begin():
        present = await triggers_installed(session)
        if enabled and present == set(TRIGGERS):
            return False
        for name in present:
            table = "operator_state_log" if name == "clickhouse_outbox_period" else "attempts"
            await session.execute(text(f"DROP TRIGGER IF EXISTS {name} ON {table}"))
        await session.execute(text("DELETE FROM clickhouse_outbox"))
        if not enabled:
            await session.execute(text(
                "UPDATE clickhouse_copy_status SET load_until_id = NULL, needs_truncate = false"))
            return False
        for ddl in TRIGGERS.values():
            await session.execute(text(ddl))
        await _initial_load(session, truncate=True)
        return True


async def _initial_load(session: AsyncSession, truncate: bool) -> None:
    """Enqueue every row and remember the newest outbox id of them: until all are sent the copy is partial and the
    reports read PostgreSQL (the outbox rows' ``created_at`` is now, so the lag alone looks fresh)."""
    await backfill(session)
    await session.execute(text(
        "INSERT INTO clickhouse_copy_status (id, load_until_id, loaded_at, needs_truncate)"
        " SELECT 1, max(id), NULL, :t FROM clickhouse_outbox"
        " ON CONFLICT (id) DO UPDATE SET load_until_id = excluded.load_until_id, loaded_at = NULL,"
        " needs_truncate = clickhouse_copy_status.needs_truncate OR excluded.needs_truncate"), {"t": truncate})
    await _mark_loaded(session)


async def _mark_loaded(session: AsyncSession) -> None:
    """Clear ``load_until_id`` (and set ``loaded_at``) once no outbox row up to it is left."""
    await session.execute(text(
        "UPDATE clickhouse_copy_status SET load_until_id = NULL, loaded_at = now()"
        " WHERE id = 1 AND (load_until_id IS NULL AND loaded_at IS NULL AND NOT needs_truncate"
        " OR load_until_id IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM clickhouse_outbox WHERE id <= clickhouse_copy_status.load_until_id))"))


async def copy_batch(maker: async_sessionmaker[AsyncSession], ch: Clickhouse, size: int) -> int | None:
    """Copy the oldest ``size`` outbox rows; the number of rows sent (0: the outbox is empty; None: another
    copier holds the lock)."""
    async with maker() as session, session.begin():
        if not await session.scalar(text(f"SELECT pg_try_advisory_xact_lock({LOCK_KEY})")):
            return None
        outbox = (await session.execute(text(
            "SELECT id, source, row_id, at FROM clickhouse_outbox ORDER BY id LIMIT :n"), {"n": size})).all()
        if not outbox:
            await _mark_loaded(session)
            return 0
        latest: dict[tuple[str, int], tuple[int, datetime]] = {}
        for oid, source, row_id, at in outbox:
            latest[source, row_id] = (oid, at)  # ids ascend: the last one seen is the newest
        sent = 0
        for source, sql, table, key in (("a", _ATTEMPTS_SQL, "attempts", "queued_at"),
                                        ("p", _PERIODS_SQL, "periods", "started_at")):
            ids = [r for s, r in latest if s == source]
            if not ids:
                continue
            lines = []
            for row_id, line in (await session.execute(text(sql), {"ids": ids})).all():
                lines.append(_versioned(line, latest[source, row_id][0]))
                del latest[source, row_id]
            # gone (or, for an attempt, no longer finished): a tombstone with the newest version
            lines += [_tombstone(key, i, latest[source, i][1], latest[source, i][0]) for i in ids
                      if (source, i) in latest]
            await ch.insert_lines(table, lines)
            sent += len(lines)
        await session.execute(text("DELETE FROM clickhouse_outbox WHERE id = ANY(CAST(:ids AS bigint[]))"),
                              {"ids": [r[0] for r in outbox]})
        await session.execute(text(
            "INSERT INTO clickhouse_copy_status (id, copied_rows, copied_at, last_error) VALUES (1, :n, now(), '')"
            " ON CONFLICT (id) DO UPDATE SET copied_rows = clickhouse_copy_status.copied_rows + :n,"
            " copied_at = now(), last_error = ''"), {"n": sent})
        await _mark_loaded(session)
        return sent


async def copy_all(maker: async_sessionmaker[AsyncSession], ch: Clickhouse, size: int = 5000) -> int:
    """Copy until the outbox is empty (what tests and the benchmark call); the rows sent."""
    total = 0
    while True:
        sent = await copy_batch(maker, ch, size)
        if not sent:
            return total
        total += sent


async def record_error(maker: async_sessionmaker[AsyncSession], error: BaseException) -> None:
    message = f"{type(error).__name__}: {error}"[:2000]
    async with maker() as session, session.begin():
        await session.execute(text(
            "INSERT INTO clickhouse_copy_status (id, last_error, last_error_at) VALUES (1, :e, now())"
            " ON CONFLICT (id) DO UPDATE SET last_error = :e, last_error_at = now()"), {"e": message})


async def start(maker: async_sessionmaker[AsyncSession], ch: Clickhouse | None, enabled: bool | None = None) -> None:
    """Triggers as the setting says (``enabled``; by default: whether there is a ``ch``); ClickHouse's tables
    created, and emptied while the status says they must be (the copy started afresh, or a truncation failed). A
    ClickHouse whose tables are new while the triggers were already there (its data directory or database lost)
    gets every row enqueued again."""
    await install_triggers(maker, ch is not None if enabled is None else enabled)
    if ch is None:
        return
    async with maker() as session:
        must_truncate = bool(await session.scalar(text(
            "SELECT needs_truncate FROM clickhouse_copy_status WHERE id = 1")))
    existed = True if must_truncate else bool((await ch.rows(f"EXISTS TABLE {ch.table('attempts')}"))[0][0])
    await create_schema(ch)
    if must_truncate:
        await truncate(ch)
        async with maker() as session, session.begin():
            await session.execute(text("UPDATE clickhouse_copy_status SET needs_truncate = false WHERE id = 1"))
            await _mark_loaded(session)
    elif not existed:
        async with maker() as session, session.begin():
            await _initial_load(session, truncate=False)


def run_in_app(app: Any) -> Coroutine[Any, Any, None]:
    """The copier of the API process (``dialer.app`` starts it beside the reports' sealing); ``app.state.
    clickhouse_ready`` is set once the triggers match the setting. Nothing here reaches ClickHouse: an unreachable
    server (or chdb missing) must not stop the API from starting, so :func:`run` connects inside its retry loop."""
    ready = asyncio.Event()
    app.state.clickhouse_ready = ready
    return run(app.state.sessionmaker, ClickhouseSettings(), None, ready, app.state.settings.data_dir)


async def run(maker: async_sessionmaker[AsyncSession], settings: ClickhouseSettings | None = None,
              ch: Clickhouse | None = None, ready: asyncio.Event | None = None, data_dir: Path | None = None) -> None:
    """Copy until cancelled; with the copy off it only removes the triggers. ClickHouse is connected to lazily,
    inside the retry loop: a failure (to connect, to create the tables, to copy) is written on the copy's status
    and tried again, with a backoff up to a minute."""
    settings = settings or ClickhouseSettings()
    enabled = settings.enabled or ch is not None
    pause = settings.clickhouse_every_s
    while True:
        try:
            if enabled and ch is None:
                await install_triggers(maker, True)  # the outbox fills while ClickHouse is away
                if ready is not None:
                    ready.set()
                ch = connect(settings, data_dir)
            await start(maker, ch, enabled)
            if ready is not None:
                ready.set()
            break
        except Exception as error:  # ClickHouse or the database not there yet: said on the status, tried again
            log.warning("starting the ClickHouse copy failed (tried again in %.0f s): %s", pause, error)
            await _record_quietly(maker, error)
            await asyncio.sleep(pause)
            pause = min(60.0, pause * 2)
    if ch is None:
        return
    pause = settings.clickhouse_every_s
    while True:
        try:
            sent = await copy_batch(maker, ch, settings.clickhouse_batch)
            pause = settings.clickhouse_every_s
        except Exception as error:  # the batch stays in the outbox and is sent again; backoff up to a minute
            log.warning("copying to ClickHouse failed (tried again in %.0f s): %s", pause, error)
            await _record_quietly(maker, error)
            sent, pause = 0, min(60.0, pause * 2)
        if not sent:
            await asyncio.sleep(pause)


async def _record_quietly(maker: async_sessionmaker[AsyncSession], error: BaseException) -> None:
    try:
        await record_error(maker, error)
    except Exception:
        log.exception("recording the ClickHouse copy's error failed")


async def status(session: AsyncSession, settings: ClickhouseSettings | None = None) -> dict[str, Any]:
    """What the administrator sees: the mode, rows waiting, the oldest one's age, rows copied, the last error."""
    settings = settings or ClickhouseSettings()
    pending, oldest, now = (await session.execute(text(
        "SELECT count(*), min(created_at), now() FROM clickhouse_outbox"))).one()
    row = (await session.execute(text(
        "SELECT copied_rows, copied_at, last_error, last_error_at,"
        " load_until_id IS NULL AND NOT needs_truncate AND loaded_at IS NOT NULL, loaded_at"
        " FROM clickhouse_copy_status WHERE id = 1"))).first()
    installed = await triggers_installed(session)
    return {"mode": settings.clickhouse, "triggers": len(installed) == len(TRIGGERS),
            "pending": int(pending), "oldest_at": oldest,
            "lag_s": round((now - oldest).total_seconds(), 1) if oldest is not None else 0.0,
            "copied_rows": int(row[0]) if row else 0, "copied_at": row[1] if row else None,
            "last_error": row[2] if row else "", "last_error_at": row[3] if row else None,
            "initial_load_complete": bool(row[4]) if row else False, "loaded_at": row[5] if row else None}


async def readable(session: AsyncSession) -> bool:
    """Whether reports may read the copy: its initial load is complete and no truncation is pending."""
    return bool(await session.scalar(text(
        "SELECT load_until_id IS NULL AND NOT needs_truncate AND loaded_at IS NOT NULL"
        " FROM clickhouse_copy_status WHERE id = 1")))
