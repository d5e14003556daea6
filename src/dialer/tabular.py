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

Uploads may be hostile (an XLSX "zip bomb" of a few hundred KB that unpacks to gigabytes, a cell of
600 MB, millions of rows). :class:`UploadLimits` (the ``DIALER_UPLOAD_*`` settings) bound rows,
columns, cell length and the unpacked size; they are checked while the file is read -- an XLSX
part's bytes are counted as they are unpacked, whatever its ZIP directory declares -- and a file
over a limit raises :class:`TableLimitError` naming the limit and where it was hit.
"""

import codecs
import csv
import functools
import io
import re
import warnings
import weakref
import zipfile
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Literal, Self

if TYPE_CHECKING:
    from dialer.config import Settings

__all__ = [
    "NotATableError",
    "Table",
    "TableError",
    "TableFormat",
    "TableLimitError",
    "UploadLimits",
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


class TableLimitError(TableError):
    """The file is over one of the :class:`UploadLimits`; the message names the limit and where it was hit.

    Raised by :func:`open_table` (as a :class:`NotATableError` when found within the first rows) or
    while rows are read.
    """


@dataclass(frozen=True)
class UploadLimits:
    """What an uploaded table may hold; the defaults are those of the ``DIALER_UPLOAD_*`` settings."""

    #: Rows of a sheet / records of a CSV file, blank ones included.
    max_rows: int = 1_500_000
    #: Columns of a row (XLSX: any cell beyond refuses the file; CSV: a non-empty cell beyond).
    max_columns: int = 500
    #: Characters of one cell.
    max_cell_chars: int = 32_767
    #: Bytes of a CSV file; bytes of an XLSX workbook's parts unpacked (declared, and counted while read).
    max_unpacked_bytes: int = 2048 * 1024 * 1024

    @classmethod
    def of(cls, settings: "Settings") -> "UploadLimits":
        return cls(max_rows=settings.upload_max_rows, max_columns=settings.upload_max_columns,
                   max_cell_chars=settings.upload_max_cell_chars,
                   max_unpacked_bytes=settings.upload_max_unpacked_mb * 1024 * 1024)

    @property
    def max_row_chars(self) -> int:
        """Characters of one CSV record (all its lines): what keeps one giant line out of memory."""
        return max(1024 * 1024, 4 * self.max_cell_chars + 256 * self.max_columns)

    @property
    def max_xml_gap(self) -> int:
        """Bytes of an XLSX sheet (or of its shared strings) read without a new ``<row>`` (``<si>``) starting.

        A row's XML is parsed into memory whole, so this bounds the memory one row takes; a cell of
        ``max_cell_chars`` characters fits even written as ten-byte character references.
        """
        return max(512 * 1024, 12 * self.max_cell_chars)


def _default_limits() -> UploadLimits:
    from dialer.config import get_settings

    return UploadLimits.of(get_settings())


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):,.0f} MB" if size >= 1024 * 1024 else f"{size:,} bytes"


def _too_many_rows(where: str, limits: UploadLimits, row: int) -> TableLimitError:
    return TableLimitError(
        f"{where} has more than {limits.max_rows:,} rows (the limit, DIALER_UPLOAD_MAX_ROWS; blank rows count); "
        f"reading stopped at row {row:,}. Split the file or raise the limit."
    )


def _cell_too_long(where: str, limits: UploadLimits, row: int, column: int | None,
                   length: int | None) -> TableLimitError:
    cell = f"the cell in row {row:,}, column {_column_label(column)}" if column else f"a cell in row {row:,}"
    size = f"{length:,} characters" if length is not None else "more characters"
    return TableLimitError(
        f"{where}: {cell} holds {size}; a cell may hold at most "
        f"{limits.max_cell_chars:,} (the limit, DIALER_UPLOAD_MAX_CELL_CHARS)."
    )


def _too_many_columns(where: str, limits: UploadLimits, row: int, column: int) -> TableLimitError:
    return TableLimitError(
        f"{where}: row {row:,} has a cell in column {_column_label(column)}; at most {limits.max_columns:,} columns "
        "are read (the limit, DIALER_UPLOAD_MAX_COLUMNS). Delete the columns beyond the table or raise the limit."
    )


def _too_big(where: str, limits: UploadLimits, what: str) -> TableLimitError:
    return TableLimitError(
        f"{where} {what}; an upload may take at most {_mb(limits.max_unpacked_bytes)} unpacked "
        "(the limit, DIALER_UPLOAD_MAX_UNPACKED_MB)."
    )


def _column_label(column: int) -> str:
    """1 → "1 (A)", 28 → "28 (AB)": the number and the letters a spreadsheet user sees."""
    letters = ""
    n = column
    while n > 0:
        n, rest = divmod(n - 1, 26)
        letters = chr(65 + rest) + letters
    return f"{column:,} ({letters})"


def _check_cells(cells: list[str], where: str, limits: UploadLimits, row: int) -> None:
    """Cell length and width of a row; cheap for ordinary rows (one C-level sum)."""
    if sum(map(len, cells)) > limits.max_cell_chars:
        for index, cell in enumerate(cells):
            if len(cell) > limits.max_cell_chars:
                raise _cell_too_long(where, limits, row, index + 1, len(cell))


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


def open_table(path: Path | str, *, filename: str | None = None, sheet: str | None = None,
               limits: UploadLimits | None = None) -> Table:
    """Open a CSV or XLSX file as a :class:`Table`, deciding the format by content.

    ``filename`` is the name the user uploaded (``path`` is usually a temporary file); it is
    only used in messages. ``sheet`` selects an XLSX worksheet by title (default: the first).
    ``limits`` bound what the file may hold (default: the ``DIALER_UPLOAD_*`` settings).

    Raises :class:`NotATableError` with a message for the uploader when the file is not a
    table (empty, binary, an image, a broken workbook, a single line without separators, over
    a limit...). ``OSError`` from opening ``path`` itself is not translated.
    """
    path = Path(path)
    name = filename or path.name
    limits = limits or _default_limits()
    with path.open("rb") as f:
        head = f.read(_SAMPLE_BYTES)
        at_eof = len(head) < _SAMPLE_BYTES
        if at_eof and not head.strip():
            raise NotATableError(f"'{name}' is empty.")
        if head.startswith(_ZIP_SIGNATURES):
            return _open_xlsx(path, name, head, sheet, limits)
        if head.startswith(_OLE2_SIGNATURE):
            # Password-protected .xlsx files are stored in the same container format.
            raise NotATableError(
                f"'{name}' is an old-style Excel 97-2003 (.xls) workbook or a password-protected file. "
                "Open it in Excel and save it as .xlsx (without a password) or CSV."
            )
        for signature, kind in _BINARY_SIGNATURES:
            if head.startswith(signature):
                raise NotATableError(f"'{name}' is {kind}, not a table (CSV or XLSX).")
        size = path.stat().st_size
        if size > limits.max_unpacked_bytes:
            raise NotATableError(str(_too_big(f"'{name}'", limits, f"takes {_mb(size)}")))
        encoding = _detect_encoding(f, head, at_eof, name)
    return _open_csv(path, name, head, at_eof, encoding, limits)


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


def _open_csv(path: Path, name: str, head: bytes, at_eof: bool, encoding: str, limits: UploadLimits) -> Table:
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
        return _csv_records(path, name, encoding, delimiter, skip_first, notes, limits)

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
    path: Path, name: str, encoding: str, delimiter: str | None, skip_first: bool, notes: list[str],
    limits: UploadLimits,
) -> Generator[tuple[int, list[str]], None, None]:
    strip = _STRIP
    replaced_seen = False
    where = f"'{name}'"
    max_rows, max_columns, max_cell = limits.max_rows, limits.max_columns, limits.max_cell_chars
    max_record = limits.max_row_chars
    # Characters handed to the csv reader since it produced its last record: a record (all its
    # lines) longer than max_record stops the file before it is built in memory.
    pending = 0
    line_no = previous_line = 0

    def lines(text: IO[str]) -> Iterator[str]:
        nonlocal pending, line_no
        readline = text.readline
        while line := readline(max_record + 1):
            line_no += 1
            pending += len(line)
            if pending > max_record:
                raise TableLimitError(
                    f"Row {previous_line + 1:,} of {where} goes on for more than {max_record:,} characters (to "
                    f'line {line_no:,}): probably a quote (") is never closed; a cell may hold at most {max_cell:,} '
                    f"characters (DIALER_UPLOAD_MAX_CELL_CHARS), a row at most {max_columns:,} cells "
                    "(DIALER_UPLOAD_MAX_COLUMNS)."
                )
            yield line

    with (
        path.open("rb") as raw,
        io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="") as text,
    ):
        reader = csv.reader(lines(text), delimiter=delimiter or _NO_DELIMITER, skipinitialspace=True)
        records = 0
        try:
            if skip_first:
                next(reader, None)
                pending = 0
                previous_line = reader.line_num
            for record in reader:
                pending = 0
                records += 1
                number = previous_line + 1
                previous_line = reader.line_num
                if records > max_rows:
                    raise _too_many_rows(where, limits, number)
                cells = [c.strip(strip) for c in record]
                if len(cells) > max_columns:
                    while len(cells) > max_columns and not cells[-1]:
                        cells.pop()
                    if len(cells) > max_columns:
                        raise _too_many_columns(where, limits, number, len(cells))
                _check_cells(cells, where, limits, number)
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
            if "field larger than field limit" in str(e):
                # The csv module's own bound (131,072 characters by default) is above the cell limit.
                raise TableLimitError(
                    f"Row {previous_line + 1}: a cell of {where} goes on for more than {csv.field_size_limit():,} "
                    f'characters: probably a quote (") is never closed; a cell may hold at most {max_cell:,} '
                    "characters (DIALER_UPLOAD_MAX_CELL_CHARS)."
                ) from None
            raise TableError(
                f'Row {previous_line + 1}: the file is damaged ({e}); probably a quote (") is never closed.'
            ) from None


# --- XLSX --------------------------------------------------------------------------------------


# Entries of an XLSX archive: workbooks have tens; a directory of millions costs memory before a
# byte of a sheet is read.
_XLSX_MAX_MEMBERS = 10_000
# Parts other than sheets and shared strings (workbook, styles, relationships...) are read whole
# and parsed into a tree.
_XLSX_MAX_WHOLE_PART = 32 * 1024 * 1024
_XLSX_READ = 64 * 1024
_XML_NAME_PREFIX = rb"(?:[A-Za-z_][\w.-]*:)?"
_ROW_START = re.compile(rb"<" + _XML_NAME_PREFIX + rb"row[\s>/]")
_SI_START = re.compile(rb"<" + _XML_NAME_PREFIX + rb"si[\s>/]")
_SHEET_DATA_END = re.compile(rb"</" + _XML_NAME_PREFIX + rb"sheetData\s*>|<" + _XML_NAME_PREFIX + rb"sheetData\s*/>")
_WORKSHEET_ROOT = re.compile(rb"<(" + _XML_NAME_PREFIX + rb"worksheet)[\s>/]")
# Bytes kept from the previous chunk so that a tag split between two chunks is still found.
_OVERLAP = 64


class _XmlGapError(TableLimitError):
    """A sheet's XML went on too long without a new row (see :attr:`UploadLimits.max_xml_gap`)."""


