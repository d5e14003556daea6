from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from dialer.models import PhoneCode, TimeZone
from dialer.timezone.service import import_numbering

HEADER = "АВС/ DEF;От;До;Емкость;Оператор;Регион;ИНН"
ROWS = [
    "912;0000000;1999999;2000000;ПАО \"МегаФон\";Свердловская обл.;7812014560",
    "912;2000000;2999999;1000000;ПАО \"МТС\";р-н Кочубеевский|Ставропольский край;7740000076",
    "913;9000000;9499999;500000;ПАО \"Вымпел-Коммуникации\";г. Новосибирск|Новосибирская обл.;7713076301",
    "914;abc;9499999;500000;ПАО \"МТС\";Приморский край;7740000076",
]


def registry_file(tmp_path: Path, rows: list[str], name: str = "DEF-9xx.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(("\r\n".join([HEADER, *rows]) + "\r\n").encode("cp1251"))
    return path


async def upload(admin: httpx.AsyncClient, path: Path, *, skip_invalid: bool = False) -> dict[str, Any]:
    """Upload a registry file through the API and wait for its job to end."""
    with path.open("rb") as f:
        r = await admin.post("/api/phone-codes/import-numbering", files={"file": (path.name, f, "text/csv")},
                             data={"skip_invalid": "true" if skip_invalid else "false"})
    assert r.status_code == 202, r.text
    job: dict[str, Any] = r.json()
    for _ in range(200):
        job = (await admin.get(f"/api/phone-codes/import-numbering/{job['id']}")).json()
        if job["status"] in ("finished", "failed"):
            break
        await asyncio.sleep(0.05)
    return job


async def test_registry_import_gives_zone_region_and_carrier(app: FastAPI, admin: httpx.AsyncClient,
                                                             tmp_path: Path) -> None:
    job = await upload(admin, registry_file(tmp_path, ROWS[:3]))
    assert job["status"] == "finished", job
    assert job["imported"] == 3 and job["rejected"] == 0

    found = (await admin.get("/api/phone-codes/lookup", params={"number": "8 912 100-20-30"})).json()
    assert found == {"number": "+79121002030", "timezones": ["Asia/Yekaterinburg"], "tz_uncertain": False,
                     "region": "Свердловская область", "carrier": 'ПАО "МегаФон"', "source": "registry"}
    found = (await admin.get("/api/phone-codes/lookup", params={"number": "+79122345678"})).json()
    assert found["timezones"] == ["Europe/Moscow"] and found["region"] == "Ставропольский край"
    found = (await admin.get("/api/phone-codes/lookup", params={"number": "+79139100000"})).json()
    assert found["timezones"] == ["Asia/Novosibirsk"]
    zones = (await admin.get("/api/time-zones", params={"q": "Asia/"})).json()["items"]
    assert {"Asia/Yekaterinburg", "Asia/Novosibirsk"} <= {z["tz"] for z in zones}

    # A user's own prefix wins over the registry.
    zone = next(z for z in zones if z["tz"] == "Asia/Novosibirsk")
    await admin.post("/api/phone-codes", json={"time_zone_id": zone["id"], "prefix": "+791210"})
    found = (await admin.get("/api/phone-codes/lookup", params={"number": "+79121002030"})).json()
    assert found["timezones"] == ["Asia/Novosibirsk"] and found["source"] == "manual"


async def test_reimport_replaces_the_codes_it_covers_and_keeps_user_rows(app: FastAPI, tmp_path: Path) -> None:
    maker = app.state.sessionmaker
    first = await import_numbering(maker, registry_file(tmp_path, ROWS[:3]))
    assert first["ranges"] == 3
    async with maker() as session, session.begin():
        zone = TimeZone(name="Мой", tz="Asia/Omsk")
        session.add(zone)
        await session.flush()
        session.add(PhoneCode(time_zone_id=zone.id, prefix="+7912", range_from=791200000000000,
                              range_to=791299999999999, source="manual"))
    again = await import_numbering(maker, registry_file(tmp_path, ROWS[:1], "DEF-912.csv"))
    assert again["ranges"] == 1
    async with maker() as session:
        counts = dict((await session.execute(
            select(PhoneCode.source, func.count()).group_by(PhoneCode.source))).all())
    # 912 was replaced by the one new range; 913 stays; the user's row stays.
    assert counts == {"registry": 2, "manual": 1}


def test_cli_import_numbering_json(tmp_path: Path, db_url: str, monkeypatch: object) -> None:
    from typer.testing import CliRunner

    from dialer.cli import app as cli_app
    from dialer.config import get_settings

    mp = monkeypatch  # type: ignore[assignment]
    mp.setenv("DIALER_DATABASE_URL", db_url)  # type: ignore[attr-defined]
    mp.setenv("DIALER_DATA_DIR", str(tmp_path))  # type: ignore[attr-defined]
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli_app, ["import-numbering", str(registry_file(tmp_path, ROWS[:3])), "--json"])
        refused = CliRunner().invoke(cli_app, ["import-numbering", str(registry_file(tmp_path, ROWS, "bad.csv"))])
        skipped = CliRunner().invoke(cli_app, ["import-numbering", str(registry_file(tmp_path, ROWS, "bad.csv")),
                                               "--skip-invalid", "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["ranges"] == 3 and out["rejected"] == 0
    # A file with a bad row is refused with its line named, and the exit code says so.
    assert refused.exit_code == 2, refused.output
    assert "line 5" in refused.output and "nothing was changed" in " ".join(refused.output.split())
    # Asked to, it loads the good rows and reports the bad one.
    assert skipped.exit_code == 0, skipped.output
    out = json.loads(skipped.stdout.strip().splitlines()[-1])
    assert out["ranges"] == 3 and out["rejected"] == 1 and out["errors"][0]["line"] == 5


async def test_registry_job_says_how_far_it_got(app: FastAPI, admin: httpx.AsyncClient, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from dialer.timezone import endpoints, service

    monkeypatch.setattr(service, "BATCH", 200)
    monkeypatch.setattr(endpoints, "PROGRESS_INTERVAL_S", 0.01)
    rows = [f"912;{i * 100:07d};{i * 100 + 99:07d};100;ПАО \"МТС\";Свердловская обл.;7740000076" for i in range(20_000)]
    path = registry_file(tmp_path, rows)
    with path.open("rb") as f:
        job = (await admin.post("/api/phone-codes/import-numbering", files={"file": (path.name, f, "text/csv")})).json()
    seen: list[tuple[int, int]] = []
    for _ in range(2000):
        job = (await admin.get(f"/api/phone-codes/import-numbering/{job['id']}")).json()
        if job["status"] in ("finished", "failed"):
            break
        seen.append((job["rows_done"], job["rows_total"]))
        await asyncio.sleep(0.005)
    assert job["status"] == "finished", job
    assert job["rows_done"] == job["rows_total"] == job["imported"] == 20_000
    # While running, the job counted rows read and estimated the whole from the share of the file read.
    running = [(done, total) for done, total in seen if done]
    assert running, seen
    assert all(0 < done <= total for done, total in running)
    assert any(total > 10_000 for _, total in running)
