"""Which column of an uploaded table goes into which field of the list (000 §5.1.2).

Automatic mapping compares names after folding case, "ё", spaces and punctuation, so "Телефон:",
" телефон " and "ТЕЛЕФОН" are one name. A header that does not name a field exactly is matched
through groups of synonyms ("Тел.", "Phone", "Мобильный" ↔ a field "Телефон"; "ФИО", "Name" ↔
"ФИО"/"Клиент"), and any phone-like header ("Телефон 2", "Рабочий тел.") falls to the list's
first unused phone field. The
user's explicit mapping (header → field name or id, empty to ignore) always wins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from dialer.contact.values import FieldSpec
from dialer.exceptions import ValidationFailed

_PUNCT = re.compile(r"[\s_\-.,:;*№#()\"'/\\]+")

_SYNONYMS: tuple[frozenset[str], ...] = tuple(frozenset(group) for group in (
    {"телефон", "тел", "phone", "mobile", "мобильный", "мобильный телефон", "моб", "моб тел", "номер",
     "номер телефона", "телефон клиента", "tel", "telephone", "phone number", "сотовый", "сотовый телефон",
     "msisdn", "contact phone", "cell", "cell phone", "mobile phone"},
    {"фио", "ф и о", "имя", "name", "full name", "fullname", "клиент", "client", "фамилия имя отчество", "контакт",
     "contact", "customer", "client name", "имя клиента"},
    {"email", "e mail", "почта", "эл почта", "электронная почта", "mail"},
    {"город", "city", "населенный пункт", "town"},
    {"адрес", "address"},
    {"дата рождения", "birth date", "birthday", "дата рожд", "др", "birthdate"},
    {"сумма", "amount", "sum", "долг", "сумма долга", "debt"},
    {"компания", "company", "организация", "organization"},
    {"комментарий", "comment", "примечание", "note", "notes", "описание", "description"},
))
_PHONE_GROUP = _SYNONYMS[0]


def normalize_name(name: str) -> str:
    return _PUNCT.sub(" ", name.casefold().replace("ё", "е")).strip()


def _group(name: str) -> frozenset[str] | None:
    for group in _SYNONYMS:
        if name in group:
            return group
    return None


# A header is about a phone when it has one of these words and otherwise only numbers or the
# words below: "Телефон 2", "Рабочий телефон", "Моб. тел.", "Номер телефона", "Phone (home)"
# -- but not "Тип телефона" or "Оператор моб. связи".
_PHONE_WORDS = frozenset({"телефон", "телефона", "тел", "моб", "мобильный", "сотовый", "сот", "phone", "telephone",
                          "tel", "mobile", "cell", "msisdn"})
_PHONE_QUALIFIERS = frozenset({
    "номер", "рабочий", "раб", "домашний", "дом", "контактный", "конт", "основной", "осн", "дополнительный", "доп",
    "личный", "городской", "гор", "стационарный", "мобильный", "моб", "сотовый", "второй", "другой", "клиента",
    "контакта", "для", "связи", "work", "home", "office", "other", "main", "primary", "secondary", "private",
    "contact", "number", "no", "mobile", "cell", "tel",
})


def looks_like_phone_header(header: str) -> bool:
    """Whether a column header names a phone ("Телефон", "Тел. 2", "Рабочий телефон", "Mobile phone")."""
    name = normalize_name(header)
    if name in _PHONE_GROUP:
        return True
    words = [w.rstrip("0123456789") for w in name.split()]
    words = [w for w in words if w]
    return any(w in _PHONE_WORDS for w in words) and all(w in _PHONE_WORDS or w in _PHONE_QUALIFIERS for w in words)


def auto_mapping(headers: Sequence[str], fields: Sequence[FieldSpec]) -> dict[str, FieldSpec | None]:
    """Header → field for the columns whose names say which field they are; other headers → None."""
    result: dict[str, FieldSpec | None] = dict.fromkeys(headers)
    used: set[int] = set()
    by_name: dict[str, FieldSpec] = {}
    for f in fields:
        by_name.setdefault(normalize_name(f.name), f)
    for h in headers:
        exact = by_name.get(normalize_name(h))
        if exact is not None and exact.id not in used:
            result[h] = exact
            used.add(exact.id)
    for h in headers:
        if result[h] is not None:
            continue
        name = normalize_name(h)
        group = _group(name)
        match = None
        if group is not None:
            match = next((f for f in fields if f.id not in used and normalize_name(f.name) in group), None)
        if match is None and (group is _PHONE_GROUP or (group is None and looks_like_phone_header(h))):
            # "Телефон 1", "Телефон 2", "Моб." fill the list's phone fields in order.
            match = next((f for f in fields if f.id not in used and f.is_phone), None)
        if match is not None:
            result[h] = match
            used.add(match.id)
    return result


def resolve_mapping(headers: Sequence[str], fields: Sequence[FieldSpec],
                    overrides: Mapping[str, str | int | None] | None) -> dict[str, FieldSpec | None]:
    """The automatic mapping with the user's ``overrides`` applied; refuses unknown headers or fields."""
    mapping = auto_mapping(headers, fields)
    if not overrides:
        return mapping
    header_of = {normalize_name(h): h for h in headers}
    field_of: dict[str, FieldSpec] = {}
    for f in fields:
        field_of.setdefault(str(f.id), f)
        field_of.setdefault(f.name, f)
        field_of.setdefault(normalize_name(f.name), f)
    explicit: dict[str, FieldSpec | None] = {}
    for column, target in overrides.items():
        header = column if column in mapping else header_of.get(normalize_name(column))
        if header is None:
            raise ValidationFailed.field(f"mapping.{column}", f"the file has no column '{column}'; "
                                         f"its columns are: {', '.join(headers)}")
        if target is None or str(target).strip() == "":
            explicit[header] = None
            continue
        key = str(target).strip()
        spec = field_of.get(key) or field_of.get(normalize_name(key))
        if spec is None:
            raise ValidationFailed.field(f"mapping.{column}", f"the list has no field '{target}'")
        explicit[header] = spec
    taken = {s.id for s in explicit.values() if s is not None}
    for header, spec in mapping.items():
        if header in explicit:
            mapping[header] = explicit[header]
        elif spec is not None and spec.id in taken:
            mapping[header] = None  # the user sent this field's values from another column
    seen: dict[int, str] = {}
    for header, spec in mapping.items():
        if spec is None:
            continue
        if spec.id in seen:
            raise ValidationFailed.field(f"mapping.{header}", f"field '{spec.name}' is already filled from "
                                         f"column '{seen[spec.id]}'")
        seen[spec.id] = header
    return mapping
