"""Campaign media settings (issue #16 §1, §3, §4) and the operator's record_override: defaults, validation with
clear errors, audit."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from dialer.models import AuditEntry
from tests.campaign.conftest import Setup

MEDIA = {"record_mode": "percent", "record_percent": 25, "record_consent_audio": "Запись разговора",
         "recording_retention_days": 180, "amd_enabled": True, "amd_message": "voicemail-ru",
         "abandon_message": "all-busy.wav"}


async def test_defaults_and_round_trip(admin: httpx.AsyncClient, setup: Setup) -> None:
    plain = (await admin.post("/api/campaigns", json=setup.campaign("Без записи"))).json()
    assert {k: plain[k] for k in MEDIA} == {"record_mode": "none", "record_percent": None,
                                            "record_consent_audio": None, "recording_retention_days": None,
                                            "amd_enabled": False, "amd_message": None, "abandon_message": None}
    r = await admin.post("/api/campaigns", json=setup.campaign("С записью", **MEDIA))
    assert r.status_code == 201, r.text
    assert {k: r.json()[k] for k in MEDIA} == {**MEDIA, "abandon_message": "all-busy"}


async def test_validation_errors_name_the_field(admin: httpx.AsyncClient, setup: Setup) -> None:
    cases = [
        ({"record_mode": "percent"}, "record_percent", "record_percent"),
        ({"record_mode": "all", "record_percent": 100}, "record_percent", "99"),
        ({"record_mode": "sometimes"}, "record_mode", "percent"),
        ({"recording_retention_days": 0}, "recording_retention_days", "1"),
        ({"record_consent_audio": "../etc/passwd"}, "record_consent_audio", "hold-audio directory"),
        ({"amd_message": ""}, "amd_message", "hold-audio directory"),
        ({"abandon_message": "a\\b"}, "abandon_message", "hold-audio directory"),
    ]
    for extra, field, words in cases:
        r = await admin.post("/api/campaigns", json=setup.campaign("Плохая", **extra))
        assert r.status_code == 422, (extra, r.text)
        errors = r.json()["errors"]
        assert [e["field"] for e in errors] == [field], (extra, errors)
        assert words in errors[0]["reason"], (extra, errors)


async def test_update_checks_against_stored_values_and_is_audited(app: FastAPI, admin: httpx.AsyncClient,
                                                                  setup: Setup) -> None:
    campaign = (await admin.post("/api/campaigns", json=setup.campaign("Весна"))).json()
    url = f"/api/campaigns/{campaign['id']}"
    refused = await admin.patch(url, json={"record_mode": "percent"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "record_percent"
    assert (await admin.patch(url, json={"record_mode": None})).status_code == 422
    r = await admin.patch(url, json={"record_mode": "percent", "record_percent": 10, "amd_enabled": True})
    assert r.status_code == 200, r.text
    # the percent stays while the mode is percent; clearing it then is refused
    assert (await admin.patch(url, json={"record_percent": None})).status_code == 422
    assert (await admin.patch(url, json={"record_mode": "all"})).json()["record_mode"] == "all"
    async with app.state.sessionmaker() as session:
        entries = (await session.scalars(select(AuditEntry).where(
            AuditEntry.object_type == "campaigns", AuditEntry.object_id == str(campaign["id"]),
            AuditEntry.action == "updated").order_by(AuditEntry.id))).all()
    changes = [e.changes for e in entries if "record_mode" in e.changes]
    assert [c["record_mode"] for c in changes] == [{"old": "none", "new": "percent"},
                                                   {"old": "percent", "new": "all"}]
    assert changes[0]["record_percent"] == {"old": None, "new": 10}
    assert changes[0]["amd_enabled"] == {"old": False, "new": True}
    assert all(e.user_login == "admin" for e in entries)


async def test_operator_record_override(admin: httpx.AsyncClient) -> None:
    r = await admin.post("/api/operators", json={"name": "Ольга"})
    assert r.status_code == 201 and r.json()["record_override"] == "inherit"
    url = f"/api/operators/{r.json()['id']}"
    assert (await admin.patch(url, json={"record_override": "never"})).json()["record_override"] == "never"
    bad = await admin.patch(url, json={"record_override": "sometimes"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "record_override"
    null = await admin.patch(url, json={"record_override": None})
    assert null.status_code == 422 and null.json()["errors"][0]["field"] == "record_override"
