"""Scheduled delivery of reports by e-mail (issue #14 §2).

A schedule (``models/delivery.py``) names a report with its filters, a format (PDF, XLSX, CSV), a period relative
to the run (today so far, yesterday, last week, last month) and when: daily at HH:MM in its time zone (the call
centre's by default), weekly on a weekday or monthly on a day (the last day of a shorter month). The worker, a task
of the API process (:func:`run_worker`), does two things every round:

1. **Runs for what is due.** Schedules whose ``next_run_at`` has come are locked (``FOR UPDATE SKIP LOCKED``); each
   gets a run row for its due moment (a unique index on schedule and due moment: one run however many processes
   look) with the period fixed from the due moment's local day, and its ``next_run_at`` moves on. Occurrences
   missed while no process ran collapse into one run, for the latest of them.
2. **Sending.** A run is claimed in a committed transaction of its own (``pending``/``retrying`` → ``sending``,
   attempts + 1, SKIP LOCKED, so two processes never take the same run), the report is rendered and the message
   handed to the SMTP server, then the result is recorded (``sent``; or ``retrying`` after 1, 5 and 15 minutes;
   ``failed`` after the fourth attempt). A process that dies between claiming and recording leaves the run
   ``sending``; after :data:`LEASE_S` another process takes it again as a new attempt. If the death came after
   the SMTP server had accepted the message, that message goes out a second time — at most once more, because
   the takeover is itself a claimed attempt: this is the documented "at most one resend after a crash". A run is
   never sent twice otherwise. Each claim is stamped with the clock's time at that claim, not the round's start,
   so a run claimed late in a long round does not look abandoned already. Once the server has accepted the message
   the run is ``sent``, whatever the server answers to QUIT.

SMTP goes through the standard library's ``smtplib`` in a worker thread (``asyncio.to_thread``): it covers
STARTTLS, implicit TLS and AUTH, is maintained with Python, and a handful of messages a day needs no async client
(one thread per message, which also keeps a slow server from stalling the event loop).

Time comes from a :class:`dialer.core.clock.Clock` (the app's ``state.reports_clock`` when a test sets one), so
tests move a clock instead of waiting.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import logging
import os
import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.core.clock import Clock, SystemClock
from dialer.exceptions import DialerError, ValidationFailed
from dialer.models import ReportSchedule, ReportView
from dialer.reports import rollup, service
from dialer.reports.charts import Chart, charts_of
from dialer.reports.exports import MEDIA, report_pdf, rows_csv, rows_xlsx, tables_csv, tables_xlsx
from dialer.reports.facts import Sealed
from dialer.reports.period import DIRECTIONS, Period, Preset, ReportFilter, ReportSettings, preset_days
from dialer.reports.tables import BUILDERS, Table, call_columns
from dialer.web import i18n

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

#: What a schedule may send: every report of the reports package, and the call list.
REPORTS = ("outcomes", "slices", "operators", "states", "codes", "abandon", "progress", "shift", "calls")
FORMATS = ("pdf", "xlsx", "csv")
PERIODS = ("yesterday", "today", "last_week", "last_month")
FREQUENCIES = ("daily", "weekly", "monthly")
#: Filters a schedule keeps (and takes from a saved view): the reports' filter bar without the period.
FILTER_KEYS = ("campaign_ids", "list_ids", "operator_ids", "pool_ids", "code_group_ids", "direction", "dimension",
               "outcome")
ID_FILTERS = ("campaign_ids", "list_ids", "operator_ids", "pool_ids", "code_group_ids")
#: Waits before the 2nd, 3rd and 4th attempt; a fourth failure is final.
BACKOFF_S = (60, 300, 900)
MAX_ATTEMPTS = len(BACKOFF_S) + 1
#: A run left ``sending`` this long belongs to a process that died: it is taken again.
LEASE_S = 30 * 60
#: The call list in a PDF holds at most this many calls (as the export does).
PDF_CALLS = 2000
EXPORT_BATCH = 2000
#: How often the worker looks for due schedules and runs (it is woken at once by "send now").
EVERY_S = 30.0

#: Placeholders of the subject and body templates.
PLACEHOLDERS = ("report", "period", "schedule", "date_from", "date_to")
DEFAULT_SUBJECT = {"ru": "{report} за {period}", "en": "{report} for {period}"}
DEFAULT_BODY = {
    "ru": "Здравствуйте!\n\nВо вложении отчёт «{report}» за {period}.\n\n"
          "Это письмо отправлено автоматически по расписанию «{schedule}» системы Dialer.",
    "en": "Hello,\n\nattached is the report \"{report}\" for {period}.\n\n"
          "This message was sent automatically by the Dialer schedule \"{schedule}\".",
}

#: ``name@domain.tld``: no spaces, one @, a dotted domain of letters, digits and hyphens (IDN as punycode or UTF-8).
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[\w](?:[\w-]{0,61}[\w])?\.)+[\w-]{2,63}$", re.UNICODE)


class DeliverySettings(BaseSettings):
    """``DIALER_SMTP_*``: the mail server scheduled reports go through.

    With ``DIALER_SMTP_USER`` set, the password crosses the network: it is sent only over TLS
    (``DIALER_SMTP_TLS=true``, port 465) or after STARTTLS (``DIALER_SMTP_STARTTLS=true``, port 587). Without either,
    a run fails with an error naming these settings, unless ``DIALER_SMTP_ALLOW_PLAINTEXT=true`` accepts AUTH in
    clear text (a relay on the same host or a trusted network only).
    """

    model_config = SettingsConfigDict(env_prefix="DIALER_SMTP_", extra="ignore", populate_by_name=True)
    host: str = ""
    #: Default: 465 with ``tls``, 587 with ``starttls``, else 25.
    port: int | None = Field(None, ge=1, le=65535)
    user: str = ""
    password: str = ""
    #: Upgrade a plain connection with STARTTLS (port 587).
    starttls: bool = False
    #: Implicit TLS from the first byte (SMTPS, port 465).
    tls: bool = False
    #: The From address.
    sender: str = Field("Dialer <dialer@localhost>", validation_alias="DIALER_SMTP_FROM")
    timeout_s: float = Field(60.0, gt=0)
    #: Log in (AUTH) over an unencrypted connection; off by default, as the password would travel in clear text.
    allow_plaintext: bool = False

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 465 if self.tls else 587 if self.starttls else 25


class DeliveryFailed(DialerError):
    status = 502
    title = "Delivery failed"
    type_slug = "delivery-failed"


class UnsafeSettings(DeliveryFailed):
    """The mail settings would expose the password: the run fails at once (trying again cannot help)."""


def check_settings(settings: DeliverySettings) -> None:
    """Refuse AUTH in clear text unless explicitly allowed (see :class:`DeliverySettings`)."""
    if settings.user and not (settings.tls or settings.starttls) and not settings.allow_plaintext:
        raise UnsafeSettings(
            "DIALER_SMTP_USER is set but neither DIALER_SMTP_TLS nor DIALER_SMTP_STARTTLS: the password would be "
            "sent in clear text; enable one of them, or set DIALER_SMTP_ALLOW_PLAINTEXT=true for a trusted relay")


def valid_email(value: str) -> bool:
    return len(value) <= 254 and bool(_EMAIL.match(value)) and ".." not in value.split("@")[0]


def check_template(value: str, field: str) -> str:
    """A subject or body template may use only :data:`PLACEHOLDERS` (``{{`` and ``}}`` for braces)."""
    try:
        value.format(**{p: "x" for p in PLACEHOLDERS})
    except KeyError as err:
        raise ValueError(f"unknown placeholder '{err.args[0]}'; allowed: "
                         f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)}") from None
    except (IndexError, ValueError) as err:
        raise ValueError(f"not a template ({err}); write {{{{ and }}}} for a brace") from None
    return value


# --- when ---------------------------------------------------------------------------------------------------------

def _occurs_on(day: date, frequency: str, weekday: int | None, month_day: int | None) -> bool:
    if frequency == "daily":
        return True
    if frequency == "weekly":
        return day.weekday() == weekday
    last = calendar.monthrange(day.year, day.month)[1]
    return day.day == min(month_day or 1, last)


def next_due(frequency: str, at: time, tz: ZoneInfo, after: datetime, *, weekday: int | None = None,
             month_day: int | None = None) -> datetime:
    """The first moment after ``after`` (UTC) when the schedule is due: ``at`` local time on a day it occurs.

    Local wall time follows daylight saving: "daily at 08:00" in Berlin is 07:00 UTC in winter and 06:00 UTC in
    summer. A time that does not exist on a spring-forward day (02:30) is read with the offset before the change,
    i.e. an hour later on the clock (03:30); a time that happens twice in autumn is its first occurrence.
    """
    day = after.astimezone(tz).date()
    for _ in range(400):
        if _occurs_on(day, frequency, weekday, month_day):
            moment = datetime.combine(day, at.replace(tzinfo=None)).replace(tzinfo=tz).astimezone(UTC)
            if moment > after:
                return moment
        day += timedelta(days=1)
    raise ValueError("no occurrence within 400 days")  # unreachable for valid schedules


def schedule_next(schedule: ReportSchedule, after: datetime) -> datetime:
    return next_due(schedule.frequency, schedule.at_time, ZoneInfo(schedule.time_zone), after,
                    weekday=schedule.weekday, month_day=schedule.month_day)


def period_days(period: str, due: datetime, tz: ZoneInfo) -> tuple[date, date]:
    """The local days a run made at ``due`` covers (``today``: the due day so far)."""
    return preset_days(Preset(period), due.astimezone(tz).date())


def period_text(first: date, last: date) -> str:
    return first.strftime("%d.%m.%Y") if first == last else f"{first:%d.%m.%Y} – {last:%d.%m.%Y}"


# --- what -----------------------------------------------------------------------------------------------------------

def _ids(value: Any, field: str) -> tuple[int, ...] | None:
    """Ids of a filter: a list of ints or the filter bar's ``"3,5"``; empty → no restriction."""
    if value is None or value == "" or value == []:
        return None
    parts = value.split(",") if isinstance(value, str) else value
    if not isinstance(parts, list):
        raise ValidationFailed.field(f"filters.{field}", "a list of ids")
    out = []
    for i, part in enumerate(parts):
        text_value = str(part).strip()
        if isinstance(part, bool) or not text_value.isdigit() or int(text_value) >= 2**63:
            raise ValidationFailed.field(f"filters.{field}", f"item {i + 1} ({part!r}) is not an id")
        out.append(int(text_value))
    return tuple(sorted(set(out)))


