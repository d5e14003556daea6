"""Reports over REST: every report takes the same filter (``period`` or ``date_from``/``date_to``, the centre's time
zone, campaigns, lists, operators, pools, code groups) and needs ``reports.read``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.api.crud import SORTABLE
from dialer.api.deps import Session, require
from dialer.auth.permissions import P
from dialer.auth.service import Principal
from dialer.core.clock import Clock, SystemClock
from dialer.exceptions import NotFound, ValidationFailed
from dialer.models import ReportView, SuccessfulCode
from dialer.reports import rollup, service
from dialer.reports import schemas as s
from dialer.reports.charts import Chart, charts_of
from dialer.reports.clickhouse import copier
from dialer.reports.clickhouse.client import Clickhouse, ClickhouseError, ClickhouseSettings, connect
from dialer.reports.clickhouse.queries import Reader
from dialer.reports.exports import MEDIA, report_pdf, rows_csv, rows_xlsx, tables_csv, tables_xlsx
from dialer.reports.facts import Sealed
from dialer.reports.period import DIRECTIONS, Preset, ReportFilter, ReportSettings, resolve_period, zone
from dialer.reports.tables import BUILDERS, Table, call_columns
from dialer.uploads import attachment, download_name
from dialer.web import i18n

router = APIRouter(prefix="/api/reports", tags=["reports"])
#: Calls read from the database per round trip while exporting.
EXPORT_BATCH = 2000
SORTABLE["/api/reports/calls"] = tuple(sorted(service.CALL_SORT))


def clock_of(request: Request) -> Clock:
    """The app's clock for "today" (tests put a virtual one on ``app.state.reports_clock``)."""
    found = getattr(request.app.state, "reports_clock", None)
    return found if isinstance(found, Clock) else SystemClock()


def parse_ids(value: str | None, field: str) -> tuple[int, ...] | None:
    """``"3,5"`` → (3, 5); empty → no restriction."""
    if value is None or not value.strip():
        return None
    out = []
    for i, part in enumerate(value.split(",")):
        part = part.strip()
        if not part.isdigit() or int(part) >= 2**63:
            raise ValidationFailed.field(field, f"item {i + 1} ({part!r}) is not an id: give ids separated by commas")
        out.append(int(part))
    return tuple(sorted(set(out)))


async def _members(session: AsyncSession, table: str, key: str, member: str,
                   ids: tuple[int, ...] | None) -> tuple[int, ...] | None:
    if ids is None:
        return None
    rows = await session.scalars(
        text(f"SELECT DISTINCT {member} FROM {table} WHERE {key} = ANY(CAST(:ids AS bigint[]))"), {"ids": list(ids)})
    return tuple(sorted(int(r) for r in rows.all()))


async def report_filter(
    request: Request, session: Session,
    period: Preset = Query(Preset.today, description="today, yesterday, this_week, last_week, this_month, "
                                                      "last_month or custom (then date_from and date_to)"),
    date_from: date | None = Query(None, description="First local day of a custom period"),
    date_to: date | None = Query(None, description="Last local day of a custom period (inclusive)"),
    tz: str | None = Query(None, description="IANA time zone; default: the centre's (DIALER_REPORTS_TIME_ZONE)"),
    campaign_ids: str | None = Query(None, description="Campaign ids separated by commas"),
    list_ids: str | None = Query(None, description="Contact list ids separated by commas"),
    operator_ids: str | None = Query(None, description="Operator ids separated by commas"),
    pool_ids: str | None = Query(None, description="Operator pool ids: their operators"),
    code_group_ids: str | None = Query(None, description="Completion-code group ids: their codes"),
    direction: str | None = Query(None, description="outbound or inbound (default: both)"),
) -> ReportFilter:
    now = clock_of(request).utcnow()
    resolved = resolve_period(period, date_from, date_to, zone(tz or ReportSettings().time_zone), now)
    operators = parse_ids(operator_ids, "operator_ids")
    pools = await _members(session, "pool_operators", "pool_id", "operator_id", parse_ids(pool_ids, "pool_ids"))
    if pools is not None:
        operators = tuple(sorted(set(pools) & set(operators))) if operators is not None else pools
    codes = await _members(session, "completion_code_group_members", "group_id", "code_id",
                           parse_ids(code_group_ids, "code_group_ids"))
    if direction is not None and not direction.strip():
        direction = None
    if direction is not None and direction not in DIRECTIONS:
        raise ValidationFailed.field("direction", f"one of {', '.join(DIRECTIONS)} (or empty for both)")
    return ReportFilter(period=resolved, now=now, campaign_ids=parse_ids(campaign_ids, "campaign_ids"),
                        list_ids=parse_ids(list_ids, "list_ids"), operator_ids=operators, code_ids=codes,
                        direction=direction)


