"""Overlapping callers share one computation; later callers get a fresh one; a failure reaches every caller."""

from __future__ import annotations

import asyncio

import pytest

from dialer.core.singleflight import SingleFlight


async def test_overlapping_callers_share_one_computation() -> None:
    flight: SingleFlight[int] = SingleFlight()
    started = 0
    gate = asyncio.Event()

    async def compute() -> int:
        nonlocal started
        started += 1
        await gate.wait()
        return started

    callers = [asyncio.create_task(flight.run(compute)) for _ in range(50)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*callers) == [1] * 50
    assert (flight.computed, flight.shared) == (1, 49)
    assert await flight.run(compute) == 2  # after it finished: a fresh answer, never an old one


async def test_a_caller_giving_up_does_not_cancel_the_others() -> None:
    flight: SingleFlight[str] = SingleFlight()
    gate = asyncio.Event()

    async def compute() -> str:
        await gate.wait()
        return "floor"

    first = asyncio.create_task(flight.run(compute))
    second = asyncio.create_task(flight.run(compute))
    await asyncio.sleep(0)
    first.cancel()
    gate.set()
    assert await second == "floor"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_failure_reaches_every_caller() -> None:
    flight: SingleFlight[int] = SingleFlight()

    async def compute() -> int:
        await asyncio.sleep(0)
        raise RuntimeError("database gone")

    results = await asyncio.gather(*(flight.run(compute) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
