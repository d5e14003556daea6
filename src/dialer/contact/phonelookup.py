"""Region, carrier and time zones of a phone number, for contacts and the importer.

Lookup order (000 §13.1, 002 §6.1): the phone codes of the reference book — the user's own rows
(narrowest first), then the numbering registry's — and only for what they do not say, the
``phonenumbers`` data via :func:`dialer.phone.describe`. A zone from a phone code is certain; a
number that can only be placed at country level keeps every candidate zone with
``tz_uncertain=True`` (the engine then dials it only while the window is open in all of them).

The codes are loaded once into sorted arrays (:class:`dialer.timezone.codes.CodeTable`: one
bisect per number) and cached per database; :func:`phone_lookup` reloads them when the table
changed (a signature query detects it), and every import job loads a fresh one.

Numbers share their details in blocks: :meth:`PhoneLookup.block_key` names the leading digits that
decide them — those that decide :func:`dialer.phone.describe` (:func:`dialer.phone.normalize.description_key`,
usually "+7" and six digits) and enough to place the number among the phone codes (every range of
the table starts and ends on a multiple of a power of ten). :meth:`PhoneLookup.details` answers a
block once; an import of a million numbers describes a few thousand blocks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.phone import InvalidPhone, describe
from dialer.phone.normalize import description_key
from dialer.timezone.codes import WIDTH, CodeTable
from dialer.timezone.service import load_code_table


@dataclass(frozen=True, slots=True)
class PhoneDetails:
    region: str | None
    carrier: str | None
    timezones: tuple[str, ...]
    tz_uncertain: bool


UNKNOWN = PhoneDetails(None, None, (), False)

#: Blocks a lookup remembers before it starts over (an entry takes about 150 bytes).
MAX_BLOCKS = 1 << 17


class PhoneLookup:
    """Answers :meth:`details` for E.164 numbers from an in-memory code table; safe to share.

    ``boundary_digits``: how many leading digits (on the 15-digit key scale of
    :mod:`dialer.timezone.codes`) every range boundary of ``table`` needs — all ranges start and end
    on multiples of ``10 ** (15 - boundary_digits)``. Without it (None) numbers are not shared in
    blocks unless the table is empty.
    """

    def __init__(self, table: CodeTable | None = None, signature: tuple[Any, ...] = (), *,
                 boundary_digits: int | None = None) -> None:
        self.table = table if table is not None and len(table) else None
        self.signature = signature
        self.checked_at = time.monotonic()
        # Characters of an E.164 number ("+" and digits) that place it among the codes' ranges.
        self._table_chars: int | None = 0 if self.table is None else (
            None if boundary_digits is None else boundary_digits + 1)
        self._blocks: dict[str, PhoneDetails] = {}

    @classmethod
    async def load(cls, session: AsyncSession) -> PhoneLookup:
        signature = await _signature(session)
        table = await load_code_table(session)
        digits: int | None = await _boundary_digits(session)
        if await _signature(session) != signature:
            digits = None  # the codes changed between the reads: describe numbers one by one
        return cls(table, signature, boundary_digits=digits)

    def block_key(self, e164: str) -> str | None:
        """The leading part of ``e164`` that decides :meth:`details`; None when only the whole number does.

        Numbers with the same key have the same details, so callers may keep per key whatever they
        derive from the details (the importer keeps their COPY text).
        """
        if self._table_chars is None:
            return None
        key = description_key(e164)
        if key is not None and len(key) < self._table_chars:
            key = e164[: self._table_chars]
        return key

    def details(self, e164: str) -> PhoneDetails:
        """What is known about a valid E.164 number; never raises (unknown parts are empty)."""
        key = self.block_key(e164)
        if key is None:
            return self._details(e164)
        found = self._blocks.get(key)
        if found is None:
            found = self._details(e164)
            if len(self._blocks) >= MAX_BLOCKS:
                self._blocks.clear()
            self._blocks[key] = found
        return found

    def _details(self, e164: str) -> PhoneDetails:
        info = None
        if self.table is not None:
            # The key scale of phone codes: international digits right-padded to 15.
            info = self.table.lookup(int(e164[1:].ljust(WIDTH, "0")))
            if info is not None and info.tz and info.region and info.carrier:
                return PhoneDetails(info.region, info.carrier, (info.tz,), False)
        try:
            described = describe(e164)
        except InvalidPhone:
            described = None
        if info is None:
            if described is None:
                return UNKNOWN
            zones = tuple(described.timezones)
            return PhoneDetails(described.region, described.carrier, zones, len(zones) > 1)
        zones = (info.tz,) if info.tz else tuple(described.timezones) if described else ()
        return PhoneDetails(
            info.region or (described.region if described else None),
            info.carrier or (described.carrier if described else None),
            zones, len(zones) > 1,
        )


_SIGNATURE_SQL = text(
    "SELECT (SELECT count(*) FROM phone_codes), (SELECT coalesce(max(id), 0) FROM phone_codes), "
    # xmin grows with every insert or update, so its maximum moves whenever a row changes.
    "(SELECT coalesce(max(xmin::text::bigint), 0) FROM phone_codes), "
    "(SELECT coalesce(max(xmin::text::bigint), 0) FROM time_zones), (SELECT count(*) FROM time_zones)"
)


async def _signature(session: AsyncSession) -> tuple[Any, ...]:
    row = (await session.execute(_SIGNATURE_SQL)).one()
    return tuple(row)


# Significant digits of a boundary: the 15-digit key without its trailing zeros ("end" is exclusive).
_BOUNDARY_DIGITS_SQL = text(
    "SELECT coalesce(max(greatest(length(rtrim(lpad(range_from::text, 15, '0'), '0')), "
    "length(rtrim(lpad((range_to + 1)::text, 15, '0'), '0')))), 0) FROM phone_codes"
)


async def _boundary_digits(session: AsyncSession) -> int:
    return int(await session.scalar(_BOUNDARY_DIGITS_SQL) or 0)


#: Seconds a cached lookup is trusted before the signature query checks the table again.
MAX_AGE_S = 5.0
_cache: dict[str, PhoneLookup] = {}


def invalidate() -> None:
    """Forget the cached lookups (call after changing phone codes in this process)."""
    _cache.clear()


async def phone_lookup(session: AsyncSession, *, fresh: bool = False, max_age_s: float = MAX_AGE_S) -> PhoneLookup:
    """The lookup of the session's database for single contacts; reloaded when the phone codes changed.

    The change check (a scan of ``phone_codes``: some milliseconds with the whole registry) runs at
    most every ``max_age_s`` seconds, so another process's change shows within that time;
    :func:`invalidate` makes this process's own changes show at once. Imports load a fresh one.
    """
    bind = session.bind
    key = str(getattr(bind, "url", "")) if bind is not None else ""
    cached = _cache.get(key)
    now = time.monotonic()
    if not fresh and cached is not None:
        if now - cached.checked_at < max_age_s:
            return cached
        if cached.signature == await _signature(session):
            cached.checked_at = now
            return cached
    lookup = await PhoneLookup.load(session)
    _cache[key] = lookup
    return lookup