async def sealed_marks(request: Request) -> Sealed:
    """The rollups' marks, after sealing the hours that can be sealed (in a session of its own)."""
    return await rollup.ensure_fresh(request.app.state.sessionmaker, clock_of(request).utcnow())


async def clickhouse_reader(request: Request, session: Session) -> Reader | None:
    """The ClickHouse copy's reader when the copy is enabled (tests put one on ``app.state.clickhouse``), reachable
    and complete: until its initial load is done, while its oldest waiting change is older than
    ``DIALER_CLICKHOUSE_MAX_LAG_S`` (ClickHouse down, the copier behind) or when ClickHouse cannot be connected to,
    reports read PostgreSQL, so they are never short of calls (a query failing later falls back too: service)."""
    found = getattr(request.app.state, "clickhouse", None)
    try:
        ch = found if isinstance(found, Clickhouse) else connect(data_dir=request.app.state.settings.data_dir)
    except ClickhouseError as error:
        service.clickhouse_failed(error)
        return None
    if ch is None or not await copier.readable(session):
        return None
    lag = await session.scalar(text(
        "SELECT extract(epoch FROM now() - created_at) FROM clickhouse_outbox ORDER BY id LIMIT 1"))
    if lag is not None and float(lag) > ClickhouseSettings().clickhouse_max_lag_s:
        return None
    return Reader(ch)


READ = Depends(require(P.reports_read))
Filter = Depends(report_filter)
Marks = Depends(sealed_marks)
CH = Depends(clickhouse_reader)


@router.get("/outcomes", response_model=s.Outcomes, summary="Outcomes: KPI tiles, the six categories by day, hour, "
                                                             "campaign and list")
async def get_outcomes(session: Session, f: ReportFilter = Filter, sealed: Sealed = Marks,
                  ch: Reader | None = CH, _: Any = READ) -> Any:
    return await service.outcomes(session, f, sealed, ch)


@router.get("/outcomes/slices", response_model=s.OutcomeSlices,
            summary="The six categories by caller ID, time zone, region, carrier or selection")
async def get_outcome_slices(session: Session, dimension: str = Query(..., description=", ".join(service.DIMENSIONS)),
                             f: ReportFilter = Filter, ch: Reader | None = CH, _: Any = READ) -> Any:
    return await service.outcome_slices(session, f, dimension, ch)


@router.get("/operators", response_model=s.Operators, summary="Operators: calls, talk/wrap-up/waiting, AHT, codes, "
                                                               "conversion, calls per logged-in hour, ranking")
async def get_operators(session: Session, f: ReportFilter = Filter, sealed: Sealed = Marks,
                  ch: Reader | None = CH, _: Any = READ) -> Any:
    return await service.operators(session, f, sealed, ch)


@router.get("/states", response_model=s.States, summary="Operator time in state per operator per day, occupancy")
async def get_states(session: Session, f: ReportFilter = Filter, sealed: Sealed = Marks,
                  ch: Reader | None = CH, _: Any = READ) -> Any:
    return await service.states(session, f, sealed, ch)


@router.get("/codes", response_model=s.Codes, summary="Completion codes by code, group, campaign and operator")
async def get_codes(session: Session, f: ReportFilter = Filter, sealed: Sealed = Marks,
                  ch: Reader | None = CH, _: Any = READ) -> Any:
    return await service.codes(session, f, sealed, ch)


@router.get("/abandon", response_model=s.Abandon, summary="Abandon ledger: per campaign per day, rolling 30 days "
                                                           "against the campaign's cap")
async def get_abandon(session: Session, f: ReportFilter = Filter, sealed: Sealed = Marks,
                  ch: Reader | None = CH, _: Any = READ) -> Any:
    return await service.abandon(session, f, sealed, ch)


@router.get("/progress", response_model=s.Progress, summary="Lists and campaigns progress now, what is left per zone")
async def get_progress(session: Session, f: ReportFilter = Filter, _: Any = READ) -> Any:
    return await service.progress(session, f)


