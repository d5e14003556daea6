"""Fields, contact lists and contacts: validation, phones, filters, deletes (000 §3–§5).

Values are checked and converted per field type (:mod:`dialer.fieldvalues`), errors name the
field (``values.<field name>``). Phones are derived: every phone field of the list with a value
becomes a ``contact_phones`` row (E.164, the field's phone type, region / zones / carrier from
:mod:`.phonelookup`), plus the contact's extra phones. Removing a field from a list keeps the
values in ``contacts.data``: they reappear when the field is added back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from sqlalchemy import Select, false, func, or_
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from dialer.api.crud import ListParams, load
from dialer.audit.recorder import log
from dialer.campaign.repository import fields_by_id
from dialer.campaign.selection import (
    ConditionError,
    FieldInfo,
    normalize_conditions,
    normalize_sort,
    referenced_field_ids,
)
from dialer.contact import repository as repo
from dialer.contact.indexes import drop_field_indexes, ensure_field_indexes, numeric_expr, text_expr, value_expr
from dialer.contact.phonelookup import PhoneLookup, phone_lookup
from dialer.contact.schemas import ContactCreate, ContactFilterIn, ContactUpdate, PhoneIn
from dialer.contact.values import FieldSpec, coerce_value, text_of
from dialer.core.tasks import after_commit
from dialer.exceptions import Conflict, NotFound, ValidationFailed
from dialer.fieldvalues import FieldValue, FieldValueError, validate_mask
from dialer.models import Contact, ContactList, ContactPhone, Field
from dialer.models.enums import AuditAction, ContactStatus, FieldType, OutcomeCategory, PhoneType
from dialer.phone import InvalidPhone, to_e164

#: Ids of deleted contacts written into the audit entry of a bulk delete.
AUDIT_IDS = 1000

# --- fields ---------------------------------------------------------------------------------------


def _engine(session: AsyncSession) -> AsyncEngine:
    bind = session.bind
    assert isinstance(bind, AsyncEngine), "contact sessions are bound to an AsyncEngine"
    return bind


def check_field(data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a complete field definition; returns it cleaned (empty mask → None ...)."""
    out = dict(data)
    name = str(out.get("name") or "")
    if name.isdigit():
        raise ValidationFailed.field("name", "a field name cannot be only digits (numbers stand for field ids)")
    ftype = FieldType(out["type"])
    mask = out.get("mask")
    if mask is not None and not str(mask).strip():
        mask = None
    if mask is not None:
        try:
            validate_mask(mask)
        except ValueError as err:
            raise ValidationFailed.field("mask", str(err))
    out["mask"] = mask
    options = [str(o).strip() for o in (out.get("options") or [])]
    if ftype == FieldType.enum:
        if not options or not all(options):
            raise ValidationFailed.field("options", "an enum field needs a non-empty list of non-empty options")
        folded = [" ".join(o.split()).casefold() for o in options]
        if len(set(folded)) != len(folded):
            raise ValidationFailed.field("options", "the options repeat")
    elif options:
        raise ValidationFailed.field("options", "options are only for enum fields")
    out["options"] = options
    if ftype == FieldType.phone:
        out["phone_type"] = out.get("phone_type") or PhoneType.mobile
    elif out.get("phone_type") is not None:
        raise ValidationFailed.field("phone_type", "a phone type is only for phone fields")
    return out


async def _check_name_unique(session: AsyncSession, name: str | None, field_id: int | None) -> None:
    """Field names are looked up ignoring case (values by name, import headers, filters), so two
    fields whose names differ only in case would be ambiguous: refuse the second one."""
    if not name:
        return
    folded = name.casefold()
    for other_id, other in await repo.field_names(session):
        if other_id != field_id and other != name and other.casefold() == folded:
            raise Conflict(f"name: a field '{other}' already exists (names may not differ only in case)",
                           errors=[{"field": "name", "reason": f"a field '{other}' already exists "
                                                               "(names may not differ only in case)"}])


async def field_before_create(session: AsyncSession, data: dict[str, Any]) -> dict[str, Any]:
    await _check_name_unique(session, data.get("name"), None)
    return check_field(data)


