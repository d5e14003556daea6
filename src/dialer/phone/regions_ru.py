"""The 89 federal subjects of Russia, their IANA time zones, and matching of free-text region names.

The numbering registry (and people) write subjects in many ways: "Московская обл.", "Респ. Татарстан",
"Республика Саха /Якутия/", "Ханты - Мансийский - Югра АО", "г. Сочи|Краснодарский край".
:func:`subject_for` reduces such text to the canonical subject name; :func:`timezone_for` to the zone
the dialer must use for calling-hours rules.

Matching works on a key made of the significant words: lower case, "ё" -> "е", punctuation removed and
type words ("обл.", "Республика", "край", "АО", "г." ...) dropped, word order ignored.  If no exact key
matches, a key contained in the text wins (the most specific one), then an exact match on crude word
stems (so "Московской области" still finds "Московская область").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from types import MappingProxyType
from zoneinfo import ZoneInfo

__all__ = [
    "SUBJECTS",
    "SUBJECT_TIMEZONES",
    "is_country_wide",
    "subject_for",
    "subjects_named",
    "timezone_for",
    "zone_for_subject",
    "zone_for_text",
]

# (canonical name, main IANA zone, other names people and the registry use).  The Constitution lists
# 89 subjects, including Crimea and Sevastopol (2014) and the DPR, LPR, Zaporozhye and Kherson regions
# (2022); the registry publishes numbering for all of them.  The 2022 regions keep Moscow time; IANA has
# no zone of their own (tzdata still files them under Europe/Kyiv), so Europe/Moscow is what is true on
# the ground.  Historical okrugs merged into other subjects (2005-2008) map to their current subject
# because old registry files still name them.
_SUBJECT_DATA: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # Republics
    ("Республика Адыгея", "Europe/Moscow", ("Адыгея", "Республика Адыгея (Адыгея)")),
    ("Республика Алтай", "Asia/Barnaul", ("Горный Алтай",)),
    ("Республика Башкортостан", "Asia/Yekaterinburg", ("Башкортостан", "Башкирия")),
    ("Республика Бурятия", "Asia/Irkutsk", ("Бурятия",)),
    ("Республика Дагестан", "Europe/Moscow", ("Дагестан",)),
    ("Донецкая Народная Республика", "Europe/Moscow", ("ДНР", "Донецкая Республика")),
    ("Республика Ингушетия", "Europe/Moscow", ("Ингушетия",)),
    ("Кабардино-Балкарская Республика", "Europe/Moscow", ("Кабардино-Балкария", "КБР")),
    ("Республика Калмыкия", "Europe/Moscow", ("Калмыкия",)),
    ("Карачаево-Черкесская Республика", "Europe/Moscow", ("Карачаево-Черкесия", "КЧР")),
    ("Республика Карелия", "Europe/Moscow", ("Карелия",)),
    ("Республика Коми", "Europe/Moscow", ("Коми",)),
    ("Республика Крым", "Europe/Simferopol", ("Крым",)),
    ("Луганская Народная Республика", "Europe/Moscow", ("ЛНР", "Луганская Республика")),
    ("Республика Марий Эл", "Europe/Moscow", ("Марий Эл",)),
    ("Республика Мордовия", "Europe/Moscow", ("Мордовия",)),
    # Yakutia spans three offsets (UTC+9/+10/+11); see _DISTRICT_ZONES for the eastern districts.
    ("Республика Саха (Якутия)", "Asia/Yakutsk", ("Якутия", "Саха")),
    ("Республика Северная Осетия — Алания", "Europe/Moscow", ("Северная Осетия", "Алания")),
    ("Республика Татарстан", "Europe/Moscow", ("Татарстан", "Татария", "Республика Татарстан (Татарстан)")),
    ("Республика Тыва", "Asia/Krasnoyarsk", ("Тыва", "Тува")),
    ("Удмуртская Республика", "Europe/Samara", ("Удмуртия",)),
    ("Республика Хакасия", "Asia/Krasnoyarsk", ("Хакасия",)),
    ("Чеченская Республика", "Europe/Moscow", ("Чечня",)),
    ("Чувашская Республика", "Europe/Moscow", ("Чувашия", "Чувашская Республика — Чувашия")),
    # Krais
    ("Алтайский край", "Asia/Barnaul", ()),
    ("Забайкальский край", "Asia/Chita", ("Забайкалье", "Читинская область", "Агинский Бурятский АО")),
    ("Камчатский край", "Asia/Kamchatka", ("Камчатка", "Камчатская область", "Корякский АО")),
    ("Краснодарский край", "Europe/Moscow", ("Кубань",)),
    (
        "Красноярский край",
        "Asia/Krasnoyarsk",
        ("Таймырский (Долгано-Ненецкий) АО", "Долгано-Ненецкий АО", "Таймырский АО", "Эвенкийский АО"),
    ),
    ("Пермский край", "Asia/Yekaterinburg", ("Пермская область", "Коми-Пермяцкий АО")),
    ("Приморский край", "Asia/Vladivostok", ("Приморье",)),
    ("Ставропольский край", "Europe/Moscow", ("Ставрополье",)),
    ("Хабаровский край", "Asia/Vladivostok", ()),
    # Oblasts
    ("Амурская область", "Asia/Yakutsk", ()),
    ("Архангельская область", "Europe/Moscow", ()),
    ("Астраханская область", "Europe/Astrakhan", ()),
    ("Белгородская область", "Europe/Moscow", ()),
    ("Брянская область", "Europe/Moscow", ()),
    ("Владимирская область", "Europe/Moscow", ()),
    ("Волгоградская область", "Europe/Volgograd", ()),
    ("Вологодская область", "Europe/Moscow", ()),
    ("Воронежская область", "Europe/Moscow", ()),
    ("Запорожская область", "Europe/Moscow", ()),
    ("Ивановская область", "Europe/Moscow", ()),
    ("Иркутская область", "Asia/Irkutsk", ("Усть-Ордынский Бурятский АО",)),
    ("Калининградская область", "Europe/Kaliningrad", ()),
    ("Калужская область", "Europe/Moscow", ()),
    ("Кемеровская область — Кузбасс", "Asia/Novokuznetsk", ("Кемеровская область", "Кузбасс")),
    ("Кировская область", "Europe/Kirov", ()),
    ("Костромская область", "Europe/Moscow", ()),
    ("Курганская область", "Asia/Yekaterinburg", ()),
    ("Курская область", "Europe/Moscow", ()),
    ("Ленинградская область", "Europe/Moscow", ()),
    ("Липецкая область", "Europe/Moscow", ()),
    ("Магаданская область", "Asia/Magadan", ()),
    ("Московская область", "Europe/Moscow", ("Подмосковье",)),
    ("Мурманская область", "Europe/Moscow", ()),
    ("Нижегородская область", "Europe/Moscow", ()),
    ("Новгородская область", "Europe/Moscow", ()),
    ("Новосибирская область", "Asia/Novosibirsk", ()),
    ("Омская область", "Asia/Omsk", ()),
    ("Оренбургская область", "Asia/Yekaterinburg", ()),
    ("Орловская область", "Europe/Moscow", ()),
    ("Пензенская область", "Europe/Moscow", ()),
    ("Псковская область", "Europe/Moscow", ()),
    ("Ростовская область", "Europe/Moscow", ()),
    ("Рязанская область", "Europe/Moscow", ()),
    ("Самарская область", "Europe/Samara", ()),
    ("Саратовская область", "Europe/Saratov", ()),
    ("Сахалинская область", "Asia/Sakhalin", ()),
    ("Свердловская область", "Asia/Yekaterinburg", ()),
    ("Смоленская область", "Europe/Moscow", ()),
    ("Тамбовская область", "Europe/Moscow", ()),
    ("Тверская область", "Europe/Moscow", ()),
    ("Томская область", "Asia/Tomsk", ()),
    ("Тульская область", "Europe/Moscow", ()),
    ("Тюменская область", "Asia/Yekaterinburg", ()),
    ("Ульяновская область", "Europe/Ulyanovsk", ()),
    ("Херсонская область", "Europe/Moscow", ()),
    ("Челябинская область", "Asia/Yekaterinburg", ()),
    ("Ярославская область", "Europe/Moscow", ()),
    # Federal cities
    ("Москва", "Europe/Moscow", ()),
    ("Санкт-Петербург", "Europe/Moscow", ("Петербург", "СПб")),
    ("Севастополь", "Europe/Simferopol", ()),
    # Autonomous oblast and okrugs
    ("Еврейская автономная область", "Asia/Vladivostok", ("ЕАО",)),
    ("Ненецкий автономный округ", "Europe/Moscow", ("НАО",)),
    (
        "Ханты-Мансийский автономный округ — Югра",
        "Asia/Yekaterinburg",
        ("Ханты-Мансийский автономный округ", "Югра", "ХМАО", "ХМАО — Югра"),
    ),
    ("Чукотский автономный округ", "Asia/Anadyr", ("Чукотка",)),
    ("Ямало-Ненецкий автономный округ", "Asia/Yekaterinburg", ("Ямал", "ЯНАО")),
)

SUBJECTS: tuple[str, ...] = tuple(name for name, _, _ in _SUBJECT_DATA)
"""Canonical names of all 89 federal subjects."""

SUBJECT_TIMEZONES: Mapping[str, str] = MappingProxyType({name: tz for name, tz, _ in _SUBJECT_DATA})
"""Canonical subject name -> main IANA time zone."""

# Okrugs that lie inside another subject: when a text names both, the okrug is the precise answer.
_NESTED_IN = {
    "Ненецкий автономный округ": "Архангельская область",
    "Ханты-Мансийский автономный округ — Югра": "Тюменская область",
    "Ямало-Ненецкий автономный округ": "Тюменская область",
}

# Districts of multi-zone subjects that do not use the subject's main zone (stem -> zone), found in
# the municipal part of registry text ("р-н Оймяконский|Республика Саха /Якутия/").
_DISTRICT_ZONES: dict[str, tuple[tuple[str, str], ...]] = {
    "Республика Саха (Якутия)": (
        ("оймякон", "Asia/Ust-Nera"),
        ("усть-нер", "Asia/Ust-Nera"),
        ("верхоянск", "Asia/Vladivostok"),
        ("усть-янск", "Asia/Vladivostok"),
        ("томпонск", "Asia/Khandyga"),
        ("хандыга", "Asia/Khandyga"),
        ("усть-майск", "Asia/Khandyga"),
        ("абыйск", "Asia/Srednekolymsk"),
        ("аллаиховск", "Asia/Srednekolymsk"),
        ("верхнеколымск", "Asia/Srednekolymsk"),
        ("момск", "Asia/Srednekolymsk"),
        ("нижнеколымск", "Asia/Srednekolymsk"),
        ("среднеколымск", "Asia/Srednekolymsk"),
    ),
    "Сахалинская область": (("северо-курильск", "Asia/Srednekolymsk"),),
}

# Words that say what kind of place it is rather than which one.
_TYPE_WORDS = frozenset(
    {
        "г", "гор", "город", "федерального", "значения",
        "обл", "область", "области",
        "респ", "республика", "республики", "народная", "народной",
        "край", "края", "кр",
        "ао", "авт", "автономный", "автономная", "автономного", "автономной", "округ", "округа", "окр",
    }
)  # fmt: skip
# Parts that name a municipality, not a subject: never guessed from by the fuzzy levels.
_MUNICIPAL_RE = re.compile(r"(?:^|[\s.|])(?:р-н|район|г\.\s*о\.|м\.\s*о\.|мо|пгт|гп|сп|с\.|п\.|д\.|м\.р-н)(?=[\s.]|$)")
_NON_WORD_RE = re.compile(r"[^0-9a-zа-я]+")
_AND_RE = re.compile(r"\s+и\s+")
_SUFFIXES = (
    "ского", "ская", "ский", "ское", "ской", "ских", "ском", "ую", "ая", "ой", "ый", "ий", "ое",
    "ия", "ии", "ие", "ью", "ья", "ь", "а", "я", "ы", "и", "у", "ю", "е", "о", "й",
)  # fmt: skip

_Key = frozenset[str]


def _clean(text: str) -> str:
    return text.lower().replace("ё", "е")


def _tokens(text: str) -> list[str]:
    """Significant words of a region name, in order, without duplicates."""
    words = _NON_WORD_RE.split(_clean(text))
    seen: dict[str, None] = {}
    for word in words:
        if len(word) > 1 and word not in _TYPE_WORDS:
            seen.setdefault(word, None)
    return list(seen)


def _stem(word: str) -> str:
    """Crude Russian stem: strip one inflection ending, keeping at least three letters."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _stem_key(key: Iterable[str]) -> _Key:
    return frozenset(_stem(w) for w in key)


