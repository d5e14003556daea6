"""The call card's recording player in Chromium: it plays, seeks (HTTP Range), changes speed; download only with
the permission; the listen is in the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Page, Response, expect
from sqlalchemy import select

from dialer.media.recording_settings import get_recording_settings
from dialer.media.recordings import spool_dir
from dialer.models import AuditEntry
from tests.media.recording_fixtures import EPOCH, campaign_and_attempt, virtual_clock, worker_for, write_call
from tests.web.conftest import LiveServer, login, screenshot

START = datetime.fromtimestamp(EPOCH, UTC)


@pytest.fixture(autouse=True)
def no_background_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DIALER_MEDIA_RECORDING_WORKER", "false")
    get_recording_settings.cache_clear()
    yield
    get_recording_settings.cache_clear()


async def test_player_plays_seeks_and_changes_speed(page: Page, app: FastAPI, admin: httpx.AsyncClient,
                                                    live_server: LiveServer) -> None:
    _, attempt_id = await campaign_and_attempt(app, admin, "web@dialer")
    worker = worker_for(app, clock=virtual_clock(START + timedelta(seconds=5)))
    write_call(spool_dir(worker.root), "web", call_id="web@dialer", seconds=4.0)
    assert (await worker.run_once()).stored == ["web"]
    await live_server.user("sup", roles=("supervisor",))
    ranged: list[int] = []

    def seen(response: Response) -> None:
        if "/api/recordings/" in response.url and "/stream" in response.url:
            ranged.append(response.status)

    page.on("response", seen)
    await login(page, live_server, "sup", next_url=f"/supervisor/attempts/{attempt_id}")
    player = page.locator("#recording-player")
    await expect(player.locator("h2")).to_have_text("Запись разговора")
    await expect(player.locator(".rec-channels")).to_have_text("Левый канал — клиент, правый — оператор")
    await expect(player.locator(".rec-length")).to_have_text("0:04")
    await expect(player.locator("a.rec-download")).to_have_text("Скачать")
    audio = player.locator("audio.rec-audio")
    await page.wait_for_function("document.querySelector('audio.rec-audio').readyState >= 1")
    duration = await audio.evaluate("a => a.duration")
    assert 3.9 < duration < 4.2

    # speed
    await player.locator("select.rec-speed").select_option("1.5")
    assert await audio.evaluate("a => a.playbackRate") == 1.5
    assert await player.locator("select.rec-speed option").all_inner_texts() == ["0,75×", "1×", "1,25×", "1,5×", "2×"]

    # plays (muted: no user gesture needed), then seeks forward
    await audio.evaluate("a => { a.muted = true; return a.play(); }")
    await page.wait_for_function("document.querySelector('audio.rec-audio').currentTime > 0.3")
    await audio.evaluate("a => { a.currentTime = 3.0; }")
    await page.wait_for_function("(() => { const a = document.querySelector('audio.rec-audio');"
                                 " return !a.seeking && (a.currentTime >= 3.0 || a.ended); })()")
    await screenshot(page, "recording-player")
    assert 206 in ranged, ranged  # the browser fetched by byte ranges
    async with app.state.sessionmaker() as session:
        listens = (await session.scalars(select(AuditEntry).where(
            AuditEntry.object_type == "recordings", AuditEntry.event == "listen"))).all()
    assert [e.user_login for e in listens] == ["sup"]


async def test_no_download_without_the_permission_and_english_labels(page: Page, app: FastAPI,
                                                                     admin: httpx.AsyncClient,
                                                                     live_server: LiveServer) -> None:
    _, attempt_id = await campaign_and_attempt(app, admin, "web2@dialer")
    worker = worker_for(app, clock=virtual_clock(START + timedelta(seconds=5)))
    write_call(spool_dir(worker.root), "web2", call_id="web2@dialer", seconds=1.0)
    await worker.run_once()
    await live_server.user("listener", grants={"monitoring.read": True, "recordings.listen": True})
    await login(page, live_server, "listener", next_url=f"/supervisor/attempts/{attempt_id}")
    await page.goto(f"{live_server.url}/lang/en?next=/supervisor/attempts/{attempt_id}")
    player = page.locator("#recording-player")
    await expect(player.locator("h2")).to_have_text("Call recording")
    await expect(player.locator("audio.rec-audio")).to_have_count(1)
    await expect(player.locator("a.rec-download")).to_have_count(0)
    # no listening permission: no player at all
    await live_server.user("watcher", grants={"monitoring.read": True})
    await page.context.clear_cookies()
    await login(page, live_server, "watcher", next_url=f"/supervisor/attempts/{attempt_id}")
    await expect(page.locator("#attempt-card")).to_contain_text("+79161234567")
    await expect(page.locator("#recording-player")).to_have_count(0)
    # mounted anyway (as a page that does not know the permissions would): the API's 403 leaves nothing shown
    hidden = await page.evaluate("""async (id) => {
        const { mountPlayer } = await import("/static/recording_player.js");
        const box = document.createElement("section");
        document.body.append(box);
        await mountPlayer(box, id);
        return box.hidden && box.childElementCount === 0;
    }""", attempt_id)
    assert hidden is True