async def field_after_save(session: AsyncSession, obj: Field, extra: dict[str, Any]) -> None:
    """Build (or adjust) the field's expression indexes once the transaction committed."""
    engine, fid, ftype = _engine(session), obj.id, FieldType(obj.type)
    after_commit(session, f"index field {fid}", lambda: ensure_field_indexes(engine, fid, ftype))


async def _check_selections_fit(session: AsyncSession, obj: Field, new_type: FieldType,
                                options: Sequence[str]) -> None:
    """Selections whose conditions or sort use the field must still be valid with its new type / options."""
    for campaign, sel in await repo.selections_with_field(session, obj.id):
        fields = dict(await fields_by_id(session, referenced_field_ids(sel.conditions or [], sel.sort or [])))
        fields[obj.id] = FieldInfo(obj.id, obj.name, new_type, tuple(options))
        try:
            normalize_conditions(sel.conditions or [], fields)
            normalize_sort(sel.sort or [], fields)
        except ConditionError as err:
            reason = (f"selection '{campaign} / {sel.name}' would no longer be valid ({err.path}: {err.reason}); "
                      "change the selection first")
            raise Conflict(f"field '{obj.name}': {reason}",
                           errors=[{"field": "options" if new_type == obj.type else "type", "reason": reason}])


async def field_before_update(session: AsyncSession, obj: Field, data: dict[str, Any]) -> dict[str, Any]:
    """Refuse a type change while contacts hold values, dropping enum options that contacts hold, and
    changes that selections using the field would not survive; validate the resulting definition."""
    required = ("name", "type", "description", "is_client_id", "options")
    data = {k: v for k, v in data.items() if v is not None or k not in required}
    new_type = FieldType(data.get("type", obj.type))
    type_changed = new_type != FieldType(obj.type)
    if "name" in data:
        await _check_name_unique(session, data["name"], obj.id)
    if type_changed:
        if await repo.field_has_values(session, obj.id, obj.type):
            raise Conflict(f"field '{obj.name}' has values in contacts, so its type cannot change from "
                           f"{obj.type} to {new_type}; create a new field instead (or clear the values first)")
        if new_type != FieldType.phone and (users := await repo.strategies_using_field(session, obj.id)):
            raise Conflict(f"field '{obj.name}' is the phone field of strategies {', '.join(users)}; "
                           "it must stay a phone field")
        if new_type != FieldType.phone:
            data.setdefault("phone_type", None)
        if new_type != FieldType.enum:
            data.setdefault("options", [])
    current = {"name": obj.name, "type": obj.type, "mask": obj.mask, "options": obj.options,
               "phone_type": obj.phone_type}
    merged = check_field({**current, **data})
    cleaned = {k: merged.get(k, v) for k, v in data.items()}
    if type_changed:
        cleaned["phone_type"] = merged["phone_type"]
    options = list(merged["options"])
    options_changed = list(obj.options or []) != options
    # Stored values are the options' exact texts: one no longer an option would be left invalid.
    if (new_type == FieldType.enum and not type_changed and options_changed
            and (stray := await repo.values_outside(session, obj.id, options))):
        held = ", ".join(f"'{v}' ({n} contact{'s' if n != 1 else ''})" for v, n in stray)
        reason = (f"contacts hold values that would no longer be options: {held}; keep those options "
                  "or change the contacts' values first")
        raise Conflict(f"field '{obj.name}': {reason}", errors=[{"field": "options", "reason": reason}])
    if type_changed or options_changed:
        await _check_selections_fit(session, obj, new_type, options)
    if new_type == FieldType.phone and merged["phone_type"] != obj.phone_type:
        # The contacts' phones from this field are of the field's phone type (what "switch to the work
        # phone" rules read).
        await repo.set_phone_type_of_field(session, obj.id, PhoneType(merged["phone_type"]))
    return cleaned


