from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from dialer.audit.recorder import Actor
from dialer.contact import importer
from dialer.contact.importer import ImportOptions, run_import
from dialer.contact.phonelookup import PhoneLookup
from dialer.exceptions import ValidationFailed
from dialer.models import AuditEntry, Contact, DncEntry, DncList, ImportJob
from tests.contact.conftest import make_field, make_list, standard_list, wait_import

RUSSIAN_EXCEL = (
    "ФИО;Телефон;Сумма;Дата\r\n"
    "Иванов Иван Иванович;8 (912) 345-67-89;1 234,56;01.03.2024\r\n"
    "Петрова Анна;+7 912 345 67 90;100;15.12.2023\r\n"
    "Сидоров;8-495-123-45-67;0,5;\r\n"
)


async def upload(client: httpx.AsyncClient, list_id: int, name: str, content: bytes, **form: Any) -> httpx.Response:
    return await client.post(f"/api/lists/{list_id}/imports", files={"file": (name, content)},
                             data={k: v for k, v in form.items() if v is not None})


async def contacts_of(client: httpx.AsyncClient, list_id: int, **params: Any) -> list[dict[str, Any]]:
    r = await client.get(f"/api/lists/{list_id}/contacts", params={"per_page": 1000, "sort": "id", **params})
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def test_russian_excel_cp1251_semicolon(app: FastAPI, admin: httpx.AsyncClient) -> None:
    lst, _ = await standard_list(admin)
    r = await upload(admin, lst["id"], "клиенты.csv", RUSSIAN_EXCEL.encode("cp1251"), tags="весна, вебинар")
    assert r.status_code == 202, r.text
    job = await wait_import(admin, r.json()["id"])
    assert job["status"] == "finished", job
    assert (job["rows_total"], job["rows_done"], job["imported"], job["rejected"]) == (3, 3, 3, 0)
    assert job["tags"] == ["весна", "вебинар"] and job["filename"] == "клиенты.csv" and job["errors_url"] is None
    items = await contacts_of(admin, lst["id"])
    assert [c["values"] for c in items] == [
        {"ФИО": "Иванов Иван Иванович", "Телефон": "+79123456789", "Сумма": 1234.56, "Дата": "2024-03-01"},
        {"ФИО": "Петрова Анна", "Телефон": "+79123456790", "Сумма": 100, "Дата": "2023-12-15"},
        {"ФИО": "Сидоров", "Телефон": "+74951234567", "Сумма": 0.5},
    ]
    first = items[0]
    assert first["tags"] == ["весна", "вебинар"] and first["import_job_id"] == job["id"]
    assert first["phones"][0]["raw"] == "8 (912) 345-67-89" and first["phones"][0]["type"] == "mobile"
    assert first["phones"][0]["tz_uncertain"] is True
    assert items[2]["phones"][0]["timezones"] == ["Europe/Moscow"]
    # Sorted numerically on the imported decimal field.
    assert [c["values"]["ФИО"] for c in await contacts_of(admin, lst["id"], sort="-Сумма")] == [
        "Иванов Иван Иванович", "Петрова Анна", "Сидоров"]
    async with app.state.sessionmaker() as session:
        entry = (await session.scalars(select(AuditEntry).where(AuditEntry.event == "contacts imported"))).one()
    assert entry.changes["imported"]["new"] == 3 and entry.changes["file"]["new"] == "клиенты.csv"
    assert entry.changes["tags"]["new"] == ["весна", "вебинар"] and entry.user_login == "admin"


async def test_utf8_bom_comma_with_english_headers(admin: httpx.AsyncClient) -> None:
    lst, _ = await standard_list(admin)
    content = "\ufeffName,Phone,Amount,Comment\r\nJohn Smith,+44 20 7946 0958,\"1,234.50\",hello\r\n"
    r = await admin.post(f"/api/lists/{lst['id']}/imports/preview",
                         files={"file": ("export.csv", content.encode("utf-8"))})
    assert r.status_code == 200, r.text
    preview = r.json()
    assert (preview["format"], preview["encoding"], preview["delimiter"]) == ("csv", "utf-8-sig", ",")
    assert {h: (m or {}).get("name") for h, m in preview["mapping"].items()} == {
        "Name": "ФИО", "Phone": "Телефон", "Amount": "Сумма", "Comment": None}
    assert preview["rows"] == [["John Smith", "+44 20 7946 0958", "1,234.50", "hello"]]
    job = await wait_import(admin, (await upload(admin, lst["id"], "export.csv", content.encode())).json()["id"])
    assert job["imported"] == 1, job
    (c,) = await contacts_of(admin, lst["id"])
    assert c["values"] == {"ФИО": "John Smith", "Телефон": "+442079460958", "Сумма": 1234.5}
    assert c["phones"][0]["timezones"] == ["Europe/London"]


