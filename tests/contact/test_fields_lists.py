from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import insert, select, text

from dialer.contact.indexes import reconcile_field_indexes
from dialer.core.tasks import background as tasks
from dialer.models import AuditEntry, Campaign, CompletionCodeGroup, Strategy, campaign_lists
from tests.contact.conftest import make_field, make_list, standard_list


async def _indexes(app: FastAPI) -> dict[str, str]:
    async with app.state.engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE tablename = 'contacts' AND indexname LIKE 'ix_contacts_f%'"
        ))).all()
    return dict(rows)


async def test_field_validation(admin: httpx.AsyncClient) -> None:
    r = await admin.post("/api/fields", json={"name": "Статус", "type": "enum"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "options"
    r = await admin.post("/api/fields", json={"name": "Код", "type": "string", "mask": "([0-9"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "mask"
    assert "regular expression" in r.json()["errors"][0]["reason"]
    r = await admin.post("/api/fields", json={"name": "ФИО", "type": "string", "phone_type": "work"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "phone_type"
    phone = await make_field(admin, "Телефон", "phone")
    assert phone["phone_type"] == "mobile"
    r = await admin.post("/api/fields", json={"name": "Телефон", "type": "string"})
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "name"
    enum = await make_field(admin, "Сегмент", "enum", options=["VIP", "Обычный"])
    assert enum["options"] == ["VIP", "Обычный"]


async def test_field_indexes_are_built_after_commit_and_used(app: FastAPI, admin: httpx.AsyncClient) -> None:
    city = await make_field(admin, "Город")
    amount = await make_field(admin, "Сумма", "decimal")
    await tasks.wait_idle()
    found = await _indexes(app)
    assert f"ix_contacts_f{city['id']}" in found and f"ix_contacts_f{city['id']}_num" not in found
    # A number has only its numeric index (it serves equality, ranges and sorting).
    assert f"ix_contacts_f{amount['id']}_num" in found and f"ix_contacts_f{amount['id']}" not in found
    assert "::numeric" in found[f"ix_contacts_f{amount['id']}_num"]

    lst = await make_list(admin, "Большой", [city, amount])
    async with app.state.engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO contacts (list_id, data) SELECT :l, "
            "jsonb_build_object(CAST(:c AS text), 'Город ' || g, CAST(:a AS text), g) FROM generate_series(1, 5000) g"),
            {"l": lst["id"], "c": str(city["id"]), "a": str(amount["id"])})
        await conn.execute(text("ANALYZE contacts"))
        plan = "\n".join(r[0] for r in (await conn.execute(text(
            f"EXPLAIN SELECT id FROM contacts WHERE list_id = {lst['id']} "
            f"AND (contacts.data ->> '{city['id']}') = 'Город 42'"))).all())
        assert f"ix_contacts_f{city['id']}" in plan, plan
        plan = "\n".join(r[0] for r in (await conn.execute(text(
            f"EXPLAIN SELECT id FROM contacts WHERE ((contacts.data -> '{amount['id']}')::numeric) > 4990"))).all())
        assert f"ix_contacts_f{amount['id']}_num" in plan, plan
    r = await admin.get(f"/api/lists/{lst['id']}/contacts", params={"f.Город": "Город 42"})
    assert r.status_code == 200 and r.json()["total"] == 1

    # Changing the type of a field with values is refused; deleting a used field too.
    r = await admin.patch(f"/api/fields/{amount['id']}", json={"type": "string"})
    assert r.status_code == 409 and "has values" in r.json()["detail"]
    r = await admin.delete(f"/api/fields/{city['id']}")
    assert r.status_code == 409 and "Большой" in r.json()["detail"]


async def test_index_policy_per_type(app: FastAPI, admin: httpx.AsyncClient) -> None:
    fields = {kind: await make_field(admin, f"Поле {kind}", kind, **({"options": ["a", "b"]} if kind == "enum" else {}))
              for kind in ("string", "integer", "decimal", "date", "datetime", "boolean", "phone", "enum")}
    await tasks.wait_idle()
    found = await _indexes(app)
    by_field = {kind: sorted(n for n in found if n in (f"ix_contacts_f{f['id']}", f"ix_contacts_f{f['id']}_num"))
                for kind, f in fields.items()}
    assert by_field == {
        "string": [f"ix_contacts_f{fields['string']['id']}"],
        "integer": [f"ix_contacts_f{fields['integer']['id']}_num"],
        "decimal": [f"ix_contacts_f{fields['decimal']['id']}_num"],
        "date": [f"ix_contacts_f{fields['date']['id']}"],
        "datetime": [f"ix_contacts_f{fields['datetime']['id']}"],
        "boolean": [f"ix_contacts_f{fields['boolean']['id']}"],
        "phone": [],  # numbers are found through contact_phones.e164
        "enum": [f"ix_contacts_f{fields['enum']['id']}"],
    }


async def test_type_change_and_delete_adjust_indexes(app: FastAPI, admin: httpx.AsyncClient) -> None:
    code = await make_field(admin, "Код")
    await tasks.wait_idle()
    assert f"ix_contacts_f{code['id']}" in await _indexes(app)
    r = await admin.patch(f"/api/fields/{code['id']}", json={"type": "integer"})
    assert r.status_code == 200 and r.json()["type"] == "integer"
    await tasks.wait_idle()
    assert [n for n in await _indexes(app) if n.startswith(f"ix_contacts_f{code['id']}")] == [
        f"ix_contacts_f{code['id']}_num"]
    r = await admin.delete(f"/api/fields/{code['id']}")
    assert r.status_code == 204
    await tasks.wait_idle()
    assert not [n for n in await _indexes(app) if n.startswith(f"ix_contacts_f{code['id']}")]


async def test_reconcile_builds_missing_and_drops_orphans(app: FastAPI, admin: httpx.AsyncClient) -> None:
    city = await make_field(admin, "Город")
    await tasks.wait_idle()
    phone = await make_field(admin, "Телефон", "phone")
    amount = await make_field(admin, "Сумма", "decimal")
    await tasks.wait_idle()
    async with app.state.engine.connect() as raw:
        conn = await raw.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f"DROP INDEX ix_contacts_f{city['id']}"))
        await conn.execute(text("CREATE INDEX ix_contacts_f999999 ON contacts ((data ->> '999999'))"))
        # Indexes an earlier policy built: text on a phone and on a number.
        await conn.execute(text(f"CREATE INDEX ix_contacts_f{phone['id']} ON contacts ((data ->> '{phone['id']}'))"))
        await conn.execute(text(f"CREATE INDEX ix_contacts_f{amount['id']} ON contacts ((data ->> '{amount['id']}'))"))
    report = await reconcile_field_indexes(app.state.engine)
    assert report.created == [f"ix_contacts_f{city['id']}"]
    assert sorted(report.dropped) == sorted(["ix_contacts_f999999", f"ix_contacts_f{phone['id']}",
                                             f"ix_contacts_f{amount['id']}"])
    assert set(await _indexes(app)) == {f"ix_contacts_f{city['id']}", f"ix_contacts_f{amount['id']}_num"}
    again = await reconcile_field_indexes(app.state.engine)
    assert not again.created and not again.dropped


async def test_removing_a_field_from_a_list_keeps_the_values(admin: httpx.AsyncClient) -> None:
    lst, f = await standard_list(admin)
    r = await admin.post(f"/api/lists/{lst['id']}/contacts", json={
        "values": {"ФИО": "Иванов Иван", "Телефон": "8 (912) 345-67-89", "Сумма": "1 500,50"}})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    keep = [x for x in lst["fields"] if x["field_id"] != f["amount"]["id"]]
    r = await admin.patch(f"/api/lists/{lst['id']}", json={"fields": keep})
    assert r.status_code == 200 and "Сумма" not in [x["name"] for x in r.json()["fields"]]
    contact = (await admin.get(f"/api/lists/{lst['id']}/contacts/{cid}")).json()
    assert "Сумма" not in contact["values"]
    # Editing the contact meanwhile does not lose the hidden value either.
    r = await admin.patch(f"/api/lists/{lst['id']}/contacts/{cid}", json={"values": {"ФИО": "Иванов И."}})
    assert r.status_code == 200
    # A new field added to the list while contacts exist: nothing to migrate.
    city = await make_field(admin, "Город")
    r = await admin.patch(f"/api/lists/{lst['id']}", json={"fields": [*lst["fields"], {"field_id": city["id"]}]})
    assert r.status_code == 200
    contact = (await admin.get(f"/api/lists/{lst['id']}/contacts/{cid}")).json()
    assert contact["values"]["Сумма"] == 1500.5 and contact["values"]["ФИО"] == "Иванов И."
    assert "Город" not in contact["values"]


async def test_list_read_copy_fields_and_delete_refusal(app: FastAPI, admin: httpx.AsyncClient) -> None:
    lst, f = await standard_list(admin)
    assert [x["name"] for x in lst["fields"]] == ["ФИО", "Телефон", "Рабочий телефон", "Сумма", "Дата"]
    assert lst["contact_count"] == 0
    city = await make_field(admin, "Город")
    other = await make_list(admin, "Другой", [city, f["phone"]])
    r = await admin.post(f"/api/lists/{other['id']}/copy-fields", json={"from_list_id": lst["id"]})
    assert r.status_code == 200, r.text
    assert [x["name"] for x in r.json()["fields"]] == ["Город", "Телефон", "ФИО", "Рабочий телефон", "Сумма", "Дата"]
    r = await admin.post(f"/api/lists/{other['id']}/copy-fields", json={"from_list_id": 999999})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "from_list_id"
    r = await admin.post("/api/lists", json={"name": "Дубль", "fields": [{"field_id": city["id"]}] * 2})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "fields"

    async with app.state.sessionmaker() as session, session.begin():
        group = CompletionCodeGroup(name="Группа")
        strategy = Strategy(name="Стратегия", phone_field_id=f["phone"]["id"])
        session.add_all([group, strategy])
        await session.flush()
        campaign = Campaign(name="Весна", strategy_id=strategy.id, completion_code_group_id=group.id)
        session.add(campaign)
        await session.flush()
        await session.execute(insert(campaign_lists).values(campaign_id=campaign.id, list_id=lst["id"]))
    r = await admin.delete(f"/api/lists/{lst['id']}")
    assert r.status_code == 409 and "Весна" in r.json()["detail"]
    r = await admin.delete(f"/api/lists/{other['id']}")
    assert r.status_code == 204
    r = await admin.delete(f"/api/fields/{city['id']}")
    assert r.status_code == 204
    r = await admin.patch(f"/api/lists/{lst['id']}", json={"fields": []})
    r = await admin.delete(f"/api/fields/{f['phone']['id']}")
    assert r.status_code == 409 and "Стратегия" in r.json()["detail"]

    async with app.state.sessionmaker() as session:
        events = (await session.scalars(select(AuditEntry).where(AuditEntry.object_type == "contact_lists"))).all()
    assert any("fields" in e.changes for e in events)


async def test_card_template_and_crm_link(admin: httpx.AsyncClient) -> None:
    lst, _ = await standard_list(admin)
    assert all(x["in_card"] for x in lst["fields"]) and lst["crm_url"] == ""
    fields = [{**x, "in_card": x["name"] != "Сумма"} for x in lst["fields"]]
    r = await admin.patch(f"/api/lists/{lst['id']}", json={"fields": fields,
                                                            "crm_url": "https://crm.example.ru/c/{ФИО}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["name"] for x in body["fields"] if not x["in_card"]] == ["Сумма"]
    assert body["crm_url"] == "https://crm.example.ru/c/{ФИО}"
    r = await admin.patch(f"/api/lists/{lst['id']}", json={"crm_url": "javascript:alert(1)"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "crm_url"
    copy = await make_list(admin, "Копия", [])
    r = await admin.post(f"/api/lists/{copy['id']}/copy-fields", json={"from_list_id": lst["id"]})
    assert [x["name"] for x in r.json()["fields"] if not x["in_card"]] == ["Сумма"]