@router.get("/calls", response_model=s.Calls, summary="Calls (CDR): finished attempts with every stage time")
async def get_calls(session: Session, f: ReportFilter = Filter, sealed: Sealed = Marks,
                    outcome: str | None = Query(None, description="One of the six categories"),
                    page: int = Query(1, ge=1, le=100_000), per_page: int = Query(50, ge=1, le=500),
                    sort: str | None = Query(None, description="Comma-separated columns, '-' for descending "
                                                               "(default -id)"),
                    ch: Reader | None = CH, _: Any = READ) -> Any:
    return await service.calls(session, f, sealed, outcome=outcome, page=page, per_page=per_page, sort=sort,
                               ch=ch)


@router.get("/shift", response_model=s.ShiftSummary, summary="Shift summary: outcomes, operators and the abandon "
                                                              "ledger of the period (one day: yesterday by default)")
async def get_shift(session: Session, f: ReportFilter = Filter, sealed: Sealed = Marks,
                  ch: Reader | None = CH, _: Any = READ) -> Any:
    return await service.shift(session, f, sealed, ch)


@router.get("/clickhouse", response_model=s.ClickhouseStatus,
            summary="The ClickHouse copy: mode, rows waiting to be copied and the oldest one's age, the last error")
async def get_clickhouse(request: Request, session: Session, _: Any = READ) -> Any:
    settings = ClickhouseSettings()
    if getattr(request.app.state, "clickhouse", None) is not None:
        settings = settings.model_copy(update={"clickhouse": "embedded"})
    return await copier.status(session, settings)


@router.get("/settings", response_model=s.ReportSettingsRead, summary="The centre's time zone reports use")
async def get_settings(_: Any = READ) -> Any:
    return {"time_zone": ReportSettings().time_zone}


@router.get("/successful-codes", response_model=s.SuccessfulCodes,
            summary="Completion codes whose answered calls count as converted")
async def get_successful(session: Session, _: Any = READ) -> Any:
    return {"code_ids": sorted((await session.scalars(select(SuccessfulCode.code_id))).all())}


@router.put("/successful-codes", response_model=s.SuccessfulCodes,
            summary="Set which completion codes count as successful (conversion)")
async def put_successful(body: s.SuccessfulCodes, session: Session, _: Any = Depends(require(P.codes_write))) -> Any:
    wanted = set(body.code_ids)
    known = set((await session.scalars(text("SELECT id FROM completion_codes WHERE id = ANY(CAST(:ids AS bigint[]))"),
                                       {"ids": sorted(wanted)})).all())
    for i, code_id in enumerate(body.code_ids):
        if code_id not in known:
            raise ValidationFailed.field(f"code_ids[{i}]", f"no completion code {code_id}")
    current = set((await session.scalars(select(SuccessfulCode.code_id))).all())
    # Through the ORM, so the audit log records each mark set or removed.
    for code_id in sorted(current - wanted):
        row = await session.get(SuccessfulCode, code_id)
        if row is not None:
            await session.delete(row)
    session.add_all(SuccessfulCode(code_id=c) for c in sorted(wanted - current))
    await session.flush()
    return {"code_ids": sorted(wanted)}


__all__ = ["router"]


# --- Views (tables and charts for the pages) and exports ------------------------------------------------------

REPORTS = ("outcomes", "slices", "operators", "states", "codes", "abandon", "progress", "shift")
#: A PDF of the call list holds at most this many calls (the CSV and XLSX hold them all).
PDF_CALLS = 2000


class ReportPage(BaseModel):
    name: str
    title: str
    applied: s.Applied
    report: dict[str, Any]
    tables: list[Table]
    charts: list[Chart]


async def _report(name: str, session: AsyncSession, f: ReportFilter, sealed: Sealed, dimension: str | None,
                  ch: Reader | None = None) -> Any:
    if name not in REPORTS:
        raise NotFound(f"no report {name!r}; reports: {', '.join(REPORTS)}")
    if name == "slices":
        return await service.outcome_slices(session, f, dimension or "caller_id", ch)
    if name == "progress":
        return await service.progress(session, f)
    report = getattr(service, name)
    return await report(session, f, sealed, ch)


def _translator(request: Request) -> tuple[str, Callable[[str], str]]:
    lang = i18n.api_language(request)
    return lang, i18n.translator(lang)


