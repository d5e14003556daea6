"""The import benchmark: a generated file through the real import path, against a raw COPY of it.

:func:`bench_import` writes a CSV of N contacts the way Russian users send them (``;``, UTF-8
with BOM, "Фамилия Имя Отчество", a city, an amount with a decimal comma, a dd.mm.yyyy date and a
phone in one of many written forms; about 1% invalid numbers and 2% repeated ones), imports it
with :func:`dialer.contact.importer.run_import` into a fresh list whose fields have their
expression indexes, and then times ``COPY`` of the same file into a plain table of text columns
— the ceiling for getting these bytes into PostgreSQL. ``ratio`` = import speed / COPY speed.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import random
import time
from pathlib import Path
from typing import Any

from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncEngine

from dialer.config import Settings
from dialer.contact import repository as repo
from dialer.contact.importer import BATCH_ROWS, WRITERS, ImportOptions, run_import
from dialer.contact.indexes import drop_field_indexes, ensure_field_indexes
from dialer.db import make_sessionmaker
from dialer.models import ContactList, Field, ImportJob, ListField
from dialer.models.enums import FieldType, PhoneType
from dialer.tools.bench.common import bench_database, peak_rss_mb, run_tag, work_dir

log = logging.getLogger(__name__)

HEADERS = ("ФИО", "Город", "Сумма", "Дата договора", "Телефон")
_SURNAMES = ("Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов", "Новиков",
             "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров", "Павлов", "Козлов")
_NAMES = ("Александр", "Сергей", "Дмитрий", "Андрей", "Алексей", "Максим", "Евгений", "Иван", "Михаил", "Артём")
_PATRONYMICS = ("Александрович", "Сергеевич", "Дмитриевич", "Андреевич", "Иванович", "Михайлович", "Петрович")
_CITIES = ("Москва", "Санкт-Петербург", "Новосибирск", "Екатеринбург", "Казань", "Нижний Новгород", "Челябинск",
           "Самара", "Омск", "Ростов-на-Дону", "Уфа", "Красноярск", "Воронеж", "Пермь", "Волгоград", "Владивосток")
_CODES = ("900", "902", "903", "905", "906", "909", "912", "915", "916", "917", "919", "921", "926", "929", "950",
          "951", "952", "953", "960", "961", "977", "980", "982", "985", "987", "999", "495", "499", "812", "343",
          "383", "843", "846", "861", "863")
_INVALID = ("12345", "8 (912) 345-67", "нет", "+7 (000) 000-00-00", "8 912 345 67 89 00", "тел. уточнить")


def _phone(rng: random.Random) -> str:
    code = rng.choice(_CODES)
    n = f"{rng.randrange(10_000_000):07d}"
    form = rng.randrange(8)
    if form == 0:
        return f"8 ({code}) {n[:3]}-{n[3:5]}-{n[5:]}"
    if form == 1:
        return f"+7 {code} {n[:3]} {n[3:5]} {n[5:]}"
    if form == 2:
        return f"8{code}{n}"
    if form == 3:
        return f"+7({code}){n[:3]}-{n[3:5]}-{n[5:]}"
    if form == 4:
        return f"{code}{n}"
    if form == 5:
        return f"8-{code}-{n[:3]}-{n[3:5]}-{n[5:]}"
    if form == 6:
        return f"7{code}{n}"
    return f"+7 ({code}) {n[:3]}-{n[3:]}"


def generate_csv(path: Path, rows: int, *, seed: int = 1) -> None:
    """Write the benchmark file: ``rows`` data rows, ~1% invalid phones, ~2% repeated phones."""
    rng = random.Random(seed)
    recent: list[str] = []
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f, delimiter=";", lineterminator="\r\n")
        writer.writerow(HEADERS)
        for _ in range(rows):
            roll = rng.random()
            if roll < 0.01:
                phone = rng.choice(_INVALID)
            elif roll < 0.03 and recent:
                phone = rng.choice(recent)
            else:
                phone = _phone(rng)
                if len(recent) < 1000:
                    recent.append(phone)
                else:
                    recent[rng.randrange(1000)] = phone
            amount = f"{rng.randrange(100, 500_000)},{rng.randrange(100):02d}"
            day = f"{rng.randrange(1, 29):02d}.{rng.randrange(1, 13):02d}.{rng.randrange(2015, 2025)}"
            name = f"{rng.choice(_SURNAMES)} {rng.choice(_NAMES)} {rng.choice(_PATRONYMICS)}"
            writer.writerow((name, rng.choice(_CITIES), amount, day, phone))


async def _raw_copy(engine: AsyncEngine, path: Path, table: str) -> float:
    """Seconds to COPY the file into a plain table of text columns (created and dropped here)."""
    columns = ", ".join(f"c{i} text" for i in range(len(HEADERS)))
    async with engine.connect() as conn:
        await conn.execute(text(f"CREATE TABLE {table} ({columns})"))
        await conn.commit()
        try:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            started = time.perf_counter()
            await driver.copy_to_table(table, source=str(path), format="csv", header=True, delimiter=";",
                                       encoding="UTF8")
            return time.perf_counter() - started
        finally:
            await conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
            await conn.commit()


async def _dump(conn: Any, query: str) -> list[bytes]:
    """The lines of ``COPY (query) TO STDOUT`` in text format."""
    sink = io.BytesIO()

    async def write(chunk: bytes) -> None:
        sink.write(chunk)

    await conn.copy_from_query(query, output=write, format="text")
    return sink.getvalue().splitlines(keepends=True)


async def _table_copy(engine: AsyncEngine, list_id: int, copy_list: int, job_id: int, phone_field: int) -> float:
    """Seconds to COPY the rows the import wrote into ``contacts`` and ``contact_phones`` again.

    The rows go in as a second list (fresh ids, dumped before the clock starts), in batches of
    :data:`BATCH_ROWS` contacts with their phones sorted by number, over :data:`WRITERS`
    connections, each batch set up by :func:`.repository.start_import_batch` like the import's.
    ``copy_list`` is an empty list for the copies; the caller deletes it.
    """
    async with engine.connect() as conn:
        try:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            bounds = (await conn.execute(text(
                "SELECT min(c.id), max(c.id), min(p.id), max(p.id) FROM contacts c "
                "LEFT JOIN contact_phones p ON p.contact_id = c.id WHERE c.list_id = :l"), {"l": list_id})).one()
            if bounds[0] is None:
                return 0.0
            # Reserve as many fresh ids as the import used, so the copies do not clash with anything.
            shift = (await conn.execute(text(
                "SELECT setval(pg_get_serial_sequence('contacts', 'id'), "
                "  nextval(pg_get_serial_sequence('contacts', 'id')) + :n) - :n - :lo + 1, "
                "setval(pg_get_serial_sequence('contact_phones', 'id'), "
                "  nextval(pg_get_serial_sequence('contact_phones', 'id')) + :pn) - :pn - :plo + 1"),
                {"n": bounds[1] - bounds[0] + 1, "lo": bounds[0], "pn": (bounds[3] or 0) - (bounds[2] or 0) + 1,
                 "plo": bounds[2] or 0})).one()
            await conn.commit()
            columns = ", ".join(repo.CONTACT_COLUMNS[2:])
            contacts = await _dump(driver, f"SELECT id + {int(shift[0])}, {int(copy_list)}, {columns} FROM contacts "
                                           f"WHERE list_id = {int(list_id)} ORDER BY id")
            columns = ", ".join(repo.PHONE_COLUMNS[3:])
            phones = await _dump(driver, f"SELECT contact_id + {int(shift[0])}, e164, id + {int(shift[1])}, "
                                         f"contact_id + {int(shift[0])}, {int(copy_list)}, {columns} "
                                         f"FROM contact_phones WHERE list_id = {int(list_id)} ORDER BY contact_id, id")
            await conn.commit()
        except BaseException:
            await conn.rollback()
            raise
    # Batches as the import makes them: contacts in id order, each with its phones sorted by number.
    batches: list[tuple[bytes, bytes]] = []
    at = 0
    for start in range(0, len(contacts), BATCH_ROWS):
        chunk = contacts[start:start + BATCH_ROWS]
        last = int(chunk[-1].split(b"\t", 1)[0])
        mine: list[tuple[bytes, bytes]] = []
        while at < len(phones):
            owner, number, line = phones[at].split(b"\t", 2)
            if int(owner) > last:
                break
            mine.append((number, line))
            at += 1
        mine.sort()
        batches.append((b"".join(chunk), b"".join(line for _, line in mine)))
    del contacts, phones

    async def writer(queue: asyncio.Queue[tuple[bytes, bytes]]) -> None:
        async with engine.connect() as conn:
            while not queue.empty():
                contacts_text, phones_text = queue.get_nowait()
                async with conn.begin():
                    await repo.start_import_batch(conn, 0, 0, list_id=copy_list, job_id=job_id,
                                                  phone_fields=[phone_field])
                    await repo.copy_text(conn, "contacts", repo.CONTACT_COLUMNS, contacts_text)
                    await repo.copy_text(conn, "contact_phones", repo.PHONE_COLUMNS, phones_text)

    queue: asyncio.Queue[tuple[bytes, bytes]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    started = time.perf_counter()
    await asyncio.gather(*(writer(queue) for _ in range(WRITERS)))
    return time.perf_counter() - started


async def _clean_up(engine: AsyncEngine, list_ids: list[int], job_id: int | None, field_ids: list[int],
                   errors_file: str | None) -> None:
    """Delete what a run created: its lists (contacts and phones go with them), job, fields and their indexes."""
    maker = make_sessionmaker(engine)
    async with maker() as session, session.begin():
        if list_ids:
            await session.execute(delete(ContactList).where(ContactList.id.in_(list_ids)))
        if job_id is not None:
            await session.execute(delete(ImportJob).where(ImportJob.id == job_id))
        if field_ids:
            await session.execute(delete(Field).where(Field.id.in_(field_ids)))
    for fid in field_ids:
        await drop_field_indexes(engine, fid)
    if errors_file:
        await asyncio.to_thread(Path(errors_file).unlink, missing_ok=True)


async def bench_import(rows: int, *, database_url: str | None = None, engine: AsyncEngine | None = None,
                       settings: Settings | None = None, workdir: Path | None = None, keep: bool = False,
                       seed: int = 1) -> dict[str, Any]:
    """Run the benchmark; returns rows, seconds, rows_per_s, copy_rows_per_s, ratio, peak_rss_mb and the counts."""
    async with bench_database(pool_size=2, settings=settings, database_url=database_url, engine=engine) as db, \
            work_dir("dialer-bench-", workdir, keep=keep) as folder:
        maker = db.maker
        stamp = run_tag("_")
        path = folder / f"bench-{rows}.csv"
        list_ids: list[int] = []
        field_ids: dict[str, int] = {}
        job_id: int | None = None
        errors_file: str | None = None
        try:
            await asyncio.to_thread(generate_csv, path, rows, seed=seed)
            types = {"ФИО": FieldType.string, "Город": FieldType.string, "Сумма": FieldType.decimal,
                     "Дата договора": FieldType.date, "Телефон": FieldType.phone}
            async with maker() as session, session.begin():
                fields = [Field(name=f"{h} (bench {stamp})", type=t, description="", options=[],
                                phone_type=PhoneType.mobile if t == FieldType.phone else None)
                          for h, t in types.items()]
                session.add_all(fields)
                lst = ContactList(name=f"bench {stamp}", description="dialer bench import")
                session.add(lst)
                await session.flush()
                session.add_all([ListField(list_id=lst.id, field_id=f.id, position=i) for i, f in enumerate(fields)])
                field_ids = {h: f.id for h, f in zip(types, fields, strict=True)}
                list_id = lst.id
            list_ids.append(list_id)
            for h, fid in field_ids.items():
                await ensure_field_indexes(db.engine, fid, types[h])

            started = time.perf_counter()
            result = await run_import(maker, path, settings=db.settings, list_id=list_id,
                                      options=ImportOptions(mapping={h: str(fid) for h, fid in field_ids.items()}))
            seconds = time.perf_counter() - started
            job_id, errors_file = result.job_id, result.errors_file
            peak = peak_rss_mb()  # before the baselines
            copy_seconds = await _raw_copy(db.engine, path, f"bench_copy_{stamp}")
            async with maker() as session, session.begin():
                copy_list = ContactList(name=f"bench {stamp} table copy", description="dialer bench import: table COPY")
                session.add(copy_list)
            list_ids.append(copy_list.id)
            table_seconds = await _table_copy(db.engine, list_id, copy_list.id, result.job_id, field_ids["Телефон"])
            rows_per_s = rows / seconds
            copy_rows_per_s = rows / copy_seconds
            return {"rows": rows, "seconds": round(seconds, 3), "rows_per_s": round(rows_per_s),
                    "copy_seconds": round(copy_seconds, 3), "copy_rows_per_s": round(copy_rows_per_s),
                    "ratio": round(rows_per_s / copy_rows_per_s, 4), "peak_rss_mb": peak,
                    "table_copy_seconds": round(table_seconds, 3),
                    "ratio_to_table_copy": round(table_seconds / seconds, 4),
                    "imported": result.imported, "rejected": result.rejected, "duplicates": result.duplicates,
                    "status": result.status.value}
        finally:
            # Also after a failure: a list, fields and their indexes left behind would slow every later import.
            if not keep:
                try:
                    await _clean_up(db.engine, list_ids, job_id, list(field_ids.values()), errors_file)
                except Exception:  # the run's own error, if any, is the one to see
                    log.exception("the import benchmark could not delete lists %s and fields %s", list_ids,
                                  field_ids)
                await asyncio.to_thread(path.unlink, missing_ok=True)
