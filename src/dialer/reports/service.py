"""The reports: each is one or two GROUP BY statements over the facts (:mod:`dialer.reports.facts`).

``sealed`` decides where the facts come from: the rollups' marks (fast) or None (the raw tables alone, the
benchmark's baseline); the answers are the same. ``ch`` (a :class:`~dialer.reports.clickhouse.queries.Reader`, when
the ClickHouse copy is enabled) has the grouped rows read from ClickHouse instead; names, caps and the rest still
come from PostgreSQL, and the same code below turns the rows into the answer. A ClickHouse that fails a query
(down, unreachable) is not an error of the report: the answer comes from PostgreSQL instead (:func:`_falls_back`;
the outage is logged once, when it starts).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.exceptions import ValidationFailed
from dialer.reports import schemas as s
from dialer.reports.clickhouse.client import ClickhouseError
from dialer.reports.clickhouse.queries import Reader, call_order
from dialer.reports.facts import Sealed, Sql, attempt_facts, ms, state_facts
from dialer.reports.period import DIRECTIONS, Period, ReportFilter

ROLLING_DAYS = 30

log = logging.getLogger(__name__)
Params = ParamSpec("Params")
R = TypeVar("R")
_clickhouse_down = False


def clickhouse_failed(error: BaseException) -> None:
    """Note that ClickHouse failed (logged once per outage; a later answer from it ends the outage)."""
    global _clickhouse_down
    if not _clickhouse_down:
        log.warning("the ClickHouse copy failed; reports read PostgreSQL until it answers again: %s", error)
    _clickhouse_down = True


def _clickhouse_answered() -> None:
    global _clickhouse_down
    if _clickhouse_down:
        log.warning("the ClickHouse copy answers again")
    _clickhouse_down = False


def _falls_back(report: Callable[Params, Awaitable[R]]) -> Callable[Params, Awaitable[R]]:
    """A report given a ClickHouse reader (``ch``) answers from PostgreSQL when ClickHouse fails."""
    signature = inspect.signature(report)

    @functools.wraps(report)
    async def answer(*args: Params.args, **kwargs: Params.kwargs) -> R:
        bound = signature.bind(*args, **kwargs)
        if bound.arguments.get("ch") is None:
            return await report(*args, **kwargs)
        try:
            found = await report(*args, **kwargs)
        except ClickhouseError as error:
            clickhouse_failed(error)
            bound.arguments["ch"] = None
            return await report(*bound.args, **bound.kwargs)
        _clickhouse_answered()
        return found

    return answer


def pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def applied(f: ReportFilter) -> s.Applied:
    def ids(v: tuple[int, ...] | None) -> list[int] | None:
        return list(v) if v is not None else None

    return s.Applied(date_from=f.period.first, date_to=f.period.last, tz=f.period.tz.key,
                     campaign_ids=ids(f.campaign_ids), list_ids=ids(f.list_ids), operator_ids=ids(f.operator_ids),
                     code_ids=ids(f.code_ids), direction=f.direction)


async def _rows(session: AsyncSession, sql: Sql, statement: str) -> list[Any]:
    return list((await session.execute(text(statement), sql.params)).all())


async def _names(session: AsyncSession, table: str, ids: set[int], column: str = "name") -> dict[int, str]:
    ids.discard(0)
    if not ids:
        return {}
    rows = await session.execute(text(f"SELECT id, {column} FROM {table} WHERE id = ANY(CAST(:ids AS bigint[]))"),
                                 {"ids": sorted(ids)})
    return {int(i): str(n) for i, n in rows.all()}


async def _caps(session: AsyncSession, ids: set[int]) -> dict[int, float]:
    return {i: float(c) for i, c in (await session.execute(text(
        "SELECT id, abandon_cap_pct FROM campaigns WHERE id = ANY(CAST(:ids AS bigint[]))"),
        {"ids": sorted(ids)})).all()}


def _outbound_rate(c: s.Counts, inbound: s.Counts | None) -> float:
    """Abandoned / live answers of the outbound calls only: the cap is a law about calls the dialer placed, an
    inbound caller who gave up is no abandoned call of the campaign's (issue #12 §3)."""
    lost = c.abandoned - (inbound.abandoned if inbound else 0)
    live = c.answered + c.abandoned - (inbound.answered + inbound.abandoned if inbound else 0)
    return pct(lost, live)


def _fill(counts: s.Counts, outcome: str, n: int) -> None:
    if outcome in s.CATEGORIES:
        setattr(counts, outcome, getattr(counts, outcome) + n)
    counts.total += n


# --- Outcomes -------------------------------------------------------------------------------------------------

async def _successful(session: AsyncSession) -> list[int]:
    return sorted(int(c) for c in (await session.scalars(text("SELECT code_id FROM report_successful_codes"))).all())