async def field_before_delete(session: AsyncSession, obj: Field) -> None:
    users = []
    if lists := await repo.lists_using_field(session, obj.id):
        users.append(f"contact lists {', '.join(repr(n) for n in lists)}")
    if strategies := await repo.strategies_using_field(session, obj.id):
        users.append(f"strategies {', '.join(repr(n) for n in strategies)}")
    if selections := await repo.selections_using_field(session, obj.id):
        users.append(f"selections {', '.join(repr(n) for n in selections)}")
    if users:
        raise Conflict(f"field '{obj.name}' is used by {'; '.join(users)}; remove it from them first")
    engine, fid = _engine(session), obj.id
    after_commit(session, f"drop indexes of field {fid}", lambda: drop_field_indexes(engine, fid))


# --- lists ----------------------------------------------------------------------------------------


async def specs_of(session: AsyncSession, list_id: int) -> list[FieldSpec]:
    return [FieldSpec.of(f, lf) for lf, f in await repo.list_fields(session, list_id)]


def _fields_summary(specs: Sequence[FieldSpec]) -> list[dict[str, Any]]:
    return [{"field_id": s.id, "name": s.name, "required": s.required, "in_card": s.in_card} for s in specs]


async def set_list_fields(session: AsyncSession, list_id: int, items: Sequence[Mapping[str, Any]]) -> None:
    """Replace the fields of a list (order = position); contact values are never touched."""
    wanted = [(int(i["field_id"]), bool(i.get("required", False)), bool(i.get("in_card", True))) for i in items]
    ids = [fid for fid, _, _ in wanted]
    if len(set(ids)) != len(ids):
        raise ValidationFailed.field("fields", "a field is listed twice")
    known = await repo.fields_by_ids(session, ids)
    if missing := [fid for fid in ids if fid not in known]:
        raise ValidationFailed.field("fields", f"fields {missing} do not exist")
    before = await specs_of(session, list_id)
    if [(s.id, s.required, s.in_card) for s in before] == wanted:
        return
    await repo.replace_list_fields(session, list_id, wanted)
    after = await specs_of(session, list_id)
    await log(session, AuditAction.updated, "contact_lists", list_id,
              changes={"fields": {"old": _fields_summary(before), "new": _fields_summary(after)}})


async def list_after_save(session: AsyncSession, obj: ContactList, extra: dict[str, Any]) -> None:
    if extra.get("fields") is not None:
        await set_list_fields(session, obj.id, extra["fields"])


async def list_read_extra(session: AsyncSession, obj: ContactList) -> dict[str, Any]:
    specs = await specs_of(session, obj.id)
    return {"fields": [{"field_id": s.id, "name": s.name, "type": s.type, "phone_type": s.phone_type,
                        "required": s.required, "in_card": s.in_card, "position": s.position} for s in specs],
            "contact_count": await repo.contact_count(session, obj.id)}


async def list_read(session: AsyncSession, obj: ContactList) -> dict[str, Any]:
    await session.refresh(obj)
    base = {c.key: getattr(obj, c.key) for c in ContactList.__table__.columns}
    return base | await list_read_extra(session, obj)


async def list_before_delete(session: AsyncSession, obj: ContactList) -> None:
    if campaigns := await repo.campaigns_using_list(session, obj.id):
        raise Conflict(f"contact list '{obj.name}' is used by campaigns {', '.join(repr(c) for c in campaigns)}; "
                       "remove it from them first")


async def copy_fields(session: AsyncSession, list_id: int, from_list_id: int) -> ContactList:
    """Append the fields of another list that this one lacks (000 §4.3), keeping their order."""
    target = await load(session, ContactList, list_id, "contact list")
    if from_list_id == list_id:
        raise ValidationFailed.field("from_list_id", "a list cannot copy fields from itself")
    try:
        await load(session, ContactList, from_list_id, "contact list")
    except NotFound as err:
        raise ValidationFailed.field("from_list_id", err.detail)
    current = await specs_of(session, list_id)
    have = {s.id for s in current}
    added = [s for s in await specs_of(session, from_list_id) if s.id not in have]
    await set_list_fields(session, list_id, [{"field_id": s.id, "required": s.required, "in_card": s.in_card}
                                             for s in [*current, *added]])
    return target


# --- values and phones ----------------------------------------------------------------------------


