"""Reads from LeadVertex (a real HTTP emulator) into a contact list: field map, CRM id and status into fields, the
status map deciding the dialling, a changed phone, a record gone final, a CRM that is down."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from dialer.crm.base import CrmUnavailable
from dialer.crm.emulator import LeadVertexEmulator
from dialer.crm.reader import CrmReader, read_once
from dialer.models import Contact, ContactPhone, CrmConnector, CrmRecord, Field, ListField
from dialer.models.enums import ContactStatus, FieldType
from tests.crm import helpers as h
from tests.engine.selection_data import make_world

STATUS_MAP = {"1": {"action": "call"}, "2": {"action": "postpone"}, "3": {"action": "final"},
              "5": {"action": "leave"}}


async def _setup(maker: Any, lv: LeadVertexEmulator) -> tuple[int, int]:
    world = await make_world(maker)
    async with maker() as session, session.begin():
        crm_id = Field(name="ID заказа", type=FieldType.string, options=[], is_client_id=True)
        status = Field(name="Статус CRM", type=FieldType.string, options=[])
        name = Field(name="ФИО", type=FieldType.string, options=[])
        session.add_all([crm_id, status, name])
        await session.flush()
        for pos, fid in enumerate([world.phone_field_id, world.city_field_id, crm_id.id, status.id, name.id]):
            session.add(ListField(list_id=world.list_id, field_id=fid, position=pos))
    cid = await h.connector(maker, settings={
        "base_url": lv.base_url, "phone_field": "Телефон",
        "field_map": {"$id": "ID заказа", "$status": "Статус CRM", "fio": "ФИО", "city": "Город"}},
        token=lv.token, list_id=world.list_id, status_map=STATUS_MAP)
    return cid, world.list_id


async def _contact(maker: Any, connector_id: int, external_id: str) -> tuple[Contact, list[str]]:
    async with maker() as session:
        record = await session.scalar(select(CrmRecord).where(CrmRecord.connector_id == connector_id,
                                                              CrmRecord.external_id == external_id))
        assert record is not None and record.contact_id is not None
        contact = await session.get(Contact, record.contact_id)
        assert contact is not None
        phones = list((await session.scalars(select(ContactPhone.e164).where(
            ContactPhone.contact_id == contact.id).order_by(ContactPhone.position))).all())
        return contact, phones


async def test_records_become_contacts_and_follow_the_crm(sessionmaker: Any) -> None:
    lv = LeadVertexEmulator()
    await lv.server.start()
    try:
        lv.add_order(11, phone="+79161234511", status=1, fio="Иванов Иван", city="Москва")
        lv.add_order(12, phone="89161234512", status="2", fio="Петров", callmodeRecallAt="2030-05-01 10:00:00")
        lv.add_order(13, phone="+79161234513", status=3, fio="Уже закрыт")
        cid, list_id = await _setup(sessionmaker, lv)

        report = await read_once(sessionmaker, cid)
        assert (report.read, report.created, report.refused) == (3, 2, [])  # the final one is not brought in
        first, phones = await _contact(sessionmaker, cid, "11")
        assert first.list_id == list_id and phones == ["+79161234511"]
        async with sessionmaker() as session:
            fields = {f.name: str(f.id) for f in (await session.scalars(select(Field))).all()}
        assert first.data[fields["ID заказа"]] == "11" and first.data[fields["Статус CRM"]] == "1"
        assert first.data[fields["ФИО"]] == "Иванов Иван" and first.data[fields["Город"]] == "Москва"
        second, phones = await _contact(sessionmaker, cid, "12")
        assert phones == ["+79161234512"]  # the 8… form normalised
        assert second.next_call_at is not None and second.next_call_at.year == 2030  # postponed to the recall

        # in the CRM: the first moves to a final status, the second gets a new phone and "call"
        lv.change(11, status=3)
        lv.change(12, phone="+79161234599", status=1)
        report = await read_once(sessionmaker, cid)
        assert report.updated == 2 and report.finished == 1
        first, _ = await _contact(sessionmaker, cid, "11")
        assert first.status is ContactStatus.done and first.data[fields["Статус CRM"]] == "3"
        second, phones = await _contact(sessionmaker, cid, "12")
        assert phones == ["+79161234599"] and second.next_call_at is None
        async with sessionmaker() as session:
            connector = await session.get(CrmConnector, cid)
            assert connector is not None and connector.cursor["since"] >= "2026-01-01 00:00:05"

        # nothing changed: nothing new but the boundary record
        assert (await read_once(sessionmaker, cid)).created == 0

        await lv.server.stop()  # the CRM goes down: the read fails, the cursor stays
        with pytest.raises(CrmUnavailable):
            await read_once(sessionmaker, cid)
        async with sessionmaker() as session:
            after = await session.get(CrmConnector, cid)
            assert after is not None and after.cursor == connector.cursor and "crm:CRM" in after.last_error
    finally:
        await lv.server.stop()


async def test_the_reader_reads_connectors_at_their_interval(sessionmaker: Any) -> None:
    lv = LeadVertexEmulator()
    await lv.server.start()
    try:
        lv.add_order(21, phone="+79161234521", status=1)
        cid, _ = await _setup(sessionmaker, lv)
        async with sessionmaker() as session, session.begin():
            connector = await session.get(CrmConnector, cid)
            assert connector is not None
            connector.read_enabled, connector.poll_interval_s = True, 30
        clock = h.clock()
        reader = CrmReader(sessionmaker, clock=clock)
        assert await reader.round() == 1
        assert await reader.round() == 0  # not due before 30 s
        lv.add_order(22, phone="+79161234522", status=1)
        clock.advance(31)
        assert await reader.round() == 1
        await _contact(sessionmaker, cid, "22")
    finally:
        await lv.server.stop()


