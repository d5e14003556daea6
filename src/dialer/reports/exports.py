"""Reports and the call list as files: CSV (UTF-8 with a BOM, ``;``, what Russian Excel opens by double-click),
XLSX (openpyxl write-only: typed cells, frozen header, totals row, column widths) and PDF (fpdf2: A4, the charts
rendered from the page's own Vega-Lite specifications by vl-convert, DejaVu fonts embedded for Cyrillic).

The call list can be millions of rows: it is read from a server-side cursor batch by batch and written as it comes
(CSV chunk by chunk; XLSX row by row into a temporary file, then streamed), so memory does not grow with it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dialer.exceptions import DialerError
from dialer.export import BOM, MEDIA_TYPES
from dialer.reports.charts import Chart
from dialer.reports.tables import Column, Table, hms

MEDIA = {**MEDIA_TYPES, "pdf": "application/pdf"}
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class FontMissing(DialerError):
    status = 503
    title = "PDF fonts missing"
    type_slug = "pdf-fonts-missing"


def _text_cell(value: str) -> str:
    """Text a spreadsheet would run as a formula is quoted (CSV has no cell types)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def plain(value: Any, kind: str, tz: ZoneInfo, lang: str) -> str:
    """A value as text: CSV cells and PDF tables (decimal comma in Russian, times in the centre's zone)."""
    if value is None:
        return ""
    if kind == "ms":
        return hms(int(value))
    if kind == "datetime" and isinstance(value, datetime):
        return value.astimezone(tz).strftime("%d.%m.%Y %H:%M:%S" if lang == "ru" else "%Y-%m-%d %H:%M:%S")
    if kind == "date" and isinstance(value, date):
        return value.strftime("%d.%m.%Y") if lang == "ru" else value.isoformat()
    if kind == "bool":
        return ("да" if value else "нет") if lang == "ru" else ("yes" if value else "no")
    if kind == "pct" or isinstance(value, float):
        text = f"{float(value):.2f}"
        return text.replace(".", ",") if lang == "ru" else text
    return str(value)


def labelled(totals: Sequence[Any], label: str) -> list[Any]:
    """The totals row with its label in the first cell (which no column sums)."""
    out = list(totals)
    if out and out[0] is None:
        out[0] = label
    return out


# --- CSV ------------------------------------------------------------------------------------------------------

def tables_csv(tables: Sequence[Table], tz: ZoneInfo, lang: str, total_label: str) -> bytes:
    """Every table of the report one under another, each with its title and header, totals last."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    for n, table in enumerate(tables):
        if n:
            writer.writerow([])
        if len(tables) > 1:
            writer.writerow([table.title])
        writer.writerow([c.label for c in table.columns])
        for row in table.rows:
            writer.writerow([_text_cell(plain(v, c.kind, tz, lang)) if c.kind == "text" else plain(v, c.kind, tz, lang)
                             for v, c in zip(row, table.columns, strict=True)])
        if table.totals:
            writer.writerow([str(v) if i == 0 and isinstance(v, str) else plain(v, c.kind, tz, lang)
                             for i, (v, c) in enumerate(zip(labelled(table.totals, total_label), table.columns,
                                                            strict=True))])
    return BOM + buffer.getvalue().encode("utf-8")


async def rows_csv(columns: Sequence[Column], parts: AsyncIterable[Sequence[Sequence[Any]]], tz: ZoneInfo,
                   lang: str) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow([c.label for c in columns])
    yield BOM + buffer.getvalue().encode("utf-8")
    async for part in parts:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([_text_cell(plain(v, c.kind, tz, lang)) if c.kind == "text" else plain(v, c.kind, tz, lang)
                          for v, c in zip(row, columns, strict=True)] for row in part)
        yield buffer.getvalue().encode("utf-8")


# --- XLSX -----------------------------------------------------------------------------------------------------

WIDTHS = {"int": 11, "pct": 11, "ms": 11, "date": 12, "datetime": 19, "bool": 9}
FORMATS = {"pct": "0.00", "ms": "[h]:mm:ss", "date": "DD.MM.YYYY", "datetime": "DD.MM.YYYY HH:MM:SS"}


class _Sheet:
    """One write-only sheet: header frozen and bold, widths by column kind, typed cells."""

    def __init__(self, workbook: Any, title: str, columns: Sequence[Column], tz: ZoneInfo) -> None:
        from openpyxl.utils import get_column_letter

        self.sheet = workbook.create_sheet(_sheet_title(title, workbook))
        self.columns, self.tz = list(columns), tz
        self.sheet.freeze_panes = "A2"
        for i, c in enumerate(self.columns, 1):
            width = WIDTHS.get(c.kind) or min(40, max(12, len(c.label) + 2))
            self.sheet.column_dimensions[get_column_letter(i)].width = max(width, min(30, len(c.label) + 2))
        self.append([c.label for c in self.columns], bold=True, raw=True)

    def cell(self, value: Any, column: Column, bold: bool) -> Any:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
        from openpyxl.styles import Font

        kind = column.kind
        if value is None:
            out: Any = None
        elif kind == "ms":
            out = int(value) / 86_400_000  # an Excel time: a fraction of a day
        elif kind == "datetime" and isinstance(value, datetime):
            out = value.astimezone(self.tz).replace(tzinfo=None)  # Excel has no zones: the centre's local time
        elif kind == "text":
            out = ILLEGAL_CHARACTERS_RE.sub("", str(value))[:32767]
        else:
            out = value
        cell = WriteOnlyCell(self.sheet, value=out)
        if kind == "text" and isinstance(out, str):
            cell.data_type = "s"  # text is text, never a formula
        if kind in FORMATS:
            cell.number_format = FORMATS[kind]
        if bold:
            cell.font = Font(bold=True)
        return cell

    def append(self, row: Sequence[Any], *, bold: bool = False, raw: bool = False) -> None:
        if raw:
            from openpyxl.cell import WriteOnlyCell
            from openpyxl.styles import Font

            cells = []
            for v in row:
                c = WriteOnlyCell(self.sheet, value=v)
                c.font = Font(bold=True)
                cells.append(c)
            self.sheet.append(cells)
            return
        self.sheet.append([self.cell(v, c, bold) for v, c in zip(row, self.columns, strict=True)])


def _sheet_title(title: str, workbook: Any) -> str:
    base = "".join(ch for ch in title if ch not in "[]:*?/\\")[:28] or "Sheet"
    names = set(workbook.sheetnames)
    name, n = base, 2
    while name in names:
        name, n = f"{base[:25]} {n}", n + 1
    return name


def tables_xlsx(tables: Sequence[Table], tz: ZoneInfo, total_label: str) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    for table in tables:
        sheet = _Sheet(workbook, table.title, table.columns, tz)
        for row in table.rows:
            sheet.append(row)
        if table.totals:
            totals = labelled(table.totals, total_label)
            if isinstance(totals[0], str) and table.columns[0].kind != "text":
                sheet.columns[0] = Column(key="label", label="", kind="text")
            sheet.append(totals, bold=True)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def rows_xlsx(title: str, columns: Sequence[Column], parts: AsyncIterable[Sequence[Sequence[Any]]],
                    tz: ZoneInfo, total_label: str) -> AsyncIterator[bytes]:
    """A streamed sheet; the totals row counts the rows (and sums the durations)."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = _Sheet(workbook, title, columns, tz)
    count = 0
    sums = [0] * len(columns)

    def append(part: Sequence[Sequence[Any]]) -> None:
        nonlocal count
        for row in part:
            sheet.append(row)
            count += 1
            for i, c in enumerate(columns):
                if c.kind == "ms" and row[i] is not None:
                    sums[i] += int(row[i])

    fd, name = tempfile.mkstemp(suffix=".xlsx")
    os.close(fd)
    path = Path(name)
    try:
        async for part in parts:
            await asyncio.to_thread(append, part)
        totals: list[Any] = [count, total_label, *[None] * (len(columns) - 2)]
        for i, c in enumerate(columns):
            if c.kind == "ms":
                totals[i] = sums[i]
        sheet.columns[1] = Column(key="label", label="", kind="text")
        sheet.columns[0] = Column(key="count", label="", kind="int")
        await asyncio.to_thread(sheet.append, totals, bold=True)
        await asyncio.to_thread(workbook.save, path)
        with await asyncio.to_thread(path.open, "rb") as f:
            while chunk := await asyncio.to_thread(f.read, 256 * 1024):
                yield chunk
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)


