"""Files sent to the API and files sent back: spooling an upload to disk, naming a download."""

from __future__ import annotations

import asyncio
import re
import shutil
import uuid
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from fastapi import UploadFile


async def save_upload(upload: UploadFile, folder: Path) -> Path:
    """Copy an upload into ``folder`` under a fresh name (keeping its extension); the caller deletes it."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    suffix = Path(upload.filename or "").suffix[:10]
    path = folder / f"{uuid.uuid4().hex}{suffix}"

    def copy() -> None:
        with path.open("wb") as out:
            shutil.copyfileobj(upload.file, out, 1024 * 1024)

    await asyncio.to_thread(copy)
    return path


def download_name(title: str, extension: str, *, fallback: str) -> str:
    """"Должники март" → "Должники_март-20261207-1015.csv": a file name from a title and the time."""
    safe = re.sub(r"[^\w.-]+", "_", title, flags=re.UNICODE).strip("_") or fallback
    return f"{safe}-{datetime.now().strftime('%Y%m%d-%H%M')}.{extension}"


def attachment(name: str, extension: str) -> dict[str, str]:
    """The Content-Disposition header of a download named ``name`` (UTF-8, with an ASCII fallback)."""
    return {"Content-Disposition": f"attachment; filename=\"export.{extension}\"; filename*=UTF-8''{quote(name)}"}
