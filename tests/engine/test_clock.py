"""The clocks: virtual time fires timers in order and drives asyncio tasks without sleeping for real."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dialer.core.clock import Clock, SystemClock, VirtualClock, wait_for


async def test_system_clock_is_a_clock() -> None:
    clock = SystemClock()
    assert isinstance(clock, Clock)
    before = clock.now()
    await clock.sleep(0.01)
    assert clock.now() - before >= 0.009
    now = clock.utcnow()
    assert now.tzinfo is not None and abs(now - datetime.now(UTC)) < timedelta(seconds=5)


def test_timers_fire_in_time_order_then_in_scheduling_order() -> None:
    clock = VirtualClock()
    assert isinstance(clock, Clock)
    fired: list[tuple[float, str]] = []
    for when, label in [(5.0, "b"), (1.0, "a"), (5.0, "c"), (9.0, "late")]:
        clock.call_at(when, lambda label=label: fired.append((clock.now(), label)))
    assert clock.advance(6) == 3
    assert fired == [(1.0, "a"), (5.0, "b"), (5.0, "c")]
    assert clock.now() == 6.0
    assert clock.next_deadline() == 9.0


def test_timers_scheduled_by_callbacks_fire_within_the_same_advance() -> None:
    clock = VirtualClock(start=100.0)
    ticks: list[float] = []

    def tick() -> None:
        ticks.append(clock.now())
        clock.call_later(1.0, tick)

    clock.call_later(1.0, tick)
    clock.advance_to(105.5)
    assert ticks == [101.0, 102.0, 103.0, 104.0, 105.0]
    assert clock.now() == 105.5


def test_cancelled_timers_do_not_fire_and_time_never_goes_back() -> None:
    clock = VirtualClock()
    fired: list[int] = []
    timer = clock.call_later(2.0, fired.append, 1)
    clock.call_later(3.0, fired.append, 2)
    timer.cancel()
    assert clock.next_deadline() == 3.0
    clock.advance(10)
    assert fired == [2]
    with pytest.raises(ValueError):
        clock.advance(-1)
    clock.call_at(1.0, fired.append, 3)  # in the past: due at once
    clock.advance(0)
    assert fired == [2, 3]


def test_utcnow_follows_virtual_time() -> None:
    epoch = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    clock = VirtualClock(start=50.0, epoch=epoch)
    clock.advance(3600 * 8)
    assert clock.utcnow() == epoch + timedelta(hours=8)
    with pytest.raises(ValueError):
        VirtualClock(epoch=datetime(2025, 1, 1))


async def _worker(clock: Clock, period: float, log: list[tuple[str, float]], name: str, rounds: int) -> None:
    """Engine-like code: knows nothing about which clock it runs on."""
    for _ in range(rounds):
        await clock.sleep(period)
        log.append((name, clock.now()))


async def test_sleepers_wake_in_time_order_and_run_between_timers() -> None:
    clock = VirtualClock()
    log: list[tuple[str, float]] = []
    tasks = [asyncio.create_task(_worker(clock, 1.5, log, "slow", 4)),
             asyncio.create_task(_worker(clock, 1.0, log, "fast", 6))]
    await clock.run_for(6)
    assert all(t.done() for t in tasks)
    times = [t for _, t in log]
    assert times == sorted(times)
    assert [t for n, t in log if n == "fast"] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert [t for n, t in log if n == "slow"] == [1.5, 3.0, 4.5, 6.0]


async def test_hours_of_virtual_time_take_well_under_a_second() -> None:
    clock = VirtualClock()
    log: list[tuple[str, float]] = []
    task = asyncio.create_task(_worker(clock, 1.0, log, "tick", 3600))
    started = time.perf_counter()
    await clock.run_for(3600)
    assert task.done() and len(log) == 3600 and clock.now() == 3600.0
    assert time.perf_counter() - started < 5


async def test_a_cancelled_sleeper_stays_asleep() -> None:
    clock = VirtualClock()
    woke: list[float] = []

    async def sleeper() -> None:
        await clock.sleep(10)
        woke.append(clock.now())

    task = asyncio.create_task(sleeper())
    await clock.run_for(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await clock.run_for(20)
    assert woke == [] and clock.next_deadline() is None


async def test_the_same_code_runs_on_the_system_clock() -> None:
    log: list[tuple[str, float]] = []
    await _worker(SystemClock(), 0.001, log, "real", 3)
    assert len(log) == 3


async def test_the_system_clock_schedules_callbacks_on_the_running_loop() -> None:
    clock = SystemClock()
    fired: list[str] = []
    done = asyncio.Event()
    clock.call_later(0.01, lambda label: (fired.append(label), done.set()), "due")
    dropped = clock.call_later(0.01, fired.append, "cancelled")
    dropped.cancel()
    clock.call_later(-1, fired.append, "at once")  # a delay in the past runs on the next iteration
    await asyncio.wait_for(done.wait(), 5)
    await asyncio.sleep(0.02)
    assert fired == ["at once", "due"]


@pytest.mark.parametrize("make", [VirtualClock, SystemClock])
async def test_wait_for_on_a_clock(make: type[VirtualClock] | type[SystemClock]) -> None:
    clock = make()

    async def slow(seconds: float) -> str:
        await clock.sleep(seconds)
        return "done"

    async def drive(coro: Any) -> Any:  # virtual time moves only when told to
        task = asyncio.ensure_future(coro)
        if isinstance(clock, VirtualClock):
            await clock.run_for(1)
        return await task

    assert await drive(wait_for(clock, slow(0.01), 0.5)) == "done"
    with pytest.raises(TimeoutError):
        await drive(wait_for(clock, slow(0.5), 0.01))
    assert await wait_for(clock, slow(0), None) == "done"
    # shielded: the awaitable goes on after the timeout
    inner = asyncio.ensure_future(slow(0.02))
    with pytest.raises(TimeoutError):
        await drive(wait_for(clock, asyncio.shield(inner), 0.01))
    await drive(asyncio.sleep(0.05))
    assert inner.done() and inner.result() == "done"


async def test_wait_for_passes_its_own_cancellation_on() -> None:
    clock = VirtualClock()
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await clock.sleep(1000)

    waiter = asyncio.ensure_future(wait_for(clock, forever(), 10))
    await started.wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await clock.run_for(20)
    assert clock.next_deadline() is None  # neither the sleeper nor the timeout is left behind
