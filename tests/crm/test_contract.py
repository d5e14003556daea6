"""One contract every CRM adapter passes: the in-memory fake, LeadVertex, Bitrix24 and the generic HTTP adapter, the
real ones against real HTTP servers started here (:mod:`dialer.crm.emulator`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import pytest

from dialer.crm.base import CrmAdapter, CrmRejected, CrmUnavailable, ResultWrite
from dialer.crm.bitrix24 import Bitrix24Adapter
from dialer.crm.emulator import Bitrix24Emulator, GenericCrmEmulator, LeadVertexEmulator
from dialer.crm.fake import FakeAdapter, FakeCrm
from dialer.crm.generic import GenericHttpAdapter
from dialer.crm.http import Http
from dialer.crm.leadvertex import LeadVertexAdapter


class World(Protocol):
    adapter: CrmAdapter

    def put(self, external_id: str, phone: str, status: str) -> None: ...
    def change(self, external_id: str, status: str) -> None: ...
    def status_of(self, external_id: str) -> str: ...
    def notes_of(self, external_id: str) -> int: ...
    async def down(self) -> None: ...
    def code(self, status: str) -> str:
        """The CRM's own id of the test's status "1", "2", "3"."""
        ...


class FakeWorld:
    @staticmethod
    def code(status: str) -> str:
        return status

    def __init__(self) -> None:
        self.crm = FakeCrm()
        self.adapter: CrmAdapter = FakeAdapter(self.crm)

    def put(self, external_id: str, phone: str, status: str) -> None:
        self.crm.put(external_id, status=status, phones=(phone,))

    def change(self, external_id: str, status: str) -> None:
        r = self.crm.records[external_id]
        self.crm.put(external_id, status=status, phones=r.phones, fields=r.fields)

    def status_of(self, external_id: str) -> str:
        return self.crm.records[external_id].status

    def notes_of(self, external_id: str) -> int:
        return len(self.crm.notes.get(external_id, []))

    async def down(self) -> None:
        self.crm.outage = True


class LeadVertexWorld:
    @staticmethod
    def code(status: str) -> str:
        return status

    def __init__(self, emulator: LeadVertexEmulator) -> None:
        self.lv = emulator
        self.adapter: CrmAdapter = LeadVertexAdapter(Http("lv", timeout_s=5), token=emulator.token,
                                                     base_url=emulator.base_url)

    def put(self, external_id: str, phone: str, status: str) -> None:
        self.lv.add_order(external_id, phone=phone, status=int(status), fio=f"Клиент {external_id}")

    def change(self, external_id: str, status: str) -> None:
        self.lv.change(external_id, status=int(status))

    def status_of(self, external_id: str) -> str:
        return str(self.lv.orders[external_id]["status"])

    def notes_of(self, external_id: str) -> int:
        return str(self.lv.orders[external_id]["comment"]).count("[dialer ")

    async def down(self) -> None:
        await self.lv.server.stop()


class GenericWorld:
    @staticmethod
    def code(status: str) -> str:
        return status

    def __init__(self, emulator: GenericCrmEmulator) -> None:
        self.crm = emulator
        url = emulator.server.url
        self.adapter: CrmAdapter = GenericHttpAdapter(Http("generic", timeout_s=5), settings={
            "read_url": f"{url}/records", "records_path": "$.items", "write_url": f"{url}/results",
            "statuses_url": f"{url}/statuses",
            "map": {"id": "id", "status": "state", "phone": "$.client.phone", "updated": "changed"}})

    def put(self, external_id: str, phone: str, status: str) -> None:
        self.crm.put(external_id, phone=phone, status=status)

    def change(self, external_id: str, status: str) -> None:
        record = self.crm.records[external_id]
        self.crm.put(external_id, phone=record["client"]["phone"], status=status)

    def status_of(self, external_id: str) -> str:
        return str(self.crm.records[external_id]["state"])

    def notes_of(self, external_id: str) -> int:
        return sum(1 for r in self.crm.results.values() if r["external_id"] == external_id)

    async def down(self) -> None:
        await self.crm.server.stop()


class Bitrix24World:
    STATUSES = {"1": "NEW", "2": "IN_PROCESS", "3": "CONVERTED"}

    def __init__(self, emulator: Bitrix24Emulator) -> None:
        self.b24 = emulator
        self.adapter: CrmAdapter = Bitrix24Adapter(Http("b24", timeout_s=5), webhook=emulator.webhook,
                                                   read_timeout_s=5.0)

    def put(self, external_id: str, phone: str, status: str) -> None:
        self.b24.add_lead(external_id, phone=phone, status=status)

    def change(self, external_id: str, status: str) -> None:
        self.b24.change(external_id, STATUS_ID=status)

    def status_of(self, external_id: str) -> str:
        return str(self.b24.leads[external_id]["STATUS_ID"])

    def code(self, status: str) -> str:
        return self.STATUSES[status]

    def notes_of(self, external_id: str) -> int:
        return str(self.b24.leads[external_id]["COMMENTS"]).count("[dialer ")

    async def down(self) -> None:
        await self.b24.server.stop()


@pytest.fixture(params=["fake", "leadvertex", "generic_http", "bitrix24"])
async def world(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if request.param == "fake":
        w: Any = FakeWorld()
        yield w
    elif request.param == "leadvertex":
        lv = LeadVertexEmulator()
        await lv.server.start()
        w = LeadVertexWorld(lv)
        yield w
        await lv.server.stop()
    elif request.param == "bitrix24":
        b24 = Bitrix24Emulator()
        await b24.server.start()
        w = Bitrix24World(b24)
        yield w
        await b24.server.stop()
    else:
        g = GenericCrmEmulator()
        await g.server.start()
        w = GenericWorld(g)
        yield w
        await g.server.stop()
    await w.adapter.aclose()


def _write(key: str, external_id: str, status: str | None) -> ResultWrite:
    return ResultWrite(key=key, external_id=external_id, status=status, comment=f"Звонок: success ({key})")


async def test_statuses_name_every_status(world: World) -> None:
    statuses = await world.adapter.statuses()
    assert statuses
    assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in statuses.items())


async def test_read_returns_records_then_only_changes(world: World) -> None:
    for i in (1, 2, 3):
        world.put(str(100 + i), f"+7900000000{i}", world.code("1"))
    first = await world.adapter.read({})
    assert {r.external_id for r in first.records} == {"101", "102", "103"}
    by_id = {r.external_id: r for r in first.records}
    assert by_id["102"].phones == ("+79000000002",)
    assert by_id["102"].status == world.code("1")

    world.change("101", world.code("2"))
    second = await world.adapter.read(first.cursor)
    ids = {r.external_id for r in second.records}
    assert "101" in ids and "102" not in ids  # the change, and at most the boundary record again
    assert next(r for r in second.records if r.external_id == "101").status == world.code("2")


async def test_write_sets_status_and_one_note_even_when_repeated(world: World) -> None:
    world.put("7", "+79000000007", world.code("1"))
    await world.adapter.write(_write("dialer-1", "7", world.code("3")))
    await world.adapter.write(_write("dialer-1", "7", world.code("3")))  # the same delivery again (a lost answer)
    assert world.status_of("7") == world.code("3")
    assert world.notes_of("7") == 1
    await world.adapter.write(_write("dialer-2", "7", None))  # another result; status left alone
    assert world.status_of("7") == world.code("3")
    assert world.notes_of("7") == 2


async def test_write_to_an_unknown_record_is_rejected(world: World) -> None:
    with pytest.raises(CrmRejected):
        await world.adapter.write(_write("dialer-9", "404", world.code("3")))


async def test_an_unreachable_crm_is_unavailable_not_rejected(world: World) -> None:
    world.put("8", "+79000000008", world.code("1"))
    await world.down()
    with pytest.raises(CrmUnavailable):
        await world.adapter.write(_write("dialer-3", "8", world.code("3")))
    with pytest.raises(CrmUnavailable):
        await world.adapter.read({})
