"""Files sent to the API and files sent back: spooling an upload to disk, naming a download.

A spooled upload is deleted by whoever spooled it once done with it (the request, or the import job
it was handed to). One left behind by a process that was killed is deleted by
:func:`remove_stale_uploads` when a process starts.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import uuid
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from fastapi import UploadFile

log = logging.getLogger(__name__)


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


def process_started() -> float:
    """When this process started, in seconds since the epoch."""
    import psutil

    return psutil.Process().create_time()


def remove_stale_uploads(folder: Path, *, keep: Collection[str] = (), started: float | None = None) -> list[Path]:
    """Delete the spooled uploads in ``folder`` no one can still be using; returns what was deleted.

    Another process (a second API process, ``dialer run`` next to ``dialer engine``) may share the
    data directory, so only files last written before this process started (``started``, default
    :func:`process_started`) go, and none named in ``keep`` (those of import jobs still queued or
    running). Blocking: call it in a thread.
    """
    cutoff = process_started() if started is None else started
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return removed
    for path in entries:
        try:
            if path.name in keep or not path.is_file() or path.stat().st_mtime >= cutoff:
                continue
            path.unlink()
        except FileNotFoundError:  # its owner deleted it meanwhile
            continue
        except OSError as err:
            log.warning("could not delete the stale upload %s: %s", path, err)
            continue
        removed.append(path)
    if removed:
        log.info("deleted %d upload(s) left behind in %s by a stopped process", len(removed), folder)
    return removed


def download_name(title: str, extension: str, *, fallback: str) -> str:
    """"Должники март" → "Должники_март-20261207-1015.csv": a file name from a title and the time."""
    safe = re.sub(r"[^\w.-]+", "_", title, flags=re.UNICODE).strip("_") or fallback
    return f"{safe}-{datetime.now().strftime('%Y%m%d-%H%M')}.{extension}"


def attachment(name: str, extension: str) -> dict[str, str]:
    """The Content-Disposition header of a download named ``name`` (UTF-8, with an ASCII fallback)."""
    return {"Content-Disposition": f"attachment; filename=\"export.{extension}\"; filename*=UTF-8''{quote(name)}"}