def _build_indexes() -> tuple[dict[_Key, str], dict[_Key, str]]:
    exact: dict[_Key, str] = {}
    stems: dict[_Key, str | None] = {}
    for name, _, aliases in _SUBJECT_DATA:
        for alias in (name, *aliases):
            key = frozenset(_tokens(alias))
            other = exact.setdefault(key, name)
            if other != name:  # a programming error in the table above; fail loudly at import
                raise RuntimeError(f"region alias {alias!r} is ambiguous: {other!r} / {name!r}")
            skey = _stem_key(key)
            # Stems are lossy; a stem key shared by two subjects is simply not used.
            stems[skey] = name if stems.get(skey, name) == name else None
    return exact, {k: v for k, v in stems.items() if v is not None}


_EXACT, _STEMS = _build_indexes()


def _best_contained(key: _Key, index: Mapping[_Key, str]) -> str | None:
    """The subject whose alias is the largest set of words contained in ``key`` (unique or None)."""
    best_size = 0
    best: set[str] = set()
    for alias, name in index.items():
        if alias and alias <= key:
            if len(alias) > best_size:
                best_size, best = len(alias), {name}
            elif len(alias) == best_size:
                best.add(name)
    return next(iter(best)) if len(best) == 1 else None


def _parts(text: str) -> list[str]:
    """Region text split into candidate names, most likely subject first.

    "district|subject" puts the subject last, so "|" parts are tried from the end; "A и B" ("г. Москва
    и Московская область") names the primary subject first.
    """
    parts: list[str] = []
    for piece in reversed(text.split("|")):
        parts.extend(p for p in _AND_RE.split(piece.strip()) if p.strip())
    return parts


