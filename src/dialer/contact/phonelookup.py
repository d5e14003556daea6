"""Region, carrier and time zones of a phone number, for contacts and the importer.

Lookup order (000 §13.1, 002 §6.1): the phone codes of the reference book — the user's own rows
(narrowest first), then the numbering registry's — and only for what they do not say, the
``phonenumbers`` data via :func:`dialer.phone.describe`. A zone from a phone code is certain; a
number that can only be placed at country level keeps every candidate zone with
``tz_uncertain=True`` (the engine then dials it only while the window is open in all of them).

The codes are loaded once into sorted arrays (:class:`dialer.timezone.codes.CodeTable`: one
bisect per number) and cached per database; :func:`phone_lookup` reloads them when the table
changed (a signature query detects it), and every import job loads a fresh one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.phone import InvalidPhone, describe
from dialer.timezone.codes import WIDTH, CodeTable
from dialer.timezone.service import load_code_table


@dataclass(frozen=True, slots=True)
class PhoneDetails:
    region: str | None
    carrier: str | None
    timezones: tuple[str, ...]
    tz_uncertain: bool


UNKNOWN = PhoneDetails(None, None, (), False)


class PhoneLookup:
    """Answers :meth:`details` for E.164 numbers from an in-memory code table; safe to share."""

    def __init__(self, table: CodeTable | None = None, signature: tuple[Any, ...] = ()) -> None:
        self.table = table if table is not None and len(table) else None
        self.signature = signature
        self.checked_at = time.monotonic()

    @classmethod
    async def load(cls, session: AsyncSession) -> PhoneLookup:
        signature = await _signature(session)
        return cls(await load_code_table(session), signature)

    def details(self, e164: str) -> PhoneDetails:
        """What is known about a valid E.164 number; never raises (unknown parts are empty)."""
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