async def _view(request: Request, name: str, session: AsyncSession, f: ReportFilter, sealed: Sealed,
                dimension: str | None, ch: Reader | None = None) -> ReportPage:
    report = await _report(name, session, f, sealed, dimension, ch)
    _lang, t = _translator(request)
    return ReportPage(name=name, title=t(f"nav.reports.{name}") if name != "slices" else
                      t(f"reports.slice.{report.dimension}"), applied=report.applied,
                      report=report.model_dump(mode="json"), tables=BUILDERS[name](report, t),
                      charts=charts_of(name, report, t))


@router.get("/{name}/view", response_model=ReportPage,
            summary="A report as titled tables (typed columns, totals, drill-down filters) and Vega-Lite charts")
async def get_view(name: str, request: Request, session: Session, f: ReportFilter = Filter, sealed: Sealed = Marks,
                   dimension: str | None = Query(None, description="For slices: " + ", ".join(service.DIMENSIONS)),
                   ch: Reader | None = CH, _: Any = READ) -> Any:
    return await _view(request, name, session, f, sealed, dimension, ch)


def _file_name(title: str, f: ReportFilter, fmt: str) -> str:
    span = f.period.first.isoformat() + ("" if f.period.first == f.period.last else f"_{f.period.last.isoformat()}")
    return download_name(f"{title} {span}", fmt, fallback="report")


EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {MEDIA["csv"]: {}, MEDIA["xlsx"]: {}, MEDIA["pdf"]: {}}}}


@router.get("/calls/export", summary="Export the call list (CSV and XLSX stream every call; PDF the first 2000)",
            responses=EXPORT_RESPONSES)
async def export_calls(request: Request, f: ReportFilter = Filter,
                       format: str = Query("csv", pattern="^(csv|xlsx|pdf)$"),
                       outcome: str | None = Query(None, description="One of the six categories"),
                       _: Any = READ) -> Response:
    if outcome is not None and outcome not in s.CATEGORIES:
        raise ValidationFailed.field("outcome", f"one of {', '.join(s.CATEGORIES)}")
    lang, t = _translator(request)
    columns = call_columns(t)
    title = t("nav.reports.calls")
    tz = f.period.tz
    maker = request.app.state.sessionmaker
    outcome_col = next(i for i, c in enumerate(columns) if c.key == "outcome")
    direction_col = next(i for i, c in enumerate(columns) if c.key == "direction")

    async def parts(limit: int | None = None) -> AsyncIterator[list[list[Any]]]:
        sent = 0
        async with maker() as session, session.begin():
            async for batch in service.call_batches(session, f, outcome, EXPORT_BATCH):
                rows = [list(r) for r in batch]
                for row in rows:
                    if row[outcome_col]:
                        row[outcome_col] = t(f"outcome.{row[outcome_col]}")
                    row[direction_col] = t(f"reports.direction.{row[direction_col]}")
                if limit is not None:
                    rows = rows[:limit - sent]
                sent += len(rows)
                yield rows
                if limit is not None and sent >= limit:
                    return

    name = _file_name(title, f, format)
    if format == "pdf":
        rows = [row async for part in parts(PDF_CALLS) for row in part]
        table = Table(key="calls", title=title, columns=columns, rows=rows)
        pdf = await asyncio.to_thread(report_pdf, title, _subtitle(t, f), [table], [], tz, lang,
                                      _generated(t, f), t("reports.totals"))
        return Response(pdf, media_type=MEDIA["pdf"], headers=attachment(name, "pdf"))
    body = rows_csv(columns, parts(), tz, lang) if format == "csv" else \
        rows_xlsx(title, columns, parts(), tz, t("reports.totals"))
    return StreamingResponse(body, media_type=MEDIA[format], headers=attachment(name, format))


def _subtitle(t: Callable[[str], str], f: ReportFilter) -> str:
    return t("reports.pdf.filter").format(first=f.period.first.strftime("%d.%m.%Y"),
                                          last=f.period.last.strftime("%d.%m.%Y"), tz=f.period.tz.key)


def _generated(t: Callable[[str], str], f: ReportFilter) -> str:
    return t("reports.pdf.generated").format(at=f.now.astimezone(f.period.tz).strftime("%d.%m.%Y %H:%M"))


@router.get("/{name}/export", summary="Export a report as CSV, XLSX (a sheet per table) or PDF (A4, with charts)",
            responses=EXPORT_RESPONSES)
