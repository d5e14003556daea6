"""The operator's workplace (/operator) in a real browser, against the engine on simulated telephony in real time:
ready → a call → the card (in-card fields in list order, the script filled, the CRM link) → a completion code by
keyboard with a callback; preview with confirm; manual dial; the auto-answer switch; the 403 page."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from playwright.async_api import Page, expect
from sqlalchemy import select, update

from dialer.engine.runner import EngineConfig
from dialer.models import (
    Attempt,
    AuditEntry,
    Callback,
    Campaign,
    CompletionCode,
    ContactList,
    DncEntry,
    ListField,
    Operator,
)
from dialer.models.enums import AttemptState, CallbackKind, CampaignKind, DialMode
from dialer.telephony.traffic import Constant
from tests.engine.engine_world import EngineWorld, engine_world, scenario
from tests.web.conftest import LiveServer, StartServer, login, screenshot

pytestmark = pytest.mark.browser

SCRIPT = "Добрый день! Вы из города {Город}, долг {Сумма} ₽. <b>не HTML</b> {Нет такого поля}"


@dataclasses.dataclass
class Desk:
    """A small campaign with one human operator (login ``op1``) and the server running the engine."""

    world: EngineWorld
    operator_id: int
    server: LiveServer
    contact_id: int | None


async def desk(app: FastAPI, start_server: StartServer, *, mode: DialMode = DialMode.progressive,
               contact: bool = True, talk_s: float = 4.0, dial_params: dict[str, Any] | None = None) -> Desk:
    maker = app.state.sessionmaker
    # the window open all day (start == end), so the test runs whatever the time
    world = await engine_world(maker, operators=1, mode=mode, wrap_up_s=120, kind=CampaignKind.infinite,
                               call_window_start=time(0), call_window_end=time(0), dial_params=dial_params)
    op_id = world.operator_ids[0]
    async with maker() as session, session.begin():
        # the list's card template: amount first, then the city; the home phone is not on the card
        session.add_all([ListField(list_id=world.list_id, field_id=world.amount_field_id, position=0, in_card=True),
                         ListField(list_id=world.list_id, field_id=world.city_field_id, position=1, in_card=True),
                         ListField(list_id=world.list_id, field_id=world.home_field_id, position=2, in_card=False)])
        await session.execute(update(ContactList).where(ContactList.id == world.list_id)
                              .values(crm_url="https://crm.example.ru/clients/{Город}?sum={Сумма}"))
        await session.execute(update(Campaign).where(Campaign.id == world.campaign_id).values(call_script=SCRIPT))
        await session.execute(update(CompletionCode).where(CompletionCode.id == world.codes["Перезвонить"])
                              .values(hotkey="r"))
    contact_id = None
    if contact:
        contact_id = await world.contact(data={str(world.city_field_id): "Нижний Новгород",
                                               str(world.amount_field_id): 12345.67,
                                               str(world.home_field_id): "+74951234567"})
    await world.start()
    server = await start_server(with_engine=True, human_operators=[op_id],
                                scenario=scenario(human=1.0, machine=0.0, busy=0.0, answer_after=Constant(1.0),
                                                  talk=Constant(talk_s)),
                                config=EngineConfig(drain_s=0, seed=1))
    user_id = await server.user("op1", roles=("operator",))
    async with maker() as session, session.begin():
        await session.execute(update(Operator).where(Operator.id == op_id).values(user_id=user_id))
    return Desk(world, op_id, server, contact_id)


async def attempts(app: FastAPI, campaign_id: int) -> list[Attempt]:
    async with app.state.sessionmaker() as session:
        return list((await session.scalars(select(Attempt).where(Attempt.campaign_id == campaign_id)
                                           .order_by(Attempt.id))).all())


async def open_panel(page: Page, server: LiveServer) -> None:
    await login(page, server, "op1", next_url="/operator")
    await expect(page.locator("#op[data-loaded]")).to_have_count(1)
    await expect(page.locator("#live-state")).to_have_text("Онлайн")


async def test_call_card_code_and_callback(page: Page, app: FastAPI, start_server: StartServer) -> None:
    d = await desk(app, start_server)
    await open_panel(page, d.server)
    pill = page.locator("#op-pill")
    await expect(pill).to_have_text("Не в сети")
    await page.keyboard.press("F2")
    await expect(pill).to_have_text("Разговор", timeout=10_000)
    await expect(pill).to_have_class("pill op-pill st-in_call")
    # the card: the template's fields in the list's order, not the others
    fields = page.locator("#card-fields tr[data-field]")
    await expect(fields).to_have_count(2)
    # amounts as Russians write them (#13 §4); the CRM link keeps the value as the CRM wants it
    await expect(fields.nth(0)).to_have_text("Сумма12\u00a0345,67")
    await expect(fields.nth(1)).to_have_text("ГородНижний Новгород")
    await expect(page.locator("#call-campaign")).to_have_text("Весна")
    crm = "https://crm.example.ru/clients/" + quote("Нижний Новгород", safe="") + "?sum=12345.67"
    await expect(page.locator("#crm-link")).to_have_attribute("href", crm)
    # the script with the values, markup shown as text, an unknown placeholder left as written
    script = page.locator("#script")
    await expect(script).to_have_text("Добрый день! Вы из города Нижний Новгород, долг 12\u00a0345,67 ₽. "
                                      "<b>не HTML</b> {Нет такого поля}")
    await expect(script.locator("b")).to_have_count(0)
    await expect(script.locator("mark")).to_have_count(2)
    await expect(page.locator("#t-talk")).to_be_visible()
    await expect(page.locator("#btn-answer")).to_be_disabled()
    await expect(page.locator("#answer-hint")).to_have_text("Телефон отвечает сам (автоответ)")
    await expect(page.locator("#history tbody tr")).to_have_count(1)
    await screenshot(page, "operator_panel_in_call")

    # the customer hangs up after the talk time: wrap-up with its timer
    await expect(pill).to_have_text("Постобработка", timeout=10_000)
    await expect(page.locator("#t-wrap")).to_be_visible()
    await page.keyboard.press("r")  # the code's own hotkey
    await expect(page.locator("#codes .code.selected")).to_have_text("r Перезвонить")
    await page.click("[data-postpone='60']")
    await page.check("input[name=cbkind][value=personal]")
    await page.fill("#comment", "просил перезвонить вечером")
    await screenshot(page, "operator_panel_wrap_up")
    before = datetime.now(UTC)
    await page.keyboard.press("Control+Enter")
    await expect(pill).to_have_text("Готов", timeout=5_000)  # back to Ready by itself

    rows = await attempts(app, d.world.campaign_id)
    assert len(rows) == 1
    a = rows[0]
    assert (a.state, a.completion_code_id, a.comment, a.operator_id) == (
        AttemptState.done, d.world.codes["Перезвонить"], "просил перезвонить вечером", d.operator_id)
    async with app.state.sessionmaker() as session:
        cb = (await session.scalars(select(Callback).where(Callback.contact_id == d.contact_id))).one()
    assert (cb.kind, cb.operator_id) == (CallbackKind.personal, d.operator_id)
    # postponed by an hour (to the minute the browser set)
    assert timedelta(minutes=58) < cb.window_start - before < timedelta(minutes=61)


async def test_preview_skip_confirm_and_hangup(page: Page, app: FastAPI, start_server: StartServer) -> None:
    d = await desk(app, start_server, mode=DialMode.preview, talk_s=60.0, dial_params={"preview_seconds": 60})
    second = await d.world.contact(data={str(d.world.city_field_id): "Тверь"})
    await open_panel(page, d.server)
    await page.click("#btn-ready")
    pill = page.locator("#op-pill")
    # the first contact previewed is skipped: the next one comes
    first_city = page.locator("#card-fields tr[data-field='Город'] td")
    await expect(page.locator("#btn-skip")).to_be_visible(timeout=10_000)
    shown = await first_city.inner_text()
    await page.keyboard.press("F9")
    await expect(first_city).not_to_have_text(shown, timeout=10_000)
    await expect(page.locator("#card-fields tr").first).to_contain_text(
        str(second if shown == "Нижний Новгород" else d.contact_id))
    # the card before dialling, with the countdown
    await expect(page.locator("#btn-confirm")).to_be_visible(timeout=10_000)
    await expect(pill).to_have_text("Назначен вызов")
    await expect(page.locator("#call-title")).to_have_text("Предпросмотр: проверьте карточку перед звонком")
    await expect(page.locator("#card-fields tr[data-field]")).to_have_count(2)
    await expect(page.locator("#t-preview")).to_be_visible()
    assert 50 <= int(await page.locator("#t-preview-v").inner_text()) <= 60
    assert [a.state for a in await attempts(app, d.world.campaign_id)] == [AttemptState.queued]  # skipped: gone
    await screenshot(page, "operator_panel_preview")
    await page.keyboard.press("F8")
    await expect(pill).to_have_text("Разговор", timeout=10_000)
    await expect(page.locator("#btn-confirm")).to_be_hidden()
    await page.keyboard.press("F4")  # hang up
    await expect(pill).to_have_text("Постобработка", timeout=5_000)
    await expect(page.locator("#wrap-box")).to_be_visible()
    await page.keyboard.press("1")  # the first code by position
    await expect(page.locator("#codes .code.selected")).to_have_text("1 Согласен")
    await page.uncheck("#auto-ready")  # this time: not back to Ready, a pause after the call
    await page.click("#btn-complete")
    await expect(pill).to_have_text("Пауза", timeout=5_000)
    await expect(page.locator("#op-reason")).to_have_text("После звонка")
    (a,) = await attempts(app, d.world.campaign_id)
    assert a.state is AttemptState.done and a.hangup_side == "operator" and a.completion_code_id is not None


async def test_manual_dial(page: Page, app: FastAPI, start_server: StartServer) -> None:
    d = await desk(app, start_server, contact=False)
    await d.world.dnc("+79160000001")
    await open_panel(page, d.server)
    pill = page.locator("#op-pill")
    await page.click("#btn-pause")
    await page.keyboard.press("2")  # the second reason: lunch
    await expect(pill).to_have_text("Пауза")
    await expect(page.locator("#op-reason")).to_have_text("Обед")
    await expect(page.locator("#dial-campaign option")).to_have_text(["Весна"])
    # a number on the do-not-call list is refused with the reason
    await expect(page.locator("#btn-dial")).to_be_enabled()
    await page.keyboard.press("/")
    await page.keyboard.type("8 916 000-00-01")
    await page.keyboard.press("Enter")
    await expect(page.locator("#dial-error")).to_have_text(
        "Номер +79160000001 в списке «не звонить» (кампании или общем чёрном списке)")
    await page.fill("#dial-number", "8 916 555-00-11")
    await page.click("#btn-dial")
    await expect(pill).to_have_text("Разговор", timeout=10_000)
    await expect(page.locator("#call-number")).to_have_text("+79165550011")
    await expect(page.locator("#card-fields")).to_contain_text("нет (номер вне базы)")
    await screenshot(page, "operator_panel_manual")
    await expect(pill).to_have_text("Постобработка", timeout=10_000)
    await expect(page.locator("#wrap-box")).to_be_visible()
    await page.keyboard.press("1")
    await expect(page.locator("#codes .code.selected")).to_have_count(1)
    await page.check("#never-call")
    await page.keyboard.press("Control+Enter")
    await expect(page.locator("#never-dialog")).to_be_visible()  # "never call again" asks first
    await page.click("#never-yes")
    # dialled from a break: back to the break
    await expect(pill).to_have_text("Пауза", timeout=5_000)
    await expect(page.locator("#op-reason")).to_have_text("Обед")
    rows = await attempts(app, d.world.campaign_id)
    assert [(a.number, a.contact_id, a.operator_id, a.state) for a in rows] == [
        ("+79165550011", None, d.operator_id, AttemptState.done)]
    async with app.state.sessionmaker() as session:
        assert await session.scalar(select(DncEntry.id).where(DncEntry.number == "+79165550011"))


async def test_auto_answer_switch_persists(page: Page, app: FastAPI, live_server: LiveServer) -> None:
    maker = app.state.sessionmaker
    user_id = await live_server.user("op1", roles=("operator",))
    async with maker() as session, session.begin():
        op = Operator(name="Оператор 1", extension="sip-op1", user_id=user_id, auto_answer=True)
        session.add(op)
        await session.flush()
        op_id = op.id
    await login(page, live_server, "op1", next_url="/operator")
    switch = page.locator("#auto-answer")
    await expect(switch).to_be_checked()
    await expect(page.locator("#op-banner")).to_contain_text("Движок обзвона не запущен")
    await switch.uncheck()
    await expect(page.locator(".toast.ok")).to_contain_text("Автоответ выключен")
    await page.reload()
    await expect(page.locator("#auto-answer")).not_to_be_checked()
    await expect(page.locator("#answer-hint")).to_contain_text("Снимите трубку")
    async with maker() as session:
        assert (await session.get(Operator, op_id)).auto_answer is False
        audit = (await session.scalars(select(AuditEntry).where(AuditEntry.object_type == "operators",
                                                                AuditEntry.object_id == str(op_id))
                                       .order_by(AuditEntry.id.desc()))).first()
    assert audit is not None and audit.changes["auto_answer"] == {"old": True, "new": False}
    # the auto-ready choice is the browser's own
    await page.uncheck("#auto-ready")
    await page.reload()
    await expect(page.locator("#op[data-loaded]")).to_have_count(1)
    await expect(page.locator("#auto-ready")).not_to_be_checked()
    await page.keyboard.press("?")
    await expect(page.locator("#help")).to_be_visible()
    await expect(page.locator("#help")).to_contain_text("Завершить звонок")


async def test_without_permission_the_page_is_refused(page: Page, live_server: LiveServer) -> None:
    await live_server.user("sup", roles=("supervisor",), grants={"operator_panel.use": False})
    await login(page, live_server, "sup", next_url="/operator")
    response = await page.goto(f"{live_server.url}/operator")
    assert response is not None and response.status == 403
    await expect(page.locator("body")).to_contain_text("Доступ запрещён")
    await expect(page.locator(".mainnav a[data-nav='operator']")).to_have_count(0)
