"""Hostile uploads through the import wizard, the import job and DNC files (DIALER_UPLOAD_* limits), and the
clean-up of uploads a killed process left spooled."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from dialer.audit.recorder import Actor
from dialer.config import Settings
from dialer.contact import importer, lifecycle
from dialer.contact.importer import ImportOptions, run_import
from dialer.models import Contact, ImportJob
from dialer.uploads import process_started, remove_stale_uploads
from tests.contact.conftest import standard_list, wait_import
from tests.test_tabular import MB, SHEET_HEAD, SHEET_TAIL, RssPeak, hostile_xlsx, inline_row, repeated


def cell_bomb(folder: Path) -> bytes:
    """~600 KB on disk, a 600 MB cell unpacked (the review's file: 3.1 GB RSS in the preview, 5.4 GB in the job)."""
    sheet = [SHEET_HEAD, inline_row(1, "Телефон", "ФИО"),
             b'<row r="2"><c r="A2" t="inlineStr"><is><t>79001112233</t></is></c>'
             b'<c r="B2" t="inlineStr"><is><t>', *repeated(b"A", 600 * MB), b"</t></is></c></row>", SHEET_TAIL]
    return hostile_xlsx(folder / "bomb.xlsx", sheet).read_bytes()


async def test_import_preview_and_start_refuse_a_zip_bomb_with_bounded_memory(
        admin: httpx.AsyncClient, tmp_path: Path) -> None:
    lst, _ = await standard_list(admin)
    bomb = cell_bomb(tmp_path)
    with RssPeak() as memory:
        r = await admin.post(f"/api/lists/{lst['id']}/imports/preview", files={"file": ("bomb.xlsx", bomb)})
    assert r.status_code == 422, r.text
    reason = r.json()["errors"][0]
    assert reason["field"] == "file" and "DIALER_UPLOAD_MAX_CELL_CHARS" in reason["reason"]
    assert "The sheet 'Sheet' of 'bomb.xlsx', after row 1" in reason["reason"]
    with RssPeak() as start:
        r = await admin.post(f"/api/lists/{lst['id']}/imports", files={"file": ("bomb.xlsx", bomb)})
    assert r.status_code == 422 and "DIALER_UPLOAD_MAX_CELL_CHARS" in r.text
    assert memory.growth_mb < 200 and start.growth_mb < 200
    assert (await admin.get(f"/api/lists/{lst['id']}/imports")).json()["total"] == 0


async def test_import_job_fails_with_the_limit_and_keeps_only_committed_batches(
        app: FastAPI, admin: httpx.AsyncClient, tmp_path: Path) -> None:
    lst, _ = await standard_list(admin)
    path = tmp_path / "many.csv"
    path.write_text("ФИО;Телефон\n" + "".join(f"Имя {n};+7900{n:07d}\n" for n in range(1000)), encoding="utf-8")
    settings: Settings = app.state.settings.model_copy(update={"upload_max_rows": 350})
    result = await run_import(app.state.sessionmaker, path, settings=settings, list_id=lst["id"],
                              options=ImportOptions(), actor=Actor(None, "test"), batch_rows=100)
    assert result.status.value == "failed"
    assert result.message.startswith("'many.csv' has more than 350 rows (the limit, DIALER_UPLOAD_MAX_ROWS; ")
    assert "stopped at row 351" in result.message
    # Batches of 100 rows committed before the limit was met stay (an import keeps what it committed); the
    # batch being read when it was met is not written.
    assert result.imported == 300
    job = (await admin.get(f"/api/imports/{result.job_id}")).json()
    assert job["status"] == "failed" and job["imported"] == 300 and job["message"] == result.message
    async with app.state.sessionmaker() as session:
        assert len((await session.scalars(select(Contact.id).where(Contact.list_id == lst["id"]))).all()) == 300


async def test_api_import_job_names_the_limit_met_mid_file(app: FastAPI, admin: httpx.AsyncClient) -> None:
    lst, _ = await standard_list(admin)
    long = "Ж" * 40_000
    content = ("ФИО;Телефон\n" + "".join(f"Имя {n};+7900{n:07d}\n" for n in range(500)) + f"{long};+79009999999\n")
    r = await admin.post(f"/api/lists/{lst['id']}/imports", files={"file": ("long.csv", content.encode())})
    assert r.status_code == 202, r.text
    job = await wait_import(admin, r.json()["id"])
    assert job["status"] == "failed"
    assert job["message"].startswith("'long.csv': the cell in row 502, column 1 (A) holds 40,000 characters; a cell "
                                     "may hold at most 32,767 (the limit, DIALER_UPLOAD_MAX_CELL_CHARS)")
    assert "TableError" not in job["message"]


async def test_dnc_upload_refuses_a_zip_bomb_and_a_limit_mid_file(admin: httpx.AsyncClient, tmp_path: Path) -> None:
    r = await admin.post("/api/dnc-lists", json={"name": "Отказники"})
    assert r.status_code == 201, r.text
    url = f"/api/dnc-lists/{r.json()['id']}/entries/upload"
    bomb = cell_bomb(tmp_path)
    with RssPeak() as memory:
        r = await admin.post(url, files={"file": ("bomb.xlsx", bomb)})
    assert r.status_code == 422 and "DIALER_UPLOAD_MAX_CELL_CHARS" in r.text, r.text
    assert memory.growth_mb < 200
    numbers = "номер\n" + "".join(f"+7900{n:07d}\n" for n in range(400)) + "7" * 40_000 + "\n"
    r = await admin.post(url, files={"file": ("numbers.csv", numbers.encode())})
    assert r.status_code == 422, r.text  # was a 500: the error met in the middle of the file was not caught
    assert "'numbers.csv': the cell in row 402, column 1 (A) holds 40,000 characters" in r.json()["errors"][0]["reason"]


# --- spooled uploads left behind ------------------------------------------------------------------------------


def spool(folder: Path, name: str, *, age_s: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"phone\n79001112233\n")
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_remove_stale_uploads_keeps_new_and_named_files(tmp_path: Path) -> None:
    started = time.time() - 60
    orphan = spool(tmp_path, "a.csv", age_s=3600)
    named = spool(tmp_path, "b.csv", age_s=3600)
    fresh = spool(tmp_path, "c.xlsx", age_s=0)  # spooled by a process that started after this one
    (tmp_path / "sub").mkdir()
    assert remove_stale_uploads(tmp_path, keep={"b.csv"}, started=started) == [orphan]
    assert not orphan.exists() and named.exists() and fresh.exists() and (tmp_path / "sub").is_dir()
    assert remove_stale_uploads(tmp_path / "missing") == []
    assert process_started() <= time.time()


async def test_upload_of_an_import_killed_midway_is_deleted_at_start(app: FastAPI, settings: Settings) -> None:
    # What a SIGKILL in the middle of an import leaves: a job still "running" and its spooled upload.
    folder = settings.import_dir / "uploads"
    killed = spool(folder, "0123abcd.csv", age_s=3600)
    leftover = spool(folder, "4567ef.xlsx", age_s=3600)  # a preview or DNC upload cut off the same way
    async with app.state.sessionmaker() as session, session.begin():
        session.add(ImportJob(filename="a.csv", status="running", options={importer.SPOOL_OPTION: killed.name}))
    await lifecycle.on_startup(app.state.engine, app.state.sessionmaker, settings)
    await lifecycle.on_shutdown(grace_s=30)
    assert not killed.exists() and not leftover.exists()
    async with app.state.sessionmaker() as session:
        assert (await session.scalars(select(ImportJob.status))).all() == ["failed"]


async def test_uploads_another_process_still_uses_are_kept(app: FastAPI, settings: Settings) -> None:
    folder = settings.import_dir / "uploads"
    queued = spool(folder, "queued.csv", age_s=3600)  # queued by another API process before this one started
    done = spool(folder, "done.csv", age_s=3600)
    in_flight = spool(folder, "in-flight.csv", age_s=0)  # being spooled by another process right now
    async with app.state.sessionmaker() as session, session.begin():
        session.add_all([ImportJob(filename="q.csv", status="queued", options={importer.SPOOL_OPTION: queued.name}),
                         ImportJob(filename="d.csv", status="failed", options={importer.SPOOL_OPTION: done.name})])
    removed = await importer.remove_stale_uploads(app.state.sessionmaker, settings, started=time.time() - 60)
    assert removed == [done]
    assert queued.exists() and in_flight.exists()


async def test_api_import_job_names_its_spooled_upload(app: FastAPI, admin: httpx.AsyncClient,
                                                       settings: Settings) -> None:
    lst, _ = await standard_list(admin)
    r = await admin.post(f"/api/lists/{lst['id']}/imports",
                         files={"file": ("a.csv", "ФИО;Телефон\nАнна;+79001112233\n".encode())})
    assert r.status_code == 202, r.text
    name = r.json()["options"][importer.SPOOL_OPTION]
    assert name.endswith(".csv") and "/" not in name
    job = await wait_import(admin, r.json()["id"])
    assert job["status"] == "finished"
    assert not (settings.import_dir / "uploads" / name).exists()