async def test_xlsx_with_float_phones_and_explicit_mapping(admin: httpx.AsyncClient, tmp_path: Path) -> None:
    lst, _ = await standard_list(admin)
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["Клиент", "Моб.", "Раб.", "Долг", "Когда"])
    ws.append(["Иванов", 79123456789.0, 84951234567, 1500.5, datetime(2024, 3, 1)])
    ws.append(["Петров", 9123456780, None, 7, datetime(2024, 3, 2)])
    buf = io.BytesIO()
    wb.save(buf)
    r = await upload(admin, lst["id"], "база.xlsx", buf.getvalue(),
                     mapping='{"Раб.": "Рабочий телефон", "Когда": "Дата", "Долг": "Сумма"}', country="RU")
    assert r.status_code == 202, r.text
    job = await wait_import(admin, r.json()["id"])
    assert job["imported"] == 2 and job["options"]["mapping"]["Раб."] == "Рабочий телефон", job
    first, second = await contacts_of(admin, lst["id"])
    assert first["values"] == {"ФИО": "Иванов", "Телефон": "+79123456789", "Рабочий телефон": "+74951234567",
                               "Сумма": 1500.5, "Дата": "2024-03-01"}
    assert [(p["number"], p["type"]) for p in first["phones"]] == [("+79123456789", "mobile"),
                                                                   ("+74951234567", "work")]
    assert second["values"]["Телефон"] == "+79123456780" and second["values"]["Сумма"] == 7


async def test_bad_rows_are_reported_in_a_downloadable_csv(admin: httpx.AsyncClient) -> None:
    lst, _ = await standard_list(admin)
    content = ("ФИО;Телефон;Сумма;Дата\n"
               "Хороший;89123456789;10;01.01.2024\n"
               "Без номера;;5;\n"
               "Плохой номер;12345;5;\n"
               "Плохая сумма;89123456700;много;32.01.2024\n"
               "Хороший 2;89123456701;;\n")
    job = await wait_import(admin, (await upload(admin, lst["id"], "f.csv", content.encode())).json()["id"])
    assert (job["imported"], job["rejected"], job["rows_done"]) == (2, 3, 5), job
    assert job["errors_url"] == f"/api/imports/{job['id']}/errors"
    r = await admin.get(job["errors_url"])
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["row", "column", "value", "reason"]
    problems = {(int(row), column, value): reason for row, column, value, reason in rows[1:]}
    assert set(problems) == {(3, "Телефон", ""), (4, "Телефон", "12345"),
                             (5, "Сумма", "много"), (5, "Дата", "32.01.2024")}
    assert problems[(3, "Телефон", "")] == "no phone number"
    assert "not a valid phone number" in problems[(4, "Телефон", "12345")]
    assert "expected a number" in problems[(5, "Сумма", "много")]
    assert "does not exist" in problems[(5, "Дата", "32.01.2024")]


async def test_duplicates_and_dnc_are_counted(app: FastAPI, admin: httpx.AsyncClient) -> None:
    lst, _ = await standard_list(admin)
    r = await admin.post(f"/api/lists/{lst['id']}/contacts", json={"values": {"Телефон": "+79120000001"}})
    assert r.status_code == 201
    async with app.state.sessionmaker() as session, session.begin():
        blacklist = (await session.scalars(select(DncList).where(DncList.is_global))).one()
        own = DncList(name="Отказники")
        session.add(own)
        await session.flush()
        session.add_all([DncEntry(list_id=blacklist.id, number="+79120000002"),
                         DncEntry(list_id=blacklist.id, number="+7800", is_prefix=True),
                         DncEntry(list_id=own.id, number="+79120000003")])
        own_id = own.id
    content = ("ФИО;Телефон\n"
               "уже в списке;8 912 000-00-01\n"
               "в черном списке;8 912 000-00-02\n"
               "префикс;8 800 555-35-35\n"
               "в своем DNC;8 912 000-00-03\n"
               "новый;8 912 000-00-04\n"
               "повтор в файле;+79120000004\n")
    job = await wait_import(admin, (await upload(admin, lst["id"], "a.csv", content.encode(), skip_dnc="true",
                                                 dnc_list_id=str(own_id))).json()["id"])
    assert (job["imported"], job["duplicates"], job["dnc_filtered"], job["rejected"]) == (1, 2, 3, 0), job
    # Without the DNC option the blacklisted numbers come in; duplicates can be allowed.
    job = await wait_import(admin, (await upload(admin, lst["id"], "a.csv", content.encode(),
                                                 allow_duplicates="true")).json()["id"])
    assert (job["imported"], job["duplicates"], job["dnc_filtered"]) == (6, 0, 0), job
    assert len(await contacts_of(admin, lst["id"], phone="+79120000004")) == 3