def _pick(found: list[str]) -> str:
    names = set(found)
    for name in found:
        if _NESTED_IN.get(name) in names:
            return name
    return found[0]


def _found(parts: list[str]) -> list[str]:
    """Subjects named by the candidate ``parts`` at the first matching level (exact, contained, stems)."""
    keys = [frozenset(_tokens(p)) for p in parts]
    found = [_EXACT[k] for k in keys if k in _EXACT]
    if found:
        return found
    fuzzy_keys = [k for p, k in zip(parts, keys, strict=True) if k and not _MUNICIPAL_RE.search(_clean(p))]
    # Stems only ever match a whole key: "Нижний Новгород" must not become "Новгородская область".
    for level in (lambda k: _best_contained(k, _EXACT), lambda k: _STEMS.get(_stem_key(k))):
        found = [name for name in (level(k) for k in fuzzy_keys) if name is not None]
        if found:
            return found
    return []


@lru_cache(maxsize=8192)
def subject_for(region_text: str) -> str | None:
    """Canonical federal subject named by free-text ``region_text``, or ``None`` if none is recognised.

    Handles registry forms such as "г. Сочи|Краснодарский край", "Кемеровская область - Кузбасс обл.",
    "Республика Саха /Якутия/", abbreviations ("обл.", "Респ.", "АО", "г."), ё/е and hyphen spacing.
    A text naming several subjects ("Москва и Московская область") gives the primary one; see
    :func:`subjects_named` for all of them.
    """
    if not region_text or not region_text.strip():
        return None
    found = _found(_parts(region_text))
    return _pick(found) if found else None


