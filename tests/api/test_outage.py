"""A database that is down: 503 problem details with Retry-After (not a plain-text 500), and a health check that
says what is wrong (the outage finding: every route answered 500 while the embedded server was dead)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from fastapi import FastAPI

from dialer.db import make_engine, make_sessionmaker


@contextmanager
def _database_down(app: FastAPI) -> Iterator[None]:
    """The application's pools pointed at a server that refuses connections, as after a crash of PostgreSQL."""
    engine, maker = app.state.engine, app.state.sessionmaker
    dead = make_engine("postgresql://nobody@127.0.0.1:1/dialer", pool_size=1)
    app.state.engine, app.state.sessionmaker = dead, make_sessionmaker(dead)
    try:
        yield
    finally:
        app.state.engine, app.state.sessionmaker = engine, maker


async def test_health_says_what_is_wrong(app: FastAPI, anon: httpx.AsyncClient) -> None:
    ok = await anon.get("/api/health")
    assert ok.status_code == 200 and ok.json()["database"] == "ok" and ok.json()["engine"] == "none"
    with _database_down(app):
        down = await anon.get("/api/health")
    assert down.status_code == 503
    assert down.json()["status"] == "unavailable" and down.json()["database"].startswith("unreachable")
    assert down.headers["retry-after"]


async def test_routes_answer_503_problem_details_while_the_database_is_down(app: FastAPI,
                                                                           admin: httpx.AsyncClient) -> None:
    assert (await admin.get("/api/campaigns")).status_code == 200
    with _database_down(app):
        for path in ("/api/campaigns", "/api/lists", "/api/monitoring/live"):
            r = await admin.get(path)
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert [(e["field"], e["reason"]) for e in r.json()["errors"]] == [("database", "unreachable")]
            assert int(r.headers["retry-after"]) > 0
    assert (await admin.get("/api/campaigns")).status_code == 200  # back as soon as it is
