"""The reports' queries on the ClickHouse copy: the same grouped rows as the PostgreSQL statements of
:mod:`dialer.reports.service` give, which then turns them into the same answers.

Every statement is plain SQL text with its literals inlined (:func:`~dialer.reports.clickhouse.client.lit`), so an
embedded chdb and a server run the very same text. The facts' rules are the PostgreSQL ones, spelt in ClickHouse: an
attempt belongs to the UTC hour it was queued in, cut by the period's start (``greatest(hour, start)``), and that
hour's local day and hour of day in the report's zone are its day and hour; a state period is cut at UTC hours, the
period's edges and now, each piece rounded to milliseconds (half away from zero) before it is added up. Rows are
read ``FINAL``: the latest version of each row, deleted ones left out.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

from dialer.reports.clickhouse.client import Clickhouse, from_micros, lit, micros
from dialer.reports.period import ReportFilter
from dialer.reports.schemas import CATEGORIES

HOUR_US = 3_600_000_000


def _outcome(oc: int) -> str:
    return CATEGORIES[oc - 1] if oc else "error"


def _direction(inbound: int) -> str:
    return "inbound" if inbound else "outbound"


def _ids(column: str, ids: tuple[int, ...] | None) -> str:
    if ids is None:
        return ""
    if not ids:
        return " AND 0"
    return f" AND {column} IN ({', '.join(str(int(i)) for i in ids)})"


@dataclasses.dataclass(frozen=True)
class Reader:
    """Reads the reports' rows from the copy in ``ch``."""

    ch: Clickhouse

    # --- attempts ---------------------------------------------------------------------------------------------

    def _attempts(self, f: ReportFilter, lo: datetime | None = None, hi: datetime | None = None) -> str:
        """``FROM … WHERE …`` of the filter's finished attempts queued in ``[lo, hi)`` (the period by default)."""
        lo, hi = lo or f.start, hi or f.end
        where = (f"queued_at >= {lit(lo)} AND queued_at < {lit(hi)}"
                 + _ids("campaign_id", f.campaign_ids) + _ids("list_id", f.list_ids)
                 + _ids("operator_id", f.operator_ids) + _ids("code_id", f.code_ids))
        if f.direction is not None:
            where += f" AND inbound = {int(f.direction == 'inbound')}"
        return f" FROM {self.ch.table('attempts')} FINAL WHERE {where}"

    def _local(self, f: ReportFilter, lo: datetime) -> str:
        """The attempt's fact hour (cut by ``lo``) in the report's zone."""
        return f"toTimeZone(greatest(toStartOfHour(queued_at), {lit(lo)}), {lit(f.period.tz.key)})"

    async def outcome_rows(self, f: ReportFilter, successful: list[int]) -> list[tuple[Any, ...]]:
        # Keys are numbers (the outcome's place in CATEGORIES, inbound 0/1): they group several times faster.
        rows = await self.ch.rows(
            "SELECT grouping(day, hod, c, l, inbound) AS g, day, hod, c, l, inbound, oc, count(), sum(handled),"
            f" sum(talk_ms), sum(wrap_ms), countIf(oc = 1 AND has(CAST({lit(successful)} AS Array(Int64)), code_id))"
            f" FROM (SELECT toDate({self._local(f, f.start)}) AS day, toHour({self._local(f, f.start)}) AS hod,"
            " toUInt32(campaign_id) AS c, toUInt32(list_id) AS l, inbound, oc, code_id, handled, talk_ms, wrap_ms"
            f"{self._attempts(f)}) GROUP BY GROUPING SETS ((inbound, oc), (day, oc), (hod, oc), (c, inbound, oc),"
            " (l, inbound, oc))")
        return [(g, day, hod, c, li, _direction(i), _outcome(oc), *rest) for g, day, hod, c, li, i, oc, *rest in rows]

    async def reached(self, f: ReportFilter) -> int:
        rows = await self.ch.rows(f"SELECT uniqExact(contact_id){self._attempts(f)}"
                                  " AND outcome = 'answered' AND contact_id <> 0")
        return int(rows[0][0]) if rows else 0

    async def slice_rows(self, f: ReportFilter, column: str) -> list[tuple[Any, ...]]:
        rows = await self.ch.rows(f"SELECT {column} AS key, oc, count(){self._attempts(f)} GROUP BY key, oc")
        return [(key, _outcome(oc), n) for key, oc, n in rows]

    async def operator_rows(self, f: ReportFilter, successful: list[int]) -> list[tuple[Any, ...]]:
        return await self.ch.rows(
            "SELECT grouping(code_id) AS g, operator_id, code_id, count(), sum(handled), sum(talk_ms), sum(wrap_ms),"
            f" countIf(oc = 1), countIf(oc = 1 AND has(CAST({lit(successful)} AS Array(Int64)), code_id))"
            f"{self._attempts(f)} AND operator_id <> 0 GROUP BY GROUPING SETS ((operator_id), (operator_id, code_id))")

    async def code_rows(self, f: ReportFilter) -> list[tuple[Any, ...]]:
        """``(g, campaign, operator, code, n)``: g 0b11 per code, 0b01 per campaign and code, 0b10 per operator
        and code (operators only where there is one)."""
        return await self.ch.rows(
            "SELECT grouping(campaign_id, operator_id) AS g, campaign_id, operator_id, code_id, count()"
            f"{self._attempts(f)}"
            " GROUP BY GROUPING SETS ((code_id), (campaign_id, code_id), (operator_id, code_id))"
            " HAVING g <> 2 OR operator_id <> 0")

    async def ledger_rows(self, f: ReportFilter, wide: ReportFilter) -> list[tuple[Any, ...]]:
        # oc: 1 answered, 5 abandoned
        return await self.ch.rows(
            f"SELECT campaign_id, toDate({self._local(wide, wide.start)}) AS day,"
            " countIf(oc IN (1, 5) AND inbound = 0), countIf(oc = 5 AND inbound = 0),"
            f" countIf(oc = 1 AND inbound = 1), countIf(oc = 5 AND inbound = 1){self._attempts(wide)}"
            " GROUP BY campaign_id, day")

    async def call_rows(self, f: ReportFilter, outcome: str | None, order: str, limit: int,
                        offset: int) -> list[tuple[Any, ...]]:
        cond = f" AND outcome = {lit(outcome)}" if outcome else ""
        return await self.ch.rows(
            "SELECT id, campaign_id, list_id, operator_id, number, caller_id, nullIf(outcome, ''), code_id,"
            " queued_at, dialed_at, ringing_at, answered_at, connected_at, hung_up_at, wrap_up_ended_at,"
            f" call_talk_ms, hangup_cause, direction{self._attempts(f)}{cond}"
            f" ORDER BY {order} LIMIT {int(limit)} OFFSET {int(offset)}")

    async def call_total(self, f: ReportFilter, outcome: str | None) -> int:
        cond = f" AND oc = {CATEGORIES.index(outcome) + 1}" if outcome else ""
        rows = await self.ch.rows(f"SELECT count(){self._attempts(f)}{cond}")
        return int(rows[0][0]) if rows else 0

    # --- operators' periods -----------------------------------------------------------------------------------

    def _pieces(self, f: ReportFilter) -> str:
        """The periods' pieces within the period (cut at UTC hours, its edges and now): operator_id, state, reason,
        hour (the piece's, cut by the period's start), ps, pe (its start and end), microseconds since the epoch.
        Most periods lie inside one hour and are their own piece (a one-element array, cheaper than a range)."""
        lo, hi, now = micros(f.start), micros(f.end), micros(f.now)
        return (
            "SELECT operator_id, state, reason, greatest(h, {lo}) AS hour, greatest(a, h) AS ps,"
            " least(b, h + {hour}) AS pe FROM ("
            " SELECT operator_id, state, reason, greatest(s, {lo}) AS a, least(e, {hi}) AS b,"
            " arrayJoin(if(intDiv(a, {hour}) = intDiv(b - 1, {hour}), [intDiv(a, {hour}) * {hour}],"
            " range(intDiv(a, {hour}) * {hour}, b, {hour}))) AS h FROM ("
            " SELECT operator_id, toString(state) AS state, reason, toUnixTimestamp64Micro(started_at) AS s,"
            " ifNull(toUnixTimestamp64Micro(ended_at), {now}) AS e FROM {table} FINAL"
            " WHERE state <> 'offline' AND started_at < {p_hi}{ops})"
            " WHERE s < {hi} AND e > {lo} AND e > s AND s <= {now})"
        ).format(lo=f"toInt64({lo})", hi=f"toInt64({hi})", now=f"toInt64({now})", hour=f"toInt64({HOUR_US})",
                 table=self.ch.table("periods"), p_hi=lit(f.end), ops=_ids("operator_id", f.operator_ids))

    async def state_totals(self, f: ReportFilter) -> list[tuple[Any, ...]]:
        """``(operator, local day, state, reason, ms, first moment, last moment)`` as service._state_totals."""
        day = f"toDate(toTimeZone(fromUnixTimestamp64Micro(hour, 'UTC'), {lit(f.period.tz.key)}))"
        rows = await self.ch.rows(
            f"SELECT operator_id, {day} AS day, state, reason, sum(greatest(0, intDiv(pe - ps + 500, 1000))),"
            f" min(ps), max(pe) FROM ({self._pieces(f)}) GROUP BY operator_id, day, state, reason")
        return [(op, d, st, reason, total, from_micros(first), from_micros(last))
                for op, d, st, reason, total, first, last in rows]

    async def state_by_operator(self, f: ReportFilter) -> list[tuple[Any, ...]]:
        return await self.ch.rows(
            "SELECT operator_id, state, sum(greatest(0, intDiv(pe - ps + 500, 1000)))"
            f" FROM ({self._pieces(f)}) GROUP BY operator_id, state")


def call_order(keys: list[tuple[str, bool]], names: dict[str, dict[int, str]]) -> str:
    """ORDER BY text for the call list: (key, descending) pairs as service.CALL_SORT names them; names sort through
    the names PostgreSQL holds."""
    out = []
    for key, desc in keys:
        if key in ("operator", "campaign"):
            table = names[key]
            ids = sorted(table)
            column = "operator_id" if key == "operator" else "campaign_id"
            expr = (f"transform({column}, CAST({lit(ids)} AS Array(Int64)),"
                    f" CAST({lit([table[i] for i in ids])} AS Array(Nullable(String))), NULL)")
        else:
            expr = {"id": "id", "queued_at": "queued_at", "talk_ms": "call_talk_ms", "outcome": "nullIf(outcome, '')",
                    "number": "number", "direction": "direction"}[key]
        nulls = "" if key == "id" else " NULLS LAST"
        out.append(f"{expr} {'DESC' if desc else 'ASC'}{nulls}")
    out.append("id DESC")
    return ", ".join(out)


__all__ = ["Reader", "call_order", "date"]
