"""Login throttling cannot be turned against an account's owner.

Failures of login L from address X throttle only (L, X); one address guessing many logins is still stopped; a
distributed attack on one login (very many failures from many addresses) closes it to addresses it has never
logged in from, while its owner still logs in from his usual address.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from sqlalchemy import insert, text

from dialer.models import LoginFailure
from tests.conftest import make_user

RIGHT = "secret-pass-1"


@asynccontextmanager
async def _from(app: FastAPI, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser at ``address``."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def _login(client: httpx.AsyncClient, login: str, password: str) -> int:
    return (await client.post("/api/auth/login", json={"login": login, "password": password})).status_code


async def test_an_attacker_elsewhere_cannot_lock_the_owner_out(app: FastAPI) -> None:
    await make_user(app, "boss", roles=("admin",))
    async with _from(app, "203.0.113.66") as attacker, _from(app, "198.51.100.7") as owner:
        for _ in range(5):
            assert await _login(attacker, "boss", "wrong-password") == 401
        # the attacker's address is locked for this login, even with the right password
        r = await attacker.post("/api/auth/login", json={"login": "boss", "password": RIGHT})
        assert r.status_code == 429 and r.headers["retry-after"] == str(app.state.settings.login_window_seconds)
        # the owner, elsewhere, is not
        assert await _login(owner, "BOSS", RIGHT) == 200
        # and his success does not give the attacker fresh tries
        assert await _login(attacker, "boss", "wrong-password") == 429
        # his own typos count against him only
        for _ in range(5):
            assert await _login(owner, "boss", "wrong-password") == 401
        assert await _login(owner, "boss", RIGHT) == 429


async def test_one_address_guessing_many_logins_is_still_stopped(app: FastAPI) -> None:
    await make_user(app, "op", roles=("operator",))
    async with _from(app, "203.0.113.66") as sprayer, _from(app, "198.51.100.7") as elsewhere:
        for i in range(20):  # 4 × 5 failures, no login more than once
            assert await _login(sprayer, f"guess-{i}", "wrong-password") == 401
        assert await _login(sprayer, "op", RIGHT) == 429
        assert await _login(elsewhere, "op", RIGHT) == 200


async def test_a_distributed_attack_closes_the_login_to_new_addresses_only(app: FastAPI) -> None:
    await make_user(app, "boss", roles=("admin",))
    async with _from(app, "198.51.100.7") as owner:
        assert await _login(owner, "boss", RIGHT) == 200  # he has logged in from here before
    # 100 addresses, 5 failures each... here 20 × 5 = 100 failures, noted as the login endpoint notes them
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(insert(LoginFailure), [{"login": "boss", "client": f"192.0.2.{i // 5}"}
                                                     for i in range(99)])
    async with _from(app, "192.0.2.200") as attacker:
        assert await _login(attacker, "boss", "wrong-password") == 401  # the hundredth failure
        assert await _login(attacker, "boss", RIGHT) == 429
    async with _from(app, "192.0.2.201") as stranger:
        r = await stranger.post("/api/auth/login", json={"login": "boss", "password": RIGHT})
        assert r.status_code == 429 and "address" in r.json()["detail"], r.text
    # the owner, from where he logged in before, still gets in
    async with _from(app, "198.51.100.7") as owner:
        assert await _login(owner, "boss", RIGHT) == 200
    # other logins are not affected
    await make_user(app, "op", roles=("operator",))
    async with _from(app, "192.0.2.202") as someone:
        assert await _login(someone, "op", RIGHT) == 200
    # the attack over (its failures out of the window), new addresses may log in again
    async with app.state.engine.begin() as conn:
        await conn.execute(text("UPDATE login_failures SET at = at - interval '901 seconds'"))
    async with _from(app, "192.0.2.201") as stranger:
        assert await _login(stranger, "boss", RIGHT) == 200