def find_spec(specs: Sequence[FieldSpec], key: str) -> FieldSpec | None:
    """A list field by id ("12"), by exact name, or by name ignoring case."""
    key = key.strip()
    if key.startswith("f."):
        key = key[2:]
    for s in specs:
        if key == s.key or key == s.name:
            return s
    folded = key.casefold()
    return next((s for s in specs if s.name.casefold() == folded), None)


@dataclass
class PhoneDraft:
    e164: str
    raw: str
    type: PhoneType
    field_id: int | None


@dataclass
class Errors:
    items: list[dict[str, str]] = field(default_factory=list)

    def add(self, where: str, reason: str) -> None:
        self.items.append({"field": where, "reason": reason})

    def raise_any(self) -> None:
        if self.items:
            detail = "; ".join(f"{e['field']}: {e['reason']}" for e in self.items)
            raise ValidationFailed(detail, errors=self.items)


def apply_values(specs: Sequence[FieldSpec], raw: Mapping[str, Any], current: Mapping[str, Any], *,
                 country: str, errors: Errors) -> tuple[dict[str, Any], dict[int, str]]:
    """New ``data`` = ``current`` with ``raw`` applied; also the raw text of the phone values given.

    Keys of ``current`` that are not fields of the list (values of removed fields) are kept.
    """
    data = dict(current)
    raw_phones: dict[int, str] = {}
    seen: set[int] = set()
    for key, value in raw.items():
        spec = find_spec(specs, str(key))
        if spec is None:
            errors.add(f"values.{key}", "the list has no such field")
            continue
        where = f"values.{spec.name}"
        if spec.id in seen:
            errors.add(where, "the field is given twice (by name and by id)")
            continue
        seen.add(spec.id)
        try:
            converted: FieldValue = coerce_value(spec, value)
        except FieldValueError as err:
            errors.add(where, str(err))
            continue
        if converted is None:
            data.pop(spec.key, None)
            continue
        if spec.is_phone:
            text = str(converted)
            try:
                converted = to_e164(text, country)
            except InvalidPhone as err:
                errors.add(where, f"'{text}' is not a valid phone number: {err.reason}")
                continue
            raw_phones[spec.id] = text
        data[spec.key] = converted
    for spec in specs:
        if spec.required and data.get(spec.key) in (None, ""):
            errors.add(f"values.{spec.name}", "a value is required")
    return data, raw_phones


def derive_phones(specs: Sequence[FieldSpec], data: Mapping[str, Any], raw_phones: Mapping[int, str],
                  previous_raw: Mapping[tuple[int | None, str], str], extras: Sequence[PhoneDraft]) -> list[PhoneDraft]:
    """Phones of a contact: one per phone field with a value (list order), then the extra ones."""
    phones = []
    for spec in specs:
        if spec.is_phone and (e164 := data.get(spec.key)):
            raw = raw_phones.get(spec.id) or previous_raw.get((spec.id, e164)) or e164
            phones.append(PhoneDraft(e164, raw, spec.phone_type or PhoneType.mobile, spec.id))
    return [*phones, *extras]


def extra_phones(items: Sequence[PhoneIn], *, country: str, errors: Errors) -> list[PhoneDraft]:
    out = []
    for i, item in enumerate(items):
        try:
            out.append(PhoneDraft(to_e164(item.number, country), item.number, item.type, None))
        except InvalidPhone as err:
            errors.add(f"phones.{i}.number", f"'{item.number}' is not a valid phone number: {err.reason}")
    return out


def phone_row(contact: Contact, position: int, draft: PhoneDraft, lookup: PhoneLookup) -> ContactPhone:
    info = lookup.details(draft.e164)
    return ContactPhone(contact_id=contact.id, list_id=contact.list_id, field_id=draft.field_id,
                        phone_type=draft.type, position=position, raw=draft.raw, e164=draft.e164,
                        region=info.region, carrier=info.carrier, timezones=list(info.timezones),
                        tz_uncertain=info.tz_uncertain)


def _clean_tags(tags: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(t.strip() for t in tags if t and t.strip()))


