"""Phone-code lookups and loading the national numbering registry into the phone-code table."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.audit.recorder import log
from dialer.exceptions import ValidationFailed
from dialer.models import PhoneCode, TimeZone
from dialer.models.enums import AuditAction
from dialer.phone.regions_ru import is_country_wide
from dialer.phone.registry import (
    RegistryFormatError,
    RegistryRange,
    RegistryRejected,
    RegistryRowError,
    iter_registry,
)
from dialer.tabular import UploadLimits
from dialer.timezone.codes import CodeInfo, CodeTable, key_to_text, merge, number_key, number_range

BATCH = 5000


def check_zone(tz: str, field: str = "tz") -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed.field(field, f"'{tz}' is not an IANA time zone (like Europe/Moscow)")
    if tz not in available_timezones() and tz != "UTC":
        raise ValidationFailed.field(field, f"'{tz}' is not an IANA time zone (like Europe/Moscow)")
    return tz


_CODE_COLUMNS = (PhoneCode.range_from, PhoneCode.range_to, PhoneCode.tz, TimeZone.tz, PhoneCode.region,
                 PhoneCode.carrier, PhoneCode.source)


_LOAD_TABLE_SQL = (
    "SELECT c.range_from, c.range_to, coalesce(nullif(c.tz, ''), z.tz), c.region, c.carrier, c.source = 'manual' "
    "FROM phone_codes c LEFT JOIN time_zones z ON z.id = c.time_zone_id"
)


async def load_code_table(session: AsyncSession) -> CodeTable:
    """All phone codes as an in-memory table (manual rows win over the registry's).

    Streamed in partitions, and rows with the same zone, region and carrier share one
    :class:`CodeInfo` (the whole registry has a few thousand distinct ones among ~450,000 ranges),
    so the table takes tens of megabytes rather than hundreds.
    """
    infos: dict[tuple[Any, ...], CodeInfo] = {}
    rows: list[tuple[int, int, CodeInfo]] = []
    conn = await session.connection()
    # An asyncpg cursor needs the transaction open on the driver connection, which SQLAlchemy only
    # opens with the first statement it runs.
    await conn.execute(text("SELECT 1"))
    driver: Any = (await conn.get_raw_connection()).driver_connection
    # The driver's cursor directly: through SQLAlchemy's result layer a row costs about twice the
    # time, and a single fetch twice the memory.
    async for lo, hi, tz, region, carrier, manual in driver.cursor(_LOAD_TABLE_SQL, prefetch=20_000):
        fields = (tz, region, carrier, manual)
        info = infos.get(fields)
        if info is None:
            info = infos[fields] = CodeInfo(tz, region, carrier, manual)
        rows.append((lo, hi, info))
    return CodeTable(rows)


async def lookup(session: AsyncSession, e164: str) -> CodeInfo | None:
    """The phone code details of one number, straight from the database (same answer as :class:`CodeTable`)."""
    key = number_key(e164)
    rows = (await session.execute(
        select(*_CODE_COLUMNS)
        .outerjoin(TimeZone, TimeZone.id == PhoneCode.time_zone_id)
        .where(PhoneCode.range_from <= key, PhoneCode.range_to >= key)
        .order_by((PhoneCode.source == "manual").desc(), (PhoneCode.range_to - PhoneCode.range_from).asc(),
                  PhoneCode.id)
        .limit(50))).all()
    return merge(CodeInfo(tz or zone_tz, region, carrier, source == "manual")
                 for _lo, _hi, tz, zone_tz, region, carrier, source in rows)


_LOAD_COLUMNS = ("line", "prefix", "range_from", "range_to", "tz", "region", "carrier", "description")
_CREATE_LOAD_SQL = text(
    "CREATE TEMPORARY TABLE numbering_load (line integer NOT NULL, prefix text NOT NULL, "
    "range_from bigint NOT NULL, range_to bigint NOT NULL, tz text, region text, carrier text, "
    "description text NOT NULL) ON COMMIT DROP"
)
# Rows whose range starts inside any earlier range of the file (by start): the registry is a partition
# of the numbering space, and the in-memory lookup relies on registry ranges never overlapping.
_OVERLAPS_SQL = text(
    "SELECT s.line, s.prefix, s.range_from, s.range_to, "
    "(SELECT min(o.line) FROM numbering_load o WHERE o.line <> s.line AND o.range_from <= s.range_to "
    " AND o.range_to >= s.range_from) AS other "
    "FROM (SELECT line, prefix, range_from, range_to, max(range_to) OVER (ORDER BY range_from, range_to, line "
    "      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach FROM numbering_load) s "
    "WHERE s.range_from <= s.reach ORDER BY s.line LIMIT :limit"
)
_OVERLAP_LINES_SQL = text(
    "SELECT line FROM (SELECT line, range_from, max(range_to) OVER (ORDER BY range_from, range_to, line "
    "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach FROM numbering_load) s WHERE range_from <= reach"
)
_REPLACE_SQL = text(
    "DELETE FROM phone_codes WHERE source = 'registry' AND prefix IN (SELECT DISTINCT prefix FROM numbering_load)"
)
_INSERT_SQL = text(
    "INSERT INTO phone_codes (time_zone_id, prefix, range_from, range_to, tz, region, carrier, description, source) "
    "SELECT z.id, l.prefix, l.range_from, l.range_to, l.tz, l.region, l.carrier, l.description, 'registry' "
    "FROM numbering_load l LEFT JOIN (SELECT tz, min(id) AS id FROM time_zones GROUP BY tz) z ON z.tz = l.tz "
    "ORDER BY l.range_from"
)
_MAX_ERRORS = 100


@dataclass
class _Parsed:
    """What a registry file held, accumulated batch by batch (in a worker thread)."""

    ranges: int = 0
    rejected: int = 0
    errors: list[RegistryRowError] = field(default_factory=list)
    zones: set[str] = field(default_factory=set)
    # region text -> [rows, first line, why it has no zone]
    no_zone: dict[str, list[Any]] = field(default_factory=dict)

    def take(self, items: Iterator[RegistryRange | RegistryRowError], size: int, *,
             keep: bool, max_rows: int | None = None, name: str = "") -> tuple[list[tuple[Any, ...]], bool]:
        """The next ``size`` rows as COPY records (none once a row was rejected, unless ``keep``); a file of
        more than ``max_rows`` rows is refused (the upload limit of contact imports)."""
        records: list[tuple[Any, ...]] = []
        for taken, item in enumerate(items, 1):
            if max_rows is not None and self.ranges + self.rejected >= max_rows:
                raise RegistryFormatError(f"{name}: more than {max_rows} rows (DIALER_UPLOAD_MAX_ROWS); the file is "
                                          "refused and nothing was changed")
            if isinstance(item, RegistryRange):
                self.ranges += 1
                if item.timezone is None:
                    self._no_zone(item)
                else:
                    self.zones.add(item.timezone)
                if keep or not self.rejected:
                    lo, hi = number_range(item.e164_from, item.e164_to)
                    records.append((item.line, "+7" + item.code, lo, hi, item.timezone, item.subject or item.region,
                                    item.carrier, item.region))
            else:
                self.rejected += 1
                if len(self.errors) < _MAX_ERRORS:
                    self.errors.append(item)
            if taken >= size:
                return records, True
        return records, False

    def _no_zone(self, item: RegistryRange) -> None:
        entry = self.no_zone.get(item.region)
        if entry is not None:
            entry[0] += 1
            return
        if item.subject is not None:
            why = "names subjects in different time zones"
        elif item.region and is_country_wide(item.region):
            why = "country-wide"
        else:
            why = "not a recognised federal subject"
        self.no_zone[item.region] = [1, item.line, why]


class _Named:
    """A binary stream under the name messages should show."""

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self._stream, self.name = stream, name

    def read(self, size: int = -1, /) -> bytes:
        return self._stream.read(size)


def _error_dict(error: RegistryRowError) -> dict[str, Any]:
    return {"line": error.line, "column": error.column, "reason": error.reason, "text": error.text}


async def import_numbering(maker: async_sessionmaker[AsyncSession], path: Path, *,
                           progress: Callable[[int, int, int], None] | None = None,
                           skip_invalid: bool = False, source_name: str | None = None,
                           limits: UploadLimits | None = None) -> dict[str, Any]:
    """Load a registry file (ABC/DEF CSV of the regulator) into the phone-code table, all or nothing.

    The file is streamed in a worker thread into a temporary table with COPY (memory does not depend
    on its size); then, in the same transaction, the registry rows of the codes the file covers are
    replaced (a newer DEF-9xx file replaces the older DEF-9xx rows and leaves ABC rows alone) and
    the user's own rows are never touched. A time zone of the reference book is created for each
    zone the file needs and does not exist yet.

    A file with bad rows (bad codes or bounds, "От" after "До", a capacity that does not match,
    overlapping ranges) or without any range is refused with :class:`RegistryRejected` and changes
    nothing; ``skip_invalid`` loads the good rows anyway and reports the bad ones. A file that is
    not a registry table raises :class:`RegistryFormatError`. Ranges whose region names no single
    zone ("Российская Федерация", an unknown name) are loaded without a zone -- their numbers stay
    uncertain -- and listed in ``regions_without_zone`` with the first line of each region.
    ``source_name`` names the file in messages (an upload's own name rather than its spooled copy). ``limits``: the
    upload limits of contact imports (file size, rows), met by an uploaded file.
    ``progress(bytes read, file size, rows read)`` is called after each batch.
    """
    name = source_name or path.name
    started = time.monotonic()
    size = (await asyncio.to_thread(path.stat)).st_size
    if limits is not None and size > limits.max_unpacked_bytes:
        raise RegistryFormatError(f"{name}: {size} bytes, more than {limits.max_unpacked_bytes} "
                                  "(DIALER_UPLOAD_MAX_UNPACKED_MB); the file is refused and nothing was changed")
    parsed = _Parsed()

    async with maker() as session, session.begin():
        conn = await session.connection()
        await conn.execute(_CREATE_LOAD_SQL)
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        with path.open("rb") as stream:
            items = iter_registry(_Named(stream, name))
            try:
                more = True
                while more:
                    # Parsing is CPU work: off the event loop, so the API stays responsive meanwhile.
                    records, more = await asyncio.to_thread(
                        parsed.take, items, BATCH, keep=skip_invalid,
                        max_rows=limits.max_rows if limits is not None else None, name=name)
                    if records:
                        await driver.copy_records_to_table("numbering_load", records=records, columns=_LOAD_COLUMNS)
                    if progress:
                        progress(stream.tell(), size, parsed.ranges + parsed.rejected)
            finally:
                items.close()

        overlaps = (await conn.execute(_OVERLAPS_SQL, {"limit": 20})).all()
        for line, prefix, lo, hi, other in overlaps:
            digits = len(prefix) - 1 + 7  # the digits of "+7" and the code, then the 7-digit subscriber part
            parsed.errors.append(RegistryRowError(
                line, None, f"range {key_to_text(lo, digits=digits)}..{key_to_text(hi, digits=digits)} overlaps "
                f"the range on line {other}"))
        if overlaps:
            overlap_lines = [r[0] for r in (await conn.execute(_OVERLAP_LINES_SQL)).all()]
            parsed.rejected += len(overlap_lines)
            parsed.ranges -= len(overlap_lines)
            await conn.execute(text("DELETE FROM numbering_load WHERE line = ANY(:lines)"), {"lines": overlap_lines})
            parsed.errors.sort(key=lambda e: e.line)
        if (parsed.rejected and not skip_invalid) or not parsed.ranges:
            # Raising rolls the transaction back: the table keeps what it had.
            raise RegistryRejected(name, parsed.rejected, parsed.errors)

        zones = {tz for (tz,) in (await session.execute(select(TimeZone.tz))).all()}
        for tz in sorted(parsed.zones - zones):
            session.add(TimeZone(name=tz, tz=tz, description="Created by the numbering registry import"))
        await session.flush()
        replaced = (await conn.execute(_REPLACE_SQL)).rowcount
        loaded = (await conn.execute(_INSERT_SQL)).rowcount
        codes = int(await conn.scalar(text("SELECT count(DISTINCT prefix) FROM numbering_load")) or 0)
        await log(session, AuditAction.custom, "phone_codes", None, event_label="numbering registry import",
                  changes={"file": {"old": None, "new": name}, "ranges": {"old": replaced, "new": loaded},
                           "rejected": {"old": None, "new": parsed.rejected}})
    if progress:
        progress(size, size, parsed.ranges + parsed.rejected)
    no_zone = sorted(parsed.no_zone.items(), key=lambda kv: (-kv[1][0], kv[1][1]))
    return {"ranges": loaded, "rejected": parsed.rejected, "codes": codes, "replaced": replaced,
            "errors": [_error_dict(e) for e in parsed.errors[:_MAX_ERRORS]],
            "regions_without_zone": [{"region": region, "rows": rows, "first_line": line, "reason": why}
                                     for region, (rows, line, why) in no_zone[:50]],
            "seconds": round(time.monotonic() - started, 3)}


async def count_codes(session: AsyncSession, time_zone_id: int) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(PhoneCode).where(PhoneCode.time_zone_id == time_zone_id)) or 0)


#: How to load the regulator's current registry, said wherever uncertain numbers are counted.
REGISTRY_HINT = ("download the current ABC-3xx, ABC-4xx, ABC-8xx and DEF-9xx tables from the regulator's open data "
                 "(opendata.digital.gov.ru, \"Выписка из реестра Российской системы и плана нумерации\") and load "
                 "them under Administration → Time zones and codes, or with `dialer import-numbering FILE`")


async def load_bundled(maker: async_sessionmaker[AsyncSession], *,
                       only_if_empty: bool = False) -> dict[str, Any] | None:
    """Load the bundled Rossvyaz snapshot (:mod:`dialer.timezone.bundled`) as registry rows, the way a registry
    file is loaded (its codes' registry rows replaced, the user's rows untouched, audited); then settle the
    contacts' numbers it places. ``only_if_empty``: only when the phone-code table has no row at all (the first
    start), else None. Returns the import's result with ``source`` describing the snapshot."""
    import tempfile

    from dialer.timezone import bundled

    if only_if_empty:
        async with maker() as session:
            if await session.scalar(select(PhoneCode.id).limit(1)) is not None:
                return None
    snap = bundled.snapshot()
    data = await asyncio.to_thread(bundled.registry_csv)
    async with maker() as session:
        started = await session.scalar(select(func.clock_timestamp()))
    with tempfile.TemporaryDirectory(prefix="dialer-numbering-") as folder:
        path = Path(folder) / "bundled-registry.csv"
        await asyncio.to_thread(path.write_bytes, data)
        result = await import_numbering(maker, path, skip_invalid=True, source_name=snap.source_name)
    async with maker() as session, session.begin():
        # the rows say where they came from, so the admin page can tell the snapshot from a current registry
        await session.execute(
            update(PhoneCode).where(PhoneCode.source == "registry", PhoneCode.created_at >= started)
            .values(description=PhoneCode.description + f" ({bundled.MARK} {snap.version})"))
    result["settled"] = await settle_uncertain_phones(maker)
    result["source"] = {"package": snap.package, "version": snap.version, "licence": snap.licence,
                        "data_from": snap.data_from, "data_to": snap.data_to}
    return result


_SETTLE_SQL = text(
    "UPDATE contact_phones p SET timezones = ARRAY[m.tz]::text[], tz_uncertain = false, "
    "region = coalesce(p.region, m.region), carrier = coalesce(p.carrier, m.carrier) "
    "FROM (SELECT p2.id, c.tz, c.region, c.carrier FROM contact_phones p2 "
    "      CROSS JOIN LATERAL (SELECT coalesce(nullif(pc.tz, ''), z.tz) AS tz, pc.region, pc.carrier "
    "        FROM phone_codes pc LEFT JOIN time_zones z ON z.id = pc.time_zone_id "
    "        WHERE pc.range_from <= rpad(substr(p2.e164, 2), 15, '0')::bigint "
    "          AND pc.range_to >= rpad(substr(p2.e164, 2), 15, '0')::bigint "
    "          AND coalesce(nullif(pc.tz, ''), z.tz) IS NOT NULL "
    "        ORDER BY pc.source = 'manual' DESC, pc.range_to - pc.range_from, pc.id LIMIT 1) c "
    "      WHERE p2.tz_uncertain AND p2.e164 ~ '^\\+[0-9]{1,15}$') m "
    "WHERE p.id = m.id"
)


async def settle_uncertain_phones(maker: async_sessionmaker[AsyncSession]) -> int:
    """Give the uncertain numbers of every contact the zone the phone codes now know (after a registry load): the
    same answer an import would give them today. Returns how many numbers were settled."""
    async with maker() as session, session.begin():
        result: Any = await session.execute(_SETTLE_SQL)
        settled = result.rowcount
        if settled:
            await log(session, AuditAction.custom, "contact_phones", None, event_label="zones settled by phone codes",
                      changes={"numbers": {"old": None, "new": settled}})
    return int(settled or 0)


async def coverage(session: AsyncSession) -> dict[str, Any]:
    """How well the phone codes place the contacts' numbers: the rows by source, the numbers still uncertain, and
    what to do about them (for the admin page and integrations)."""
    from dialer.timezone import bundled

    by_source = {source: count for source, count in (await session.execute(
        select(PhoneCode.source, func.count()).group_by(PhoneCode.source))).all()}
    phones, uncertain = (await session.execute(text(
        "SELECT count(*), count(*) FILTER (WHERE tz_uncertain) FROM contact_phones"))).one()
    bundled_rows = int(await session.scalar(select(func.count()).select_from(PhoneCode).where(
        PhoneCode.source == "registry", PhoneCode.description.like(f"% ({bundled.MARK} %"))) or 0)
    snap = bundled.snapshot()
    return {"phone_codes": {"manual": int(by_source.get("manual", 0)), "registry": int(by_source.get("registry", 0)),
                            "bundled": bundled_rows},
            "numbers": int(phones), "uncertain": int(uncertain),
            "bundled": {"package": snap.package, "version": snap.version, "licence": snap.licence,
                        "data_from": snap.data_from, "data_to": snap.data_to},
            "hint": REGISTRY_HINT}
