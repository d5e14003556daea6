"""Importing contacts from CSV and XLSX files (000 §5.1.2, 002 §5.5): one code path for the API and the CLI.

:func:`run_import` streams the file (:func:`dialer.tabular.open_table`) in batches of
:data:`BATCH_ROWS` rows. A worker thread turns rows into ``COPY`` text (:class:`RowProcessor`):
values converted per field type with a converter chosen once per column, phones normalised to
E.164 and described (:mod:`.phonelookup`, once per block of numbers that share region, carrier and
zones), duplicates found against an in-memory set of the list's numbers, do-not-call numbers
against a preloaded set and prefix table. Meanwhile the event loop writes earlier batches
(:data:`WRITERS` at a time, each on a connection held for the whole import, so PostgreSQL works on
the other core): one short transaction per batch draws the ids of its contacts and phones, sends
contacts and phones with ``COPY`` in text format and adds the batch's counts to the job, so the job
always says what is committed. Where the database allows it, the foreign keys of a batch are
checked once instead of once per row (:func:`.repository.import_checks_replaceable`). Memory does
not grow with the file (only the set of the list's numbers does, a few dozen bytes per number).

Invalid rows are not imported; each problem (row number, column, value, reason) is written to a
CSV report (UTF-8 with BOM, ``;``: Excel opens it). An import that stops halfway keeps the
batches it committed and its job says ``failed`` with the reason. A file that is not a table is
refused before anything changes.

Where the time goes (``dialer bench import``, 2 cores): PostgreSQL storing the rows in ``contacts``
and ``contact_phones`` and maintaining their indexes. Its ``table_copy_seconds`` baseline — the
converted rows COPY'd again in the same batches — takes 0.77–0.85 of the import's time: reading
the file, converting values and normalising numbers here runs alongside and is mostly hidden.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import IO, Any

from sqlalchemy import cast, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from dialer.audit.recorder import SYSTEM, Actor, log
from dialer.config import Settings
from dialer.contact import copytext
from dialer.contact import repository as repo
from dialer.contact.indexes import ensure_field_indexes
from dialer.contact.mapping import looks_like_phone_header, normalize_name, resolve_mapping
from dialer.contact.phonelookup import MAX_BLOCKS, PhoneLookup
from dialer.contact.values import FieldSpec, json_encoder
from dialer.contact.zones import settle_by_place, uncertain_of_job
from dialer.exceptions import Conflict, DialerError, NotFound, ValidationFailed
from dialer.fieldvalues import FieldValueError, coerce
from dialer.models import ContactList, Field, ImportJob, ListField
from dialer.models.enums import AuditAction, FieldType, ImportStatus, PhoneType
from dialer.phone import InvalidPhone, to_e164
from dialer.tabular import NotATableError, Table, TableError, UploadLimits, open_table

log_ = logging.getLogger(__name__)

BATCH_ROWS = 5000
#: Batches written at the same time, each on its own connection: PostgreSQL spends most of an
#: import maintaining the indexes of ``contacts`` and ``contact_phones``; two backends use two cores.
WRITERS = 2
#: Check the foreign keys of imported rows once per batch instead of once per row, where the
#: database allows it (:func:`.repository.import_checks_replaceable`).
REPLACE_ROW_CHECKS = True
#: Rows the worker converts between two chances it gives the event loop to run.
YIELD_ROWS = 256
#: Rows sampled to decide whether a column of a new list holds phone numbers.
PHONE_SAMPLE = 200
ERROR_HEADERS = ("row", "column", "value", "reason")
#: The key of an API import job's ``options`` naming its spooled upload (a file in ``import_dir/uploads``).
SPOOL_OPTION = "upload"


@dataclass
class ImportOptions:
    #: Column header → field name or id; ``None``/"" ignores the column. Unlisted columns map automatically.
    mapping: dict[str, str | int | None] | None = None
    #: Country of numbers written without a country code (default: ``settings.default_country``).
    country: str | None = None
    tags: list[str] = field(default_factory=list)
    #: Leave out numbers of the global blacklist (and of ``dnc_list_id``).
    skip_dnc: bool = False
    dnc_list_id: int | None = None
    #: Import rows whose number is already in the list (or earlier in the file) anyway.
    allow_duplicates: bool = False
    sheet: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"mapping": self.mapping or {}, "country": self.country, "skip_dnc": self.skip_dnc,
                "dnc_list_id": self.dnc_list_id, "allow_duplicates": self.allow_duplicates, "sheet": self.sheet}


@dataclass
class ImportResult:
    job_id: int
    list_id: int | None
    status: ImportStatus
    rows: int
    imported: int
    rejected: int
    duplicates: int
    dnc_filtered: int
    errors_file: str | None
    seconds: float
    message: str = ""
    #: Numbers of the imported contacts whose zone is uncertain, and those settled by the contact's place.
    uncertain_numbers: int = 0
    settled_by_place: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "list_id": self.list_id, "status": self.status.value, "rows": self.rows,
                "imported": self.imported, "rejected": self.rejected, "duplicates": self.duplicates,
                "dnc_filtered": self.dnc_filtered, "errors_file": self.errors_file, "seconds": self.seconds,
                "message": self.message, "uncertain_numbers": self.uncertain_numbers,
                "settled_by_place": self.settled_by_place}


@dataclass(frozen=True)
class ImportProgress:
    rows_done: int
    rows_total: int
    imported: int
    rejected: int
    duplicates: int
    dnc_filtered: int
    #: At the end: numbers of the imported contacts still uncertain, and those their place field settled.
    uncertain: int = 0
    settled: int = 0


ProgressCallback = Callable[[ImportProgress], None]


# --- planning ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    index: int
    header: str
    spec: FieldSpec


@dataclass(frozen=True)
class Plan:
    """How the cells of a row become a contact."""

    columns: tuple[Column, ...]
    ignored: tuple[str, ...]
    #: Phone fields of the list no column fills: where extra numbers of a cell go.
    spare_phones: tuple[FieldSpec, ...] = ()

    @property
    def phone_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.spec.is_phone)


def make_plan(table: Table, specs: Sequence[FieldSpec], overrides: Mapping[str, str | int | None] | None) -> Plan:
    """Resolve the mapping and check that the import can work; raises ValidationFailed otherwise."""
    mapping = resolve_mapping(table.headers, specs, overrides)
    columns = tuple(Column(i, h, spec) for i, (h, spec) in enumerate(mapping.items()) if spec is not None)
    ignored = tuple(h for h, spec in mapping.items() if spec is None)
    if not columns:
        raise ValidationFailed.field("mapping", f"no column of the file matches a field of the list; columns: "
                                     f"{', '.join(table.headers)}; fields: {', '.join(s.name for s in specs)}")
    if not any(c.spec.is_phone for c in columns):
        phones = [s.name for s in specs if s.is_phone]
        hint = f"map a column to {' or '.join(phones)}" if phones else "the list has no phone field; add one"
        raise ValidationFailed.field("mapping", f"no column holds phone numbers: {hint}")
    mapped = {c.spec.id for c in columns}
    if missing := [s.name for s in specs if s.required and s.id not in mapped]:
        raise ValidationFailed.field("mapping", f"required fields {', '.join(missing)} have no column")
    spare = tuple(s for s in specs if s.is_phone and s.id not in mapped)
    return Plan(columns, ignored, spare)


def check_country(country: str, field: str = "country") -> str:
    """A region code phone numbers can be read with ("RU", "KZ" ...), upper-cased."""
    import phonenumbers

    code = country.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationFailed.field(field, f"'{country}' is not a country code such as RU, KZ or BY")
    return code


def open_checked(path: Path, filename: str, sheet: str | None = None, limits: UploadLimits | None = None) -> Table:
    """Open an uploaded file as a table; "not a table" (or over a limit) becomes a 422 naming the file."""
    try:
        return open_table(path, filename=filename, sheet=sheet, limits=limits)
    except (NotATableError, TableError) as err:
        raise ValidationFailed.field("file", str(err))


def estimate_rows(path: Path, table: Table) -> int:
    """Data rows of a CSV file estimated from its size and the first 256 KiB; 0 when unknown (XLSX)."""
    if table.format != "csv":
        return 0
    size = path.stat().st_size
    with path.open("rb") as f:
        sample = f.read(256 * 1024)
    lines = sample.count(b"\n") or 1
    if len(sample) >= size:
        return max(lines - table.header_row + (0 if sample.endswith(b"\n") else 1), 0)
    return max(int(size / (len(sample) / lines)) - table.header_row, 0)


# --- the row processor (runs in a worker thread) --------------------------------------------------

# What people put between two numbers in one cell: "8-912-345-67-89, 8 (343) 123-45-67",
# "89123456789; 89123456780", "... / ...", one per line, "... или ...".
_NUMBER_SEPARATORS = re.compile(r"[,;/\\|\n]|\s(?:или|or|и|and)\s", re.IGNORECASE)
_DIGIT = re.compile(r"\d")


def split_numbers(text: str) -> list[str]:
    """The numbers of a cell that may hold several; a piece with fewer than 7 digits ("доб. 12")
    stays with the number before it. One item (the text) when the cell holds one number."""
    numbers: list[str] = []
    for piece in _NUMBER_SEPARATORS.split(text):
        piece = piece.strip(" \t\r")
        if not piece:
            continue
        if len(_DIGIT.findall(piece)) >= 7 or not numbers:
            numbers.append(piece)
        else:
            numbers[-1] = f"{numbers[-1]}, {piece}"
    return numbers if len(numbers) > 1 else [text]


@dataclass
class Batch:
    """Converted rows, as ``COPY`` text lines (:mod:`.copytext`) still missing their ids."""

    #: A line per contact, from the tab after its id.
    contacts: list[str]
    #: A phone: (index of its contact in ``contacts``, its E.164 number, its line from the tab after
    #: the contact id).
    phones: list[tuple[int, str, str]]
    #: What this batch adds to the job's counters.
    delta: ImportProgress
    last: bool

    def render(self, ids: Sequence[int], phone_ids: Sequence[int]) -> tuple[bytes, bytes]:
        """The ``COPY`` text of the contacts and of their phones; both take their ids in file order.

        The phones go in sorted by number: the two indexes on ``e164`` are then filled in key order,
        a tenth less work for PostgreSQL than random order, and the ids keep the file's order.
        """
        contacts = "".join([f"{cid}{line}" for cid, line in zip(ids, self.contacts, strict=True)])
        phones = [(e164, f"{pid}\t{ids[index]}{line}")
                  for pid, (index, e164, line) in zip(phone_ids, self.phones, strict=True)]
        phones.sort()
        return contacts.encode(), "".join([line for _, line in phones]).encode()


class ErrorReport:
    """The CSV of rejected rows, created on the first problem."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._file: IO[str] | None = None
        self._writer: Any = None

    def add(self, row: int, column: str, value: str, reason: str) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8-sig", newline="")
            self._writer = csv.writer(self._file, delimiter=";")
            self._writer.writerow(ERROR_HEADERS)
        self._writer.writerow((row, column, value[:500], reason))
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    @property
    def written(self) -> bool:
        return self.count > 0


