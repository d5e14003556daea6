from __future__ import annotations

import asyncio
from pathlib import Path

from dialer.config import Settings
from dialer.contact.bench import bench_import


async def test_bench_import_small(db_url: str, tmp_path: Path) -> None:
    out = await bench_import(500, database_url=db_url, settings=Settings(data_dir=tmp_path), workdir=tmp_path)
    assert out["status"] == "finished" and out["rows"] == 500
    assert out["imported"] + out["rejected"] + out["duplicates"] == 500
    assert out["rejected"] > 0 and out["duplicates"] > 0 and out["imported"] > 450
    assert out["rows_per_s"] > 0 and out["copy_rows_per_s"] > 0 and out["ratio"] > 0
    assert out["peak_rss_mb"] > 0
    assert not await asyncio.to_thread(lambda: list(tmp_path.glob("bench-*.csv")))
