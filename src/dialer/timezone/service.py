"""Phone-code lookups and loading the national numbering registry into the phone-code table."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.audit.recorder import log
from dialer.exceptions import ValidationFailed
from dialer.models import PhoneCode, TimeZone
from dialer.models.enums import AuditAction
from dialer.timezone.codes import CodeInfo, CodeTable, number_key, number_range

BATCH = 5000


def check_zone(tz: str, field: str = "tz") -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed.field(field, f"'{tz}' is not an IANA time zone (like Europe/Moscow)")
    if tz not in available_timezones() and tz != "UTC":
        raise ValidationFailed.field(field, f"'{tz}' is not an IANA time zone (like Europe/Moscow)")
    return tz


async def load_code_table(session: AsyncSession) -> CodeTable:
    """All phone codes as an in-memory table (manual rows win over the registry's)."""
    rows = (await session.execute(
        select(PhoneCode.range_from, PhoneCode.range_to, PhoneCode.tz, TimeZone.tz, PhoneCode.region,
               PhoneCode.carrier, PhoneCode.source)
        .outerjoin(TimeZone, TimeZone.id == PhoneCode.time_zone_id))).all()
    return CodeTable([(lo, hi, CodeInfo(tz or zone_tz, region, carrier, source == "manual"))
                      for lo, hi, tz, zone_tz, region, carrier, source in rows])


async def lookup(session: AsyncSession, e164: str) -> CodeInfo | None:
    """The most specific phone code for one number, straight from the database."""
    key = number_key(e164)
    rows = (await session.execute(
        select(PhoneCode.range_from, PhoneCode.range_to, PhoneCode.tz, TimeZone.tz, PhoneCode.region,
               PhoneCode.carrier, PhoneCode.source)
        .outerjoin(TimeZone, TimeZone.id == PhoneCode.time_zone_id)
        .where(PhoneCode.range_from <= key, PhoneCode.range_to >= key)
        .order_by((PhoneCode.source == "manual").desc(), (PhoneCode.range_to - PhoneCode.range_from).asc())
        .limit(1))).all()
    if not rows:
        return None
    _lo, _hi, tz, zone_tz, region, carrier, source = rows[0]
    return CodeInfo(tz or zone_tz, region, carrier, source == "manual")


async def _zone_ids(session: AsyncSession) -> dict[str, int]:
    return {tz: zid for zid, tz in (await session.execute(select(TimeZone.id, TimeZone.tz))).all()}


async def import_numbering(maker: async_sessionmaker[AsyncSession], path: Path, *,
                           progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Load a registry file (ABC/DEF CSV of the regulator) into the phone-code table.

    The file is read as a stream and written in batches. Rows of the registry for the codes the
    file covers are replaced (a newer file of DEF-9xx replaces the older DEF-9xx rows and leaves
    ABC rows alone); the user's own rows are never touched. A time zone of the reference book is
    created for each zone the file needs and does not exist yet.
    """
    from dialer.phone.registry import RegistryRange, iter_registry

    started = time.monotonic()
    size = (await asyncio.to_thread(path.stat)).st_size
    ranges = rejected = 0
    errors: list[dict[str, Any]] = []
    no_zone: dict[str, int] = {}
    replaced_codes: set[str] = set()
    batch: list[dict[str, Any]] = []

    async with maker() as session, session.begin():
        zones = await _zone_ids(session)

        async def flush() -> None:
            nonlocal batch
            if not batch:
                return
            codes = {row["prefix"] for row in batch} - replaced_codes
            if codes:
                await session.execute(delete(PhoneCode).where(PhoneCode.source == "registry",
                                                              PhoneCode.prefix.in_(codes)))
                replaced_codes.update(codes)
            for row in batch:
                tz = row["tz"]
                if tz and tz not in zones:
                    zone = TimeZone(name=tz, tz=tz, description="Created by the numbering registry import")
                    session.add(zone)
                    await session.flush()
                    zones[tz] = zone.id
                row["time_zone_id"] = zones.get(tz) if tz else None
            await session.execute(insert(PhoneCode), batch)
            batch = []

        with path.open("rb") as stream:
            for item in iter_registry(stream):
                if isinstance(item, RegistryRange):
                    lo, hi = number_range(item.e164_from, item.e164_to)
                    if item.timezone is None:
                        no_zone[item.region] = no_zone.get(item.region, 0) + 1
                    batch.append({"prefix": "+7" + item.code, "range_from": lo, "range_to": hi, "tz": item.timezone,
                                  "region": item.subject or item.region, "carrier": item.carrier,
                                  "description": item.region, "source": "registry"})
                    ranges += 1
                else:
                    rejected += 1
                    if len(errors) < 1000:
                        errors.append({"line": item.line, "column": item.column, "reason": item.reason})
                if len(batch) >= BATCH:
                    await flush()
                    if progress:
                        progress(stream.tell(), size)
            await flush()
        await log(session, AuditAction.custom, "phone_codes", None, event_label="numbering registry import",
                  changes={"file": {"old": None, "new": path.name}, "ranges": {"old": None, "new": ranges},
                           "rejected": {"old": None, "new": rejected}})
    if progress:
        progress(size, size)
    return {"ranges": ranges, "rejected": rejected, "errors": errors[:100],
            "regions_without_zone": dict(sorted(no_zone.items(), key=lambda kv: -kv[1])[:50]),
            "seconds": round(time.monotonic() - started, 3)}


async def count_codes(session: AsyncSession, time_zone_id: int) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(PhoneCode).where(PhoneCode.time_zone_id == time_zone_id)) or 0)
