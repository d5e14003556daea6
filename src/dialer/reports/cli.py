"""``dialer reports rollup [--rebuild]``: seal the reports' hourly rollups now; ``dialer reports clickhouse
[--copy]``: the ClickHouse copy's status (and a copy now).

Reports seal new hours themselves (at most once an hour, on the first request after one has passed); this command
does it ahead, e.g. after an upgrade on a database that already holds a year of calls (the first build reads every
attempt once), or from scratch with ``--rebuild`` after history was loaded into the past. ``register(app)`` is called
by :mod:`dialer.cli`.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any

import typer
from sqlalchemy import text

from dialer.config import Settings

reports_app = typer.Typer(help="Reports: their rollups.", no_args_is_help=True)


async def seal(*, rebuild: bool = False, settings: Settings | None = None,
               database_url: str | None = None) -> dict[str, Any]:
    from dialer.cli_support import open_database
    from dialer.core.clock import SystemClock
    from dialer.reports import rollup

    started = time.perf_counter()
    async with (open_database(settings, database_url=database_url) as (_engine, maker, _settings),
                maker() as session, session.begin()):
        if rebuild:
            await session.execute(text("DELETE FROM report_rollup_marks"))
        marks = await rollup.refresh(session, SystemClock().utcnow())
    return {"attempts_sealed_until": marks.attempts.isoformat(), "states_sealed_until": marks.states.isoformat(),
            "seconds": round(time.perf_counter() - started, 1)}


@reports_app.command("rollup")
def rollup_command(
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Forget what is sealed and build everything again")]
    = False,
) -> None:
    """Seal every hour that can be sealed now (prints how far, as JSON)."""
    print(json.dumps(asyncio.run(seal(rebuild=rebuild))))


async def clickhouse(*, copy: bool = False, settings: Settings | None = None,
                     database_url: str | None = None) -> dict[str, Any]:
    """The ClickHouse copy's status; with ``copy``, after making the triggers match the setting and copying every
    pending change now."""
    from dialer.cli_support import open_database
    from dialer.reports.clickhouse import copier
    from dialer.reports.clickhouse.client import connect

    async with open_database(settings, database_url=database_url) as (_engine, maker, opened):
        if copy:
            ch = connect(data_dir=opened.data_dir)
            await copier.start(maker, ch)
            if ch is not None:
                await copier.copy_all(maker, ch)
        async with maker() as session:
            return await copier.status(session)


@reports_app.command("clickhouse")
def clickhouse_command(
    copy: Annotated[bool, typer.Option("--copy", help="Copy every pending change now (the API process does it "
                                                      "by itself)")] = False,
) -> None:
    """The ClickHouse copy (DIALER_CLICKHOUSE): rows waiting, the oldest one's age, the last error (as JSON)."""
    print(json.dumps(asyncio.run(clickhouse(copy=copy)), default=str))


def register(app: typer.Typer) -> None:
    app.add_typer(reports_app, name="reports")
