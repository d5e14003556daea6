"""The request guard (dialer.api.guard): body caps, 401 before any body is read, complete ``Allow`` answers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from dialer.api.guard import MAX_BODY
from tests.conftest import make_user

MB = 1024 * 1024


class Body:
    """A streamed request body that records how much of it the server consumed."""

    def __init__(self, total: int, chunk: int = MB) -> None:
        self.total = total
        self.chunk = chunk
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            self.sent += self.chunk
            yield b"[" + b" " * (self.chunk - 2) + b"]"


def _is_problem(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == status


async def test_anonymous_big_bodies_are_refused_without_being_read(anon: httpx.AsyncClient) -> None:
    # routers that declared no body limit: contacts, DNC entries, selections, the workplace, the supervisor
    for url in ("/api/lists/1/contacts", "/api/dnc-lists/1/entries", "/api/campaigns/1/selections",
                "/api/workplace/pause", "/api/supervisor/operators/1/state"):
        body = Body(200 * MB)
        r = await anon.post(url, content=body, headers={"content-type": "application/json"})
        _is_problem(r, 401)
        assert r.headers["www-authenticate"] == "Bearer"
        assert body.sent <= MB, (url, body.sent)  # at most the first chunk httpx hands over by itself
        r = await anon.post(url, content=b"x" * 100, headers={"content-length": str(200 * MB),
                                                                 "content-type": "application/json"})
        _is_problem(r, 401)


async def test_authenticated_oversized_bodies_get_413(admin: httpx.AsyncClient) -> None:
    body = Body(200 * MB)
    r = await admin.post("/api/dnc-lists/1/entries", content=body, headers={"content-type": "application/json"})
    _is_problem(r, 413)
    assert r.json()["errors"][0]["field"] == "body"
    assert body.sent <= MAX_BODY + 2 * MB, body.sent  # streaming stopped just past the cap
    # a declared length above the cap is refused before reading anything
    body = Body(200 * MB)
    r = await admin.post("/api/lists/1/contacts", content=body,
                         headers={"content-type": "application/json", "content-length": str(200 * MB)})
    _is_problem(r, 413)
    assert body.sent <= MB
    # not JSON, still capped
    r = await admin.post("/api/workplace/pause", content=Body(50 * MB), headers={"content-type": "text/plain"})
    _is_problem(r, 413)


async def test_made_up_credentials_are_refused_before_a_big_body_is_read(anon: httpx.AsyncClient) -> None:
    """#11: made-up credentials used to make the server read (and parse) up to the 2 MiB cap before the route
    refused them; now they are looked up first, and the body is never read."""
    for headers in ({"cookie": "dialer_session=made-up"}, {"authorization": "Bearer dlr_made_up"}):
        body = Body(200 * MB)
        r = await anon.post("/api/lists/1/contacts", content=body,
                            headers={"content-type": "application/json", **headers})
        _is_problem(r, 401)
        assert body.sent <= MB, body.sent  # at most the first chunk httpx hands over by itself
        body = Body(MAX_BODY - MB)
        r = await anon.post("/api/lists/1/contacts", content=body,
                            headers={"content-type": "application/json", "content-length": str(MAX_BODY - MB),
                                     **headers})
        _is_problem(r, 401)
        assert body.sent <= MB, body.sent
    r = await anon.post("/api/lists/1/contacts", json={"data": {}},
                        headers={"authorization": "Bearer dlr_made_up"})
    _is_problem(r, 401)


async def test_uploads_may_be_larger_than_json(admin: httpx.AsyncClient) -> None:
    lst = (await admin.post("/api/lists", json={"name": "Big"})).json()
    big = b"phone\n" + b"79161234567\n" * (3 * MB // 12)
    assert len(big) > MAX_BODY
    r = await admin.post(f"/api/lists/{lst['id']}/imports/preview", files={"file": ("a.csv", big)})
    assert r.status_code != 413, r.text
    r = await admin.post("/api/dnc-lists/1/entries", json={"number": "7" * (3 * MB)})
    _is_problem(r, 413)


async def test_the_upload_cap_follows_the_upload_size_setting(app: FastAPI, admin: httpx.AsyncClient) -> None:
    app.state.settings = app.state.settings.model_copy(update={"upload_max_unpacked_mb": 1})
    sent = 0

    async def form() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\nphone\n'
        while sent < 50 * MB:
            sent += MB
            yield b"79161234567\n" * (MB // 12)

    r = await admin.post("/api/lists/1/imports/preview", content=form(),
                         headers={"content-type": "multipart/form-data; boundary=x"})
    _is_problem(r, 413)
    assert sent <= 4 * MB


async def test_normal_requests_are_unaffected(anon: httpx.AsyncClient, admin: httpx.AsyncClient,
                                              app: FastAPI) -> None:
    # pages still redirect anonymous visitors to the login page rather than answering 401
    r = await anon.get("/admin/users")
    assert r.status_code == 303
    await make_user(app, "alice", roles=("admin",), password="secret-pass-1")
    r = await anon.post("/api/auth/login", json={"login": "alice", "password": "secret-pass-1"})
    assert r.status_code == 200, r.text
    assert (await anon.get("/api/health")).status_code == 200
    r = await admin.post("/api/holidays", json={"day": "2030-01-01", "name": "Новый год"})
    assert r.status_code == 201, r.text
    assert (await admin.get("/api/holidays")).json()["total"] >= 1


async def test_options_lists_every_method_of_a_path(anon: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    for client in (anon, admin):
        r = await client.options("/api/holidays/1")
        assert r.status_code == 204
        assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD", "PATCH", "DELETE", "OPTIONS"}
        r = await client.options("/api/holidays")
        assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}
    r = await admin.options("/api/users/1")
    assert {"GET", "PATCH", "DELETE"} <= set(r.headers["allow"].split(", "))
    # a method the path does not have: 405 with the same complete list
    r = await admin.put("/api/holidays/1", json={})
    assert r.status_code == 405
    assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD", "PATCH", "DELETE", "OPTIONS"}


async def test_the_guards_refusals_speak_the_requests_language(app: FastAPI) -> None:
    import re

    cyrillic = re.compile("[а-яё]", re.IGNORECASE)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        r = await client.post("/api/lists/1/contacts", json={"data": {}})
        _is_problem(r, 401)
        assert cyrillic.search(r.json()["detail"]), r.text  # Russian by default
        r = await client.post("/api/lists/1/contacts", json={"data": {}}, headers={"Accept-Language": "en"})
        _is_problem(r, 401)
        assert not cyrillic.search(r.json()["detail"]), r.text
