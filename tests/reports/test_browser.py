"""The reports pages in chromium: filter bar, KPI tiles, charts drawn by vega-embed, tables, drill-down to the calls
and the call card, the English version; the PDF export's pages rendered as PNG. Screenshots in test-artifacts/."""

from __future__ import annotations

from urllib.parse import quote

import pypdfium2
import pytest
from playwright.async_api import Page

from dialer.web.reports_pages import charts_installed
from tests.reports.data import make_day
from tests.web.conftest import ARTIFACTS, LiveServer, login, screenshot

pytestmark = pytest.mark.browser

DAY = "period=custom&date_from=2026-03-04&date_to=2026-03-04"


async def _open(page: Page, server: LiveServer, path: str) -> None:
    await page.goto(f"{server.url}{path}")
    await page.wait_for_selector("#report[data-loaded=true]", timeout=30_000)


async def test_reports_pages_draw_and_drill_down(page: Page, live_server: LiveServer) -> None:
    assert charts_installed(), "npm ci in src/dialer/web/npm (scripts/test.sh does it)"
    day = await make_day(live_server.app.state.sessionmaker)
    await live_server.user("sup", roles=("supervisor",))
    await login(page, live_server, "sup", next_url=quote(f"/reports/outcomes?{DAY}"))
    await page.wait_for_selector("#report[data-loaded=true]", timeout=30_000)
    assert await page.locator(".rep-tile").count() == 8  # with the transferred calls' tile
    assert "7" in await page.locator(".rep-tile").first.inner_text()
    # Three charts drawn as SVG by vega-embed with the panels' category colours.
    await page.wait_for_selector(".rep-chart svg", timeout=30_000)
    assert await page.locator(".rep-chart svg").count() == 3
    html = await page.locator(".rep-chart[data-chart=by_hour]").inner_html()
    assert "#2e9d44" in html.lower() or "rgb(46, 157, 68)" in html
    assert await page.locator("a.lang").count() >= 1 and await page.locator("#rep-no-charts").count() == 0
    await screenshot(page, "reports_outcomes")
    # A category's count opens the calls behind it.
    await page.click(".rep-categories a[data-outcome=answered]")
    await page.wait_for_selector("#report[data-loaded=true] table.grid tbody tr", timeout=30_000)
    rows = page.locator("#rep-tables table.grid tbody tr")
    assert await rows.count() == 2
    assert "outcome=answered" in page.url
    await screenshot(page, "reports_calls")
    # ...and a call its card with the timeline.
    async with page.expect_navigation():
        await rows.first.click()
    assert "/supervisor/attempts/" in page.url
    for name in ("operators", "states", "codes", "abandon", "progress", "shift"):
        await _open(page, live_server, f"/reports/{name}?{DAY}&campaign_ids={day.world.campaign_id}")
        assert await page.locator(".rep-table").count() >= 1, name
        await screenshot(page, f"reports_{name}")
    # Anna's row of the operators' report leads to her calls only.
    await _open(page, live_server, f"/reports/operators?{DAY}")
    async with page.expect_navigation():
        await page.click("section[data-table=operators] tbody tr:has-text('Анна') a")
    await page.wait_for_selector("#report[data-loaded=true] table.grid tbody tr", timeout=30_000)
    assert await page.locator("#rep-tables table.grid tbody tr").count() == 1
    # English.
    await page.goto(f"{live_server.url}/lang/en?next=/reports/outcomes%3F{DAY.replace('&', '%26')}")
    await page.wait_for_selector("#report[data-loaded=true]", timeout=30_000)
    assert await page.locator("h1").inner_text() == "Call outcomes"
    await page.wait_for_selector(".rep-chart svg", timeout=30_000)
    await screenshot(page, "reports_outcomes_en")


