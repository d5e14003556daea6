"""The supervisor's floor says why and warns of everything red, in a real browser: a running campaign's idle
reasons (times in its own time zone), the abandon rate with its sample, a campaign over its cap in the warnings,
a pause pending after a call, hidden warnings still counted, and the conversations an engine crash cut off listed
with code buttons that record their result. The live payload's new fields are added to the real answer by the test
(page.route), as the lead's contract gives them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from playwright.async_api import Page, Route, expect
from sqlalchemy import update

from dialer.models import Attempt, Campaign
from dialer.models.enums import AttemptState, OutcomeCategory
from tests.web.conftest import LiveServer, login, screenshot
from tests.web.panel_data import operator_day

pytestmark = pytest.mark.browser


def _enrich(campaign_id: int, operator_id: int) -> Any:
    async def handle(route: Route) -> None:
        response = await route.fetch()
        snap = await response.json()
        for c in snap["campaigns"]:
            if c["id"] == campaign_id:
                c.update(status="running", abandoned_today=5, live_answers_today=118, abandon_pct=4.23,
                         abandon_cap_pct=3.0, over_cap=True, idle_reasons=[
                             {"code": "outside_schedule", "params": {"next_open_at": "2026-12-25T21:30:00Z"}},
                             {"code": "over_abandon_cap", "params": {"abandon_pct": 4.23, "cap_pct": 3.0}}])
        for op in snap["operators"]:
            if op["id"] == operator_id:
                op.update(state="in_call", pause_pending="lunch")
        await route.fulfill(response=response, body=json.dumps(snap), content_type="application/json")
    return handle


async def test_floor_says_why_and_warns_of_everything_red(page: Page, app: FastAPI, live_server: LiveServer) -> None:
    maker = app.state.sessionmaker
    day = await operator_day(maker)
    async with maker() as session, session.begin():
        await session.execute(update(Campaign).where(Campaign.id == day.world.campaign_id)
                              .values(name="Взыскание долгов Дальний Восток", time_zone="Asia/Vladivostok"))
    await live_server.user("sup", roles=("supervisor",))
    await page.route("**/api/monitoring/live", _enrich(day.world.campaign_id, day.me))
    await login(page, live_server, "sup", next_url="/supervisor")

    row = page.locator(f"#sup-campaigns tr[data-id='{day.world.campaign_id}']")
    # the idle reason's time in the campaign's zone: 21:30 UTC is 07:30 next morning in Vladivostok
    await expect(row.locator(".sup-idle li[data-code=outside_schedule]")).to_contain_text("26.12.2026, 07:30")
    await expect(row.locator(".sup-idle li[data-code=outside_schedule]")).to_contain_text("вне расписания")
    await expect(row.locator(".sup-abandon-text")).to_contain_text("4,23%")
    # the sample behind the rate and how uncertain it is on 118 answers (95% Wilson upper bound)
    await expect(row.locator(".sup-sample")).to_have_text("5 из 118 · до 9,54%")
    alerts = page.locator("#sup-alerts")
    await expect(alerts.locator(f"[data-key='cap:{day.world.campaign_id}']")).to_contain_text("4,23%")
    await expect(alerts.locator(f"[data-key='idle:{day.world.campaign_id}']")).to_contain_text("вне расписания")
    await expect(alerts.locator("[data-key=engine]")).to_be_visible()  # no engine runs in this test
    await expect(alerts.locator("[data-key=pending]")).to_contain_text("1")
    await expect(alerts).not_to_contain_text("Всё в порядке")
    await expect(page.locator(f"#sup-operators tr[data-id='{day.me}'] .sup-pause-pending")).to_have_text(
        "пауза после звонка: Обед")

    # dismissing every warning hides them but the panel still says they are there
    for _ in range(4):
        await alerts.locator(".sup-dismiss").first.click()
    await expect(alerts.locator(".sup-hidden")).to_contain_text("Скрытых предупреждений: 4")
    await expect(alerts).not_to_contain_text("Всё в порядке")
    await alerts.locator(".sup-hidden button").click()
    await expect(alerts.locator(".sup-alert")).to_have_count(4)

    pending = page.locator(f"#sup-pending li[data-attempt='{day.pending_id}']")
    await expect(pending).to_contain_text(day.number)
    await expect(pending).to_contain_text("op1")
    await screenshot(page, "floor_warnings")
    await pending.locator("button", has_text="Согласен").click()
    await expect(page.locator("#sup-pending-box")).to_be_hidden()
    await expect(alerts.locator("[data-key=pending]")).to_have_count(0)
    async with maker() as session:
        attempt = await session.get(Attempt, day.pending_id)
    assert attempt is not None and attempt.completion_code_id == day.world.codes["Согласен"]


async def test_a_reader_of_the_floor_sees_pending_results_without_buttons(page: Page, app: FastAPI,
                                                                           live_server: LiveServer) -> None:
    day = await operator_day(app.state.sessionmaker)
    await live_server.user("watcher", roles=("system_tester",), grants={"monitoring.read": True})
    await login(page, live_server, "watcher", next_url="/supervisor")
    pending = page.locator(f"#sup-pending li[data-attempt='{day.pending_id}']")
    await expect(pending).to_contain_text(day.number)
    assert await pending.locator("button", has_text="Согласен").count() == 0


async def test_call_card_says_why_a_call_ended_in_russian(page: Page, app: FastAPI, live_server: LiveServer) -> None:
    day = await operator_day(app.state.sessionmaker)
    async with app.state.sessionmaker() as session, session.begin():
        attempt = Attempt(campaign_id=day.world.campaign_id, contact_id=day.contact, number=day.number,
                          state=AttemptState.done, queued_at=datetime.now(UTC) - timedelta(minutes=3),
                          hung_up_at=datetime.now(UTC) - timedelta(minutes=2), outcome=OutcomeCategory.no_answer,
                          hangup_side="dialer", hangup_cause="no answer", sip_code=408)
        session.add(attempt)
        await session.flush()
        attempt_id = attempt.id
    await live_server.user("sup", roles=("supervisor",))
    await login(page, live_server, "sup", next_url=f"/supervisor/attempts/{attempt_id}")
    facts = page.locator(".sup-facts")
    await expect(facts).to_contain_text("нет ответа · SIP 408")
    assert "no answer" not in await facts.inner_text()
