"""The web application: ``create_app()`` builds it; resources are made in ``lifespan``.

Routers are discovered: every ``dialer.<domain>.endpoints`` module exposing ``routers`` (a list)
or ``router`` is mounted, so a new domain needs no edit here.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import pkgutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import dialer
from dialer.api import guard, openapi, problems
from dialer.config import Settings, get_settings
from dialer.db import make_engine, make_sessionmaker, resolve_url, runtime_url
from dialer.migrate import prepare_database

log = logging.getLogger(__name__)

#: How long the health check waits for the database.
HEALTH_TIMEOUT_S = 3.0
#: A run whose heartbeat is older than this is reported as not beating (the engine's own dead-after is 15 s).
ENGINE_STALE_S = 15.0

DESCRIPTION = """Outbound call-centre platform. Every endpoint needs a session cookie (browser; unsafe methods
also need the `X-CSRF-Token` header) or an API token (`Authorization: Bearer dlr_...`) and declares
the permission it checks. Errors are RFC 9457 problem details (`application/problem+json`) with an
`errors` list naming each field and the reason."""


def discover_routers() -> list[APIRouter]:
    found: list[APIRouter] = []
    for mod in sorted(pkgutil.iter_modules(dialer.__path__), key=lambda m: m.name):
        if not mod.ispkg:
            continue
        try:
            endpoints = importlib.import_module(f"dialer.{mod.name}.endpoints")
        except ModuleNotFoundError as err:
            if err.name != f"dialer.{mod.name}.endpoints":
                raise
            continue
        found.extend(getattr(endpoints, "routers", None) or [endpoints.router])
    return found



async def _maintain(engine: AsyncEngine, settings: Settings, every_s: float = 6 * 3600) -> None:
    """Keep audit partitions created ahead while the process runs for months."""
    while True:
        await asyncio.sleep(every_s)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("SELECT audit_ensure_partitions(:n)"), {"n": settings.audit_months_ahead})
        except Exception:  # maintenance must not stop the server; it is retried next round
            log.exception("audit partition maintenance failed")


async def _seal_reports(maker: async_sessionmaker[AsyncSession], every_s: float = 600.0) -> None:
    """Seal the reports' rollups as hours pass (reports/rollup.py), so that the work never lands on a user's
    request; a report still seals by itself when this has not run."""
    from dialer.reports.rollup import ensure_fresh

    while True:
        await asyncio.sleep(every_s)
        try:
            await ensure_fresh(maker, datetime.now(UTC))
        except Exception:  # retried next round; reports read the raw tables for what is not sealed
            log.exception("sealing the reports' rollups failed")


def create_app(settings: Settings | None = None, *, database_url: str | None = None,
               prepare: bool = True) -> FastAPI:
    settings = settings or get_settings()

    from dialer.contact import lifecycle as contact_lifecycle

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = database_url or resolve_url(settings)
        if prepare:
            await prepare_database(url, settings)
        engine = make_engine(runtime_url(settings, url, embedded=not database_url and not settings.database_url))
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.database_url = url
        maintenance = asyncio.create_task(_maintain(engine, settings))
        sealing = asyncio.create_task(_seal_reports(app.state.sessionmaker))
        # the API process's own workers: the ClickHouse copy, scheduled report delivery, the recordings' spool
        from dialer.media.recordings import run_in_app as convert_recordings
        from dialer.reports.clickhouse.copier import run_in_app as copy_to_clickhouse
        from dialer.reports.delivery import run_worker as deliver_reports

        copying = asyncio.create_task(copy_to_clickhouse(app))
        delivery = asyncio.create_task(deliver_reports(app))
        recordings = asyncio.create_task(convert_recordings(app))
        await contact_lifecycle.on_startup(engine, app.state.sessionmaker, settings)
        try:
            yield
        finally:
            await contact_lifecycle.on_shutdown()
            for task in (maintenance, sealing, recordings, delivery, copying):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await engine.dispose()

    app = FastAPI(title="Dialer", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    problems.install(app)
    guard.install(app)  # outermost: body caps, the 401 without credentials and the rate limit come first
    for router in discover_routers():
        app.include_router(router)
    from dialer import web

    web.install(app)  # the browser UI's static files, page refusals (login redirect, 403 page), live events
    openapi.install(app)  # problem answers, security schemes, sort columns, password rules

    from dialer.api.deps import public

    @app.get("/api/health", tags=["system"], summary="Liveness and database check",
             description="200 when the database answers; 503 with what is wrong (and Retry-After) when it does not. "
                         "`engine` says whether a dialing engine keeps a heartbeat on this database.")
    @public
    async def health() -> Any:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S), app.state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
                beat = await conn.scalar(text(
                    "SELECT extract(epoch FROM now() - max(heartbeat_at)) FROM engine_runs WHERE stopped_at IS NULL"))
        except Exception as err:
            if not isinstance(err, TimeoutError) and not problems.database_unavailable(err):
                raise
            reason = f"no answer within {HEALTH_TIMEOUT_S:.0f} s" if isinstance(err, TimeoutError) else (
                str(err) or type(err).__name__)
            return JSONResponse({"status": "unavailable", "database": f"unreachable: {reason}"}, status_code=503,
                                headers={"Retry-After": str(problems.RETRY_AFTER_OUTAGE_S)})
        engine = "none" if beat is None else ("running" if float(beat) <= ENGINE_STALE_S else
                                              f"no heartbeat for {float(beat):.0f} s")
        return {"status": "ok", "database": "ok", "engine": engine}

    return app

