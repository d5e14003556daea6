"""A numbering-registry upload meets the limits of contact imports, and its spooled file is named by its job."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from dialer.models import ImportJob, PhoneCode
from tests.timezone.test_numbering import upload
from tests.timezone.test_numbering_registry_files import DEF_ROWS, registry


async def test_more_rows_than_the_upload_limit_refuse_the_file(app: FastAPI, admin: httpx.AsyncClient,
                                                              tmp_path: Path) -> None:
    app.state.settings = app.state.settings.model_copy(update={"upload_max_rows": 2})
    job = await upload(admin, registry(tmp_path, DEF_ROWS[:3]))
    assert job["status"] == "failed", job
    assert "more than 2 rows" in job["message"] and "nothing was changed" in job["message"]
    async with app.state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(PhoneCode)) == 0
        options = (await session.get(ImportJob, job["id"])).options  # type: ignore[union-attr]
    assert options["upload"] == f"numbering-{job['id']}.csv"
    spool = app.state.settings.import_dir / "uploads" / options["upload"]
    assert not spool.exists()  # the job deleted its spooled copy when it ended

    app.state.settings = app.state.settings.model_copy(update={"upload_max_rows": 3})
    job = await upload(admin, registry(tmp_path, DEF_ROWS[:3], name="DEF-ok.csv"))
    assert job["status"] == "finished" and job["imported"] == 3, job


async def test_a_file_larger_than_the_upload_size_is_refused(app: FastAPI, admin: httpx.AsyncClient,
                                                            tmp_path: Path) -> None:
    path = registry(tmp_path, DEF_ROWS)
    app.state.settings = app.state.settings.model_copy(update={"upload_max_unpacked_mb": 0})
    job = await upload(admin, path)
    assert job["status"] == "failed" and "DIALER_UPLOAD_MAX_UNPACKED_MB" in job["message"], job