class RowProcessor:
    """Turns table rows into batches of ``COPY`` text; state (seen numbers, counters) lives here only.

    ``next_batch`` is called from one worker thread at a time, never concurrently. It is the hot
    path of an import, so each column's conversion is chosen once (:func:`.values.json_encoder`),
    the ``data`` document is joined from ready JSON fragments, and a phone's region, carrier and
    zones are looked up — and turned into ``COPY`` text — once per block of numbers that share
    them (:meth:`.PhoneLookup.block_key`).
    """

    def __init__(self, plan: Plan, *, country: str, known: set[int], dnc_exact: set[int], dnc_prefixes: set[str],
                 allow_duplicates: bool, lookup: PhoneLookup, errors: ErrorReport, rows_total: int,
                 list_id: int, job_id: int, tags: Sequence[str] = ()) -> None:
        self.country = country
        self.known = known
        self.dnc_exact = dnc_exact
        self.dnc_prefixes = dnc_prefixes
        self.dnc_lengths = sorted({len(p) for p in dnc_prefixes})
        self.check_dnc = bool(dnc_exact or dnc_prefixes)
        self.allow_duplicates = allow_duplicates
        self.lookup = lookup
        self.errors = errors
        self.rows_total = rows_total
        self.rows = self.imported = self.rejected = self.duplicates = self.dnc_filtered = 0
        self._reported = ImportProgress(0, 0, 0, 0, 0, 0)
        self.values = [(c.index, c.header, f'"{c.spec.key}":', json_encoder(c.spec), c.spec.required)
                       for c in plan.columns if not c.spec.is_phone]
        # A phone line (repository.PHONE_COLUMNS): its id, contact id, list, field, type, position, raw,
        # e164, region, carrier, zones, uncertain; the ids come when the batch is written.
        self.phones = [(c.index, c.header, f'"{c.spec.key}":', self._phone_line_head(list_id, c.spec),
                        c.spec.required, c.spec.mask) for c in plan.phone_columns]
        self.phone_headers = ", ".join(c.header for c in plan.phone_columns)
        # Where the further numbers of a cell holding several go (:meth:`_several`): the phone
        # fields without a column, then those whose column is empty in the row (cell index).
        self.spare_phones: list[tuple[int | None, str, str]] = [
            (None, f'"{s.key}":', self._phone_line_head(list_id, s)) for s in plan.spare_phones]
        self.spare_phones += [(c.index, f'"{c.spec.key}":', self._phone_line_head(list_id, c.spec))
                              for c in plan.phone_columns if not c.spec.required]
        # A contact line (repository.CONTACT_COLUMNS): id, list, data, tags, import job.
        self._contact_middle = f"\t{list_id}\t"
        self._contact_end = f"\t{copytext.text_array(tags)}\t{job_id}\n"
        self._described: dict[str, str] = {}
        #: Report lines about the row being converted, written only if it is imported.
        self._notes: list[tuple[int, str, str, str]] = []

    @staticmethod
    def _phone_line_head(list_id: int, spec: FieldSpec) -> str:
        return f"\t{list_id}\t{spec.id}\t{(spec.phone_type or PhoneType.mobile).value}\t"

    def _several(self, number: int, header: str, text: str, cells: list[str], used: Sequence[str]
                 ) -> tuple[str, str, list[tuple[str, str, str, str]]] | None:
        """A cell with several numbers ("8-912-345-67-89, 8 (343) 123-45-67"), or None when it has one.

        The first number stays in the cell's field, the others go to phone fields that get no
        number in this row (``used``: the line heads of those that did); a number finding no field
        is left out with a note in the report. Raises :class:`InvalidPhone` naming a bad number.
        Returns the first number (E.164 and text) and ``(data prefix, phone line head, e164, text)``
        for each other number that found a field.
        """
        parts = split_numbers(text)
        if len(parts) < 2:
            return None
        numbers: list[str] = []
        for part in parts:
            try:
                numbers.append(to_e164(part, self.country))
            except InvalidPhone as err:
                raise InvalidPhone(f"'{part}' (one of {len(parts)} numbers in the cell): {err.reason}", text) from None
        taken = set(used)
        free = [(prefix, head) for index, prefix, head in self.spare_phones
                if head not in taken and (index is None or not cells[index])]
        placed: list[tuple[str, str, str, str]] = []
        for part, e164 in zip(parts[1:], numbers[1:], strict=True):
            if e164 == numbers[0] or any(e164 == p[2] for p in placed):
                continue
            if not free:
                self._notes.append((number, header, text, f"the number '{part}' was not imported: the list has "
                                                          "no other phone field free for it (the first number was)"))
                continue
            prefix, head = free.pop(0)
            placed.append((prefix, head, e164, part))
        return numbers[0], parts[0], placed

    def counts(self) -> ImportProgress:
        return ImportProgress(self.rows, max(self.rows_total, self.rows), self.imported, self.rejected,
                              self.duplicates, self.dnc_filtered)

    def _is_dnc(self, e164: str, key: int) -> bool:
        if key in self.dnc_exact:
            return True
        prefixes = self.dnc_prefixes
        return any(e164[:n] in prefixes for n in self.dnc_lengths)

    def _description(self, e164: str) -> str:
        """Region, carrier, zones and the uncertainty flag of a number as ``COPY`` text."""
        # The shortest block key of a +7 number is its first 8 characters, and whether a number's
        # key is that short depends on those characters only: such blocks are found by them.
        if len(e164) == 12 and (found := self._described.get(e164[:8])) is not None:
            return found
        block = self.lookup.block_key(e164)
        if block is not None and (found := self._described.get(block)) is not None:
            return found
        info = self.lookup.details(e164)
        found = (f"{copytext.optional(info.region)}\t{copytext.optional(info.carrier)}\t"
                 f"{copytext.text_array(info.timezones)}\t{copytext.boolean(info.tz_uncertain)}\n")
        if block is not None:
            if len(self._described) >= MAX_BLOCKS:
                self._described.clear()
            self._described[block] = found
        return found

    def next_batch(self, rows: Iterator[tuple[int, list[str]]], size: int = BATCH_ROWS) -> Batch:
        """Read and convert up to ``size`` rows."""
        contacts: list[str] = []
        phones: list[tuple[int, str, str]] = []
        errors = self.errors
        known, check_dnc, allow_dup, country = self.known, self.check_dnc, self.allow_duplicates, self.country
        values, phone_columns = self.values, self.phones
        middle, end = self._contact_middle, self._contact_end
        description, escape, described = self._description, copytext.text, self._described
        notes = self._notes
        done = 0
        for number, cells in islice(rows, size):
            done += 1
            if not done % YIELD_ROWS:
                # Hand the GIL over now and then: the event loop is waiting to feed the writers
                # (otherwise it waits for the interpreter's 5 ms switch interval each time).
                time.sleep(0)
            parts: list[str] = []
            bad = False
            for index, header, prefix, encode, required in values:
                text = cells[index]
                if not text:
                    if required:
                        errors.add(number, header, "", "a value is required")
                        bad = True
                    continue
                try:
                    encoded = encode(text)
                except FieldValueError as err:
                    errors.add(number, header, text, str(err))
                    bad = True
                    continue
                if encoded is not None:
                    parts.append(prefix + encoded)
            found: list[tuple[str, str, str, int]] = []
            duplicate_of: tuple[str, str, str] | None = None
            dnc = duplicate = False
            for index, header, prefix, line_head, required, mask in phone_columns:
                text = cells[index]
                if not text:
                    if required:
                        errors.add(number, header, "", "a value is required")
                        bad = True
                    continue
                extra: Sequence[tuple[str, str, str, str]] = ()
                try:
                    if mask:
                        coerce(text, type=FieldType.phone.value, mask=mask)
                    e164 = to_e164(text, country)
                except (InvalidPhone, FieldValueError) as err:
                    several = None
                    if isinstance(err, InvalidPhone) and not mask:
                        try:
                            several = self._several(number, header, text, cells, [f[2] for f in found])
                        except InvalidPhone as other:
                            err = other
                    if several is None:
                        reason = err.reason if isinstance(err, InvalidPhone) else str(err)
                        errors.add(number, header, text, f"not a valid phone number: {reason}")
                        bad = True
                        continue
                    e164, text, extra = several
                # The cell's number first (it keeps the lower position), then any further numbers of
                # the cell, each in a phone field of its own.
                for data_prefix, head, number_e164, number_text in [(prefix, line_head, e164, text), *extra]:
                    parts.append(data_prefix + '"' + number_e164 + '"')
                    key = int(number_e164[1:])
                    # Only noted here; a rejected row counts as rejected, a DNC hit before a duplicate.
                    if check_dnc and not dnc:
                        dnc = self._is_dnc(number_e164, key)
                    if not allow_dup and not duplicate:
                        duplicate = key in known
                        if duplicate:
                            duplicate_of = (header, number_text, number_e164)
                    found.append((number_e164, number_text, head, key))
            if bad:
                self.rejected += 1
                notes.clear()
                continue
            if not found:
                errors.add(number, self.phone_headers, "", "no phone number")
                self.rejected += 1
                continue
            if dnc:
                self.dnc_filtered += 1
                notes.clear()
                continue
            if duplicate:
                self.duplicates += 1
                notes.clear()
                if duplicate_of is not None:  # listed in the report too, so the user sees which rows were left out
                    errors.add(number, duplicate_of[0], duplicate_of[1],
                               f"duplicate: {duplicate_of[2]} is already in the list or earlier in the file")
                continue
            if notes:
                for note in notes:
                    errors.add(*note)
                notes.clear()
            if not allow_dup:
                for phone in found:
                    known.add(phone[3])
            contact = len(contacts)
            document = "{" + ",".join(parts) + "}"
            if "\\" in document:
                document = document.replace("\\", "\\\\")
            contacts.append(middle + document + end)
            position = 0
            seen: set[str] = set()
            for e164, text, line_head, _key in found:
                if e164 in seen:
                    continue
                seen.add(e164)
                # Most numbers find their block by their first 8 characters (see _description).
                about = (described.get(e164[:8]) if len(e164) == 12 else None) or description(e164)
                phones.append((contact, e164, f"{line_head}{position}\t{escape(text)}\t{e164}\t{about}"))
                position += 1
        self.rows += done
        self.imported += len(contacts)
        now, before = self.counts(), self._reported
        self._reported = now
        delta = ImportProgress(now.rows_done - before.rows_done, now.rows_total, now.imported - before.imported,
                               now.rejected - before.rejected, now.duplicates - before.duplicates,
                               now.dnc_filtered - before.dnc_filtered)
        return Batch(contacts, phones, delta, last=done < size)


