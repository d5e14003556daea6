"""Whose callbacks a user sees and changes, and callbacks that could never be dialled.

An operator (no ``monitoring.read``) sees and changes only his own personal callbacks and the shared callbacks of
the campaigns he works for (his pools meet the campaign's, or the campaign has no pools — as the engine assigns
calls); anything else is "does not exist" (404), and giving a callback to someone else or booking one in a campaign
he does not work for is refused (403). Supervisors and administrators see and change everything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from dialer.models import Callback
from tests.campaign.conftest import Setup, add_contact, field_errors
from tests.conftest import make_user, token_for

WINDOW = {"window_start": "2030-03-12T10:00", "window_end": "2030-03-12T12:00"}


def _client(app: FastAPI, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                             headers={"Authorization": f"Bearer {token}"})


@dataclasses.dataclass
class Floor:
    anna: httpx.AsyncClient  # operator A: pool "both"
    boris: httpx.AsyncClient  # operator B: pools "both" and "boris"
    sup: httpx.AsyncClient
    op_a: int
    op_b: int
    shared_campaign: int  # pool "both"
    boris_campaign: int  # pool "boris" only
    open_campaign: int  # no pools: any operator
    contacts: dict[str, int]
    callbacks: dict[str, dict[str, Any]]


@pytest.fixture
async def floor(app: FastAPI, admin: httpx.AsyncClient, setup: Setup) -> AsyncIterator[Floor]:
    users = {login: await make_user(app, login, roles=(role,))
             for login, role in [("anna", "operator"), ("boris", "operator"), ("sup", "supervisor")]}
    op_a = (await admin.post("/api/operators", json={"name": "Анна", "user_id": users["anna"]})).json()["id"]
    op_b = (await admin.post("/api/operators", json={"name": "Борис", "user_id": users["boris"]})).json()["id"]
    both = (await admin.post("/api/pools", json={"name": "Оба", "operator_ids": [op_a, op_b]})).json()["id"]
    boris_pool = (await admin.post("/api/pools", json={"name": "Борис", "operator_ids": [op_b]})).json()["id"]
    campaigns = {}
    for name, pools in [("Общая", [both]), ("Бориса", [boris_pool]), ("Открытая", [])]:
        r = await admin.post("/api/campaigns", json=setup.campaign(name, pool_ids=pools))
        assert r.status_code == 201, r.text
        campaigns[name] = r.json()["id"]
    contacts = {name: await add_contact(app, setup.list_id, {}, phone=phone)
                for name, phone in [("b_personal", "+79160000001"), ("a_personal", "+79160000002"),
                                    ("shared", "+79160000003"), ("boris_shared", "+79160000004"),
                                    ("open_shared", "+79160000005")]}
    plan = [("b_personal", "Общая", {"kind": "personal", "operator_id": op_b, "comment": "секрет Бориса"}),
            ("a_personal", "Общая", {"kind": "personal", "operator_id": op_a}),
            ("shared", "Общая", {}),
            ("boris_shared", "Бориса", {}),
            ("open_shared", "Открытая", {})]
    callbacks = {}
    for name, campaign, extra in plan:
        r = await admin.post("/api/callbacks", json={"campaign_id": campaigns[campaign], "contact_id": contacts[name],
                                                     **WINDOW, **extra})
        assert r.status_code == 201, r.text
        callbacks[name] = r.json()
    async with (_client(app, await token_for(app, users["anna"])) as anna,
                _client(app, await token_for(app, users["boris"])) as boris,
                _client(app, await token_for(app, users["sup"])) as sup):
        yield Floor(anna, boris, sup, op_a, op_b, campaigns["Общая"], campaigns["Бориса"], campaigns["Открытая"],
                    contacts, callbacks)


def _ids(floor: Floor, *names: str) -> set[int]:
    return {floor.callbacks[n]["id"] for n in names}


async def _listed(client: httpx.AsyncClient, **params: Any) -> set[int]:
    r = await client.get("/api/callbacks", params=params)
    assert r.status_code == 200, r.text
    assert r.json()["total"] == len(r.json()["items"])
    return {c["id"] for c in r.json()["items"]}


async def test_an_operator_lists_only_his_own_and_his_campaigns_shared_callbacks(floor: Floor) -> None:
    assert await _listed(floor.anna) == _ids(floor, "a_personal", "shared", "open_shared")
    assert await _listed(floor.boris) == _ids(floor, "b_personal", "shared", "boris_shared", "open_shared")
    # filters and search narrow his own view, never widen it
    assert await _listed(floor.anna, operator_id=floor.op_b) == set()
    assert await _listed(floor.anna, q="секрет") == set()
    assert await _listed(floor.anna, campaign_id=floor.boris_campaign) == set()
    assert await _listed(floor.sup) == set(_ids(floor, *floor.callbacks))
    assert await _listed(floor.sup, q="секрет") == _ids(floor, "b_personal")


async def test_an_operator_cannot_read_someone_elses_callback(floor: Floor) -> None:
    for name in ("b_personal", "boris_shared"):
        r = await floor.anna.get(f"/api/callbacks/{floor.callbacks[name]['id']}")
        # the same answer as for a callback that does not exist: nothing is told about it
        assert r.status_code == 404, r.text
        assert r.json()["detail"] == f"перезвона {floor.callbacks[name]['id']} не существует"
        assert "+7916" not in r.text and "секрет" not in r.text
    for name in ("a_personal", "shared", "open_shared"):
        assert (await floor.anna.get(f"/api/callbacks/{floor.callbacks[name]['id']}")).status_code == 200
    r = await floor.sup.get(f"/api/callbacks/{floor.callbacks['b_personal']['id']}")
    assert r.status_code == 200 and r.json()["comment"] == "секрет Бориса"


async def test_an_operator_books_callbacks_only_for_himself_in_his_campaigns(floor: Floor, app: FastAPI,
                                                                              setup: Setup) -> None:
    contact = await add_contact(app, setup.list_id, {}, phone="+79160000009")
    base = {"contact_id": contact, **WINDOW}
    r = await floor.anna.post("/api/callbacks", json=base | {"campaign_id": floor.shared_campaign,
                                                             "kind": "personal", "operator_id": floor.op_b})
    assert r.status_code == 403 and "operator_id" in field_errors(r), r.text
    r = await floor.anna.post("/api/callbacks", json=base | {"campaign_id": floor.shared_campaign,
                                                             "operator_id": floor.op_b})
    assert r.status_code == 403 and "operator_id" in field_errors(r), r.text
    r = await floor.anna.post("/api/callbacks", json=base | {"campaign_id": floor.boris_campaign})
    assert r.status_code == 403 and "campaign_id" in field_errors(r), r.text
    r = await floor.anna.post("/api/callbacks", json=base | {"campaign_id": 9999})
    assert r.status_code == 403 and "campaign_id" in field_errors(r), r.text
    # his own personal callback: the operator is himself when not given
    r = await floor.anna.post("/api/callbacks", json=base | {"campaign_id": floor.shared_campaign,
                                                             "kind": "personal"})
    assert r.status_code == 201, r.text
    assert r.json()["operator_id"] == floor.op_a
    r = await floor.anna.post("/api/callbacks", json=base | {"campaign_id": floor.open_campaign})
    assert r.status_code == 201 and r.json()["kind"] == "common", r.text
    # a supervisor books for anyone
    r = await floor.sup.post("/api/callbacks", json=base | {"campaign_id": floor.boris_campaign,
                                                           "kind": "personal", "operator_id": floor.op_b})
    assert r.status_code == 201, r.text


async def test_an_operator_cannot_change_reassign_or_take_someone_elses_callback(floor: Floor) -> None:
    b_personal = floor.callbacks["b_personal"]["id"]
    a_personal = floor.callbacks["a_personal"]["id"]
    shared = floor.callbacks["shared"]["id"]
    for body in ({"comment": "моё"}, {"operator_id": floor.op_a}, {"kind": "common", "operator_id": None},
                 {"status": "cancelled"}):
        r = await floor.anna.patch(f"/api/callbacks/{b_personal}", json=body)
        assert r.status_code == 404, (body, r.text)
    r = await floor.anna.patch(f"/api/callbacks/{floor.callbacks['boris_shared']['id']}", json={"comment": "x"})
    assert r.status_code == 404, r.text
    # his own callback cannot be handed to another operator, nor moved to a campaign he does not work for
    r = await floor.anna.patch(f"/api/callbacks/{a_personal}", json={"operator_id": floor.op_b})
    assert r.status_code == 403 and "operator_id" in field_errors(r), r.text
    r = await floor.anna.patch(f"/api/callbacks/{shared}", json={"kind": "personal", "operator_id": floor.op_b})
    assert r.status_code == 403 and "operator_id" in field_errors(r), r.text
    r = await floor.anna.patch(f"/api/callbacks/{a_personal}", json={"campaign_id": floor.boris_campaign})
    assert r.status_code == 403 and "campaign_id" in field_errors(r), r.text
    r = await floor.anna.patch(f"/api/callbacks/{a_personal}", json={"comment": "перезвонить после 11"})
    assert r.status_code == 200 and r.json()["comment"] == "перезвонить после 11", r.text
    # a shared callback of his campaign he may take for himself; then it is no longer Boris's to see
    r = await floor.anna.patch(f"/api/callbacks/{shared}", json={"kind": "personal"})
    assert r.status_code == 200 and r.json()["operator_id"] == floor.op_a, r.text
    assert (await floor.boris.get(f"/api/callbacks/{shared}")).status_code == 404
    # nothing of Boris's changed
    r = await floor.sup.get(f"/api/callbacks/{b_personal}")
    assert (r.json()["operator_id"], r.json()["comment"], r.json()["status"]) == \
        (floor.op_b, "секрет Бориса", "pending")
    # a supervisor reassigns as he likes
    r = await floor.sup.patch(f"/api/callbacks/{b_personal}", json={"operator_id": floor.op_a})
    assert r.status_code == 200 and r.json()["operator_id"] == floor.op_a, r.text
    assert (await floor.anna.get(f"/api/callbacks/{b_personal}")).status_code == 200


async def test_an_operator_cannot_postpone_someone_elses_callback(floor: Floor) -> None:
    b_personal = floor.callbacks["b_personal"]
    r = await floor.anna.post(f"/api/callbacks/{b_personal['id']}/postpone", json={"minutes": 30})
    assert r.status_code == 404, r.text
    r = await floor.sup.get(f"/api/callbacks/{b_personal['id']}")
    assert r.json()["window_start"] == b_personal["window_start"]
    r = await floor.anna.post(f"/api/callbacks/{floor.callbacks['a_personal']['id']}/postpone", json={"minutes": 30})
    assert r.status_code == 200, r.text
    r = await floor.sup.post(f"/api/callbacks/{b_personal['id']}/postpone", json={"minutes": 30})
    assert r.status_code == 200 and r.json()["window_start"] != b_personal["window_start"], r.text


async def test_an_operator_cannot_delete_someone_elses_callback(floor: Floor, app: FastAPI) -> None:
    b_personal = floor.callbacks["b_personal"]["id"]
    for name in ("b_personal", "boris_shared"):
        r = await floor.anna.delete(f"/api/callbacks/{floor.callbacks[name]['id']}")
        assert r.status_code == 404, r.text
    async with app.state.sessionmaker() as session:
        assert await session.get(Callback, b_personal) is not None
    assert (await floor.anna.delete(f"/api/callbacks/{floor.callbacks['a_personal']['id']}")).status_code == 204
    assert (await floor.anna.delete(f"/api/callbacks/{floor.callbacks['shared']['id']}")).status_code == 204
    assert (await floor.sup.delete(f"/api/callbacks/{b_personal}")).status_code == 204


async def test_a_user_who_is_no_operator_sees_no_callbacks(floor: Floor, app: FastAPI) -> None:
    """Holding the callbacks permissions without being an operator (or a supervisor) gives nothing."""
    user = await make_user(app, "desk", grants={"callbacks.read": True, "callbacks.write": True})
    async with _client(app, await token_for(app, user)) as desk:
        assert await _listed(desk) == set()
        assert (await desk.get(f"/api/callbacks/{floor.callbacks['shared']['id']}")).status_code == 404
        r = await desk.post("/api/callbacks", json={"campaign_id": floor.open_campaign,
                                                    "contact_id": floor.contacts["open_shared"], **WINDOW})
        assert r.status_code == 403, r.text
