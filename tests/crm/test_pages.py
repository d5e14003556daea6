"""The integration pages in a real browser (Russian by default, English switchable): a LeadVertex connection with its
status mapping loaded from a running LeadVertex emulator, a webhook subscription whose test event reaches a
receiver that checks its signature, and "Отладка взаимодействия" showing the request, the backlog and a dead
letter sent again."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from dialer.crm.emulator import LeadVertexEmulator, WebhookReceiver
from dialer.models import CrmConnector, WebhookSubscription
from tests.crm import helpers as h
from tests.web.conftest import LiveServer, login, screenshot

pytestmark = pytest.mark.browser


async def test_connector_mapping_webhook_and_debug_page(page: Page, live_server: LiveServer) -> None:
    maker = live_server.app.state.sessionmaker
    lv = LeadVertexEmulator()
    receiver = WebhookReceiver(client_id="?", key="?")
    await lv.server.start()
    await receiver.server.start()
    try:
        await live_server.user("boss", roles=("admin",))
        await login(page, live_server, "boss", next_url="/admin/integrations")
        await expect(page.locator("h1")).to_have_text("Интеграции")
        await expect(page.locator("nav")).to_contain_text("Интеграции")

        # a LeadVertex connection; its statuses come from the CRM itself
        await page.click("[data-action=new-connector]")
        editor = page.locator("[data-connector=new]")
        await editor.locator("input[name=name]").fill("Магазин")
        await editor.locator("input[name=token]").fill(lv.token)
        await editor.locator("textarea[name=settings]").fill(f'{{"base_url": "{lv.base_url}"}}')
        await editor.locator("input[data-key='category:answered']").fill("3")
        await editor.locator("[data-action=save-connector]").click()
        saved = page.locator(".int-editor [data-connector]:not([data-connector=new])")
        await expect(saved).to_have_count(1)
        await expect(page.locator("table.int-connector-list")).to_contain_text("Магазин")
        await saved.locator("[data-action=load-statuses]").click()
        await expect(saved.locator("select[data-status='3']")).to_have_count(1)
        await expect(saved.locator(".int-status-map")).to_contain_text("Принят (3)")
        await saved.locator("select[data-status='3']").select_option("final")
        await saved.locator("select[data-status='1']").select_option("call")
        await expect(saved.locator(".int-result-map")).to_contain_text("Попытки исчерпаны")
        await saved.locator("input[data-key='exhausted']").fill("4")
        await saved.locator("[data-action=save-connector]").click()
        for _ in range(100):
            async with maker() as session:
                connector = (await session.scalars(select(CrmConnector))).one()
            if connector.status_map:
                break
            await asyncio.sleep(0.1)
        assert connector.status_map["3"] == {"action": "final", "name": "Принят"}
        assert connector.status_map["1"]["action"] == "call" and connector.token == lv.token
        assert connector.result_map == {"category:answered": "3", "exhausted": "4"}
        await screenshot(page, "integrations-connector")

        # a webhook subscription: the key is shown, the test event arrives signed
        new = page.locator("[data-webhook=new]")
        await new.locator("input[name=name]").fill("Банк")
        await new.locator("input[name=url]").fill(f"{receiver.server.url}/hook")
        await new.locator("input[value='call.result']").check()
        await new.locator("[data-action=save-webhook]").click()
        card = page.locator(".int-webhook:not([data-webhook=new])")
        await expect(card).to_have_count(1)
        async with maker() as session:
            sub = (await session.scalars(select(WebhookSubscription))).one()
        assert sub.events == ["call.result"]
        await expect(card.locator("[data-field=secret]")).to_have_text(sub.secret)
        page.once("dialog", lambda d: asyncio.ensure_future(d.accept()))
        await card.locator("[data-action=regenerate-key]").click()
        await page.locator("dialog.confirm-dialog [data-action=confirm]").click()
        await expect(card.locator("[data-field=secret]")).not_to_have_text(sub.secret)
        async with maker() as session:
            sub = (await session.scalars(select(WebhookSubscription))).one()
        receiver.client_id, receiver.key = sub.client_id, sub.secret
        await card.locator("[data-action=send-test]").click()
        for _ in range(100):
            if receiver.events:
                break
            await asyncio.sleep(0.1)
        assert receiver.refused == 0 and [b["event"] for b in receiver.events.values()] == ["test"]

        # a dead letter for the debug page: a subscription nobody answers, one try
        dead_sub = await h.subscription(maker, url="http://127.0.0.1:9/nobody", client_id="x", secret="y",
                                        events=["call.result"], max_tries=1, name="Никто")
        async with maker() as session, session.begin():
            from dialer.crm import service

            await service.queue_test_event(session, dead_sub, by="test")
        for _ in range(100):
            if (await h.statuses(maker)).get("dead"):
                break
            await asyncio.sleep(0.1)

        await page.click("[data-action=open-debug]")
        await expect(page.locator("h1")).to_have_text("Отладка взаимодействия")
        await expect(page.locator(".int-requests")).to_contain_text("webhook:Банк")
        await expect(page.locator(".int-requests")).to_contain_text("200")
        await expect(page.locator("[data-field=totals]")).to_contain_text("не доставлено: 1")
        await screenshot(page, "integrations-debug")
        await page.locator(".int-dead input[name=pick]").check()
        await page.click("[data-action=replay]")
        await expect(page.locator(".toast").last).to_contain_text("Отправлено снова: 1")

        await page.goto(f"{live_server.url}/lang/en?next=/admin/integrations/debug")
        await expect(page.locator("h1")).to_have_text("Integration debugging")
        await expect(page.locator(".int-backlog h2")).to_have_text("Outbox backlog")
    finally:
        await lv.server.stop()
        await receiver.server.stop()
