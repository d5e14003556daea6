"""Chart definitions of the reports as Vega-Lite specifications.

One specification serves the screen and the paper: the page hands it to vega-embed (npm, served from
``/reports/vendor``), the PDF export renders the same dict to SVG with vl-convert (the Vega-Lite compiler and Vega
renderer in one wheel from PyPI, no browser needed). Colours are the six outcome categories' and the operator states'
of the panels (``static/app.css``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from dialer.reports import schemas as s

Translate = Callable[[str], str]

OUTCOME_COLOURS = {"answered": "#2e9d44", "no_answer": "#9aa0a6", "busy": "#e07b00", "rejected": "#b7472a",
                   "abandoned": "#c2185b", "error": "#d32f2f"}
STATE_COLOURS = {"ready": "#2e9d44", "reserved": "#17a9c2", "in_call": "#1f6fd1", "wrap_up": "#e0a000",
                 "paused": "#8a7fa8"}
WIDTH = 640


class Chart(BaseModel):
    key: str
    title: str
    spec: dict[str, Any]


def _colour(t: Translate, colours: dict[str, str], prefix: str, title: str) -> dict[str, Any]:
    return {"field": "series", "type": "nominal", "title": title,
            "scale": {"domain": [t(f"{prefix}{k}") for k in colours], "range": list(colours.values())},
            "sort": [t(f"{prefix}{k}") for k in colours]}


def _stacked(t: Translate, values: list[dict[str, Any]], x: dict[str, Any], y_title: str,
             colours: dict[str, str], prefix: str, legend: str, horizontal: bool = False) -> dict[str, Any]:
    value = {"field": "value", "type": "quantitative", "title": y_title, "stack": "zero"}
    order = {"field": "order", "type": "quantitative"}
    encoding = {"y": x, "x": value} if horizontal else {"x": x, "y": value}
    return {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "width": WIDTH,
            "height": max(120, 22 * len({v["key"] for v in values})) if horizontal else 220,
            "data": {"values": values}, "mark": {"type": "bar", "tooltip": True},
            "encoding": {**encoding, "color": _colour(t, colours, prefix, legend), "order": order},
            "config": {"font": "DejaVu Sans", "view": {"stroke": None}}}


def _category_values(rows: list[Any], key: Callable[[Any], str], t: Translate) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        for i, cat in enumerate(s.CATEGORIES):
            n = getattr(row, cat)
            if n:
                out.append({"key": key(row), "series": t(f"outcome.{cat}"), "value": n, "order": i})
    return out


def outcomes(report: s.Outcomes, t: Translate) -> list[Chart]:
    count = t("reports.col.attempts")
    legend = t("reports.col.outcome")
    days = _category_values(report.by_day, lambda r: r.day.isoformat(), t)
    hours = _category_values(report.by_hour, lambda r: f"{r.hour:02d}", t)
    campaigns = _category_values(report.by_campaign, lambda r: r.name, t)
    return [
        Chart(key="by_day", title=t("reports.chart.by_day"), spec=_stacked(
            t, days, {"field": "key", "type": "ordinal", "title": t("reports.col.day")}, count, OUTCOME_COLOURS,
            "outcome.", legend)),
        Chart(key="by_hour", title=t("reports.chart.by_hour"), spec=_stacked(
            t, hours, {"field": "key", "type": "ordinal", "title": t("reports.col.hour"),
                       "scale": {"domain": [f"{h:02d}" for h in range(24)]}}, count, OUTCOME_COLOURS, "outcome.",
            legend)),
        Chart(key="by_campaign", title=t("reports.chart.by_campaign"), spec=_stacked(
            t, campaigns, {"field": "key", "type": "nominal", "title": t("reports.col.campaign"), "sort": None},
            count, OUTCOME_COLOURS, "outcome.", legend, horizontal=True)),
    ]


def _minutes(ms: int) -> float:
    return round(ms / 60_000, 1)


def operators(report: s.Operators, t: Translate) -> list[Chart]:
    parts = {"in_call": "talk_ms", "wrap_up": "wrap_ms", "ready": "waiting_ms", "paused": "paused_ms"}
    colours = {k: STATE_COLOURS[k] for k in parts}
    values = [{"key": r.name, "series": t(f"status.{state}"), "value": _minutes(getattr(r, field)), "order": i}
              for r in report.rows for i, (state, field) in enumerate(parts.items())]
    ranking = [{"key": r.name, "value": r.handled, "conversion": r.conversion} for r in report.rows]
    return [
        Chart(key="time", title=t("reports.chart.operator_time"), spec=_stacked(
            t, values, {"field": "key", "type": "nominal", "title": t("reports.col.operator"), "sort": None},
            t("reports.col.minutes"), colours, "status.", t("reports.col.state"), horizontal=True)),
        Chart(key="ranking", title=t("reports.chart.ranking"), spec={
            "$schema": "https://vega.github.io/schema/vega-lite/v5.json", "width": WIDTH,
            "height": max(120, 22 * len(ranking)), "data": {"values": ranking},
            "mark": {"type": "bar", "tooltip": True, "color": "#1f6fd1"},
            "encoding": {"y": {"field": "key", "type": "nominal", "title": t("reports.col.operator"), "sort": "-x"},
                         "x": {"field": "value", "type": "quantitative", "title": t("reports.col.handled")}},
            "config": {"font": "DejaVu Sans", "view": {"stroke": None}}}),
    ]


def states(report: s.States, t: Translate) -> list[Chart]:
    totals: dict[str, dict[str, int]] = {}
    for r in report.rows:
        acc = totals.setdefault(r.name, dict.fromkeys(STATE_COLOURS, 0))
        acc["ready"] += r.ready_ms
        acc["reserved"] += r.reserved_ms
        acc["in_call"] += r.in_call_ms
        acc["wrap_up"] += r.wrap_up_ms
        acc["paused"] += r.paused_ms
    values = [{"key": name, "series": t(f"status.{state}"), "value": _minutes(ms), "order": i}
              for name, acc in totals.items() for i, (state, ms) in enumerate(acc.items())]
    return [Chart(key="states", title=t("reports.chart.states"), spec=_stacked(
        t, values, {"field": "key", "type": "nominal", "title": t("reports.col.operator"), "sort": None},
        t("reports.col.minutes"), STATE_COLOURS, "status.", t("reports.col.state"), horizontal=True))]


def codes(report: s.Codes, t: Translate) -> list[Chart]:
    values = [{"key": r.name, "value": r.count, "series": t(f"outcome.{r.category}"), "order": 0}
              for r in report.rows]
    return [Chart(key="codes", title=t("reports.chart.codes"), spec=_stacked(
        t, values, {"field": "key", "type": "nominal", "title": t("reports.col.code"), "sort": "-x"},
        t("reports.col.attempts"), OUTCOME_COLOURS, "outcome.", t("reports.col.outcome"), horizontal=True))]


def abandon(report: s.Abandon, t: Translate) -> list[Chart]:
    values = [{"day": r.day.isoformat(), "campaign": r.campaign, "rate": r.rolling_rate, "cap": r.cap}
              for r in report.rows]
    return [Chart(key="rolling", title=t("reports.chart.rolling"), spec={
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json", "width": WIDTH, "height": 220,
        "data": {"values": values},
        "layer": [
            {"mark": {"type": "line", "point": True, "tooltip": True},
             "encoding": {"x": {"field": "day", "type": "ordinal", "title": t("reports.col.day")},
                          "y": {"field": "rate", "type": "quantitative", "title": t("reports.col.rolling_rate")},
                          "color": {"field": "campaign", "type": "nominal", "title": t("reports.col.campaign")}}},
            {"mark": {"type": "rule", "color": OUTCOME_COLOURS["abandoned"], "strokeDash": [4, 4]},
             "encoding": {"y": {"aggregate": "min", "field": "cap", "type": "quantitative"}}},
        ],
        "config": {"font": "DejaVu Sans", "view": {"stroke": None}}})]


def progress(report: s.Progress, t: Translate) -> list[Chart]:
    colours = {"new": "#9aa0a6", "in_progress": "#e0a000", "done": "#2e9d44"}
    values = [{"key": r.name, "series": t(f"reports.contact.{k}"), "value": getattr(r, k), "order": i}
              for r in report.lists for i, k in enumerate(colours)]
    return [Chart(key="lists", title=t("reports.chart.progress"), spec=_stacked(
        t, values, {"field": "key", "type": "nominal", "title": t("reports.col.list"), "sort": None},
        t("reports.col.contacts"), colours, "reports.contact.", t("reports.col.status"), horizontal=True))]


def shift(report: s.ShiftSummary, t: Translate) -> list[Chart]:
    by_hour = [c for c in outcomes(report.outcomes, t) if c.key == "by_hour"]
    return by_hour + operators(report.operators, t)[:1]


def charts_of(name: str, report: BaseModel, t: Translate) -> list[Chart]:
    builders: dict[str, Callable[[Any, Translate], list[Chart]]] = {
        "outcomes": outcomes, "operators": operators, "states": states, "codes": codes, "abandon": abandon,
        "progress": progress, "shift": shift}
    builder = builders.get(name)
    return builder(report, t) if builder else []