@_falls_back
async def outcomes(session: AsyncSession, f: ReportFilter, sealed: Sealed | None,
                   ch: Reader | None = None) -> s.Outcomes:
    if ch is not None:
        rows = await ch.outcome_rows(f, await _successful(session))
        return await _outcomes_of(session, f, rows, await ch.reached(f))
    sql = Sql()
    tz = sql.bind(f.period.tz.key)
    facts = attempt_facts(sql, f, sealed, operators=False)
    rows = await _rows(session, sql, (
        f"WITH facts AS ({facts}), x AS (SELECT facts.*, (facts.hour AT TIME ZONE {tz}) AS local,"
        " (facts.outcome = 'answered' AND sc.code_id IS NOT NULL) AS ok FROM facts"
        " LEFT JOIN report_successful_codes sc ON sc.code_id = facts.code_id)"
        " SELECT GROUPING(local::date, extract(hour FROM local)::int, campaign_id, list_id, direction) AS g,"
        " local::date AS day, extract(hour FROM local)::int AS hod, campaign_id, list_id, direction, outcome,"
        " sum(attempts)::bigint, sum(handled)::bigint, sum(talk_ms)::bigint, sum(wrap_ms)::bigint,"
        " coalesce(sum(attempts) FILTER (WHERE ok), 0)::bigint"
        " FROM x GROUP BY GROUPING SETS ((direction, outcome), (local::date, outcome),"
        " (extract(hour FROM local)::int, outcome), (campaign_id, direction, outcome),"
        " (list_id, direction, outcome))"))
    return await _outcomes_of(session, f, rows, await _reached(session, f))


async def _outcomes_of(session: AsyncSession, f: ReportFilter, rows: list[Any], reached: int) -> s.Outcomes:
    """The report from its grouped rows ``(g, day, hour, campaign, list, direction, outcome, attempts, handled,
    talk_ms, wrap_ms, successful)``, whichever database grouped them."""
    categories = s.Counts()
    days: dict[date, s.DayRow] = {}
    hours = {h: s.HourRow(hour=h) for h in range(24)}
    campaigns: dict[int, s.Counts] = defaultdict(s.Counts)
    lists: dict[int, s.Counts] = defaultdict(s.Counts)
    inbound_of: dict[tuple[str, int], s.Counts] = defaultdict(s.Counts)
    directions: dict[str, s.Counts] = defaultdict(s.Counts)
    success_by: dict[tuple[str, int], int] = defaultdict(int)
    handled = talk = wrap = successful = 0
    for g, day, hod, campaign_id, list_id, direction, outcome, n, h, t, w, ok in rows:
        if g == 0b11110:  # (direction, outcome)
            _fill(categories, outcome, n)
            _fill(directions[direction], outcome, n)
            handled, talk, wrap, successful = handled + h, talk + t, wrap + w, successful + ok
        elif g == 0b01111:
            _fill(days.setdefault(day, s.DayRow(day=day)), outcome, n)
        elif g == 0b10111:
            _fill(hours[hod], outcome, n)
        elif g == 0b11010:
            _fill(campaigns[campaign_id], outcome, n)
            if direction == "inbound":
                _fill(inbound_of["c", campaign_id], outcome, n)
            success_by["c", campaign_id] += ok
        elif g == 0b11100:
            _fill(lists[list_id], outcome, n)
            if direction == "inbound":
                _fill(inbound_of["l", list_id], outcome, n)
            success_by["l", list_id] += ok
    caps = await _caps(session, set(campaigns) | set(f.campaign_ids or ()))
    campaign_names = await _names(session, "campaigns", set(campaigns))
    list_names = await _names(session, "contact_lists", set(lists))
    inbound = directions.get("inbound", s.Counts())
    lost = categories.abandoned - inbound.abandoned
    live = categories.answered + categories.abandoned - inbound.answered - inbound.abandoned

    def slice_row(key: str, i: int, c: s.Counts, name: str, cap: float | None) -> s.SliceRow:
        ok = success_by[key, i]
        return s.SliceRow(**c.model_dump(), id=i or None, name=name, answer_rate=pct(c.answered, c.total),
                          abandon_rate=_outbound_rate(c, inbound_of.get((key, i))), abandon_cap=cap,
                          successful=ok, conversion=pct(ok, c.answered))

    kpi = s.Kpi(attempts=categories.total, answered=categories.answered, reached_contacts=reached,
                answer_rate=pct(categories.answered, categories.total), abandoned=lost,
                live_answers=live, abandon_rate=pct(lost, live), inbound_abandoned=inbound.abandoned,
                abandon_cap=min(caps.values()) if caps else None, handled=handled, talk_ms=talk, wrap_ms=wrap,
                aht_ms=(talk + wrap) // handled if handled else 0, successful=successful,
                conversion=pct(successful, categories.answered), transferred=await _transferred(session, f))
    return s.Outcomes(
        applied=applied(f), kpi=kpi, categories=categories,
        by_day=[days.get(d) or s.DayRow(day=d) for d in f.period.days], by_hour=list(hours.values()),
        by_direction=[s.DirectionRow(direction=d, **directions[d].model_dump()) for d in DIRECTIONS
                      if d in directions],
        by_campaign=sorted((slice_row("c", i, c, campaign_names.get(i, f"#{i}"), caps.get(i))
                            for i, c in campaigns.items()), key=lambda r: (-r.total, r.name)),
        by_list=sorted((slice_row("l", i, c, list_names.get(i, "—"), None) for i, c in lists.items()),
                       key=lambda r: (-r.total, r.name)))


async def _transferred(session: AsyncSession, f: ReportFilter) -> int:
    """The filter's calls with at least one connected transfer (read from ``call_transfers`` whatever source gave
    the rest of the report)."""
    sql = Sql()
    join, where = _attempt_where(sql, f)
    # Driven from the transfers (far fewer than attempts; one is requested after its attempt was queued, so the
    # index on requested_at bounds them), not by a scan of the period's attempts.
    return int(await session.scalar(text(
        f"SELECT count(DISTINCT a.id) FROM call_transfers t JOIN attempts a ON a.id = t.attempt_id{join}"
        f" WHERE t.result = 'connected' AND t.requested_at >= {sql.bind(f.start)} AND {where}"), sql.params) or 0)


