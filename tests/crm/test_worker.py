"""The delivery worker against real HTTP servers with injected faults: nothing lost, nothing twice, in order."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from dialer.crm.emulator import Faults, LeadVertexEmulator
from dialer.crm.fake import FakeAdapter, FakeCrm
from dialer.crm.worker import DeliveryWorker, Outcome
from tests.crm import helpers as h

RESULT = {"attempt_id": None, "category": "answered", "completion_code_id": 1, "final": False, "number": "+7900"}


async def _until_done(worker: DeliveryWorker, clock: Any, maker: Any, *, rounds: int = 2000) -> None:
    for _ in range(rounds):
        if not await worker.deliver_due():
            left = await h.statuses(maker)
            if not left.get("pending"):
                return
            clock.advance(60.0)  # past every backoff so far (and Retry-After)
    raise AssertionError(f"not delivered after {rounds} rounds: {await h.statuses(maker)}")


async def test_thousands_of_results_through_faults_arrive_once_each_in_order(sessionmaker: Any) -> None:
    faults = Faults(error_rate=0.05, throttle_rate=0.05, retry_after_s=7, reset_after_commit_rate=0.05,
                    timeout_rate=0.002, timeout_s=3.0, seed=7)
    lv = LeadVertexEmulator(faults=faults)
    await lv.server.start()
    try:
        orders = 200
        for i in range(orders):
            lv.add_order(1000 + i, phone=f"+7900{i:07d}")
        cid = await h.connector(sessionmaker, settings={"base_url": lv.base_url}, token=lv.token,
                                result_map={"category:answered": "3"})
        batch = [(str(1000 + i % orders), {**RESULT, "n": n}) for n, i in enumerate(range(2000))]
        await h.results(sessionmaker, cid, batch)
        clock = h.clock()
        worker = DeliveryWorker(sessionmaker, clock=clock, timeout_s=1.0, concurrency=16, batch=200,
                                base_backoff_s=1.0, max_backoff_s=30.0, lease_s=120.0)
        try:
            await _until_done(worker, clock, sessionmaker)
        finally:
            await worker.aclose()
    finally:
        await lv.server.stop()

    assert await h.statuses(sessionmaker) == {"delivered": 2000}
    written = lv.markers()
    assert len(written) == 2000  # none lost
    assert max(written.values()) == 1  # none twice, though answers were lost after the write was applied
    assert faults.counts["reset"] > 0 and faults.counts["throttle"] > 0 and faults.counts["error"] > 0
    items = await h.items(sessionmaker)
    for order_id, order in lv.orders.items():
        keys = [int(k) for k in re.findall(r"\[dialer dialer-(\d+)\]", order["comment"])]
        assert keys == sorted(keys), f"order {order_id} got its results out of order"
        assert order["status"] == 3
    assert sum(1 for i in items if i.tries > 1) > 0


async def test_a_crash_between_send_and_confirm_sends_again_after_the_lease_without_a_second_write(
        sessionmaker: Any) -> None:
    lv = LeadVertexEmulator()
    await lv.server.start()
    try:
        lv.add_order(5, phone="+79000000005")
        cid = await h.connector(sessionmaker, settings={"base_url": lv.base_url}, token=lv.token)
        await h.results(sessionmaker, cid, [("5", RESULT)])
        clock = h.clock()

        class Crash(Exception):
            pass

        def crash(_: Outcome) -> None:
            raise Crash  # the process dies after the CRM applied the write, before the outbox is told

        doomed = DeliveryWorker(sessionmaker, clock=clock, lease_s=120.0)
        doomed.on_outcome = crash
        try:
            await doomed.deliver_due()
        except Crash:
            pass
        finally:
            await doomed.aclose()
        assert lv.updates == 1 and await h.statuses(sessionmaker) == {"pending": 1}

        worker = DeliveryWorker(sessionmaker, clock=clock, lease_s=120.0)
        try:
            assert await worker.deliver_due() == 0  # still leased by the dead worker
            clock.advance(121.0)
            assert await worker.deliver_due() == 1
        finally:
            await worker.aclose()
    finally:
        await lv.server.stop()
    assert await h.statuses(sessionmaker) == {"delivered": 1}
    assert lv.updates == 1  # read before writing: the order already showed this delivery
    assert lv.markers() == {"[dialer dialer-1]": 1} or sum(lv.markers().values()) == 1


async def test_retry_after_of_a_429_sets_the_next_try(sessionmaker: Any) -> None:
    lv = LeadVertexEmulator(faults=Faults(throttle_rate=1.0, retry_after_s=42))
    await lv.server.start()
    try:
        lv.add_order(1, phone="+79000000001")
        cid = await h.connector(sessionmaker, settings={"base_url": lv.base_url}, token=lv.token)
        await h.results(sessionmaker, cid, [("1", RESULT)])
        clock = h.clock()
        worker = DeliveryWorker(sessionmaker, clock=clock, base_backoff_s=1.0)
        try:
            started = clock.utcnow()
            assert await worker.deliver_due() == 1
            [item] = await h.items(sessionmaker)
            assert item.tries == 1 and item.status == "pending" and "429" in item.last_error
            assert abs((item.next_at - started).total_seconds() - 42) < 1
            lv.server.faults.throttle_rate = 0.0
            clock.advance(41)
            assert await worker.deliver_due() == 0  # the CRM asked for 42 s
            clock.advance(2)
            assert await worker.deliver_due() == 1
        finally:
            await worker.aclose()
    finally:
        await lv.server.stop()
    assert await h.statuses(sessionmaker) == {"delivered": 1}


async def test_an_outage_is_probed_with_one_item_and_the_others_keep_their_tries(sessionmaker: Any) -> None:
    crm = FakeCrm()
    for i in range(30):
        crm.put(str(i), phones=(f"+7900000{i:04d}",))
    cid = await h.connector(sessionmaker, kind="fake", settings={})
    await h.results(sessionmaker, cid, [(str(i), RESULT) for i in range(30)])
    crm.outage = True
    clock = h.clock()
    worker = DeliveryWorker(sessionmaker, clock=clock, adapters={cid: FakeAdapter(crm)}, base_backoff_s=5.0)
    try:
        assert await worker.deliver_due() == 30  # the first round does not know yet
        for _ in range(5):
            clock.advance(600)
            assert await worker.deliver_due() == 1  # one probe while the CRM is down
        crm.outage = False
        clock.advance(600)
        await _until_done(worker, clock, sessionmaker)
    finally:
        await worker.aclose()
    tries = [i.tries for i in await h.items(sessionmaker)]
    assert sorted(tries)[-1] <= 7 and sorted(tries)[-2] <= 2
    assert crm.writes == 30


async def test_dead_letter_after_max_tries_holds_the_record_until_replayed(sessionmaker: Any) -> None:
    from dialer.crm import service

    crm = FakeCrm()
    cid = await h.connector(sessionmaker, kind="fake", settings={}, max_tries=3)
    await h.results(sessionmaker, cid, [("77", {**RESULT, "n": 1}), ("77", {**RESULT, "n": 2}),
                                        ("78", {**RESULT, "n": 3})])
    crm.put("78", phones=("+79000000078",))
    clock = h.clock()
    worker = DeliveryWorker(sessionmaker, clock=clock, adapters={cid: FakeAdapter(crm)}, base_backoff_s=1.0)
    try:
        for _ in range(5):
            await worker.deliver_due()
            clock.advance(60)
        first, second, other = await h.items(sessionmaker)
        assert (first.status, first.tries) == ("dead", 3) and "no record 77" in first.last_error
        assert (second.status, second.tries) == ("pending", 0)  # behind a dead letter: order per record
        assert other.status == "delivered"

        crm.put("77", phones=("+79000000077",))  # someone fixed the record in the CRM
        async with sessionmaker() as session, session.begin():
            assert await service.replay(session, [first.id]) == 1
        await _until_done(worker, clock, sessionmaker)
    finally:
        await worker.aclose()
    assert await h.statuses(sessionmaker) == {"delivered": 3}
    notes = defaultdict(list)
    for key, value in crm.notes.items():
        notes[key].extend(value)
    assert len(notes["77"]) == 2


async def test_a_crm_restart_in_the_middle_loses_and_repeats_nothing(sessionmaker: Any) -> None:
    lv = LeadVertexEmulator()
    await lv.server.start()
    try:
        for i in range(40):
            lv.add_order(i, phone=f"+7900{i:07d}")
        cid = await h.connector(sessionmaker, settings={"base_url": lv.base_url}, token=lv.token)
        await h.results(sessionmaker, cid, [(str(i % 40), {**RESULT, "n": i}) for i in range(200)])
        clock = h.clock()
        worker = DeliveryWorker(sessionmaker, clock=clock, timeout_s=2.0, base_backoff_s=1.0)
        try:
            assert await worker.deliver_due() == 40
            await lv.server.stop()  # the CRM goes down (connections refused) ...
            for _ in range(3):
                clock.advance(60)
                await worker.deliver_due()
            assert (await h.statuses(sessionmaker)).get("delivered") == 40
            await lv.server.start()  # ... and comes back on the same address, its data kept
            await _until_done(worker, clock, sessionmaker)
        finally:
            await worker.aclose()
    finally:
        await lv.server.stop()
    assert await h.statuses(sessionmaker) == {"delivered": 200}
    assert len(lv.markers()) == 200 and max(lv.markers().values()) == 1
    assert max(i.tries for i in await h.items(sessionmaker)) <= 4  # only the probes paid for the outage
