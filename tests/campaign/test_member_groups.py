"""Completion-code groups and caller-ID groups are one kind of resource (dialer.api.groups.MemberGroup):
the same payloads, checks, membership writes and refusals, each under its own URL and member field."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from dialer.models import AuditEntry
from tests.campaign.conftest import field_errors, make_setup


@dataclasses.dataclass(frozen=True)
class Kind:
    path: str
    members_field: str
    member_path: str
    member_payloads: tuple[dict[str, object], ...]
    campaign_field: str
    label: str
    member_label: str
    audit_type: str


KINDS = [
    Kind("completion-code-groups", "code_ids", "completion-codes",
         tuple({"name": f"Код {i}", "category": "answered"} for i in range(3)),
         "completion_code_group_id", "completion-code group", "completion code", "completion_code_groups"),
    Kind("caller-id-groups", "caller_id_ids", "caller-ids",
         tuple({"number": f"+7495123450{i}"} for i in range(3)),
         "caller_id_group_id", "caller-ID group", "caller ID", "caller_id_groups"),
]


@pytest.mark.parametrize("kind", KINDS, ids=[k.path for k in KINDS])
async def test_member_group(app: FastAPI, admin: httpx.AsyncClient, kind: Kind) -> None:
    members = []
    for payload in kind.member_payloads:
        r = await admin.post(f"/api/{kind.member_path}", json=payload)
        assert r.status_code == 201, r.text
        members.append(r.json()["id"])
    a, b, c = members
    url = f"/api/{kind.path}"

    r = await admin.post(url, json={"name": "Пустая"})
    assert r.status_code == 201 and r.json()[kind.members_field] == [] and r.json()["description"] == ""
    r = await admin.post(url, json={"name": "Первая", kind.members_field: [a, 9998, 9999]})
    assert r.status_code == 422
    assert field_errors(r) == {kind.members_field: f"{kind.member_label} 9998, 9999 do not exist"}
    r = await admin.post(url, json={"name": ""})
    assert r.status_code == 422 and "name" in field_errors(r)
    r = await admin.post(url, json={"name": "Первая", "members": [a]})
    assert r.status_code == 422

    # duplicates are dropped; members read back sorted by id
    r = await admin.post(url, json={"name": "Первая", "description": "d", kind.members_field: [c, a, c]})
    assert r.status_code == 201, r.text
    group = r.json()
    assert group[kind.members_field] == [a, c] and set(group) == {"id", "name", "description", kind.members_field,
                                                                   "created_at"}
    gid = group["id"]
    r = await admin.post(url, json={"name": "Первая"})
    assert r.status_code == 409 and "name" in field_errors(r)

    r = await admin.patch(f"{url}/{gid}", json={"description": "new"})
    assert r.status_code == 200 and r.json()[kind.members_field] == [a, c] and r.json()["description"] == "new"
    r = await admin.patch(f"{url}/{gid}", json={kind.members_field: [b]})
    assert r.status_code == 200 and r.json()[kind.members_field] == [b]
    r = await admin.patch(f"{url}/{gid}", json={"description": None})
    assert r.status_code == 422 and field_errors(r) == {"description": "must not be null"}
    r = await admin.patch(f"{url}/{gid}", json={kind.members_field: [404]})
    assert r.status_code == 422 and kind.members_field in field_errors(r)
    assert (await admin.get(f"{url}/{gid}")).json()[kind.members_field] == [b]

    async with app.state.sessionmaker() as session:
        changes = (await session.scalars(select(AuditEntry.changes).where(
            AuditEntry.object_type == kind.audit_type, AuditEntry.object_id == str(gid),
            AuditEntry.action == "updated"))).all()
    member_changes = [ch[kind.members_field] for ch in changes if kind.members_field in ch]
    assert {"old": [a, c], "new": [b]} in member_changes

    r = await admin.get(url, params={"q": "перв", "sort": "-name"})
    assert [g["id"] for g in r.json()["items"]] == [gid]

    setup = await make_setup(app, admin)
    r = await admin.post("/api/campaigns", json=setup.campaign("Летняя", **{kind.campaign_field: gid}))
    assert r.status_code == 201, r.text
    campaign_id = r.json()["id"]
    r = await admin.delete(f"{url}/{gid}")
    assert r.status_code == 409
    assert r.json()["detail"] == f"{kind.label} 'Первая' is used by campaigns 'Летняя'; change them first"
    assert (await admin.delete(f"/api/campaigns/{campaign_id}")).status_code == 204
    assert (await admin.delete(f"{url}/{gid}")).status_code == 204
    assert (await admin.get(f"{url}/{gid}")).status_code == 404
