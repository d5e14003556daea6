from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from dialer.config import Settings
from dialer.db import asyncpg_dsn
from dialer.tools.bench import imports as bench
from dialer.tools.bench.imports import bench_import


async def _left_behind(db_url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        return {
            "lists": await conn.fetchval("SELECT count(*) FROM contact_lists"),
            "contacts": await conn.fetchval("SELECT count(*) FROM contacts"),
            "phones": await conn.fetchval("SELECT count(*) FROM contact_phones"),
            "fields": await conn.fetchval("SELECT count(*) FROM fields WHERE name LIKE '%(bench %'"),
            "indexes": await conn.fetchval("SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'ix_contacts_f%'"),
            "tables": await conn.fetchval("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'bench_copy_%'"),
        }
    finally:
        await conn.close()


async def test_bench_import_small(db_url: str, tmp_path: Path) -> None:
    out = await bench_import(500, database_url=db_url, settings=Settings(data_dir=tmp_path), workdir=tmp_path)
    assert out["status"] == "finished" and out["rows"] == 500
    assert out["imported"] + out["rejected"] + out["duplicates"] == 500
    assert out["rejected"] > 0 and out["duplicates"] > 0 and out["imported"] > 450
    assert out["rows_per_s"] > 0 and out["copy_rows_per_s"] > 0 and out["ratio"] > 0
    assert out["peak_rss_mb"] > 0
    # The second baseline copied the imported rows into the real tables (and took them out again).
    assert out["table_copy_seconds"] > 0 and out["ratio_to_table_copy"] > 0
    assert not await asyncio.to_thread(lambda: list(tmp_path.glob("bench-*.csv")))
    assert await _left_behind(db_url) == {"lists": 0, "contacts": 0, "phones": 0, "fields": 0, "indexes": 0,
                                          "tables": 0}


async def test_bench_import_cleans_up_after_a_failure(db_url: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: Any, **kwargs: Any) -> float:
        raise RuntimeError("the baseline broke")

    monkeypatch.setattr(bench, "_table_copy", broken)
    with pytest.raises(RuntimeError, match="the baseline broke"):
        await bench_import(300, database_url=db_url, settings=Settings(data_dir=tmp_path), workdir=tmp_path)
    # The imported list, its fields and their indexes are gone: they would slow every later import.
    assert await _left_behind(db_url) == {"lists": 0, "contacts": 0, "phones": 0, "fields": 0, "indexes": 0,
                                          "tables": 0}
