"""Background work of the contact domain: run after the request's transaction commits.

Index builds and imports must not start inside the transaction that created their subject (a
``CREATE INDEX CONCURRENTLY`` cannot run in a transaction, and an import must see its committed
job row). :func:`after_commit` queues a coroutine factory on a session; it is started as an
``asyncio`` task when — and only if — that session commits. Tasks are kept referenced until they
finish (the event loop keeps only weak references) and :func:`wait_idle` lets tests and the CLI
wait for them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_KEY = "dialer.contact.after_commit"
_tasks: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
    """Start ``coro`` as a task that is kept alive until done; failures are logged, not raised."""
    task = asyncio.get_running_loop().create_task(coro, name=name)
    _tasks.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Task[Any]) -> None:
    _tasks.discard(task)
    if not task.cancelled() and (err := task.exception()) is not None:
        log.error("background task %s failed", task.get_name(), exc_info=err)


def after_commit(session: AsyncSession, name: str, make: Callable[[], Awaitable[Any]]) -> None:
    """Run ``make()`` as a background task once ``session`` commits; forget it if it rolls back."""
    sync = session.sync_session
    sync.info.setdefault(_KEY, []).append((name, make))
    if not event.contains(sync, "after_commit", _fire):
        event.listen(sync, "after_commit", _fire)
        event.listen(sync, "after_rollback", _forget)


def _fire(sync: Session) -> None:
    for name, make in sync.info.pop(_KEY, []):
        spawn(_await(make), name=name)


def _forget(sync: Session) -> None:
    sync.info.pop(_KEY, None)


async def _await(make: Callable[[], Awaitable[Any]]) -> Any:
    return await make()


def _of_this_loop() -> list[asyncio.Task[Any]]:
    """Tasks of the running loop only: a process may run several loops in turn (CLI commands, tests)."""
    loop = asyncio.get_running_loop()
    return [t for t in _tasks if t.get_loop() is loop]


async def wait_idle(limit_s: float = 60.0) -> None:
    """Wait until no background task of this module is running (tasks may start further tasks)."""
    async with asyncio.timeout(limit_s):
        while mine := _of_this_loop():
            await asyncio.gather(*mine, return_exceptions=True)


def running() -> int:
    return len(_tasks)


async def shutdown(grace_s: float = 5.0) -> None:
    """For the application's shutdown: let tasks finish for ``grace_s``, then cancel the rest.

    A cancelled import marks its job failed ("interrupted") and keeps the batches it committed.
    """
    mine = _of_this_loop()
    if not mine:
        return
    _done, pending = await asyncio.wait(mine, timeout=grace_s)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
