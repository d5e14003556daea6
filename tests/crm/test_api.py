"""The integration REST API: connectors, webhook subscriptions and keys, dead letters and replay, the request log,
and the integration API for external systems with its IP allow-list — against real HTTP servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from dialer.crm.emulator import LeadVertexEmulator, WebhookReceiver
from dialer.crm.signing import sign, verify
from dialer.crm.worker import DeliveryWorker
from dialer.models import AuditEntry, Contact, ListField
from tests.conftest import client_for
from tests.crm import helpers as h
from tests.engine.selection_data import make_world


async def test_connector_keeps_its_token_secret_and_checks_its_maps(admin: httpx.AsyncClient, app: FastAPI) -> None:
    lv = LeadVertexEmulator()
    await lv.server.start()
    try:
        r = await admin.post("/api/crm-connectors", json={
            "name": "LeadVertex", "kind": "leadvertex", "token": lv.token, "settings": {"base_url": lv.base_url},
            "status_map": {"1": {"action": "call", "name": "Новый"}, "3": {"action": "final"}},
            "result_map": {"category:answered": "3", "exhausted": "4"}})
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["has_token"] is True and "token" not in created
        assert created["status_map"]["3"] == {"action": "final", "name": ""}

        r = await admin.get(f"/api/crm-connectors/{created['id']}/statuses")
        assert r.status_code == 200 and r.json()["3"] == "Принят"

        bad = await admin.post("/api/crm-connectors", json={
            "name": "Bad", "kind": "leadvertex", "status_map": {"1": {"action": "ring"}},
            "result_map": {"whatever": "1"}})
        assert bad.status_code == 422
        fields = {e["field"] for e in bad.json()["errors"]}
        assert any("status_map" in f for f in fields) and any("result_map" in f for f in fields)

        await lv.server.stop()
        down = await admin.get(f"/api/crm-connectors/{created['id']}/statuses")
        assert down.status_code == 502 and "crm:LeadVertex" in down.json()["detail"]
    finally:
        await lv.server.stop()
    async with app.state.sessionmaker() as session:
        entries = list((await session.scalars(select(AuditEntry).where(
            AuditEntry.object_type == "crm_connectors"))).all())
    assert entries and all(lv.token not in str(e.changes) for e in entries)


async def test_webhook_keys_test_event_dead_letters_and_replay(admin: httpx.AsyncClient, app: FastAPI) -> None:
    r = await admin.post("/api/webhooks", json={"name": "Банк", "url": "http://127.0.0.1:9/none",
                                                "events": ["call.result", "operator.state"], "max_tries": 2})
    assert r.status_code == 201, r.text
    sub = r.json()
    assert len(sub["client_id"]) == 32 and len(sub["secret"]) == 32
    r = await admin.post("/api/webhooks", json={"name": "x", "url": "http://h/x", "events": ["call.exploded"]})
    assert r.status_code == 422

    new = (await admin.post(f"/api/webhooks/{sub['id']}/regenerate-key")).json()["secret"]
    assert new != sub["secret"] and (await admin.get(f"/api/webhooks/{sub['id']}")).json()["secret"] == new

    # nobody listens yet: the test event dies after two tries
    item = (await admin.post(f"/api/webhooks/{sub['id']}/test")).json()["outbox_id"]
    clock = h.clock()
    worker = DeliveryWorker(app.state.sessionmaker, clock=clock, base_backoff_s=1.0, timeout_s=2.0)
    try:
        await worker.deliver_due()
        clock.advance(5)
        await worker.deliver_due()
        dead = (await admin.get("/api/integration/outbox", params={"status": "dead"})).json()
        assert [i["id"] for i in dead["items"]] == [item] and dead["items"][0]["tries"] == 2
        backlog = (await admin.get("/api/integration/backlog")).json()
        assert backlog["dead"] == 1 and backlog["targets"][0]["name"] == "Банк"
        logged = (await admin.get("/api/integration/requests")).json()
        assert logged and logged[0]["target"] == "webhook:Банк" and logged[0]["error"]

        receiver = WebhookReceiver(client_id=sub["client_id"], key=new, now=clock.utcnow)
        await receiver.server.start()
        try:
            r = await admin.patch(f"/api/webhooks/{sub['id']}", json={"url": f"{receiver.server.url}/hook"})
            assert r.status_code == 200
            assert (await admin.post("/api/integration/outbox/replay", json={"ids": [item]})).json() == \
                {"replayed": 1}
            assert await worker.deliver_due() == 1
        finally:
            await receiver.server.stop()
    finally:
        await worker.aclose()
    assert receiver.refused == 0 and receiver.events[item]["event"] == "test"
    assert receiver.events[item]["data"]["message"] == "Проверка связи"
    logged = (await admin.get("/api/integration/requests", params={"limit": 1})).json()
    assert logged[0]["status"] == 200 and logged[0]["outbox_id"] == item and logged[0]["duration_ms"] >= 0
    async with app.state.sessionmaker() as session:
        replays = (await session.scalars(select(AuditEntry).where(
            AuditEntry.object_type == "integration_outbox"))).all()
    assert sorted((e.action, e.event) for e in replays) == [("created", ""), ("custom", "replayed")]  # test, replay


def test_the_signature_follows_003s_formula_on_its_example() -> None:
    # 003 §10.6's inputs; the manual prints fc95a524… as the result, which no spacing of its printed JSON
    # reproduces (docs/crm.md): this is sha256hex(id + json + key) of exactly these bytes
    client_id, key = "000003C405E6525C64C184258C44EC99", "00000716ABDA6D4DFF10F82BCBBFC532"
    body = b'{"request_number": "+74951234567", "from_sipuri": "test_user@cloudpbx.rt.ru"}'
    expected = "b809b8f16b94bd54d6b1b9597d876a258850858c27211182aa891395d2c0dc5a"
    assert sign(client_id, body, key) == expected
    assert verify(client_id, body, key, expected.upper())
    assert not verify(client_id, body.replace(b"67", b"68"), key, expected)
    assert not verify(client_id, body, key + "0", expected)
    sent = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert verify(client_id, body, key, expected, sent_at=sent, now=sent + timedelta(seconds=60))
    assert not verify(client_id, body, key, expected, sent_at=sent, now=sent + timedelta(minutes=30))  # a replay


async def test_integration_api_upserts_by_crm_id_and_keeps_to_the_allow_list(admin: httpx.AsyncClient,
                                                                              app: FastAPI) -> None:
    maker = app.state.sessionmaker
    world = await make_world(maker)
    async with maker() as session, session.begin():
        session.add(ListField(list_id=world.list_id, field_id=world.phone_field_id, position=0))
        session.add(ListField(list_id=world.list_id, field_id=world.city_field_id, position=1))
    cid = await h.connector(maker, kind="fake", settings={"phone_field": "Телефон", "field_map": {"city": "Город"}},
                            list_id=world.list_id, status_map={"9": {"action": "final"}})
    async with await client_for(app, "crm", roles=("supervisor",),
                                grants={"contacts.write": True, "dnc.write": True}) as crm:
        r = await crm.put(f"/api/integration/crm-connectors/{cid}/records/A-1",
                          json={"status": "1", "phones": ["8 916 123-45-67"], "fields": {"city": "Тверь"}})
        assert r.status_code == 200, r.text
        first = r.json()
        assert first["created"] is True
        r = await crm.put(f"/api/integration/crm-connectors/{cid}/records/A-1", json={"status": "9"})
        assert r.json() == {"contact_id": first["contact_id"], "created": False, "finished": True}
        async with maker() as session:
            contact = await session.get(Contact, first["contact_id"])
            assert contact is not None and contact.status.value == "done"
            assert contact.data[str(world.city_field_id)] == "Тверь"

        bad = await crm.put(f"/api/integration/crm-connectors/{cid}/records/A-2",
                            json={"status": "1", "phones": ["not a phone"]})
        assert bad.status_code == 422 and bad.json()["errors"]

        r = await crm.post("/api/integration/dnc", json={"number": "+7 (916) 000-00-01"})
        assert r.status_code == 200 and r.json()["number"] == "+79160000001" and r.json()["added"] is True
        again = await crm.post("/api/integration/dnc", json={"number": "89160000001"})
        assert again.json()["added"] is False

        r = await crm.post(f"/api/integration/campaigns/{world.campaign_id}/control", json={"action": "pause"})
        assert r.status_code == 409  # a draft cannot be paused: the campaign's own status machine answers

        assert (await admin.post("/api/integration-allow", json={"cidr": "10.1.0.0/16"})).status_code == 201
        refused = await crm.post("/api/integration/dnc", json={"number": "+79160000002"})
        assert refused.status_code == 403 and "127.0.0.1" in refused.json()["detail"]
        assert (await admin.post("/api/integration-allow", json={"cidr": "127.0.0.1"})).status_code == 201
        assert (await crm.post("/api/integration/dnc", json={"number": "+79160000002"})).status_code == 200
        bad_cidr = await admin.post("/api/integration-allow", json={"cidr": "10.1.0.0/99"})
        assert bad_cidr.status_code == 422

    # one call now for an operator: the workplace's manual-dial checks answer before the engine is asked
    async with maker() as session, session.begin():
        from dialer.models import Operator

        op = Operator(name="Оператор 1")
        session.add(op)
        await session.flush()
        op_id = op.id
    missing = await admin.post("/api/integration/calls", json={"operator_id": 999999, "campaign_id": world.campaign_id,
                                                               "number": "+79160000004"})
    assert missing.status_code == 404
    idle = await admin.post("/api/integration/calls", json={"operator_id": op_id, "campaign_id": world.campaign_id,
                                                            "number": "+79160000004"})
    assert idle.status_code == 422 and idle.json()["errors"][0]["field"] == "campaign_id"


async def test_the_integration_api_needs_its_permissions(app: FastAPI) -> None:
    async with await client_for(app, "op", roles=("operator",)) as op:
        r = await op.post("/api/integration/dnc", json={"number": "+79160000003"})
        assert r.status_code == 403
        assert (await op.get("/api/integration/backlog")).status_code == 403
    anon: Any = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    async with anon:
        assert (await anon.post("/api/integration/dnc", json={"number": "+79160000003"})).status_code == 401
