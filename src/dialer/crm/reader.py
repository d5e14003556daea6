"""Reads from a CRM into a contact list, every ``poll_interval_s`` seconds (001 "Система сама ставит заказы из CRM в
очередь").

For each record new or changed since the connector's cursor:

* the contact is found by its CRM record (``crm_records``: connector + CRM id) or created in the connector's list;
  its values come through the connector's field map (``settings["field_map"]``: CRM field → list field; the keys
  ``$id`` and ``$status`` name the list fields that receive the CRM id — the client identifier — and the CRM
  status, so selections can use them); the phones are the list's phone field (``settings["phone_field"]``) or,
  without one, extra phones. A changed phone replaces the old one, so the next call goes to the new number;
* the CRM status decides the dialling (``status_map``, edited in the UI; 001 "Статусы CRM управляют поведением"):
  ``call`` — dialable now (a done contact is opened again), ``postpone`` — not before the record's recall time,
  ``leave`` — the dialer's own state is kept, ``final`` — done, never dialled again. A status not in the map is
  ``leave``.

The cursor is saved in the same transaction as the contacts it covers, so a failed read (the CRM down, a refused
record) is tried again from where it stopped and nothing is skipped. Contacts are written through the contact
service (validation, phone normalisation, time zones, the audit log under the actor ``crm:<connector>``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.audit.recorder import Actor
from dialer.contact import service as contacts
from dialer.contact.schemas import ContactCreate, ContactUpdate, PhoneIn
from dialer.core.clock import Clock, SystemClock
from dialer.crm.base import CrmAdapter, CrmError, CrmRecordData
from dialer.crm.generic import resolve
from dialer.crm.registry import build
from dialer.exceptions import DialerError, ValidationFailed
from dialer.models import Contact, CrmConnector, CrmRecord
from dialer.models.enums import ContactStatus

__all__ = ["ACTIONS", "CrmReader", "ReadReport", "pause", "read_once", "upsert_record"]

log = logging.getLogger(__name__)

#: What a CRM status may mean for dialling.
ACTIONS = ("call", "postpone", "leave", "final")


@dataclasses.dataclass(slots=True)
class ReadReport:
    read: int = 0
    created: int = 0
    updated: int = 0
    finished: int = 0
    #: Records that could not become contacts: (CRM id, why).
    refused: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    more: bool = False


def _values(connector: CrmConnector, record: CrmRecordData) -> tuple[dict[str, Any], list[PhoneIn]]:
    settings = connector.settings or {}
    values: dict[str, Any] = {}
    for crm_name, field in (settings.get("field_map") or {}).items():
        if crm_name == "$id":
            values[str(field)] = record.external_id
        elif crm_name == "$status":
            values[str(field)] = record.status
        else:
            value = resolve(record.fields, str(crm_name))
            if value not in (None, "", []):
                values[str(field)] = value
    phones: list[PhoneIn] = []
    phone_field = settings.get("phone_field")
    if record.phones:
        if phone_field:
            values[str(phone_field)] = record.phones[0]
            phones = [PhoneIn(number=p) for p in record.phones[1:]]
        else:
            phones = [PhoneIn(number=p) for p in record.phones]
    return values, phones


def _apply_status(contact: Contact, action: str, record: CrmRecordData) -> bool:
    """Set the contact's dialling state from the status action; True when it became final."""
    if action == "final":
        was = contact.status
        contact.status = ContactStatus.done
        contact.next_call_at = None
        return was is not ContactStatus.done
    if action == "call":
        if contact.status is ContactStatus.done:
            contact.status = ContactStatus.in_progress
        contact.next_call_at = None
    elif action == "postpone":
        if contact.status is ContactStatus.done:
            contact.status = ContactStatus.in_progress
        if record.recall_at is not None:
            recall = record.recall_at if record.recall_at.tzinfo else record.recall_at.replace(tzinfo=UTC)
            contact.next_call_at = recall
    return False