async def _with_transfers(session: AsyncSession, items: list[s.CallRow]) -> list[s.CallRow]:
    """The page's calls with their connected transfers counted."""
    if items:
        found = {int(a): int(n) for a, n in (await session.execute(text(
            "SELECT attempt_id, count(*) FROM call_transfers WHERE attempt_id = ANY(CAST(:ids AS bigint[]))"
            " AND result = 'connected' GROUP BY attempt_id"), {"ids": [i.id for i in items]})).all()}
        for item in items:
            item.transfers = found.get(item.id, 0)
    return items


def _attempt_where(sql: Sql, f: ReportFilter, operators: bool = True) -> tuple[str, str]:
    """JOIN and WHERE text selecting the filter's finished attempts (alias ``a``; ``c`` the contact);
    ``operators=False`` leaves out the operator filter (the caller applies it to transfer segments)."""
    where = (f"a.state = 'done' AND a.queued_at >= {sql.bind(f.start)} AND a.queued_at < {sql.bind(f.end)}")
    join = ""
    if f.campaign_ids is not None:
        where += f" AND a.campaign_id = ANY(CAST({sql.bind(list(f.campaign_ids))} AS bigint[]))"
    if f.list_ids is not None:
        join = " JOIN contacts c ON c.id = a.contact_id"
        where += f" AND c.list_id = ANY(CAST({sql.bind(list(f.list_ids))} AS bigint[]))"
    if f.operator_ids is not None and operators:
        where += f" AND a.operator_id = ANY(CAST({sql.bind(list(f.operator_ids))} AS bigint[]))"
    if f.code_ids is not None:
        where += f" AND a.completion_code_id = ANY(CAST({sql.bind(list(f.code_ids))} AS bigint[]))"
    if f.direction is not None:
        where += f" AND a.direction = {sql.bind(f.direction)}"
    return join, where


async def _reached(session: AsyncSession, f: ReportFilter) -> int:
    """Distinct contacts answered: not additive, so always counted from the attempts. ``count(DISTINCT …)`` always
    sorts; the same count over a ``DISTINCT`` subquery lets PostgreSQL hash (a year: about half the time)."""
    sql = Sql()
    join, where = _attempt_where(sql, f)
    return int(await session.scalar(text(
        f"SELECT count(*) FROM (SELECT DISTINCT a.contact_id FROM attempts a{join} WHERE {where}"
        " AND a.outcome = 'answered' AND a.contact_id IS NOT NULL) x"), sql.params) or 0)


DIMENSIONS: dict[str, tuple[str, str]] = {
    # name → (expression, join): slices that depend on the number or the selection, read from the attempts.
    "caller_id": ("coalesce(a.caller_id, '')", ""),
    "zone": ("coalesce(p.timezones[1], '')", " LEFT JOIN contact_phones p ON p.id = a.phone_id"),
    "region": ("coalesce(p.region, '')", " LEFT JOIN contact_phones p ON p.id = a.phone_id"),
    "carrier": ("coalesce(p.carrier, '')", " LEFT JOIN contact_phones p ON p.id = a.phone_id"),
    "selection": ("coalesce(sel.name, '')", " LEFT JOIN selections sel ON sel.id = a.selection_id"),
}


#: The same slices' columns in the ClickHouse copy.
CH_DIMENSIONS = {"caller_id": "ifNull(caller_id, '')", "zone": "zone", "region": "region", "carrier": "carrier",
                 "selection": "selection"}


@_falls_back
async def outcome_slices(session: AsyncSession, f: ReportFilter, dimension: str,
                         ch: Reader | None = None) -> s.OutcomeSlices:
    if dimension not in DIMENSIONS:
        raise ValidationFailed.field("dimension", f"one of {', '.join(DIMENSIONS)}")
    if ch is not None:
        rows = await ch.slice_rows(f, CH_DIMENSIONS[dimension])
    else:
        expr, extra = DIMENSIONS[dimension]
        sql = Sql()
        join, where = _attempt_where(sql, f)
        rows = await _rows(session, sql, (
            f"SELECT {expr} AS key, coalesce(a.outcome, 'error'), count(*) FROM attempts a{join}{extra}"
            f" WHERE {where} GROUP BY 1, 2"))
    by: dict[str, s.Counts] = defaultdict(s.Counts)
    for key, outcome, n in rows:
        _fill(by[key], outcome, n)
    out = [s.DimensionRow(key=k, answer_rate=pct(c.answered, c.total), **c.model_dump()) for k, c in by.items()]
    return s.OutcomeSlices(applied=applied(f), dimension=dimension,
                           rows=sorted(out, key=lambda r: (-r.total, r.key)))


# --- Operators ------------------------------------------------------------------------------------------------

async def _state_totals(session: AsyncSession, f: ReportFilter, sealed: Sealed | None,
                        ch: Reader | None = None) -> list[Any]:
    if ch is not None:
        return await ch.state_totals(f)
    sql = Sql()
    tz = sql.bind(f.period.tz.key)
    facts = state_facts(sql, f, sealed, days=True)
    return await _rows(session, sql, (
        f"WITH facts AS ({facts}) SELECT operator_id, (hour AT TIME ZONE {tz})::date AS day, state, reason,"
        " sum(ms)::bigint, min(first_at), max(last_at) FROM facts GROUP BY 1, 2, 3, 4"))


