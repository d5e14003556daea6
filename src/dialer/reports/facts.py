"""Facts the reports aggregate: finished attempts and operators' time in state, per UTC hour.

Every report is a GROUP BY over one of two fact shapes:

* attempt facts ``(hour, campaign_id, list_id, operator_id, code_id, outcome, direction; attempts, handled,
  talk_ms, wrap_ms)`` — finished attempts by the hour they were queued in;
* state facts ``(hour, operator_id, state, reason; ms, first_at, last_at)`` — operators' periods cut at hour
  boundaries and at the report's period (an open period runs until now).

:func:`attempt_facts` and :func:`state_facts` give the SQL of the facts of a period either from the raw tables
alone (``rollup=False``: the naive GROUP BY, the benchmark's baseline) or from the hourly rollups for the sealed
whole hours inside the period plus the raw tables for the rest. Both produce identical rows for identical data,
which the tests and ``dialer bench reports`` check. Durations are integer milliseconds so that sums do not depend on
the order of addition.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from dialer.reports.period import ReportFilter

HOUR = timedelta(hours=1)


def ms(expr: str) -> str:
    return f"greatest(0, round(extract(epoch FROM ({expr})) * 1000))::bigint"


def floor_hour(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


@dataclasses.dataclass
class Sql:
    """A statement being assembled with its named parameters."""

    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    _n: int = 0

    def bind(self, value: Any) -> str:
        self._n += 1
        name = f"p{self._n}"
        self.params[name] = value
        return f":{name}"


def _in(sql: Sql, column: str, ids: tuple[int, ...] | None) -> str:
    if ids is None:
        return ""
    return f" AND {column} = ANY(CAST({sql.bind(list(ids))} AS bigint[]))"


def _direction(sql: Sql, column: str, f: ReportFilter | None) -> str:
    if f is None or f.direction is None:
        return ""
    return f" AND {column} = {sql.bind(f.direction)}"


def raw_attempt_facts(sql: Sql, f: ReportFilter | None, lo: datetime, hi: datetime) -> str:
    """Finished attempts queued in ``[lo, hi)`` grouped into facts; an hour cut by ``lo`` is dated ``lo``."""
    p_lo, p_hi = sql.bind(lo), sql.bind(hi)
    where = "" if f is None else (
        _in(sql, "a.campaign_id", f.campaign_ids) + _in(sql, "c.list_id", f.list_ids)
        + _in(sql, "a.operator_id", f.operator_ids) + _in(sql, "a.completion_code_id", f.code_ids)
        + _direction(sql, "a.direction", f))
    return (
        f"SELECT greatest(date_trunc('hour', a.queued_at, 'UTC'), {p_lo}) AS hour, a.campaign_id,"
        " coalesce(c.list_id, 0) AS list_id, coalesce(a.operator_id, 0) AS operator_id,"
        " coalesce(a.completion_code_id, 0) AS code_id, coalesce(a.outcome, 'error') AS outcome,"
        " a.direction, count(*) AS attempts, count(a.connected_at) AS handled,"
        f" coalesce(sum({ms('a.hung_up_at - a.connected_at')}), 0)::bigint AS talk_ms,"
        f" coalesce(sum({ms('a.wrap_up_ended_at - a.hung_up_at')}) FILTER (WHERE a.connected_at IS NOT NULL), 0)"
        "::bigint AS wrap_ms"
        " FROM attempts a LEFT JOIN contacts c ON c.id = a.contact_id"
        f" WHERE a.state = 'done' AND a.queued_at >= {p_lo} AND a.queued_at < {p_hi}{where}"
        " GROUP BY 1, 2, 3, 4, 5, 6, 7")


def _rollup_attempt_facts(sql: Sql, f: ReportFilter, lo: datetime, hi: datetime, operators: bool) -> str:
    """From the rollup with operators when the report needs them (or filters by them), else from the smaller one
    without (its facts have operator 0)."""
    where = (_in(sql, "campaign_id", f.campaign_ids) + _in(sql, "list_id", f.list_ids)
             + _in(sql, "code_id", f.code_ids) + _direction(sql, "direction", f))
    span = f"hour >= {sql.bind(lo)} AND hour < {sql.bind(hi)}"
    if operators or f.operator_ids is not None:
        where += _in(sql, "operator_id", f.operator_ids)
        return ("SELECT hour, campaign_id, list_id, operator_id, code_id, outcome, direction, attempts, handled,"
                f" talk_ms, wrap_ms FROM report_attempt_hours WHERE {span}{where}")
    return ("SELECT hour, campaign_id, list_id, CAST(0 AS bigint) AS operator_id, code_id, outcome, direction,"
            f" attempts, handled, talk_ms, wrap_ms FROM report_outcome_hours WHERE {span}{where}")


def raw_state_facts(sql: Sql, f: ReportFilter | None, lo: datetime, hi: datetime, now: datetime) -> str:
    """Operators' periods within ``[lo, hi)`` cut at UTC hours (an open period ends ``now``; offline is not time
    in the system)."""
    p_lo, p_hi, p_now = sql.bind(lo), sql.bind(hi), sql.bind(now)
    end = f"coalesce(p.ended_at, {p_now})"
    piece_start = f"greatest(p.started_at, h, {p_lo})"
    piece_end = f"least({end}, h + interval '1 hour', {p_hi})"
    where = "" if f is None else _in(sql, "p.operator_id", f.operator_ids)
    return (
        f"SELECT greatest(h, {p_lo}) AS hour, p.operator_id, p.state, p.reason,"
        f" sum({ms(piece_end + ' - ' + piece_start)})::bigint AS ms,"
        f" min({piece_start}) AS first_at, max({piece_end}) AS last_at"
        " FROM operator_state_log p CROSS JOIN LATERAL generate_series("
        f"date_trunc('hour', greatest(p.started_at, {p_lo}), 'UTC'),"
        f" least({end}, {p_hi}) - interval '1 microsecond', interval '1 hour') AS h"
        f" WHERE p.state <> 'offline' AND p.started_at < {p_hi} AND {end} > {p_lo} AND {end} > p.started_at"
        f" AND p.started_at <= {p_now}{where}"
        " GROUP BY 1, 2, 3, 4")


def _rollup_state_facts(sql: Sql, f: ReportFilter, lo: datetime, hi: datetime) -> str:
    where = _in(sql, "operator_id", f.operator_ids)
    return ("SELECT hour, operator_id, state, reason, ms, first_at, last_at FROM report_state_hours"
            f" WHERE hour >= {sql.bind(lo)} AND hour < {sql.bind(hi)}{where}")


@dataclasses.dataclass(frozen=True)
class Sealed:
    """Until when each rollup is complete (hours before it are in the rollup table; local days of ``days_tz``
    before ``days`` in the day rollups)."""

    attempts: datetime
    states: datetime
    days: datetime | None = None
    days_tz: str | None = None


def _split(lo: datetime, hi: datetime, sealed: datetime) -> tuple[datetime, datetime] | None:
    """The whole sealed hours inside ``[lo, hi)``, if any."""
    r_lo, r_hi = ceil_hour(lo), min(floor_hour(hi), sealed)
    return (r_lo, r_hi) if r_lo < r_hi else None


def _day_part(f: ReportFilter, sealed: Sealed | None) -> datetime | None:
    """Where the sealed local days of the period end, when the day rollups serve it (the centre's zone they were
    built in is the report's): the period's days before that come from them."""
    if sealed is None or sealed.days is None or sealed.days_tz != f.period.tz.key:
        return None
    hi = min(f.end, sealed.days)
    return hi if f.start < hi else None


def _hourly_attempt_facts(sql: Sql, f: ReportFilter, lo: datetime, hi: datetime, sealed: Sealed | None,
                          operators: bool) -> list[str]:
    part = _split(lo, hi, sealed.attempts) if sealed else None
    if part is None:
        return [raw_attempt_facts(sql, f, lo, hi)]
    parts = [_rollup_attempt_facts(sql, f, *part, operators)]
    if lo < part[0]:
        parts.append(raw_attempt_facts(sql, f, lo, part[0]))
    if part[1] < hi:
        parts.append(raw_attempt_facts(sql, f, part[1], hi))
    return parts


def attempt_facts(sql: Sql, f: ReportFilter, sealed: Sealed | None, *, operators: bool = True,
                  days: bool = False) -> str:
    """The attempt facts of the filter's period: rollup where sealed, raw elsewhere (all raw when ``sealed`` is
    None). ``operators=False``: the caller does not group by operator, so the rollup without them may serve.
    ``days=True``: the caller groups by no finer time than the local day, so the operators' day rollup may serve
    (when the period is not filtered by list, which it does not keep)."""
    lo, hi = f.start, f.end
    day_hi = _day_part(f, sealed) if days and f.list_ids is None else None
    parts: list[str] = []
    if day_hi is not None:
        where = (_in(sql, "campaign_id", f.campaign_ids) + _in(sql, "operator_id", f.operator_ids)
                 + _in(sql, "code_id", f.code_ids) + _direction(sql, "direction", f))
        parts.append("SELECT day AS hour, campaign_id, CAST(0 AS bigint) AS list_id, operator_id, code_id, outcome,"
                     " direction, attempts, handled, talk_ms, wrap_ms FROM report_operator_days"
                     f" WHERE day >= {sql.bind(lo)} AND day < {sql.bind(day_hi)}{where}")
        lo = day_hi
    if lo < hi:
        parts += _hourly_attempt_facts(sql, f, lo, hi, sealed, operators)
    return " UNION ALL ".join(f"({p})" for p in parts)


def state_facts(sql: Sql, f: ReportFilter, sealed: Sealed | None, *, days: bool = False) -> str:
    """The state facts of the period; ``days=True`` as for :func:`attempt_facts`."""
    lo, hi, now = f.start, f.end, f.now
    parts: list[str] = []
    day_hi = _day_part(f, sealed) if days else None
    if day_hi is not None:
        parts.append("SELECT day AS hour, operator_id, state, reason, ms, first_at, last_at FROM report_state_days"
                     f" WHERE day >= {sql.bind(lo)} AND day < {sql.bind(day_hi)}"
                     + _in(sql, "operator_id", f.operator_ids))
        lo = day_hi
    if lo < hi:
        part = _split(lo, hi, min(sealed.states, floor_hour(now))) if sealed else None
        if part is None:
            parts.append(raw_state_facts(sql, f, lo, hi, now))
        else:
            parts.append(_rollup_state_facts(sql, f, *part))
            if lo < part[0]:
                parts.append(raw_state_facts(sql, f, lo, part[0], now))
            if part[1] < hi:
                parts.append(raw_state_facts(sql, f, part[1], hi, now))
    return " UNION ALL ".join(f"({p})" for p in parts)