# --- the import -------------------------------------------------------------------------------------


def _with_actor(session: AsyncSession, actor: Actor) -> AsyncSession:
    session.info["actor"] = actor
    return session


async def _specs(session: AsyncSession, list_id: int) -> list[FieldSpec]:
    return [FieldSpec.of(f, lf) for lf, f in await repo.list_fields(session, list_id)]


def _sample_looks_like_phones(table: Table, index: int, country: str, share: float) -> bool:
    """Whether at least ``share`` of the non-empty cells of a column (in the first rows) are phone numbers."""
    good = total = 0
    for _, cells in islice(table.rows(), PHONE_SAMPLE):
        text = cells[index] if index < len(cells) else ""
        if not text:
            continue
        total += 1
        digits = sum(ch.isdigit() for ch in text)
        if digits >= 7:
            try:
                to_e164(text, country)
                good += 1
            except InvalidPhone:
                pass
    return total > 0 and good >= share * total


async def create_list_from_table(session: AsyncSession, name: str, table: Table,
                                 overrides: Mapping[str, str | int | None] | None, country: str
                                 ) -> tuple[int, list[tuple[int, FieldType]]]:
    """A new list whose fields come from the header: existing fields by name, new ones as strings or phones.

    A new field is a phone field when the column's values look like phone numbers. Returns the
    list id and the new fields (their indexes are built after the import, faster than during it).
    """
    existing = {normalize_name(f.name): f for f in (await repo.fields_by_name(session)).values()}
    by_header = {normalize_name(h): h for h in table.headers}
    wanted: dict[str, str | None] = {h: h for h in table.headers}
    for column, target in (overrides or {}).items():
        header = by_header.get(normalize_name(column))
        if header is None:
            raise ValidationFailed.field(f"mapping.{column}", f"the file has no column '{column}'")
        wanted[header] = None if target is None or str(target).strip() == "" else str(target).strip()
    fields: list[Field] = []
    created: list[tuple[int, FieldType]] = []
    for index, header in enumerate(table.headers):
        target = wanted[header]
        if target is None:
            continue
        fld = existing.get(normalize_name(target))
        if fld is None and target.isdigit():
            fld = await session.get(Field, int(target))
        if fld is None:
            # A header that says "phone" needs less evidence than, say, a column of account numbers.
            share = 0.5 if looks_like_phone_header(target) else 0.8
            is_phone = await asyncio.to_thread(_sample_looks_like_phones, table, index, country, share)
            fld = Field(name=target[:200], type=FieldType.phone if is_phone else FieldType.string, description="",
                        options=[], phone_type=PhoneType.mobile if is_phone else None)
            session.add(fld)
            await session.flush()
            existing[normalize_name(target)] = fld
            created.append((fld.id, FieldType(fld.type)))
        if fld.id not in {f.id for f in fields}:
            fields.append(fld)
    lst = ContactList(name=name, description="Created by an import")
    session.add(lst)
    await session.flush()
    session.add_all([ListField(list_id=lst.id, field_id=f.id, position=i, required=False)
                     for i, f in enumerate(fields)])
    await session.flush()
    return lst.id, created