@_falls_back
async def operators(session: AsyncSession, f: ReportFilter, sealed: Sealed | None,
                    ch: Reader | None = None) -> s.Operators:
    if ch is not None:
        rows = await ch.operator_rows(f, await _successful(session))
        state_rows = await ch.state_by_operator(f)
    else:
        rows, state_rows = await _operator_rows(session, f, sealed)
    return await _operators_of(session, f, rows, state_rows, await _transfer_shares(session, f))


async def _transfer_shares(session: AsyncSession, f: ReportFilter) -> dict[int, tuple[int, int]]:
    """What transfers move between operators: ``{operator: (handled, talk_ms)}`` to add to the attempt facts.

    The facts (raw, rollups, ClickHouse alike) give a transferred call's whole talk, from its first connection to
    its hang-up, to the attempt's last operator. Here, from ``call_transfers`` at query time (the rollups keep no
    segments; the answer is the same whichever source gave the facts), each operator who talked to the customer
    gets his own segment: the first from the attempt's ``connected_at`` to the first connected transfer's, each
    receiving operator from his transfer's ``connected_at`` until the next connected transfer's (or the hang-up,
    for the last one). A segment ends when its operator let go of the customer: at ``requested_at`` for a blind or
    queued transfer (his leg is released at once), at ``connected_at`` for an attended one (he held the call through
    the consultation). Each operator counts one handled call per segment; the last operator's share replaces the
    whole talk the facts gave him. Transfers that did not connect move nothing (the customer stayed, or waited for
    any operator, who then appears as the attempt's operator). Wrap-up stays with the attempt's operator, as in the
    facts."""
    sql = Sql()
    join, where = _attempt_where(sql, f, operators=False)
    moves = await _rows(session, sql, (
        "WITH t AS (SELECT t.attempt_id, t.from_operator_id, t.to_operator_id, t.connected_at,"
        " CASE WHEN t.kind = 'attended' THEN t.connected_at ELSE t.requested_at END AS left_at,"
        " row_number() OVER w AS n, lead(CASE WHEN t.kind = 'attended' THEN t.connected_at ELSE t.requested_at END)"
        " OVER w AS next_left_at, a.connected_at AS first_at, a.hung_up_at, coalesce(a.operator_id, 0) AS last_op"
        f" FROM call_transfers t JOIN attempts a ON a.id = t.attempt_id{join}"
        f" WHERE {where} AND a.connected_at IS NOT NULL AND a.hung_up_at IS NOT NULL"
        f" AND t.result = 'connected' AND t.connected_at IS NOT NULL AND t.requested_at >= {sql.bind(f.start)}"
        " WINDOW w AS (PARTITION BY t.attempt_id ORDER BY t.connected_at, t.id)),"
        " moves AS ("
        f"SELECT coalesce(from_operator_id, 0) AS op, 1 AS handled, {ms('left_at - first_at')} AS talk"
        " FROM t WHERE n = 1"
        " UNION ALL SELECT CASE WHEN next_left_at IS NULL THEN last_op ELSE coalesce(to_operator_id, 0) END, 1,"
        f" {ms('coalesce(next_left_at, hung_up_at) - connected_at')} FROM t"
        f" UNION ALL SELECT last_op, -1, -{ms('hung_up_at - first_at')} FROM t WHERE n = 1)"
        " SELECT op, sum(handled)::bigint, sum(talk)::bigint FROM moves WHERE op <> 0"
        + (f" AND op = ANY(CAST({sql.bind(list(f.operator_ids))} AS bigint[]))" if f.operator_ids is not None
           else "") + " GROUP BY op"))
    return {int(op): (int(handled), int(talk)) for op, handled, talk in moves}


async def _operator_rows(session: AsyncSession, f: ReportFilter, sealed: Sealed | None) -> tuple[list[Any], list[Any]]:
    sql = Sql()
    facts = attempt_facts(sql, f, sealed, days=True)
    rows = await _rows(session, sql, (
        f"WITH facts AS ({facts}) SELECT GROUPING(facts.code_id) AS g, operator_id, facts.code_id,"
        " sum(attempts)::bigint, sum(handled)::bigint, sum(talk_ms)::bigint, sum(wrap_ms)::bigint,"
        " coalesce(sum(attempts) FILTER (WHERE outcome = 'answered'), 0)::bigint,"
        " coalesce(sum(attempts) FILTER (WHERE outcome = 'answered' AND sc.code_id IS NOT NULL), 0)::bigint"
        " FROM facts LEFT JOIN report_successful_codes sc ON sc.code_id = facts.code_id"
        " WHERE operator_id <> 0 GROUP BY GROUPING SETS ((operator_id), (operator_id, facts.code_id))"))
    sql = Sql()
    facts = state_facts(sql, f, sealed, days=True)
    state_rows = await _rows(session, sql, (
        f"WITH facts AS ({facts}) SELECT operator_id, state, sum(ms)::bigint FROM facts GROUP BY 1, 2"))
    return rows, state_rows


