"""An administrator builds a campaign through the UI: field, contact list, import wizard, strategy with a
result rule, code group, campaign with a selection (the match count follows the conditions), start."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest
from playwright.async_api import Page, expect

from dialer.engine.bus import notify
from dialer.engine.events import CampaignStatusChanged
from tests.web.conftest import LiveServer, login, screenshot

pytestmark = pytest.mark.browser

CSV = ("Телефон,Сумма\n"
       "+79161234567,500\n"
       "+79161234568,1500\n"
       "not-a-phone,700\n"
       "+79161234569,2500\n").encode()


async def create_in_dialog(page: Page, fill: dict[str, str], selects: dict[str, str] | None = None) -> None:
    await page.click("[data-action=create]")
    dialog = page.locator("dialog.form-dialog")
    for name, value in fill.items():
        await dialog.locator(f"[name='{name}']").fill(value)
    for name, label in (selects or {}).items():
        await dialog.locator(f"select[name='{name}']").select_option(label=label)
    await dialog.locator("[data-action=save]").click()
    await expect(dialog).to_have_count(0)


async def test_admin_builds_and_starts_a_campaign(page: Page, live_server: LiveServer,
                                                  admin: httpx.AsyncClient) -> None:
    await live_server.user("boss", roles=("admin",))
    url = live_server.url
    # fields
    await login(page, live_server, "boss", next_url="/admin/fields")
    await create_in_dialog(page, {"name": "Телефон"}, {"type": "телефон", "phone_type": "мобильный"})
    await create_in_dialog(page, {"name": "Сумма"}, {"type": "целое"})
    await expect(page.locator("table.grid tbody tr")).to_have_count(2)

    # a contact list with both fields; creating it opens its page
    await page.goto(f"{url}/admin/lists")
    await page.click("[data-action=create]")
    dialog = page.locator("dialog.form-dialog")
    await dialog.locator("[name=name]").fill("Лист А")
    for label in ("Телефон", "Сумма"):
        await dialog.locator("[data-action=add-row]").click()
        await dialog.locator("select[name='fields.field_id']").last.select_option(label=label)
    await dialog.locator("input[name='fields.required']").first.check()
    await dialog.locator("[data-action=save]").click()
    await expect(page).to_have_url(re.compile(r"/admin/lists/\d+$"))
    list_id = int(page.url.rsplit("/", 1)[1])

    # import wizard: upload, mapping preview, job, counts and the error report
    await page.click(".tab[data-tab=import]")
    await page.set_input_files(".wizard input[name=file]",
                               files=[{"name": "clients.csv", "mimeType": "text/csv", "buffer": CSV}])
    await page.click("[data-action=preview]")
    await expect(page.locator("table.preview tbody tr")).to_have_count(4)
    await expect(page.locator("table.preview select[data-column='Телефон']")).to_have_value("Телефон")
    await expect(page.locator("table.preview select[data-column='Сумма']")).to_have_value("Сумма")
    await screenshot(page, "admin-import-preview")
    await page.click("[data-action=run]")
    await expect(page.locator(".job-status")).to_have_attribute("data-status", "finished")
    await expect(page.locator("[data-count=imported] b")).to_have_text("3")
    await expect(page.locator("[data-count=rejected] b")).to_have_text("1")
    await expect(page.locator(".list-count")).to_contain_text("3")
    report_url = await page.locator("a.errors-report").get_attribute("href")
    assert report_url
    report = await page.request.get(url + report_url)
    assert report.ok and "not-a-phone" in await report.text()
    await screenshot(page, "admin-import-result")
    await page.click(".tab[data-tab=contacts]")
    await expect(page.locator(".tab-panel[data-tab=contacts] table.grid tbody tr")).to_have_count(3)

    # a strategy with a result rule and retries per outcome
    await page.goto(f"{url}/admin/strategies")
    await page.click("[data-action=create]")
    dialog = page.locator("dialog.form-dialog")
    await dialog.locator("[name=name]").fill("Основная")
    await dialog.locator("select[name=phone_field_id]").select_option(label="Телефон")
    retries = dialog.locator(".fld[data-field=outcome_retries]")
    await retries.locator("[data-action=add-row]").click()
    await retries.locator("input[name='outcome_retries.intervals']").fill("15;60;1440")
    rules = dialog.locator(".fld[data-field=result_rules]")
    await rules.locator("[data-action=add-row]").click()
    await rules.locator("select[name='result_rules.completion_code_id']").select_option(label="Нет ответа")
    await rules.locator("select[name='result_rules.day_type']").select_option("holiday")
    # no interval, not final, no common interval: the API names the rule's field
    await dialog.locator("[data-action=save]").click()
    await expect(rules.locator(".ferr:not(:empty)")).to_have_count(1)
    await expect(rules.locator("input[name='result_rules.retry_interval_s']")).to_have_class(re.compile("invalid"))
    await screenshot(page, "admin-strategy-rule-error")
    await rules.locator("input[name='result_rules.retry_interval_s']").fill("600")
    await dialog.locator("[data-action=save]").click()
    await expect(dialog).to_have_count(0)
    strategy = (await admin.get("/api/strategies")).json()["items"][0]
    assert strategy["name"] == "Основная"
    assert [(r["day_type"], r["retry_interval_s"]) for r in strategy["result_rules"]] == [("holiday", 600)]
    assert [(r["outcome"], r["intervals"], r["max_attempts"]) for r in strategy["outcome_retries"]] == [
        ("no_answer", "15;60;1440", 3)]

    # a completion-code group (second tab of the codes page)
    await page.goto(f"{url}/admin/codes")
    await page.click(".tab[data-tab=code_groups]")
    await page.click(".tab-panel[data-tab=code_groups] [data-action=create]")
    dialog = page.locator("dialog.form-dialog")
    await dialog.locator("[name=name]").fill("Продажи")
    for code in ("Отвечен", "Нет ответа", "Больше не звонить"):
        await dialog.locator(".refs label", has_text=code).locator("input").check()
    await dialog.locator("[data-action=save]").click()
    await expect(page.locator(".tab-panel[data-tab=code_groups] tbody tr")).to_contain_text("Больше не звонить")

    # the campaign
    await page.goto(f"{url}/admin/campaigns")
    await page.click("[data-action=create]")
    dialog = page.locator("dialog.form-dialog")
    await dialog.locator("[name=name]").fill("Весна")
    await dialog.locator("select[name=dial_mode]").select_option("preview")
    await expect(dialog.locator("input[name='dial_params.preview_seconds']")).to_have_value("10")
    await dialog.locator("input[name='dial_params.preview_seconds']").fill("20")
    await dialog.locator("select[name=strategy_id]").select_option(label="Основная")
    await dialog.locator("select[name=completion_code_group_id]").select_option(label="Продажи")
    await dialog.locator(".refs[data-name=list_ids] label", has_text="Лист А").locator("input").check()
    schedule = dialog.locator(".fld[data-field=schedule]")
    await schedule.locator("[data-action=preset]").first.click()  # Mon–Fri 09:00–21:00
    await schedule.locator("input[name='schedule.start']").first.fill("08:00")
    await screenshot(page, "admin-campaign-form")
    await dialog.locator("[data-action=save]").click()
    await expect(page).to_have_url(re.compile(r"/admin/campaigns/\d+$"))
    campaign_id = int(page.url.rsplit("/", 1)[1])
    await expect(page.locator("h1 .pill")).to_have_text("черновик")

    # a selection: the count follows the conditions as they are edited
    await page.click(".tab[data-tab=selections]")
    await page.click("[data-action=new-selection]")
    editor = page.locator(".sel-editor")
    await editor.locator("[name=name]").fill("Крупные")
    await expect(editor.locator(".match-count")).to_have_text("3")
    await editor.locator("[data-action=add-cond]").click()
    await editor.locator(".cond-field").select_option(label="Сумма")
    await editor.locator(".cond-op").select_option("gt")
    await editor.locator(".cond-input").fill("1000")
    await expect(editor.locator(".match-count")).to_have_text("2")
    await editor.locator(".cond-input").fill("2000")
    await expect(editor.locator(".match-count")).to_have_text("1")
    await editor.locator("[data-action=add-sort]").click()
    await editor.locator(".sortrow .cond-field").select_option(label="Сумма")
    await editor.locator(".sort-dir").select_option("desc")
    await screenshot(page, "admin-selection-builder")
    await editor.locator("[data-action=save-selection]").click()
    await expect(page.locator(".sel-list tbody tr")).to_contain_text("Крупные")

    # start it
    await page.click("[data-action=start]")
    await expect(page.locator("h1 .pill")).to_have_text("работает")
    await screenshot(page, "admin-campaign-started")
    await page.click("[data-action=pause]")
    await expect(page.locator("h1 .pill")).to_have_text("пауза")
    await page.click("[data-action=resume]")
    await expect(page.locator("h1 .pill")).to_have_text("работает")

    campaign = (await admin.get(f"/api/campaigns/{campaign_id}")).json()
    assert campaign["status"] == "running"
    assert campaign["list_ids"] == [list_id]
    assert campaign["dial_mode"] == "preview" and campaign["dial_params"]["preview_seconds"] == 20
    assert [(p["weekday"], p["start"][:5], p["end"][:5]) for p in campaign["schedule"]] == [
        (0, "08:00", "21:00"), *((d, "09:00", "21:00") for d in range(1, 5))]
    selections = (await admin.get(f"/api/campaigns/{campaign_id}/selections")).json()["items"]
    assert len(selections) == 1
    fields = {f["name"]: f["id"] for f in (await admin.get("/api/fields")).json()["items"]}
    assert selections[0]["conditions"] == [{"field": fields["Сумма"], "op": "gt", "value": 2000}]
    assert selections[0]["sort"] == [{"field": fields["Сумма"], "dir": "desc"}]
    preview = (await admin.get(f"/api/campaigns/{campaign_id}/selections/{selections[0]['id']}/preview")).json()
    assert preview["matching"] == 1

    # a callback for it, then postponed by 30 minutes
    await page.goto(f"{url}/admin/callbacks")
    await page.click("[data-action=create]")
    dialog = page.locator("dialog.form-dialog")
    await dialog.locator("select[name=campaign_id]").select_option(label="Весна")
    await dialog.locator("[name=number]").fill("+79161234569")
    await dialog.locator("[name=window_start]").fill("2030-03-01T10:00")
    await dialog.locator("[name=window_end]").fill("2030-03-01T12:00")
    await dialog.locator("[data-action=save]").click()
    row = page.locator("table.grid tbody tr", has_text="+79161234569")
    await expect(row).to_contain_text("Весна")
    created = (await admin.get("/api/callbacks")).json()["items"][0]
    local = datetime.fromisoformat(created["window_start"]).astimezone()  # the browser's zone is this machine's
    assert local.strftime("%Y-%m-%d %H:%M") == "2030-03-01 10:00"
    await row.click()
    await dialog.locator("[data-action=postpone]").click()
    await page.locator("dialog.action-dialog [name=minutes]").fill("30")
    await page.locator("dialog.action-dialog [data-action=run-action]").click()
    await expect(page.locator("dialog")).to_have_count(0)
    callback = (await admin.get("/api/callbacks")).json()["items"][0]
    start = datetime.fromisoformat(callback["window_start"])
    assert 29 * 60 <= (start - datetime.now(UTC)).total_seconds() <= 31 * 60  # postponed: 30 minutes from now
    await page.goto(f"{url}/admin/campaigns/{campaign_id}")
    await expect(page.locator(".admin-page[data-live=online]")).to_have_count(1)

    # a status change made elsewhere (here: the API, announced as the engine does) reaches the open page
    assert (await admin.post(f"/api/campaigns/{campaign_id}/pause", json={"comment": "обед"})).status_code == 200
    async with live_server.app.state.sessionmaker() as session, session.begin():
        await notify(session, [CampaignStatusChanged(at=datetime.now(UTC), campaign_id=campaign_id, status="paused",
                                                     previous="running", reason="обед")])
    await expect(page.locator("h1 .pill")).to_have_text("пауза")
    await expect(page.locator(".status-reason")).to_contain_text("обед")
    assert (await admin.post(f"/api/campaigns/{campaign_id}/resume", json={})).status_code == 200

    # a user who may only look: no actions, no save, the builder is read-only but still counts
    await page.context.clear_cookies()
    await live_server.user("viewer", grants={"campaigns.read": True, "selections.read": True, "lists.read": True,
                                             "fields.read": True})
    await login(page, live_server, "viewer", next_url=f"/admin/campaigns/{campaign_id}")
    await expect(page.locator("h1 .pill")).to_have_text("работает")
    await expect(page.locator(".detail-head .actions button")).to_have_count(0)
    await expect(page.locator("[data-action=save]")).to_have_count(0)
    await expect(page.locator(".aform [name=name]")).to_be_disabled()
    await page.click(".tab[data-tab=selections]")
    await expect(page.locator("[data-action=new-selection]")).to_have_count(0)
    await page.locator(".sel-list tbody tr").first.click()
    await expect(page.locator(".sel-editor .cond-input")).to_have_value("2000")
    await expect(page.locator(".sel-editor .cond-input")).to_be_disabled()
    await expect(page.locator(".sel-editor .match-count")).to_have_text("1")
    await expect(page.locator("[data-action=save-selection], [data-action=add-cond]")).to_have_count(0)