async def _members(session: AsyncSession, table: str, key: str, member: str,
                   ids: tuple[int, ...] | None) -> tuple[int, ...] | None:
    if ids is None:
        return None
    sql = f"SELECT DISTINCT {member} FROM {table} WHERE {key} = ANY(CAST(:ids AS bigint[]))"
    rows = await session.scalars(text(sql), {"ids": list(ids)})
    return tuple(sorted(int(r) for r in rows.all()))


async def effective_filters(session: AsyncSession, schedule: ReportSchedule) -> dict[str, Any]:
    """The saved view's filters (without its period), overlaid by the schedule's own."""
    merged: dict[str, Any] = {}
    if schedule.view_id is not None:
        view = await session.get(ReportView, schedule.view_id)
        if view is not None:
            merged.update({k: v for k, v in view.query.items() if k in FILTER_KEYS})
    merged.update({k: v for k, v in (schedule.filters or {}).items() if k in FILTER_KEYS and v not in (None, "", [])})
    return merged


async def report_filter(session: AsyncSession, filters: dict[str, Any], period: Period, now: datetime) -> ReportFilter:
    operators = _ids(filters.get("operator_ids"), "operator_ids")
    pools = await _members(session, "pool_operators", "pool_id", "operator_id",
                           _ids(filters.get("pool_ids"), "pool_ids"))
    if pools is not None:
        operators = tuple(sorted(set(pools) & set(operators))) if operators is not None else pools
    codes = await _members(session, "completion_code_group_members", "group_id", "code_id",
                           _ids(filters.get("code_group_ids"), "code_group_ids"))
    direction = filters.get("direction") or None
    if direction is not None and direction not in DIRECTIONS:
        raise ValidationFailed.field("filters.direction", f"one of {', '.join(DIRECTIONS)} (or empty for both)")
    return ReportFilter(period=period, now=now, campaign_ids=_ids(filters.get("campaign_ids"), "campaign_ids"),
                        list_ids=_ids(filters.get("list_ids"), "list_ids"), operator_ids=operators, code_ids=codes,
                        direction=direction)


