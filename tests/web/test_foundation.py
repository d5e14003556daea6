"""The UI foundation without a browser: catalogues, navigation, page access, the live-event filter and stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from dialer.auth.permissions import P
from dialer.engine.bus import notify
from dialer.engine.events import AttemptFinished, CallEnded, CallRinging, CampaignStatusChanged, OperatorStateChanged
from dialer.models import Operator
from dialer.web import i18n, nav
from dialer.web.access import safe_next
from dialer.web.live import OperatorView, topic_types
from tests.conftest import make_user
from tests.web.conftest import PASSWORD, LiveServer, StartServer

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_catalogues_have_the_same_messages() -> None:
    ru, en = i18n.catalogue("ru"), i18n.catalogue("en")
    assert set(ru) == set(en)
    assert all(ru.values()) and all(en.values())
    assert ru["nav.operator"] == "Панель оператора"
    assert i18n.translate("en", "error.forbidden.permission", permission="users.read").count("users.read") == 1
    assert i18n.translate("ru", "no.such.message") == "no.such.message"


def test_every_nav_label_is_translated() -> None:
    for item in nav.NAV:
        assert item.label in i18n.catalogue("ru"), item


def test_nav_shows_routed_pages_the_user_may_see() -> None:
    routed = {"/operator", "/admin", "/admin/users", "/admin/roles"}
    admin = nav.visible({P.users_read, P.roles_read}, routed)
    assert [s.item.key for s in admin] == ["admin"]
    assert [c.key for c in admin[0].children] == ["admin.users", "admin.roles"]
    assert [s.item.key for s in nav.visible({P.panel_use, P.users_read}, routed)] == ["operator", "admin"]
    assert nav.first_path(nav.visible({P.panel_use}, routed)) == "/operator"
    # /supervisor is registered but not routed: nobody sees it yet
    assert nav.visible({P.monitoring_read}, routed) == []
    assert nav.first_path([]) is None


def test_nav_register_refuses_a_different_item_under_a_used_key() -> None:
    item = nav.NAV[0]
    assert nav.register(item) is item
    with pytest.raises(ValueError):
        nav.register(nav.NavItem(item.key, "/elsewhere", item.label, item.permission))


@pytest.mark.parametrize(("value", "expected"), [
    ("/admin/users?page=2", "/admin/users?page=2"), (None, "/"), ("", "/"), ("https://evil.example/", "/"),
    ("//evil.example/x", "/"), ("/\\evil.example", "/"), ("admin", "/"),
    ("/\t/evil.example", "/"), ("/\n/evil.example", "/"), ("/ /evil.example", "/"), ("/\x00x", "/"),
])
def test_safe_next(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_topics() -> None:
    assert topic_types([]) is None
    assert topic_types(["campaigns", "CallEnded"]) == {
        "CampaignStatusChanged", "CampaignAutoPaused", "CampaignFinished", "CampaignScheduleChanged", "CallEnded"}
    with pytest.raises(ValueError):
        topic_types(["nonsense"])


def test_operator_view_passes_own_events_and_only_counters_of_others() -> None:
    view = OperatorView(7)
    at = NOW.isoformat()
    mine = {"type": "CallConnected", "at": at, "attempt_id": 100, "campaign_id": 1, "operator_id": 7, "waited_s": 0.5}
    other = {"type": "CallConnected", "at": at, "attempt_id": 200, "campaign_id": 1, "operator_id": 8, "waited_s": 1}
    assert view.view(mine) is mine
    assert view.view(other) is None
    # call events without an operator: only those of attempts seen with mine
    assert view.view({"type": "CallEnded", "attempt_id": 100, "campaign_id": 1}) is not None
    assert view.view({"type": "CallEnded", "attempt_id": 200, "campaign_id": 1}) is None
    assert view.view({"type": "CallPlaced", "attempt_id": 300, "operator_id": None, "number": "+7900"}) is None
    finished_other = {"type": "AttemptFinished", "at": at, "attempt_id": 200, "campaign_id": 1, "contact_id": 55,
                      "operator_id": 8, "category": "answered", "completion_code_id": 3, "abandoned": False,
                      "waited_s": 1.0}
    assert view.view(finished_other) == {"type": "AttemptFinished", "at": at, "campaign_id": 1,
                                         "category": "answered", "abandoned": False}
    finished_mine = {**finished_other, "attempt_id": 100, "operator_id": 7}
    assert view.view(finished_mine) is finished_mine
    status = {"type": "CampaignStatusChanged", "campaign_id": 1, "status": "paused"}
    assert view.view(status) is status


# --- pages through the ASGI app --------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def _session_client(app: FastAPI, login: str, roles: tuple[str, ...]) -> AsyncIterator[httpx.AsyncClient]:
    """A client logged in with a browser session (cookie), as a browser is."""
    await make_user(app, login, roles=roles)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        r = await client.post("/api/auth/login", json={"login": login, "password": PASSWORD})
        assert r.status_code == 200, r.text
        yield client


async def test_anonymous_is_sent_to_the_login_page(anon: httpx.AsyncClient) -> None:
    r = await anon.get("/admin/users?page=2")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/admin/users%3Fpage%3D2"
    login = await anon.get(r.headers["location"])
    assert login.status_code == 200
    assert 'data-next="/admin/users?page=2"' in login.text
    assert "Вход" in login.text


async def test_page_without_permission_is_a_403_page(app: FastAPI) -> None:
    async with _session_client(app, "op", roles=("operator",)) as client:
        r = await client.get("/admin/users")
        assert r.status_code == 403
        assert r.headers["content-type"].startswith("text/html")
        assert "users.read" in r.text and "Доступ запрещён" in r.text
        # logged in: the login page sends them on
        r = await client.get("/login?next=/admin")
        assert (r.status_code, r.headers["location"]) == (303, "/admin")


async def test_page_carries_the_csrf_token_and_the_catalogue(app: FastAPI) -> None:
    async with _session_client(app, "adm", roles=("admin",)) as client:
        me = (await client.get("/api/auth/me")).json()
        r = await client.get("/admin/users")
        assert r.status_code == 200
        assert f'<meta name="csrf-token" content="{me["csrf_token"]}">' in r.text
        assert '"nav.admin.users": "Пользователи"' in r.text
        r = await client.get("/", follow_redirects=False)  # the administrator lands in the administration (#13)
        assert (r.status_code, r.headers["location"]) == (303, "/admin")
    async with _session_client(app, "sup", roles=("supervisor",)) as client:
        r = await client.get("/", follow_redirects=False)  # a supervisor, who configures nothing, on his floor
        assert (r.status_code, r.headers["location"]) == (303, "/supervisor")


async def test_language_switch_sets_the_cookie(anon: httpx.AsyncClient) -> None:
    r = await anon.get("/lang/en?next=/login")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert "lang=en" in r.headers["set-cookie"]
    assert "Log in" in (await anon.get("/login", headers={"Cookie": "lang=en"})).text
    r = await anon.get("/lang/xx?next=https://evil.example/")
    assert r.headers["location"] == "/" and "set-cookie" not in r.headers


async def test_static_files_are_served(anon: httpx.AsyncClient) -> None:
    r = await anon.get("/static/app.js")
    assert r.status_code == 200
    assert "export async function api" in r.text
    assert (await anon.get("/static/app.css")).text.count("--st-ready") >= 2
    assert (await anon.get("/static/../endpoints.py")).status_code == 404


async def test_live_events_are_in_the_openapi_schema_and_pages_are_not(anon: httpx.AsyncClient) -> None:
    paths = (await anon.get("/openapi.json")).json()["paths"]
    assert "/live/events" in paths
    assert "text/event-stream" in paths["/live/events"]["get"]["responses"]["200"]["content"]
    assert not {"/", "/login", "/admin", "/admin/users"} & set(paths)


# --- the event stream over a real socket -----------------------------------------------------------------------

async def _events(client: httpx.AsyncClient, url: str, cookies: dict[str, str], out: asyncio.Queue[dict[str, object]]
                  ) -> None:
    async with client.stream("GET", url, headers=cookies) as r:
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"].startswith("text/event-stream")
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                await out.put(json.loads(line[6:]))


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def _login(http: httpx.AsyncClient, server: LiveServer, login: str) -> dict[str, str]:
    r = await http.post(server.url + "/api/auth/login", json={"login": login, "password": PASSWORD})
    assert r.status_code == 200, r.text
    http.cookies = httpx.Cookies()  # each request below names its session itself
    return {"Cookie": f"dialer_session={r.cookies['dialer_session']}"}


async def _next(queue: asyncio.Queue[dict[str, object]]) -> dict[str, object]:
    return await asyncio.wait_for(queue.get(), 3)


async def test_operator_stream_carries_only_what_the_operator_may_see(live_server: LiveServer,
                                                                      http: httpx.AsyncClient) -> None:
    user_id = await live_server.user("op1", roles=("operator",))
    async with live_server.app.state.sessionmaker() as session, session.begin():
        mine, other = Operator(name="Op One", user_id=user_id), Operator(name="Op Two")
        session.add_all([mine, other])
        await session.flush()
        mine_id, other_id = mine.id, other.id
    cookies = await _login(http, live_server, "op1")
    queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    reader = asyncio.create_task(_events(http, live_server.url + "/live/events", cookies, queue))
    try:
        hello = await _next(queue)
        assert hello == {"type": "Hello", "scope": "operator", "operator_id": mine_id, "topics": []}
        events = [
            OperatorStateChanged(at=NOW, operator_id=other_id, state="ready", previous="offline", reason="",
                                 campaign_id=None, attempt_id=None),
            OperatorStateChanged(at=NOW, operator_id=mine_id, state="in_call", previous="ready", reason="",
                                 campaign_id=1, attempt_id=41),
            CallRinging(at=NOW, attempt_id=42, campaign_id=1),
            CallEnded(at=NOW, attempt_id=41, campaign_id=1, result="hung_up", side="remote", cause="", sip_code=None),
            AttemptFinished(at=NOW, attempt_id=42, campaign_id=1, contact_id=9, operator_id=other_id,
                            category="busy", completion_code_id=None, abandoned=False, waited_s=None),
            CampaignStatusChanged(at=NOW, campaign_id=1, status="paused", previous="running", reason="manual"),
        ]
        async with live_server.app.state.sessionmaker() as session, session.begin():
            await notify(session, events)
        got = [await _next(queue) for _ in range(4)]
        assert [g["type"] for g in got] == ["OperatorStateChanged", "CallEnded", "AttemptFinished",
                                             "CampaignStatusChanged"]
        assert got[0]["operator_id"] == mine_id and got[0]["state"] == "in_call"
        assert got[2] == {"type": "AttemptFinished", "at": NOW.isoformat(), "campaign_id": 1, "category": "busy",
                          "abandoned": False}
        assert queue.empty()
    finally:
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader


async def test_supervisor_stream_filters_by_topic(live_server: LiveServer, http: httpx.AsyncClient) -> None:
    await live_server.user("sup", roles=("supervisor",))
    cookies = await _login(http, live_server, "sup")
    queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    reader = asyncio.create_task(_events(http, live_server.url + "/live/events?topics=campaigns", cookies, queue))
    try:
        hello = await _next(queue)
        assert hello["scope"] == "all" and "CampaignStatusChanged" in hello["topics"]  # type: ignore[operator]
        async with live_server.app.state.sessionmaker() as session, session.begin():
            await notify(session, [
                CallRinging(at=NOW, attempt_id=42, campaign_id=1),
                CampaignStatusChanged(at=NOW, campaign_id=1, status="paused", previous="running", reason="manual")])
        got = await _next(queue)
        assert got["type"] == "CampaignStatusChanged" and got["status"] == "paused"
        r = await http.get(live_server.url + "/live/events?topics=nonsense", headers=cookies)
        assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["topics"]
        assert "nonsense" in r.json()["detail"]
    finally:
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader


async def test_live_server_can_run_the_engine(start_server: StartServer, http: httpx.AsyncClient) -> None:
    """The fixture the panel tests build on: API and engine (simulated telephony) in one process."""
    server = await start_server(with_engine=True)
    assert server.engine is not None
    await server.user("sup", roles=("supervisor",))
    cookies = await _login(http, server, "sup")
    for _ in range(100):
        snapshot = (await http.get(server.url + "/api/monitoring/live", headers=cookies)).json()
        if snapshot["engine"]["running"]:
            break
        await asyncio.sleep(0.1)
    assert snapshot["engine"]["running"] is True


async def test_open_streams_do_not_hold_up_the_shutdown(live_server: LiveServer, http: httpx.AsyncClient) -> None:
    await live_server.user("sup", roles=("supervisor",))
    cookies = await _login(http, live_server, "sup")
    queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    reader = asyncio.create_task(_events(http, live_server.url + "/live/events", cookies, queue))
    assert (await _next(queue))["type"] == "Hello"
    started = asyncio.get_running_loop().time()
    async with asyncio.timeout(10):
        await live_server.stop()
    assert asyncio.get_running_loop().time() - started < 5
    with contextlib.suppress(httpx.HTTPError):
        await asyncio.wait_for(reader, 5)  # the stream ended with the server


async def test_stream_format_and_heartbeats(live_server: LiveServer, http: httpx.AsyncClient,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from dialer.web import live

    monkeypatch.setattr(live, "HEARTBEAT_S", 0.2)
    await live_server.user("sup", roles=("supervisor",))
    cookies = await _login(http, live_server, "sup")
    lines: list[str] = []
    async with asyncio.timeout(10), http.stream("GET", live_server.url + "/live/events", headers=cookies) as r:
        assert r.headers["cache-control"] == "no-cache" and r.headers["x-accel-buffering"] == "no"
        async for line in r.aiter_lines():
            lines.append(line)
            if ": ping" in lines and "retry: 2000" in lines:  # a ping may come first, while the hub starts listening
                break
    hello = next(json.loads(line[6:]) for line in lines if line.startswith("data: "))
    assert hello["type"] == "Hello"


async def test_a_server_stopped_before_leaves_the_next_ones_streams_open(start_server: StartServer,
                                                                         http: httpx.AsyncClient) -> None:
    first = await start_server()
    await first.user("sup", roles=("supervisor",))
    cookies = await _login(http, first, "sup")
    queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    reader = asyncio.create_task(_events(http, first.url + "/live/events", cookies, queue))
    assert (await _next(queue))["type"] == "Hello"
    async with asyncio.timeout(10):
        await first.stop()
    with contextlib.suppress(httpx.HTTPError):
        await asyncio.wait_for(reader, 5)
    # the shutdown's signal to the streams is over: a server started afterwards streams as usual
    second = await start_server()
    cookies = await _login(http, second, "sup")
    queue = asyncio.Queue()
    reader = asyncio.create_task(_events(http, second.url + "/live/events", cookies, queue))
    try:
        assert (await _next(queue))["type"] == "Hello"
        await asyncio.sleep(1.5)  # longer than sse-starlette's look at the exit flag (every 0.5 s)
        async with second.app.state.sessionmaker() as session, session.begin():
            await notify(session, [CampaignStatusChanged(at=NOW, campaign_id=1, status="paused", previous="running",
                                                         reason="manual")])
        assert (await _next(queue))["type"] == "CampaignStatusChanged"
        assert not reader.done()
    finally:
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
