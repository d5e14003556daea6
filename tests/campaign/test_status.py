"""The campaign status machine: the table itself, and the API walking every (status, action) pair."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from dialer.campaign import service
from dialer.campaign.status import TRANSITIONS, USER_ACTIONS, Action, allowed_actions, next_status
from dialer.exceptions import IllegalTransition
from dialer.models import Attempt, AuditEntry, Campaign
from dialer.models.enums import AttemptState, OutcomeCategory
from dialer.models.enums import CampaignStatus as S
from tests.campaign.conftest import Setup, field_errors

EXPECTED = {
    (S.draft, Action.start): S.running,
    (S.running, Action.pause): S.paused,
    (S.running, Action.stop): S.stopped,
    (S.running, Action.auto_pause): S.auto_paused,
    (S.running, Action.finish): S.finished,
    (S.paused, Action.resume): S.running,
    (S.paused, Action.stop): S.stopped,
    (S.auto_paused, Action.acknowledge): S.running,
    (S.auto_paused, Action.stop): S.stopped,
    (S.stopped, Action.start): S.running,
    (S.finished, Action.start): S.running,
}


@pytest.mark.parametrize(("status", "action"), list(itertools.product(S, Action)))
def test_every_pair_is_allowed_or_refused(status: S, action: Action) -> None:
    if (status, action) in EXPECTED:
        assert next_status(status, action, name="X") is EXPECTED[(status, action)]
    else:
        with pytest.raises(IllegalTransition) as err:
            next_status(status, action, name="X")
        assert err.value.status == 409
        assert err.value.detail.startswith(f"campaign 'X' is {status.value.replace('_', '-')}; it cannot be ")


def test_table_is_what_the_docstring_says() -> None:
    assert TRANSITIONS == EXPECTED
    assert allowed_actions(S.running) == [Action.pause, Action.stop]
    assert allowed_actions(S.running, user_only=False) == [Action.pause, Action.stop, Action.auto_pause,
                                                           Action.finish]


def test_refusal_names_the_way_out() -> None:
    with pytest.raises(IllegalTransition, match=r"campaign 'Весна' is finished; it cannot be paused "
                                                r"\(allowed: start\)"):
        next_status(S.finished, Action.pause, name="Весна")
    with pytest.raises(IllegalTransition, match=r"is auto-paused; it cannot be resumed \(allowed: stop, acknowledge\)"):
        next_status(S.auto_paused, Action.resume, name="Весна")


async def test_api_walks_every_user_action_from_every_status(app: FastAPI, admin: httpx.AsyncClient,
                                                             setup: Setup) -> None:
    campaign_id = (await admin.post("/api/campaigns", json=setup.campaign())).json()["id"]
    for status, action in itertools.product(S, USER_ACTIONS):
        async with app.state.sessionmaker() as session, session.begin():
            await session.execute(update(Campaign).where(Campaign.id == campaign_id).values(status=status))
        r = await admin.post(f"/api/campaigns/{campaign_id}/{action}", json={"comment": "проверка"})
        if (status, action) in EXPECTED:
            assert r.status_code == 200, (status, action, r.text)
            assert r.json()["status"] == EXPECTED[(status, action)]
            assert r.json()["status_reason"] == "проверка"
        else:
            assert r.status_code == 409, (status, action, r.text)
            assert r.json()["type"] == "/problems/illegal-transition"
            assert f"it cannot be {action}" in r.json()["detail"]


async def test_status_changes_are_audited_once_with_a_label(app: FastAPI, admin: httpx.AsyncClient,
                                                            setup: Setup) -> None:
    campaign = (await admin.post("/api/campaigns", json=setup.campaign())).json()
    assert campaign["status"] == "draft" and campaign["allowed_actions"] == ["start"]
    cid = campaign["id"]
    r = await admin.post(f"/api/campaigns/{cid}/start")
    assert r.status_code == 200 and r.json()["allowed_actions"] == ["pause", "stop"]
    started_at = r.json()["status_changed_at"]
    r = await admin.post(f"/api/campaigns/{cid}/pause", json={"comment": "обед"})
    assert r.json()["status"] == "paused" and r.json()["status_reason"] == "обед"
    assert r.json()["status_changed_at"] >= started_at

    r = await admin.post(f"/api/campaigns/{cid}/pause")
    assert r.status_code == 409
    assert r.json()["detail"] == "campaign 'Весна' is paused; it cannot be paused (allowed: resume, stop)"

    async with app.state.sessionmaker() as session:
        entries = (await session.scalars(select(AuditEntry).where(
            AuditEntry.object_type == "campaigns", AuditEntry.object_id == str(cid)).order_by(AuditEntry.id))).all()
    status_entries = [e for e in entries if e.action != "created" and "status" in e.changes]
    assert [(e.action, e.event, e.user_login) for e in status_entries] == [
        ("custom", "status: draft → running", "admin"),
        ("custom", "status: running → paused", "admin"),
    ]
    assert status_entries[1].changes["status_reason"] == {"old": "", "new": "обед"}


async def test_acknowledge_needs_a_comment_and_the_engine_auto_pauses(app: FastAPI, admin: httpx.AsyncClient,
                                                                       setup: Setup) -> None:
    cid = (await admin.post("/api/campaigns", json=setup.campaign())).json()["id"]
    await admin.post(f"/api/campaigns/{cid}/start")
    async with app.state.sessionmaker() as session, session.begin():
        paused = await service.auto_pause(session, cid, "5 ошибок подряд за 30 секунд")
        assert paused.status is S.auto_paused
    r = await admin.get(f"/api/campaigns/{cid}")
    assert r.json()["status"] == "auto_paused" and r.json()["status_reason"] == "5 ошибок подряд за 30 секунд"
    assert r.json()["allowed_actions"] == ["stop", "acknowledge"]

    r = await admin.post(f"/api/campaigns/{cid}/resume")
    assert r.status_code == 409 and "allowed: stop, acknowledge" in r.json()["detail"]
    r = await admin.post(f"/api/campaigns/{cid}/acknowledge", json={"comment": "  "})
    assert r.status_code == 422 and "comment" in field_errors(r)
    r = await admin.post(f"/api/campaigns/{cid}/acknowledge", json={"comment": "транк починили"})
    assert r.status_code == 200 and r.json()["status"] == "running"

    async with app.state.sessionmaker() as session:
        events = (await session.scalars(select(AuditEntry.event).where(
            AuditEntry.object_type == "campaigns", AuditEntry.action == "custom").order_by(AuditEntry.id))).all()
        users = (await session.scalars(select(AuditEntry.user_login).where(
            AuditEntry.event == "status: running → auto_paused"))).all()
    assert events == ["status: draft → running", "status: running → auto_paused", "status: auto_paused → running"]
    assert users == ["system"]


async def test_only_runnable_campaigns_start_and_running_ones_are_not_deleted(
        app: FastAPI, admin: httpx.AsyncClient, setup: Setup) -> None:
    empty_group = (await admin.post("/api/completion-code-groups", json={"name": "Пустая"})).json()
    no_phone = (await admin.post("/api/strategies", json={"name": "Без телефона"})).json()
    cid = (await admin.post("/api/campaigns", json=setup.campaign(
        strategy_id=no_phone["id"], completion_code_group_id=empty_group["id"]))).json()["id"]
    r = await admin.post(f"/api/campaigns/{cid}/start")
    assert r.status_code == 409
    assert field_errors(r) == {
        "strategy_id": "strategy 'Без телефона' has no phone field to dial (phone_field_id)",
        "completion_code_group_id": "completion-code group 'Пустая' has no codes",
    }
    assert (await admin.get(f"/api/campaigns/{cid}")).json()["status"] == "draft"

    r = await admin.patch(f"/api/campaigns/{cid}", json={"strategy_id": setup.strategy_id,
                                                          "completion_code_group_id": setup.group_id})
    assert r.status_code == 200, r.text
    assert (await admin.post(f"/api/campaigns/{cid}/start")).status_code == 200
    r = await admin.delete(f"/api/campaigns/{cid}")
    assert r.status_code == 409 and r.json()["detail"] == "campaign 'Весна' is running; stop it before deleting"
    assert (await admin.post(f"/api/campaigns/{cid}/stop")).status_code == 200
    assert (await admin.delete(f"/api/campaigns/{cid}")).status_code == 204


async def test_supervisor_controls_but_cannot_edit_and_operator_cannot_control(
        app: FastAPI, admin: httpx.AsyncClient, setup: Setup) -> None:
    from tests.conftest import client_for

    cid = (await admin.post("/api/campaigns", json=setup.campaign())).json()["id"]
    async with await client_for(app, "sup", roles=("supervisor",)) as sup, \
            await client_for(app, "op", roles=("operator",)) as op:
        assert (await sup.post(f"/api/campaigns/{cid}/start")).status_code == 200
        assert (await sup.patch(f"/api/campaigns/{cid}", json={"priority": 10})).status_code == 403
        r = await op.post(f"/api/campaigns/{cid}/pause")
        assert r.status_code == 403 and "campaigns.control" in r.json()["detail"]


async def test_infinite_campaigns_never_finish(app: FastAPI, admin: httpx.AsyncClient, setup: Setup) -> None:
    finite = (await admin.post("/api/campaigns", json=setup.campaign("A"))).json()["id"]
    infinite = (await admin.post("/api/campaigns", json=setup.campaign("B", kind="infinite"))).json()["id"]
    for cid in (finite, infinite):
        await admin.post(f"/api/campaigns/{cid}/start")
    async with app.state.sessionmaker() as session, session.begin():
        assert (await service.finish(session, finite)).status is S.finished
    async with app.state.sessionmaker() as session, session.begin():
        with pytest.raises(IllegalTransition, match="infinite"):
            await service.finish(session, infinite)


async def test_a_campaign_with_history_is_kept(app: FastAPI, admin: httpx.AsyncClient, setup: Setup) -> None:
    """The deletion finding: stop, then DELETE removed a campaign's 772 attempts — 12 of them live — under the
    engine. A campaign with calls in progress, or with any calls in its history (reports need them), is kept."""
    cid = (await admin.post("/api/campaigns", json=setup.campaign())).json()["id"]
    assert (await admin.post(f"/api/campaigns/{cid}/start")).status_code == 200
    assert (await admin.post(f"/api/campaigns/{cid}/stop")).status_code == 200
    async with app.state.sessionmaker() as session, session.begin():
        session.add(Attempt(campaign_id=cid, number="+79160000001", state=AttemptState.ringing,
                            queued_at=datetime.now(UTC)))
    r = await admin.delete(f"/api/campaigns/{cid}")
    assert r.status_code == 409 and [(e["field"], e["reason"]) for e in r.json()["errors"]] == [
        ("status", "1 of its calls are still in progress")]
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(Attempt).where(Attempt.campaign_id == cid).values(
            state=AttemptState.done, outcome=OutcomeCategory.busy))
    r = await admin.delete(f"/api/campaigns/{cid}")
    assert r.status_code == 409 and "1 calls in its history" in r.json()["detail"]
    assert (await admin.get(f"/api/campaigns/{cid}")).status_code == 200
    async with app.state.sessionmaker() as session:
        assert len((await session.scalars(select(Attempt).where(Attempt.campaign_id == cid))).all()) == 1