@dataclass(frozen=True)
class Rendered:
    title: str
    file_name: str
    media_type: str
    data: bytes


def _file_name(title: str, first: date, last: date, fmt: str) -> str:
    span = first.isoformat() + ("" if first == last else f"_{last.isoformat()}")
    safe = re.sub(r"[^\w.-]+", "_", f"{title} {span}", flags=re.UNICODE).strip("_") or "report"
    return f"{safe}.{fmt}"


async def render(maker: async_sessionmaker[AsyncSession], schedule: ReportSchedule, first: date, last: date,
                 now: datetime) -> Rendered:
    """The schedule's report for the local days ``first``…``last`` as a file, in the schedule's language."""
    lang = schedule.language if schedule.language in i18n.LANGUAGES else i18n.DEFAULT
    t = i18n.translator(lang)
    tz = ZoneInfo(schedule.time_zone)
    period = Period(first, last, tz)
    name, fmt = schedule.report, schedule.format
    sealed: Sealed = await rollup.ensure_fresh(maker, now)
    async with maker() as session, session.begin():
        filters = await effective_filters(session, schedule)
        f = await report_filter(session, filters, period, now)
        subtitle = t("reports.pdf.filter").format(first=first.strftime("%d.%m.%Y"), last=last.strftime("%d.%m.%Y"),
                                                  tz=tz.key)
        generated = t("reports.pdf.generated").format(at=now.astimezone(tz).strftime("%d.%m.%Y %H:%M"))
        if name == "calls":
            title = t("nav.reports.calls")
            data = await _calls_file(session, f, filters.get("outcome"), fmt, t, lang, title, subtitle, generated)
        else:
            tables, charts, title = await _report_tables(session, name, f, sealed, filters, t)
            if fmt == "csv":
                data = tables_csv(tables, tz, lang, t("reports.totals"))
            elif fmt == "xlsx":
                data = await asyncio.to_thread(tables_xlsx, tables, tz, t("reports.totals"))
            else:
                data = await asyncio.to_thread(report_pdf, title, subtitle, tables, charts, tz, lang, generated,
                                               t("reports.totals"))
    return Rendered(title, _file_name(title, first, last, fmt), MEDIA[fmt], data)


