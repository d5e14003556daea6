"""The operator's workplace API as the panel uses it: the client card (in-card fields in list order, CRM link,
script parts, history, notes), the campaigns for manual dial, the manual-dial checks and the auto-answer switch.

The call is written directly (as the engine records it), so no engine runs here; the manual dial against the
engine is in tests/engine/test_manual_dial.py and tests/web/test_operator_panel.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from dialer.engine.repository import contact_card
from dialer.models import (
    Attempt,
    AuditEntry,
    Campaign,
    ContactList,
    ListField,
    Operator,
    OperatorStateLog,
)
from dialer.models.enums import AttemptState, CampaignStatus, OperatorState, OutcomeCategory
from dialer.workplace.card import crm_link, fill_script
from tests.conftest import client_for, make_user, token_for
from tests.engine.engine_world import EngineWorld, engine_world


async def _operator_client(app: FastAPI, world: EngineWorld) -> httpx.AsyncClient:
    user_id = await make_user(app, "op1", roles=("operator",))
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(Operator).where(Operator.id == world.operator_ids[0]).values(user_id=user_id))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                             headers={"Authorization": f"Bearer {await token_for(app, user_id)}"})


def test_script_and_crm_link_fill_values_safely() -> None:
    values = {"ФИО": "Иванов <script>", "Сумма": 1500.0, "Пусто": None}
    parts = fill_script("Здравствуйте, {ФИО}! Долг {Сумма} ₽, {Пусто}, {Чужое}.", values)
    assert parts == [{"text": "Здравствуйте, "}, {"field": "ФИО", "value": "Иванов <script>"}, {"text": "! Долг "},
                     {"field": "Сумма", "value": "1500"}, {"text": " ₽, "}, {"field": "Пусто", "value": ""},
                     {"text": ", {Чужое}."}]
    assert crm_link("https://crm.example.ru/c/{ФИО}?s={Сумма}", values) == \
        "https://crm.example.ru/c/%D0%98%D0%B2%D0%B0%D0%BD%D0%BE%D0%B2%20%3Cscript%3E?s=1500"
    assert crm_link("javascript:alert({ФИО})", values) is None
    assert crm_link("", values) is None
    # a value cannot turn the link into another scheme or host: it is encoded
    assert crm_link("https://crm/{ФИО}", {"ФИО": "//evil.example/x"}) == "https://crm/%2F%2Fevil.example%2Fx"


async def test_state_shows_the_card_as_the_template_says(app: FastAPI) -> None:
    maker = app.state.sessionmaker
    world = await engine_world(maker, operators=1)
    op_id = world.operator_ids[0]
    async with maker() as session, session.begin():
        session.add_all([ListField(list_id=world.list_id, field_id=world.amount_field_id, position=0, in_card=True),
                         ListField(list_id=world.list_id, field_id=world.city_field_id, position=1, in_card=True),
                         ListField(list_id=world.list_id, field_id=world.home_field_id, position=2, in_card=False)])
        await session.execute(update(ContactList).where(ContactList.id == world.list_id)
                              .values(crm_url="https://crm.example.ru/{Город}"))
        await session.execute(update(Campaign).where(Campaign.id == world.campaign_id)
                              .values(call_script="Город {Город}, <i>{Домашний}</i>", status=CampaignStatus.running))
    contact_id = await world.contact(phones=["+79160000001"], data={
        str(world.city_field_id): "Омск", str(world.amount_field_id): 99.5, str(world.home_field_id): "+73812000000"})
    now = datetime.now(UTC)
    async with maker() as session, session.begin():
        earlier = Attempt(campaign_id=world.campaign_id, contact_id=contact_id, number="+79160000001",
                          state=AttemptState.done, outcome=OutcomeCategory.answered, operator_id=op_id,
                          completion_code_id=world.codes["Перезвонить"], comment="просил вечером",
                          queued_at=now - timedelta(days=1))
        current = Attempt(campaign_id=world.campaign_id, contact_id=contact_id, number="+79160000001",
                          state=AttemptState.connected, operator_id=op_id, queued_at=now - timedelta(seconds=30),
                          connected_at=now - timedelta(seconds=20))
        session.add_all([earlier, current])
        await session.flush()
        session.add(OperatorStateLog(operator_id=op_id, state=OperatorState.in_call, campaign_id=world.campaign_id,
                                     attempt_id=current.id, started_at=now - timedelta(seconds=20)))
        current_id = current.id
    async with await _operator_client(app, world) as me:
        r = await me.get("/api/workplace/state")
        assert r.status_code == 200, r.text
        state = r.json()
    assert state["state"] == "in_call" and state["auto_answer"] is True and state["can_answer"] is False
    assert state["campaigns"] == [{"id": world.campaign_id, "name": "Весна", "status": "running"}]
    assert state["server_time"] is not None
    call = state["call"]
    assert call["attempt_id"] == current_id and call["contact_id"] == contact_id
    # only the in-card fields, in the list's order (the home phone is not on the card)
    assert [(f["name"], f["value"], f["text"]) for f in call["fields"]] == [("Сумма", 99.5, "99.5"),
                                                                          ("Город", "Омск", "Омск")]
    assert call["card"]["fields"] == {"Сумма": 99.5, "Город": "Омск"}
    assert call["crm_url"] == "https://crm.example.ru/%D0%9E%D0%BC%D1%81%D0%BA"
    # placeholders take any field of the list (also one not on the card); markup stays text
    assert call["script"] == "Город Омск, <i>+73812000000</i>"
    assert call["script_parts"][1] == {"text": None, "field": "Город", "value": "Омск"}
    assert [h["attempt_id"] for h in call["history"]] == [current_id, current_id - 1]
    assert call["history"][1]["outcome"] == "answered" and call["history"][1]["completion_code"] == "Перезвонить"
    assert [n["comment"] for n in call["notes"]] == ["просил вечером"]
    assert {c["name"] for c in call["codes"]} >= {"Согласен", "Отказ", "Перезвонить"}
    assert {c["system_key"] for c in call["codes"]} >= {None, "answered", "never_call"}
    # the engine's card (in PreviewStarted events, the supervisor's attempt card) follows the template too
    async with maker() as session:
        card = await contact_card(session, contact_id, campaign_id=world.campaign_id)
    assert list(card["fields"]) == ["Сумма", "Город"]


async def test_manual_dial_is_checked_before_the_engine(app: FastAPI) -> None:
    maker = app.state.sessionmaker
    world = await engine_world(maker, operators=1)
    async with await _operator_client(app, world) as me:
        # the campaign is not running: nobody may dial in it
        r = await me.post("/api/workplace/manual-dial",
                          json={"campaign_id": world.campaign_id, "number": "+79161234567"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "campaign_id"
        await world.start()
        r = await me.post("/api/workplace/manual-dial", json={"campaign_id": world.campaign_id, "number": "12"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "number"
        assert "недопустимый номер телефона" in r.json()["errors"][0]["reason"]  # an operator reads Russian
        r = await me.post("/api/workplace/manual-dial", json={"campaign_id": world.campaign_id})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "number"
        state = (await me.get("/api/workplace/state")).json()
        assert [c["id"] for c in state["campaigns"]] == [world.campaign_id]
    # an operator outside the campaign's pools does not see it
    async with maker() as session, session.begin():
        stranger = Operator(name="Чужой", extension="sip-x")
        session.add(stranger)
    user_id = await make_user(app, "op2", roles=("operator",))
    async with maker() as session, session.begin():
        await session.execute(update(Operator).where(Operator.name == "Чужой").values(user_id=user_id))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers={"Authorization": f"Bearer {await token_for(app, user_id)}"}) as other:
        assert (await other.get("/api/workplace/state")).json()["campaigns"] == []
        r = await other.post("/api/workplace/manual-dial", json={"campaign_id": world.campaign_id,
                                                                  "number": "+79161234567"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "campaign_id"


async def test_auto_answer_switch_is_saved_and_audited(app: FastAPI) -> None:
    world = await engine_world(app.state.sessionmaker, operators=1)
    op_id = world.operator_ids[0]
    async with await _operator_client(app, world) as me:
        r = await me.post("/api/workplace/auto-answer", json={"enabled": False})
        assert r.status_code == 200, r.text
        assert r.json() == {"operator_id": op_id, "auto_answer": False}
        assert (await me.get("/api/workplace/state")).json()["auto_answer"] is False
        r = await me.post("/api/workplace/auto-answer", json={"enabled": "maybe"})
        assert r.status_code == 422
    async with app.state.sessionmaker() as session:
        assert (await session.get(Operator, op_id)).auto_answer is False
        entry = (await session.scalars(select(AuditEntry).where(AuditEntry.object_type == "operators",
                                                                AuditEntry.object_id == str(op_id),
                                                                AuditEntry.user_login == "op1"))).one()
    assert entry.user_login == "op1" and entry.changes["auto_answer"] == {"old": True, "new": False}
    # without the operator-panel permission: refused
    async with await client_for(app, "auditor", roles=(), grants={"audit.read": True}) as outsider:
        assert (await outsider.post("/api/workplace/auto-answer", json={"enabled": True})).status_code == 403
        r = await outsider.post("/api/workplace/manual-dial",
                                json={"campaign_id": world.campaign_id, "number": "+79161234567"})
        assert r.status_code == 403
