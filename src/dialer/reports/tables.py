"""Each report as titled tables of typed columns: what the page shows, and what CSV, XLSX and PDF exports write.

A column's ``kind`` says how to show and store its values: ``int``, ``pct`` (a percentage, or another figure with
two decimals), ``ms`` (a duration in milliseconds: h:mm:ss on screen, an Excel time in XLSX), ``date``, ``datetime``
(UTC; shown in the centre's zone), ``text``, ``bool``. A row may carry ``drill``: the filter parameters that open
the calls behind it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel

from dialer.reports import schemas as s

Kind = Literal["int", "pct", "ms", "date", "datetime", "text", "bool"]
Translate = Callable[[str], str]


class Column(BaseModel):
    key: str
    label: str
    kind: Kind
    #: How the totals row sums the column: "sum", or a (part, whole) pair of column keys for a share.
    total: str | tuple[str, str] | None = None


class Table(BaseModel):
    key: str
    title: str
    columns: list[Column]
    rows: list[list[Any]]
    drill: list[dict[str, str] | None] = []
    totals: list[Any] | None = None


def _table(key: str, title: str, columns: list[Column], rows: list[list[Any]],
           drill: list[dict[str, str] | None] | None = None, totals: bool = True) -> Table:
    table = Table(key=key, title=title, columns=columns, rows=rows, drill=drill or [None] * len(rows))
    if totals and rows and any(c.total for c in columns):
        out: list[Any] = []
        for i, c in enumerate(columns):
            if c.total == "sum":
                out.append(sum(r[i] or 0 for r in rows))
            elif isinstance(c.total, tuple):
                part = next(j for j, x in enumerate(columns) if x.key == c.total[0])
                whole = next(j for j, x in enumerate(columns) if x.key == c.total[1])
                p, w = sum(r[part] or 0 for r in rows), sum(r[whole] or 0 for r in rows)
                out.append(round(100.0 * p / w, 2) if w else 0.0)
            else:
                out.append(None)
        table.totals = out
    return table


def _col(t: Translate, key: str, kind: Kind, total: str | tuple[str, str] | None = None,
         label: str | None = None) -> Column:
    return Column(key=key, label=label or t(f"reports.col.{key}"), kind=kind, total=total)


def _categories(t: Translate) -> list[Column]:
    return [Column(key=c, label=t(f"outcome.{c}"), kind="int", total="sum") for c in s.CATEGORIES] + \
        [_col(t, "total", "int", "sum")]


def _counts(c: s.Counts) -> list[Any]:
    return [getattr(c, k) for k in s.CATEGORIES] + [c.total]


def outcomes(r: s.Outcomes, t: Translate) -> list[Table]:
    k = r.kpi
    kpi = _table("kpi", t("nav.reports.outcomes"), [_col(t, "metric", "text"), _col(t, "value", "text")], [
        [t("reports.kpi.attempts"), str(k.attempts)],
        [t("reports.kpi.reached"), str(k.reached_contacts)],
        [t("reports.kpi.answer_rate"), f"{k.answer_rate}% ({k.answered})"],
        [t("reports.kpi.abandon_rate"), f"{k.abandon_rate}% ({k.abandoned}/{k.live_answers})"
         + (f", {t('reports.kpi.abandon_cap').format(cap=k.abandon_cap)}" if k.abandon_cap is not None else "")],
        *([[t("reports.kpi.inbound_abandoned"), str(k.inbound_abandoned)]] if k.inbound_abandoned else []),
        *([[t("reports.kpi.transferred"), str(k.transferred)]] if k.transferred else []),
        [t("reports.kpi.talk"), _hms(k.talk_ms)],
        [t("reports.kpi.aht"), _hms(k.aht_ms)],
        [t("reports.kpi.conversion"), f"{k.conversion}% ({k.successful}/{k.answered})"],
    ], totals=False)
    day = _table("by_day", t("reports.chart.by_day"), [_col(t, "day", "date"), *_categories(t)],
                 [[d.day, *_counts(d)] for d in r.by_day])
    hour = _table("by_hour", t("reports.chart.by_hour"), [_col(t, "hour", "int"), *_categories(t)],
                  [[h.hour, *_counts(h)] for h in r.by_hour])
    slice_cols = [*_categories(t), _col(t, "answer_rate", "pct", ("answered", "total")),
                  _col(t, "abandon_rate", "pct"), _col(t, "successful", "int", "sum"),
                  _col(t, "conversion", "pct", ("successful", "answered"))]
    campaigns = _table("by_campaign", t("reports.section.by_campaign"),
                       [_col(t, "campaign", "text"), *slice_cols, _col(t, "cap", "pct")],
                       [[c.name, *_counts(c), c.answer_rate, c.abandon_rate, c.successful, c.conversion,
                         c.abandon_cap] for c in r.by_campaign],
                       [{"campaign_ids": str(c.id)} if c.id else None for c in r.by_campaign])
    lists = _table("by_list", t("reports.section.by_list"), [_col(t, "list", "text"), *slice_cols],
                   [[c.name, *_counts(c), c.answer_rate, c.abandon_rate, c.successful, c.conversion]
                    for c in r.by_list],
                   [{"list_ids": str(c.id)} if c.id else None for c in r.by_list])
    directions = _table("by_direction", t("reports.section.by_direction"),
                        [_col(t, "direction", "text"), *_categories(t)],
                        [[t(f"reports.direction.{d.direction}"), *_counts(d)] for d in r.by_direction],
                        [{"direction": d.direction} for d in r.by_direction])
    return [kpi, day, hour, campaigns, lists, directions]


def slices(r: s.OutcomeSlices, t: Translate) -> list[Table]:
    return [_table("slices", t(f"reports.slice.{r.dimension}"),
                   [_col(t, "key", "text", label=t(f"reports.slice.{r.dimension}")), *_categories(t),
                    _col(t, "answer_rate", "pct", ("answered", "total"))],
                   [[x.key, *_counts(x), x.answer_rate] for x in r.rows])]


def operators(r: s.Operators, t: Translate) -> list[Table]:
    cols = [_col(t, "rank", "int"), _col(t, "operator", "text"), _col(t, "handled", "int", "sum"),
            _col(t, "answered", "int", "sum"), _col(t, "talk", "ms", "sum"), _col(t, "wrap", "ms", "sum"),
            _col(t, "aht", "ms"), _col(t, "waiting", "ms", "sum"), _col(t, "logged_in", "ms", "sum"),
            _col(t, "paused", "ms", "sum"), _col(t, "successful", "int", "sum"),
            _col(t, "conversion", "pct", ("successful", "answered")), _col(t, "calls_per_hour", "pct"),
            _col(t, "codes", "text")]
    rows = [[o.rank, o.name, o.handled, o.answered, o.talk_ms, o.wrap_ms, o.aht_ms, o.waiting_ms, o.logged_in_ms,
             o.paused_ms, o.successful, o.conversion, o.calls_per_hour,
             ", ".join(f"{c.name}: {c.count}" for c in o.codes)] for o in r.rows]
    return [_table("operators", t("nav.reports.operators"), cols, rows,
                   [{"operator_ids": str(o.operator_id)} for o in r.rows])]


def states(r: s.States, t: Translate) -> list[Table]:
    cols = [_col(t, "operator", "text"), _col(t, "day", "date"), _col(t, "first_login", "datetime"),
            _col(t, "last_logout", "datetime"), _col(t, "logged_in", "ms", "sum"), _col(t, "ready", "ms", "sum"),
            _col(t, "reserved", "ms", "sum"), _col(t, "in_call", "ms", "sum"), _col(t, "wrap", "ms", "sum"),
            _col(t, "paused", "ms", "sum"), _col(t, "paused_by_reason", "text"), _col(t, "occupancy", "pct")]
    rows = [[x.name, x.day, x.first_login, x.last_logout, x.logged_in_ms, x.ready_ms, x.reserved_ms, x.in_call_ms,
             x.wrap_up_ms, x.paused_ms, ", ".join(f"{k}: {_hms(v)}" for k, v in x.paused_by_reason.items()),
             x.occupancy] for x in r.rows]
    return [_table("states", t("nav.reports.states"), cols, rows,
                   [{"operator_ids": str(x.operator_id), "date_from": x.day.isoformat(),
                     "date_to": x.day.isoformat(), "period": "custom"} for x in r.rows])]


def codes(r: s.Codes, t: Translate) -> list[Table]:
    main = _table("codes", t("nav.reports.codes"),
                  [_col(t, "code", "text"), _col(t, "category", "text"), _col(t, "successful", "bool"),
                   _col(t, "count", "int", "sum"), _col(t, "share", "pct")],
                  [[c.name, t(f"outcome.{c.category}"), c.successful, c.count, c.share] for c in r.rows])
    groups = _table("groups", t("reports.section.groups"),
                    [_col(t, "group", "text"), _col(t, "count", "int"), _col(t, "share", "pct")],
                    [[g.name, g.count, g.share] for g in r.groups], totals=False)
    pair_cols = [_col(t, "code", "text"), _col(t, "count", "int", "sum")]
    campaigns = _table("by_campaign", t("reports.section.by_campaign"), [_col(t, "campaign", "text"), *pair_cols],
                       [[p.name, p.code, p.count] for p in r.by_campaign],
                       [{"campaign_ids": str(p.id)} for p in r.by_campaign])
    ops = _table("by_operator", t("reports.section.by_operator"), [_col(t, "operator", "text"), *pair_cols],
                 [[p.name, p.code, p.count] for p in r.by_operator],
                 [{"operator_ids": str(p.id)} for p in r.by_operator])
    return [main, groups, campaigns, ops]


def abandon(r: s.Abandon, t: Translate) -> list[Table]:
    cols = [_col(t, "campaign", "text"), _col(t, "day", "date"), _col(t, "live_answers", "int", "sum"),
            _col(t, "abandoned", "int", "sum"), _col(t, "rate", "pct", ("abandoned", "live_answers")),
            _col(t, "rolling_rate", "pct"), _col(t, "cap", "pct"), _col(t, "over_cap", "bool"),
            _col(t, "inbound_answered", "int", "sum"), _col(t, "inbound_abandoned", "int", "sum")]
    rows = [[x.campaign, x.day, x.live_answers, x.abandoned, x.rate, x.rolling_rate, x.cap, x.over_cap,
             x.inbound_answered, x.inbound_abandoned] for x in r.rows]
    return [_table("abandon", t("nav.reports.abandon"), cols, rows,
                   [{"campaign_ids": str(x.campaign_id), "outcome": "abandoned", "direction": "outbound",
                     "period": "custom",
                     "date_from": x.day.isoformat(), "date_to": x.day.isoformat()} for x in r.rows])]


def progress(r: s.Progress, t: Translate) -> list[Table]:
    cols = [_col(t, "list", "text"), _col(t, "contacts", "int", "sum"), _col(t, "new", "int", "sum"),
            _col(t, "in_progress", "int", "sum"), _col(t, "done", "int", "sum"),
            *[Column(key=c, label=t(f"outcome.{c}"), kind="int", total="sum") for c in s.CATEGORIES],
            _col(t, "zone_uncertain", "int", "sum"), _col(t, "in_dnc", "int", "sum")]
    rows = [[x.name, x.total, x.new, x.in_progress, x.done, *[x.by_last_outcome.get(c, 0) for c in s.CATEGORIES],
             x.zone_uncertain, x.in_dnc] for x in r.lists]
    zones = _table("left_by_zone", t("reports.section.left_by_zone"),
                   [_col(t, "list", "text"), _col(t, "zone", "text"), _col(t, "contacts", "int", "sum"),
                    _col(t, "window_opens", "datetime")],
                   [[x.name, z.zone or "—", z.contacts, z.window_opens] for x in r.lists for z in x.left_by_zone])
    return [_table("lists", t("nav.reports.progress"), cols, rows, [{"list_ids": str(x.list_id)} for x in r.lists]),
            zones]


def shift(r: s.ShiftSummary, t: Translate) -> list[Table]:
    out = outcomes(r.outcomes, t)
    return [out[0], out[2], out[3], *operators(r.operators, t), *abandon(r.abandon, t)]


CALL_COLUMNS: list[tuple[str, Kind]] = [
    ("id", "int"), ("queued_at", "datetime"), ("direction", "text"), ("campaign", "text"), ("list", "text"),
    ("operator", "text"),
    ("number", "text"), ("caller_id", "text"), ("outcome", "text"), ("code", "text"), ("dialed_at", "datetime"),
    ("ringing_at", "datetime"), ("answered_at", "datetime"), ("connected_at", "datetime"), ("hung_up_at", "datetime"),
    ("wrap_up_ended_at", "datetime"), ("talk", "ms"), ("hangup_cause", "text")]


def call_columns(t: Translate) -> list[Column]:
    return [_col(t, k, kind) for k, kind in CALL_COLUMNS]


def _hms(ms: int | None) -> str:
    if ms is None:
        return ""
    sec = int(ms) // 1000
    return f"{sec // 3600}:{sec % 3600 // 60:02d}:{sec % 60:02d}"


hms = _hms

BUILDERS: dict[str, Callable[[Any, Translate], list[Table]]] = {
    "outcomes": outcomes, "slices": slices, "operators": operators, "states": states, "codes": codes,
    "abandon": abandon, "progress": progress, "shift": shift}
