"""Tables streamed out as CSV or XLSX files, the way Russian Excel opens them.

CSV: UTF-8 with a BOM and ``;`` between cells (what Excel expects by double-click in a Russian
locale), written chunk by chunk as the rows come. XLSX: openpyxl's write-only workbook in a
temporary file (a workbook is a ZIP, finished only at the end), then streamed; text is always a
text cell (never a formula), characters XLSX cannot hold are dropped and over-long texts cut. Either way memory
does not grow with the number of rows. The web layer wraps the chunks in a streaming response.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Literal

ExportFormat = Literal["csv", "xlsx"]
MEDIA_TYPES: dict[str, str] = {"csv": "text/csv; charset=utf-8",
                               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
BOM = b"\xef\xbb\xbf"
#: Characters an Excel cell holds; longer texts are cut (with an ellipsis).
XLSX_CELL_LIMIT = 32767


async def csv_chunks(headers: Sequence[str], parts: AsyncIterable[Sequence[Sequence[Any]]]) -> AsyncIterator[bytes]:
    """The CSV file: the header line with the BOM first, then one chunk per part of rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(headers)
    yield BOM + buffer.getvalue().encode("utf-8")
    async for part in parts:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(part)
        yield buffer.getvalue().encode("utf-8")


async def xlsx_chunks(sheet_name: str, headers: Sequence[str],
                      parts: AsyncIterable[Sequence[Sequence[Any]]]) -> AsyncIterator[bytes]:
    """The XLSX file with one sheet, in chunks of 256 KiB once all rows are written."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_name)

    def cell(value: Any) -> Any:
        """Text as text: without this openpyxl writes "=..." as a formula (Excel would run it) and
        refuses control characters, which XLSX cannot hold, ending the download half-way."""
        if not isinstance(value, str):
            return value
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
        if len(value) > XLSX_CELL_LIMIT:
            value = value[:XLSX_CELL_LIMIT - 1] + "…"
        if value.startswith("="):
            text = WriteOnlyCell(sheet, value=value)
            text.data_type = "s"
            return text
        return value

    def append(rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            sheet.append([cell(v) for v in row])

    append([headers])

    fd, name = tempfile.mkstemp(suffix=".xlsx")
    os.close(fd)
    path = Path(name)
    try:
        async for part in parts:
            await asyncio.to_thread(append, part)
        await asyncio.to_thread(workbook.save, path)
        with await asyncio.to_thread(path.open, "rb") as f:
            while chunk := await asyncio.to_thread(f.read, 256 * 1024):
                yield chunk
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)


def chunks(fmt: ExportFormat, sheet_name: str, headers: Sequence[str],
           parts: AsyncIterable[Sequence[Sequence[Any]]]) -> AsyncIterator[bytes]:
    """The file in ``fmt``."""
    return csv_chunks(headers, parts) if fmt == "csv" else xlsx_chunks(sheet_name, headers, parts)
