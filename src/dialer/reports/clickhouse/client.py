"""One small interface over the two ways to reach ClickHouse: ``chdb`` in the process (embedded, data under
``<data_dir>/clickhouse``) and a server or cluster over HTTP (``clickhouse-connect``, ``DIALER_CLICKHOUSE_URL``).

Both run the very same SQL text (the reports' queries inline their literals through :func:`lit`, so no driver's
parameter syntax is involved) and insert the same ``JSONEachRow`` data. Calls block, so the async wrappers run them
in a thread, one at a time per client.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from pydantic_settings import BaseSettings, SettingsConfigDict

T = TypeVar("T")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ClickhouseError(Exception):
    """ClickHouse could not be reached or refused a statement (whatever the driver raised is the cause): the copier
    records it on the copy's status and retries, the reports answer from PostgreSQL."""


class ClickhouseSettings(BaseSettings):
    """``DIALER_CLICKHOUSE``: off (default), embedded (chdb) or server (``DIALER_CLICKHOUSE_URL``, e.g.
    ``http://user:password@ch1:8123``); ``DIALER_CLICKHOUSE_DATABASE`` holds the copy's tables."""

    model_config = SettingsConfigDict(env_prefix="DIALER_", extra="ignore")
    clickhouse: Literal["off", "embedded", "server"] = "off"
    clickhouse_url: str = ""
    clickhouse_database: str = "dialer"
    #: Outbox rows copied per round, and the pause between rounds once the outbox is empty.
    clickhouse_batch: int = 5000
    clickhouse_every_s: float = 2.0
    #: Reports read PostgreSQL while the oldest change waiting to be copied is older than this.
    clickhouse_max_lag_s: float = 300.0

    @property
    def enabled(self) -> bool:
        return self.clickhouse != "off"


class Driver(Protocol):
    def command(self, sql: str) -> None: ...

    def rows(self, sql: str) -> list[tuple[Any, ...]]: ...

    def insert(self, table: str, data: bytes) -> None: ...


def _convert(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind.startswith("Nullable("):
        kind = kind[9:-1]
    if kind.startswith("LowCardinality("):
        kind = kind[15:-1]
    if kind.startswith(("Int", "UInt")):
        return int(value)
    if kind.startswith("Float"):
        return float(value)
    if kind.startswith(("Date32", "Date")) and not kind.startswith("DateTime"):
        return date.fromisoformat(value)
    if kind.startswith("DateTime"):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value


class Embedded:
    """chdb: ClickHouse inside the process; one session per process and data directory."""

    _sessions: dict[str, Any] = {}
    _guard = threading.Lock()

    def __init__(self, path: Path) -> None:
        from chdb import session as chs

        path.mkdir(parents=True, exist_ok=True)
        key = str(path.resolve())
        self.path = key
        with self._guard:
            if key not in self._sessions:
                self._sessions[key] = chs.Session(key)
            self._session = self._sessions[key]
        self._lock = threading.Lock()

    def close(self) -> None:
        """End the session (and let another directory's start)."""
        with self._guard:
            for key, found in list(self._sessions.items()):
                if found is self._session:
                    del self._sessions[key]
            self._session.close()

    def command(self, sql: str) -> None:
        with self._lock:
            self._session.query(sql)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self._lock:
            result = self._session.query(sql, "JSONCompact")
        text = result.data()
        if not text:
            return []
        body = json.loads(text)
        kinds = [m["type"] for m in body["meta"]]
        return [tuple(_convert(k, v) for k, v in zip(kinds, row, strict=True)) for row in body["data"]]

    def insert(self, table: str, data: bytes) -> None:
        with self._lock:
            self._session.query(f"INSERT INTO {table} FORMAT JSONEachRow\n" + data.decode())


class Server:
    """A ClickHouse server or cluster over HTTP(S) (or any DSN clickhouse-connect takes, ``chdb:///path`` too)."""

    def __init__(self, url: str) -> None:
        import clickhouse_connect

        self._client = clickhouse_connect.get_client(dsn=url)
        self._lock = threading.Lock()

    def command(self, sql: str) -> None:
        with self._lock:
            self._client.command(sql)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self._lock:
            result = self._client.query(sql)
        out = []
        for row in result.result_rows:
            out.append(tuple(v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None
                             else v.astimezone(UTC) if isinstance(v, datetime) else v for v in row))
        return out

    def insert(self, table: str, data: bytes) -> None:
        with self._lock:
            self._client.raw_insert(table, insert_block=data, fmt="JSONEachRow")


class Clickhouse:
    """A driver and the database of the copy's tables, with async wrappers."""

    def __init__(self, driver: Driver, database: str) -> None:
        if not database.replace("_", "").isalnum():
            raise ValueError(f"DIALER_CLICKHOUSE_DATABASE {database!r}: letters, digits and _ only")
        self.driver = driver
        self.database = database

    def table(self, name: str) -> str:
        return f"{self.database}.{name}"

    async def command(self, sql: str) -> None:
        await _call(self.driver.command, sql)

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return await _call(self.driver.rows, sql)

    async def insert_lines(self, name: str, lines: list[str]) -> None:
        """Rows already written as JSONEachRow lines."""
        if lines:
            await _call(self.driver.insert, self.table(name), "\n".join(lines).encode())


async def _call(method: Callable[..., T], *args: Any) -> T:
    try:
        return await asyncio.to_thread(method, *args)
    except Exception as error:
        raise ClickhouseError(f"{type(error).__name__}: {error}") from error


_shared: dict[tuple[str, str, str], Clickhouse] = {}


def connect(settings: ClickhouseSettings | None = None, data_dir: Path | None = None) -> Clickhouse | None:
    """The configured ClickHouse (None when the copy is off); one per process and configuration. Raises
    :class:`ClickhouseError` when the server cannot be reached or chdb cannot start (nothing is kept then: the next
    call tries again)."""
    settings = settings or ClickhouseSettings()
    if not settings.enabled:
        return None
    if settings.clickhouse == "server":
        if not settings.clickhouse_url:
            raise ClickhouseError("DIALER_CLICKHOUSE=server needs DIALER_CLICKHOUSE_URL (http://user:password@host:8123)")
        where = settings.clickhouse_url
    else:
        if data_dir is None:
            from dialer.config import get_settings

            data_dir = get_settings().data_dir
        where = str(Path(data_dir) / "clickhouse")
    key = (settings.clickhouse, where, settings.clickhouse_database)
    if key not in _shared:
        try:
            driver: Driver = Server(where) if settings.clickhouse == "server" else Embedded(Path(where))
            _shared[key] = Clickhouse(driver, settings.clickhouse_database)
        except Exception as error:  # unreachable server, bad URL or database name, chdb missing or unusable
            raise ClickhouseError(f"{type(error).__name__}: {error}") from error
    return _shared[key]


# --- Literals: the same SQL text for every driver ---------------------------------------------------------------

def micros(moment: datetime) -> int:
    """Microseconds since the epoch (what the queries compare and subtract)."""
    delta = moment.astimezone(UTC) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def lit(value: Any) -> str:
    """A value as a ClickHouse literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return f"fromUnixTimestamp64Micro({micros(value)}, 'UTC')"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, Sequence):
        return "[" + ", ".join(lit(v) for v in value) + "]"
    raise TypeError(f"no ClickHouse literal for {type(value).__name__}")
