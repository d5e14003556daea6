"""``dialer demo``: with nothing configured it sets up a campaign, serves the API and dials in real time; a person
logs in as operator1 and goes ready; a second start reuses everything."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.config import Settings
from dialer.engine.runner import EngineConfig
from dialer.models import Attempt, Campaign, Contact, ContactPhone, Operator, User
from dialer.models.enums import CampaignStatus
from dialer.tools.demo import DEMO_CAMPAIGN, run_demo


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait(client: httpx.AsyncClient, url: str, seconds: float = 20) -> None:
    for _ in range(int(seconds / 0.1)):
        try:
            if (await client.get(url)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


@pytest.mark.slow
async def test_demo_runs_and_restarts(db_url: str, sessionmaker: async_sessionmaker[AsyncSession],
                                      tmp_path: Path) -> None:
    settings = Settings(database_url=db_url, data_dir=tmp_path)
    port = _free_port()
    said: list[str] = []
    stop = asyncio.Event()
    demo = asyncio.create_task(run_demo(settings, host="127.0.0.1", port=port, contacts=300, operators=3,
                                        stop=stop, say=said.append, config=EngineConfig(drain_s=1)))
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            await _wait(client, "/api/health")
            credentials = json.loads((tmp_path / "demo-credentials.json").read_text())
            assert set(credentials) == {"admin", "supervisor1", "operator1"}
            assert f"operator1 / {credentials['operator1']}" in said[0]
            me = (await client.post("/api/auth/login", json={"login": "operator1",
                                                              "password": credentials["operator1"]})).json()
            headers = {"X-CSRF-Token": me["csrf_token"]}
            r = await client.post("/api/workplace/ready", headers=headers)
            assert r.status_code == 200 and r.json()["state"] == "ready", r.text
            for _ in range(100):  # the simulated operators and the engine dial in real time
                async with sessionmaker() as session:
                    if await session.scalar(select(func.count()).select_from(Attempt)):
                        break
                await asyncio.sleep(0.1)
            state = (await client.get("/api/workplace/state")).json()
            assert state["engine_running"] and state["name"] == "Оператор (вы)"
            await client.post("/api/auth/login", json={"login": "supervisor1",
                                                       "password": credentials["supervisor1"]})
            live = (await client.get("/api/monitoring/live")).json()
            assert [c["name"] for c in live["campaigns"]] == [DEMO_CAMPAIGN]
            assert live["operator_counts"]["offline"] < 4
    finally:
        stop.set()
        await asyncio.wait_for(demo, 30)
    async with sessionmaker() as session:
        campaign = (await session.scalars(select(Campaign).where(Campaign.name == DEMO_CAMPAIGN))).one()
        assert campaign.status is CampaignStatus.running
        assert await session.scalar(select(func.count()).select_from(Attempt)) > 0
        contacts = await session.scalar(select(func.count()).select_from(Contact))
        assert contacts == 300
        zones = await session.scalar(select(func.count(func.distinct(ContactPhone.timezones))))
        assert zones is not None and zones >= 6  # several Russian time zones
    # the second start reuses the data and prints the same credentials
    said.clear()
    stop = asyncio.Event()
    demo = asyncio.create_task(run_demo(settings, host="127.0.0.1", port=port, contacts=300, operators=3,
                                        stop=stop, say=said.append, config=EngineConfig(drain_s=1)))
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            await _wait(client, "/api/health")
    finally:
        stop.set()
        await asyncio.wait_for(demo, 30)
    assert "данные прошлого запуска" in said[0] and credentials["operator1"] in said[0]
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Contact)) == 300
        assert await session.scalar(select(func.count()).select_from(Campaign)) == 1
        assert await session.scalar(select(func.count()).select_from(User)) == 3
        assert await session.scalar(select(func.count()).select_from(Operator)) == 4
