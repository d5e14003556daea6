"""The UI foundation in a real browser: login, language, navigation by permission, refusals, live events."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine.bus import notify
from dialer.engine.events import CampaignFinished, OperatorStateChanged
from tests.web.conftest import LiveServer, login, screenshot

pytestmark = pytest.mark.browser


async def test_login_leads_to_the_first_section(page: Page, live_server: LiveServer) -> None:
    await live_server.user("boss", roles=("admin",))
    await login(page, live_server, "boss")
    await expect(page).to_have_url(f"{live_server.url}/admin")  # an administrator lands in the administration
    await expect(page.locator(".mainnav")).to_contain_text("Супервайзер")
    await expect(page.locator(".tiles a[data-nav='admin.users']")).to_have_text("Пользователи")
    await expect(page.locator(".username")).to_have_text("boss")


async def test_wrong_password_is_shown_on_the_login_page(page: Page, live_server: LiveServer) -> None:
    await live_server.user("boss", roles=("admin",))
    await page.goto(f"{live_server.url}/login")
    await page.fill("input[name=login]", "boss")
    await page.fill("input[name=password]", "wrong-password")
    await page.click("button[type=submit]")
    await expect(page.locator("#login-error")).to_have_text("Неверный логин или пароль")
    await expect(page).to_have_url(f"{live_server.url}/login")


async def test_anonymous_is_sent_to_login_and_back(page: Page, live_server: LiveServer) -> None:
    await live_server.user("boss", roles=("admin",))
    await page.goto(f"{live_server.url}/admin/users?q=bo")
    await expect(page).to_have_url(f"{live_server.url}/login?next=/admin/users%3Fq%3Dbo")
    await page.fill("input[name=login]", "boss")
    await page.fill("input[name=password]", "secret-pass-1")
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{live_server.url}/admin/users?q=bo")
    # the table searched with the query from the address
    await expect(page.locator("table.grid tbody tr")).to_have_count(1)
    await expect(page.locator("table.grid tbody")).to_contain_text("boss")


async def test_users_table_searches_sorts_and_pages(page: Page, live_server: LiveServer) -> None:
    await live_server.user("boss", roles=("admin",))
    for i in range(30):
        await live_server.user(f"agent{i:02d}", roles=("operator",))
    await login(page, live_server, "boss", next_url="/admin/users")
    rows = page.locator("table.grid tbody tr")
    await expect(rows).to_have_count(31)
    await expect(page.locator(".dt-info")).to_have_text("1–31 из 31")
    await page.select_option(".dt-pager select", "25")
    await expect(rows).to_have_count(25)
    await screenshot(page, "admin-users-table")
    await page.click("text=Вперёд")
    await expect(rows).to_have_count(6)
    await expect(page.locator(".dt-info")).to_have_text("26–31 из 31")
    await page.click("th[data-key=login]")  # sorted by login already: now descending, back to page 1
    await expect(rows.first).to_contain_text("boss")
    await expect(page.locator("th[data-key=login]")).to_have_attribute("aria-sort", "descending")
    await page.fill("input[type=search]", "agent0")
    await expect(rows).to_have_count(10)
    # the table's state is kept in the address (reload and back keep it)
    assert parse_qs(urlsplit(page.url).query) == {"q": ["agent0"], "sort": ["-login"], "per_page": ["25"]}
    await page.fill("input[type=search]", "nobody-like-this")
    await expect(page.locator(".dt-empty")).to_have_text("Ничего не найдено")


async def test_language_switch(page: Page, live_server: LiveServer) -> None:
    await live_server.user("boss", roles=("admin",))
    await login(page, live_server, "boss", next_url="/admin/users")
    await expect(page.locator("th[data-key=login]")).to_have_text("Логин")
    await page.click(".langs a[data-lang=en]")
    await expect(page).to_have_url(f"{live_server.url}/admin/users")
    await expect(page.locator(".mainnav")).to_contain_text("Administration")
    await expect(page.locator("th[data-key=login]")).to_have_text("Login")  # strings of app.js too
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await screenshot(page, "admin-users-english")
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    assert cookies["lang"] == "en"
    await page.click(".langs a[data-lang=ru]")
    await expect(page.locator("th[data-key=login]")).to_have_text("Логин")


async def test_navigation_shows_only_what_the_user_may_see(page: Page, live_server: LiveServer) -> None:
    # users.read only: administration with one page in it
    await live_server.user("auditor", grants={"users.read": True})
    await login(page, live_server, "auditor")
    await expect(page).to_have_url(f"{live_server.url}/admin")
    await expect(page.locator(".tiles a")).to_have_count(1)
    await expect(page.locator(".navmenu a")).to_have_count(1)
    await expect(page.locator(".navmenu a")).to_have_attribute("href", "/admin/users")
    await screenshot(page, "nav-users-read-only")
    # an operator sees no administration and is refused its pages
    await page.context.clear_cookies()
    await live_server.user("op", roles=("operator",))
    await login(page, live_server, "op", next_url="/admin/users")
    await expect(page.locator(".mainnav a[data-nav=admin]")).to_have_count(0)
    await expect(page.locator("h1")).to_have_text("Доступ запрещён")
    await expect(page.locator(".error-page")).to_contain_text("users.read")


async def test_logout(page: Page, live_server: LiveServer) -> None:
    await live_server.user("boss", roles=("admin",))
    await login(page, live_server, "boss")
    await page.click("#logout")
    await expect(page).to_have_url(f"{live_server.url}/login")
    await page.goto(f"{live_server.url}/admin")
    await expect(page).to_have_url(f"{live_server.url}/login?next=/admin")


async def test_live_event_reaches_the_browser_within_a_second(page: Page, live_server: LiveServer) -> None:
    await live_server.user("sup", roles=("admin",))
    await login(page, live_server, "sup", next_url="/admin/users")
    await page.evaluate("""async () => {
        const { live } = await import("/static/app.js");
        window.got = []; window.liveStates = [];
        window.stream = live(["operators"], (e) => window.got.push({...e, seenAt: Date.now()}),
                             {onState: (s) => window.liveStates.push(s)});
    }""")
    await page.wait_for_function("window.liveStates.includes('online')")
    sent = time.time()
    async with live_server.app.state.sessionmaker() as session, session.begin():
        await notify(session, [OperatorStateChanged(at=datetime.now(UTC), operator_id=5, state="paused",
                                                    previous="ready", reason="lunch", campaign_id=None,
                                                    attempt_id=None)])
    await page.wait_for_function("window.got.length > 0", timeout=1000)
    event = await page.evaluate("window.got[0]")
    assert (event["type"], event["operator_id"], event["state"], event["reason"]) == (
        "OperatorStateChanged", 5, "paused", "lunch")
    assert event["seenAt"] / 1000 - sent < 1.0
    await page.evaluate("window.stream.close()")


async def test_lost_listener_makes_the_page_refetch(page: Page, live_server: LiveServer,
                                                    sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """When the server's LISTEN connection drops, browsers are told to re-read their state, and events flow again."""
    await live_server.user("sup", roles=("admin",))
    await login(page, live_server, "sup", next_url="/admin/users")
    await page.evaluate("""async () => {
        const { live } = await import("/static/app.js");
        window.got = []; window.refetched = 0; window.liveStates = [];
        live([], (e) => window.got.push(e), {onReconnect: () => window.refetched++,
                                             onState: (s) => window.liveStates.push(s)});
    }""")
    await page.wait_for_function("window.liveStates.includes('online')")
    # the owner's session: the application's role may not see nor end another connection
    async with sessionmaker() as session, session.begin():
        killed = (await session.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'LISTEN%'"))).scalars().all()
    assert killed == [True]
    await page.wait_for_function("window.refetched === 1", timeout=5000)
    async with live_server.app.state.sessionmaker() as session, session.begin():
        await notify(session, [CampaignFinished(at=datetime.now(UTC), campaign_id=3)])
    await page.wait_for_function("window.got.some((e) => e.type === 'CampaignFinished' && e.campaign_id === 3)")
