"""The OpenAPI schema is served, and the copy in docs/ is current."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from dialer.cli import openapi_text

DOC = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"


async def test_openapi_is_served_and_documented(app: FastAPI, anon: httpx.AsyncClient) -> None:
    r = await anon.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert "/api/auth/login" in paths and "/api/audit" in paths
    current = openapi_text(app)
    assert DOC.exists(), "run: .venv/bin/dialer openapi --output docs/openapi.json"
    assert DOC.read_text() == current, "docs/openapi.json is stale: run dialer openapi --output docs/openapi.json"