async def test_filter_bar_keeps_the_filter_in_the_address(page: Page, live_server: LiveServer) -> None:
    day = await make_day(live_server.app.state.sessionmaker)
    await live_server.user("sup", roles=("supervisor",))
    await login(page, live_server, "sup", next_url="/reports/outcomes")
    await page.wait_for_selector("#report[data-loaded=true]", timeout=30_000)
    await page.select_option("select[name=period]", "custom")
    await page.fill("input[name=date_from]", "2026-03-04")
    await page.fill("input[name=date_to]", "2026-03-04")
    await page.wait_for_selector(f"select[name=campaign_ids] option[value='{day.world.campaign_id}']", state="attached")
    await page.select_option("select[name=campaign_ids]", str(day.world.campaign_id))
    await page.click("#rep-filter button[type=submit]")
    await page.wait_for_function("document.querySelector('.rep-tile .rep-tile-value').textContent.trim() === '7'")
    assert f"campaign_ids={day.world.campaign_id}" in page.url and "date_from=2026-03-04" in page.url
    href = await page.get_attribute("#rep-exports a[data-format=pdf]", "href")
    assert href is not None and "format=pdf" in href and "date_from=2026-03-04" in href
    # Saved as the default view, the filter comes back on a bare /reports/outcomes.
    await page.fill("#rep-view-name", "Весна, 4 марта")
    await page.check("#rep-view-default")
    await page.click("#rep-view-save")
    await page.wait_for_selector("#rep-view-select option:has-text('Весна, 4 марта ★')", state="attached")
    await page.goto(f"{live_server.url}/reports/outcomes")
    await page.wait_for_function("document.querySelector('.rep-tile .rep-tile-value')?.textContent.trim() === '7'")
    assert "date_from=2026-03-04" in page.url and f"campaign_ids={day.world.campaign_id}" in page.url
    await screenshot(page, "reports_saved_view")


async def test_pdf_pages_as_png(page: Page, live_server: LiveServer) -> None:
    await make_day(live_server.app.state.sessionmaker)
    await live_server.user("sup", roles=("supervisor",))
    await login(page, live_server, "sup", next_url=quote(f"/reports/shift?{DAY}"))
    await page.wait_for_selector("#report[data-loaded=true]", timeout=30_000)
    for name in ("shift", "outcomes"):
        async with page.expect_download() as info:
            await page.click("#rep-exports a[data-format=pdf]") if name == "shift" else \
                await page.evaluate(f"location.assign('/api/reports/{name}/export?format=pdf&{DAY}')")
        download = await info.value
        path = ARTIFACTS / f"reports_{name}.pdf"
        await download.save_as(path)
        document = pypdfium2.PdfDocument(str(path))
        assert len(document) >= 2
        text = document[0].get_textpage().get_text_range()
        assert "Сводка смены" in text or "Итоги звонков" in text
        for i in range(min(3, len(document))):
            image = document[i].render(scale=1.5).to_pil()
            image.save(ARTIFACTS / f"reports_{name}_pdf_page{i + 1}.png")
            assert image.width > 800
        document.close()


async def test_direction_filter_and_the_ledgers_inbound_columns(page: Page, live_server: LiveServer) -> None:
    from tests.reports.test_direction import add_inbound

    day = await make_day(live_server.app.state.sessionmaker)
    await add_inbound(live_server.app.state.sessionmaker, day)
    await live_server.user("sup", roles=("supervisor",))
    await login(page, live_server, "sup", next_url=quote(f"/reports/calls?{DAY}&direction=inbound"))
    await page.wait_for_selector("#report[data-loaded=true] table.grid tbody tr", timeout=30_000)
    assert await page.locator("select[name=direction]").input_value() == "inbound"
    rows = page.locator("#rep-tables table.grid tbody tr")
    assert await rows.count() == 2
    assert all("входящий" in text for text in await rows.all_inner_texts())
    assert await page.locator("#rep-clickhouse").is_hidden()  # the copy is off here: no line
    await screenshot(page, "reports_calls_inbound")
    await _open(page, live_server, f"/reports/abandon?{DAY}")
    ledger = page.locator("section[data-table=abandon]")
    assert "Входящие потерянные" in await ledger.locator("thead").inner_text()
    assert "33,33" in await ledger.locator("tbody").inner_text()  # 1 of 3 outbound live answers, not 2 of 5
    await screenshot(page, "reports_abandon_inbound")
