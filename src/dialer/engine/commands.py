"""Commands for the engine: what an operator or a supervisor asks it to do.

The engine owns every operator's state and every call; nothing else changes them. A command reaches it either
in-process (:meth:`dialer.engine.runner.Engine.submit`: simulated operators, tests) or from the API, which may run
in another process: :func:`enqueue` inserts an ``engine_commands`` row and NOTIFYs :data:`~dialer.engine.bus.
COMMAND_CHANNEL`; the engine applies commands in id order and writes each one's result (``{"ok": true, "state":
...}`` or ``{"ok": false, "error": ...}``) in the same transaction as its effects; :func:`wait_result` lets the
API answer the request with it. Commands queued while no engine runs expire (the engine refuses them at start).

Payloads by kind:

==================  ==============================================================================================
kind                payload
==================  ==============================================================================================
ready               {}
pause               {"reason": "lunch"}
offline             {}
complete            {"completion_code_id": 7, "comment": "", "callback_at": ISO-8601 | null,
                    "callback_personal": false, "never_call": false}
preview_confirm     {}
preview_skip        {}
hangup              {}
force_state         {"state": "ready" | "paused" | "offline", "reason": ""}   (supervisor)
release             {}                                                          (supervisor)
manual_dial         {"number": "+79161234567" | null, "contact_id": 5 | null, "campaign_id": 3}
                    (operator ready or paused, no call: see :mod:`dialer.engine.manual`)
transfer            {"to": "operator" | "pool" | "skill" | "external", "to_operator_id": 4 | null,
                    "pool_id": 2 | null, "skill_id": 3 | null, "min_level": 1, "number": "+7…" | null,
                    "comment": "", "source": "panel" | "supervisor", "requested_by": user id | null}
                    (the operator's connected call: see :mod:`dialer.engine.transfers`)
consult             {"to_operator_id": 4, "comment": "", "source": ..., "requested_by": ...} (attended transfer)
consult_complete    {}  (the customer goes to the consulted operator)
consult_cancel      {}  (the consultation is called off: back to the customer)
==================  ==============================================================================================

An operator busy with a call gets ``ready``/``pause``/``offline`` as a *pending* change applied when his wrap-up
ends; ``complete`` during the conversation is kept and applied at hang-up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine.bus import COMMAND_CHANNEL
from dialer.models import EngineCommand

__all__ = ["Command", "CommandKind", "enqueue", "wait_result"]


class CommandKind(StrEnum):
    ready = "ready"
    pause = "pause"
    offline = "offline"
    complete = "complete"
    preview_confirm = "preview_confirm"
    preview_skip = "preview_skip"
    hangup = "hangup"
    force_state = "force_state"
    release = "release"
    manual_dial = "manual_dial"
    transfer = "transfer"
    consult = "consult"
    consult_complete = "consult_complete"
    consult_cancel = "consult_cancel"


@dataclasses.dataclass(frozen=True, slots=True)
class Command:
    kind: CommandKind
    operator_id: int
    payload: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: The ``engine_commands`` row, for commands that came through the database.
    id: int | None = None


async def enqueue(maker: async_sessionmaker[AsyncSession], kind: CommandKind, operator_id: int,
                  payload: Mapping[str, Any] | None = None, *, created_by: int | None = None) -> int:
    """Queue a command for the engine (committed at once) and wake it up; returns the command id."""
    async with maker() as session, session.begin():
        row = EngineCommand(kind=kind.value, operator_id=operator_id, payload=dict(payload or {}),
                            created_by=created_by)
        session.add(row)
        await session.flush()
        await session.execute(text("SELECT pg_notify(:channel, :payload)"),
                              {"channel": COMMAND_CHANNEL, "payload": str(row.id)})
        return row.id


async def wait_result(maker: async_sessionmaker[AsyncSession], command_id: int, *, timeout_s: float = 3.0,
                      poll_s: float = 0.03) -> dict[str, Any] | None:
    """The command's result once the engine has applied it, or None if it did not within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        async with maker() as session:
            result = await session.scalar(select(EngineCommand.result).where(EngineCommand.id == command_id,
                                                                             EngineCommand.processed_at.is_not(None)))
        if result is not None:
            return dict(result)
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(poll_s)
