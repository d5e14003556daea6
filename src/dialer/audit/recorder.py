"""Writes audit entries for every ORM change, from a SQLAlchemy ``after_flush`` hook.

Services never have to remember to audit: any insert, update or delete of a model through the
ORM is recorded in the same transaction, so a change and its audit entry commit or roll back
together. Changes made with bulk SQL (imports, bulk deletes, association tables) are recorded by
their service with :func:`record`.

Who made the change comes from ``session.info["actor"]`` (an :class:`Actor`), set by the request
dependency; without it the change is attributed to the system.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import re
from typing import Any

from sqlalchemy import event, insert, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.orm.base import NO_VALUE

from dialer.models import AuditEntry, Base, LoginFailure, UserSession
from dialer.models.enums import AuditAction

#: Models whose rows are bookkeeping, not configuration changes.
SKIPPED: set[type[Base]] = {AuditEntry, UserSession, LoginFailure}
#: Columns never written to the log in clear.
SECRET_COLUMNS = {"password_hash", "token_hash", "password", "secret"}
#: ... nor any field whose name says it holds a secret (a column added later is masked by default).
SECRET_NAME = re.compile(r"password|passwd|secret|token|api_?key|private_?key|credential", re.IGNORECASE)
#: Columns that change on every touch and carry no information of their own.
NOISE_COLUMNS = {"updated_at", "last_used_at", "last_login_at"}


@dataclasses.dataclass(frozen=True)
class Actor:
    user_id: int | None
    login: str
    roles: tuple[str, ...] = ()
    client: str = ""


SYSTEM = Actor(None, "system", ("system",))


def jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


def is_secret(key: str) -> bool:
    return key in SECRET_COLUMNS or bool(SECRET_NAME.search(key))


def _value(key: str, value: Any) -> Any:
    return "***" if is_secret(key) and value is not None else jsonable(value)


def _masked(changes: dict[str, Any]) -> dict[str, Any]:
    """Changes given by a service, with the old and new values of secret fields masked."""
    out: dict[str, Any] = {}
    for key, change in changes.items():
        if is_secret(str(key)) and isinstance(change, dict):
            out[str(key)] = {k: ("***" if v is not None else None) for k, v in change.items()}
        elif is_secret(str(key)):
            out[str(key)] = "***" if change is not None else None
        else:
            out[str(key)] = jsonable(change)
    return out


def object_type(obj: Any) -> str:
    return str(getattr(obj, "__tablename__", type(obj).__name__))


def _object_id(obj: Any) -> str | None:
    key = inspect(obj).mapper.primary_key_from_instance(obj)
    if not key or all(v is None for v in key):
        return None
    return ",".join(str(v) for v in key)


def _entry(actor: Actor, action: str, otype: str, oid: str | None, changes: dict[str, Any],
           event_label: str = "") -> dict[str, Any]:
    return {
        "user_id": actor.user_id,
        "user_login": actor.login,
        "user_roles": ",".join(actor.roles),
        "action": action,
        "event": event_label,
        "object_type": otype,
        "object_id": oid,
        "changes": changes,
        "client": actor.client,
    }


def actor_of(session: Session) -> Actor:
    actor = session.info.get("actor")
    return actor if isinstance(actor, Actor) else SYSTEM


def _collect(session: Session) -> list[dict[str, Any]]:
    actor = actor_of(session)
    rows: list[dict[str, Any]] = []
    for obj in session.new:
        if type(obj) in SKIPPED or not isinstance(obj, Base):
            continue
        state = inspect(obj)
        changes = {
            attr.key: {"old": None, "new": _value(attr.key, attr.value)}
            for attr in state.attrs
            if attr.key in state.mapper.columns and attr.key not in NOISE_COLUMNS and attr.value is not None
        }
        rows.append(_entry(actor, AuditAction.created, object_type(obj), _object_id(obj), changes))
    for obj in session.dirty:
        if type(obj) in SKIPPED or not isinstance(obj, Base) or not session.is_modified(obj):
            continue
        state = inspect(obj)
        changes = {}
        for attr in state.attrs:
            if attr.key not in state.mapper.columns or attr.key in NOISE_COLUMNS:
                continue
            hist = attr.history
            if not hist.has_changes():
                continue
            old = hist.deleted[0] if hist.deleted else None
            new = hist.added[0] if hist.added else None
            if old == new:
                continue
            changes[attr.key] = {"old": _value(attr.key, old), "new": _value(attr.key, new)}
        if changes:
            rows.append(_entry(actor, AuditAction.updated, object_type(obj), _object_id(obj), changes))
    for obj in session.deleted:
        if type(obj) in SKIPPED or not isinstance(obj, Base):
            continue
        state = inspect(obj)
        changes = {
            attr.key: {"old": _value(attr.key, attr.loaded_value), "new": None}
            for attr in state.attrs
            if attr.key in state.mapper.columns and attr.key not in NOISE_COLUMNS
            and attr.loaded_value is not None and attr.loaded_value is not NO_VALUE
        }
        rows.append(_entry(actor, AuditAction.deleted, object_type(obj), _object_id(obj), changes))
    return rows


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, flush_context: UOWTransaction) -> None:
    rows = _collect(session)
    if rows:
        session.connection().execute(insert(AuditEntry), rows)


def record(session: Session, action: AuditAction | str, otype: str, oid: Any = None, *,
           changes: dict[str, Any] | None = None, event_label: str = "") -> None:
    """Record a change made without the ORM (bulk SQL, association tables, custom actions)."""
    row = _entry(actor_of(session), str(action), otype, None if oid is None else str(oid),
                 _masked(changes or {}), event_label)
    session.connection().execute(insert(AuditEntry), [row])


async def log(session: AsyncSession, action: AuditAction | str, otype: str, oid: Any = None, *,
              changes: dict[str, Any] | None = None, event_label: str = "") -> None:
    """Async form of :func:`record` for services."""
    row = _entry(actor_of(session.sync_session), str(action), otype, None if oid is None else str(oid),
                 _masked(changes or {}), event_label)
    await session.execute(insert(AuditEntry), [row])
