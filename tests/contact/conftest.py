from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from dialer.core.tasks import background as tasks
from tests.conftest import client_for


@pytest.fixture(autouse=True)
async def background_tasks_done(app: FastAPI) -> AsyncIterator[None]:
    """Index builds and imports run after commit: let them finish before the database goes away."""
    yield
    await tasks.wait_idle()


async def make_field(client: httpx.AsyncClient, name: str, type: str = "string", **kw: Any) -> dict[str, Any]:
    r = await client.post("/api/fields", json={"name": name, "type": type, **kw})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def make_list(client: httpx.AsyncClient, name: str, fields: list[dict[str, Any]],
                    required: tuple[str, ...] = ()) -> dict[str, Any]:
    r = await client.post("/api/lists", json={
        "name": name, "fields": [{"field_id": f["id"], "required": f["name"] in required} for f in fields]})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def standard_list(client: httpx.AsyncClient, name: str = "Клиенты") -> tuple[dict[str, Any], dict[str, Any]]:
    """A list with ФИО, Телефон (mobile), Рабочий (work phone), Сумма (decimal), Дата (date); returns (list, fields)."""
    f = {
        "fio": await make_field(client, "ФИО"),
        "phone": await make_field(client, "Телефон", "phone"),
        "work": await make_field(client, "Рабочий телефон", "phone", phone_type="work"),
        "amount": await make_field(client, "Сумма", "decimal"),
        "date": await make_field(client, "Дата", "date"),
    }
    lst = await make_list(client, name, list(f.values()))
    return lst, f


async def wait_import(client: httpx.AsyncClient, job_id: int) -> dict[str, Any]:
    await tasks.wait_idle()
    for _ in range(200):
        job = (await client.get(f"/api/imports/{job_id}")).json()
        if job["status"] in ("finished", "failed"):
            return job  # type: ignore[no-any-return]
        await asyncio.sleep(0.02)
    raise AssertionError(f"import {job_id} did not finish: {job}")


@pytest.fixture
async def admin(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An administrator's API client that asks for English (``Accept-Language: en``), as integrations do: these
    tests read the reasons of problem details in English (tests/campaign/test_problem_language.py reads Russian)."""
    async with await client_for(app, "admin", roles=("admin",)) as client:
        client.headers["Accept-Language"] = "en"
        yield client


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client without credentials that asks for English."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers={"Accept-Language": "en"}) as client:
        yield client
