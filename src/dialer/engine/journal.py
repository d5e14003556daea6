"""The engine's write-behind journal: every stage, period and result reaches the database in short batches.

The engine decides in memory and must never wait for the database in the middle of a call's life (an answered
customer is connected in milliseconds), yet everything must be recorded. So the runner appends what happened to
this journal and a single writer task commits it in order, in short ``async with session.begin()`` units: whatever
accumulated while the previous unit ran goes into the next one, so batches grow with the load and the database
work per attempt shrinks.

Inside a unit the order is fixed: stage changes of live attempts (one ``UPDATE ... FROM unnest``), operator
periods, finished attempts (one UPDATE, then :func:`dialer.engine.outcome.apply_result` per attempt — if the unit
fails it is retried with a savepoint around each part and each attempt, so one failure cannot lose the others: a
row someone deleted meanwhile costs only the record that names it), deleted
previews, jobs (status changes, heartbeats), processed commands, and last the events, NOTIFYed in the same
transaction so other processes hear of a change exactly when it is committed.

What is *not* journalled: the insertion of an attempt, which must be committed before its call is placed (it is
what makes a double dial impossible and what crash recovery finds), and reads.

Crash semantics: if the process dies, the unflushed tail is lost — only changes of attempts that were not done
yet, which recovery closes as errors anyway — and nothing already committed is touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.audit.recorder import Actor
from dialer.crm.outbox import capture_events
from dialer.engine import repository as repo
from dialer.engine.bus import notify
from dialer.engine.events import Event
from dialer.engine.outcome import AttemptResult, apply_result, apply_results

__all__ = ["ENGINE_ACTOR", "Finish", "Journal"]

log = logging.getLogger(__name__)

#: Who the audit log names for changes the engine makes through services (status changes).
ENGINE_ACTOR = Actor(None, "engine", ("system",))

Job = Callable[[AsyncSession], Awaitable[None]]


@dataclasses.dataclass(slots=True)
class Finish:
    """A finished attempt: its final columns and what the strategy must be told."""

    columns: dict[str, Any]
    result: AttemptResult
    plan: Any
    now_utc: datetime


@dataclasses.dataclass
class _Batch:
    attempts: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)
    finishes: dict[int, Finish] = dataclasses.field(default_factory=dict)
    periods: list[repo.OperatorPeriod] = dataclasses.field(default_factory=list)
    deletes: list[int] = dataclasses.field(default_factory=list)
    jobs: list[tuple[str, Job]] = dataclasses.field(default_factory=list)
    after: list[Callable[[], None]] = dataclasses.field(default_factory=list)
    commands: list[tuple[int, Mapping[str, Any]]] = dataclasses.field(default_factory=list)
    events: list[Event] = dataclasses.field(default_factory=list)

    def size(self) -> int:
        return (len(self.attempts) + len(self.finishes) + len(self.periods) + len(self.deletes) + len(self.jobs)
                + len(self.commands) + len(self.events) + len(self.after))


#: A unit holds at most this many finished attempts: what is appended after them goes into the next unit. A burst
#: of results (a wave of no-answer timeouts) is then committed — and its events NOTIFYed — in short units one after
#: another, in order, instead of one long transaction that holds every event back until the last result is applied.
UNIT_FINISHES = 16


class Journal:
    """Ordered write-behind of the engine's records; run :meth:`run` as a task, :meth:`close` to finish."""

    def __init__(self, maker: async_sessionmaker[AsyncSession], *, retry_s: float = 0.5,
                 unit_finishes: int = UNIT_FINISHES, close_grace_s: float = 5.0) -> None:
        self.maker = maker
        self.retry_s = retry_s
        #: After :meth:`close`, how long an unreachable database is waited for before what is left is given up (a
        #: stop must not hang on a dead server; the next start's recovery closes the attempts concerned).
        self.close_grace_s = close_grace_s
        self._closed_at = 0.0
        self.unit_finishes = unit_finishes
        self._batch = _Batch()
        #: Full units waiting to be written, oldest first (``_batch`` is the open one after them).
        self._sealed: deque[_Batch] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self.flushes = 0
        self.flush_seconds = 0.0
        self.failures = 0
        self.finished_attempts = 0
        #: Called with the ids of attempts whose result is committed.
        self.on_finished: Callable[[set[int]], None] | None = None

    # --- appending (synchronous, from the engine's loop) -----------------------------------------------------
    def _touch(self) -> None:
        self._idle.clear()
        self._wake.set()

    def attempt(self, attempt_id: int, **columns: Any) -> None:
        """Stage changes of a live attempt (merged with earlier ones not yet written)."""
        if attempt_id in self._batch.finishes:
            self._batch.finishes[attempt_id].columns.update(columns)
        else:
            self._batch.attempts.setdefault(attempt_id, {}).update(columns)
        self._touch()

    def finish(self, attempt_id: int, columns: Mapping[str, Any], result: AttemptResult, plan: Any,
               now_utc: datetime) -> None:
        """The attempt is done: final columns, then the strategy's rules for its contact (``apply_result``)."""
        merged = self._batch.attempts.pop(attempt_id, {})
        merged.update(columns)
        self._batch.finishes[attempt_id] = Finish(merged, result, plan, now_utc)
        if len(self._batch.finishes) >= self.unit_finishes:
            self._sealed.append(self._batch)
            self._batch = _Batch()
        self._touch()

    def period(self, period: repo.OperatorPeriod) -> None:
        self._batch.periods.append(period)
        self._touch()

    def delete_queued(self, attempt_id: int) -> None:
        self._batch.attempts.pop(attempt_id, None)
        self._batch.deletes.append(attempt_id)
        self._touch()

    def job(self, name: str, job: Job, *, after: Callable[[], None] | None = None) -> None:
        """Run ``job(session)`` in a savepoint of the next unit (a status change, a heartbeat); ``after()`` once
        that unit is committed."""
        self._batch.jobs.append((name, job))
        if after is not None:
            self._batch.after.append(after)
        self._touch()

    def command_done(self, command_id: int, result: Mapping[str, Any]) -> None:
        self._batch.commands.append((command_id, result))
        self._touch()

    def event(self, event: Event) -> None:
        self._batch.events.append(event)
        self._touch()

    def pending(self) -> int:
        return self._batch.size() + sum(b.size() for b in self._sealed)

    # --- writing --------------------------------------------------------------------------------------------
    async def drained(self) -> None:
        """Wait until everything appended so far is committed (or given up)."""
        while True:
            await self._idle.wait()
            if not self.pending():
                return
            self._touch()

    def close(self) -> None:
        """Write what is pending and end :meth:`run`."""
        if not self._closing:
            self._closing = True
            self._closed_at = time.monotonic()
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._sealed:
                await self._write(self._sealed.popleft())
            if self._batch.size():
                batch, self._batch = self._batch, _Batch()
                await self._write(batch)
            if self._sealed:
                self._wake.set()  # more units were sealed while this one was written
            elif not self._batch.size():
                self._idle.set()
                if self._closing:
                    return

    async def _write(self, batch: _Batch) -> None:
        """Commit a batch; while the database is unreachable keep trying (the engine meanwhile waits for the
        journal once too much is pending); a batch the database refuses five times is given up, logged."""
        started = time.perf_counter()
        attempt = 0
        while True:
            try:
                # first optimistically without a savepoint per attempt; after a failure, carefully with them
                finished = await self._unit(batch, careful=attempt > 0)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                self.failures += 1
                attempt += 1
                unreachable = isinstance(err, OSError | DBAPIError) and (
                    isinstance(err, OSError) or getattr(err, "connection_invalidated", False)
                    or isinstance(err, OperationalError | InterfaceError))
                log.exception("journal unit failed (try %d%s)", attempt, ", database unreachable" if unreachable
                              else "")
                if attempt >= 5 and not unreachable:
                    log.error("journal gave up a batch of %d records", batch.size())
                    return
                delay = min(10.0, self.retry_s * 2 ** min(attempt, 5))
                if self._closing:
                    left = self._closed_at + self.close_grace_s - time.monotonic()
                    if left <= 0:
                        log.error("stopping with the database unreachable: %d records not written (the next start "
                                  "recovers the calls concerned)", batch.size() + self.pending())
                        self._batch, self._sealed = _Batch(), deque()
                        return
                    delay = min(delay, left)
                await asyncio.sleep(delay)
                continue
            self.flushes += 1
            self.flush_seconds += time.perf_counter() - started
            self.finished_attempts += len(finished)
            if finished and self.on_finished is not None:
                self.on_finished(finished)
            for after in batch.after:
                try:
                    after()
                except Exception:
                    log.exception("after-commit callback failed")
            return

    async def _unit(self, batch: _Batch, *, careful: bool) -> set[int]:
        async with self.maker() as session, session.begin():
            session.info["actor"] = ENGINE_ACTOR

            async def part(name: str, write: Callable[[], Awaitable[Any]], default: Any = None) -> Any:
                """One part of the unit; when careful, in a savepoint of its own: a part the database refuses
                (a row deleted meanwhile by someone else) is logged and skipped, never the whole batch."""
                if not careful:
                    return await write()
                try:
                    async with session.begin_nested():
                        return await write()
                except Exception:
                    log.exception("journal: %s refused; the rest of the unit is written", name)
                    return default

            await part("stage changes", lambda: repo.update_attempts(session, batch.attempts))
            await part("operator periods", lambda: repo.record_periods(session, batch.periods,
                                                                       check_references=careful))
            finished = await part("finished attempts", lambda: repo.finish_attempts(
                session, {i: f.columns for i, f in batch.finishes.items()}), set())
            if not careful:
                # optimistically the whole batch in a few statements; after a failure, one by one in savepoints
                await apply_results(session, [(f.plan, f.result, f.now_utc) for i, f in batch.finishes.items()
                                              if i in finished])
            else:
                for attempt_id in finished:
                    f = batch.finishes[attempt_id]
                    try:
                        async with session.begin_nested():
                            await apply_result(session, f.plan, f.result, f.now_utc)
                    except Exception:
                        # the attempt stays done with its category and code; only the contact's follow-up is lost
                        log.exception("apply_result failed for attempt %d", attempt_id)
            await part("deleted previews", lambda: repo.delete_queued(session, batch.deletes))
            for name, job in batch.jobs:
                try:
                    async with session.begin_nested():
                        await job(session)
                except Exception:
                    log.exception("engine job %s failed", name)
            await part("processed commands", lambda: repo.mark_commands(session, batch.commands))
            # webhooks of these events are committed with them (results' deliveries: outcome.apply_result)
            await part("outgoing webhooks", lambda: capture_events(session, batch.events))
            await notify(session, batch.events)
            return set(finished)


@contextlib.asynccontextmanager
async def running(journal: Journal) -> Any:
    """Run the journal for the duration of a block and write everything before leaving it."""
    task = asyncio.create_task(journal.run(), name="engine journal")
    try:
        yield journal
    finally:
        journal.close()
        await task
