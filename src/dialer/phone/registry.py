"""Streaming parser for the Russian numbering registry (Rossvyaz / Минцифры open data).

The regulator publishes the numbering plan as ``ABC-3xx.csv``, ``ABC-4xx.csv``, ``ABC-8xx.csv`` and
``DEF-9xx.csv``: ``;``-separated tables with a header such as::

    АВС/ DEF;От;До;Емкость;Оператор;Регион                        (older files)
    АВС/ DEF;От;До;Емкость;Оператор;Регион;Территория ГАР;ИНН     (current files)

in UTF-8, UTF-8 with BOM or Windows-1251, sometimes with tabs around the separators.  The files are
large (DEF-9xx has several hundred thousand rows), so :func:`iter_registry` reads them row by row and
reports bad rows as :class:`RegistryRowError` values instead of stopping.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Protocol

from dialer.phone.regions_ru import subject_for, zone_for_text

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "BinaryReadable",
    "RegistryFormatError",
    "RegistryRange",
    "RegistryRejected",
    "RegistryRowError",
    "iter_registry",
]


@dataclass(frozen=True, slots=True)
class RegistryRange:
    """One numbering range: ``+7 <code> <range_from..range_to>``.

    ``range_from``/``range_to`` are the 7-digit subscriber parts as integers; ``e164_from``/``e164_to``
    the full numbers ("+7" + code + zero-padded part).  ``region`` is the registry text as published,
    ``subject`` the canonical federal subject recognised in it (``None`` for e.g. "Российская
    Федерация") and ``timezone`` that subject's IANA zone.  ``territory`` is the "Территория ГАР"
    column of current files.  ``line`` is the 1-based line of the row in the file.
    """

    code: str
    range_from: int
    range_to: int
    e164_from: str
    e164_to: str
    capacity: int
    carrier: str
    region: str
    subject: str | None
    timezone: str | None
    inn: str | None
    line: int
    territory: str | None = None


@dataclass(frozen=True, slots=True)
class RegistryRowError:
    """A row that could not be used.  ``column`` is the header name as written in the file, or ``None``
    when the problem is the row as a whole; ``text`` is the raw row (truncated) for the report."""

    line: int
    column: str | None
    reason: str
    text: str = ""


class BinaryReadable(Protocol):
    """Anything with a binary ``read``: an open file, ``io.BytesIO``, an upload's stream."""

    def read(self, size: int = -1, /) -> bytes | None: ...


class RegistryFormatError(ValueError):
    """The input is not a numbering registry table at all (no recognisable header)."""


class RegistryRejected(RegistryFormatError):
    """The table has rows that cannot be used (or none at all), so the file as a whole is refused.

    ``errors`` are the first bad rows.  The message names the first few with their lines, so a caller
    that only prints the exception still tells the user what to fix.
    """

    def __init__(self, source_name: str, rejected: int, errors: list[RegistryRowError]) -> None:
        self.rejected = rejected
        self.errors = errors
        if rejected == 0:
            message = f"{source_name}: the table has no numbering ranges; nothing was changed"
        else:
            shown = "; ".join(
                f"line {e.line}" + (f", {e.column}" if e.column else "") + f": {e.reason}" for e in errors[:5]
            )
            more = f" (and {rejected - 5} more)" if rejected > 5 else ""
            message = (f"{source_name}: {rejected} bad row{'s' if rejected != 1 else ''}, the file is refused and "
                       f"nothing was changed: {shown}{more}")
        super().__init__(message)


_SAMPLE_SIZE = 64 * 1024
_MAX_HEADER_LINE = 64 * 1024
_ERROR_TEXT_LIMIT = 200
# Minimum columns for a usable table; capacity, territory and INN are optional.
_REQUIRED = ("code", "from", "to", "carrier", "region")
_DISPLAY = {"code": "АВС/DEF", "from": "От", "to": "До", "carrier": "Оператор", "region": "Регион"}
_HEADER_KEY_RE = re.compile(r"[^0-9a-zа-я]+")


def _column_of(cell: str) -> str | None:
    """Which registry column a header cell names; case, spaces, punctuation and ё/е don't matter."""
    key = _HEADER_KEY_RE.sub("", cell.lower().replace("ё", "е"))
    if not key:
        return None
    # "АВС/ DEF" is usually written with Cyrillic АВС and Latin DEF; also "ABC/DEF", "Код", "ABC".
    if key.endswith("def") or key.startswith("код") or key in ("abc", "авс", "abcdef"):
        return "code"
    columns = {
        "от": "from",
        "from": "from",
        "до": "to",
        "to": "to",
        "емкость": "capacity",
        "capacity": "capacity",
        "оператор": "carrier",
        "operator": "carrier",
        "регион": "region",
        "region": "region",
        "инн": "inn",
        "inn": "inn",
    }
    if key in columns:
        return columns[key]
    if key.startswith("территория"):
        return "territory"
    return None


def _detect_encoding(sample: bytes) -> str:
    """UTF-8 (with or without BOM) when the sample decodes as such, otherwise Windows-1251.

    Cyrillic in cp1251 is almost never valid UTF-8, and the header alone is Cyrillic, so the first
    64 KiB decide reliably.
    """
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        # Not final: the sample may end in the middle of a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "cp1251"
    return "utf-8"


class _PrefixedReader(io.RawIOBase):
    """Replays the already-read sample, then continues with the underlying stream.

    Lets us sniff the encoding of a non-seekable stream (an upload) without reading it twice.  Closing
    this reader does not close the caller's stream.
    """

    def __init__(self, prefix: bytes, rest: BinaryReadable) -> None:
        super().__init__()
        self._prefix = memoryview(prefix)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        target = memoryview(buffer).cast("B")
        if self._prefix:
            n = min(len(target), len(self._prefix))
            target[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._rest.read(len(target))
        n = len(data) if data else 0
        target[:n] = data[:n] if data else b""
        return n


@dataclass(slots=True)
class _Header:
    delimiter: str
    columns: dict[str, int]
    names: list[str]
    line: int


def _parse_header(line: str, line_no: int) -> _Header | None:
    for delimiter in (";", "\t", ","):
        cells = next(csv.reader([line], delimiter=delimiter), [])
        columns: dict[str, int] = {}
        for index, cell in enumerate(cells):
            column = _column_of(cell.strip().lstrip("\ufeff"))
            if column is not None and column not in columns:
                columns[column] = index
        if all(c in columns for c in _REQUIRED):
            return _Header(delimiter, columns, [c.strip() for c in cells], line_no)
    return None


def _read_header(text: IO[str], source_name: str) -> _Header:
    line_no = 0
    while True:
        line = text.readline(_MAX_HEADER_LINE)
        line_no += 1
        if not line:
            raise RegistryFormatError(f"{source_name}: empty file, expected a numbering registry table")
        if line.strip().lstrip("\ufeff"):
            break
    if "\x00" in line:
        raise RegistryFormatError(f"{source_name}: binary data, expected a CSV numbering registry table")
    header = _parse_header(line, line_no)
    if header is None:
        shown = line.strip()[:120]
        raise RegistryFormatError(
            f"{source_name}: not a numbering registry table: the first line {shown!r} lacks the columns "
            "АВС/DEF, От, До, Оператор, Регион"
        )
    return header


def _digits(value: str) -> bool:
    return value.isascii() and value.isdigit()


def _row(cells: list[str], header: _Header, line: int, delimiter: str) -> RegistryRange | RegistryRowError:
    columns = header.columns

    def error(column: str | None, reason: str) -> RegistryRowError:
        name = header.names[columns[column]] if column is not None else None
        return RegistryRowError(line, name or None, reason, delimiter.join(cells)[:_ERROR_TEXT_LIMIT])

    needed = max(columns[c] for c in _REQUIRED) + 1
    if len(cells) < needed:
        return error(None, f"expected {len(header.names)} fields, got {len(cells)}")
    if len(cells) > len(header.names) and any(cells[len(header.names) :]):
        return error(None, f"expected {len(header.names)} fields, got {len(cells)} (unquoted separator?)")

    def cell(column: str) -> str:
        index = columns.get(column)
        return cells[index] if index is not None and index < len(cells) else ""

    code = cell("code")
    if not (_digits(code) and len(code) == 3):
        return error("code", f"ABC/DEF code must be 3 digits, got {code!r}")
    bounds: list[int] = []
    for column in ("from", "to"):
        value = cell(column)
        # Leading zeros are sometimes lost when the file went through Excel; up to 7 digits is fine.
        if not (_digits(value) and len(value) <= 7):
            return error(column, f"range bound must be up to 7 digits, got {value!r}")
        bounds.append(int(value))
    range_from, range_to = bounds
    if range_from > range_to:
        return error("to", f"range end {range_to:07d} is before its start {range_from:07d}")
    size = range_to - range_from + 1
    capacity_text = cell("capacity")
    if capacity_text:
        if not _digits(capacity_text):
            return error("capacity", f"capacity must be a number, got {capacity_text!r}")
        if int(capacity_text) != size:
            return error("capacity", f"capacity {int(capacity_text)} does not match the range size {size}")

    region = cell("region")
    territory = cell("territory") or None
    named_by = region if region and subject_for(region) is not None else territory or ""
    subject = subject_for(named_by) if named_by else None
    # None also when the text names several subjects whose clocks differ: no single zone is right.
    timezone = zone_for_text(named_by, f"{region}|{territory or ''}") if subject is not None else None
    return RegistryRange(
        code=code,
        range_from=range_from,
        range_to=range_to,
        e164_from=f"+7{code}{range_from:07d}",
        e164_to=f"+7{code}{range_to:07d}",
        capacity=size,
        carrier=cell("carrier"),
        region=region,
        subject=subject,
        timezone=timezone,
        inn=cell("inn") or None,
        line=line,
        territory=territory,
    )


def _rows(text: IO[str], source_name: str) -> Iterator[RegistryRange | RegistryRowError]:
    header = _read_header(text, source_name)
    reader = csv.reader(text, delimiter=header.delimiter)
    consumed = header.line  # physical lines before the csv reader took over
    for raw_cells in reader:
        line = consumed + 1
        consumed = header.line + reader.line_num
        # Old files pad fields with tabs/spaces ("900\t;\t0000000\t;..."); NBSP appears in carrier names.
        cells = [c.strip().replace("\u00a0", " ") for c in raw_cells]
        if not any(cells):
            continue
        yield _row(cells, header, line, header.delimiter)


def iter_registry(
    source: str | os.PathLike[str] | BinaryReadable,
    *,
    encoding: str | None = None,
) -> Generator[RegistryRange | RegistryRowError, None, None]:
    """Stream the ranges of a registry CSV file (path or binary stream), one row at a time.

    Yields :class:`RegistryRange` for good rows and :class:`RegistryRowError` for bad ones, so the
    caller can count and report them without stopping.  The encoding (UTF-8, UTF-8 with BOM,
    Windows-1251) and the separator are detected unless ``encoding`` is given.  Memory use does not
    depend on the file size.  A stream passed in is not closed.

    Raises :class:`RegistryFormatError` on the first ``next()`` -- before anything is yielded -- when
    the input has no recognisable registry header.  Call ``.close()`` on the generator (or exhaust
    it) to release a file opened from a path early.
    """
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        with open(source, "rb") as stream:
            yield from _iter_stream(stream, name, encoding)
    else:
        yield from _iter_stream(source, str(getattr(source, "name", "<stream>")), encoding)


def _read_sample(stream: BinaryReadable) -> bytes:
    """Up to _SAMPLE_SIZE bytes; raw streams may return short reads, so keep reading until EOF."""
    chunks: list[bytes] = []
    size = 0
    while size < _SAMPLE_SIZE:
        chunk = stream.read(_SAMPLE_SIZE - size)
        if chunk is None:
            break  # a non-blocking stream with nothing ready: sniff what we have rather than spin
        if not isinstance(chunk, bytes | bytearray):
            raise TypeError("iter_registry needs a path or a binary stream (open the file with 'rb')")
        if not chunk:
            break
        chunks.append(bytes(chunk))
        size += len(chunk)
    return b"".join(chunks)


def _iter_stream(stream: BinaryReadable, name: str, encoding: str | None) -> Iterator[RegistryRange | RegistryRowError]:
    sample = _read_sample(stream)
    if sample.startswith(b"PK\x03\x04"):
        raise RegistryFormatError(f"{name}: this is a ZIP/XLSX file; the registry must be the CSV export")
    chosen = encoding or _detect_encoding(sample)
    raw = _PrefixedReader(sample, stream)
    # errors="replace": one broken byte deep in a 100 MB file must not abort the whole import.
    text = io.TextIOWrapper(io.BufferedReader(raw), encoding=chosen, errors="replace", newline="")
    try:
        yield from _rows(text, name)
    finally:
        # Closes only our wrappers: _PrefixedReader never closes the caller's stream.
        text.close()