async def _preload(session: AsyncSession, list_id: int, options: ImportOptions
                   ) -> tuple[set[int], set[int], set[str]]:
    known: set[int] = set()
    if not options.allow_duplicates:
        async for chunk in repo.known_phones(session, list_id):
            known.update(int(e[1:]) for e in chunk if e[1:].isdigit())
    exact: set[int] = set()
    prefixes: set[str] = set()
    if options.skip_dnc or options.dnc_list_id is not None:
        for number, is_prefix in await repo.dnc_entries(session, options.dnc_list_id):
            if is_prefix:
                prefixes.add(number)
            elif number[1:].isdigit():
                exact.add(int(number[1:]))
    return known, exact, prefixes


async def _finish_job(maker: async_sessionmaker[AsyncSession], actor: Actor, job_id: int, list_id: int | None,
                      filename: str, tags: list[str], status: ImportStatus, errors: ErrorReport,
                      message: str) -> ImportProgress:
    """Close the job and audit the import; the counters are those the committed batches added."""
    async with maker() as session, session.begin():
        _with_actor(session, actor)
        # numbers the phone codes left uncertain: settled by the contact's city or region field, the rest counted
        # and said with the result (issue 13 §3)
        settled = await settle_by_place(session, list_id) if list_id is not None else 0
        uncertain = await uncertain_of_job(session, job_id)
        await session.execute(update(ImportJob).where(ImportJob.id == job_id).values(
            options=ImportJob.options.op("||")(cast({"zones": {"uncertain": uncertain, "settled": settled}}, JSONB))))
        row = await repo.finish_job(session, job_id, status=status, message=message,
                                    errors_path=str(errors.path) if errors.written else None)
        counts = dataclasses.replace(ImportProgress(*row), uncertain=uncertain, settled=settled)
        changes = {"file": filename, "job_id": job_id, "status": status.value, "rows": counts.rows_done,
                   "imported": counts.imported, "rejected": counts.rejected, "duplicates": counts.duplicates,
                   "dnc_filtered": counts.dnc_filtered, "tags": tags, "uncertain_numbers": uncertain,
                   "settled_by_place": settled}
        if message:
            changes["message"] = message
        await log(session, AuditAction.custom, "contact_lists", list_id, event_label="contacts imported",
                  changes={k: {"old": None, "new": v} for k, v in changes.items()})
    return counts