async def _report_tables(session: AsyncSession, name: str, f: ReportFilter, sealed: Sealed, filters: dict[str, Any],
                         t: Callable[[str], str]) -> tuple[list[Table], list[Chart], str]:
    report: Any
    if name == "slices":
        report = await service.outcome_slices(session, f, str(filters.get("dimension") or "caller_id"))
        title = t(f"reports.slice.{report.dimension}")
    elif name == "progress":
        report = await service.progress(session, f)
        title = t("nav.reports.progress")
    else:
        report = await getattr(service, name)(session, f, sealed)
        title = t(f"nav.reports.{name}")
    return BUILDERS[name](report, t), charts_of(name, report, t), title


async def _calls_file(session: AsyncSession, f: ReportFilter, outcome: Any, fmt: str, t: Callable[[str], str],
                      lang: str, title: str, subtitle: str, generated: str) -> bytes:
    columns = call_columns(t)
    outcome_col = next(i for i, c in enumerate(columns) if c.key == "outcome")
    limit = PDF_CALLS if fmt == "pdf" else None
    rows: list[list[Any]] = []
    async for batch in service.call_batches(session, f, str(outcome) if outcome else None, EXPORT_BATCH):
        for r in batch:
            row = list(r)
            if row[outcome_col]:
                row[outcome_col] = t(f"outcome.{row[outcome_col]}")
            rows.append(row)
        if limit is not None and len(rows) >= limit:
            rows = rows[:limit]
            break
    tz = f.period.tz
    if fmt == "pdf":
        table = Table(key="calls", title=title, columns=columns, rows=rows)
        return await asyncio.to_thread(report_pdf, title, subtitle, [table], [], tz, lang, generated,
                                       t("reports.totals"))

    async def parts() -> Any:
        yield rows

    stream = rows_csv(columns, parts(), tz, lang) if fmt == "csv" else rows_xlsx(title, columns, parts(), tz,
                                                                                   t("reports.totals"))
    return b"".join([chunk async for chunk in stream])


