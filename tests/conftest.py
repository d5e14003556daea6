"""Test fixtures: a real embedded PostgreSQL, a migrated template, a fresh database per test.

The server starts once per run; the schema is migrated once into a template database, and every
test gets its own copy (``CREATE DATABASE ... TEMPLATE``), so tests are isolated even when the
code under test commits, builds indexes concurrently or runs background jobs. Set
``DIALER_TEST_DATABASE_URL`` to run against another server instead of the embedded one.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.app import create_app
from dialer.auth.service import digest, hash_password, new_api_token
from dialer.config import Settings
from dialer.db import (
    APP_ROLE,
    asyncpg_dsn,
    make_engine,
    make_sessionmaker,
    start_embedded_server,
    with_database,
    with_user,
)
from dialer.migrate import prepare_database
from dialer.models import ApiToken, Role, User, user_roles

# Per process, so that test runs sharing one server (several terminals) do not drop each other's template.
TEMPLATE = f"dialer_test_template_{os.getpid()}"
_counter = itertools.count()


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("DIALER_TEST_DATABASE_URL")
    if url:
        return url
    # each pytest-xdist worker has a server of its own: two processes starting one cluster would race
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    data_dir = Path(os.environ.get("DIALER_TEST_PG_DIR", "/tmp/dialer-test-pg") + (f"-{worker}" if worker else ""))
    return start_embedded_server(data_dir)


#: Test directories (and files) whose tests share fixed local resources (the SIP driver's RTP port range, rtpengine's
#: ports, the repository's build directory): under pytest-xdist (``--dist loadgroup``) each group runs in one worker.
_SERIAL_GROUPS = {"telephony/sip": "sip", "media": "sip",
                  # one pip build in the repository's build/ at a time (its module fixture would run in each worker)
                  "tools/test_plain_install.py": "plain_install"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        rel = Path(str(item.path)).relative_to(root).as_posix()
        for prefix, group in _SERIAL_GROUPS.items():
            if rel == prefix or rel.startswith(prefix + "/"):
                item.add_marker(pytest.mark.xdist_group(group))
                break


async def _admin_conn(server_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(asyncpg_dsn(with_database(server_url, "postgres")))


@pytest.fixture(scope="session")
async def template_url(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    conn = await _admin_conn(server_url)
    try:
        await _drop_leftovers(conn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
    finally:
        await conn.close()
    url = with_database(server_url, TEMPLATE)
    await prepare_database(url, test_settings(tmp_path_factory.mktemp("data")))
    yield url
    conn = await _admin_conn(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
    finally:
        await conn.close()


async def _drop_leftovers(conn: asyncpg.Connection) -> None:
    """Databases of test runs that were killed before cleaning up (their process is gone)."""
    rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname ~ '^(t|dialer_test_template)_[0-9]+'")
    for (name,) in rows:
        pid = int(name.removeprefix("dialer_test_template_").removeprefix("t_").split("_")[0])
        if not _alive(pid):
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def test_settings(data_dir: Path) -> Settings:
    return Settings(database_url="", data_dir=data_dir, login_max_failures=5)


@pytest.fixture
async def db_url(server_url: str, template_url: str) -> AsyncIterator[str]:
    name = f"t_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    conn = await _admin_conn(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}" STRATEGY FILE_COPY')
    finally:
        await conn.close()
    yield with_database(server_url, name)
    conn = await _admin_conn(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def sessionmaker(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(db_url, pool_size=2)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return test_settings(tmp_path)


@pytest.fixture
async def app(db_url: str, settings: Settings) -> AsyncIterator[FastAPI]:
    # the API works as the application's role, as it does on the embedded server (migration 0012_roles); the
    # fixtures' own sessions (``sessionmaker``) are the owner's
    if not settings.database_app_url:
        settings = settings.model_copy(update={"database_app_url": with_user(db_url, APP_ROLE)})
    application = create_app(settings, database_url=db_url, prepare=False)
    async with application.router.lifespan_context(application):
        yield application


#: API clients in the tests ask for English, as integrations do (Russian is the default: the language tests in
#: tests/campaign/test_problem_language.py and the browser tests see it).
TEST_LANGUAGE = {"Accept-Language": "en"}


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=TEST_LANGUAGE) as client:
        yield client


async def make_user(app: FastAPI, login: str, *, roles: tuple[str, ...] = (), password: str = "secret-pass-1",
                    grants: dict[str, bool] | None = None) -> int:
    from sqlalchemy import insert, select

    from dialer.models import UserPermissionGrant

    async with app.state.sessionmaker() as session, session.begin():
        user = User(login=login, full_name=login.title(), password_hash=hash_password(password))
        session.add(user)
        await session.flush()
        for code in roles:
            role_id = (await session.scalars(select(Role.id).where(Role.code == code))).one()
            await session.execute(insert(user_roles).values(user_id=user.id, role_id=role_id))
        for perm, granted in (grants or {}).items():
            session.add(UserPermissionGrant(user_id=user.id, permission=perm, granted=granted))
        return user.id


async def token_for(app: FastAPI, user_id: int) -> str:
    token = new_api_token()
    async with app.state.sessionmaker() as session, session.begin():
        session.add(ApiToken(user_id=user_id, name="test", token_hash=digest(token), prefix=token[:10]))
    return token


async def client_for(app: FastAPI, login: str, *, roles: tuple[str, ...] = (), **kw: Any) -> httpx.AsyncClient:
    user_id = await make_user(app, login, roles=roles, **kw)
    token = await token_for(app, user_id)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                             headers={"Authorization": f"Bearer {token}", **TEST_LANGUAGE})


@pytest.fixture
async def admin(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client authenticated with an API token of an administrator."""
    async with await client_for(app, "admin", roles=("admin",)) as client:
        yield client


@pytest.fixture
def run() -> Iterator[Any]:
    yield asyncio.run