async def _operators_of(session: AsyncSession, f: ReportFilter, rows: list[Any], state_rows: list[Any],
                        shares: dict[int, tuple[int, int]]) -> s.Operators:
    calls: dict[int, tuple[int, ...]] = {}
    codes: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for g, op, code, n, handled, talk, wrap, answered, ok in rows:
        if g:
            calls[op] = (n, handled, talk, wrap, answered, ok)
        else:
            codes[op].append((code, n))
    time_in: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for op, state, total in state_rows:
        time_in[op][state] += total
    for op, (more, talk_ms) in shares.items():
        n, handled, talk, wrap, answered, ok = calls.get(op, (0, 0, 0, 0, 0, 0))
        calls[op] = (n, handled + more, talk + talk_ms, wrap, answered, ok)
    ids = set(calls) | set(time_in)
    names = await _names(session, "operators", set(ids))
    code_names = await _names(session, "completion_codes", {c for cs in codes.values() for c, _ in cs})
    out = []
    for op in ids:
        _n, handled, talk, wrap, answered, ok = calls.get(op, (0, 0, 0, 0, 0, 0))
        states = time_in.get(op, {})
        logged = sum(states.values())
        out.append(s.OperatorRow(
            operator_id=op, name=names.get(op, f"#{op}"), handled=handled, answered=answered, talk_ms=talk,
            wrap_ms=wrap, aht_ms=(talk + wrap) // handled if handled else 0, waiting_ms=states.get("ready", 0),
            logged_in_ms=logged, paused_ms=states.get("paused", 0), successful=ok, conversion=pct(ok, answered),
            calls_per_hour=round(handled * 3_600_000 / logged, 2) if logged else 0.0,
            codes=sorted((s.CodeCount(code_id=c or None, name=code_names.get(c, "—"), count=n)
                          for c, n in codes.get(op, [])), key=lambda x: (-x.count, x.name)),
            rank=0))
    out.sort(key=lambda r: (-r.successful, -r.handled, r.name, r.operator_id))
    for i, row in enumerate(out, 1):
        row.rank = i
    return s.Operators(applied=applied(f), rows=out)


# --- Operator time in state -----------------------------------------------------------------------------------

@_falls_back
async def states(session: AsyncSession, f: ReportFilter, sealed: Sealed | None,
                 ch: Reader | None = None) -> s.States:
    acc: dict[tuple[int, date], dict[str, Any]] = {}
    for op, day, state, reason, total, first, last in await _state_totals(session, f, sealed, ch):
        row = acc.setdefault((op, day), {"states": defaultdict(int), "reasons": defaultdict(int),
                                         "first": first, "last": last})
        row["states"][state] += total
        if state == "paused":
            row["reasons"][reason or "—"] += total
        row["first"], row["last"] = min(row["first"], first), max(row["last"], last)
    names = await _names(session, "operators", {op for op, _ in acc})
    out = []
    for (op, day), row in acc.items():
        st = row["states"]
        logged, paused = sum(st.values()), st.get("paused", 0)
        busy = st.get("in_call", 0) + st.get("wrap_up", 0)
        out.append(s.StateRow(
            operator_id=op, name=names.get(op, f"#{op}"), day=day, first_login=row["first"],
            last_logout=row["last"], logged_in_ms=logged, ready_ms=st.get("ready", 0),
            reserved_ms=st.get("reserved", 0) + st.get("ringing", 0), in_call_ms=st.get("in_call", 0),
            wrap_up_ms=st.get("wrap_up", 0), paused_ms=paused, paused_by_reason=dict(sorted(row["reasons"].items())),
            occupancy=pct(busy, logged - paused)))
    out.sort(key=lambda r: (r.name, r.operator_id, r.day))
    return s.States(applied=applied(f), rows=out)


# --- Completion codes -----------------------------------------------------------------------------------------

@_falls_back
async def codes(session: AsyncSession, f: ReportFilter, sealed: Sealed | None,
                ch: Reader | None = None) -> s.Codes:
    per_code: dict[int, int] = defaultdict(int)
    per_campaign: list[tuple[int, int, int]] = []
    per_operator: list[tuple[int, int, int]] = []
    if ch is not None:
        for g, campaign_id, operator_id, code_id, n in await ch.code_rows(f):
            if g == 0b11:
                per_code[code_id] += n
            elif g == 0b01:
                per_campaign.append((campaign_id, code_id, n))
            else:
                per_operator.append((operator_id, code_id, n))
    else:
        sql = Sql()
        facts = attempt_facts(sql, f, sealed, operators=False)
        rows = await _rows(session, sql, (
            f"WITH facts AS ({facts}) SELECT GROUPING(campaign_id) AS g, campaign_id, code_id,"
            " sum(attempts)::bigint FROM facts GROUP BY GROUPING SETS ((code_id), (campaign_id, code_id))"))
        for g, campaign_id, code_id, n in rows:
            if g:
                per_code[code_id] += n
            else:
                per_campaign.append((campaign_id, code_id, n))
        sql = Sql()
        facts = attempt_facts(sql, f, sealed, days=True)
        for operator_id, code_id, n in await _rows(session, sql, (
                f"WITH facts AS ({facts}) SELECT operator_id, code_id, sum(attempts)::bigint FROM facts"
                " WHERE operator_id <> 0 GROUP BY 1, 2")):
            per_operator.append((operator_id, code_id, n))
    total = sum(per_code.values())
    info = {int(i): (str(n), str(c)) for i, n, c in (await session.execute(text(
        "SELECT id, name, category FROM completion_codes WHERE id = ANY(CAST(:ids AS bigint[]))"),
        {"ids": sorted(per_code)})).all()}
    marked = set((await session.scalars(text("SELECT code_id FROM report_successful_codes"))).all())
    groups = await _rows(session, Sql(), "SELECT g.id, g.name, m.code_id FROM completion_code_groups g"
                                         " JOIN completion_code_group_members m ON m.group_id = g.id")
    by_group: dict[tuple[int, str], int] = defaultdict(int)
    for gid, gname, code_id in groups:
        if code_id in per_code:
            by_group[gid, gname] += per_code[code_id]
    campaign_names = await _names(session, "campaigns", {c for c, _, _ in per_campaign})
    operator_names = await _names(session, "operators", {o for o, _, _ in per_operator})

    def name(code_id: int) -> str:
        return info.get(code_id, ("—", ""))[0]

    return s.Codes(
        applied=applied(f), total=total,
        rows=sorted((s.CodeRow(code_id=c or None, name=name(c), category=info.get(c, ("", "error"))[1],
                               successful=c in marked, count=n, share=pct(n, total)) for c, n in per_code.items()),
                    key=lambda r: (-r.count, r.name)),
        groups=sorted((s.GroupRow(group_id=gid, name=gname, count=n, share=pct(n, total))
                       for (gid, gname), n in by_group.items()), key=lambda r: (-r.count, r.name)),
        by_campaign=sorted((s.PairRow(id=i, name=campaign_names.get(i, f"#{i}"), code_id=c or None, code=name(c),
                                      count=n) for i, c, n in per_campaign), key=lambda r: (r.name, -r.count, r.code)),
        by_operator=sorted((s.PairRow(id=i, name=operator_names.get(i, f"#{i}"), code_id=c or None, code=name(c),
                                      count=n) for i, c, n in per_operator), key=lambda r: (r.name, -r.count, r.code)))


