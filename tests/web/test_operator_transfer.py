"""The operator panel's transfer dialog in a real browser (#12 §2), against the engine on simulated telephony in real
time: a conversation, the dialog with the operators logged in and their states, a blind transfer with a note, the
wrap-up after the handover ended without a code, and the second operator holding the customer."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from playwright.async_api import Page, expect
from sqlalchemy import select, update

from dialer.engine.commands import CommandKind
from dialer.engine.runner import EngineConfig
from dialer.models import Operator
from dialer.models.enums import CampaignKind, OperatorState
from dialer.models.transfer import CallTransfer
from dialer.telephony.traffic import Constant
from tests.engine.engine_world import engine_world, scenario
from tests.web.conftest import StartServer, login, screenshot

pytestmark = pytest.mark.browser


async def test_transfer_dialog_hands_the_customer_to_a_ready_operator(page: Page, app: FastAPI,
                                                                      start_server: StartServer) -> None:
    from datetime import time

    maker = app.state.sessionmaker
    world = await engine_world(maker, operators=2, wrap_up_s=120, kind=CampaignKind.infinite,
                               call_window_start=time(0), call_window_end=time(0))
    op1, op2 = world.operator_ids
    await world.contact()
    await world.start()
    server = await start_server(with_engine=True, human_operators=[op1, op2],
                                scenario=scenario(human=1.0, machine=0.0, busy=0.0, answer_after=Constant(1.0),
                                                  talk=Constant(120.0)),
                                config=EngineConfig(drain_s=0, seed=1))
    user_id = await server.user("op1", roles=("operator",))
    async with maker() as session, session.begin():
        await session.execute(update(Operator).where(Operator.id == op1).values(user_id=user_id, name="Анна"))
        await session.execute(update(Operator).where(Operator.id == op2).values(name="Борис"))
    await login(page, server, "op1", next_url="/operator")
    await expect(page.locator("#op[data-loaded]")).to_have_count(1)
    pill = page.locator("#op-pill")
    await page.keyboard.press("F2")
    await expect(pill).to_have_text("Разговор", timeout=10_000)
    assert server.engine is not None
    engine = server.engine
    assert (await engine.submit(CommandKind.ready, op2))["ok"]

    await expect(page.locator("#btn-transfer")).to_be_enabled()
    await page.keyboard.press("F7")
    dialog = page.locator("#transfer-dialog")
    await expect(dialog).to_be_visible()
    # the operators logged in with their state; no external numbers without the permission
    option = page.locator("#transfer-operator option", has_text="Борис")
    await expect(option).to_have_text("Борис — Готов")
    await expect(option).to_be_enabled()
    await expect(page.locator("#transfer-external-kind")).to_be_hidden()
    # a pool: its ready operators counted
    await page.check("#transfer-form input[name=to][value=pool]")
    await expect(page.locator("#transfer-pool option")).to_have_text(["Смена — свободны 1 из 2"])
    await expect(page.locator("#transfer-consult")).to_be_hidden()
    await page.check("#transfer-form input[name=to][value=operator]")
    await page.select_option("#transfer-operator", str(op2))
    await page.fill("#transfer-comment", "Хочет скидку, уже согласился")
    await screenshot(page, "operator_transfer_dialog")
    await page.click("#transfer-blind")
    await expect(dialog).to_be_hidden()
    await expect(pill).to_have_text("Постобработка", timeout=10_000)
    for _ in range(100):  # the engine connects the customer to the second operator (real time, generous)
        if engine.operators[op2].state is OperatorState.in_call:
            break
        await asyncio.sleep(0.1)
    assert engine.operators[op2].state is OperatorState.in_call
    call = engine.operators[op2].call
    assert call is not None and engine.operators[op1].call is call
    # the wrap-up after the handover ends without a code
    await expect(page.locator("#btn-complete[data-optional='1']")).to_have_count(1)
    await page.fill("#comment", "передал Борису")
    await page.keyboard.press("Control+Enter")
    await expect(pill).to_have_text("Готов", timeout=10_000)
    async with maker() as session:
        [row] = (await session.scalars(select(CallTransfer))).all()
    assert (row.kind, row.from_operator_id, row.to_operator_id, row.result, row.attempt_id) == (
        "operator", op1, op2, "connected", call.attempt_id)
    assert row.comment == "Хочет скидку, уже согласился\nпередал Борису"
