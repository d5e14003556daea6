"""Scheduled report delivery (issue #14 §2) against a real SMTP server (aiosmtpd) started by the test: the report
arrives attached, a server that is down is retried after 1, 5 and 15 minutes and then marked failed, daylight saving
moves "daily at 08:00" with the local clock, a run is never sent twice (two workers; a worker that died while
sending is taken over once; a server failing QUIT after accepting the message or a round outlasting the lease
sends nothing twice), AUTH in clear text is refused unless allowed, the direction filter goes with a schedule, and
only holders of ``reports.schedule`` see or change schedules (mailing a report also needs ``reports.read``). Time
is a :class:`VirtualClock` the tests move."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import io
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pypdf
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from fastapi import FastAPI
from sqlalchemy import select, text

from dialer.api.routes import api_routes
from dialer.core.clock import VirtualClock
from dialer.models import AuditEntry
from dialer.reports import delivery
from dialer.reports.delivery import DeliverySettings, next_due, tick
from tests.conftest import client_for
from tests.reports.data import make_day


def mount(app: FastAPI) -> None:
    """The schedules' routes, if route discovery does not mount them yet (``reports/endpoints.py`` lists
    ``delivery_endpoints.router`` in its ``routers``; until then the tests add it themselves). FastAPI keeps an
    included router nested (``app.routes`` shows no paths of it), so the look goes through :func:`api_routes`."""
    from dialer.reports.delivery_endpoints import router

    if not any(path.startswith("/api/reports/schedules") for path, _route in api_routes(app)):
        app.include_router(router)


class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, DeliverySettings]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield inbox, DeliverySettings(host="127.0.0.1", port=controller.port, sender="Dialer <reports@dialer.test>")
    finally:
        controller.stop()


async def stop_worker(app: FastAPI) -> None:
    """The tests run the worker's rounds themselves (:func:`tick` at the virtual clock's time): the app's own
    worker (started by the app's lifespan) is stopped so that it takes no run behind their back."""
    for _ in range(200):  # the task made in the lifespan has its first turn soon after
        if getattr(app.state, "delivery_task", None) is not None:
            break
        await asyncio.sleep(0.01)
    task = getattr(app.state, "delivery_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    app.state.delivery_wake = None


@pytest.fixture
async def api(app: FastAPI, admin: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    mount(app)
    await stop_worker(app)
    yield admin


def clock(app: FastAPI, at: datetime) -> VirtualClock:
    virtual = VirtualClock(epoch=at)
    app.state.reports_clock = virtual
    return virtual


SCHEDULE: dict[str, Any] = {"name": "Итоги за вчера", "report": "outcomes", "format": "pdf", "period": "yesterday",
                            "frequency": "daily", "at_time": "08:00", "time_zone": "Europe/Moscow",
                            "recipients": ["head@example.ru", "Deputy@Example.ru"]}


async def runs_of(api: httpx.AsyncClient, schedule_id: int) -> list[dict[str, Any]]:
    r = await api.get(f"/api/reports/schedules/{schedule_id}/runs")
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_the_report_arrives_as_a_pdf_attachment(app: FastAPI, api: httpx.AsyncClient,
                                                      smtp: tuple[Inbox, DeliverySettings]) -> None:
    inbox, settings = smtp
    await make_day(app.state.sessionmaker)  # calls of 4 March 2026, Moscow
    virtual = clock(app, datetime(2026, 3, 5, 4, 0, tzinfo=UTC))  # 07:00 in Moscow
    r = await api.post("/api/reports/schedules", json=SCHEDULE)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["next_run_at"] == "2026-03-05T05:00:00Z"  # 08:00 Moscow (UTC+3)
    assert created["subject"] == "{report} за {period}" and "Во вложении" in created["body"]  # Russian defaults
    maker = app.state.sessionmaker
    assert await tick(maker, virtual.utcnow(), settings) == []  # not due yet
    virtual.advance(3600)
    assert await tick(maker, virtual.utcnow(), settings) == ["sent"]
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["Subject"] == "Итоги звонков за 04.03.2026"
    assert inbox.envelopes[0] == ("reports@dialer.test", ["head@example.ru", "Deputy@Example.ru"])
    plain = message.get_body(("plain",))
    assert plain is not None and "Во вложении отчёт «Итоги звонков» за 04.03.2026" in plain.get_content()
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "Итоги_звонков_2026-03-04.pdf"
    pdf = attachment.get_content()
    assert pdf.startswith(b"%PDF")
    pages = pypdf.PdfReader(io.BytesIO(pdf)).pages
    text_of = "".join(page.extract_text() for page in pages)
    assert "Итоги звонков" in text_of and "04.03.2026" in text_of
    (run,) = await runs_of(api, created["id"])
    assert run["status"] == "sent" and run["attempts"] == 1 and run["error"] is None
    assert run["period_from"] == run["period_to"] == "2026-03-04" and run["due_at"] == "2026-03-05T05:00:00Z"
    listed = (await api.get("/api/reports/schedules")).json()
    assert listed[0]["last_run"]["status"] == "sent" and listed[0]["next_run_at"] == "2026-03-06T05:00:00Z"
    # the next round sends nothing again
    virtual.advance(600)
    assert await tick(maker, virtual.utcnow(), settings) == [] and len(inbox.messages) == 1


async def test_smtp_down_is_retried_then_failed_and_visible(app: FastAPI, api: httpx.AsyncClient,
                                                           smtp: tuple[Inbox, DeliverySettings]) -> None:
    inbox, up = smtp
    down = DeliverySettings(host="127.0.0.1", port=free_port(), timeout_s=5)  # nothing listens there
    virtual = clock(app, datetime(2026, 3, 5, 5, 0, tzinfo=UTC))
    r = await api.post("/api/reports/schedules", json=SCHEDULE | {"format": "csv", "report": "abandon"})
    schedule = r.json()
    sent = await api.post(f"/api/reports/schedules/{schedule['id']}/send")
    assert sent.status_code == 202 and sent.json()["status"] == "pending" and sent.json()["manual"]
    maker = app.state.sessionmaker
    assert await tick(maker, virtual.utcnow(), down) == ["retrying"]
    (run,) = await runs_of(api, schedule["id"])
    assert run["status"] == "retrying" and run["attempts"] == 1 and "Connection" in run["error"]
    assert run["next_attempt_at"] == "2026-03-05T05:01:00Z"
    virtual.advance(59)
    assert await tick(maker, virtual.utcnow(), down) == []  # the back-off holds
    for wait, status in ((1, "retrying"), (300, "retrying"), (900, "failed")):
        virtual.advance(wait)
        assert await tick(maker, virtual.utcnow(), down) == [status]
    (run,) = await runs_of(api, schedule["id"])
    assert run["status"] == "failed" and run["attempts"] == 4 and run["finished_at"] is not None
    assert "ConnectionRefusedError" in run["error"]
    listed = (await api.get("/api/reports/schedules")).json()
    assert listed[0]["last_run"]["status"] == "failed"
    virtual.advance(3600)
    assert await tick(maker, virtual.utcnow(), up) == []  # failed is final
    # the server back: "send now" goes through
    await api.post(f"/api/reports/schedules/{schedule['id']}/send")
    assert await tick(maker, virtual.utcnow(), up) == ["sent"]
    (attachment,) = list(inbox.messages[0].iter_attachments())
    assert attachment.get_content_type() == "text/csv" and attachment.get_content().startswith("\ufeff")
    # no mail server configured at all: a clear reason, retried like any failure
    await api.post(f"/api/reports/schedules/{schedule['id']}/send")
    assert await tick(maker, virtual.utcnow(), DeliverySettings(host="")) == ["retrying"]
    newest = (await runs_of(api, schedule["id"]))[0]
    assert "DIALER_SMTP_HOST" in newest["error"]


def test_daily_at_eight_follows_daylight_saving() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    eight = time(8, 0)
    # winter (UTC+1) → summer (UTC+2) on Sunday 29 March 2026
    assert next_due("daily", eight, berlin, datetime(2026, 3, 28, 7, 0, tzinfo=UTC)) == \
        datetime(2026, 3, 29, 6, 0, tzinfo=UTC)
    assert next_due("daily", eight, berlin, datetime(2026, 3, 27, 7, 0, tzinfo=UTC)) == \
        datetime(2026, 3, 28, 7, 0, tzinfo=UTC)
    # summer → winter on Sunday 25 October 2026
    assert next_due("daily", eight, berlin, datetime(2026, 10, 24, 6, 0, tzinfo=UTC)) == \
        datetime(2026, 10, 25, 7, 0, tzinfo=UTC)
    # 02:30 does not exist on 29 March: it is read with the winter offset, 03:30 on the clock
    assert next_due("daily", time(2, 30), berlin, datetime(2026, 3, 29, 0, 0, tzinfo=UTC)) == \
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    # weekly on Monday; monthly on the 31st is the 28th in February
    assert next_due("weekly", eight, berlin, datetime(2026, 3, 25, 12, 0, tzinfo=UTC), weekday=0) == \
        datetime(2026, 3, 30, 6, 0, tzinfo=UTC)
    assert next_due("monthly", eight, berlin, datetime(2026, 2, 1, tzinfo=UTC), month_day=31) == \
        datetime(2026, 2, 28, 7, 0, tzinfo=UTC)
    # the period is taken from the local day of the due moment: 00:30 in Moscow is still "yesterday" = the day before
    moscow = ZoneInfo("Europe/Moscow")
    assert delivery.period_days("yesterday", datetime(2026, 3, 4, 21, 30, tzinfo=UTC), moscow) == \
        (date(2026, 3, 4), date(2026, 3, 4))
    assert delivery.period_days("last_month", datetime(2026, 3, 1, 5, 0, tzinfo=UTC), moscow) == \
        (date(2026, 2, 1), date(2026, 2, 28))


async def test_runs_across_the_spring_change(app: FastAPI, api: httpx.AsyncClient,
                                             smtp: tuple[Inbox, DeliverySettings]) -> None:
    inbox, settings = smtp
    virtual = clock(app, datetime(2026, 3, 28, 6, 0, tzinfo=UTC))
    body = SCHEDULE | {"time_zone": "Europe/Berlin", "format": "csv", "report": "codes"}
    schedule = (await api.post("/api/reports/schedules", json=body)).json()
    assert schedule["next_run_at"] == "2026-03-28T07:00:00Z"
    maker = app.state.sessionmaker
    due_times = []
    for _ in range(47):  # until 05:00 on the 30th, hour by hour
        virtual.advance(3600)
        if await tick(maker, virtual.utcnow(), settings):
            due_times.append(virtual.utcnow())
    assert due_times == [datetime(2026, 3, 28, 7, 0, tzinfo=UTC), datetime(2026, 3, 29, 6, 0, tzinfo=UTC)]
    runs = await runs_of(api, schedule["id"])
    assert [(r["due_at"], r["period_from"]) for r in reversed(runs)] == [
        ("2026-03-28T07:00:00Z", "2026-03-27"), ("2026-03-29T06:00:00Z", "2026-03-28")]
    assert len(inbox.messages) == 2


async def test_no_run_is_sent_twice(app: FastAPI, api: httpx.AsyncClient, smtp: tuple[Inbox, DeliverySettings]
                                    ) -> None:
    inbox, settings = smtp
    virtual = clock(app, datetime(2026, 3, 5, 4, 0, tzinfo=UTC))
    schedule = (await api.post("/api/reports/schedules", json=SCHEDULE | {"format": "csv", "report": "abandon"})).json()
    maker = app.state.sessionmaker
    virtual.advance(3600)  # 08:00 in Moscow
    # two API processes look at the same moment: one run, one message
    results = await asyncio.gather(*(tick(maker, virtual.utcnow(), settings, worker=f"w{i}") for i in range(3)))
    assert sorted(s for r in results for s in r) == ["sent"] and len(inbox.messages) == 1
    # a worker claims a run and dies before recording anything
    await api.post(f"/api/reports/schedules/{schedule['id']}/send")
    claimed = await delivery.claim(maker, virtual.utcnow(), "dead:1")
    assert claimed is not None and claimed.attempts == 1
    assert await tick(maker, virtual.utcnow(), settings, worker="alive:2") == []  # held while its lease lasts
    virtual.advance(delivery.LEASE_S + 1)
    assert await tick(maker, virtual.utcnow(), settings, worker="alive:2") == ["sent"]
    assert len(inbox.messages) == 2  # at most one more message for the run the dead worker held
    run = (await runs_of(api, schedule["id"]))[0]
    assert run["status"] == "sent" and run["attempts"] == 2 and run["worker"] == "alive:2"
    assert "cut off while sending" in run["error"]
    # the dead worker's late answer changes nothing
    await delivery._record(maker, claimed, "dead:1", status="failed", error="late")
    assert (await runs_of(api, schedule["id"]))[0]["status"] == "sent"


async def test_missed_occurrences_make_one_run(app: FastAPI, api: httpx.AsyncClient,
                                               smtp: tuple[Inbox, DeliverySettings]) -> None:
    inbox, settings = smtp
    virtual = clock(app, datetime(2026, 3, 5, 4, 0, tzinfo=UTC))
    schedule = (await api.post("/api/reports/schedules", json=SCHEDULE | {"format": "csv", "report": "abandon"})).json()
    virtual.advance(3 * 86400)  # nothing ran for three days
    assert await tick(app.state.sessionmaker, virtual.utcnow(), settings) == ["sent"]
    (run,) = await runs_of(api, schedule["id"])
    assert run["due_at"] == "2026-03-07T05:00:00Z" and run["period_from"] == "2026-03-06"
    assert (await api.get(f"/api/reports/schedules/{schedule['id']}")).json()["next_run_at"] == "2026-03-08T05:00:00Z"
    assert len(inbox.messages) == 1


async def test_validation_and_changes(app: FastAPI, api: httpx.AsyncClient) -> None:
    clock(app, datetime(2026, 3, 5, 4, 0, tzinfo=UTC))

    async def refused(body: dict[str, Any], field: str) -> str:
        r = await api.post("/api/reports/schedules", json=body)
        assert r.status_code == 422, r.text
        errors = r.json()["errors"]
        assert any(field in e["field"] or e["reason"].startswith(field) for e in errors), errors
        return str(errors)

    assert "not an e-mail address" in await refused(SCHEDULE | {"recipients": ["head@example.ru", "нет адреса"]},
                                                    "recipients")
    await refused(SCHEDULE | {"recipients": []}, "recipients")
    await refused(SCHEDULE | {"frequency": "weekly"}, "weekday")
    await refused(SCHEDULE | {"frequency": "monthly", "month_day": 32}, "month_day")
    await refused(SCHEDULE | {"report": "everything"}, "report")
    await refused(SCHEDULE | {"format": "docx"}, "format")
    assert "unknown placeholder 'when'" in await refused(SCHEDULE | {"subject": "Отчёт {when}"}, "subject")
    assert "unknown time zone" in await refused(SCHEDULE | {"time_zone": "Moscow"}, "time_zone")
    await refused(SCHEDULE | {"filters": {"period": "today"}}, "filters")
    await refused(SCHEDULE | {"view_id": 999}, "view_id")
    view = (await api.post("/api/reports/views", json={"report": "operators", "name": "Мои кампании",
                                                       "query": {"campaign_ids": "1"}})).json()
    assert "is of the report 'operators'" in await refused(SCHEDULE | {"view_id": view["id"]}, "view_id")
    # a weekly schedule in English, changed to monthly, switched off
    r = await api.post("/api/reports/schedules", json=SCHEDULE | {
        "report": "operators", "view_id": view["id"], "frequency": "weekly", "weekday": 0, "language": "en",
        "filters": {"operator_ids": "3, 5"}})
    assert r.status_code == 201, r.text
    weekly = r.json()
    assert weekly["subject"] == "{report} for {period}" and weekly["filters"] == {"operator_ids": [3, 5]}
    assert weekly["next_run_at"] == "2026-03-09T05:00:00Z"  # Monday 9 March, 08:00 Moscow
    r = await api.put(f"/api/reports/schedules/{weekly['id']}", json=SCHEDULE | {
        "frequency": "monthly", "month_day": 31, "is_active": False, "weekday": 3})
    assert r.status_code == 200 and r.json()["weekday"] is None and r.json()["next_run_at"] is None
    assert (await api.delete(f"/api/reports/schedules/{weekly['id']}")).status_code == 204
    assert (await api.get(f"/api/reports/schedules/{weekly['id']}")).status_code == 404
    async with app.state.sessionmaker() as session:
        actions = (await session.scalars(select(AuditEntry.action).where(
            AuditEntry.object_type == "report_schedules").order_by(AuditEntry.id))).all()
    assert [str(a) for a in actions] == ["created", "updated", "deleted"]


async def test_only_holders_of_reports_schedule(app: FastAPI, api: httpx.AsyncClient, anon: httpx.AsyncClient
                                               ) -> None:
    clock(app, datetime(2026, 3, 5, 4, 0, tzinfo=UTC))
    async with await client_for(app, "sup", roles=("supervisor",)) as sup:
        r = await sup.post("/api/reports/schedules", json=SCHEDULE)
        assert r.status_code == 201, r.text
        schedule_id = r.json()["id"]
        assert (await sup.get(f"/api/reports/schedules/{schedule_id}/runs")).status_code == 200
    # read-only reports (the tester reads everything) and operators: no schedules, no recipients' addresses
    for login, roles in (("tester", ("system_tester",)), ("op", ("operator",))):
        async with await client_for(app, login, roles=roles) as other:
            for method, url in (("GET", "/api/reports/schedules"), ("POST", "/api/reports/schedules"),
                                ("GET", f"/api/reports/schedules/{schedule_id}"),
                                ("PUT", f"/api/reports/schedules/{schedule_id}"),
                                ("DELETE", f"/api/reports/schedules/{schedule_id}"),
                                ("POST", f"/api/reports/schedules/{schedule_id}/send"),
                                ("GET", f"/api/reports/schedules/{schedule_id}/runs"),
                                ("GET", "/api/reports/schedules/options")):
                r = await other.request(method, url, json=SCHEDULE if method in ("POST", "PUT") else None)
                assert r.status_code == 403, (login, method, url, r.text)
    assert (await anon.get("/api/reports/schedules")).status_code == 401
    async with app.state.sessionmaker() as session:
        granted = set((await session.execute(text(
            "SELECT r.code FROM roles r JOIN role_permissions p ON p.role_id = r.id"
            " WHERE p.permission = 'reports.schedule'"))).scalars())
    assert granted == {"admin", "supervisor", "system_admin", "system_supervisor"}
    options = (await api.get("/api/reports/schedules/options")).json()
    assert options["reports"][-1] == "calls" and options["retries_after_s"] == [60, 300, 900]


async def test_calls_list_and_a_view_filter_by_mail(app: FastAPI, api: httpx.AsyncClient,
                                                    smtp: tuple[Inbox, DeliverySettings]) -> None:
    inbox, settings = smtp
    day = await make_day(app.state.sessionmaker)
    virtual = clock(app, datetime(2026, 3, 5, 5, 0, tzinfo=UTC))
    view = (await api.post("/api/reports/views", json={"report": "calls", "name": "Одна кампания",
                                                       "query": {"campaign_ids": str(day.world.campaign_id),
                                                                 "period": "this_month"}})).json()
    schedule = (await api.post("/api/reports/schedules", json=SCHEDULE | {
        "report": "calls", "format": "xlsx", "view_id": view["id"]})).json()
    await api.post(f"/api/reports/schedules/{schedule['id']}/send")
    assert await tick(app.state.sessionmaker, virtual.utcnow() + timedelta(seconds=1), settings) == ["sent"]
    (attachment,) = list(inbox.messages[0].iter_attachments())
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(attachment.get_content())).active
    assert sheet is not None and sheet.max_row == 1 + 7 + 1  # the day's seven calls and the totals row


def test_mount_adds_the_routes_once() -> None:
    """Whether route discovery already mounts the schedules' router or not, ``mount`` leaves exactly one copy."""
    from dialer.reports.delivery_endpoints import router

    def paths(app: FastAPI) -> list[str]:
        return [p for p, _ in api_routes(app) if p == "/api/reports/schedules/{schedule_id}/send"]

    bare = FastAPI()
    mount(bare)
    mount(bare)
    assert paths(bare) == ["/api/reports/schedules/{schedule_id}/send"]
    discovered = FastAPI()
    discovered.include_router(router)  # as app.py does once reports/endpoints.py lists it in ``routers``
    mount(discovered)
    assert paths(discovered) == ["/api/reports/schedules/{schedule_id}/send"]


class BadQuit(Inbox):
    """A server that accepts the message and then answers QUIT with 500, or never answers it."""

    def __init__(self, hang: bool) -> None:
        super().__init__()
        self.hang = hang
        self.release = asyncio.Event()

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        if self.hang:
            await self.release.wait()
        return "500 Internal confusion"


@pytest.mark.parametrize("hang", [False, True], ids=["quit-500", "quit-hangs"])
async def test_an_accepted_message_is_delivered_whatever_quit_answers(app: FastAPI, api: httpx.AsyncClient,
                                                                       hang: bool) -> None:
    handler = BadQuit(hang)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        # the hang ends with the client's read timeout (1 s here, 60 s by default)
        settings = DeliverySettings(host="127.0.0.1", port=controller.port, sender="reports@dialer.test",
                                    timeout_s=1)
        virtual = clock(app, datetime(2026, 3, 5, 5, 0, tzinfo=UTC))
        schedule = (await api.post("/api/reports/schedules", json=SCHEDULE | {"format": "csv",
                                                                             "report": "abandon"})).json()
        await api.post(f"/api/reports/schedules/{schedule['id']}/send")
        maker = app.state.sessionmaker
        assert await tick(maker, virtual.utcnow(), settings) == ["sent"]
        for wait in delivery.BACKOFF_S:  # nothing is sent again later
            virtual.advance(wait + 1)
            assert await tick(maker, virtual.utcnow(), settings) == []
        assert len(handler.messages) == 1
        (run,) = await runs_of(api, schedule["id"])
        assert run["status"] == "sent" and run["attempts"] == 1 and run["error"] is None
    finally:
        controller.loop.call_soon_threadsafe(handler.release.set)
        controller.stop()


async def test_a_run_claimed_late_in_a_long_round_is_not_taken_over(app: FastAPI, api: httpx.AsyncClient) -> None:
    """A round sends two runs; the first takes longer than the lease (the clock moves while the server holds the
    message). The second is claimed at the clock's time then, so another worker looking while it is being sent
    sees a live lease and sends nothing."""
    virtual = clock(app, datetime(2026, 3, 5, 5, 0, tzinfo=UTC))
    reached, release = threading.Event(), threading.Event()

    class Slow(Inbox):
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            answer = await super().handle_DATA(server, session, envelope)
            if len(self.messages) == 1:
                virtual.advance(delivery.LEASE_S + 60)  # the first message took 31 minutes
            elif len(self.messages) == 2:  # hold the second while another worker looks
                reached.set()
                await asyncio.to_thread(release.wait, 60)
            return answer

    inbox = Slow()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        settings = DeliverySettings(host="127.0.0.1", port=controller.port, sender="reports@dialer.test")
        ids = []
        for name in ("Первое", "Второе"):
            schedule = (await api.post("/api/reports/schedules", json=SCHEDULE | {
                "name": name, "format": "csv", "report": "abandon"})).json()
            await api.post(f"/api/reports/schedules/{schedule['id']}/send")
            ids.append(schedule["id"])
        maker = app.state.sessionmaker
        first = asyncio.create_task(tick(maker, virtual.utcnow(), settings, worker="w1", clock=virtual))
        assert await asyncio.to_thread(reached.wait, 60)
        other = await tick(maker, virtual.utcnow(), settings, worker="w2", clock=virtual)
        release.set()
        assert await first == ["sent", "sent"]
        assert other == [] and len(inbox.messages) == 2
        for schedule_id in ids:
            (run,) = await runs_of(api, schedule_id)
            assert run["status"] == "sent" and run["attempts"] == 1 and run["worker"] == "w1"
        second = (await runs_of(api, ids[1]))[0]
        assert second["started_at"] == "2026-03-05T05:31:00Z"  # its claim's time, not the round's start
    finally:
        release.set()
        controller.stop()


async def test_login_in_clear_text_is_refused_unless_allowed(app: FastAPI, api: httpx.AsyncClient) -> None:
    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"dialer", b"pw")
        return AuthResult(success=ok)

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), authenticator=authenticate,
                            auth_require_tls=False)
    controller.start()
    try:
        plain = DeliverySettings(host="127.0.0.1", port=controller.port, user="dialer", password="pw",
                                 sender="reports@dialer.test")
        virtual = clock(app, datetime(2026, 3, 5, 5, 0, tzinfo=UTC))
        schedule = (await api.post("/api/reports/schedules", json=SCHEDULE | {"format": "csv",
                                                                             "report": "abandon"})).json()
        await api.post(f"/api/reports/schedules/{schedule['id']}/send")
        maker = app.state.sessionmaker
        assert await tick(maker, virtual.utcnow(), plain) == ["failed"]  # final: trying again cannot help
        (run,) = await runs_of(api, schedule["id"])
        assert run["status"] == "failed" and run["attempts"] == 1 and not inbox.messages
        for setting in ("DIALER_SMTP_USER", "DIALER_SMTP_TLS", "DIALER_SMTP_STARTTLS", "DIALER_SMTP_ALLOW_PLAINTEXT"):
            assert setting in run["error"]
        # a trusted relay, explicitly allowed
        allowed = plain.model_copy(update={"allow_plaintext": True})
        await api.post(f"/api/reports/schedules/{schedule['id']}/send")
        assert await tick(maker, virtual.utcnow(), allowed) == ["sent"] and len(inbox.messages) == 1
    finally:
        controller.stop()


