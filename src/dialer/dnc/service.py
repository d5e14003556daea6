"""Do-not-call matching and entry normalisation.

An entry is either a whole number (E.164) or a prefix ("+7800" blocks every number that starts
with it). A number is blocked when the global blacklist or any of the given lists holds the
number itself or one of its prefixes. The lookup asks for the number and all its leading parts
at once (``number IN (...)``), so both kinds are answered by one index scan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.exceptions import ValidationFailed
from dialer.models import DncEntry, DncList
from dialer.phone.normalize import InvalidPhone, to_e164

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
