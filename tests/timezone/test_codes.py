from __future__ import annotations

import httpx
import pytest

from dialer.timezone.codes import CodeInfo, CodeTable, number_key, number_range, prefix_range


def test_prefix_and_range_share_one_scale() -> None:
    assert prefix_range("+7912") == number_range("+79120000000", "+79129999999")
    lo, hi = prefix_range("7912")
    assert lo <= number_key("+79123456789") <= hi
    assert not lo <= number_key("+79133456789") <= hi
    with pytest.raises(ValueError):
        number_range("+79129999999", "+79120000000")


def test_code_table_prefers_narrow_user_rows_then_registry() -> None:
    info = lambda tz, manual: CodeInfo(tz, None, None, manual)  # noqa: E731
    table = CodeTable([
        (*number_range("+79120000000", "+79121999999"), info("Asia/Yekaterinburg", False)),
        (*number_range("+79122000000", "+79122999999"), info("Asia/Omsk", False)),
        (*prefix_range("+7"), info("Europe/Moscow", True)),
        (*prefix_range("+791225"), info("Asia/Novosibirsk", True)),
    ])
    assert table.lookup(number_key("+79121234567")).tz == "Europe/Moscow"  # user "+7" beats registry
    assert table.lookup(number_key("+79122512345")).tz == "Asia/Novosibirsk"
    only_registry = CodeTable([(*number_range("+79120000000", "+79121999999"), info("Asia/Yekaterinburg", False))])
    assert only_registry.lookup(number_key("+79121234567")).tz == "Asia/Yekaterinburg"
    assert only_registry.lookup(number_key("+79131234567")) is None


async def test_time_zones_and_phone_codes_api(admin: httpx.AsyncClient) -> None:
    r = await admin.post("/api/time-zones", json={"name": "Екатеринбург", "tz": "Asia/Yekaterinburg"})
    assert r.status_code == 201, r.text
    zone = r.json()
    assert zone["utc_offset"] == "UTC+05:00"
    r = await admin.post("/api/time-zones", json={"name": "Марс", "tz": "Mars/Olympus"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "tz"

    r = await admin.post("/api/phone-codes", json={"time_zone_id": zone["id"], "prefix": "+7343"})
    assert r.status_code == 201, r.text
    assert r.json()["range_from"] == "+7343" and r.json()["source"] == "manual"
    r = await admin.post("/api/phone-codes", json={"tz": "Asia/Omsk", "range_from": "+79136000000",
                                                   "range_to": "+79136999999", "region": "Омская обл."})
    assert r.status_code == 201, r.text
    r = await admin.post("/api/phone-codes", json={"tz": "Asia/Omsk", "prefix": "+7381", "range_from": "+7"})
    assert r.status_code == 422

    found = (await admin.get("/api/phone-codes/lookup", params={"number": "8 (343) 123-45-67"})).json()
    assert found["timezones"] == ["Asia/Yekaterinburg"] and found["source"] == "manual"
    found = (await admin.get("/api/phone-codes/lookup", params={"number": "+7 913 600 11 22"})).json()
    assert found["timezones"] == ["Asia/Omsk"] and found["region"] == "Омская обл."
    # A Russian mobile number unknown to our tables: phonenumbers gives many zones, so it is uncertain.
    found = (await admin.get("/api/phone-codes/lookup", params={"number": "+7 999 000 11 22"})).json()
    assert found["source"] == "phonenumbers" and found["tz_uncertain"] and len(found["timezones"]) > 1
    assert (await admin.get(f"/api/time-zones/{zone['id']}")).json()["phone_codes"] == 1