async def _sync_phones(session: AsyncSession, contact: Contact, drafts: Sequence[PhoneDraft],
                       existing: Sequence[ContactPhone]) -> None:
    """Make the contact's phone rows what ``drafts`` say, changing as few rows as possible.

    A number that stays (same field, same E.164) keeps its row and id — the engine's live attempt,
    the attempt history and a strategy's "switch to this phone" (``contacts.next_phone_id``) point
    at it — and only its type, position or raw text are updated; rows of numbers that went are
    deleted, new numbers get new rows (with region, zones and carrier looked up).
    """
    kept: dict[tuple[int | None, str], list[ContactPhone]] = {}
    for p in existing:
        kept.setdefault((p.field_id, p.e164), []).append(p)
    new_rows: list[tuple[int, PhoneDraft]] = []
    for pos, d in enumerate(drafts):
        same = kept.get((d.field_id, d.e164))
        if not same:
            new_rows.append((pos, d))
            continue
        row = same.pop(0)
        if PhoneType(row.phone_type) != PhoneType(d.type):
            row.phone_type = d.type
        if row.position != pos:
            row.position = pos
        if row.raw != d.raw:
            row.raw = d.raw
    for rows in kept.values():
        for p in rows:
            await session.delete(p)
    await session.flush()
    if new_rows:
        lookup = await phone_lookup(session)
        session.add_all([phone_row(contact, pos, d, lookup) for pos, d in new_rows])
        await session.flush()


def _country(country: str | None, default: str) -> str:
    """The request's country of numbers written without a code, checked (a 422, not a crash, when unknown)."""
    if country is None or not country.strip():
        return default
    code = country.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationFailed.field("country", f"'{country}' is not a country code such as RU, KZ or BY")
    return code


async def create_contact(session: AsyncSession, list_id: int, payload: ContactCreate, *,
                         default_country: str) -> Contact:
    await load(session, ContactList, list_id, "contact list")
    specs = await specs_of(session, list_id)
    country = _country(payload.country, default_country)
    errors = Errors()
    data, raw_phones = apply_values(specs, payload.values, {}, country=country, errors=errors)
    extras = extra_phones(payload.phones, country=country, errors=errors)
    errors.raise_any()
    if not data and not extras:
        raise ValidationFailed.field("values", "fill in at least one field")
    contact = Contact(list_id=list_id, data=data, tags=_clean_tags(payload.tags))
    session.add(contact)
    await session.flush()
    await _sync_phones(session, contact, derive_phones(specs, data, raw_phones, {}, extras), [])
    return contact


async def load_contact(session: AsyncSession, list_id: int, contact_id: int) -> Contact:
    contact = await session.get(Contact, contact_id)
    if contact is None or contact.list_id != list_id:
        raise NotFound(f"contact {contact_id} does not exist in list {list_id}")
    return contact


async def update_contact(session: AsyncSession, list_id: int, contact_id: int, payload: ContactUpdate, *,
                         default_country: str) -> Contact:
    contact = await load_contact(session, list_id, contact_id)
    specs = await specs_of(session, list_id)
    country = _country(payload.country, default_country)
    errors = Errors()
    data, raw_phones = apply_values(specs, payload.values or {}, contact.data or {}, country=country, errors=errors)
    existing = (await repo.phones_of(session, [contact.id]))[contact.id]
    if payload.phones is not None:
        extras = extra_phones(payload.phones, country=country, errors=errors)
    else:
        extras = [PhoneDraft(p.e164, p.raw, PhoneType(p.phone_type), None) for p in existing if p.field_id is None]
    errors.raise_any()
    if data != contact.data:
        contact.data = data
    if payload.tags is not None:
        contact.tags = _clean_tags(payload.tags)
    if payload.status is not None:
        contact.status = payload.status
    await session.flush()
    previous_raw = {(p.field_id, p.e164): p.raw for p in existing}
    await _sync_phones(session, contact, derive_phones(specs, data, raw_phones, previous_raw, extras), existing)
    return contact


def phone_read(p: ContactPhone) -> dict[str, Any]:
    return {"id": p.id, "number": p.e164, "raw": p.raw, "type": p.phone_type, "field_id": p.field_id,
            "position": p.position, "region": p.region, "carrier": p.carrier, "timezones": list(p.timezones or []),
            "tz_uncertain": p.tz_uncertain}


