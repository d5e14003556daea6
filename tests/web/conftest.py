"""Browser tests: the real application on a free port, driven by Debian's chromium through Playwright.

Fixtures
    ``start_server(with_engine=False, **serve_kwargs)``: starts :func:`dialer.tools.serve.serve` (uvicorn, and the
    engine on simulated telephony when ``with_engine=True``; other keyword arguments go to ``serve``, e.g.
    ``sim_operators=True, human_operators=[op_id]``) on this test's database and returns a :class:`LiveServer`; it
    is stopped (``stop`` event, engine drained) after the test. ``live_server`` is ``start_server()`` without the
    engine. ``browser`` (one chromium per session), ``context`` and ``page`` (fresh per test; the page's screenshot
    is saved to ``test-artifacts/<test>.png`` after every test, also a failing one). ``login(page, server, login,
    password)`` logs in through the login page. Users are made with ``await server.user("op1", roles=("operator",))``.

The server runs in the test's own event loop, so a test can await database work and Playwright calls side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from dialer.config import Settings
from dialer.engine.runner import Engine
from dialer.tools.serve import serve
from tests.conftest import make_user

CHROMIUM = os.environ.get("DIALER_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "secret-pass-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclasses.dataclass
class LiveServer:
    url: str
    database_url: str
    #: A second application on the same database, for direct database work (``app.state.sessionmaker``).
    app: FastAPI
    #: The engine, when started with one.
    engine: Engine | None = None
    stopping: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        """Stop it as a signal would (the engine drains); done anyway after the test. Wrap in asyncio.timeout."""
        self.stopping.set()
        if self.task is not None:
            await asyncio.shield(self.task)

    async def user(self, login: str, *, roles: tuple[str, ...] = (), password: str = PASSWORD,
                   grants: dict[str, bool] | None = None) -> int:
        return await make_user(self.app, login, roles=roles, password=password, grants=grants)


StartServer = Callable[..., Awaitable[LiveServer]]


@pytest.fixture
async def start_server(app: FastAPI, db_url: str, settings: Settings) -> AsyncIterator[StartServer]:
    running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start(*, with_engine: bool = False, **kwargs: Any) -> LiveServer:
        port = free_port()
        server = LiveServer(url=f"http://127.0.0.1:{port}", database_url=db_url, app=app)
        stop = server.stopping

        def on_engine(engine: Engine) -> None:
            server.engine = engine

        task = asyncio.create_task(serve(settings, host="127.0.0.1", port=port, database_url=db_url,
                                         with_engine=with_engine, prepare=False, stop=stop, on_engine=on_engine,
                                         log_level="warning", **kwargs))
        server.task = task
        running.append((stop, task))
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                if task.done():
                    task.result()  # raises what stopped it
                    raise RuntimeError("the server stopped at once")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(server.url + "/api/health")).status_code == 200:
                        return server
                await asyncio.sleep(0.05)
        raise TimeoutError("the server did not start within 10 s")

    try:
        yield start
    finally:
        for stop, _ in running:
            stop.set()
        for _, task in running:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 60)
        # serve() installs SIGINT/SIGTERM handlers on the loop; give Ctrl-C back to pytest
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)


@pytest.fixture
async def live_server(start_server: StartServer) -> LiveServer:
    return await start_server()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"{CHROMIUM} is missing: bash scripts/test.sh installs Debian's chromium")
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                            args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="ru-RU")
    try:
        yield ctx
    finally:
        await ctx.close()


def artifact_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1]).strip("_")


async def screenshot(page: Page, name: str) -> Path:
    """Save a screenshot of ``page`` as ``test-artifacts/<name>.png``."""
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)  # Playwright creates the directory
    return path


@pytest.fixture
async def page(context: BrowserContext, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    pg = await context.new_page()
    pg.set_default_timeout(10_000)
    errors: list[str] = []
    pg.on("pageerror", lambda err: errors.append(str(err)))
    try:
        yield pg
    finally:
        if not pg.is_closed():
            with contextlib.suppress(Exception):  # a screenshot must not hide the test's own outcome
                await screenshot(pg, artifact_name(request.node.nodeid))
            await pg.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


async def login(page: Page, server: LiveServer, user: str, password: str = PASSWORD, *, next_url: str = "/") -> None:
    """Log in through the login page and wait for the page it leads to."""
    await page.goto(f"{server.url}/login?next={next_url}")
    await page.fill("input[name=login]", user)
    await page.fill("input[name=password]", password)
    async with page.expect_navigation():
        await page.click("button[type=submit]")
