"""Registry imports as an administrator does them: real-looking ABC/DEF files, then number lookups.

Every test runs against a fresh real PostgreSQL database (tests/conftest.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from dialer.contact.phonelookup import PhoneLookup
from dialer.models import PhoneCode, TimeZone
from dialer.phone.registry import RegistryFormatError, RegistryRejected
from dialer.timezone.codes import number_key
from dialer.timezone.service import import_numbering, load_code_table
from tests.timezone.test_numbering import upload

MTS, MEGAFON, BEELINE, T2 = 'ПАО "МТС"', 'ПАО "МегаФон"', 'ПАО "Вымпел-Коммуникации"', 'ООО "Т2 Мобайл"'
RTK = 'ПАО "Ростелеком"'

# (code, from, to, carrier, region as the regulator writes it, expected zone or None)
DEF_ROWS: list[tuple[str, str, str, str, str, str | None]] = [
    ("900", "0000000", "0061999", T2, "Краснодарский край", "Europe/Moscow"),
    ("901", "0100000", "0199999", T2, "Республика Саха /Якутия/", "Asia/Yakutsk"),
    ("902", "0000000", "0099999", T2, "Кемеровская область - Кузбасс", "Asia/Novokuznetsk"),
    ("902", "0100000", "0199999", T2, "Ханты - Мансийский - Югра АО", "Asia/Yekaterinburg"),
    ("903", "0000000", "0999999", BEELINE, "Москва и Московская область", "Europe/Moscow"),
    ("904", "0000000", "0099999", T2, "Чувашская Республика - Чувашия", "Europe/Moscow"),
    ("904", "0100000", "0199999", T2, "Ямало-Ненецкий АО", "Asia/Yekaterinburg"),
    ("911", "0000000", "0999999", MTS, "Санкт-Петербург и Ленинградская область", "Europe/Moscow"),
    ("911", "5500000", "5599999", MTS, "Ненецкий АО", "Europe/Moscow"),
    ("912", "0000000", "1999999", MEGAFON, "Свердловская обл.", "Asia/Yekaterinburg"),
    ("913", "9000000", "9499999", BEELINE, "Новосибирская обл.", "Asia/Novosibirsk"),
    ("914", "2000000", "2099999", MTS, "Еврейская АО", "Asia/Vladivostok"),
    ("914", "2100000", "2199999", MTS, "Чукотский АО", "Asia/Anadyr"),
    ("914", "2200000", "2299999", MEGAFON, "Камчатский край", "Asia/Kamchatka"),
    ("914", "2300000", "2399999", MEGAFON, "Магаданская обл. и Чукотский АО", None),  # UTC+11 and UTC+12
    ("917", "0000000", "0999999", MTS, "Республика Башкортостан", "Asia/Yekaterinburg"),
    ("921", "0000000", "0999999", MEGAFON, "Калининградская обл.", "Europe/Kaliningrad"),
    ("924", "0000000", "0099999", MEGAFON, "Забайкальский край", "Asia/Chita"),
    ("928", "0000000", "0999999", MEGAFON, "Кабардино-Балкарская Республика", "Europe/Moscow"),
    ("928", "1000000", "1999999", MEGAFON, "Республика Северная Осетия - Алания", "Europe/Moscow"),
    ("928", "2000000", "2999999", MEGAFON, "Республика Адыгея", "Europe/Moscow"),
    ("949", "0000000", "0999999", 'ООО "Феникс"', "Донецкая Народная Республика", "Europe/Moscow"),
    ("958", "0000000", "0099999", T2, "Российская Федерация", None),
    ("959", "0000000", "0999999", 'ООО "Лугаком"', "ЛНР", "Europe/Moscow"),
    ("961", "0000000", "0999999", BEELINE, "Пермский край", "Asia/Yekaterinburg"),
    ("978", "0000000", "0999999", 'ООО "К-Телеком"', "Республика Крым и г. Севастополь", "Europe/Simferopol"),
    ("984", "0000000", "0099999", T2, "г. Севастополь", "Europe/Simferopol"),
    ("990", "0000000", "0999999", 'ООО "К-Телеком"', "Запорожская обл.", "Europe/Moscow"),
    ("990", "1000000", "1999999", 'ООО "К-Телеком"', "Херсонская обл.", "Europe/Moscow"),
    ("999", "0000000", "0099999", 'ООО "Неизвестный"', "Планета Марс", None),
]
ABC_ROWS: list[tuple[str, str, str, str, str, str | None]] = [
    ("496", "7200000", "7299999", RTK, "г.о. Серпухов|Московская обл.", "Europe/Moscow"),
    ("343", "2000000", "2999999", RTK, "г. Екатеринбург|Свердловская обл.", "Asia/Yekaterinburg"),
    ("411", "2000000", "2009999", RTK, "р-н Оймяконский|Республика Саха /Якутия/", "Asia/Ust-Nera"),
    ("846", "2000000", "2999999", RTK, "г. Самара|Самарская обл.", "Europe/Samara"),
    ("800", "0000000", "0099999", RTK, "Российская Федерация", None),
]

HEADERS = {
    "old": ("АВС/ DEF;От;До;Емкость;Оператор;Регион", False),
    "new": ("АВС/ DEF;От;До;Емкость;Оператор;Регион;ИНН", True),
    "latin": ('"ABC/DEF";"От";"До";"Емкость";"Оператор";"Регион";"ИНН"', True),
    "code": ("Код ;От ;До ;Емкость ;Оператор ;Регион ;ИНН ", True),
}


def registry(tmp_path: Path, rows: list[tuple[str, str, str, str, str, str | None]], *, name: str = "DEF-9xx.csv",
             header: str = "new", encoding: str = "cp1251", quote: bool = False, pad: str = "") -> Path:
    head, with_inn = HEADERS[header]
    lines = [head]
    for code, lo, hi, carrier, region, _zone in rows:
        cells = [code, lo, hi, str(int(hi) - int(lo) + 1), carrier, region] + (["7707049388"] if with_inn else [])
        if quote:
            cells = ['"' + c.replace('"', '""') + '"' for c in cells]
        lines.append(";".join(c + pad for c in cells))
    path = tmp_path / name
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def number(row: tuple[str, str, str, str, str, str | None]) -> str:
    return f"+7{row[0]}{row[1]}"


async def registry_rows(app: FastAPI) -> list[tuple[Any, ...]]:
    async with app.state.sessionmaker() as session:
        return [tuple(r) for r in (await session.execute(
            select(PhoneCode.prefix, PhoneCode.range_from, PhoneCode.range_to, PhoneCode.tz, PhoneCode.region,
                   PhoneCode.carrier, PhoneCode.source).order_by(PhoneCode.range_from))).all()]


@pytest.mark.parametrize(
    ("header", "encoding", "quote", "pad"),
    [("old", "cp1251", False, ""), ("new", "utf-8", False, ""), ("latin", "utf-8-sig", True, ""),
     ("code", "cp1251", False, "  ")],
    ids=["cp1251-old-header", "utf8-inn", "bom-quoted-latin-header", "padded-kod-header"],
)
async def test_every_file_variant_gives_the_expected_zone_region_and_carrier(
        app: FastAPI, tmp_path: Path, header: str, encoding: str, quote: bool, pad: str) -> None:
    rows = DEF_ROWS + ABC_ROWS
    result = await import_numbering(app.state.sessionmaker, registry(tmp_path, rows, header=header,
                                                                     encoding=encoding, quote=quote, pad=pad))
    assert result["ranges"] == len(rows) and result["rejected"] == 0
    async with app.state.sessionmaker() as session:
        lookup = await PhoneLookup.load(session)
    for row in rows:
        details = lookup.details(number(row))
        assert details.carrier == row[3], row
        if row[5] is not None:
            assert (details.timezones, details.tz_uncertain) == ((row[5],), False), row
        else:  # no single zone: the number stays uncertain over phonenumbers' candidates
            assert details.tz_uncertain and len(details.timezones) > 1, row
    assert lookup.details("+79030000001").region == "Москва"
    assert lookup.details("+79580000001").region == "Российская Федерация"

    # What had no zone is listed with its first line and why, federal ranges apart from unknown names.
    without = {entry["region"]: entry for entry in result["regions_without_zone"]}
    assert without["Российская Федерация"] == {"region": "Российская Федерация", "rows": 2, "first_line": 24,
                                               "reason": "country-wide"}
    assert without["Планета Марс"]["first_line"] == 31
    assert without["Планета Марс"]["reason"] == "not a recognised federal subject"
    assert without["Магаданская обл. и Чукотский АО"]["reason"] == "names subjects in different time zones"


async def test_reimport_replaces_registry_rows_and_keeps_the_users(app: FastAPI, admin: httpx.AsyncClient,
                                                                   tmp_path: Path) -> None:
    maker = app.state.sessionmaker
    await import_numbering(maker, registry(tmp_path, DEF_ROWS, name="DEF-2023.csv"))
    await import_numbering(maker, registry(tmp_path, ABC_ROWS, name="ABC-3xx.csv"))
    zone = (await admin.post("/api/time-zones", json={"name": "Омск", "tz": "Asia/Omsk"})).json()
    r = await admin.post("/api/phone-codes", json={"time_zone_id": zone["id"], "prefix": "+791200"})
    assert r.status_code == 201, r.text
    # A newer extract for 900 and 912 (912 now another carrier and region): codes it covers are replaced.
    newer = [("912", "0000000", "1999999", MTS, "Омская обл.", "Asia/Omsk"), DEF_ROWS[0]]
    result = await import_numbering(maker, registry(tmp_path, newer, name="DEF-2024.csv"))
    assert result["ranges"] == 2 and result["replaced"] == 2  # the old 900 and 912 rows
    rows = await registry_rows(app)
    assert [r for r in rows if r[0] == "+7912"] == [
        ("+7912", 791200000000000, 791219999999999, "Asia/Omsk", "Омская область", MTS, "registry")]
    assert sum(1 for r in rows if r[6] == "manual") == 1  # the user's prefix is untouched
    assert sum(1 for r in rows if r[0] == "+7411") == 1  # ABC rows are left alone
    assert sum(1 for r in rows if r[0] == "+7914") == 4  # so are the codes the newer file does not list
    found = (await admin.get("/api/phone-codes/lookup", params={"number": "+79120012345"})).json()
    assert (found["timezones"], found["source"]) == (["Asia/Omsk"], "manual")


async def test_a_users_zone_only_prefix_keeps_the_registrys_region_and_carrier(
        app: FastAPI, admin: httpx.AsyncClient, tmp_path: Path) -> None:
    await import_numbering(app.state.sessionmaker, registry(tmp_path, DEF_ROWS))
    zone = (await admin.post("/api/time-zones", json={"name": "Екб", "tz": "Asia/Omsk"})).json()
    await admin.post("/api/phone-codes", json={"time_zone_id": zone["id"], "prefix": "+791200"})
    found = (await admin.get("/api/phone-codes/lookup", params={"number": "+79120012345"})).json()
    assert found == {"number": "+79120012345", "timezones": ["Asia/Omsk"], "tz_uncertain": False,
                     "region": "Свердловская область", "carrier": MEGAFON, "source": "manual"}
    async with app.state.sessionmaker() as session:
        details = (await PhoneLookup.load(session)).details("+79120012345")
    assert (details.region, details.carrier, details.timezones) == ("Свердловская область", MEGAFON, ("Asia/Omsk",))
    # The country-wide range keeps its carrier and stays uncertain in the API too.
    found = (await admin.get("/api/phone-codes/lookup", params={"number": "+79580000001"})).json()
    assert found["tz_uncertain"] and found["carrier"] == T2 and found["region"] == "Российская Федерация"


BAD_FILES = {
    "from-after-to": ["912;2000000;1999999;1;ПАО \"МТС\";Омская обл.;7740000076"],
    "non-digit-bounds": ["912;20O0000;2999999;1000000;ПАО \"МТС\";Омская обл.;7740000076"],
    "capacity-mismatch": ["912;2000000;2999999;5;ПАО \"МТС\";Омская обл.;7740000076"],
    "overlap": ["912;1500000;2999999;1500000;ПАО \"МТС\";Омская обл.;7740000076"],
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
async def test_a_file_with_bad_rows_is_refused_and_changes_nothing(app: FastAPI, admin: httpx.AsyncClient,
                                                                  tmp_path: Path, case: str) -> None:
    await import_numbering(app.state.sessionmaker, registry(tmp_path, DEF_ROWS))
    before = await registry_rows(app)
    good = registry(tmp_path, [("912", "0000000", "1999999", MTS, "Омская обл.", None)], name="x.csv")
    path = tmp_path / f"{case}.csv"
    path.write_bytes(good.read_bytes() + ("\r\n".join(BAD_FILES[case]) + "\r\n").encode("cp1251"))

    with pytest.raises(RegistryRejected) as refused:
        await import_numbering(app.state.sessionmaker, path)
    assert refused.value.rejected == 1 and refused.value.errors[0].line == 3
    assert "line 3" in str(refused.value) and "nothing was changed" in str(refused.value)
    job = await upload(admin, path)
    assert job["status"] == "failed" and "line 3" in job["message"]
    assert job["message"].startswith(f"{case}.csv: 1 bad row")  # the uploaded name, not the spooled copy
    assert job["rejected"] == 1 and job["result"]["errors"][0]["line"] == 3
    assert await registry_rows(app) == before  # not even the good 912 row replaced the old one

    # Asked to (through the API), the good rows load and the bad one is reported.
    job = await upload(admin, path, skip_invalid=True)
    assert job["status"] == "finished" and (job["imported"], job["rejected"]) == (1, 1)
    assert job["result"]["errors"][0]["line"] == 3
    assert [r[3] for r in await registry_rows(app) if r[0] == "+7912"] == ["Asia/Omsk"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty file"), (b"PK\x03\x04zipzip", "ZIP/XLSX"),
     ("Телефон;ФИО\r\n+79120000000;Иванов\r\n".encode(), "not a numbering registry table"),
     ("АВС/ DEF;От;До;Емкость;Оператор;Регион\r\n".encode(), "no numbering ranges")],
    ids=["empty", "xlsx", "contacts-csv", "header-only"],
)
async def test_a_file_that_is_not_a_registry_changes_nothing(app: FastAPI, admin: httpx.AsyncClient,
                                                            tmp_path: Path, content: bytes, message: str) -> None:
    await import_numbering(app.state.sessionmaker, registry(tmp_path, DEF_ROWS))
    before = await registry_rows(app)
    path = tmp_path / "wrong.csv"
    path.write_bytes(content)
    with pytest.raises(RegistryFormatError, match=message):
        await import_numbering(app.state.sessionmaker, path)
    job = await upload(admin, path)
    assert job["status"] == "failed" and message in job["message"]
    assert await registry_rows(app) == before


async def test_the_code_table_shares_details_between_ranges(app: FastAPI, tmp_path: Path) -> None:
    # 2,000 ranges of one carrier and region: one CodeInfo object, not 2,000 (the whole registry fits in tens of MB).
    rows = [("912", f"{i * 1000:07d}", f"{i * 1000 + 999:07d}", MTS, "Омская обл.", "Asia/Omsk") for i in range(2000)]
    result = await import_numbering(app.state.sessionmaker, registry(tmp_path, rows))
    assert result["ranges"] == 2000
    async with app.state.sessionmaker() as session:
        table = await load_code_table(session)
        zones = (await session.execute(select(TimeZone.tz))).scalars().all()
    assert len(table) == 2000 and zones.count("Asia/Omsk") == 1
    infos = {id(table.lookup(number_key(f"+7912{i * 1000 + 500:07d}"))) for i in range(2000)}
    assert len(infos) == 1