# --- Abandon ledger -------------------------------------------------------------------------------------------

@_falls_back
async def abandon(session: AsyncSession, f: ReportFilter, sealed: Sealed | None,
                  ch: Reader | None = None) -> s.Abandon:
    """Per campaign per day; the rolling rate covers the 30 days ending that day (read from before the period)."""
    wide = dataclasses.replace(f, period=Period(f.period.first - timedelta(days=ROLLING_DAYS - 1), f.period.last,
                                                f.period.tz))
    if ch is not None:
        return await _ledger(session, f, await ch.ledger_rows(f, wide))
    sql = Sql()
    tz = sql.bind(f.period.tz.key)
    facts = attempt_facts(sql, wide, sealed, operators=False)
    rows = await _rows(session, sql, (
        f"WITH facts AS ({facts}) SELECT campaign_id, (hour AT TIME ZONE {tz})::date AS day,"
        " coalesce(sum(attempts) FILTER (WHERE outcome IN ('answered', 'abandoned') AND direction = 'outbound'),"
        " 0)::bigint,"
        " coalesce(sum(attempts) FILTER (WHERE outcome = 'abandoned' AND direction = 'outbound'), 0)::bigint,"
        " coalesce(sum(attempts) FILTER (WHERE outcome = 'answered' AND direction = 'inbound'), 0)::bigint,"
        " coalesce(sum(attempts) FILTER (WHERE outcome = 'abandoned' AND direction = 'inbound'), 0)::bigint"
        " FROM facts GROUP BY 1, 2"))
    return await _ledger(session, f, rows)


async def _ledger(session: AsyncSession, f: ReportFilter, rows: list[Any]) -> s.Abandon:
    """The ledger from ``(campaign, local day, outbound live answers, outbound abandoned, inbound answered, inbound
    abandoned)`` over the period and the 29 days before it."""
    daily: dict[int, dict[date, tuple[int, int]]] = defaultdict(dict)
    inbound: dict[tuple[int, date], tuple[int, int]] = {}
    for campaign_id, day, live, lost, in_answered, in_lost in rows:
        daily[campaign_id][day] = (live, lost)
        inbound[campaign_id, day] = (in_answered, in_lost)
    caps = await _caps(session, set(daily))
    names = await _names(session, "campaigns", set(daily))
    out = []
    for campaign_id, days in daily.items():
        for day in f.period.days:
            if day not in days:
                continue
            live, lost = days[day]
            window = [days.get(day - timedelta(days=i), (0, 0)) for i in range(ROLLING_DAYS)]
            r_live, r_lost = sum(w[0] for w in window), sum(w[1] for w in window)
            cap = caps.get(campaign_id, 3.0)
            rolling = pct(r_lost, r_live)
            in_answered, in_lost = inbound.get((campaign_id, day), (0, 0))
            out.append(s.LedgerRow(campaign_id=campaign_id, campaign=names.get(campaign_id, f"#{campaign_id}"),
                                   day=day, live_answers=live, abandoned=lost, rate=pct(lost, live),
                                   inbound_answered=in_answered, inbound_abandoned=in_lost,
                                   rolling_live_answers=r_live, rolling_abandoned=r_lost, rolling_rate=rolling,
                                   cap=cap, over_cap=rolling > cap))
    out.sort(key=lambda r: (r.campaign, r.campaign_id, r.day))
    return s.Abandon(applied=applied(f), rows=out)


# --- Lists and campaigns progress -----------------------------------------------------------------------------

