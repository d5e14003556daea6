"""Streaming readers for the tables people upload: CSV exports and XLSX workbooks.

The contact importer feeds whatever a user uploads into :func:`open_table`. Real uploads are
messy: Russian Excel writes Windows-1251 with ``;`` separators and decimal commas, "Unicode
text" exports are UTF-16 with tabs, phone numbers arrive as floats from XLSX, and people rename
images to ``.csv``. This module hides all of that behind one small interface::

    with open_table(path, filename="clients.csv") as table:
        table.headers          # ["ФИО", "Телефон", ...] (unique, never empty)
        for row_number, cells in table.rows():
            ...                # cells: list[str], one per header (maybe more, never fewer)

Everything that can be decided about the file is decided in :func:`open_table`, so a file that
is not a table raises :class:`NotATableError` before a single row is produced. Reading is
streaming: memory does not grow with the number of rows of a CSV file.
"""

import codecs
import csv
import io
import re
import warnings
import weakref
import zipfile
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Self

__all__ = [
    "NotATableError",
    "Table",
    "TableError",
    "TableFormat",
    "open_table",
]

TableFormat = Literal["csv", "xlsx"]

# Enough to see the encoding and a few hundred records; small enough to be free.
_SAMPLE_BYTES = 64 * 1024
# Records used to pick the delimiter and to decide which edge columns are padding.
_SAMPLE_RECORDS = 200
# Title lines above the header of a report that are skipped at most.
_PREAMBLE_ROWS = 10
# XLSX rows read under one warnings filter (see _xlsx_records).
_XLSX_CHUNK = 512
# Chunk size for the cheap scan that looks for the first non-ASCII byte.
_SCAN_CHUNK = 1024 * 1024

# Order matters only to break exact ties; a tab is almost never part of a value.
_DELIMITERS = ("\t", ";", ",", "|")

# Single-column files are parsed with a separator that cannot occur in text (control
# characters make the file count as binary), so quoting still works.
_NO_DELIMITER = "\x01"

_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
_OLE2_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x7fELF", "an executable"),
)

# Control characters never occur in a genuine CSV export; tab, CR and LF are structure.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]")
_NON_ASCII_BYTE = re.compile(rb"[\x80-\xff]")
# Excel understands (and sometimes writes) a first line "sep=;" naming the delimiter.
_SEP_HINT = re.compile(r'\A"?sep=(.)"?\r?\n')
# A cell that is just a number with some grouping/decimal separators, e.g. "1 234,56".
_NUMBER_LIKE = re.compile(r"[-+−]?[\d\s.,']*\d[\d\s.,']*")
# Quoted literals and [bracketed] sections of an Excel number format are not format codes.
_FORMAT_LITERALS = re.compile(r'"[^"]*"|\[[^\]]*\]|\\.')

# Besides Unicode whitespace (which includes NBSP), zero-width characters that sneak in
# from copy-pasting out of web pages and messengers.
_STRIP = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"  # exactly str.isspace()
    "\u200b\u200c\u200d\u2060\ufeff"
)


class TableError(ValueError):
    """A table could not be read; the message is meant for the person who uploaded it."""


class NotATableError(TableError):
    """The file is not a table at all (binary data, an image, an empty file, ...).

    Raised by :func:`open_table` before any row is produced.
    """


_Records = Iterator[tuple[int, list[str]]]
# Produces the non-empty records of the file from its start; gets Table.warnings to add notes to.
_RecordsFactory = Callable[[list[str]], _Records]