async def run_import(maker: async_sessionmaker[AsyncSession], path: Path, *, settings: Settings,
                     list_id: int | None = None, list_name: str | None = None, create_list: bool = False,
                     filename: str | None = None, options: ImportOptions | None = None, job_id: int | None = None,
                     actor: Actor = SYSTEM, progress: ProgressCallback | None = None,
                     batch_rows: int | None = None) -> ImportResult:
    """Import ``path`` into a list (by id, or by name — created from the header when ``create_list``).

    With ``job_id`` the queued job of the API is used, otherwise a job is created. Raises
    :class:`ValidationFailed` / :class:`NotFound` for problems found before anything was written
    (not a table, bad mapping, unknown list); later failures end the job as ``failed`` and are
    returned in the result, not raised.
    """
    options = options or ImportOptions()
    batch_rows = batch_rows or BATCH_ROWS
    filename = filename or path.name
    started = time.monotonic()
    try:
        country = check_country(options.country or settings.default_country)
        table = await asyncio.to_thread(open_checked, path, filename, options.sheet, UploadLimits.of(settings))
    except DialerError as err:
        if job_id is not None:
            await _fail_early(maker, actor, job_id, err.detail)
        raise
    created_fields: list[tuple[int, FieldType]] = []
    engine: AsyncEngine | None = None
    errors = ErrorReport(settings.import_dir / f"import-{job_id or uuid.uuid4().hex}-errors.csv")
    try:
        # Setup: the list, the plan, the job — one transaction; nothing is written if it fails.
        async with maker() as session, session.begin():
            _with_actor(session, actor)
            bind = session.bind
            engine = bind if isinstance(bind, AsyncEngine) else None
            if list_id is None:
                if not list_name:
                    raise ValidationFailed.field("list", "name the list to import into")
                found = await repo.list_by_name(session, list_name)
                if found is None and not create_list:
                    raise NotFound(f"contact list '{list_name}' does not exist")
                if found is None:
                    list_id, created_fields = await create_list_from_table(
                        session, list_name, table, options.mapping, country)
                    options.mapping = None  # the new fields carry the header names
                else:
                    list_id = found.id
            elif await session.get(ContactList, list_id) is None:
                raise NotFound(f"contact list {list_id} does not exist")
            if options.dnc_list_id is not None and not await repo.dnc_list_exists(session, options.dnc_list_id):
                raise ValidationFailed.field("dnc_list_id", f"DNC list {options.dnc_list_id} does not exist")
            plan = make_plan(table, await _specs(session, list_id), options.mapping)
            rows_total = await asyncio.to_thread(estimate_rows, path, table)
            if job_id is None:
                job = ImportJob(list_id=list_id, filename=filename, status=ImportStatus.running,
                                options=options.as_json(), tags=list(options.tags), rows_total=rows_total,
                                created_by=actor.user_id)
                session.add(job)
                await session.flush()
                job_id = job.id
                errors.path = settings.import_dir / f"import-{job_id}-errors.csv"
            else:
                await repo.update_job(session, job_id, status=ImportStatus.running, rows_total=rows_total,
                                      list_id=list_id)
    except BaseException as err:
        table.close()
        if job_id is not None:
            reason = err.detail if isinstance(err, DialerError) else f"the import could not start: {err!r}"
            await _fail_early(maker, actor, job_id, reason)
        raise

    counts = ImportProgress(0, rows_total, 0, 0, 0, 0)
    status, message = ImportStatus.finished, ""
    pending: asyncio.Future[Batch] | None = None
    writing: set[asyncio.Task[ImportProgress]] = set()
    async with contextlib.AsyncExitStack() as held:
        try:
            async with maker() as session:
                known, dnc_exact, dnc_prefixes = await _preload(session, list_id, options)
                lookup = await PhoneLookup.load(session)
                batch_checks = REPLACE_ROW_CHECKS and await repo.import_checks_replaceable(session)
            tags = list(options.tags)
            processor = RowProcessor(plan, country=country, known=known, dnc_exact=dnc_exact,
                                     dnc_prefixes=dnc_prefixes, allow_duplicates=options.allow_duplicates,
                                     lookup=lookup, errors=errors, rows_total=rows_total, list_id=list_id,
                                     job_id=job_id, tags=tags)
            phone_fields = sorted({c.spec.id for c in plan.phone_columns}) if batch_checks else None
            rows = table.rows()
            # Each writer keeps its connection for the whole import: no pool check-out per batch.
            if engine is None:
                raise RuntimeError("imports need a sessionmaker bound to an AsyncEngine")
            writers: asyncio.Queue[AsyncConnection] = asyncio.Queue()
            for _ in range(WRITERS):
                writers.put_nowait(await held.enter_async_context(engine.connect()))

            async def write(batch: Batch) -> ImportProgress:
                conn = await writers.get()
                try:
                    await _write_batch(conn, list_id, job_id, batch, phone_fields=phone_fields)
                finally:
                    writers.put_nowait(conn)
                return batch.delta

            def committed(task: asyncio.Task[ImportProgress]) -> None:
                nonlocal counts
                if task.cancelled() or task.exception() is not None:
                    return
                counts = _add(counts, task.result())
                if progress is not None:
                    progress(counts)

            current = pending = asyncio.ensure_future(asyncio.to_thread(processor.next_batch, rows, batch_rows))
            while True:
                batch = await current
                pending = None
                if not batch.last:
                    # Read and convert the next rows while this batch is written.
                    current = pending = asyncio.ensure_future(
                        asyncio.to_thread(processor.next_batch, rows, batch_rows))
                while True:
                    for task in [t for t in writing if t.done()]:
                        writing.discard(task)
                        task.result()  # a failed batch stops the import
                    if len(writing) < WRITERS:
                        break
                    await asyncio.wait(writing, return_when=asyncio.FIRST_COMPLETED)
                task = asyncio.ensure_future(write(batch))
                task.add_done_callback(committed)
                writing.add(task)
                if batch.last:
                    break
            for finished in asyncio.as_completed(list(writing)):
                await finished
        except asyncio.CancelledError:
            status, message = ImportStatus.failed, "the import was interrupted (the server stopped)"
            raise
        except TableError as err:
            # Damage or a limit (DIALER_UPLOAD_*) met in the middle of the file: the uploader's problem,
            # said as is; the batches before it stay committed, as with any failure.
            log_.warning("import job %s stopped: %s", job_id, err)
            status, message = ImportStatus.failed, str(err)
        except Exception as err:
            log_.exception("import job %s failed", job_id)
            status = ImportStatus.failed
            message = err.detail if isinstance(err, DialerError) else f"{type(err).__name__}: {err}"
        finally:
            if writing:
                # Batches being written when another failed may still commit; the counts follow them.
                await asyncio.gather(*writing, return_exceptions=True)
            if pending is not None:
                # A worker thread cannot be cancelled: let it finish before closing the file (the first
                # error is the one reported).
                with contextlib.suppress(BaseException):
                    await pending
            # What was fixed up or left out of the file (skipped title rows, other sheets, renamed
            # headers, cells beyond the last header) is said with the result, not only in the preview.
            if table.warnings:
                notes = "; ".join(table.warnings)
                message = f"{message}; {notes}" if message else notes
            table.close()
            await asyncio.to_thread(errors.close)
            counts = await asyncio.shield(_finish_job(maker, actor, job_id, list_id, filename, list(options.tags),
                                                      status, errors, message))
    if created_fields and engine is not None:
        for fid, ftype in created_fields:
            await ensure_field_indexes(engine, fid, ftype)
    return ImportResult(job_id, list_id, status, counts.rows_done, counts.imported, counts.rejected,
                        counts.duplicates, counts.dnc_filtered, str(errors.path) if errors.written else None,
                        round(time.monotonic() - started, 3), message, counts.uncertain, counts.settled)


