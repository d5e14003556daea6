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


async def _upload(admin: httpx.AsyncClient, list_id: int, name: str, content: bytes,
                  **form: str) -> httpx.Response:
    return await admin.post(f"/api/dnc-lists/{list_id}/entries/upload", files={"file": (name, content)}, data=form)


async def test_numbers_from_files_and_back(admin: httpx.AsyncClient) -> None:
    import csv
    import io

    import openpyxl

    mine = (await admin.post("/api/dnc-lists", json={"name": "Отказники март"})).json()
    # A plain column of numbers without a header, as people paste it into Notepad.
    r = await _upload(admin, mine["id"], "numbers.txt", "8 (912) 345-67-89\r\n+7 912 345 6780\r\n89123456789\r\n"
                      "нет номера\r\n\r\n".encode("cp1251"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["rows"], body["added"], body["already_present"], body["rejected"]) == (4, 2, 0, 1)
    assert body["problems"][0]["row"] == 4 and body["problems"][0]["value"] == "нет номера"

    # A CRM export: the column is found by its header, the rest ignored; numbers already there are counted.
    crm = "ФИО;Телефон;Причина\r\nИванов;8-912-345-67-89;отказ\r\nПетров;8 (343) 123-45-67;жалоба\r\n"
    body = (await _upload(admin, mine["id"], "crm.csv", crm.encode("utf-8-sig"), comment="жалобы")).json()
    assert (body["column"], body["added"], body["already_present"], body["rejected"]) == ("Телефон", 1, 1, 0)
    # An XLSX whose header says nothing: the column whose cells are numbers; phones as Excel numbers.
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Клиент", "Контакт"])
    ws.append(["Сидоров", 79990001122])
    ws.append(["Кузнецов", 79990001133])
    buf = io.BytesIO()
    wb.save(buf)
    body = (await _upload(admin, mine["id"], "base.xlsx", buf.getvalue())).json()
    assert (body["column"], body["added"]) == ("Контакт", 2)
    # Prefixes from a file.
    body = (await _upload(admin, mine["id"], "prefixes.csv", b"+7800\n+7809\n", is_prefix="true")).json()
    assert body["added"] == 2
    check = (await admin.get("/api/dnc/check", params={"number": "8-800-555-35-35", "list_id": mine["id"]})).json()
    assert check["blocked"]

    # Not a table, a column that does not exist: refused, nothing added.
    before = (await admin.get(f"/api/dnc-lists/{mine['id']}")).json()["entries"]
    r = await _upload(admin, mine["id"], "photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00binary")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"
    r = await _upload(admin, mine["id"], "crm.csv", crm.encode("utf-8-sig"), column="Мобильный")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "column"
    assert "Телефон" in r.json()["detail"]
    assert (await admin.get(f"/api/dnc-lists/{mine['id']}")).json()["entries"] == before == 7

    # Download: CSV as Russian Excel opens it, and XLSX.
    r = await admin.get(f"/api/dnc-lists/{mine['id']}/entries/export")
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    assert "filename*=UTF-8''" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["number", "is_prefix", "comment", "created_at"] and len(rows) == 8
    assert rows[[x[0] for x in rows].index("+73431234567")][:3] == ["+73431234567", "нет", "жалобы"]
    r = await admin.get(f"/api/dnc-lists/{mine['id']}/entries/export", params={"format": "xlsx"})
    sheet = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True).active
    values = list(sheet.iter_rows(values_only=True))
    assert len(values) == 8 and ("+7800", True) in [v[:2] for v in values]

    # Every upload is in the audit log with its counts.
    audit = (await admin.get("/api/audit", params={"object_type": "dnc_lists"})).json()["items"]
    uploads = [e for e in audit if e.get("event") == "file upload"]
    assert len(uploads) == 4 and {e["changes"]["file"]["new"] for e in uploads} == {
        "numbers.txt", "crm.csv", "base.xlsx", "prefixes.csv"}