async def upsert_record(session: AsyncSession, connector: CrmConnector, record: CrmRecordData, *, country: str,
                        report: ReadReport | None = None) -> Contact | None:
    """One CRM record into the connector's list (created, or updated by its CRM id), in the caller's transaction;
    the contact, or None for a record that is final before it was ever brought in."""
    report = report if report is not None else ReadReport()
    if connector.list_id is None:
        raise ValidationFailed.field("list_id", f"connector '{connector.name}' has no contact list to read into")
    known = await session.scalar(select(CrmRecord).where(CrmRecord.connector_id == connector.id,
                                                         CrmRecord.external_id == record.external_id))
    action = str(((connector.status_map or {}).get(record.status) or {}).get("action") or "leave")
    values, phones = _values(connector, record)
    contact: Contact | None = None
    if known is not None and known.contact_id is not None:
        contact = await session.get(Contact, known.contact_id)
    if contact is not None and contact.list_id == connector.list_id:
        contact = await contacts.update_contact(session, connector.list_id, contact.id, ContactUpdate(
            values=values, phones=phones if not (connector.settings or {}).get("phone_field") else None),
            default_country=country)
        report.updated += 1
    else:
        if action == "final":
            return None  # a record that is already final is not brought in at all
        contact = await contacts.create_contact(session, connector.list_id, ContactCreate(
            values=values, phones=phones), default_country=country)
        report.created += 1
    if _apply_status(contact, action, record):
        report.finished += 1
    phone = record.phones[0] if record.phones else ""
    if known is None:
        session.add(CrmRecord(connector_id=connector.id, external_id=record.external_id, contact_id=contact.id,
                              crm_status=record.status, phone=phone, crm_updated=record.updated))
    else:
        known.contact_id, known.crm_status, known.phone = contact.id, record.status, phone
        known.crm_updated, known.seen_at = record.updated, datetime.now(UTC)
    await session.flush()
    return contact


async def read_once(maker: async_sessionmaker[AsyncSession], connector_id: int, *, adapter: CrmAdapter | None = None,
                    country: str = "RU", now: datetime | None = None) -> ReadReport:
    """One read of a connector into its list; the cursor moves only with the contacts it covers."""
    report = ReadReport()
    async with maker() as session:
        connector = await session.get(CrmConnector, connector_id)
        if connector is None or connector.list_id is None:
            raise DialerError(f"connector {connector_id} does not exist or has no contact list to read into")
        cursor = dict(connector.cursor or {})
        own = adapter is None
        used = adapter or build(connector.kind, name=connector.name, token=connector.token,
                                settings=dict(connector.settings or {}))
    try:
        try:
            batch = await used.read(cursor)
        except CrmError as err:
            async with maker() as session, session.begin():
                found = await session.get(CrmConnector, connector_id)
                if found is not None:
                    found.last_error = str(err)[:2000]
                    found.last_read_at = now or datetime.now(UTC)
            raise
        report.read, report.more = len(batch.records), batch.more
        async with maker() as session, session.begin():
            session.info["actor"] = Actor(None, f"crm:{connector.name}", ("system",))
            connector = await session.get(CrmConnector, connector_id, with_for_update=True)
            assert connector is not None
            for record in batch.records:
                try:
                    async with session.begin_nested():
                        await upsert_record(session, connector, record, country=country, report=report)
                except DialerError as err:  # a record the list cannot take: named, the others go on
                    report.refused.append((record.external_id, str(err)))
            connector.cursor = batch.cursor
            connector.last_read_at = now or datetime.now(UTC)
            connector.last_error = "; ".join(f"{i}: {why}" for i, why in report.refused)[:2000]
    finally:
        if own:
            await used.aclose()
    return report


class CrmReader:
    """Reads every connector with reads switched on at its interval; run :meth:`run` as a task."""

    def __init__(self, maker: async_sessionmaker[AsyncSession], *, clock: Clock | None = None,
                 country: str = "RU", tick_s: float = 1.0) -> None:
        self.maker = maker
        self.clock: Clock = clock or SystemClock()
        self.country = country
        self.tick_s = tick_s
        self.reads = 0

    async def due(self) -> list[int]:
        now = self.clock.utcnow()
        async with self.maker() as session:
            rows = (await session.execute(select(CrmConnector.id, CrmConnector.last_read_at,
                                                 CrmConnector.poll_interval_s).where(
                CrmConnector.is_active, CrmConnector.read_enabled, CrmConnector.list_id.is_not(None)))).all()
        return [r.id for r in rows if r.last_read_at is None
                or r.last_read_at + timedelta(seconds=r.poll_interval_s) <= now]

    async def round(self) -> int:
        done = 0
        for connector_id in await self.due():
            try:
                report = await read_once(self.maker, connector_id, country=self.country, now=self.clock.utcnow())
                while report.more:
                    report = await read_once(self.maker, connector_id, country=self.country,
                                             now=self.clock.utcnow())
            except (CrmError, DialerError) as err:
                log.warning("CRM read of connector %d failed: %s", connector_id, err)
            done += 1
            self.reads += 1
        return done

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("CRM read round failed")
            await pause(self.clock, stop, self.tick_s)


async def pause(clock: Clock, stop: asyncio.Event, seconds: float, wake: asyncio.Event | None = None) -> None:
    """Wait ``seconds`` of the clock's time, or less when ``stop`` (or ``wake``) is set."""
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(clock.sleep(seconds))]
    if wake is not None:
        waits.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
        for w in waits:
            with contextlib.suppress(asyncio.CancelledError):
                await w
