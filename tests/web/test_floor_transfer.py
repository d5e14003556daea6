"""The floor's transfers in a real browser (#12 §2): a supervisor transfers an operator's customer to a ready
operator from the operator's row, and the call card shows the transfer as a stage of the attempt."""

from __future__ import annotations

import asyncio
from datetime import time

import pytest
from fastapi import FastAPI
from playwright.async_api import Page, expect
from sqlalchemy import update

from dialer.engine.commands import CommandKind
from dialer.engine.runner import EngineConfig
from dialer.models import Operator
from dialer.models.enums import CampaignKind, OperatorState
from dialer.telephony.traffic import Constant
from tests.engine.engine_world import engine_world, scenario
from tests.web.conftest import StartServer, login, screenshot

pytestmark = pytest.mark.browser


async def test_a_supervisor_transfers_a_customer_and_the_card_shows_the_stage(page: Page, app: FastAPI,
                                                                               start_server: StartServer) -> None:
    maker = app.state.sessionmaker
    world = await engine_world(maker, operators=2, wrap_up_s=120, kind=CampaignKind.infinite,
                               call_window_start=time(0), call_window_end=time(0))
    op1, op2 = world.operator_ids
    async with maker() as session, session.begin():
        await session.execute(update(Operator).where(Operator.id == op1).values(name="Анна"))
        await session.execute(update(Operator).where(Operator.id == op2).values(name="Борис"))
    await world.contact()
    await world.start()
    server = await start_server(with_engine=True, human_operators=[op1, op2],
                                scenario=scenario(human=1.0, machine=0.0, busy=0.0, answer_after=Constant(0.5),
                                                  talk=Constant(120.0)),
                                config=EngineConfig(drain_s=0, seed=1))
    assert server.engine is not None
    engine = server.engine
    await server.user("sup", roles=("supervisor",))
    assert (await engine.submit(CommandKind.ready, op1))["ok"]
    for _ in range(100):
        if engine.operators[op1].state is OperatorState.in_call:
            break
        await asyncio.sleep(0.1)
    assert engine.operators[op1].state is OperatorState.in_call
    assert (await engine.submit(CommandKind.ready, op2))["ok"]

    await login(page, server, "sup", next_url="/supervisor")
    row = page.locator(f"#sup-operators tr[data-id='{op1}']")
    await expect(row.locator(".pill.st-in_call")).to_have_count(1, timeout=10_000)
    await row.locator("select.sup-action").select_option("transfer")
    dialog = page.locator("#sup-transfer")
    await expect(dialog).to_be_visible()
    await expect(page.locator("#sup-transfer-title")).to_have_text("Перевод клиента оператора Анна")
    await expect(page.locator("#sup-transfer-operator option")).to_have_text(["Борис"])
    await page.fill("#sup-transfer-comment", "VIP")
    await page.click("#sup-transfer-ok")
    await expect(dialog).to_be_hidden()
    other = page.locator(f"#sup-operators tr[data-id='{op2}']")
    await expect(other.locator(".pill.st-in_call")).to_have_count(1, timeout=10_000)
    # the call card: the transfer is a stage of the one attempt
    await other.locator("button.sup-open").click()
    stage = page.locator("#sup-drawer-body table.sup-transfers tbody tr")
    await expect(stage).to_have_count(1, timeout=10_000)
    await expect(stage).to_contain_text("Оператору")
    await expect(stage).to_contain_text("супервайзер")
    await expect(stage).to_contain_text("Анна")
    await expect(stage).to_contain_text("Борис")
    await expect(stage).to_contain_text("соединён")
    await expect(stage).to_contain_text("VIP")
    await screenshot(page, "floor_transfer_card")
