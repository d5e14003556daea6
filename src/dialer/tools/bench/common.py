"""What the benchmarks share: the database they run against, a work folder, names of their own, the output.

- :func:`bench_database`: the product database, migrated first when it is the configured one (as ``dialer migrate``
  does), with an engine and sessions that are closed afterwards;
- :func:`work_dir`: a temporary folder removed afterwards with what it holds (or a folder the caller gives);
- :func:`run_tag`: a tag that keeps one run's rows, files and tables apart from any other run's;
- :func:`peak_rss_mb`, :func:`free_port`;
- :func:`print_result`: what a ``dialer bench`` command prints.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import resource
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the database modules are imported when a benchmark opens one (the pacing bench never does)
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from dialer.config import Settings

__all__ = ["BenchDatabase", "bench_database", "free_port", "peak_rss_mb", "print_result", "run_tag", "work_dir"]


@dataclasses.dataclass(frozen=True)
class BenchDatabase:
    engine: AsyncEngine
    maker: async_sessionmaker[AsyncSession]
    settings: Settings
    #: The database's URL (None when the caller passed an engine of its own).
    url: str | None


@asynccontextmanager
async def bench_database(*, pool_size: int, settings: Settings | None = None, database_url: str | None = None,
                         engine: AsyncEngine | None = None) -> AsyncIterator[BenchDatabase]:
    """The database a benchmark runs against.

    ``database_url`` is used as it is; without one, the configured database (the embedded cluster when nothing is
    configured) is created if needed and migrated first. An ``engine`` passed in is used as it is and left open;
    the one made here (``pool_size`` connections) is disposed of at the end.
    """
    from dialer.config import get_settings
    from dialer.db import make_engine, make_sessionmaker, resolve_url

    settings = settings or get_settings()
    if engine is not None:
        yield BenchDatabase(engine, make_sessionmaker(engine), settings, database_url)
        return
    if database_url is None:
        from dialer.migrate import prepare_database

        database_url = await asyncio.to_thread(resolve_url, settings)
        await prepare_database(database_url, settings)
    owned = make_engine(database_url, pool_size=pool_size)
    try:
        yield BenchDatabase(owned, make_sessionmaker(owned), settings, database_url)
    finally:
        await owned.dispose()


@asynccontextmanager
async def work_dir(prefix: str, given: Path | None = None, *, keep: bool = False) -> AsyncIterator[Path]:
    """``given`` (left as it is), or a new temporary folder named ``<prefix>…``, removed afterwards unless ``keep``."""
    if given is not None:
        yield given
        return
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=prefix))
    try:
        yield folder
    finally:
        if not keep:
            await asyncio.to_thread(shutil.rmtree, folder, True)


def run_tag(sep: str = "-") -> str:
    """``<unix time><sep><0…9999>``: a part of the names of one run's rows, files and tables."""
    return f"{int(time.time())}{sep}{random.randrange(10_000)}"


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (``ru_maxrss`` is in KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def free_port(*, udp: bool = False) -> int:
    """A port of 127.0.0.1 free at the moment (TCP, or UDP with ``udp``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def print_result(result: Any, *, as_json: bool = True, indent: int | None = None) -> None:
    """Print a benchmark's figures: JSON (non-ASCII kept as it is), or Python's repr without ``as_json``."""
    print(json.dumps(result, ensure_ascii=False, indent=indent) if as_json else result)