async def test_not_a_table_is_refused_and_nothing_changes(app: FastAPI, admin: httpx.AsyncClient) -> None:
    lst, _ = await standard_list(admin)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    r = await upload(admin, lst["id"], "photo.csv", png)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"
    assert "PNG" in r.json()["detail"]
    r = await upload(admin, lst["id"], "empty.csv", b"")
    assert r.status_code == 422
    r = await upload(admin, lst["id"], "x.csv", "ФИО;Улица\nИванов;Тверская\n".encode())
    assert r.status_code == 422 and "phone" in r.json()["detail"]
    r = await upload(admin, lst["id"], "x.csv", RUSSIAN_EXCEL.encode(), country="XX")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "country"
    r = await upload(admin, lst["id"], "x.csv", RUSSIAN_EXCEL.encode(), mapping='{"Нет такой": "ФИО"}')
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "mapping.Нет такой"
    async with app.state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(ImportJob)) == 0
        assert await session.scalar(select(func.count()).select_from(Contact)) == 0
    uploads = app.state.settings.import_dir / "uploads"
    assert not list(uploads.iterdir())


async def test_import_stopped_halfway_keeps_committed_batches(app: FastAPI, admin: httpx.AsyncClient,
                                                              monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lst, _ = await standard_list(admin)
    path = tmp_path / "big.csv"
    path.write_text("ФИО;Телефон\n" + "".join(f"Клиент {i};+7912000{i:04d}\n" for i in range(10)))
    calls = 0
    original = importer._write_batch

    async def flaky(*args: Any, **kw: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise ConnectionError("database went away")
        await original(*args, **kw)

    monkeypatch.setattr(importer, "_write_batch", flaky)
    result = await run_import(app.state.sessionmaker, path, settings=app.state.settings, list_id=lst["id"],
                              actor=Actor(None, "tester"), batch_rows=4)
    assert result.status == "failed" and "database went away" in result.message
    assert result.imported == 8 and result.rows == 8
    assert len(await contacts_of(admin, lst["id"])) == 8
    job = (await admin.get(f"/api/imports/{result.job_id}")).json()
    assert job["status"] == "failed" and "database went away" in job["message"] and job["imported"] == 8

    with pytest.raises(ValidationFailed):
        await run_import(app.state.sessionmaker, tmp_path / "big.csv", settings=app.state.settings,
                         list_id=lst["id"], options=ImportOptions(mapping={"ФИО": "Нет поля"}))


async def test_required_field_without_column_and_list_jobs(admin: httpx.AsyncClient) -> None:
    name = await make_field(admin, "Имя")
    phone = await make_field(admin, "Телефон", "phone")
    lst = await make_list(admin, "Строгий", [name, phone], required=("Имя",))
    r = await upload(admin, lst["id"], "x.csv", "Телефон\n89123456789\n".encode())
    assert r.status_code == 422 and "Имя" in r.json()["detail"]
    job = await wait_import(admin, (await upload(admin, lst["id"], "x.csv", "Имя;Телефон\n;89123456789\n".encode())
                                    ).json()["id"])
    assert job["rejected"] == 1
    r = await admin.get(f"/api/lists/{lst['id']}/imports")
    assert r.status_code == 200 and [j["id"] for j in r.json()["items"]] == [job["id"]]


async def test_unfinished_jobs_are_marked_failed_at_start(app: FastAPI) -> None:
    async with app.state.sessionmaker() as session, session.begin():
        session.add_all([ImportJob(filename="a.csv", status="running"), ImportJob(filename="b.csv", status="finished")])
    assert await importer.fail_interrupted_imports(app.state.sessionmaker) == 1
    async with app.state.sessionmaker() as session:
        jobs = {j.filename: j for j in (await session.scalars(select(ImportJob))).all()}
    assert jobs["a.csv"].status == "failed" and "interrupted" in jobs["a.csv"].message
    assert jobs["b.csv"].status == "finished"


async def test_lifecycle_hooks(app: FastAPI, admin: httpx.AsyncClient) -> None:
    from dialer.contact import lifecycle
    from dialer.core.tasks import background as tasks

    city = await make_field(admin, "Город")
    await tasks.wait_idle()
    async with app.state.sessionmaker() as session, session.begin():
        session.add(ImportJob(filename="a.csv", status="queued"))
    async with app.state.engine.connect() as raw:
        conn = await raw.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql(f"DROP INDEX ix_contacts_f{city['id']}")
    await lifecycle.on_startup(app.state.engine, app.state.sessionmaker)
    await lifecycle.on_shutdown(grace_s=30)
    async with app.state.engine.connect() as conn:
        names = (await conn.exec_driver_sql("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_contacts_f%'")
                 ).scalars().all()
    assert names == [f"ix_contacts_f{city['id']}"]
    async with app.state.sessionmaker() as session:
        assert (await session.scalars(select(ImportJob.status))).all() == ["failed"]


TRICKY = [
    ("Back\\slash \\N \\t", 'Кавычки "внутри"', "8\t(912) 345-67-01"),
    ("Перенос\nстроки", "Таб\tвнутри", "+7 912 345 67 02"),
    ("\\", "{a,b}", "89123456703"),
]


def _tricky_csv() -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\r\n")
    writer.writerow(["ФИО", "Город", "Телефон"])
    writer.writerows(TRICKY)
    return buf.getvalue().encode()


@pytest.mark.parametrize("replace_row_checks", [True, False])
async def test_text_survives_the_copy_format(admin: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
                                             replace_row_checks: bool) -> None:
    monkeypatch.setattr(importer, "REPLACE_ROW_CHECKS", replace_row_checks)
    fio, city, phone = (await make_field(admin, "ФИО"), await make_field(admin, "Город"),
                        await make_field(admin, "Телефон", "phone"))
    lst = await make_list(admin, "Странные", [fio, city, phone])
    tags = 'a"b, c\\d, {x}'
    job = await wait_import(admin, (await upload(admin, lst["id"], "t.csv", _tricky_csv(), tags=tags)).json()["id"])
    assert (job["imported"], job["rejected"]) == (3, 0), job
    items = await contacts_of(admin, lst["id"])
    assert [(c["values"]["ФИО"], c["values"]["Город"], c["phones"][0]["raw"]) for c in items] == TRICKY
    assert [c["values"]["Телефон"] for c in items] == ["+79123456701", "+79123456702", "+79123456703"]
    assert items[0]["tags"] == ['a"b', "c\\d", "{x}"]
    for contact in items:
        stored = contact["phones"][0]
        info = PhoneLookup().details(stored["number"])
        assert (stored["region"], stored["carrier"], tuple(stored["timezones"]), stored["tz_uncertain"]) == (
            info.region, info.carrier, info.timezones, info.tz_uncertain)


async def test_row_checks_are_replaced_only_when_nothing_else_fires(app: FastAPI, admin: httpx.AsyncClient) -> None:
    from sqlalchemy import text

    from dialer.contact import repository as repo

    async def replaceable() -> bool:
        async with app.state.sessionmaker() as session:
            return await repo.import_checks_replaceable(session)

    assert await replaceable()  # the schema as migrated (a superuser here)
    async with app.state.engine.begin() as conn:
        # A foreign key on a column the import leaves NULL has nothing to check; with a default it has.
        await conn.execute(text("CREATE TABLE extra_ref (id bigint PRIMARY KEY)"))
        await conn.execute(text("INSERT INTO extra_ref VALUES (1)"))
        await conn.execute(text("ALTER TABLE contacts ADD COLUMN extra_id bigint REFERENCES extra_ref"))
    assert await replaceable()
    async with app.state.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE contacts ALTER COLUMN extra_id SET DEFAULT 1"))
    assert not await replaceable()
    async with app.state.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE contacts DROP COLUMN extra_id"))
    assert await replaceable()
    async with app.state.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE inserted_log (contact_id bigint)"))
        await conn.execute(text(
            "CREATE FUNCTION log_insert() RETURNS trigger LANGUAGE plpgsql AS "
            "$$BEGIN INSERT INTO inserted_log VALUES (NEW.id); RETURN NEW; END$$"))
        await conn.execute(text("CREATE TRIGGER contacts_logged AFTER INSERT ON contacts "
                                "FOR EACH ROW EXECUTE FUNCTION log_insert()"))
    assert not await replaceable()
    lst, _ = await standard_list(admin)
    job = await wait_import(admin, (await upload(admin, lst["id"], "x.csv", RUSSIAN_EXCEL.encode())).json()["id"])
    assert job["imported"] == 3
    async with app.state.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM inserted_log")) == 3  # the trigger ran for each row


async def test_a_batch_whose_list_is_gone_writes_nothing(app: FastAPI) -> None:
    async with app.state.sessionmaker() as session, session.begin():
        job = ImportJob(filename="a.csv", status="running")
        session.add(job)
        await session.flush()
        job_id = job.id
    batch = importer.Batch([f"\t999999\t{{}}\t{{}}\t{job_id}\n"], [], importer.ImportProgress(1, 1, 1, 0, 0, 0),
                           last=True)
    async with app.state.engine.connect() as conn:
        with pytest.raises(importer.Conflict, match="deleted during the import"):
            await importer._write_batch(conn, 999999, job_id, batch, phone_fields=[])
    async with app.state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Contact)) == 0
        assert (await session.get(ImportJob, job_id)).rows_done == 0  # type: ignore[union-attr]
