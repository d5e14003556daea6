from __future__ import annotations

import httpx


async def test_numbers_and_prefixes_block_in_list_and_blacklist(admin: httpx.AsyncClient) -> None:
    lists = (await admin.get("/api/dnc-lists")).json()["items"]
    blacklist = next(x for x in lists if x["is_global"])
    mine = (await admin.post("/api/dnc-lists", json={"name": "Отказники"})).json()

    r = await admin.post(f"/api/dnc-lists/{mine['id']}/entries", json={"number": "8 (912) 345-67-89"})
    assert r.status_code == 201 and r.json()["number"] == "+79123456789"
    r = await admin.post(f"/api/dnc-lists/{blacklist['id']}/entries", json={"number": "+7 800", "is_prefix": True})
    assert r.status_code == 201 and r.json()["number"] == "+7800"

    check = (await admin.get("/api/dnc/check", params={"number": "+7 912 345 6789"})).json()
    assert check == {"number": "+79123456789", "blocked": False, "matches": []}
    check = (await admin.get("/api/dnc/check", params={"number": "89123456789", "list_id": mine["id"]})).json()
    assert check["blocked"] and check["matches"][0]["list_name"] == "Отказники"
    check = (await admin.get("/api/dnc/check", params={"number": "8-800-555-35-35"})).json()
    assert check["blocked"] and check["matches"][0]["is_prefix"]

    r = await admin.post(f"/api/dnc-lists/{mine['id']}/entries/bulk",
                         json={"numbers": ["+79123456789", "+79990001122", "hello", "79990001122"]})
    body = r.json()
    assert body["added"] == 1 and body["already_present"] == 1
    assert body["rejected"] == [{"index": 2, "number": "hello", "reason": body["rejected"][0]["reason"]}]
    assert (await admin.get(f"/api/dnc-lists/{mine['id']}")).json()["entries"] == 2

    r = await admin.post(f"/api/dnc-lists/{mine['id']}/entries", json={"number": "12"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "number"
    r = await admin.delete(f"/api/dnc-lists/{blacklist['id']}")
    assert r.status_code == 409 and "blacklist" in r.json()["detail"]