async def progress(session: AsyncSession, f: ReportFilter) -> s.Progress:
    """The lists' state now (not a period): chosen lists, else the chosen campaigns' lists, else every list."""
    sql = Sql()
    if f.list_ids is not None:
        lists = f"SELECT id FROM contact_lists WHERE id = ANY(CAST({sql.bind(list(f.list_ids))} AS bigint[]))"
    elif f.campaign_ids is not None:
        lists = ("SELECT list_id FROM campaign_lists WHERE campaign_id = "
                 f"ANY(CAST({sql.bind(list(f.campaign_ids))} AS bigint[]))")
    else:
        lists = "SELECT id FROM contact_lists"
    totals = await _rows(session, sql, (
        f"SELECT c.list_id, c.status, coalesce(c.last_outcome, ''), count(*) FROM contacts c"
        f" WHERE c.list_id IN ({lists}) GROUP BY 1, 2, 3"))
    extra = await _rows(session, sql, (
        "SELECT p.list_id, coalesce(p.timezones[1], ''), count(DISTINCT p.contact_id),"
        " count(DISTINCT p.contact_id) FILTER (WHERE p.tz_uncertain) FROM contact_phones p"
        f" JOIN contacts c ON c.id = p.contact_id WHERE p.list_id IN ({lists}) AND c.status <> 'done'"
        " GROUP BY 1, 2"))
    uncertain = await _rows(session, sql, (
        "SELECT p.list_id, count(DISTINCT p.contact_id) FROM contact_phones p"
        f" WHERE p.list_id IN ({lists}) AND p.tz_uncertain GROUP BY 1"))
    dnc = await _rows(session, sql, (
        "SELECT c.list_id, count(*) FROM contacts c"
        f" WHERE c.list_id IN ({lists}) AND NOT EXISTS (SELECT 1 FROM contact_phones p WHERE p.contact_id = c.id"
        " AND NOT EXISTS (SELECT 1 FROM dnc_entries d WHERE (d.number = p.e164 AND NOT d.is_prefix)"
        " OR (d.is_prefix AND starts_with(p.e164, d.number))))"
        " AND EXISTS (SELECT 1 FROM contact_phones p WHERE p.contact_id = c.id) GROUP BY 1"))
    window = await _window(session, f)
    acc: dict[int, s.ListProgress] = {}
    names = await _names(session, "contact_lists", {r[0] for r in totals} | {r[0] for r in extra})

    def row(list_id: int) -> s.ListProgress:
        return acc.setdefault(list_id, s.ListProgress(
            list_id=list_id, name=names.get(list_id, f"#{list_id}"), total=0, new=0, in_progress=0, done=0,
            by_last_outcome={}, zone_uncertain=0, in_dnc=0, left_by_zone=[]))

    for list_id, status, last, n in totals:
        r = row(list_id)
        r.total += n
        setattr(r, status, getattr(r, status) + n)
        if last:
            r.by_last_outcome[last] = r.by_last_outcome.get(last, 0) + n
    for list_id, zone_name, n, _unsure in extra:
        row(list_id).left_by_zone.append(s.ZoneLeft(zone=zone_name, contacts=n,
                                                    window_opens=_opens(window, zone_name, f.now)))
    for list_id, n in uncertain:
        row(list_id).zone_uncertain = n
    for list_id, n in dnc:
        row(list_id).in_dnc = n
    for r in acc.values():
        r.left_by_zone.sort(key=lambda z: (-z.contacts, z.zone))
    return s.Progress(applied=applied(f), lists=sorted(acc.values(), key=lambda r: (r.name, r.list_id)))


async def _window(session: AsyncSession, f: ReportFilter) -> tuple[time, time] | None:
    if f.campaign_ids is None or len(f.campaign_ids) != 1:
        return None
    found = (await session.execute(text(
        "SELECT st.call_window_start, st.call_window_end FROM campaigns c JOIN strategies st ON st.id = c.strategy_id"
        " WHERE c.id = :id"), {"id": f.campaign_ids[0]})).first()
    return (found[0], found[1]) if found else None


