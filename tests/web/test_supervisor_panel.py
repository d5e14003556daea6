"""The supervisor's live floor in a real browser: operators' statuses and campaigns' counters follow the engine
within a second, campaign and operator actions, alerts, pool membership, the call detail card, permissions."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, time, timedelta

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Page, expect
from sqlalchemy import select, update

from dialer.engine.bus import notify
from dialer.engine.events import (
    CallEnded,
    CampaignAutoPaused,
    DeviceStateChanged,
    OperatorMissedCall,
    TrunkStateChanged,
)
from dialer.models import Attempt, Campaign, OperatorPool, SipDevice, SipRegistration, pool_operators
from dialer.models.enums import AttemptState, CampaignStatus, DialMode, OutcomeCategory
from dialer.telephony.traffic import Constant
from tests.conftest import token_for
from tests.engine.engine_world import EngineWorld, engine_world, scenario
from tests.web.conftest import LiveServer, StartServer, login, screenshot

pytestmark = pytest.mark.browser


async def _world(server: LiveServer | FastAPI, *, operators: int = 2, contacts: int = 0) -> EngineWorld:
    # a window open all day (start == end), whenever the test runs
    app = server.app if isinstance(server, LiveServer) else server
    return await engine_world(app.state.sessionmaker, operators=operators, mode=DialMode.progressive,
                              contacts=contacts, wrap_up_s=5, call_window_start=time(0), call_window_end=time(0))


async def _api(server: LiveServer, login_name: str, **kw: object) -> httpx.AsyncClient:
    user_id = await server.user(login_name, **kw)  # type: ignore[arg-type]
    token = await token_for(server.app, user_id)
    return httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def op_row(page: Page, operator_id: int) -> object:
    return page.locator(f"#sup-operators tr[data-id='{operator_id}']")


async def test_floor_follows_the_engine_and_controls_it(page: Page, app: FastAPI, start_server: StartServer) -> None:
    # the operators exist before the engine starts (it loads them at start)
    world = await _world(app, operators=2, contacts=40)
    sim_op, human_op = world.operator_ids
    server = await start_server(with_engine=True, sim_operators=True, human_operators=[human_op],
                                scenario=scenario(human=1.0, machine=0.0, busy=0.0, answer_after=Constant(0.3),
                                                  talk=Constant(1.0)),
                                sim_wrap_up_s=Constant(0.3))
    assert server.engine is not None
    await server.user("sup", roles=("supervisor",))
    await login(page, server, "sup", next_url="/supervisor")
    await expect(page.locator("h1")).to_have_text("Супервайзер")
    await expect(page.locator("#sup-live")).to_have_text("Онлайн")
    await world.start()

    # the campaign's counters move as calls finish (patched from AttemptFinished, no reload)
    row = page.locator(f"#sup-campaigns tr[data-id='{world.campaign_id}']")
    await expect(row.locator("[data-key=status] .pill")).to_have_text("Идёт", timeout=5000)
    answered = row.locator(".sup-oc[data-cat=answered]")
    await expect(answered).not_to_have_text("0", timeout=8000)
    # calls in progress by stage, followed by their events (one simulated operator: one talk at a time)
    await expect(row.locator("[data-key=talking]")).to_have_text("1", timeout=5000)
    first = int(await answered.inner_text())
    await expect(answered).not_to_have_text(str(first), timeout=5000)
    await expect(page.locator(f"#sup-operators tr[data-id='{sim_op}'] [data-key=calls]")).not_to_have_text("0")
    await expect(page.locator("#sup-recent")).to_contain_text("Ответ")

    # an operator's status forced through the API reaches the page within a second
    async with await _api(server, "sup2", roles=("supervisor",)) as sup:
        r = await sup.post(f"/api/supervisor/operators/{human_op}/state", json={"state": "paused", "reason": "lunch"})
        assert r.status_code == 200 and r.json()["state"] == "paused", r.text
        pill = page.locator(f"#sup-operators tr[data-id='{human_op}'] [data-key=state] .pill")
        await expect(pill).to_have_text("Пауза", timeout=1500)
        await expect(page.locator(f"#sup-operators tr[data-id='{human_op}'] [data-key=reason]")).to_have_text("Обед")
        # the status colour is the operator panel's (the CSS variable)
        probe = "getComputedStyle(document.body.appendChild(Object.assign(document.createElement('i'), " \
                "{style: 'background: var(--st-paused)'}))).backgroundColor"
        assert await pill.evaluate("e => getComputedStyle(e).backgroundColor") == await page.evaluate(probe)

    # pause the campaign from the page (with confirmation)
    await row.locator("button[data-action=pause]").click()
    await expect(page.locator("#sup-dialog")).to_be_visible()
    await page.locator("#sup-dialog-ok").click()
    await expect(row.locator("[data-key=status] .pill")).to_have_text("Пауза")
    assert await world.status() is CampaignStatus.paused
    # the engine applies the pause when it next reads the campaigns; then no call comes
    runtime = server.engine.campaigns[world.campaign_id]
    for _ in range(80):
        if runtime.status is CampaignStatus.paused and not runtime.calls:
            break
        await asyncio.sleep(0.1)
    assert runtime.status is CampaignStatus.paused and not runtime.calls

    # force statuses from the page's own action menu (no calls come while the campaign is paused)
    actions = page.locator(f"#sup-operators tr[data-id='{human_op}'] select.sup-action")
    await actions.select_option("ready")
    await expect(pill).to_have_text("Готов", timeout=3000)
    await screenshot(page, "supervisor-floor")
    await expect(page.locator("#sup-alerts li.sup-alert")).to_have_count(0)  # the engine runs: all clear
    await actions.select_option("offline")
    await expect(page.locator("#sup-dialog-text")).to_contain_text("op2")
    await page.locator("#sup-dialog-ok").click()
    await expect(pill).to_have_text("Не в сети", timeout=3000)

    # and resume the campaign
    await row.locator("button[data-action=resume]").click()
    await expect(row.locator("[data-key=status] .pill")).to_have_text("Идёт")
    assert await world.status() is CampaignStatus.running


async def test_alerts_from_state_and_events(page: Page, live_server: LiveServer) -> None:
    world = await _world(live_server, operators=2)
    op1, op2 = world.operator_ids
    maker = live_server.app.state.sessionmaker
    await world.start()
    async with maker() as session, session.begin():
        await session.execute(update(Campaign).where(Campaign.id == world.campaign_id).values(
            status=CampaignStatus.auto_paused, status_reason="5 errors in 30 s"))
        session.add(SipDevice(login="desk-1", password="secret-1234", operator_id=op1))
        session.add(SipRegistration(login="desk-1", online=True, reachable=True))
    for i in range(30):  # a full floor: the tables scroll inside the 1366×768 screen
        await world.add_operator(f"agent{i:02d}")
    await live_server.user("sup", roles=("supervisor",))
    await login(page, live_server, "sup", next_url="/supervisor")
    alerts = page.locator("#sup-alerts li.sup-alert")
    # built from the state: the auto-stopped campaign, and the engine this test runs without (red on the floor too)
    await expect(alerts).to_have_count(2)
    await expect(alerts.first).to_contain_text("остановлена автоматически: 5 errors in 30 s")
    await expect(page.locator("#sup-alerts li[data-key=engine]")).to_contain_text("Движок обзвона не запущен")
    await expect(page.locator(f"#sup-operators tr[data-id='{op1}'] [data-key=sip]")).to_have_text("в сети")
    await expect(page.locator(f"#sup-operators tr[data-id='{op2}'] [data-key=sip]")).to_have_text("—")
    await expect(page.locator("#sup-live")).to_have_text("Онлайн")

    now = datetime.now(UTC)
    async with maker() as session, session.begin():
        await notify(session, [
            DeviceStateChanged(at=now, login="desk-1", operator_id=op1, state="unreachable", detail="no answer"),
            TrunkStateChanged(at=now, trunk_id=7, name="МТС", up=False, detail="408"),
            OperatorMissedCall(at=now, operator_id=op2, campaign_id=world.campaign_id, attempt_id=1,
                               missed_in_row=2, missed_total=2, paused=False, withdrawn=True),
        ])
    await expect(alerts).to_have_count(5, timeout=1500)
    # the dangerous ones first, newest first among them: the older auto-stop after the phone and the trunk
    keys = await alerts.evaluate_all("(nodes) => nodes.map((n) => n.dataset.key)")
    assert keys[2].startswith("camp:") and keys[3:] == [f"missed:{op2}", "engine"], keys
    text = await page.locator("#sup-alerts").inner_text()
    assert "SIP-устройство desk-1 (op1): не отвечает" in text
    assert "Транк «МТС» недоступен: 408" in text
    assert "Оператор op2 не ответил на вызов (2 подряд)" in text
    await expect(page.locator(f"#sup-operators tr[data-id='{op1}'] [data-key=sip]")).to_have_text("не отвечает")
    await screenshot(page, "supervisor-alerts")

    # dismissed alerts go; a device that answers again clears its alert by itself
    await page.locator("#sup-alerts li[data-key^='trunk'] .sup-dismiss").click()
    await expect(alerts).to_have_count(4)
    await expect(page.locator("#sup-alerts .sup-hidden")).to_contain_text("Скрытых предупреждений: 1")
    async with maker() as session, session.begin():
        await notify(session, [DeviceStateChanged(at=datetime.now(UTC), login="desk-1", operator_id=op1,
                                                  state="registered", detail="")])
    await expect(alerts).to_have_count(3)

    # acknowledge the auto-stop from the page: a comment is required
    row = page.locator(f"#sup-campaigns tr[data-id='{world.campaign_id}']")
    await expect(row.locator("[data-key=autostop]")).to_have_text("5 errors in 30 s")
    await row.locator("button[data-action=acknowledge]").click()
    await page.fill("#sup-dialog-input", "линия исправлена")
    await page.locator("#sup-dialog-ok").click()
    await expect(row.locator("[data-key=status] .pill")).to_have_text("Идёт")
    # the auto-stop is gone; the missed call stays, and the engine down is now worse: a campaign runs
    await expect(alerts).to_have_count(2)
    await expect(page.locator("#sup-alerts li[data-key=engine]")).to_have_class(re.compile("danger"))
    assert await world.status() is CampaignStatus.running

    # calls failing one after another: the campaign is failing
    async with maker() as session, session.begin():
        await notify(session, [CallEnded(at=datetime.now(UTC), attempt_id=100 + i, campaign_id=world.campaign_id,
                                         result="error", side=None, cause="trunk unreachable", sip_code=503)
                               for i in range(3)])
    failing = page.locator(f"#sup-alerts li[data-key='campfail:{world.campaign_id}']")
    await expect(failing).to_contain_text("3 ошибок подряд")
    await expect(row.locator("[data-key=autostop]")).to_have_text("3 ошибок подряд")

    # an auto-stop announced by the engine raises its alert at once
    async with maker() as session, session.begin():
        await notify(session, [CampaignAutoPaused(at=datetime.now(UTC), campaign_id=world.campaign_id,
                                                  reason="trunk errors")])
    await expect(page.locator(f"#sup-alerts li[data-key='camp:{world.campaign_id}']")).to_contain_text("trunk errors")
    await expect(row.locator("[data-key=status] .pill")).to_have_text("Автостоп")


async def test_pool_membership_is_edited_with_checkboxes(page: Page, live_server: LiveServer) -> None:
    world = await _world(live_server, operators=2)
    op1 = world.operator_ids[0]
    maker = live_server.app.state.sessionmaker
    async with maker() as session, session.begin():
        evening = OperatorPool(name="Вечер")
        session.add(evening)
        await session.flush()
        evening_id = evening.id
    await live_server.user("boss", roles=("admin",))
    await login(page, live_server, "boss", next_url="/supervisor")
    cell = page.locator(f"#sup-operators tr[data-id='{op1}'] [data-key=pools]")
    await expect(cell).to_contain_text("Смена")
    await cell.locator("button").click()
    popover = page.locator("#sup-popover")
    await expect(popover).to_be_visible()
    await popover.locator("input[data-pool='Вечер']").check()
    await popover.locator("input[data-pool='Смена']").uncheck()
    await screenshot(page, "supervisor-pools")
    await popover.locator("button.primary").click()
    await expect(popover).to_be_hidden()
    await expect(cell).to_contain_text("Вечер")
    async with maker() as session:
        pools = set((await session.scalars(select(pool_operators.c.pool_id)
                                           .where(pool_operators.c.operator_id == op1))).all())
    assert pools == {evening_id}
    await page.reload()
    await expect(cell).to_have_text("Вечер ✎")


async def test_call_detail_card(page: Page, live_server: LiveServer) -> None:
    world = await _world(live_server, operators=1)
    contact_id = await world.contact(phones=["+79165554433"])
    phone_id = (await world.phones(contact_id))[0].id
    t0 = datetime.now(UTC) - timedelta(minutes=3)
    async with live_server.app.state.sessionmaker() as session, session.begin():
        a = Attempt(campaign_id=world.campaign_id, contact_id=contact_id, phone_id=phone_id,
                    operator_id=world.operator_ids[0], number="+79165554433", state=AttemptState.done,
                    outcome=OutcomeCategory.answered, completion_code_id=world.codes["Согласен"],
                    answered_by="human", hangup_side="customer", queued_at=t0, dialed_at=t0 + timedelta(seconds=1),
                    ringing_at=t0 + timedelta(seconds=2), answered_at=t0 + timedelta(seconds=8),
                    connected_at=t0 + timedelta(seconds=9), hung_up_at=t0 + timedelta(seconds=69),
                    wrap_up_ended_at=t0 + timedelta(seconds=75))
        session.add(a)
        await session.flush()
        attempt_id = a.id
    await live_server.user("sup", roles=("supervisor",))
    await login(page, live_server, "sup", next_url="/supervisor")

    # from the latest calls list
    await page.locator(f"#sup-recent button[data-id='{attempt_id}']").click()
    drawer = page.locator("#sup-drawer")
    await expect(drawer).to_be_visible()
    stages = drawer.locator(".sup-timeline tbody tr")
    await expect(stages).to_have_count(7)
    await expect(drawer.locator(".sup-timeline tr[data-stage=connected]")).to_contain_text("1:00")
    await expect(drawer.locator(".sup-timeline tr[data-stage=ringing]")).to_contain_text("6 с")
    await expect(drawer.locator(".sup-facts")).to_contain_text("Согласен")
    await screenshot(page, "supervisor-call-card")
    await page.keyboard.press("Escape")
    await expect(drawer).to_be_hidden()

    # by number as typed, and by id
    await page.fill("#sup-search input", "8 (916) 555-44-33")
    await page.press("#sup-search input", "Enter")
    await expect(drawer.locator("#sup-drawer-title")).to_have_text(f"Звонок #{attempt_id}")
    await expect(stages).to_have_count(7)
    await page.fill("#sup-search input", "999999")
    await page.press("#sup-search input", "Enter")
    await expect(page.locator("#sup-drawer-body")).to_contain_text("Звонков с этим номером нет")

    # the latest calls of a campaign, from its row
    await page.locator(f"#sup-campaigns tr[data-id='{world.campaign_id}'] button.sup-campname").click()
    await expect(drawer.locator("#sup-drawer-title")).to_have_text("Последние звонки: Весна")
    await drawer.locator(".sup-found tr", has_text="+79165554433").click()
    await expect(drawer.locator("#sup-drawer-title")).to_have_text(f"Звонок #{attempt_id}")

    # its own page
    await page.goto(f"{live_server.url}/supervisor/attempts/{attempt_id}")
    await expect(page.locator("#attempt-card .sup-timeline tbody tr")).to_have_count(7)
    await expect(page.locator("#attempt-card")).to_contain_text("+79165554433")


async def test_permissions_of_the_floor(page: Page, live_server: LiveServer) -> None:
    world = await _world(live_server, operators=1)
    await world.start()
    await live_server.user("agent", roles=("operator",))
    await login(page, live_server, "agent", next_url="/supervisor")
    await expect(page.locator(".error-page")).to_contain_text("monitoring.read")
    r = await page.request.get(f"{live_server.url}/supervisor")
    assert r.status == 403
    await page.context.clear_cookies()

    # monitoring without control: the floor without actions
    await live_server.user("watcher", grants={"monitoring.read": True})
    await login(page, live_server, "watcher", next_url="/supervisor")
    row = page.locator(f"#sup-campaigns tr[data-id='{world.campaign_id}']")
    await expect(row.locator("[data-key=status] .pill")).to_have_text("Идёт")
    await expect(page.locator("button[data-action]")).to_have_count(0)
    await expect(page.locator("select.sup-action")).to_have_count(0)
    await expect(page.locator(".sup-pools-edit")).to_have_count(0)
    await expect(page.locator(f"#sup-operators tr[data-id='{world.operator_ids[0]}']")).to_contain_text("op1")

    # in English
    await page.click("a.lang[data-lang=en]")
    await expect(page.locator("#sup-campaigns-h")).to_have_text("Campaigns")
    await expect(row.locator("[data-key=status] .pill")).to_have_text("Running")
    await expect(page.locator("#sup-operators th[data-key=sip]")).to_have_text("SIP")
    # the campaign runs but no engine does: said as an alert
    await expect(page.locator("#sup-alerts li[data-key=engine]")).to_contain_text("The engine is not running")
    await screenshot(page, "supervisor-floor-en")