async def _write_batch(conn: AsyncConnection, list_id: int, job_id: int, batch: Batch, *,
                       phone_fields: Sequence[int] | None = None) -> None:
    """One transaction: the batch's contacts and phones, and its increments of the job's counters.

    The ids of the contacts and phones are drawn in the round trip that sets the transaction up.
    With ``phone_fields`` (the phone fields the batch's phones name) the foreign keys are checked
    once for the batch instead of once per row (:func:`.repository.start_import_batch`).
    """
    async with conn.begin():
        # A batch lost to a crash is lost with its progress update (same transaction), so the job
        # stays consistent; not waiting for the WAL flush of every batch is worth it.
        ids, phone_ids, references_ok = await repo.start_import_batch(
            conn, len(batch.contacts), len(batch.phones), list_id=list_id, job_id=job_id, phone_fields=phone_fields)
        if not references_ok:
            raise Conflict("the contact list, the import job or a phone field was deleted during the import")
        if batch.contacts:
            contacts, phones = await asyncio.to_thread(batch.render, ids, phone_ids)
            await repo.copy_text(conn, "contacts", repo.CONTACT_COLUMNS, contacts)
            await repo.copy_text(conn, "contact_phones", repo.PHONE_COLUMNS, phones)
        await repo.add_to_job(conn, job_id, batch.delta)


