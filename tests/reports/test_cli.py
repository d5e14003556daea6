"""``dialer reports rollup``: seals the hours ahead of the first report, and builds again from nothing."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.config import Settings
from dialer.reports.cli import seal
from tests.reports.data import make_day


async def test_rollup_command_seals_and_rebuilds(db_url: str, settings: Settings,
                                                 sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await make_day(sessionmaker)
    first = await seal(settings=settings, database_url=db_url)
    # The live attempt of the 4th (12:00 UTC) holds the attempts' seal; operator states are sealed up to now.
    assert first["attempts_sealed_until"] == "2026-03-04T12:00:00+00:00"
    assert first["states_sealed_until"] > "2026-03-05"
    async with sessionmaker() as session, session.begin():
        hours = await session.scalar(text("SELECT count(*) FROM report_attempt_hours"))
        assert hours and hours > 0
        await session.execute(text("DELETE FROM report_attempt_hours"))  # a rollup lost: --rebuild restores it
    again = await seal(rebuild=True, settings=settings, database_url=db_url)
    assert again["attempts_sealed_until"] == first["attempts_sealed_until"]
    async with sessionmaker() as session:
        assert await session.scalar(text("SELECT count(*) FROM report_attempt_hours")) == hours


async def test_clickhouse_command_says_the_copy_is_off(db_url: str, settings: Settings,
                                                       sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    from dialer.reports.cli import clickhouse

    await make_day(sessionmaker)
    status = await clickhouse(copy=True, settings=settings, database_url=db_url)  # off: the triggers are removed
    assert (status["mode"], status["triggers"], status["pending"], status["last_error"]) == ("off", False, 0, "")