def build_message(settings: DeliverySettings, schedule: ReportSchedule, rendered: Rendered, first: date, last: date,
                  now: datetime) -> EmailMessage:
    values = {"report": rendered.title, "period": period_text(first, last), "schedule": schedule.name,
              "date_from": first.strftime("%d.%m.%Y"), "date_to": last.strftime("%d.%m.%Y")}
    msg = EmailMessage()
    msg["Subject"] = schedule.subject.format(**values).replace("\n", " ").strip()
    msg["From"] = settings.sender
    msg["To"] = ", ".join(schedule.recipients)
    msg["Date"] = format_datetime(now.astimezone(UTC))
    domain = settings.sender.rsplit("@", 1)[-1].strip(" >") or "localhost"
    msg["Message-ID"] = make_msgid("report", domain=domain)
    msg.set_content(schedule.body.format(**values))
    kind, *extra = (part.strip() for part in rendered.media_type.split(";"))
    maintype, subtype = kind.split("/", 1)
    params = dict(p.split("=", 1) for p in extra if "=" in p)  # text/csv keeps its charset=utf-8
    msg.add_attachment(rendered.data, maintype=maintype, subtype=subtype, filename=rendered.file_name, params=params)
    return msg


def send_sync(settings: DeliverySettings, msg: EmailMessage) -> list[str]:
    """Hand ``msg`` to the SMTP server (blocking); the recipients it refused (the others got it)."""
    if not settings.host:
        raise DeliveryFailed("no mail server: set DIALER_SMTP_HOST (and DIALER_SMTP_PORT, DIALER_SMTP_FROM ...)")
    check_settings(settings)
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if settings.tls:
        smtp = smtplib.SMTP_SSL(settings.host, settings.effective_port, timeout=settings.timeout_s, context=context)
    else:
        smtp = smtplib.SMTP(settings.host, settings.effective_port, timeout=settings.timeout_s)
    try:
        if settings.starttls:
            smtp.starttls(context=context)
        if settings.user:
            smtp.login(settings.user, settings.password)
        refused = smtp.send_message(msg)
    except BaseException:
        smtp.close()
        raise
    # The server has accepted the message: that is the delivery. QUIT is a courtesy, and a server answering it
    # with an error, timing out or dropping the connection must not make the run a failure that is sent again.
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError) as err:
        log.info("the mail server's answer to QUIT after an accepted message: %s: %s", type(err).__name__, err)
        smtp.close()
    return sorted(refused)


# --- the worker ---------------------------------------------------------------------------------------------------

def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


