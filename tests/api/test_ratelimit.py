"""Per-principal rate limits: 429 problem details with Retry-After; one principal's flood does not slow another."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from dialer.api.guard import NEW_CREDENTIALS_PER_ADDRESS
from dialer.api.ratelimit import DEFAULT_BURST, DEFAULT_PER_SECOND, RateLimiter, from_environment
from tests.conftest import client_for, make_user, token_for


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket() -> None:
    clock = Clock()
    limiter = RateLimiter(3, 2.0, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0  # another key has its own bucket
    clock.now += 0.5
    assert limiter.take("a") == 0.0
    clock.now += 100
    assert [limiter.take("a") for _ in range(4)][-1] > 0  # refilled only up to the burst
    assert RateLimiter.retry_after(0.01) == 1 and RateLimiter.retry_after(2.2) == 3
    small = RateLimiter(1, 1.0, clock=clock, max_buckets=2)
    for key in "xyz":
        small.take(key)
    assert not small.known("x") and small.known("z")


def test_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    limiter = from_environment()
    assert limiter is not None and (limiter.burst, limiter.per_second) == (DEFAULT_BURST, DEFAULT_PER_SECOND)
    monkeypatch.setenv("DIALER_API_RATE_BURST", "500")
    monkeypatch.setenv("DIALER_API_RATE_PER_SECOND", "100")
    limiter = from_environment()
    assert limiter is not None and (limiter.burst, limiter.per_second) == (500, 100)
    monkeypatch.setenv("DIALER_API_RATE_BURST", "0")
    assert from_environment() is None


async def test_default_limit_is_on(app: FastAPI) -> None:
    limiter = app.state.rate_limiter
    assert isinstance(limiter, RateLimiter) and limiter.burst == DEFAULT_BURST


async def test_a_polling_flood_gets_429_and_others_go_on(app: FastAPI, admin: httpx.AsyncClient,
                                                         anon: httpx.AsyncClient) -> None:
    clock = Clock()
    app.state.rate_limiter = RateLimiter(5, 1.0, clock=clock)
    statuses = [(await admin.get("/api/monitoring/live")).status_code for _ in range(7)]
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]
    r = await admin.get("/api/monitoring/live")
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"] == "/problems/too-many-requests"
    # another principal (a supervisor's token) still gets through; so does the anonymous health check
    async with await client_for(app, "sup", roles=("supervisor",)) as other:
        assert (await other.get("/api/monitoring/live")).status_code == 200
    assert (await anon.get("/api/health")).status_code == 200
    clock.now += 1
    assert (await admin.get("/api/monitoring/live")).status_code == 200
    # static files are not counted
    assert (await admin.get("/static/does-not-exist.js")).status_code == 404


async def test_anonymous_requests_are_limited_per_address(app: FastAPI, anon: httpx.AsyncClient) -> None:
    app.state.rate_limiter = RateLimiter(3, 0.001, clock=Clock())
    statuses = [(await anon.get("/api/health")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    # made-up credentials get no fresh bucket each: their first use is counted against the address too (in a
    # bucket NEW_CREDENTIALS_PER_ADDRESS times the burst, so an office behind one address is not refused)
    statuses = [(await anon.get("/api/users", headers={"authorization": f"Bearer dlr_made_up_{i}"})).status_code
                for i in range(3 * NEW_CREDENTIALS_PER_ADDRESS + 1)]
    assert set(statuses[:-1]) == {401} and statuses[-1] == 429
    other = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("10.0.0.2", 1234)),
                              base_url="http://test")
    async with other:
        assert (await other.get("/api/health")).status_code == 200


async def test_the_limit_can_be_turned_off(app: FastAPI, admin: httpx.AsyncClient) -> None:
    app.state.rate_limiter = None
    for _ in range(DEFAULT_BURST + 20):
        assert (await admin.get("/api/health")).status_code == 200


async def test_an_office_behind_one_address_is_not_refused(app: FastAPI) -> None:
    """The realtime benchmark's finding: 110 panels of one call centre (one address) connecting at once were
    refused, because credentials seen for the first time shared the address's bucket of 60."""
    assert isinstance(app.state.rate_limiter, RateLimiter)  # the default limiter
    tokens = [await token_for(app, await make_user(app, f"op{i}", roles=("operator",)))
              for i in range(DEFAULT_BURST + 30)]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as office:
        statuses = await asyncio.gather(*(office.get("/api/auth/me", headers={"authorization": f"Bearer {t}"})
                                          for t in tokens))
    assert {r.status_code for r in statuses} == {200}