# --- PDF ------------------------------------------------------------------------------------------------------

def _font(name: str) -> Path:
    for folder in FONT_DIRS:
        if (folder / name).is_file():
            return folder / name
    raise FontMissing(f"{name} not found in {', '.join(map(str, FONT_DIRS))}: install fonts-dejavu-core")


def chart_png(chart: Chart) -> bytes:
    import vl_convert

    return bytes(vl_convert.vegalite_to_png(chart.spec, scale=2))


def report_pdf(title: str, subtitle: str, tables: Sequence[Table], charts: Sequence[Chart], tz: ZoneInfo,
               lang: str, generated: str, total_label: str) -> bytes:
    """A4 pages: the title and filter, the charts, then the tables (a wide one on a landscape page)."""
    from fpdf import FPDF
    from fpdf.enums import PageOrientation
    from fpdf.fonts import FontFace

    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_font("DejaVu", "", str(_font("DejaVuSans.ttf")))
    pdf.add_font("DejaVu", "B", str(_font("DejaVuSans-Bold.ttf")))
    pdf.set_title(title)
    pdf.set_creator("Dialer")
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 15)
    pdf.cell(0, 9, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    pdf.cell(0, 5, subtitle, new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 5, generated, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    for chart in charts:
        png = chart_png(chart)
        pdf.set_font("DejaVu", "B", 10)
        if pdf.get_y() > 200:
            pdf.add_page()
        pdf.cell(0, 6, chart.title, new_x="LMARGIN", new_y="NEXT")
        pdf.image(io.BytesIO(png), w=pdf.epw)
        pdf.ln(3)
    for table in tables:
        orientation = "L" if len(table.columns) > 8 else "P"
        if pdf.cur_orientation is not PageOrientation.coerce(orientation) or pdf.get_y() > pdf.eph * 0.7:
            pdf.add_page(orientation=orientation)
        else:
            pdf.ln(4)
        wide = orientation == "L"
        pdf.set_font("DejaVu", "B", 11)
        pdf.cell(0, 7, table.title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 6.5 if wide else 8)
        aligns = tuple("LEFT" if c.kind in ("text", "date", "datetime") else "RIGHT" for c in table.columns)
        bold = FontFace(emphasis="BOLD")
        with pdf.table(text_align=aligns, headings_style=bold, line_height=pdf.font_size * 1.6,
                       first_row_as_headings=True, repeat_headings=1) as grid:
            grid.row([c.label for c in table.columns])
            for row in table.rows:
                grid.row([plain(v, c.kind, tz, lang) for v, c in zip(row, table.columns, strict=True)])
            if table.totals:
                totals = labelled(table.totals, total_label)
                grid.row([v if i == 0 and isinstance(v, str) else plain(v, c.kind, tz, lang)
                          for i, (v, c) in enumerate(zip(totals, table.columns, strict=True))], style=bold)
    return bytes(pdf.output())