def contact_read(contact: Contact, specs: Sequence[FieldSpec], phones: Sequence[ContactPhone]) -> dict[str, Any]:
    data = contact.data or {}
    present = [s for s in specs if s.key in data]
    return {
        "id": contact.id, "list_id": contact.list_id,
        "values": {s.name: data[s.key] for s in present},
        "data": {s.key: data[s.key] for s in present},
        "phones": [phone_read(p) for p in phones], "tags": list(contact.tags or []),
        "status": contact.status, "attempts_total": contact.attempts_total,
        "attempts_today": contact.attempts_today, "last_outcome": contact.last_outcome,
        "last_attempt_at": contact.last_attempt_at, "next_call_at": contact.next_call_at,
        "import_job_id": contact.import_job_id, "created_at": contact.created_at, "updated_at": contact.updated_at,
    }


async def read_contact(session: AsyncSession, contact: Contact) -> dict[str, Any]:
    await session.refresh(contact)
    specs = await specs_of(session, contact.list_id)
    return contact_read(contact, specs, (await repo.phones_of(session, [contact.id]))[contact.id])


# --- filters and sorting --------------------------------------------------------------------------


@dataclass
class ContactFilter:
    q: str | None = None
    statuses: list[ContactStatus] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    phone: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    not_called: bool = False
    outcomes: list[OutcomeCategory] = field(default_factory=list)
    #: A phone of the contact is in the global blacklist (or in ``dnc_list_id``, when given).
    in_dnc: bool = False
    dnc_list_id: int | None = None

    def is_empty(self) -> bool:
        return not (self.q or self.statuses or self.tags or self.phone or self.fields or self.not_called
                    or self.outcomes or self.in_dnc)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in {
            "q": self.q, "status": [s.value for s in self.statuses], "tag": self.tags, "phone": self.phone,
            "fields": self.fields, "not_called": self.not_called,
            "outcome": [o.value for o in self.outcomes], "in_dnc": self.in_dnc,
            "dnc_list_id": self.dnc_list_id if self.in_dnc else None}.items() if v}
        return out

    @classmethod
    def of(cls, data: ContactFilterIn) -> ContactFilter:
        return cls(data.q, list(data.status), list(data.tag), data.phone, dict(data.fields), data.not_called,
                   list(data.outcome), data.in_dnc, data.dnc_list_id)


def _split(values: Sequence[str]) -> list[str]:
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def filter_from_query(query: Sequence[tuple[str, str]]) -> ContactFilter:
    """``status``, ``tag``, ``phone``, ``q``, ``not_called``, ``outcome``, ``in_dnc`` (with ``dnc_list_id``) and
    ``f.<field>`` query parameters."""
    def many(name: str) -> list[str]:
        return _split([v for k, v in query if k == name])

    def enum_list(name: str, enum: type[Any]) -> list[Any]:
        try:
            return [enum(v) for v in many(name)]
        except ValueError:
            allowed = ", ".join(e.value for e in enum)
            raise ValidationFailed.field(name, f"'{', '.join(many(name))}' is not one of: {allowed}")

    last = dict(query)
    not_called = last.get("not_called", "").lower() in ("1", "true", "yes", "да")
    in_dnc = last.get("in_dnc", "").lower() in ("1", "true", "yes", "да")
    dnc_list = last.get("dnc_list_id", "").strip()
    if dnc_list and not dnc_list.isdigit():
        raise ValidationFailed.field("dnc_list_id", f"'{dnc_list}' is not a DNC list id")
    return ContactFilter(
        q=last.get("q") or None, statuses=enum_list("status", ContactStatus), tags=many("tag"),
        phone=last.get("phone") or None, fields={k[2:]: v for k, v in query if k.startswith("f.") and len(k) > 2},
        not_called=not_called, outcomes=enum_list("outcome", OutcomeCategory), in_dnc=in_dnc or bool(dnc_list),
        dnc_list_id=int(dnc_list) if dnc_list else None)


