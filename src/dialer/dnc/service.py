"""Do-not-call matching and entry normalisation.

An entry is either a whole number (E.164) or a prefix ("+7800" blocks every number that starts
with it). A number is blocked when the global blacklist or any of the given lists holds the
number itself or one of its prefixes. The lookup asks for the number and all its leading parts
at once (``number IN (...)``), so both kinds are answered by one index scan.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.exceptions import ValidationFailed
from dialer.models import DncEntry, DncList
from dialer.phone.normalize import InvalidPhone, to_e164
from dialer.tabular import Table, TableError

_PREFIX = re.compile(r"^\+?\d{1,15}$")


@dataclass(frozen=True)
class DncMatch:
    list_id: int
    list_name: str
    number: str
    is_prefix: bool


def normalize_entry(number: str, *, is_prefix: bool, default_region: str, field: str = "number") -> str:
    """The stored form of an entry: E.164 for a number, "+" and international digits for a prefix."""
    if is_prefix:
        digits = re.sub(r"[\s\-().]", "", number)
        if not _PREFIX.match(digits):
            raise ValidationFailed.field(field, f"'{number}' is not a prefix: use international digits like +7800")
        return "+" + digits.lstrip("+")
    try:
        return to_e164(number, default_region)
    except InvalidPhone as err:
        raise ValidationFailed.field(field, f"'{number}': {err}")


def prefixes(e164: str) -> list[str]:
    """"+7912" → ["+7", "+79", "+791", "+7912"]: every prefix entry that could block the number."""
    return [e164[:i] for i in range(2, len(e164) + 1)]


async def global_list_id(session: AsyncSession) -> int:
    return (await session.scalars(select(DncList.id).where(DncList.is_global))).one()


async def matches(session: AsyncSession, e164: str, list_ids: list[int] | None = None) -> list[DncMatch]:
    """Entries blocking ``e164`` in the global blacklist and in ``list_ids``."""
    lists = or_(DncList.is_global, DncList.id.in_(list_ids or []))
    rows = (await session.execute(
        select(DncEntry.list_id, DncList.name, DncEntry.number, DncEntry.is_prefix)
        .join(DncList, DncList.id == DncEntry.list_id)
        .where(lists, or_(and_(DncEntry.number == e164, DncEntry.is_prefix.is_(False)),
                          and_(DncEntry.number.in_(prefixes(e164)), DncEntry.is_prefix.is_(True))))
        .order_by(DncEntry.list_id, DncEntry.number)
    )).all()
    return [DncMatch(*row) for row in rows]


# --- numbers from a file (002 §9: "добавить номера вручную или загрузить список") ----------------------------

#: Rows sampled to find the column of numbers when the header does not say.
SAMPLE_ROWS = 200
#: Problems listed in a file's result (all of them are counted).
MAX_PROBLEMS = 100


@dataclass
class FileNumbers:
    """What a file of numbers held: the valid entries (file order, no repeats) and the problems."""

    column: str
    rows: int = 0
    numbers: dict[str, None] = field(default_factory=dict)
    rejected: int = 0
    problems: list[dict[str, str | int]] = field(default_factory=list)

    def add_problem(self, row: int, value: str, reason: str) -> None:
        self.rejected += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append({"row": row, "value": value[:200], "reason": reason})


def _rows(table: Table) -> Iterator[tuple[int, list[str]]]:
    """The table's rows; damage or an upload limit (DIALER_UPLOAD_*) met in the middle of the file is a 422."""
    try:
        yield from table.rows()
    except TableError as err:
        raise ValidationFailed.field("file", str(err)) from None


def _parses(text: str, *, is_prefix: bool, region: str) -> bool:
    try:
        normalize_entry(text, is_prefix=is_prefix, default_region=region)
    except ValidationFailed:
        return False
    return True


def number_column(table: Table, column: str | None, *, is_prefix: bool, region: str) -> int:
    """The column of the numbers: the one named, the only one, one whose header says "phone", or the
    first whose sampled cells are mostly numbers. Raises ValidationFailed naming the columns."""
    from dialer.contact.mapping import looks_like_phone_header, normalize_name

    headers = table.headers
    if column is not None:
        wanted = normalize_name(column)
        for index, header in enumerate(headers):
            if normalize_name(header) == wanted:
                return index
        raise ValidationFailed.field("column", f"the file has no column '{column}'; its columns: "
                                               f"{', '.join(headers)}")
    if len(headers) == 1:
        return 0
    for index, header in enumerate(headers):
        if looks_like_phone_header(header):
            return index
    sample = [cells for _, cells in islice(_rows(table), SAMPLE_ROWS)]
    for index in range(len(headers)):
        values = [cells[index] for cells in sample if index < len(cells) and cells[index]]
        if values and sum(_parses(v, is_prefix=is_prefix, region=region) for v in values) >= 0.8 * len(values):
            return index
    raise ValidationFailed.field("column", f"no column of the file holds phone numbers; name it (columns: "
                                           f"{', '.join(headers)})")


def read_numbers(table: Table, index: int, *, is_prefix: bool, region: str) -> FileNumbers:
    """Every number of the column, normalised; a file without a header row has its first number kept."""
    result = FileNumbers(column=table.headers[index])
    header = table.headers[index]
    if _parses(header, is_prefix=is_prefix, region=region):
        # No header row: what was taken for a header is the first number.
        result.rows += 1
        result.numbers[normalize_entry(header, is_prefix=is_prefix, default_region=region)] = None
    for row, cells in _rows(table):
        text = cells[index].strip() if index < len(cells) else ""
        result.rows += 1
        if not text:
            result.add_problem(row, "", "no number in this row")
            continue
        try:
            number = normalize_entry(text, is_prefix=is_prefix, default_region=region)
        except ValidationFailed as err:
            result.add_problem(row, text, str(err.errors[0]["reason"]) if err.errors else err.detail)
            continue
        result.numbers[number] = None
    return result
