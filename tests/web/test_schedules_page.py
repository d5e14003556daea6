"""The page of scheduled report delivery in the browser: a schedule made through the form (a bad address refused at
its field), "send now" delivered by the application's own worker to a real SMTP server (aiosmtpd), then a delivery
to a server that is down shown with its error in the run history. Screenshot: test-artifacts/report_schedules.png."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from playwright.async_api import Page, expect

import dialer.app
from tests.reports.test_delivery import Inbox, free_port, mount
from tests.web.conftest import StartServer, login, screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    monkeypatch.setenv("DIALER_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("DIALER_SMTP_PORT", str(controller.port))
    monkeypatch.setenv("DIALER_SMTP_FROM", "reports@dialer.test")
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture
def mounted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The live server's app with the schedules' routes (see tests/reports/test_delivery.py: ``mount``)."""
    create = dialer.app.create_app

    def create_with_schedules(*args: object, **kwargs: object) -> dialer.app.FastAPI:
        application = create(*args, **kwargs)  # type: ignore[arg-type]
        mount(application)
        return application

    monkeypatch.setattr("dialer.tools.serve.create_app", create_with_schedules)


async def status_shown(page: Page, status: str) -> None:
    """Press "Refresh" until the newest run of the history has ``status`` (the worker runs beside the page)."""
    for _ in range(120):
        await page.click("[data-action=refresh]")
        await page.wait_for_timeout(250)
        first = page.locator(".sched-runs tr[data-run]").first
        if await first.count() and await first.get_attribute("data-status") == status:
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"no run reached {status!r}")


async def test_schedule_made_sent_and_failed_in_the_browser(mounted: None, inbox: Inbox, start_server: StartServer,
                                                            page: Page, monkeypatch: pytest.MonkeyPatch) -> None:
    server = await start_server()
    await server.user("boss", roles=("admin",))
    await login(page, server, "boss", next_url="/reports/schedules")
    await expect(page.locator("h1")).to_have_text("Рассылка отчётов")
    await expect(page.locator("nav a[href='/reports/schedules']")).to_have_count(1)
    await expect(page.locator("[data-warning=smtp]")).to_have_count(0)  # a mail server is configured
    await page.click("[data-action=create]")
    dialog = page.locator("dialog.sched-dialog")
    await dialog.locator("input[name=name]").fill("Сводка смены руководителю")
    await dialog.locator("select[name=report]").select_option("shift")
    await dialog.locator("select[name=format]").select_option("pdf")
    await dialog.locator("input[name=at_time]").fill("08:30")
    await dialog.locator("textarea[name=recipients]").fill("head@example.ru\nне адрес")
    await expect(dialog.locator("input[name=subject]")).to_have_value("{report} за {period}")
    await dialog.locator("[data-action=save]").click()
    await expect(dialog.locator("[data-error-for=recipients]")).to_contain_text("не адрес")
    await dialog.locator("textarea[name=recipients]").fill("head@example.ru, deputy@example.ru")
    await dialog.locator("[data-action=save]").click()
    await expect(dialog).to_have_count(0)
    row = page.locator("table.schedules tbody tr").first
    await expect(row).to_contain_text("Сводка смены руководителю")
    await expect(row).to_contain_text("ежедневно в 08:30")
    await expect(row).to_contain_text("head@example.ru, deputy@example.ru")
    await expect(row).to_contain_text("ещё не отправлялся")
    await expect(row.locator("[data-col=next]")).to_contain_text("08:30")  # in the schedule's zone (Moscow)

    await row.locator("[data-action=send]").click()
    await status_shown(page, "sent")
    assert len(inbox.messages) == 1
    (attachment,) = list(inbox.messages[0].iter_attachments())
    assert attachment.get_content().startswith(b"%PDF")
    await expect(page.locator(".sched-runs tr[data-run]").first).to_contain_text("отправлен")

    # the mail server goes away: the failure and its reason are on the page, a retry is planned
    monkeypatch.setenv("DIALER_SMTP_PORT", str(free_port()))
    await row.locator("[data-action=send]").click()
    await status_shown(page, "retrying")
    newest = page.locator(".sched-runs tr[data-run]").first
    await expect(newest).to_contain_text("повтор")
    await expect(newest.locator(".run-error")).to_contain_text("Connection refused")
    await expect(newest).to_contain_text("следующая попытка")
    await expect(page.locator("table.schedules tbody tr").first.locator(".run-error")).to_contain_text("Connection")
    await screenshot(page, "report_schedules")
