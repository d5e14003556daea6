"""The bundled Rossvyaz snapshot: zones out of the box, loaded like a registry file, settling uncertain numbers."""

from __future__ import annotations

import itertools

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from dialer.models import Contact, ContactList, ContactPhone
from dialer.timezone import bundled
from dialer.timezone.service import load_bundled


def test_the_snapshot_is_a_partition_of_numbers_with_one_zone_each() -> None:
    rows = bundled.registry_rows()
    assert len(rows) > 15_000
    spans = sorted((int(code + lo), int(code + hi)) for code, lo, hi, *_ in rows)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(spans)), "ranges overlap"
    assert all(int(cap) == int(hi) - int(lo) + 1 for _code, lo, hi, cap, _c, _r in rows)
    # a mobile range of Samara (+7 927 89x) and a landline code of Ryazan
    assert bundled.prefixes()["92789"][2] == "Europe/Samara"
    assert bundled.prefixes()["4912"][2] == "Europe/Moscow"  # Ryazan
    snap = bundled.snapshot()
    assert (snap.package, snap.licence, snap.data_to) == ("ru-phone-parser", "MIT", "2015-03-31")


async def _uncertain_phone(app: FastAPI, e164: str) -> int:
    async with app.state.sessionmaker() as session, session.begin():
        lst = ContactList(name="Зоны")
        session.add(lst)
        await session.flush()
        contact = Contact(list_id=lst.id, data={})
        session.add(contact)
        await session.flush()
        phone = ContactPhone(contact_id=contact.id, list_id=lst.id, e164=e164, raw=e164,
                             timezones=["Europe/Moscow", "Europe/Samara", "Asia/Yekaterinburg"], tz_uncertain=True)
        session.add(phone)
        await session.flush()
        return phone.id


async def test_coverage_says_what_is_uncertain_and_the_load_settles_it(app: FastAPI, admin: httpx.AsyncClient) -> None:
    phone_id = await _uncertain_phone(app, "+79278912345")
    r = await admin.get("/api/phone-codes/coverage")
    assert r.status_code == 200, r.text
    cov = r.json()
    assert cov["phone_codes"] == {"manual": 0, "registry": 0, "bundled": 0}
    assert (cov["numbers"], cov["uncertain"]) == (1, 1)
    assert "ru-phone-parser" in cov["message"] and "import-numbering" in cov["message"]
    r = await admin.get("/api/phone-codes/coverage", headers={"Accept-Language": "ru"})
    assert r.json()["message"].startswith("У 1 из 1 номеров контактов часовой пояс не определён")

    r = await admin.post("/api/phone-codes/load-bundled")
    assert r.status_code == 200, r.text
    loaded = r.json()
    assert loaded["ranges"] > 15_000 and loaded["settled"] == 1
    assert loaded["source"]["data_from"] == "2012-11-17" and "2015-03-31" in loaded["message"]

    async with app.state.sessionmaker() as session:
        phone = (await session.scalars(select(ContactPhone).where(ContactPhone.id == phone_id))).one()
    assert (phone.timezones, phone.tz_uncertain) == (["Europe/Samara"], False)
    assert phone.region == "Самарская область"
    r = await admin.get("/api/phone-codes/lookup", params={"number": "+79278900000"})
    assert r.json()["timezones"] == ["Europe/Samara"] and r.json()["source"] == "registry"

    cov = (await admin.get("/api/phone-codes/coverage")).json()
    assert cov["uncertain"] == 0 and cov["phone_codes"]["bundled"] == cov["phone_codes"]["registry"] > 15_000
    assert "2015-03-31" in cov["message"]  # says how old the codes are

    r = await admin.get("/api/audit", params={"object_type": "phone_codes"})
    assert any("ru-phone-parser" in str(e) for e in r.json()["items"]), r.text


async def test_the_first_start_loads_it_only_into_an_empty_table(app: FastAPI, admin: httpx.AsyncClient) -> None:
    r = await admin.post("/api/phone-codes", json={"prefix": "+7927", "tz": "Europe/Samara"})
    assert r.status_code == 201, r.text
    assert await load_bundled(app.state.sessionmaker, only_if_empty=True) is None
    cov = (await admin.get("/api/phone-codes/coverage")).json()
    assert cov["phone_codes"] == {"manual": 1, "registry": 0, "bundled": 0}