class _Part(io.RawIOBase):
    """One part of an XLSX archive as it is unpacked, its bytes counted and its structure watched.

    * Every part: more bytes than the ZIP directory declared (a forged archive) or than the limit
      stops the read (the limit of parts read whole is :data:`_XLSX_MAX_WHOLE_PART`).
    * A sheet (``kind == "sheet"``) or the shared strings (``"strings"``): each aligned block of
      :attr:`UploadLimits.max_xml_gap` bytes must see a ``<row`` (``<si``) start, so no run of
      more than twice that -- one giant cell, a row of a million cells, junk before the rows --
      is handed to the XML parser, which keeps an element whole until it ends.
    * A sheet ends right after ``</sheetData>``: what follows (hyperlinks, merged cells,
      validations...) holds no values and openpyxl would parse each section whole.
    """

    def __init__(self, raw: IO[bytes], member: str, declared: int, archive: "_Archive") -> None:
        super().__init__()
        self._raw = raw
        self._member = member
        self._declared = declared
        limits = archive.limits
        self._limits = limits
        kind, title = archive.kinds.get(member, ("other", ""))
        self._kind = kind
        upload = archive.upload_name
        self._where = f"The sheet '{title}' of '{upload}'" if kind == "sheet" else f"'{upload}'"
        self._limit = limits.max_unpacked_bytes if kind != "other" else min(limits.max_unpacked_bytes,
                                                                           _XLSX_MAX_WHOLE_PART)
        self._needle = _ROW_START if kind == "sheet" else _SI_START if kind == "strings" else None
        self._gap = limits.max_xml_gap
        self._count = 0
        self._block_end = self._gap
        self._seen = False
        self._tail = b""
        self._root_end: bytes | None = None  # "</worksheet>" once the root element is known
        self._finished = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            chunks = []
            while chunk := self.read(_XLSX_READ):
                chunks.append(chunk)
            return b"".join(chunks)
        if self._finished:
            return b""
        data = self._raw.read(max(size, 1))
        if not data:
            return b""
        self._count += len(data)
        if self._count > self._declared:
            raise TableLimitError(
                f"{self._where}: the part '{self._member}' unpacks to more than the {self._declared:,} bytes its "
                "ZIP directory declares; the file is damaged or forged."
            )
        if self._count > self._limit:
            raise self._too_big()
        if self._needle is not None:
            data = self._watch(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()

    def _too_big(self) -> TableLimitError:
        if self._kind == "other":
            return TableLimitError(
                f"{self._where}: the part '{self._member}' unpacks to more than {_mb(self._limit)}; "
                "the file is damaged or not an ordinary workbook. Save the table as a new .xlsx or CSV file."
            )
        what = "its shared strings unpack" if self._kind == "strings" else "unpacks"
        return _too_big(self._where, self._limits, f"{what} to more than {_mb(self._limit)}")

    def _watch(self, data: bytes) -> bytes:
        start = self._count - len(data)  # offset of data[0] in the part
        buf = self._tail + data
        skip = len(self._tail)  # data starts at buf[skip]
        if self._kind == "sheet":
            if self._root_end is None and start == 0:
                root = _WORKSHEET_ROOT.search(data, 0, 4096)
                self._root_end = b"</" + root.group(1) + b">" if root else b""
            at = buf.find(b"sheetData", max(skip - _OVERLAP, 0))
            while at != -1:
                end = _SHEET_DATA_END.search(buf, max(at - _OVERLAP, 0), at + _OVERLAP)
                if end is not None and end.end() > skip and self._root_end:
                    # Nothing after the rows is wanted: end the document right there.
                    self._finished = True
                    return buf[skip: end.end()] + self._root_end
                at = buf.find(b"sheetData", at + 1)
        pos = 0
        needle = self._needle
        assert needle is not None
        while pos < len(data):
            take = min(len(data) - pos, self._block_end - (start + pos))
            if not self._seen and needle.search(buf, max(skip + pos - _OVERLAP, 0), skip + pos + take):
                self._seen = True
            pos += take
            if start + pos == self._block_end:
                if not self._seen:
                    raise _XmlGapError(self._gap_message())
                self._block_end += self._gap
                self._seen = False
        self._tail = buf[-_OVERLAP:]
        return data

    def _gap_message(self) -> str:
        if self._kind == "strings":
            return (f"{self._where}: a text of the workbook's shared strings takes more than {self._gap:,} bytes of "
                    f"XML; a cell may hold at most {self._limits.max_cell_chars:,} characters (the limit, "
                    "DIALER_UPLOAD_MAX_CELL_CHARS).")
        return (f"more than {self._gap:,} bytes of the sheet's XML without a new row: a row may take at most that "
                f"much (a cell holds at most {self._limits.max_cell_chars:,} characters, "
                f"DIALER_UPLOAD_MAX_CELL_CHARS; a row at most {self._limits.max_columns:,} cells, "
                "DIALER_UPLOAD_MAX_COLUMNS).")


class _Archive(zipfile.ZipFile):
    """The upload's ZIP archive; every part openpyxl opens is read through a :class:`_Part`."""

    def __init__(self, file: IO[bytes], *, upload_name: str, limits: UploadLimits) -> None:
        super().__init__(file)
        self.upload_name = upload_name
        self.limits = limits
        #: Part name → (kind, sheet title) for the parts watched as sheets or shared strings.
        self.kinds: dict[str, tuple[str, str]] = {}

    def open(self, name: Any, mode: Literal["r", "w"] = "r", pwd: bytes | None = None, *,
             force_zip64: bool = False) -> IO[bytes]:
        raw = super().open(name, mode, pwd, force_zip64=force_zip64)
        if mode != "r":
            return raw
        info = name if isinstance(name, zipfile.ZipInfo) else self.getinfo(name)
        part: Any = _Part(raw, info.filename, info.file_size, self)
        return part


def _count_members(f: IO[bytes], name: str) -> None:
    """Refuse an archive whose directory lists more entries than a workbook has, before it is read."""
    end_record = getattr(zipfile, "_EndRecData", None)
    if end_record is None:
        return
    found = end_record(f)
    f.seek(0)
    if found is None:
        return  # not a readable archive: ZipFile says so
    entries = int(found[getattr(zipfile, "_ECD_ENTRIES_TOTAL", 4)])
    if entries > _XLSX_MAX_MEMBERS:
        raise NotATableError(
            f"'{name}' is a ZIP archive of {entries:,} entries; an Excel workbook has at most a few hundred "
            f"(more than {_XLSX_MAX_MEMBERS:,} are refused)."
        )


@functools.cache
def _workbook_reader() -> type:
    """An openpyxl reader that reads only what values need, each part through the archive's guards."""
    from openpyxl.reader.excel import ExcelReader
    from openpyxl.styles.stylesheet import apply_stylesheet
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet
    from openpyxl.xml.constants import SHARED_STRINGS

    class Sheet(ReadOnlyWorksheet):
        def _get_size(self) -> None:
            # openpyxl reads the sheet up to its <dimension> -- all of it when there is none;
            # dimensions are reset before reading anyway (producers write wrong ones).
            pass

    class Reader(ExcelReader):
        def __init__(self, archive: _Archive) -> None:
            self.archive = archive
            self.valid_files = archive.namelist()
            self.read_only = True
            self.keep_vba = False
            self.data_only = True
            self.keep_links = False
            self.rich_text = False
            self.shared_strings: list[str] = []

        def read(self) -> None:
            # Document properties, the theme, charts and defined names are not wanted for values.
            self.read_manifest()
            self.read_strings()
            self.read_workbook()
            apply_stylesheet(self.archive, self.wb)
            self.read_worksheets()

        def read_strings(self) -> None:
            ct = self.package.find(SHARED_STRINGS)
            if ct is None:
                return
            archive: Any = self.archive
            part = ct.PartName[1:]
            archive.kinds[part] = ("strings", "")
            with archive.open(part) as src:
                self.shared_strings = _shared_strings(src, archive)

        def read_worksheets(self) -> None:
            archive: Any = self.archive
            workbook: Any = self.wb
            for sheet, rel in self.parser.find_sheets():
                if rel.target not in self.valid_files or "chartsheet" in rel.Type:
                    continue
                archive.kinds[rel.target] = ("sheet", sheet.name)
                ws: Any = Sheet(workbook, sheet.name, rel.target, self.shared_strings)
                ws.sheet_state = sheet.state
                workbook._sheets.append(ws)

    return Reader


def _shared_strings(src: IO[bytes], archive: _Archive) -> list[str]:
    """The workbook's shared strings (what openpyxl's ``read_string_table`` gives), within the limits.

    Each string is dropped from the XML tree once read: openpyxl keeps an emptied element per
    string. A string over the cell limit refuses the file (the cell using it is not known here).
    """
    from xml.etree.ElementTree import XMLPullParser

    from openpyxl.cell.text import Text
    from openpyxl.xml.constants import SHEET_MAIN_NS

    limits = archive.limits
    name = archive.upload_name
    si_tag, t_tag = f"{{{SHEET_MAIN_NS}}}si", f"{{{SHEET_MAIN_NS}}}t"
    max_cell = limits.max_cell_chars
    max_count, max_total = 4 * limits.max_rows, 64 * limits.max_rows
    strings: list[str] = []
    total = 0
    root: Any = None
    parser: Any = XMLPullParser(events=("start", "end"))
    while data := src.read(_XLSX_READ):
        parser.feed(data)
        event: str
        element: Any
        for event, element in parser.read_events():
            if event == "start":
                if root is None:
                    root = element
                continue
            if element.tag != si_tag:
                continue
            if len(element) == 1 and element[0].tag == t_tag:
                text = element[0].text or ""
            else:
                found = Text.from_tree(element)
                text = found.content if found is not None else ""
            text = text.replace("x005F_", "")
            if len(text) > max_cell:
                raise TableLimitError(
                    f"'{name}': text number {len(strings) + 1:,} of the workbook's shared strings holds "
                    f"{len(text):,} characters; a cell may hold at most {max_cell:,} (the limit, "
                    "DIALER_UPLOAD_MAX_CELL_CHARS)."
                )
            total += len(text)
            strings.append(text)
            if len(strings) > max_count or total > max_total:
                raise TableLimitError(
                    f"'{name}': the workbook's shared strings hold more than {max_count:,} texts or "
                    f"{max_total:,} characters (4 texts and 64 characters a row of DIALER_UPLOAD_MAX_ROWS, "
                    f"{limits.max_rows:,})."
                )
        if root is not None:
            root.clear()
    parser.close()
    return strings


def _limit_error(err: BaseException) -> TableError | None:
    """The TableError behind an exception openpyxl wrapped (it re-raises ValueErrors as its own)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, TableError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _open_xlsx(path: Path, name: str, head: bytes, sheet: str | None, limits: UploadLimits) -> Table:
    # Imported lazily: openpyxl is heavy and CSV uploads are the common case.
    if head[30:38] == b"mimetype" and b"opendocument.spreadsheet" in head[:100]:
        raise NotATableError(
            f"'{name}' is an OpenDocument spreadsheet (.ods). Save it as .xlsx or CSV and upload again."
        )
    f = path.open("rb")
    try:
        _count_members(f, name)
        archive = _Archive(f, upload_name=name, limits=limits)
    except zipfile.BadZipFile:
        f.close()
        raise NotATableError(f"'{name}' looks like a ZIP archive but is damaged or incomplete.") from None
    except BaseException:
        f.close()
        raise

    def close_archive() -> None:
        try:
            archive.close()
        finally:
            f.close()

    try:
        declared = sum(info.file_size for info in archive.infolist())
        if declared > limits.max_unpacked_bytes:
            raise _too_big(f"'{name}'", limits, f"declares {_mb(declared)} unpacked in its ZIP directory")
        # openpyxl refuses paths whose extension is not .xlsx; an archive bypasses that, so the
        # content decides.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = _workbook_reader()(archive)
            reader.read()
            workbook = reader.wb
    except BaseException as e:
        close_archive()
        limit = _limit_error(e) if isinstance(e, Exception) else None
        if limit is not None:
            raise NotATableError(str(limit)) from None
        if not isinstance(e, Exception):
            raise
        if isinstance(e, zipfile.BadZipFile):
            raise NotATableError(f"'{name}' looks like a ZIP archive but is damaged or incomplete.") from None
        # anything a broken or foreign archive makes openpyxl raise
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
            close_archive()

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

    where = f"The sheet '{ws.title}' of '{name}'"

    def records(_notes: list[str]) -> _Records:
        return _xlsx_records(ws, name, where, limits)

    return Table(
        name=name,
        format="xlsx",
        encoding=None,
        delimiter=None,
        sheet=ws.title,
        records=records,
        describe=where,
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
            mimetype = b""
            if "mimetype" in names:
                with archive.open("mimetype") as part:
                    mimetype = part.read(100)
    except (zipfile.BadZipFile, OSError, KeyError):
        return None
    for part_name, kind in _OFFICE_PARTS:
        if part_name in names:
            return kind
    if b"opendocument.text" in mimetype:
        return "an OpenDocument text document (.odt)"
    return None


def _xlsx_records(ws: Any, name: str, where: str, limits: UploadLimits
                  ) -> Generator[tuple[int, list[str]], None, None]:
    rows = ws.iter_rows(min_row=1, min_col=1)
    parsed = number = 0
    max_rows, max_columns = limits.max_rows, limits.max_columns
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
                    if len(chunk) == _XLSX_CHUNK or parsed > max_rows:
                        break
            if not chunk:
                return
            for row in chunk:
                number += 1
                if number > max_rows:
                    raise _too_many_rows(where, limits, number)
                if row:
                    if len(row) > max_columns:
                        # Any cell beyond the limit, even an empty one: openpyxl pads every row
                        # up to its last cell, so a far cell in each row costs time, not just memory.
                        raise _too_many_columns(where, limits, number, len(row))
                    cells = [_cell_text(cell) for cell in row]
                    _check_cells(cells, where, limits, number)
                    if any(cells):
                        yield number, cells
    except _XmlGapError as e:
        raise TableLimitError(f"{where}, after row {parsed:,}: {e}") from None
    except TableError:
        raise
    except Exception as e:  # malformed sheet XML and similar damage inside the archive
        limit = _limit_error(e)
        if limit is not None:
            raise limit from None
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