@lru_cache(maxsize=8192)
def subjects_named(region_text: str) -> tuple[str, ...]:
    """Every federal subject ``region_text`` names, primary first ("Магаданская обл. и Чукотский АО")."""
    if not region_text or not region_text.strip():
        return ()
    found = _found(_parts(region_text))
    if not found:
        return ()
    primary = _pick(found)
    return (primary, *dict.fromkeys(n for n in found if n != primary))


# Country-wide and federal-district names: ranges that are valid anywhere, so no single zone applies.
_COUNTRY_WORDS = frozenset({"российская", "федерация", "россия", "рф", "russia", "russian", "federation"})
_FEDERAL_DISTRICT_RE = re.compile(r"федеральн\w*\s+округ|(?:^|\s)фо(?:$|\s)")


def is_country_wide(region_text: str) -> bool:
    """True for "Российская Федерация", "РФ", "Дальневосточный федеральный округ" and the like.

    Such registry ranges (8-800 numbers, federal mobile ranges) have no zone of their own; an import
    counts them apart from region names it could not recognise.
    """
    text = _clean(region_text)
    words = set(_tokens(text))
    return bool(words) and (words <= _COUNTRY_WORDS or bool(_FEDERAL_DISTRICT_RE.search(text)))


def _offset_now(zone: str) -> timedelta | None:
    return datetime.now(UTC).astimezone(ZoneInfo(zone)).utcoffset()


