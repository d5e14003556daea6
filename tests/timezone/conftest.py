"""Clients of the timezone tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import client_for


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
