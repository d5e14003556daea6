"""A result recorded afterwards (a conversation an engine crash cut off: ``workplace.service.record_result``) reaches
the CRM like any other: its CRM write and its webhook are committed with it, and the recovery's placeholder result
went out before it — in order, so the CRM ends with the recorded status."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from dialer.crm.emulator import LeadVertexEmulator
from dialer.crm.outbox import forget_config
from dialer.crm.worker import DeliveryWorker
from dialer.models import CompletionCode, CrmRecord, OutboxItem
from dialer.models.enums import AttemptState
from dialer.workplace.schemas import CompleteBody
from dialer.workplace.service import record_result
from tests.crm import helpers as h
from tests.engine.engine_world import NOW, Harness, dead_run, engine_world, scenario


async def test_a_result_recorded_afterwards_is_written_to_the_crm_after_the_placeholder(sessionmaker: Any) -> None:
    world = await engine_world(sessionmaker, operators=1)
    contact = await world.contact()
    number = (await world.phones(contact))[0].e164
    lv = LeadVertexEmulator()
    await lv.server.start()
    try:
        lv.add_order(77, phone=number)
        async with sessionmaker() as session:
            never_call = await session.scalar(select(CompletionCode.id).where(
                CompletionCode.system_key == "never_call"))
            restarted = await session.scalar(select(CompletionCode.id).where(
                CompletionCode.system_key == "engine_restarted"))
        cid = await h.connector(sessionmaker, settings={"base_url": lv.base_url}, token=lv.token,
                                result_map={f"code:{never_call}": "5", f"code:{restarted}": "2"})
        async with sessionmaker() as session, session.begin():
            session.add(CrmRecord(connector_id=cid, external_id="77", contact_id=contact, crm_status="1", phone="",
                                  crm_updated=""))
        forget_config()
        dead_id = await dead_run(sessionmaker)
        attempt_id = await world.live_attempt(contact, number, AttemptState.connected, engine_run_id=dead_id,
                                              connected_at=NOW, operator_id=world.operator_ids[0])
        async with Harness(sessionmaker, scenario(), sim_operators=False).running():
            pass  # recovery closes it with the placeholder code: its result goes to the outbox
        async with sessionmaker() as session, session.begin():
            await record_result(session, attempt_id, CompleteBody(completion_code_id=never_call,
                                                                   comment="просил не звонить"), operator_id=None)
        async with sessionmaker() as session:
            items = list((await session.scalars(select(OutboxItem).order_by(OutboxItem.id))).all())
        assert [(i.payload["completion_code_id"], i.record_key) for i in items] == [
            (restarted, "record:77"), (never_call, "record:77")]
        clock = h.clock()
        worker = DeliveryWorker(sessionmaker, clock=clock)
        try:
            while await worker.deliver_due():
                pass
        finally:
            await worker.aclose()
    finally:
        await lv.server.stop()
    assert await h.statuses(sessionmaker) == {"delivered": 2}
    order = lv.orders["77"]
    assert order["status"] == 5  # the recorded result, written after the placeholder's
    assert "просил не звонить" in order["comment"] and order["comment"].index("dialer-1") < \
        order["comment"].index("dialer-2")
