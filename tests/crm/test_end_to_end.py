"""The real engine dials a campaign whose contacts came from LeadVertex; every result reaches the CRM once, and a
subscribed receiver gets every event signed (003 §10.6) — from the outbox rows the engine committed with its
results, through the delivery worker, over real HTTP."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import func, select

from dialer.crm.emulator import Faults, LeadVertexEmulator, WebhookReceiver
from dialer.crm.outbox import WEBHOOK_EVENTS
from dialer.crm.worker import DeliveryWorker
from dialer.models import Attempt, CompletionCode, Contact, CrmRecord, OutboxItem
from dialer.models.enums import AttemptState
from tests.crm import helpers as h
from tests.engine.engine_world import Harness, engine_world, scenario


async def test_results_of_the_engine_reach_the_crm_and_the_webhook_once(sessionmaker: Any) -> None:
    world = await engine_world(sessionmaker, operators=3, contacts=25, max_attempts_per_contact=2)
    await world.update(CompletionCode, world.default_code_id, is_final=True)  # an answered call ends the contact
    lv = LeadVertexEmulator(faults=Faults(error_rate=0.1, reset_after_commit_rate=0.1, seed=3))
    receiver = WebhookReceiver(client_id="000003C405E6525C64C184258C44EC99", key="00000716ABDA6D4DFF10F82BCBBFC532",
                               faults=Faults(error_rate=0.1, seed=4))
    await lv.server.start()
    await receiver.server.start()
    try:
        async with sessionmaker() as session:
            contact_ids = list((await session.scalars(select(Contact.id).where(
                Contact.list_id == world.list_id).order_by(Contact.id))).all())
        cid = await h.connector(sessionmaker, settings={"base_url": lv.base_url}, token=lv.token,
                                result_map={"category:answered": "3", "exhausted": "4"})
        async with sessionmaker() as session, session.begin():
            for n, contact_id in enumerate(contact_ids):
                lv.add_order(500 + n, phone=f"+7916000{n:04d}")
                session.add(CrmRecord(connector_id=cid, external_id=str(500 + n), contact_id=contact_id,
                                      crm_status="1", phone="", crm_updated=""))
        await h.subscription(sessionmaker, url=f"{receiver.server.url}/hook", client_id=receiver.client_id,
                             secret=receiver.key, events=list(WEBHOOK_EVENTS))
        await world.start()
        harness = Harness(sessionmaker, scenario(human=0.5, machine=0.0, busy=0.2))
        async with harness.running():
            await harness.advance(3600)
        receiver.now = harness.clock.utcnow
        worker = DeliveryWorker(sessionmaker, clock=harness.clock, base_backoff_s=1.0, timeout_s=5.0)
        try:
            for _ in range(300):
                if not await worker.deliver_due():
                    if not (await h.statuses(sessionmaker)).get("pending"):
                        break
                    harness.clock.advance(30)
        finally:
            await worker.aclose()
    finally:
        await lv.server.stop()
        await receiver.server.stop()

    async with sessionmaker() as session:
        finished = int(await session.scalar(select(func.count()).select_from(Attempt).where(
            Attempt.state == AttemptState.done, Attempt.contact_id.is_not(None))) or 0)
        crm_items = int(await session.scalar(select(func.count()).select_from(OutboxItem).where(
            OutboxItem.connector_id == cid)) or 0)
    assert finished >= 25
    assert crm_items == finished  # one CRM write per result, committed with it
    assert await h.statuses(sessionmaker) == {"delivered": len(await h.items(sessionmaker))}
    markers = lv.markers()
    assert len(markers) == finished and max(markers.values()) == 1  # none lost, none twice
    assert any(o["status"] in (3, 4) for o in lv.orders.values())

    assert receiver.refused == 0  # every signature and timestamp checked out
    events = Counter(body["event"] for body in receiver.events.values())
    assert events["call.result"] == finished
    for name in ("call.queued", "call.ringing", "call.answered", "call.connected", "call.ended", "operator.state",
                 "campaign.state"):
        assert events[name] > 0, name
    assert events["contact.finished"] > 0
