"""Background tasks, kept and accounted for: one registry class for every place that starts work it does not await.

The event loop keeps only weak references to tasks, so a task nobody holds can vanish mid-flight and its failure is
never seen. A :class:`TaskRegistry` holds its tasks until they finish, logs their failures, lets a caller wait for
them (:meth:`TaskRegistry.wait_idle`, for tests and the CLI) and ends them at shutdown with a grace period
(:meth:`TaskRegistry.shutdown`).

:data:`background` is the process's registry for work that requests start: index builds, imports, registry loads.
Such work must not start inside the transaction that created its subject (``CREATE INDEX CONCURRENTLY`` cannot run in
a transaction; an import must see its committed job row): :func:`after_commit` queues it on a session and starts it
when — and only if — that session commits. The engine keeps a registry of its own (its tasks end with its run).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

__all__ = ["TaskRegistry", "after_commit", "background"]

log = logging.getLogger(__name__)


class TaskRegistry:
    """Tasks started by :meth:`spawn`, held until done; ``on_done`` is called after each one ends."""

    def __init__(self, name: str, *, on_done: Callable[[asyncio.Task[Any]], None] | None = None) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_done = on_done

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Start ``coro`` as a task kept alive until done; a failure is logged, never raised."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (err := task.exception()) is not None:
            log.error("%s: background task %s failed", self.name, task.get_name(), exc_info=err)
        if self._on_done is not None:
            self._on_done(task)

    def __len__(self) -> int:
        return len(self._tasks)

    def _of_this_loop(self) -> list[asyncio.Task[Any]]:
        """Tasks of the running loop only: a process may run several loops in turn (CLI commands, tests)."""
        loop = asyncio.get_running_loop()
        return [t for t in self._tasks if t.get_loop() is loop]

    async def wait_idle(self, limit_s: float = 60.0) -> None:
        """Wait until none of this registry's tasks is running (tasks may start further tasks)."""
        async with asyncio.timeout(limit_s):
            while mine := self._of_this_loop():
                await asyncio.gather(*mine, return_exceptions=True)

    def cancel_all(self) -> list[asyncio.Task[Any]]:
        """Cancel every task of the running loop; returns them (await them to see them end)."""
        mine = self._of_this_loop()
        for task in mine:
            task.cancel()
        return mine

    async def shutdown(self, grace_s: float = 5.0) -> None:
        """Let the tasks finish for ``grace_s``, then cancel the rest and wait for them to end."""
        mine = self._of_this_loop()
        if not mine:
            return
        _done, pending = await asyncio.wait(mine, timeout=grace_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


#: The process's registry for work started by requests and start-up (index builds, imports, registry loads).
background = TaskRegistry("background")

_KEY = "dialer.core.tasks.after_commit"


def after_commit(session: AsyncSession, name: str, make: Callable[[], Awaitable[Any]],
                 registry: TaskRegistry = background) -> None:
    """Run ``make()`` as a task of ``registry`` once ``session`` commits; forget it if the session rolls back."""
    sync = session.sync_session
    sync.info.setdefault(_KEY, []).append((name, make, registry))
    if not event.contains(sync, "after_commit", _fire):
        event.listen(sync, "after_commit", _fire)
        event.listen(sync, "after_rollback", _forget)


def _fire(sync: Session) -> None:
    for name, make, registry in sync.info.pop(_KEY, []):
        registry.spawn(_await(make), name=name)


def _forget(sync: Session) -> None:
    sync.info.pop(_KEY, None)


async def _await(make: Callable[[], Awaitable[Any]]) -> Any:
    return await make()