def _opens(window: tuple[time, time] | None, zone_name: str, now: datetime) -> datetime | None:
    """When the strategy's calling window next opens in ``zone_name`` (None: open now, or unknown)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if window is None or not zone_name:
        return None
    try:
        tz = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    start, end = window
    local = now.astimezone(tz)
    t = local.time()
    inside = (start <= t < end) if start < end else (t >= start or t < end) if start != end else True
    if inside:
        return None
    day = local.date() if t < start else local.date() + timedelta(days=1)
    return datetime.combine(day, start, tz)


# --- Calls ----------------------------------------------------------------------------------------------------

CALL_SORT = {"id": "a.id", "queued_at": "a.queued_at", "talk_ms": "talk_ms", "outcome": "a.outcome",
             "operator": "o.name", "campaign": "cp.name", "number": "a.number", "direction": "a.direction"}


@_falls_back
async def calls(session: AsyncSession, f: ReportFilter, sealed: Sealed | None, *, outcome: str | None,
                page: int, per_page: int, sort: str | None, ch: Reader | None = None) -> s.Calls:
    if outcome is not None and outcome not in s.CATEGORIES:
        raise ValidationFailed.field("outcome", f"one of {', '.join(s.CATEGORIES)}")
    order = ""
    keys: list[tuple[str, bool]] = []
    for raw in (sort or "-id").split(","):
        key = raw.strip().lstrip("-+")
        if key not in CALL_SORT:
            raise ValidationFailed.field("sort", f"cannot sort by '{key}'; allowed: {', '.join(sorted(CALL_SORT))}")
        keys.append((key, raw.strip().startswith("-")))
        # NULLS LAST only where a column may be null: on the id it would keep the primary key's index from
        # giving the newest calls first without sorting the whole period.
        nulls = "" if key == "id" else " NULLS LAST"
        order += f"{CALL_SORT[key]} {'DESC' if raw.strip().startswith('-') else 'ASC'}{nulls}, "
    order += "a.id DESC"
    if ch is not None:
        return await _ch_calls(session, f, ch, outcome, keys, page, per_page)
    sql = Sql()
    join, where = _attempt_where(sql, f)
    if outcome:
        where += f" AND a.outcome = {sql.bind(outcome)}"
    rows = await _rows(session, sql, (
        "SELECT a.id, a.campaign_id, cp.name, l.name, a.operator_id, o.name, a.number, a.caller_id, a.outcome,"
        " cc.name, a.queued_at, a.dialed_at, a.ringing_at, a.answered_at, a.connected_at, a.hung_up_at,"
        f" a.wrap_up_ended_at, {_ms_or_null('a.hung_up_at - a.connected_at')} AS talk_ms, a.hangup_cause,"
        " a.direction"
        f" FROM attempts a{join} JOIN campaigns cp ON cp.id = a.campaign_id"
        " LEFT JOIN contacts c2 ON c2.id = a.contact_id LEFT JOIN contact_lists l ON l.id = c2.list_id"
        " LEFT JOIN operators o ON o.id = a.operator_id"
        " LEFT JOIN completion_codes cc ON cc.id = a.completion_code_id"
        f" WHERE {where} ORDER BY {order} LIMIT {int(per_page)} OFFSET {int((page - 1) * per_page)}"))
    items = [s.CallRow(id=r[0], campaign_id=r[1], campaign=r[2], list=r[3], operator_id=r[4], operator=r[5],
                       number=r[6], caller_id=r[7], outcome=r[8], code=r[9], queued_at=r[10], dialed_at=r[11],
                       ringing_at=r[12], answered_at=r[13], connected_at=r[14], hung_up_at=r[15],
                       wrap_up_ended_at=r[16], talk_ms=r[17], hangup_cause=r[18], direction=r[19]) for r in rows]
    items = await _with_transfers(session, items)
    # The total comes from the facts (the rollups for sealed hours): counting a year of attempts row by row is
    # what a paged list must not do.
    count = Sql()
    facts = attempt_facts(count, f, sealed, operators=False)
    cond = f" WHERE outcome = {count.bind(outcome)}" if outcome else ""
    total = int(await session.scalar(text(f"SELECT coalesce(sum(attempts), 0) FROM ({facts}) x{cond}"),
                                     count.params) or 0)
    return s.Calls(applied=applied(f), items=items, total=total, page=page, per_page=per_page)


async def _ch_calls(session: AsyncSession, f: ReportFilter, ch: Reader, outcome: str | None,
                   keys: list[tuple[str, bool]], page: int, per_page: int) -> s.Calls:
    sort_names = {k: await _names(session, "operators" if k == "operator" else "campaigns", await _all_ids(
        session, "operators" if k == "operator" else "campaigns")) for k, _ in keys if k in ("operator", "campaign")}
    rows = await ch.call_rows(f, outcome, call_order(keys, sort_names), per_page, (page - 1) * per_page)
    campaigns = await _names(session, "campaigns", {r[1] for r in rows})
    lists = await _names(session, "contact_lists", {r[2] for r in rows})
    operators = await _names(session, "operators", {r[3] for r in rows})
    code_names = await _names(session, "completion_codes", {r[7] for r in rows})
    items = [s.CallRow(id=r[0], campaign_id=r[1], campaign=campaigns.get(r[1], ""), list=lists.get(r[2]),
                       operator_id=r[3] or None, operator=operators.get(r[3]), number=r[4], caller_id=r[5],
                       outcome=r[6], code=code_names.get(r[7]), queued_at=r[8], dialed_at=r[9], ringing_at=r[10],
                       answered_at=r[11], connected_at=r[12], hung_up_at=r[13], wrap_up_ended_at=r[14],
                       talk_ms=r[15], hangup_cause=r[16], direction=r[17]) for r in rows]
    items = await _with_transfers(session, items)
    return s.Calls(applied=applied(f), items=items, total=await ch.call_total(f, outcome), page=page,
                   per_page=per_page)


async def _all_ids(session: AsyncSession, table: str) -> set[int]:
    return {int(i) for i in (await session.scalars(text(f"SELECT id FROM {table}"))).all()}


def _ms_or_null(expr: str) -> str:
    return f"(round(extract(epoch FROM ({expr})) * 1000))::bigint"


async def call_batches(session: AsyncSession, f: ReportFilter, outcome: str | None, batch: int) -> Any:
    """Every call of the filter, oldest first, in batches from a server-side cursor (for streamed exports)."""
    sql = Sql()
    join, where = _attempt_where(sql, f)
    if outcome:
        where += f" AND a.outcome = {sql.bind(outcome)}"
    result = await session.stream(text(
        "SELECT a.id, a.queued_at, a.direction, cp.name, l.name, o.name, a.number, a.caller_id, a.outcome, cc.name,"
        " a.dialed_at, a.ringing_at, a.answered_at, a.connected_at, a.hung_up_at, a.wrap_up_ended_at,"
        f" {_ms_or_null('a.hung_up_at - a.connected_at')}, a.hangup_cause"
        f" FROM attempts a{join} JOIN campaigns cp ON cp.id = a.campaign_id"
        " LEFT JOIN contacts c2 ON c2.id = a.contact_id LEFT JOIN contact_lists l ON l.id = c2.list_id"
        " LEFT JOIN operators o ON o.id = a.operator_id"
        " LEFT JOIN completion_codes cc ON cc.id = a.completion_code_id"
        f" WHERE {where} ORDER BY a.queued_at, a.id").execution_options(yield_per=batch), sql.params)
    async for part in result.partitions(batch):
        yield part


# --- Shift summary --------------------------------------------------------------------------------------------

async def shift(session: AsyncSession, f: ReportFilter, sealed: Sealed | None,
                ch: Reader | None = None) -> s.ShiftSummary:
    return s.ShiftSummary(applied=applied(f), outcomes=await outcomes(session, f, sealed, ch),
                          operators=await operators(session, f, sealed, ch),
                          abandon=await abandon(session, f, sealed, ch))