async def make_due_runs(maker: async_sessionmaker[AsyncSession], now: datetime) -> int:
    """A run for every schedule whose moment has come; their next moments. Returns the runs made."""
    made = 0
    async with maker() as session, session.begin():
        rows = (await session.execute(text(
            "SELECT id, next_run_at, period, frequency, at_time, weekday, month_day, time_zone FROM report_schedules"
            " WHERE is_active AND next_run_at <= :now ORDER BY next_run_at FOR UPDATE SKIP LOCKED"),
            {"now": now})).all()
        for row in rows:
            tz = ZoneInfo(row.time_zone)
            due: datetime = row.next_run_at
            following = next_due(row.frequency, row.at_time, tz, due, weekday=row.weekday, month_day=row.month_day)
            while following <= now:  # occurrences missed while nothing ran: only the latest is sent
                due = following
                following = next_due(row.frequency, row.at_time, tz, due, weekday=row.weekday,
                                     month_day=row.month_day)
            first, last = period_days(row.period, due, tz)
            result = await session.execute(text(
                "INSERT INTO report_runs (schedule_id, due_at, manual, period_from, period_to, status, attempts,"
                " next_attempt_at) VALUES (:s, :due, false, :first, :last, 'pending', 0, :now)"
                " ON CONFLICT (schedule_id, due_at) WHERE NOT manual DO NOTHING"),
                {"s": row.id, "due": due, "first": first, "last": last, "now": now})
            made += result.rowcount or 0  # type: ignore[attr-defined]
            await session.execute(text("UPDATE report_schedules SET next_run_at = :next WHERE id = :id"),
                                  {"next": following, "id": row.id})
    return made


@dataclass(frozen=True)
class Claimed:
    id: int
    schedule_id: int
    attempts: int
    period_from: date
    period_to: date
    #: The previous attempt of this run was cut off by a process that stopped while sending.
    taken_over: bool


async def claim(maker: async_sessionmaker[AsyncSession], now: datetime, worker: str) -> Claimed | None:
    """Take one run that is due (or whose sender died) for this worker, committed before anything is sent.

    ``now`` must be the time of this claim (not the start of a long round): it stamps ``started_at``, from which
    other workers judge the lease, and it is the moment the lease of a dead sender is checked against."""
    async with maker() as session, session.begin():
        row = (await session.execute(text(
            "WITH next AS (SELECT id, status = 'sending' AS taken_over FROM report_runs"
            " WHERE (status IN ('pending', 'retrying') AND next_attempt_at <= :now)"
            " OR (status = 'sending' AND started_at < :stale)"
            " ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
            " UPDATE report_runs r SET status = 'sending', attempts = r.attempts + 1, started_at = :now,"
            " finished_at = NULL, worker = :worker FROM next WHERE r.id = next.id"
            " RETURNING r.id, r.schedule_id, r.attempts, r.period_from, r.period_to, next.taken_over"),
            {"now": now, "stale": now - timedelta(seconds=LEASE_S), "worker": worker})).first()
    if row is None:
        return None
    return Claimed(row.id, row.schedule_id, row.attempts, row.period_from, row.period_to, bool(row.taken_over))


async def _record(maker: async_sessionmaker[AsyncSession], run: Claimed, worker: str, **values: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in values)
    async with maker() as session, session.begin():
        # only while the run is still this worker's attempt (a takeover after the lease makes it another's)
        await session.execute(text(f"UPDATE report_runs SET {sets} WHERE id = :id AND status = 'sending'"
                                   " AND worker = :worker AND attempts = :attempts"),
                              {**values, "id": run.id, "worker": worker, "attempts": run.attempts})