def test_allow_plaintext_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALER_SMTP_ALLOW_PLAINTEXT", "true")
    assert DeliverySettings().allow_plaintext is True
    monkeypatch.delenv("DIALER_SMTP_ALLOW_PLAINTEXT")
    assert DeliverySettings().allow_plaintext is False


async def test_mailing_a_report_needs_reading_reports(app: FastAPI, api: httpx.AsyncClient) -> None:
    """``reports.schedule`` alone manages schedules but mails nothing: creating, changing and "send now" need
    ``reports.read`` too (a call list holds phone numbers)."""
    clock(app, datetime(2026, 3, 5, 4, 0, tzinfo=UTC))
    schedule = (await api.post("/api/reports/schedules", json=SCHEDULE)).json()
    async with await client_for(app, "scheduler", grants={"reports.schedule": True}) as only:
        for method, url in (("POST", "/api/reports/schedules"), ("PUT", f"/api/reports/schedules/{schedule['id']}"),
                            ("POST", f"/api/reports/schedules/{schedule['id']}/send")):
            r = await only.request(method, url, json=SCHEDULE | {"recipients": ["outside@example.com"]}
                                   if method in ("POST", "PUT") else None)
            assert r.status_code == 403 and "reports.read" in r.text, (method, url, r.text)
        assert (await only.get(f"/api/reports/schedules/{schedule['id']}")).json()["recipients"] == \
            SCHEDULE["recipients"]  # unchanged
        assert await runs_of(only, schedule["id"]) == []  # nothing was queued
        assert (await only.get("/api/reports/schedules")).status_code == 200
    async with await client_for(app, "reader", grants={"reports.schedule": True, "reports.read": True}) as both:
        assert (await both.post(f"/api/reports/schedules/{schedule['id']}/send")).status_code == 202