def zone_for_subject(subject: str, detail: str | None = None) -> str:
    """IANA zone of canonical ``subject``, refined by a district named in ``detail`` when it matters.

    Most subjects have one zone.  For Yakutia (and the North Kuril district of Sakhalin) a registry
    text such as "р-н Оймяконский|Республика Саха /Якутия/" selects the district's zone.  Raises
    ``KeyError`` for a name that is not in :data:`SUBJECTS`.
    """
    zone = SUBJECT_TIMEZONES[subject]
    districts = _DISTRICT_ZONES.get(subject)
    if districts and detail:
        text = re.sub(r"\s*-\s*", "-", _clean(detail))
        for stem, district_zone in districts:
            if stem in text:
                return district_zone
    return zone


@lru_cache(maxsize=8192)
def zone_for_text(region_text: str, detail: str | None = None) -> str | None:
    """The one IANA zone for registry text ``region_text`` (a district in ``detail`` may refine it).

    ``None`` when no subject is recognised, and also when the text names several subjects whose
    clocks differ ("Магаданская обл. и Чукотский АО": UTC+11 and UTC+12): picking one of them
    would silently give part of the range a wrong calling window.  Subjects that keep the same time
    ("Москва и Московская область", "Новосибирская обл. и Томская обл.") give the primary one's zone.
    """
    named = subjects_named(region_text)
    if not named:
        return None
    zones = {zone_for_subject(name, detail if detail is not None else region_text) for name in named}
    if len({_offset_now(zone) for zone in zones}) > 1:
        return None
    return zone_for_subject(named[0], detail if detail is not None else region_text)


@lru_cache(maxsize=8192)
def timezone_for(region_text: str) -> str | None:
    """IANA time zone for free-text ``region_text`` (see :func:`subject_for`), or ``None``.

    Uses the subject's main zone, refined for the few districts of multi-zone subjects that registry
    text names (e.g. Oymyakonsky district of Yakutia -> Asia/Ust-Nera).  ``None`` also when the text
    names several subjects in different time zones (see :func:`zone_for_text`).
    """
    return zone_for_text(region_text)