def _add(a: ImportProgress, b: ImportProgress) -> ImportProgress:
    rows = a.rows_done + b.rows_done
    return ImportProgress(rows, max(a.rows_total, b.rows_total, rows), a.imported + b.imported,
                          a.rejected + b.rejected, a.duplicates + b.duplicates, a.dnc_filtered + b.dnc_filtered)


async def _fail_early(maker: async_sessionmaker[AsyncSession], actor: Actor, job_id: int, message: str) -> None:
    async with maker() as session, session.begin():
        _with_actor(session, actor)
        await repo.update_job(session, job_id, status=ImportStatus.failed, message=message,
                              finished_at=datetime.now(UTC))


async def fail_interrupted_imports(maker: async_sessionmaker[AsyncSession]) -> int:
    """At start-up: jobs still queued or running were cut off by a stop; say so (their committed rows stay)."""
    async with maker() as session, session.begin():
        return await repo.fail_unfinished_jobs(
            session, "interrupted: the server stopped before the import finished; rows imported so far were kept")


async def remove_stale_uploads(maker: async_sessionmaker[AsyncSession], settings: Settings, *,
                               started: float | None = None) -> list[Path]:
    """At start-up, after :func:`fail_interrupted_imports`: delete spooled uploads a killed process left
    behind -- those written before this process started that no queued or running import job names
    (another process sharing the data directory may be working on those)."""
    from dialer import uploads

    async with maker() as session:
        keep = await repo.spools_in_use(session, SPOOL_OPTION)
    return await asyncio.to_thread(uploads.remove_stale_uploads, settings.import_dir / "uploads", keep=keep,
                                   started=started)


