"""Every page at 1280, 1440 and 1920 pixels wide, in a real browser (#13 §4): the page never gets wider than the
window (a wide table scrolls inside its own box, the administration's sidebar stays), headings, table heads,
completion-code buttons, the floor's campaign names and action menus are not cut, and no request fails (the favicon
included). Screenshots of each page at each width go to test-artifacts/layout-<page>-<width>.png."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from playwright.async_api import Page, Response, expect
from sqlalchemy import update

from dialer.models import Attempt, ContactList, ListField, Operator
from dialer.models.enums import AttemptState, OutcomeCategory
from tests.engine.engine_world import engine_world
from tests.web.conftest import LiveServer, login, screenshot

pytestmark = pytest.mark.browser

WIDTHS = (1280, 1440, 1920)

#: What may not be cut on a page (its text wider than its box): headings, table heads, buttons, tabs, the floor's
#: names and menus, completion codes.
NOT_CUT = ("h1, h2, table.grid th, .tab, .sidebar a, button.code, .sup-campname, .sup-opname, .sup-action, "
           ".sup-btn, .adlg-head h2, label")

MEASURE = """(selector) => {
  const doc = document.documentElement;
  const cut = [];
  for (const node of document.querySelectorAll(selector)) {
    const box = node.getBoundingClientRect();
    if (!box.width || !node.offsetParent) continue;               // not shown
    if (node.scrollWidth > node.clientWidth + 1 && getComputedStyle(node).overflowX !== "visible") {
      cut.push(node.tagName + "." + node.className + ": " + node.textContent.trim().slice(0, 40));
    }
  }
  // a box that scrolls sideways inside the page is fine; the floor's tables and its menus must fit their box
  for (const box of document.querySelectorAll(".sup-scroll")) {
    if (box.scrollWidth > box.clientWidth + 1) cut.push("floor table wider than its box: " + box.parentElement.id);
  }
  const side = document.querySelector(".sidebar");
  const edges = side ? side.getBoundingClientRect() : null;
  return {
    overflow: doc.scrollWidth - doc.clientWidth,
    cut,
    sidebar: edges ? edges.left >= 0 && edges.right <= doc.clientWidth : null,
  };
}"""


async def _world(app: FastAPI, server: LiveServer) -> dict[str, Any]:
    maker = app.state.sessionmaker
    world = await engine_world(maker, operators=3)
    long_name = "Взыскание просроченной задолженности по потребительским кредитам, Дальний Восток"
    async with maker() as session, session.begin():
        # five fields on the list, contacts with long values: the contacts table is wider than the page
        for position, field_id in enumerate((world.phone_field_id, world.home_field_id, world.city_field_id,
                                             world.amount_field_id)):
            session.add(ListField(list_id=world.list_id, field_id=field_id, position=position, in_card=True))
        await session.execute(update(ContactList).where(ContactList.id == world.list_id)
                              .values(name="Должники с длинным названием списка для проверки вёрстки"))
        await session.execute(update(Operator).where(Operator.id == world.operator_ids[0])
                              .values(name="Оператор 10 Константинопольская-Старомосковская"))
        await session.execute(update(Operator).where(Operator.id == world.operator_ids[1]).values(name="Оператор 2"))
        await session.execute(update(Operator).where(Operator.id == world.operator_ids[2]).values(name="Оператор 1"))
    from dialer.models import Campaign

    async with maker() as session, session.begin():
        await session.execute(update(Campaign).where(Campaign.id == world.campaign_id).values(name=long_name))
    for i in range(6):
        await world.contact(data={str(world.city_field_id): "Петропавловск-Камчатский, улица Очень Длинная " * 2,
                                  str(world.amount_field_id): 1234567.89 + i})
    contact = await world.contact()
    number = (await world.phones(contact))[0].e164
    now = datetime.now(UTC)
    async with maker() as session, session.begin():
        a = Attempt(campaign_id=world.campaign_id, contact_id=contact, number=number, state=AttemptState.done,
                    queued_at=now - timedelta(minutes=5), outcome=OutcomeCategory.no_answer, sip_code=408,
                    hangup_cause="no answer", hung_up_at=now - timedelta(minutes=4))
        session.add(a)
        await session.flush()
        attempt_id = a.id
    return {"list": world.list_id, "campaign": world.campaign_id, "attempt": attempt_id}


async def _check(page: Page, name: str, width: int) -> list[str]:
    result = await page.evaluate(MEASURE, NOT_CUT)
    await screenshot(page, f"layout-{name}-{width}")
    problems = []
    if result["overflow"] > 1:
        problems.append(f"{name} @{width}: the page is {result['overflow']} px wider than the window")
    if result["sidebar"] is False:
        problems.append(f"{name} @{width}: the sidebar is out of view")
    problems += [f"{name} @{width}: cut: {c}" for c in result["cut"]]
    return problems


async def test_every_page_fits_at_three_widths(page: Page, app: FastAPI, live_server: LiveServer) -> None:
    ids = await _world(app, live_server)
    await live_server.user("adm", roles=("admin",))
    failed: list[str] = []

    def on_response(response: Response) -> None:
        if response.status >= 400:
            failed.append(f"{response.status} {response.url}")
    page.on("response", on_response)
    await login(page, live_server, "adm", next_url="/")
    # the administrator lands in the administration, not on the floor
    await expect(page).to_have_url(f"{live_server.url}/admin")
    links = await page.locator(".sidebar a[data-nav]").evaluate_all(
        "(nodes) => nodes.map((a) => a.getAttribute('href'))")
    pages = {"supervisor": "/supervisor", "attempt": f"/supervisor/attempts/{ids['attempt']}", "admin": "/admin",
             "list": f"/admin/lists/{ids['list']}", "contacts": f"/admin/lists/{ids['list']}",
             "campaign": f"/admin/campaigns/{ids['campaign']}",
             **{href.strip("/").replace("/", "-"): href for href in links}}
    problems: list[str] = []
    for width in WIDTHS:
        await page.set_viewport_size({"width": width, "height": 900})
        for name, path in pages.items():
            await page.goto(live_server.url + path)
            await page.wait_for_load_state("networkidle")
            if name == "contacts":
                await page.click(".tab[data-tab=contacts]")
                await expect(page.locator(".tab-panel[data-tab=contacts] tbody tr")).to_have_count(7)
            problems += await _check(page, name, width)
    assert problems == [], "\n".join(problems)
    assert failed == [], failed


async def test_operator_panel_fits_at_three_widths(page: Page, app: FastAPI, live_server: LiveServer) -> None:
    from tests.web.panel_data import operator_day

    day = await operator_day(app.state.sessionmaker)
    user_id = await live_server.user("op1", roles=("operator",))
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(Operator).where(Operator.id == day.me).values(user_id=user_id))
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    await login(page, live_server, "op1", next_url="/")
    await expect(page).to_have_url(f"{live_server.url}/operator")
    problems: list[str] = []
    for width in WIDTHS:
        await page.set_viewport_size({"width": width, "height": 900})
        await page.reload()
        await expect(page.locator("#pending-box button.code").first).to_be_visible()
        problems += await _check(page, "operator", width)
    assert problems == [], "\n".join(problems)
    assert failed == [], failed
