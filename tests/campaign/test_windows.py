"""Calling windows and schedule periods the engine supports are accepted by the API: all day, over midnight, 24:00."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.campaign.conftest import Setup, field_errors


async def test_call_windows_all_day_and_overnight(admin: httpx.AsyncClient, setup: Setup) -> None:
    # the demo's strategy: 00:00–00:00, all day; any later PATCH must pass
    r = await admin.post("/api/strategies", json={"name": "Круглосуточно", "call_window_start": "00:00",
                                                  "call_window_end": "00:00"})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    r = await admin.patch(f"/api/strategies/{sid}", json={"wrap_up_s": 30})
    assert r.status_code == 200, r.text
    assert (r.json()["call_window_start"], r.json()["call_window_end"], r.json()["wrap_up_s"]) == ("00:00", "00:00",
                                                                                                    30)
    r = await admin.patch(f"/api/strategies/{sid}", json={"call_window_start": "22:00", "call_window_end": "06:00"})
    assert r.status_code == 200, r.text
    assert (r.json()["call_window_start"], r.json()["call_window_end"]) == ("22:00", "06:00")
    r = await admin.patch(f"/api/strategies/{sid}", json={"call_window_start": "09:00", "call_window_end": "24:00"})
    assert (r.status_code, r.json()["call_window_end"]) == (200, "00:00")
    r = await admin.patch(f"/api/strategies/{sid}", json={"call_window_end": "24:30"})
    assert r.status_code == 422 and "is not a time HH:MM" in field_errors(r)["call_window_end"]
    # max_hold_s: 30 by default, null for no limit
    strategy = (await admin.get(f"/api/strategies/{sid}")).json()
    assert strategy["max_hold_s"] == 30
    r = await admin.patch(f"/api/strategies/{sid}", json={"max_hold_s": None})
    assert (r.status_code, r.json()["max_hold_s"]) == (200, None)
    r = await admin.patch(f"/api/strategies/{sid}", json={"max_hold_s": 0})
    assert r.status_code == 422 and "max_hold_s" in field_errors(r)


async def test_schedule_periods_to_midnight_and_overnight(app: FastAPI, admin: httpx.AsyncClient,
                                                          setup: Setup) -> None:
    schedule = [{"weekday": 0, "start": "09:00", "end": "24:00"},   # to midnight
                {"weekday": 4, "start": "20:00", "end": "02:00"},   # Friday night into Saturday
                {"weekday": 6, "start": "22:00", "end": "06:00"},   # Sunday night into Monday
                {"weekday": 2, "start": "00:00", "end": "00:00"}]   # all Wednesday
    r = await admin.post("/api/campaigns", json=setup.campaign(schedule=schedule))
    assert r.status_code == 201, r.text
    got = sorted((p["weekday"], p["start"], p["end"]) for p in r.json()["schedule"])
    assert got == [(0, "09:00", "00:00"), (2, "00:00", "00:00"), (4, "20:00", "02:00"), (6, "22:00", "06:00")]
    cid = r.json()["id"]
    # Monday 05:00 is inside Sunday's night: refused, naming both
    r = await admin.patch(f"/api/campaigns/{cid}", json={"schedule": [*schedule, {"weekday": 0, "start": "05:00",
                                                                                   "end": "07:00"}]})
    assert r.status_code == 422
    assert field_errors(r)["schedule.4"] == "Mon 05:00–07:00 overlaps Schedule №3 (Sun 22:00–06:00)"
    r = await admin.patch(f"/api/campaigns/{cid}", json={"schedule": [*schedule, {"weekday": 0, "start": "06:00",
                                                                                   "end": "09:00"}]})
    assert r.status_code == 200, r.text
