"""#11: the application works as a role that cannot erase the audit log (migration 0012_roles, db.runtime_url).

It owns nothing of the log: what the owner could do despite the triggers — ``DISABLE TRIGGER``, ``DETACH PARTITION``
and ``DROP`` — is refused to it, as are UPDATE, DELETE and TRUNCATE, in replica mode too (it has no privilege, so no
trigger needs to stop it); it
still appends and reads, creates next month's partition, and does what the application needs on its own tables
(indexes for new fields, ANALYZE after imports)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from dialer.config import Settings
from dialer.db import APP_ROLE, runtime_url, with_user


async def test_the_application_cannot_erase_the_audit_log(app: FastAPI, admin: httpx.AsyncClient) -> None:
    await admin.post("/api/skills", json={"name": "Аудит"})
    this_month = "audit_log_p" + datetime.now(UTC).strftime("%Y%m")
    async with app.state.engine.connect() as conn:
        who = (await conn.execute(text(
            "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"))).one()
        assert tuple(who) == (APP_ROLE, False)
        before = (await conn.execute(text("SELECT count(*) FROM audit_log"))).scalar_one()
        assert before > 0
        for statement in (
            "UPDATE audit_log SET user_login = 'mallory'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            f"TRUNCATE {this_month}",
            f"DELETE FROM {this_month}",
            "ALTER TABLE audit_log DISABLE TRIGGER ALL",
            f"ALTER TABLE {this_month} DISABLE TRIGGER ALL",
            f"ALTER TABLE audit_log DETACH PARTITION {this_month}",
            f"DROP TABLE {this_month}",
            "DROP TABLE audit_log",
            "ALTER TABLE audit_log OWNER TO dialer_app",
            "ALTER FUNCTION audit_refuse_change() OWNER TO dialer_app",
            "DROP FUNCTION audit_refuse_change() CASCADE",
            "SET ROLE postgres",
        ):
            with pytest.raises(DBAPIError, match=r"permission denied|must be owner|must be superuser"):
                await conn.execute(text(statement))
            await conn.rollback()
        # replica mode (imports skip row triggers with it) switches off triggers, not privileges
        await conn.execute(text("SET session_replication_role = replica"))
        for statement in ("DELETE FROM audit_log", "TRUNCATE audit_log", f"TRUNCATE {this_month}",
                          "UPDATE audit_log SET user_login = 'mallory'"):
            with pytest.raises(DBAPIError, match="permission denied"):
                await conn.execute(text(statement))
            await conn.rollback()
        assert (await conn.execute(text("SELECT count(*) FROM audit_log"))).scalar_one() == before
        # what it must still do: append, read, create the partitions ahead (with the owner's rights)
        await conn.execute(text(
            "INSERT INTO audit_log (user_login, action, object_type) VALUES ('engine', 'test', 'tests')"))
        # a temporary table named like next year's partition does not fool the maintenance
        later = "audit_log_p" + datetime.now(UTC).replace(year=datetime.now(UTC).year + 1).strftime("%Y%m")
        await conn.execute(text(f"CREATE TEMPORARY TABLE {later} (x int)"))
        assert await conn.scalar(text("SELECT audit_ensure_partitions(15)")) >= 1
        await conn.commit()
        assert await conn.scalar(text(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'audit_log'::regclass AND c.relname = :n"), {"n": later}) == 1
        assert (await conn.execute(text("SELECT count(*) FROM audit_log"))).scalar_one() == before + 1


async def test_the_application_still_manages_its_own_tables(app: FastAPI) -> None:
    async with app.state.engine.connect() as conn:
        await conn.execute(text("CREATE INDEX ix_test_role ON contacts ((data ->> 'test'))"))
        await conn.execute(text("DROP INDEX ix_test_role"))
        await conn.execute(text("ANALYZE contacts"))
        owners = set((await conn.execute(text(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class"
            " WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p') AND NOT relispartition"
            " AND relname NOT IN ('audit_log', 'alembic_version')"
        ))).scalars())
        assert owners == {"dialer_data"}  # every table of the application, also those of later migrations
        await conn.rollback()


def test_which_role_connects() -> None:
    url = "postgresql://postgres@127.0.0.1:5432/dialer"
    assert runtime_url(Settings(), url, embedded=True) == "postgresql://dialer_app@127.0.0.1:5432/dialer"
    assert runtime_url(Settings(), url, embedded=False) == url  # a server of one's own: as given…
    app_url = with_user(url, "app")
    assert runtime_url(Settings(database_app_url=app_url), url, embedded=False) == app_url  # …or its app role