async def export_report(name: str, request: Request, session: Session, f: ReportFilter = Filter,
                        sealed: Sealed = Marks, format: str = Query("csv", pattern="^(csv|xlsx|pdf)$"),
                        dimension: str | None = Query(None, description="For slices: "
                                                      + ", ".join(service.DIMENSIONS)),
                        ch: Reader | None = CH, _: Any = READ) -> Response:
    view = await _view(request, name, session, f, sealed, dimension, ch)
    lang, t = _translator(request)
    tz = f.period.tz
    file_name = _file_name(view.title, f, format)
    if format == "csv":
        data = tables_csv(view.tables, tz, lang, t("reports.totals"))
    elif format == "xlsx":
        data = await asyncio.to_thread(tables_xlsx, view.tables, tz, t("reports.totals"))
    else:
        data = await asyncio.to_thread(report_pdf, view.title, _subtitle(t, f), view.tables, view.charts, tz, lang,
                                       _generated(t, f), t("reports.totals"))
    return Response(data, media_type=MEDIA[format], headers=attachment(file_name, format))


# --- Saved views ------------------------------------------------------------------------------------------------

#: What a saved view may keep: the filter bar's parameters and the call list's sort.
VIEW_KEYS = frozenset({"period", "date_from", "date_to", "tz", "campaign_ids", "list_ids", "operator_ids", "pool_ids",
                       "code_group_ids", "direction", "outcome", "dimension", "sort", "per_page"})
VIEW_REPORTS = ("outcomes", "operators", "states", "codes", "progress", "abandon", "calls", "shift")


def _check_view(body: s.ViewWrite) -> None:
    if body.report not in VIEW_REPORTS:
        raise ValidationFailed.field("report", f"one of {', '.join(VIEW_REPORTS)}")
    for key, value in body.query.items():
        if key not in VIEW_KEYS:
            raise ValidationFailed.field(f"query.{key}", f"not a filter of the reports; allowed: "
                                                         f"{', '.join(sorted(VIEW_KEYS))}")
        if len(value) > 2000:
            raise ValidationFailed.field(f"query.{key}", "longer than 2000 characters")


@router.get("/views", response_model=list[s.ViewRead], summary="The current user's saved views (of one report)")
async def list_views(session: Session, report: str | None = Query(None), principal: Principal = READ) -> Any:
    stmt = select(ReportView).where(ReportView.user_id == principal.user_id)
    if report is not None:
        stmt = stmt.where(ReportView.report == report)
    return (await session.scalars(stmt.order_by(ReportView.report, ReportView.name))).all()


@router.post("/views", response_model=s.ViewRead, status_code=201,
             summary="Save a view of a report for the current user (is_default: the page opens with it)")
async def create_view(body: s.ViewWrite, session: Session, principal: Principal = READ) -> Any:
    _check_view(body)
    if body.is_default:
        await _clear_default(session, principal.user_id, body.report)
    view = ReportView(user_id=principal.user_id, report=body.report, name=body.name.strip() or body.name,
                      query=body.query, is_default=body.is_default)
    session.add(view)
    await session.flush()
    await session.refresh(view)
    return view


async def _clear_default(session: AsyncSession, user_id: int, report: str) -> None:
    for other in (await session.scalars(select(ReportView).where(
            ReportView.user_id == user_id, ReportView.report == report, ReportView.is_default))).all():
        other.is_default = False
    await session.flush()


async def _own_view(session: AsyncSession, view_id: int, principal: Principal) -> ReportView:
    view = await session.get(ReportView, view_id)
    if view is None or view.user_id != principal.user_id:
        raise NotFound(f"no saved view {view_id} of yours")
    return view


@router.put("/views/{view_id}", response_model=s.ViewRead, summary="Change one of the current user's saved views")
async def update_view(view_id: int, body: s.ViewWrite, session: Session, principal: Principal = READ) -> Any:
    _check_view(body)
    view = await _own_view(session, view_id, principal)
    if body.is_default and not view.is_default:
        await _clear_default(session, principal.user_id, body.report)
    view.report, view.name, view.query, view.is_default = body.report, body.name, body.query, body.is_default
    await session.flush()
    return view


@router.delete("/views/{view_id}", status_code=204, summary="Delete one of the current user's saved views")
async def delete_view(view_id: int, session: Session, principal: Principal = READ) -> Response:
    await session.delete(await _own_view(session, view_id, principal))
    return Response(status_code=204)


# Route discovery (dialer.app.discover_routers) mounts a domain's ``routers`` when it has them: the scheduled
# deliveries' API lives in a module of its own.
from dialer.reports.delivery_endpoints import router as delivery_router  # noqa: E402

routers = [router, delivery_router]