def fold_yo(text: str) -> str:
    """ё → е (and Ё → Е): Russian writes both for the same letter."""
    return text.replace("ё", "е").replace("Ё", "Е")


def _like(q: str) -> str:
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def filter_clauses(specs: Sequence[FieldSpec], flt: ContactFilter, *, country: str) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if flt.not_called:
        clauses.append(Contact.status == ContactStatus.new)
    if flt.statuses:
        clauses.append(Contact.status.in_(flt.statuses))
    if flt.outcomes:
        clauses.append(Contact.last_outcome.in_(flt.outcomes))
    if flt.in_dnc:
        clauses.append(repo.phone_in_dnc(flt.dnc_list_id))
    for tag in flt.tags:
        clauses.append(Contact.tags.contains([tag]))
    if flt.phone:
        try:
            clauses.append(repo.has_phone([to_e164(flt.phone, country)]))
        except InvalidPhone as err:
            raise ValidationFailed.field("phone", f"'{flt.phone}' is not a valid phone number: {err.reason}")
    for key, raw in flt.fields.items():
        spec = find_spec(specs, key)
        if spec is None:
            raise ValidationFailed.field(f"f.{key}", "the list has no such field")
        clauses.append(field_equals(spec, raw, country=country))
    if flt.q:
        q = flt.q.strip()
        # The values of the list's fields, ignoring case and ё/е ("елкин" finds "Ёлкин"); not the JSON
        # text, whose keys (field ids) and punctuation would match "1" or ":" in every contact.
        pattern = _like(fold_yo(q))
        options: list[ColumnElement[bool]] = [
            func.translate(text_expr(s.id), "Ёё", "Ее").ilike(pattern) for s in specs]
        digits = re.sub(r"\D", "", q)
        if len(digits) >= 3:
            try:
                options.append(repo.has_phone([to_e164(q, country)]))
            except InvalidPhone:
                options.append(repo.phone_contains(digits))
        clauses.append(or_(false(), *options))
    return clauses


def field_equals(spec: FieldSpec, raw: Any, *, country: str) -> ColumnElement[bool]:
    where = f"f.{spec.name}"
    try:
        value = coerce_value(spec, raw)
    except FieldValueError as err:
        raise ValidationFailed.field(where, str(err))
    if value is None:
        return value_expr(spec.id, spec.type).is_(None)
    if spec.is_numeric:
        return numeric_expr(spec.id) == value
    if spec.is_phone:
        try:
            value = to_e164(str(value), country)
        except InvalidPhone as err:
            raise ValidationFailed.field(where, f"'{raw}' is not a valid phone number: {err.reason}")
    return text_expr(spec.id) == text_of(value)


SYSTEM_SORT: dict[str, Any] = {
    "id": Contact.id, "status": Contact.status, "created_at": Contact.created_at, "updated_at": Contact.updated_at,
    "attempts_total": Contact.attempts_total, "attempts_today": Contact.attempts_today,
    "last_outcome": Contact.last_outcome, "last_attempt_at": Contact.last_attempt_at,
    "next_call_at": Contact.next_call_at,
}


def sort_expr(specs: Sequence[FieldSpec], key: str) -> ColumnElement[Any]:
    if key in SYSTEM_SORT:
        return SYSTEM_SORT[key]
    spec = find_spec(specs, key)
    if spec is None:
        allowed = ", ".join([*SYSTEM_SORT, *(s.name for s in specs)])
        raise ValidationFailed.field("sort", f"cannot sort by '{key}'; allowed: {allowed}")
    return value_expr(spec.id, spec.type)


def apply_contact_sort(stmt: Select[Any], specs: Sequence[FieldSpec], sort: str | None) -> Select[Any]:
    order = []
    for part in (sort or "").split(","):
        key = part.strip()
        if not key:
            continue
        desc = key.startswith("-")
        col = sort_expr(specs, key.lstrip("-+"))
        order.append(col.desc().nulls_last() if desc else col.asc().nulls_last())
    return stmt.order_by(*order, Contact.id)


