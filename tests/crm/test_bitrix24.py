"""Bitrix24 beyond the contract: the call appears on the lead's card once, also when a try died after registering
it; results through faults arrive once each; reads through fast-bitrix24 map the lead's phones and status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dialer.crm.base import ResultWrite
from dialer.crm.bitrix24 import Bitrix24Adapter
from dialer.crm.emulator import Bitrix24Emulator, Faults
from dialer.crm.http import Http
from dialer.crm.worker import DeliveryWorker
from tests.crm import helpers as h
from tests.crm.test_worker import RESULT, _until_done


async def test_the_call_is_registered_once_even_after_a_try_that_died_midway() -> None:
    b24 = Bitrix24Emulator()
    await b24.server.start()
    adapter = Bitrix24Adapter(Http("b24", timeout_s=5), webhook=b24.webhook, user_id=7)
    try:
        b24.add_lead(10, phone="+79161110010")
        write = ResultWrite(key="dialer-5", external_id="10", status="IN_PROCESS", comment="Звонок: answered",
                            call_at=datetime(2026, 12, 7, 10, 0, tzinfo=UTC), talk_s=42.0, attempt_id=5)
        lead = b24.leads["10"]
        await adapter._register_call(write, lead)  # the try that registered the call, then died
        assert b24.updates == 0 and len(b24.activities) == 1
        await adapter.write(write)  # the outbox sends it again
        await adapter.write(write)  # and once more, its answer lost
    finally:
        await adapter.aclose()
        await b24.server.stop()
    assert list(b24.calls().values()) == [1]
    assert b24.updates == 1 and b24.markers() == {"[dialer dialer-5]": 1}
    assert b24.leads["10"]["STATUS_ID"] == "IN_PROCESS"


async def test_results_through_faults_arrive_once_each(sessionmaker: Any) -> None:
    b24 = Bitrix24Emulator(faults=Faults(error_rate=0.05, reset_after_commit_rate=0.05, throttle_rate=0.05,
                                         retry_after_s=3, seed=11))
    await b24.server.start()
    try:
        for i in range(30):
            b24.add_lead(i, phone=f"+7916{i:07d}")
        cid = await h.connector(sessionmaker, kind="bitrix24", settings={}, token=b24.webhook,
                                result_map={"category:answered": "CONVERTED"})
        await h.results(sessionmaker, cid, [(str(i % 30), {**RESULT, "n": i}) for i in range(300)])
        clock = h.clock()
        worker = DeliveryWorker(sessionmaker, clock=clock, timeout_s=2.0, base_backoff_s=1.0)
        try:
            await _until_done(worker, clock, sessionmaker)
        finally:
            await worker.aclose()
    finally:
        await b24.server.stop()
    assert await h.statuses(sessionmaker) == {"delivered": 300}
    assert len(b24.markers()) == 300 and max(b24.markers().values()) == 1
    assert all(lead["STATUS_ID"] == "CONVERTED" for lead in b24.leads.values())


async def test_reads_map_phones_status_and_the_cursor() -> None:
    b24 = Bitrix24Emulator()
    await b24.server.start()
    adapter = Bitrix24Adapter(Http("b24", timeout_s=5), webhook=b24.webhook)
    try:
        b24.add_lead(1, phone="+79160000001", NAME="Анна")
        b24.leads["1"]["PHONE"].append({"ID": "2", "VALUE": "+74950000001", "VALUE_TYPE": "HOME"})
        first = await adapter.read({})
        [record] = first.records
        assert record.phones == ("+79160000001", "+74950000001") and record.status == "NEW"
        assert record.fields["NAME"] == "Анна" and first.cursor["since"] == record.updated
        assert (await adapter.statuses())["JUNK"] == "Некачественный лид"
        b24.add_lead(2, phone="+79160000002")
        second = await adapter.read(first.cursor)
        assert [r.external_id for r in second.records if r.external_id != "1"] == ["2"]
    finally:
        await adapter.aclose()
        await b24.server.stop()
