"""Callbacks: numbers, windows in the campaign's zone, personal callbacks, postponing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI

from dialer.models import Callback
from tests.campaign.conftest import Setup, add_contact, add_list, field_errors


async def test_callbacks(app: FastAPI, admin: httpx.AsyncClient, setup: Setup) -> None:
    cid = (await admin.post("/api/campaigns", json=setup.campaign(time_zone="Asia/Novosibirsk"))).json()["id"]
    contact = await add_contact(app, setup.list_id, {}, phone="+79161234567")
    landline = await add_contact(app, setup.list_id, {}, phone="+73832100000")
    stranger = await add_contact(app, await add_list(app, "Чужой"), {})
    operator = (await admin.post("/api/operators", json={"name": "Анна"})).json()["id"]

    r = await admin.post("/api/callbacks", json={
        "campaign_id": cid, "number": "8 (383) 210-00-00", "window_start": "2030-03-12T10:00",
        "window_end": "2030-03-12T12:00", "comment": "после обеда"})
    assert r.status_code == 201, r.text
    common = r.json()
    assert common["number"] == "+73832100000" and common["kind"] == "common" and common["status"] == "pending"
    assert common["contact_id"] == landline  # the contact of the campaign's lists with that number
    assert common["window_start"] == "2030-03-12T03:00:00Z"  # Novosibirsk is UTC+7

    r = await admin.post("/api/callbacks", json={
        "campaign_id": cid, "contact_id": contact, "kind": "personal", "operator_id": operator,
        "window_start": "2030-03-12T10:00:00+03:00", "window_end": "2030-03-12T11:00:00+03:00"})
    assert r.status_code == 201, r.text
    personal = r.json()
    assert personal["number"] == "+79161234567" and personal["window_start"] == "2030-03-12T07:00:00Z"

    window = {"window_start": "2030-03-12T10:00", "window_end": "2030-03-12T11:00"}
    cases = [
        ({"campaign_id": cid, "kind": "personal", "number": "+79161234567", **window}, "operator_id",
         "a personal callback needs the operator"),
        ({"campaign_id": cid, "contact_id": stranger, "number": "+79161234567", **window}, "contact_id",
         "is not in any contact list of campaign"),
        ({"campaign_id": cid, **window}, "number", "a number is required"),
        ({"campaign_id": cid, "number": "555", **window}, "number", "is not a valid phone number"),
        ({"campaign_id": 9999, "number": "+79161234567", **window}, "campaign_id", "does not exist"),
        ({"campaign_id": cid, "number": "+79161234567", "operator_id": 9999, **window}, "operator_id",
         "does not exist"),
        ({"campaign_id": cid, "number": "+79161234567", "window_start": "2030-03-12T11:00",
          "window_end": "2030-03-12T10:00"}, "window_end", "must be after window_start"),
    ]
    for payload, field, reason in cases:
        r = await admin.post("/api/callbacks", json=payload)
        assert r.status_code == 422, (payload, r.text)
        assert reason in field_errors(r).get(field, ""), (field, r.json())

    r = await admin.get("/api/callbacks", params={"operator_id": operator})
    assert [c["id"] for c in r.json()["items"]] == [personal["id"]]
    r = await admin.get("/api/callbacks", params={"campaign_id": cid, "status": "pending", "sort": "-window_start"})
    assert [c["id"] for c in r.json()["items"]] == [personal["id"], common["id"]]

    r = await admin.patch(f"/api/callbacks/{personal['id']}", json={"kind": "common", "operator_id": None,
                                                                     "window_end": "2030-03-12T15:00"})
    assert r.status_code == 200, r.text
    assert r.json()["window_end"] == "2030-03-12T08:00:00Z" and r.json()["operator_id"] is None
    r = await admin.patch(f"/api/callbacks/{personal['id']}", json={"kind": "personal"})
    assert r.status_code == 422 and "operator_id" in field_errors(r)

    before = datetime.now(UTC)
    r = await admin.post(f"/api/callbacks/{common['id']}/postpone", json={"minutes": 30})
    assert r.status_code == 200, r.text
    start = datetime.fromisoformat(r.json()["window_start"])
    end = datetime.fromisoformat(r.json()["window_end"])
    assert before + timedelta(minutes=30) <= start <= datetime.now(UTC) + timedelta(minutes=30)
    assert end - start == timedelta(hours=2)
    r = await admin.post(f"/api/callbacks/{common['id']}/postpone", json={"until": "2030-01-15T09:00"})
    assert r.json()["window_start"] == "2030-01-15T02:00:00Z" and r.json()["window_end"] == "2030-01-15T04:00:00Z"
    for body, field in [({}, "minutes"), ({"minutes": 30, "until": "2030-01-01T00:00"}, "minutes"),
                        ({"minutes": 0}, "minutes"), ({"until": "2020-01-01T00:00"}, "until")]:
        r = await admin.post(f"/api/callbacks/{common['id']}/postpone", json=body)
        assert r.status_code == 422 and field in field_errors(r), (body, r.text)
    await admin.patch(f"/api/callbacks/{common['id']}", json={"status": "done"})
    r = await admin.post(f"/api/callbacks/{common['id']}/postpone", json={"minutes": 60})
    assert r.status_code == 409 and "only a pending callback" in r.json()["detail"]


async def test_a_pending_callback_needs_a_window_that_has_not_ended(app: FastAPI, admin: httpx.AsyncClient,
                                                                    setup: Setup) -> None:
    cid = (await admin.post("/api/campaigns", json=setup.campaign())).json()["id"]
    await add_contact(app, setup.list_id, {}, phone="+79161234567")
    now = datetime.now(UTC)

    def window(start: timedelta, end: timedelta) -> dict[str, str]:
        return {"window_start": (now + start).isoformat(), "window_end": (now + end).isoformat()}

    base = {"campaign_id": cid, "number": "+79161234567"}
    r = await admin.post("/api/callbacks", json=base | window(-timedelta(days=2), -timedelta(days=1)))
    assert r.status_code == 422 and "is in the past" in field_errors(r)["window_end"], r.text
    # Already open but not over: "call back as soon as you can".
    r = await admin.post("/api/callbacks", json=base | window(-timedelta(hours=1), timedelta(hours=1)))
    assert r.status_code == 201, r.text
    callback = r.json()
    # A callback that is done may well lie in the past (e.g. entered afterwards for the record).
    r = await admin.post("/api/callbacks", json=base | {"status": "done"}
                         | window(-timedelta(days=2), -timedelta(days=1)))
    assert r.status_code == 201, r.text

    r = await admin.patch(f"/api/callbacks/{callback['id']}", json={"window_end": (now - timedelta(minutes=1))
                                                                     .isoformat()})
    assert r.status_code == 422 and "window_end" in field_errors(r)
    # Once its window has gone by, a pending callback can still be commented on, closed or postponed.
    async with app.state.sessionmaker() as session, session.begin():
        obj = await session.get(Callback, callback["id"])
        assert obj is not None
        obj.window_start, obj.window_end = now - timedelta(days=2), now - timedelta(days=1)
    r = await admin.patch(f"/api/callbacks/{callback['id']}", json={"comment": "не дозвонились"})
    assert r.status_code == 200, r.text
    r = await admin.post(f"/api/callbacks/{callback['id']}/postpone", json={"minutes": 30})
    assert r.status_code == 200, r.text
    r = await admin.patch(f"/api/callbacks/{callback['id']}", json={"status": "cancelled"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


async def test_a_callback_must_be_on_a_number_of_a_contact_it_can_dial(app: FastAPI, admin: httpx.AsyncClient,
                                                                       setup: Setup) -> None:
    """The engine dials a callback only for a contact of the campaign's lists, on one of the contact's numbers:
    a pending callback on any other number would be kept and never called, so it is refused."""
    cid = (await admin.post("/api/campaigns", json=setup.campaign())).json()["id"]
    contact = await add_contact(app, setup.list_id, {}, phone="+79161234567")
    window = {"window_start": "2030-03-12T10:00", "window_end": "2030-03-12T11:00"}

    r = await admin.post("/api/callbacks", json={"campaign_id": cid, "number": "+79169999999", **window})
    assert r.status_code == 422, r.text
    assert "belongs to no contact" in field_errors(r)["number"], r.text
    r = await admin.post("/api/callbacks", json={"campaign_id": cid, "contact_id": contact,
                                                 "number": "+79169999999", **window})
    assert r.status_code == 422 and "is not a number of contact" in field_errors(r)["number"], r.text
    # the number of a contact of the campaign's lists finds its contact
    r = await admin.post("/api/callbacks", json={"campaign_id": cid, "number": "8 916 123-45-67", **window})
    assert r.status_code == 201, r.text
    callback = r.json()
    assert (callback["contact_id"], callback["number"]) == (contact, "+79161234567")
    # two contacts share the number: say which
    twin = await add_contact(app, setup.list_id, {}, phone="+79161234567")
    r = await admin.post("/api/callbacks", json={"campaign_id": cid, "number": "+79161234567", **window})
    assert r.status_code == 422 and "contact_id" in field_errors(r), r.text
    r = await admin.post("/api/callbacks", json={"campaign_id": cid, "contact_id": twin,
                                                 "number": "+79161234567", **window})
    assert r.status_code == 201, r.text

    r = await admin.patch(f"/api/callbacks/{callback['id']}", json={"number": "+79169999999"})
    assert r.status_code == 422 and "number" in field_errors(r), r.text
    r = await admin.patch(f"/api/callbacks/{callback['id']}", json={"contact_id": None})
    assert r.status_code == 422 and "contact_id" in field_errors(r), r.text
    # a closed callback is a record only: it may name any number, but cannot be reopened so
    r = await admin.post("/api/callbacks", json={"campaign_id": cid, "number": "+79169999999", "status": "done",
                                                 **window})
    assert r.status_code == 201, r.text
    r = await admin.patch(f"/api/callbacks/{r.json()['id']}", json={"status": "pending"})
    assert r.status_code == 422 and "number" in field_errors(r), r.text