async def list_contacts(session: AsyncSession, list_id: int, params: ListParams, flt: ContactFilter, *,
                        default_country: str) -> dict[str, Any]:
    await load(session, ContactList, list_id, "contact list")
    specs = await specs_of(session, list_id)
    stmt = repo.contacts_of(list_id, filter_clauses(specs, flt, country=default_country))
    total = await repo.count(session, stmt)
    stmt = apply_contact_sort(stmt, specs, params.sort)
    contacts = list((await session.scalars(
        stmt.limit(params.per_page).offset((params.page - 1) * params.per_page))).all())
    phones = await repo.phones_of(session, [c.id for c in contacts])
    return {"items": [contact_read(c, specs, phones[c.id]) for c in contacts], "total": total,
            "page": params.page, "per_page": params.per_page}


# --- deleting -------------------------------------------------------------------------------------


async def delete_contact(session: AsyncSession, list_id: int, contact_id: int) -> None:
    contact = await load_contact(session, list_id, contact_id)
    await session.delete(contact)
    await session.flush()


async def _bulk_delete(session: AsyncSession, list_id: int, where: Sequence[ColumnElement[bool]],
                       how: dict[str, Any]) -> int:
    n, ids = await repo.delete_contacts(session, list_id, where, sample=AUDIT_IDS)
    await log(session, AuditAction.custom, "contact_lists", list_id, event_label="contacts deleted",
              changes={"contacts_deleted": {"old": None, "new": n},
                       "ids": {"old": ids, "new": None, "truncated": n > len(ids)},
                       "selection": {"old": None, "new": how}})
    return n


async def bulk_delete(session: AsyncSession, list_id: int, ids: Sequence[int] | None, flt: ContactFilter | None, *,
                      default_country: str) -> int:
    """Delete the given contacts, or those matching a (non-empty) filter; one audit entry."""
    await load(session, ContactList, list_id, "contact list")
    if ids:
        return await _bulk_delete(session, list_id, [Contact.id.in_(list(ids))], {"ids": len(ids)})
    if flt is None or flt.is_empty():
        raise ValidationFailed.field("ids", "give the ids or a filter of the contacts to delete "
                                     "(to delete all contacts use DELETE /api/lists/{id}/contacts?confirm=true)")
    specs = await specs_of(session, list_id)
    try:
        where = filter_clauses(specs, flt, country=default_country)
    except ValidationFailed as err:
        # name the part of the request body: filter.fields.<field>, filter.phone ...
        errors = [{**e, "field": _body_path(str(e.get("field", "")))} for e in err.errors]
        raise ValidationFailed("; ".join(f"{e['field']}: {e['reason']}" for e in errors), errors=errors) from None
    return await _bulk_delete(session, list_id, where, {"filter": flt.describe()})


def _body_path(query_name: str) -> str:
    """A filter's query-parameter name (``f.Сумма``, ``phone``) as its path in a request body's ``filter``."""
    if query_name.startswith("f."):
        return f"filter.fields.{query_name[2:]}"
    return f"filter.{query_name}"


async def delete_all(session: AsyncSession, list_id: int, *, confirm: bool) -> int:
    await load(session, ContactList, list_id, "contact list")
    if not confirm:
        raise ValidationFailed.field("confirm", "deleting every contact of the list needs confirm=true")
    return await _bulk_delete(session, list_id, [], {"all": True})


# --- export ---------------------------------------------------------------------------------------


async def prepare_export(session: AsyncSession, list_id: int, flt: ContactFilter, fmt: str, *,
                         default_country: str) -> tuple[ContactList, list[FieldSpec], list[ColumnElement[bool]], int]:
    """The list, its fields, the WHERE clauses and the number of contacts of an export, audited."""
    lst = await load(session, ContactList, list_id, "contact list")
    specs = await specs_of(session, list_id)
    where = filter_clauses(specs, flt, country=default_country)
    total = await repo.count(session, repo.contacts_of(list_id, where))
    await log(session, AuditAction.custom, "contact_lists", list_id, event_label="contacts exported",
              changes={"format": {"old": None, "new": fmt}, "contacts": {"old": None, "new": total},
                       "filter": {"old": None, "new": flt.describe()}})
    return lst, specs, where, total