# --- API helpers ------------------------------------------------------------------------------------


async def preview(session: AsyncSession, list_id: int, path: Path, filename: str, *, rows: int = 10,
                  sheet: str | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """What the import wizard shows: format, encoding, delimiter, headers, the automatic mapping, first rows."""
    if await session.get(ContactList, list_id) is None:
        raise NotFound(f"contact list {list_id} does not exist")
    specs = await _specs(session, list_id)
    limits = UploadLimits.of(settings) if settings is not None else None
    table = await asyncio.to_thread(open_checked, path, filename, sheet, limits)
    try:
        width = len(table.headers)

        def first_rows() -> list[list[str]]:
            try:
                return [cells[:width] for _, cells in islice(table.rows(), rows)]
            except TableError as err:
                raise ValidationFailed.field("file", str(err)) from None

        sample = await asyncio.to_thread(first_rows)
        mapping = resolve_mapping(table.headers, specs, None)
        return {"format": table.format, "encoding": table.encoding, "delimiter": table.delimiter, "sheet": table.sheet,
                "headers": table.headers,
                "mapping": {h: None if s is None else {"field_id": s.id, "name": s.name, "type": s.type}
                            for h, s in mapping.items()},
                "rows": sample, "warnings": list(table.warnings)}
    finally:
        table.close()


async def start_import(session: AsyncSession, maker: async_sessionmaker[AsyncSession], list_id: int, path: Path,
                       filename: str, options: ImportOptions, *, settings: Settings, actor: Actor) -> ImportJob:
    """Check the upload (a table? a usable mapping?) and queue the job; it runs once this transaction commits."""
    from dialer.core.tasks import after_commit

    if await session.get(ContactList, list_id) is None:
        raise NotFound(f"contact list {list_id} does not exist")
    check_country(options.country or settings.default_country)
    table = await asyncio.to_thread(open_checked, path, filename, options.sheet, UploadLimits.of(settings))
    try:
        make_plan(table, await _specs(session, list_id), options.mapping)
    finally:
        table.close()
    if options.dnc_list_id is not None and not await repo.dnc_list_exists(session, options.dnc_list_id):
        raise ValidationFailed.field("dnc_list_id", f"DNC list {options.dnc_list_id} does not exist")
    # The job names its spooled upload, so the start-up clean-up of another process leaves it alone
    # while the job is queued or running (dialer.uploads.remove_stale_uploads).
    job = ImportJob(list_id=list_id, filename=filename, status=ImportStatus.queued,
                    options={**options.as_json(), SPOOL_OPTION: path.name},
                    tags=list(options.tags), created_by=actor.user_id)
    session.add(job)
    await session.flush()
    job_id = job.id

    async def go() -> None:
        try:
            await run_import(maker, path, settings=settings, list_id=list_id, filename=filename, options=options,
                             job_id=job_id, actor=actor)
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)

    after_commit(session, f"import job {job_id}", go)
    return job
