"""The event bus: bounded in-process subscribers that drop their oldest events, the JSON form within NOTIFY's
limit, and publication to another process over PostgreSQL LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from datetime import UTC, datetime

import asyncpg
import pytest

from dialer.db import asyncpg_dsn
from dialer.engine import events as ev
from dialer.engine.bus import CHANNEL, Bus, Publisher, listen, notify
from dialer.engine.events import EVENT_TYPES, MAX_PAYLOAD_BYTES, decode, encode

AT = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


def _sample(cls: type[ev.Event]) -> ev.Event:
    values: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        if f.name in ("at", "truncated"):
            continue
        hint = str(f.type)
        if f.name == "card":
            values[f.name] = {"fields": {"ФИО": "Иванов Иван"}, "phones": [{"number": "+79161234567"}]}
        elif "bool" in hint:
            values[f.name] = True
        elif "float" in hint:
            values[f.name] = 2.5
        elif "int" in hint:
            values[f.name] = 7
        else:
            values[f.name] = "значение"
    return cls(at=AT, **values)


@pytest.mark.parametrize("cls", list(EVENT_TYPES.values()), ids=list(EVENT_TYPES))
def test_every_event_round_trips(cls: type[ev.Event]) -> None:
    event = _sample(cls)
    text = encode(event)
    assert f'"type":"{cls.__name__}"' in text
    assert decode(text) == event


def test_large_events_are_truncated_to_fit_notify() -> None:
    card = {"fields": {f"Поле {i}": "x" * 100 for i in range(200)}}
    event = ev.PreviewStarted(at=AT, operator_id=1, campaign_id=2, attempt_id=3, contact_id=4, number="+79160000000",
                              preview_seconds=10, card=card)
    text = encode(event)
    assert len(text.encode()) <= MAX_PAYLOAD_BYTES
    back = decode(text)
    assert isinstance(back, ev.PreviewStarted) and back.truncated and back.card == {} and back.attempt_id == 3
    assert decode("not json") is None and decode('{"type": "Nope"}') is None and decode("[1]") is None


async def test_subscribers_are_bounded_and_never_block() -> None:
    bus = Bus()
    slow = bus.subscribe(maxsize=3)
    only_calls = bus.subscribe(types=[ev.CallRinging])
    seen: list[ev.Event] = []
    bus.add_sink(seen.append)
    bus.add_sink(lambda e: 1 / 0)  # a broken sink is logged, not raised
    for i in range(10):
        bus.publish(ev.CallRinging(at=AT, attempt_id=i, campaign_id=1))
    bus.publish(ev.CampaignFinished(at=AT, campaign_id=1))
    assert slow.dropped == 8 and slow.pending() == 3
    got = [await slow.get() for _ in range(3)]
    # the oldest were dropped: the newest three remain, in order
    assert [(type(e).__name__, getattr(e, "attempt_id", None)) for e in got] == [
        ("CallRinging", 8), ("CallRinging", 9), ("CampaignFinished", None)]
    assert only_calls.pending() == 10 and len(seen) == 11 and bus.published == 11
    only_calls.close()
    bus.publish(ev.CallRinging(at=AT, attempt_id=99, campaign_id=1))
    assert only_calls.pending() == 10  # closed: nothing more arrives, the rest can still be read
    drained = [e async for e in only_calls]
    assert len(drained) == 10


async def test_notify_reaches_a_listener_in_another_connection(db_url: str) -> None:
    received: list[ev.Event] = []

    async def consume() -> None:
        async for event in listen(db_url):
            received.append(event)
            if len(received) == 3:
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.3)  # the listener connects
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL,
                               encode(ev.CallAnswered(at=AT, attempt_id=1, campaign_id=2, answered_by="human")))
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, "garbage is skipped")
    finally:
        await conn.close()
    # the engine's way: several events in one statement inside a transaction, sent at commit
    from dialer.db import make_engine

    engine = make_engine(db_url, pool_size=1)
    try:
        async with engine.begin() as db:
            await notify(db, [ev.CallConnected(at=AT, attempt_id=1, campaign_id=2, operator_id=3, waited_s=0.4),
                              ev.AttemptFinished(at=AT, attempt_id=1, campaign_id=2, contact_id=5, operator_id=3,
                                                 category="answered", completion_code_id=9, abandoned=False,
                                                 waited_s=0.4)])
    finally:
        await engine.dispose()
    await asyncio.wait_for(task, 10)
    assert [type(e).__name__ for e in received] == ["CallAnswered", "CallConnected", "AttemptFinished"]


async def test_publisher_forwards_the_bus_and_listener_survives_a_lost_connection(db_url: str) -> None:
    bus = Bus()
    publisher = Publisher(bus, db_url)
    received: list[ev.Event] = []
    stream = listen(db_url, reconnect_s=0.1)

    async def consume() -> None:
        async for event in stream:
            received.append(event)

    consumer = asyncio.create_task(consume())
    runner = asyncio.create_task(publisher.run())
    try:
        await asyncio.sleep(0.3)
        bus.publish(ev.CampaignAutoPaused(at=AT, campaign_id=1, reason="5 errors"))
        for _ in range(50):
            if received:
                break
            await asyncio.sleep(0.05)
        assert isinstance(received[0], ev.CampaignAutoPaused) and received[0].reason == "5 errors"
        # kill the listener's backend: it reconnects and says so
        conn = await asyncpg.connect(asyncpg_dsn(db_url))
        try:
            await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()")
        finally:
            await conn.close()
        for _ in range(100):
            if any(isinstance(e, ev.ListenerReconnected) for e in received):
                break
            await asyncio.sleep(0.05)
        assert any(isinstance(e, ev.ListenerReconnected) for e in received)
        await asyncio.sleep(0.2)
        bus.publish(ev.CampaignFinished(at=AT, campaign_id=1))
        for _ in range(100):
            if isinstance(received[-1], ev.CampaignFinished):
                break
            await asyncio.sleep(0.05)
        assert isinstance(received[-1], ev.CampaignFinished)
        assert publisher.sent == 2 and publisher.dropped == 0
    finally:
        publisher.close()
        await asyncio.wait_for(runner, 5)
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
        await stream.aclose()