class Table:
    """An opened table: headers known up front, data rows streamed by :meth:`rows`.

    Use as a context manager (or call :meth:`close`). Attributes:

    * ``headers`` -- column names, stripped, unique (case-insensitively) and never empty.
    * ``format`` -- ``"csv"`` or ``"xlsx"``.
    * ``encoding`` -- Python codec name of a CSV file (``"utf-8"``, ``"utf-8-sig"``,
      ``"cp1251"``, ``"utf-16"``, ``"utf-16-le"``, ``"utf-16-be"``); ``None`` for XLSX.
    * ``delimiter`` -- the CSV separator; ``None`` for XLSX and single-column CSV files.
    * ``header_row`` -- file row number of the header (1 unless blank rows precede it).
    * ``sheet`` -- title of the worksheet read from an XLSX file, else ``None``.
    * ``warnings`` -- human-readable notes about things that were fixed up (renamed headers,
      ignored cells, replaced bytes). Reading rows may append to it.
    """

    def __init__(
        self,
        *,
        name: str,
        format: TableFormat,
        encoding: str | None,
        delimiter: str | None,
        sheet: str | None,
        records: _RecordsFactory,
        describe: str,
        on_close: Callable[[], None] | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        self.name = name
        self.format: TableFormat = format
        self.encoding = encoding
        self.delimiter = delimiter
        self.sheet = sheet
        self.warnings: list[str] = list(warnings or [])
        self.headers: list[str] = []
        self.header_row = 0
        self._records = records
        self._describe = describe
        self._on_close = on_close
        self._closed = False
        self._skip_leading = 0
        self._width = 0
        self._active: weakref.WeakSet[Generator[tuple[int, list[str]], None, None]] = weakref.WeakSet()
        try:
            self._read_header()
        except NotATableError:
            self.close()
            raise
        except TableError as e:
            # Damage within the first rows: for the caller the file is simply not a table.
            self.close()
            raise NotATableError(str(e)) from None
        except BaseException:
            self.close()
            raise

    def _read_header(self) -> None:
        records = self._records(self.warnings)
        try:
            start = list(islice(records, _SAMPLE_RECORDS + _PREAMBLE_ROWS + 1))
            if not start:
                raise NotATableError(f"{self._describe} contains no data: every row is empty.")
        finally:
            _close_iterator(records)
        at = _header_index(start)
        if at:
            first_row, last_row = start[0][0], start[at - 1][0]
            rows = f"Row {first_row} was" if first_row == last_row else f"Rows {first_row}-{last_row} were"
            titles = " / ".join(" ".join(c for c in cells if c) for _, cells in start[:at])
            self.warnings.append(f"{rows} skipped as a title above the table header: '{_shorten(titles)}'.")
        self.header_row, header = start[at]
        sample = [cells for _, cells in start[at + 1 : at + 1 + _SAMPLE_RECORDS]]

        # Leading/trailing columns with neither a header nor data are layout, not columns
        # (a table drawn from column B, or a ";" at the end of every line).
        width = len(header)
        lead = 0
        while lead < width and not header[lead] and _column_empty(sample, lead):
            lead += 1
        while width > lead and not header[width - 1] and _column_empty(sample, width - 1):
            width -= 1
        self._skip_leading = lead
        self._width = width - lead

        self.headers = _unique_headers(header[lead:width], first_column=lead + 1, notes=self.warnings)
        if not sample and len(self.headers) < 2:
            separated = " separated by commas, semicolons or tabs" if self.format == "csv" else ""
            raise NotATableError(
                f"{self._describe} has a single line ('{_shorten(' '.join(header))}') and no data rows; "
                f"a table needs a header row and data rows, with columns{separated}."
            )

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """Yield ``(row_number, cells)`` for every non-empty data row.

        ``row_number`` is what a spreadsheet user sees: the header is row 1 (or wherever it
        really is), the first data row is 2. For a CSV record with quoted multi-line cells it
        is the line where the record starts. ``cells`` are stripped strings, padded with ``""``
        to ``len(headers)``; cells beyond the headers are kept only if non-empty (a warning is
        added). Each call starts from the beginning of the file again.

        Raises :class:`TableError` for damage found in the middle of the file (for example an
        unclosed quote in a CSV file).
        """
        if self._closed:
            raise ValueError("the table is closed")
        gen = self._iter_rows()
        self._active.add(gen)
        return gen

    def _iter_rows(self) -> Generator[tuple[int, list[str]], None, None]:
        header_row = self.header_row
        lead = self._skip_leading
        width = self._width
        warned_lead = warned_extra = False
        records = self._records(self.warnings)
        try:
            for number, raw in records:
                if number <= header_row:
                    continue
                cells = raw
                if lead:
                    if not warned_lead and any(cells[:lead]):
                        warned_lead = True
                        self.warnings.append(
                            f"Row {number}: values in the {lead} leading column(s) without a header "
                            "are ignored."
                        )
                    cells = cells[lead:]
                size = len(cells)
                if size < width:
                    cells.extend([""] * (width - size))
                elif size > width:
                    while size > width and not cells[-1]:
                        cells.pop()
                        size -= 1
                    if size > width and not warned_extra:
                        warned_extra = True
                        self.warnings.append(
                            f"Row {number} has {size} cells but there are only {width} headers; "
                            "values beyond the last header are ignored."
                        )
                yield number, cells
        finally:
            _close_iterator(records)

    def close(self) -> None:
        """Release the file; unfinished :meth:`rows` iterators are closed too."""
        if self._closed:
            return
        self._closed = True
        for gen in list(self._active):
            gen.close()
        if self._on_close is not None:
            self._on_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Table(name={self.name!r}, format={self.format!r}, encoding={self.encoding!r}, "
            f"delimiter={self.delimiter!r}, headers={self.headers!r})"
        )


def open_table(path: Path | str, *, filename: str | None = None, sheet: str | None = None) -> Table:
    """Open a CSV or XLSX file as a :class:`Table`, deciding the format by content.

    ``filename`` is the name the user uploaded (``path`` is usually a temporary file); it is
    only used in messages. ``sheet`` selects an XLSX worksheet by title (default: the first).

    Raises :class:`NotATableError` with a message for the uploader when the file is not a
    table (empty, binary, an image, a broken workbook, a single line without separators...).
    ``OSError`` from opening ``path`` itself is not translated.
    """
    path = Path(path)
    name = filename or path.name
    with path.open("rb") as f:
        head = f.read(_SAMPLE_BYTES)
        at_eof = len(head) < _SAMPLE_BYTES
        if at_eof and not head.strip():
            raise NotATableError(f"'{name}' is empty.")
        if head.startswith(_ZIP_SIGNATURES):
            return _open_xlsx(path, name, head, sheet)
        if head.startswith(_OLE2_SIGNATURE):
            # Password-protected .xlsx files are stored in the same container format.
            raise NotATableError(
                f"'{name}' is an old-style Excel 97-2003 (.xls) workbook or a password-protected file. "
                "Open it in Excel and save it as .xlsx (without a password) or CSV."
            )
        for signature, kind in _BINARY_SIGNATURES:
            if head.startswith(signature):
                raise NotATableError(f"'{name}' is {kind}, not a table (CSV or XLSX).")
        encoding = _detect_encoding(f, head, at_eof, name)
    return _open_csv(path, name, head, at_eof, encoding)


# --- CSV ---------------------------------------------------------------------------------------


def _detect_encoding(f: IO[bytes], head: bytes, at_eof: bool, name: str) -> str:
    """Pick the codec of a text file from its first bytes (and, if needed, its first non-ASCII bytes)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in head:
        guess = _bomless_utf16(head)
        if guess is None:
            raise _binary_error(name)
        return guess
    if _mostly_utf8(head, final=at_eof):
        if not head.isascii() or at_eof:
            return "utf-8"
        # A pure-ASCII start proves nothing (e.g. a Latin header over Cyrillic names), so find
        # the first non-ASCII byte; usually only a few chunks are read, never kept in memory.
        while chunk := f.read(_SCAN_CHUNK):
            found = _NON_ASCII_BYTE.search(chunk)
            if found is not None:
                return "utf-8" if _mostly_utf8(chunk[found.start() :], final=False) else "cp1251"
        return "utf-8"
    if _decodes(head, "cp1251", final=True):
        return "cp1251"
    raise _binary_error(name)


def _bomless_utf16(head: bytes) -> str | None:
    """UTF-16 without a BOM shows NUL in every other byte for ASCII text (digits, separators)."""
    probe = head[:4096]
    even_nuls = probe[0::2].count(0)
    odd_nuls = probe[1::2].count(0)
    half = max(len(probe) // 2, 1)
    if odd_nuls > half * 0.3 and even_nuls < half * 0.05:
        return "utf-16-le"
    if even_nuls > half * 0.3 and odd_nuls < half * 0.05:
        return "utf-16-be"
    return None


def _mostly_utf8(data: bytes, *, final: bool) -> bool:
    """UTF-8, allowing a rare broken byte (rows() replaces it and warns).

    Windows-1251 Cyrillic is practically never valid UTF-8: nearly every letter breaks a
    sequence, so a handful of errors among many valid characters means damaged UTF-8.
    """
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(data, final=final)
    errors = text.count("\ufffd")
    if not errors:
        return True
    valid_non_ascii = sum(1 for ch in text if ch > "\x7f") - errors
    return valid_non_ascii >= 50 * errors


def _decodes(data: bytes, encoding: str, *, final: bool) -> bool:
    try:
        codecs.getincrementaldecoder(encoding)("strict").decode(data, final=final)
    except UnicodeDecodeError:
        return False
    return True


def _binary_error(name: str) -> NotATableError:
    return NotATableError(
        f"'{name}' is not a text table: it contains binary data. "
        "Upload a CSV file (UTF-8 or Windows-1251) or an Excel .xlsx workbook."
    )


def _open_csv(path: Path, name: str, head: bytes, at_eof: bool, encoding: str) -> Table:
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    text = decoder.decode(head, final=at_eof)
    if text.startswith("\ufeff"):
        # Only the "utf-16" codec consumes its BOM; keep the sample identical to what rows() sees.
        text = text[1:]
    # A stray control character (a DOS end-of-file mark) is tolerated, a sprinkling is not.
    if "\x00" in text or len(_CONTROL_CHARS.findall(text)) > len(text) // 100 + 1:
        raise _binary_error(name)
    _reject_markup(text, name)

    hint = _SEP_HINT.match(text)
    if hint is not None and hint.group(1) not in '"\r\n':
        delimiter: str | None = hint.group(1)
        skip_first = True
    else:
        delimiter = _sniff_delimiter(text, at_eof)
        skip_first = False

    def records(notes: list[str]) -> _Records:
        return _csv_records(path, encoding, delimiter, skip_first, notes)

    return Table(
        name=name,
        format="csv",
        encoding=encoding,
        delimiter=delimiter,
        sheet=None,
        records=records,
        describe=f"'{name}'",
    )


def _reject_markup(text: str, name: str) -> None:
    start = text.lstrip()[:512].lower()
    if start.startswith(("<!doctype html", "<html")) or ("<table" in start and start.startswith("<")):
        raise NotATableError(
            f"'{name}' is an HTML page, not a CSV file (some systems save HTML with an .xls or .csv "
            "name). Open it in Excel and save it as .xlsx or CSV."
        )
    if start.startswith("<?xml") and "urn:schemas-microsoft-com:office:spreadsheet" in text[:4096]:
        raise NotATableError(
            f"'{name}' is an \"XML Spreadsheet 2003\" file. Open it in Excel and save it as .xlsx or CSV."
        )
    if start.startswith("{\\rtf"):
        raise NotATableError(f"'{name}' is an RTF document, not a table (CSV or XLSX).")


def _sniff_delimiter(text: str, at_eof: bool) -> str | None:
    """Choose the separator that splits the sample into a consistent number (> 1) of columns.

    Counting characters fails on Russian exports ("Сумма, руб;Комиссия, руб" over rows like
    "1 234,56;12,30" splits consistently on commas too), so candidates are compared by
    1) the share of data records with as many cells as the header, then
    2) fewer title lines without the candidate above the table (see :func:`_header_index`), then
    3) the number of cells that still contain another candidate glued between two
       characters ("56;12") -- commas inside numbers ("1 234,56") and prose (", ") are natural,
    4) more columns, 5) the order of ``_DELIMITERS``.
    Returns ``None`` for a single-column table.
    """
    best: tuple[float, int, int, int, int] | None = None
    best_delimiter: str | None = None
    for priority, delimiter in enumerate(_DELIMITERS):
        if delimiter not in text:
            continue
        reader = csv.reader(io.StringIO(text), delimiter=delimiter, skipinitialspace=True)
        parsed = [rec for rec in islice(reader, _SAMPLE_RECORDS + 1) if any(c.strip() for c in rec)]
        if not at_eof and len(parsed) > 1:
            parsed.pop()  # the sample may end in the middle of a record
        # Title lines above the table (a report's name and date) hold no separator; a table
        # found below them must have data rows.
        titles = next((i for i, rec in enumerate(parsed[: _PREAMBLE_ROWS + 1]) if len(rec) > 1), 0)
        if titles and len(parsed) - titles < 2:
            continue
        parsed = parsed[titles:]
        if not parsed or len(parsed[0]) < 2:
            continue
        columns = len(parsed[0])
        data = parsed[1:]
        consistency = sum(len(rec) == columns for rec in data) / len(data) if data else 1.0
        others = [d for d in _DELIMITERS if d != delimiter]
        glued = sum(_has_glued_delimiter(cell, others) for rec in parsed for cell in rec)
        score = (consistency, -titles, -glued, columns, -priority)
        if best is None or score > best:
            best, best_delimiter = score, delimiter
    return best_delimiter


def _has_glued_delimiter(cell: str, delimiters: list[str]) -> bool:
    for d in delimiters:
        pos = cell.find(d)
        while pos != -1:
            if 0 < pos < len(cell) - 1 and not cell[pos + 1].isspace() and not cell[pos - 1].isspace():
                return _NUMBER_LIKE.fullmatch(cell.strip()) is None
            pos = cell.find(d, pos + 1)
    return False


def _csv_records(
    path: Path, encoding: str, delimiter: str | None, skip_first: bool, notes: list[str]
) -> Generator[tuple[int, list[str]], None, None]:
    strip = _STRIP
    replaced_seen = False
    with (
        path.open("rb") as raw,
        io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="") as text,
    ):
        reader = csv.reader(text, delimiter=delimiter or _NO_DELIMITER, skipinitialspace=True)
        previous_line = 0
        try:
            if skip_first:
                next(reader, None)
                previous_line = reader.line_num
            for record in reader:
                number = previous_line + 1
                previous_line = reader.line_num
                cells = [c.strip(strip) for c in record]
                if not any(cells):
                    continue
                if previous_line > number:
                    # Quoted multi-line cells keep the file's line breaks; "\r\n" from Windows
                    # would show up as stray carriage returns downstream.
                    cells = [c.replace("\r\n", "\n").replace("\r", "\n") for c in cells]
                if not replaced_seen and any("\ufffd" in c for c in cells):
                    replaced_seen = True
                    note = (
                        f"Row {number} contains bytes that are not valid {encoding}; "
                        "they were replaced with '\ufffd'."
                    )
                    if note not in notes:  # every rows() pass would report it again
                        notes.append(note)
                yield number, cells
        except csv.Error as e:
            raise TableError(
                f'Row {previous_line + 1}: the file is damaged ({e}); probably a quote (") is never closed.'
            ) from None


# --- XLSX --------------------------------------------------------------------------------------


def _open_xlsx(path: Path, name: str, head: bytes, sheet: str | None) -> Table:
    # Imported lazily: openpyxl is heavy and CSV uploads are the common case.
    import openpyxl

    if head[30:38] == b"mimetype" and b"opendocument.spreadsheet" in head[:100]:
        raise NotATableError(
            f"'{name}' is an OpenDocument spreadsheet (.ods). Save it as .xlsx or CSV and upload again."
        )
    f = path.open("rb")
    try:
        # openpyxl refuses paths whose extension is not .xlsx; a file object bypasses that,
        # so the content decides.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            workbook = openpyxl.load_workbook(f, read_only=True, data_only=True)
    except zipfile.BadZipFile:
        f.close()
        raise NotATableError(f"'{name}' looks like a ZIP archive but is damaged or incomplete.") from None
    except Exception as e:  # anything a broken or foreign archive makes openpyxl raise
        f.close()
        kind = _office_kind(path)
        if kind is not None:
            raise NotATableError(
                f"'{name}' is {kind}, not a table. Save the table as an Excel .xlsx workbook or CSV."
            ) from None
        raise NotATableError(
            f"'{name}' is a ZIP archive but not an Excel .xlsx workbook ({type(e).__name__}: {e})."
        ) from None

    def close() -> None:
        try:
            workbook.close()
        finally:
            f.close()

    try:
        notes: list[str] = []
        worksheets = workbook.worksheets
        if not worksheets:
            raise NotATableError(f"'{name}' has no worksheets.")
        if sheet is None:
            # Hidden sheets hold lookups and settings, not what the user sees when opening the file.
            visible = [w for w in worksheets if getattr(w, "sheet_state", "visible") == "visible"]
            ws = (visible or worksheets)[0]
            if len(worksheets) > 1:
                others = ", ".join(f"'{w.title}'" + ("" if w in visible else " (hidden)")
                                   for w in worksheets if w is not ws)
                first = "first visible sheet" if ws is not worksheets[0] else "first sheet"
                notes.append(f"Only the {first} '{ws.title}' was read; other sheets: {others}.")
        else:
            matches = [w for w in worksheets if w.title == sheet]
            if not matches:
                titles = ", ".join(f"'{w.title}'" for w in worksheets)
                raise NotATableError(f"'{name}' has no sheet '{sheet}'; its sheets are: {titles}.")
            ws = matches[0]
        # Producers often write a wrong <dimension>; trusting it would truncate rows/columns.
        ws.reset_dimensions()
    except BaseException:
        close()
        raise

    def records(_notes: list[str]) -> _Records:
        return _xlsx_records(ws, name)

    return Table(
        name=name,
        format="xlsx",
        encoding=None,
        delimiter=None,
        sheet=ws.title,
        records=records,
        describe=f"The sheet '{ws.title}' of '{name}'",
        on_close=close,
        warnings=notes,
    )


# Parts that identify other Office Open XML and OpenDocument files people rename to .xlsx/.csv.
_OFFICE_PARTS = (
    ("word/document.xml", "a Word document (.docx)"),
    ("ppt/presentation.xml", "a PowerPoint presentation (.pptx)"),
)


def _office_kind(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            mimetype = archive.read("mimetype")[:100] if "mimetype" in names else b""
    except (zipfile.BadZipFile, OSError, KeyError):
        return None
    for part, kind in _OFFICE_PARTS:
        if part in names:
            return kind
    if b"opendocument.text" in mimetype:
        return "an OpenDocument text document (.odt)"
    return None


def _xlsx_records(ws: Any, name: str) -> Generator[tuple[int, list[str]], None, None]:
    rows = ws.iter_rows(min_row=1, min_col=1)
    parsed = number = 0
    try:
        while True:
            # openpyxl warns about features it drops (data validation, conditional formats);
            # irrelevant for reading values and fatal under "error" warning filters. Rows are
            # taken a chunk at a time: entering catch_warnings costs more than reading a row, and
            # sheets whose formatting reaches row 1,048,576 have a million empty ones.
            chunk: list[Any] = []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for row in rows:
                    parsed += 1
                    chunk.append(row)
                    if len(chunk) == _XLSX_CHUNK:
                        break
            if not chunk:
                return
            for row in chunk:
                number += 1
                if row:
                    cells = [_cell_text(cell) for cell in row]
                    if any(cells):
                        yield number, cells
    except Exception as e:  # malformed sheet XML and similar damage inside the archive
        raise TableError(f"Row {parsed + 1}: '{name}' is damaged ({type(e).__name__}: {e}).") from None
    finally:
        _close_iterator(rows)


def _cell_text(cell: Any) -> str:
    """Render an XLSX cell value the way the user sees it (minus cosmetic number formats)."""
    value = cell.value
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip(_STRIP)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return _zero_padded(str(value), cell)
    if isinstance(value, float):
        if value.is_integer():
            return _zero_padded(str(int(value)), cell)
        return _format_float(value)
    if isinstance(value, datetime):
        if _has_time_codes(cell.number_format):
            return value.isoformat(timespec="seconds")
        # A date-only format: the user sees a date, whatever fraction of a day is stored.
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat(timespec="seconds")
    if isinstance(value, timedelta):
        return str(value)
    return str(value).strip(_STRIP)


def _format_float(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        return ""
    # Excel shows 15 significant digits, which also hides binary noise like 0.30000000000000004.
    text = format(value, ".15g")
    if "e" in text:
        text = format(Decimal(text), "f")
    return text


def _zero_padded(digits: str, cell: Any) -> str:
    # Postal codes and account numbers are stored as numbers with a "000000" format.
    number_format = getattr(cell, "number_format", None)
    if number_format and number_format.startswith("0") and set(number_format) == {"0"}:
        return digits.zfill(len(number_format))
    return digits


def _has_time_codes(number_format: str | None) -> bool:
    if not number_format:
        return False
    codes = _FORMAT_LITERALS.sub("", number_format).lower()
    return "h" in codes or "s" in codes or "am/pm" in codes


# --- helpers -----------------------------------------------------------------------------------


def _header_index(records: list[tuple[int, list[str]]]) -> int:
    """Where the header is among the first records: after a title block, if the file has one.

    Reports from 1C and CRMs put a title, a date or the report's parameters above the table
    ("Выгрузка клиентов на 01.02.2024"). Such lines fill one or two cells while the rows of the
    table fill most of theirs, so leading records with fewer than half the usual number of
    filled cells are skipped -- provided the record after them can be a header (no cell is a
    bare number: that would be data under a header with empty names).
    """
    counts = [sum(1 for c in cells if c) for _, cells in records]
    typical = max(Counter(counts).items(), key=lambda item: (item[1], item[0]))[0]
    if typical < 2:
        return 0
    need = max(2, (typical + 1) // 2)
    for index, count in enumerate(counts[: _PREAMBLE_ROWS + 1]):
        if count >= need:
            if index and any(_NUMBER_LIKE.fullmatch(c) for c in records[index][1] if c):
                return 0
            return index
    return 0


def _column_empty(sample: list[list[str]], index: int) -> bool:
    return all(len(cells) <= index or not cells[index] for cells in sample)


def _unique_headers(raw: list[str], *, first_column: int, notes: list[str]) -> list[str]:
    """Name empty headers ``column_N`` and suffix repeats (``Phone``, ``Phone_2``), noting each fix."""
    headers: list[str] = []
    taken = {h.casefold() for h in raw if h}
    used: set[str] = set()
    for offset, header in enumerate(raw):
        column = first_column + offset
        if not header:
            name = _free_name(f"column_{column}", taken | used)
            notes.append(f"Column {column} has no header; it was named '{name}'.")
        elif header.casefold() in used:
            name = _free_name(header, taken | used, start=2)
            notes.append(f"Column {column} repeats the header '{header}'; it was renamed to '{name}'.")
        else:
            name = header
        used.add(name.casefold())
        headers.append(name)
    return headers


def _free_name(base: str, taken: set[str], start: int | None = None) -> str:
    if start is None and base.casefold() not in taken:
        return base
    n = start or 2
    while f"{base}_{n}".casefold() in taken:
        n += 1
    return f"{base}_{n}"


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _close_iterator(it: Iterator[Any]) -> None:
    close = getattr(it, "close", None)
    if close is not None:
        close()
