"""Settling uncertain zones by a contact's own city or region (§3 of issue 13).

A number the phone codes cannot place (a Russian mobile without a registry: 11 candidate zones) stays *uncertain*
and is dialled only while the window is open in all its candidates. When the list has a field that names the
contact's place — "Город", "Регион", "Область", "City" … — and its value names a town or federal subject of one
zone that is among the number's candidates, that zone is the number's (:func:`dialer.timezone.bundled.place_zone`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.timezone.bundled import place_zone

#: Field names (lower case, ё as е) that hold a contact's place.
PLACE_FIELDS = frozenset({
    "город", "населенный пункт", "нас. пункт", "регион", "область", "край", "субъект", "субъект рф", "республика",
    "регион проживания", "город проживания", "city", "town", "region", "state",
})

_FIELDS_SQL = text(
    "SELECT f.id, f.name FROM list_fields lf JOIN fields f ON f.id = lf.field_id "
    "WHERE lf.list_id = :list_id AND f.type IN ('string', 'enum') ORDER BY lf.position, f.id"
)
_VALUES_SQL = text(
    "SELECT DISTINCT c.data->>:key FROM contacts c JOIN contact_phones p ON p.contact_id = c.id "
    "WHERE c.list_id = :list_id AND p.tz_uncertain AND c.data ? :key"
)
_SETTLE_SQL = text(
    "UPDATE contact_phones p SET timezones = ARRAY[v.zone]::text[], tz_uncertain = false "
    "FROM contacts c, unnest(CAST(:places AS text[]), CAST(:zones AS text[])) AS v(place, zone) "
    "WHERE p.contact_id = c.id AND c.list_id = :list_id AND p.list_id = :list_id AND p.tz_uncertain "
    "AND c.data->>:key = v.place AND v.zone = ANY(p.timezones)"
)
_UNCERTAIN_SQL = text(
    "SELECT count(*) FROM contact_phones p JOIN contacts c ON c.id = p.contact_id "
    "WHERE c.import_job_id = :job_id AND p.tz_uncertain"
)


def is_place_field(name: str) -> bool:
    return " ".join(name.lower().replace("ё", "е").split()) in PLACE_FIELDS


async def settle_by_place(session: AsyncSession, list_id: int) -> int:
    """Give the list's uncertain numbers the zone their contact's place field names, when it is one of their
    candidates; returns how many numbers were settled."""
    settled = 0
    fields = [(fid, name) for fid, name in (await session.execute(_FIELDS_SQL, {"list_id": list_id})).all()
              if is_place_field(name)]
    for fid, _name in fields:
        key = str(fid)
        places = [p for (p,) in (await session.execute(_VALUES_SQL, {"list_id": list_id, "key": key})).all() if p]
        known = [(p, z) for p in places if (z := place_zone(p)) is not None]
        if not known:
            continue
        result: Any = await session.execute(_SETTLE_SQL, {
            "list_id": list_id, "key": key, "places": [p for p, _ in known], "zones": [z for _, z in known]})
        settled += int(result.rowcount or 0)
    return settled


async def uncertain_of_job(session: AsyncSession, job_id: int) -> int:
    """Numbers of the contacts an import created that are still uncertain."""
    return int(await session.scalar(_UNCERTAIN_SQL, {"job_id": job_id}) or 0)