async def deliver(maker: async_sessionmaker[AsyncSession], run: Claimed, now: datetime, worker: str,
                  settings: DeliverySettings, current: Callable[[], datetime] | None = None) -> str:
    """Render and send one claimed run (claimed at ``now``); record the outcome, stamped with ``current()`` (the
    clock's time when the attempt ends; ``now`` without a clock). Returns the run's new status."""
    ended = current or (lambda: now)
    note = ("the previous attempt was cut off while sending (its process stopped); the message may have gone out "
            "once already") if run.taken_over else None
    if run.attempts > MAX_ATTEMPTS:
        await _record(maker, run, worker, status="failed", finished_at=ended(), error=note)
        return "failed"
    try:
        check_settings(settings)  # before rendering: no report is made for settings that must not send it
        async with maker() as session:
            schedule = await session.get(ReportSchedule, run.schedule_id)
            if schedule is None:
                raise DeliveryFailed(f"schedule {run.schedule_id} is gone")
            session.expunge(schedule)
        rendered = await render(maker, schedule, run.period_from, run.period_to, now)
        msg = build_message(settings, schedule, rendered, run.period_from, run.period_to, now)
        refused = await asyncio.to_thread(send_sync, settings, msg)
    except Exception as err:
        reason = f"{type(err).__name__}: {err}"[:2000]
        if note:
            reason = f"{reason}; {note}"
        if run.attempts >= MAX_ATTEMPTS or isinstance(err, UnsafeSettings):
            await _record(maker, run, worker, status="failed", finished_at=ended(), error=reason)
            log.warning("report run %s failed for good: %s", run.id, reason)
            return "failed"
        retry_at = ended() + timedelta(seconds=BACKOFF_S[run.attempts - 1])
        await _record(maker, run, worker, status="retrying", next_attempt_at=retry_at, error=reason)
        log.info("report run %s failed (attempt %s), retried at %s: %s", run.id, run.attempts, retry_at, reason)
        return "retrying"
    error = f"refused by the mail server: {', '.join(refused)}" if refused else None
    if note:
        error = f"{error}; {note}" if error else note
    await _record(maker, run, worker, status="sent", finished_at=ended(), error=error,
                  message_id=str(msg["Message-ID"]))
    return "sent"


async def tick(maker: async_sessionmaker[AsyncSession], now: datetime, settings: DeliverySettings | None = None,
               worker: str | None = None, clock: Clock | None = None) -> list[str]:
    """One round of the worker at ``now``: runs for what is due, then every run that can be sent now. Returns the
    statuses the processed runs ended in.

    With a ``clock``, every claim and every recorded outcome takes the clock's current time: a round sending
    several reports can outlast :data:`LEASE_S`, and a run claimed late in it stamped with the round's start would
    look abandoned to another worker at once."""
    settings = settings or DeliverySettings()
    worker = worker or worker_name()
    current: Callable[[], datetime] = clock.utcnow if clock is not None else (lambda: now)
    await make_due_runs(maker, now)
    done: list[str] = []
    while (run := await claim(maker, (claimed_at := current()), worker)) is not None:
        done.append(await deliver(maker, run, claimed_at, worker, settings, current))
    return done


def wake(app: FastAPI) -> None:
    """Let the app's worker look now ("send now")."""
    event = getattr(app.state, "delivery_wake", None)
    if isinstance(event, asyncio.Event):
        event.set()


def clock_of(app: FastAPI) -> Clock:
    found = getattr(app.state, "reports_clock", None)
    return found if isinstance(found, Clock) else SystemClock()


async def run_worker(app: FastAPI, every_s: float = EVERY_S) -> None:
    """The delivery worker of an API process (``app.py`` starts it beside the rollups' sealing)."""
    event = asyncio.Event()
    app.state.delivery_wake = event
    app.state.delivery_task = asyncio.current_task()  # tests that drive the rounds themselves stop it
    worker = worker_name()
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), every_s)
        event.clear()
        try:
            clock = clock_of(app)
            await tick(app.state.sessionmaker, clock.utcnow(), DeliverySettings(), worker, clock)
        except Exception:  # the next round tries again; a run's own failure is recorded on the run
            log.exception("scheduled report delivery failed")


def centre_time_zone() -> str:
    return ReportSettings().time_zone
