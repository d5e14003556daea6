from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from dialer.config import Settings, get_settings
from dialer.contact import cli
from dialer.contact.cli import import_file, parse_mapping

CONTENT = ("ФИО;Телефон;Город;Заметка\n"
           "Иванов Иван;8 (912) 345-67-89;Москва;\n"
           "Петров Пётр;+7 912 345-67-90;Казань;VIP\n"
           "Дубль;89123456789;Москва;\n"
           "Ошибка;123;Омск;\n")


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "клиенты.csv"
    path.write_bytes(CONTENT.encode("cp1251"))
    return path


async def test_import_file_creates_the_list_from_the_header(db_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=db_url, data_dir=tmp_path / "data")
    result = await import_file(_file(tmp_path), list_name="Новая база", mapping={"Заметка": None},
                               tags=["cli"], settings=settings)
    assert {k: result[k] for k in ("imported", "rejected", "duplicates", "dnc_filtered", "status")} == {
        "imported": 2, "rejected": 1, "duplicates": 1, "dnc_filtered": 0, "status": "finished"}
    assert result["errors_file"] and result["list_id"]
    assert "row;column;value;reason" in await asyncio.to_thread(Path(result["errors_file"]).read_text, "utf-8-sig")
    assert isinstance(result["seconds"], float)

    from sqlalchemy import select, text

    from dialer.db import make_engine
    from dialer.models import Field

    engine = make_engine(db_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            fields = {f.name: f.type for f in (await conn.execute(select(Field))).all()}
            indexes = set((await conn.execute(text(
                "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_contacts_f%'"))).scalars())
    finally:
        await engine.dispose()
    assert fields == {"ФИО": "string", "Телефон": "phone", "Город": "string"}
    # Built once the rows were in; the phone field has none (numbers are found through contact_phones).
    assert len(indexes) == 2

    again = await import_file(_file(tmp_path), list_name="Новая база", settings=settings)
    assert (again["imported"], again["duplicates"], again["list_id"]) == (0, 3, result["list_id"])


def test_parse_mapping() -> None:
    assert parse_mapping(["Тел = Телефон", "Примечание="]) == {"Тел": "Телефон", "Примечание": None}
    with pytest.raises(typer.BadParameter):
        parse_mapping(["Телефон"])


def test_json_output_of_the_command(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALER_DATABASE_URL", db_url)
    monkeypatch.setenv("DIALER_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    app = typer.Typer()
    app.command("other")(lambda: None)  # with one command only, typer would take "import" for an argument
    cli.register(app)
    try:
        result = CliRunner().invoke(app, ["import", str(_file(tmp_path)), "--list", "База", "--tag", "a",
                                          "--map", "Заметка=", "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {"imported", "rejected", "duplicates", "dnc_filtered", "errors_file", "list_id", "seconds"} <= set(out)
    assert (out["imported"], out["rejected"], out["duplicates"]) == (2, 1, 1)

    missing = CliRunner().invoke(app, ["import", str(tmp_path / "nope.csv"), "--list", "База"])
    assert missing.exit_code != 0


def test_cli_smoke_in_a_subprocess(db_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "DIALER_DATABASE_URL": db_url, "DIALER_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-m", "dialer.cli", "import", str(_file(tmp_path)), "--list", "Смоук",
                           "--skip-dnc", "--country", "RU", "--json"],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["imported"] == 2 and out["list_id"]
