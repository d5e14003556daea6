"""Scheduled report delivery over REST (``/api/reports/schedules``): schedules, "send now" and the run history.
Every endpoint needs ``reports.schedule``. Creating or changing a schedule and "send now" mail a report's contents
(the call list holds phone numbers) to any address, so they need ``reports.read`` as well: a user may send only what
he may read. Every change goes through the ORM, so the audit log records it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.api.deps import Session, require
from dialer.auth.permissions import P
from dialer.auth.service import Principal
from dialer.exceptions import NotFound, ValidationFailed
from dialer.models import ReportRun, ReportSchedule, ReportView
from dialer.reports import delivery as d
from dialer.reports import delivery_schemas as s

router = APIRouter(prefix="/api/reports/schedules", tags=["reports"])
SCHEDULE = Depends(require(P.reports_schedule))
#: Mailing a report's contents: also the right to read reports (the routes declare both dependencies).
READ = Depends(require(P.reports_read))


def _now(request: Request) -> datetime:
    return d.clock_of(request.app).utcnow()


async def _schedule(session: AsyncSession, schedule_id: int) -> ReportSchedule:
    schedule = await session.get(ReportSchedule, schedule_id)
    if schedule is None:
        raise NotFound(f"no report schedule {schedule_id}")
    return schedule


async def _check_view(session: AsyncSession, body: s.ScheduleWrite, principal: Principal) -> None:
    if body.view_id is None:
        return
    view = await session.get(ReportView, body.view_id)
    if view is None or view.user_id != principal.user_id:
        raise ValidationFailed.field("view_id", f"no saved view {body.view_id} of yours")
    if view.report != body.report:
        raise ValidationFailed.field("view_id", f"the view '{view.name}' is of the report '{view.report}', "
                                                f"not '{body.report}'")


def _apply(schedule: ReportSchedule, body: s.ScheduleWrite, now: datetime) -> None:
    lang = body.language
    schedule.name = body.name
    schedule.report = body.report
    schedule.view_id = body.view_id
    schedule.filters = body.filters
    schedule.format = body.format
    schedule.period = body.period
    schedule.frequency = body.frequency
    schedule.at_time = body.at_time
    schedule.weekday = body.weekday
    schedule.month_day = body.month_day
    schedule.time_zone = body.time_zone or d.centre_time_zone()
    schedule.language = lang
    schedule.recipients = body.recipients
    schedule.subject = body.subject or d.DEFAULT_SUBJECT[lang]
    schedule.body = body.body or d.DEFAULT_BODY[lang]
    schedule.is_active = body.is_active
    schedule.next_run_at = d.schedule_next(schedule, now) if body.is_active else None


async def _read(session: AsyncSession, schedule: ReportSchedule) -> s.ScheduleRead:
    out = s.ScheduleRead.model_validate(schedule)
    last = (await session.scalars(select(ReportRun).where(ReportRun.schedule_id == schedule.id)
                                  .order_by(ReportRun.id.desc()).limit(1))).first()
    out.last_run = s.RunRead.model_validate(last) if last is not None else None
    return out


@router.get("/options", response_model=s.ScheduleOptions,
            summary="What a schedule may choose: reports, formats, periods, the centre's zone, default texts")
async def options(_: Any = SCHEDULE) -> Any:
    return s.ScheduleOptions(reports=list(d.REPORTS), formats=list(d.FORMATS), periods=list(d.PERIODS),
                             frequencies=list(d.FREQUENCIES), time_zone=d.centre_time_zone(),
                             placeholders=list(d.PLACEHOLDERS), default_subject=d.DEFAULT_SUBJECT,
                             default_body=d.DEFAULT_BODY, smtp_configured=bool(d.DeliverySettings().host),
                             retries_after_s=list(d.BACKOFF_S))


@router.get("", response_model=list[s.ScheduleRead], summary="Report schedules, with each one's latest run")
async def list_schedules(session: Session, _: Any = SCHEDULE) -> Any:
    rows = (await session.scalars(select(ReportSchedule).order_by(ReportSchedule.name, ReportSchedule.id))).all()
    return [await _read(session, r) for r in rows]


@router.post("", response_model=s.ScheduleRead, status_code=201,
             summary="Schedule a report sent by e-mail (daily at HH:MM, weekly or monthly, in the centre's zone)")
async def create_schedule(body: s.ScheduleWrite, request: Request, session: Session,
                          principal: Principal = SCHEDULE, _: Any = READ) -> Any:
    await _check_view(session, body, principal)
    schedule = ReportSchedule(created_by=principal.user_id)
    _apply(schedule, body, _now(request))
    session.add(schedule)
    await session.flush()
    await session.refresh(schedule)
    return await _read(session, schedule)


@router.get("/{schedule_id}", response_model=s.ScheduleRead, summary="One report schedule")
async def get_schedule(schedule_id: int, session: Session, _: Any = SCHEDULE) -> Any:
    return await _read(session, await _schedule(session, schedule_id))


@router.put("/{schedule_id}", response_model=s.ScheduleRead,
            summary="Change a report schedule (its next run is computed again)")
async def update_schedule(schedule_id: int, body: s.ScheduleWrite, request: Request, session: Session,
                          principal: Principal = SCHEDULE, _: Any = READ) -> Any:
    schedule = await _schedule(session, schedule_id)
    if body.view_id != schedule.view_id:
        await _check_view(session, body, principal)
    _apply(schedule, body, _now(request))
    await session.flush()
    await session.refresh(schedule)
    return await _read(session, schedule)


@router.delete("/{schedule_id}", status_code=204, summary="Delete a report schedule and its run history")
async def delete_schedule(schedule_id: int, session: Session, _: Any = SCHEDULE) -> Response:
    await session.delete(await _schedule(session, schedule_id))
    return Response(status_code=204)


@router.post("/{schedule_id}/send", response_model=s.RunRead, status_code=202,
             summary="Send the report now (a run of its own, for the period as of now; retried like any run)")
async def send_now(schedule_id: int, request: Request, session: Session, principal: Principal = SCHEDULE,
                   _: Any = READ) -> Any:
    schedule = await _schedule(session, schedule_id)
    now = _now(request)
    first, last = d.period_days(schedule.period, now, ZoneInfo(schedule.time_zone))
    run = ReportRun(schedule_id=schedule.id, due_at=now, manual=True, requested_by=principal.user_id,
                    period_from=first, period_to=last, status="pending", attempts=0, next_attempt_at=now)
    session.add(run)
    await session.flush()
    await session.refresh(run)
    out = s.RunRead.model_validate(run)
    await session.commit()  # the worker must see it when woken
    d.wake(request.app)
    return out


@router.get("/{schedule_id}/runs", response_model=s.Runs, summary="A schedule's runs, newest first: status, "
                                                                   "attempts, errors")
async def list_runs(schedule_id: int, session: Session, page: int = Query(1, ge=1, le=100_000),
                    per_page: int = Query(20, ge=1, le=200), _: Any = SCHEDULE) -> Any:
    await _schedule(session, schedule_id)
    total = await session.scalar(select(func.count()).select_from(ReportRun)
                                 .where(ReportRun.schedule_id == schedule_id))
    rows = (await session.scalars(select(ReportRun).where(ReportRun.schedule_id == schedule_id)
                                  .order_by(ReportRun.id.desc()).offset((page - 1) * per_page).limit(per_page))).all()
    return {"items": rows, "total": int(total or 0)}


__all__ = ["router"]