async def test_the_direction_filter_goes_with_the_schedule(app: FastAPI, api: httpx.AsyncClient,
                                                           smtp: tuple[Inbox, DeliverySettings]) -> None:
    """A schedule's own ``direction`` and a saved view's are applied (the day's calls are all outbound)."""
    inbox, settings = smtp
    day = await make_day(app.state.sessionmaker)
    virtual = clock(app, datetime(2026, 3, 5, 5, 0, tzinfo=UTC))
    r = await api.post("/api/reports/schedules", json=SCHEDULE | {"filters": {"direction": "sideways"}})
    assert r.status_code == 422 and "direction" in r.text
    view = (await api.post("/api/reports/views", json={"report": "calls", "name": "Входящие",
                                                       "query": {"campaign_ids": str(day.world.campaign_id),
                                                                 "direction": "inbound"}})).json()
    by_view = (await api.post("/api/reports/schedules", json=SCHEDULE | {
        "report": "calls", "format": "csv", "view_id": view["id"]})).json()
    r = await api.post("/api/reports/schedules", json=SCHEDULE | {
        "report": "calls", "format": "csv", "filters": {"direction": "outbound"}})
    assert r.status_code == 201, r.text
    own = r.json()
    assert own["filters"] == {"direction": "outbound"}
    maker = app.state.sessionmaker
    counts = {}
    for schedule in (by_view, own):
        await api.post(f"/api/reports/schedules/{schedule['id']}/send")
        assert await tick(maker, virtual.utcnow(), settings) == ["sent"]
        (attachment,) = list(inbox.messages[-1].iter_attachments())
        counts[schedule["id"]] = len(attachment.get_content().strip().splitlines()) - 1  # less the header
    assert counts == {by_view["id"]: 0, own["id"]: 7}
