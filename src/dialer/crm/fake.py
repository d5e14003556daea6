"""The in-memory CRM: :class:`FakeCrm` holds records, :class:`FakeAdapter` is its adapter.

It is the test double beside the real adapters (like the simulated telephony beside the SIP driver): it passes the
same contract suite, honours idempotency keys the way a CRM with native idempotency does, and can be told to fail
(:attr:`FakeCrm.outage`) to show that dialling goes on while a CRM is down. A connector of kind ``fake`` names its
store in ``settings["store"]`` (one per process, :func:`store`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dialer.crm.base import CrmRecordData, CrmRejected, CrmUnavailable, ReadBatch, ResultWrite

__all__ = ["FakeAdapter", "FakeCrm", "store"]


@dataclasses.dataclass
class FakeCrm:
    statuses: dict[str, str] = dataclasses.field(default_factory=lambda: {
        "1": "Новый", "2": "Перезвонить", "3": "Согласен", "4": "Отказ"})
    records: dict[str, CrmRecordData] = dataclasses.field(default_factory=dict)
    #: Notes written to each record, in order.
    notes: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    keys: set[str] = dataclasses.field(default_factory=set)
    #: While set, every call fails as if the CRM were unreachable.
    outage: bool = False
    writes: int = 0
    _version: int = 0

    def put(self, external_id: str, *, status: str = "1", phones: tuple[str, ...] = (),
            fields: dict[str, Any] | None = None) -> CrmRecordData:
        self._version += 1
        record = CrmRecordData(external_id, status, phones, dict(fields or {}), updated=f"{self._version:012d}")
        self.records[external_id] = record
        return record


_STORES: dict[str, FakeCrm] = {}


def store(name: str) -> FakeCrm:
    """The process's fake CRM of that name (created empty on first use)."""
    return _STORES.setdefault(name, FakeCrm())


class FakeAdapter:
    """The adapter of a :class:`FakeCrm`."""

    def __init__(self, crm: FakeCrm, *, page: int = 100) -> None:
        self.crm = crm
        self.page = page

    def _check(self) -> None:
        if self.crm.outage:
            raise CrmUnavailable("fake CRM: outage")

    async def statuses(self) -> dict[str, str]:
        self._check()
        return dict(self.crm.statuses)

    async def read(self, cursor: dict[str, Any]) -> ReadBatch:
        self._check()
        since = str(cursor.get("updated", ""))
        changed = sorted((r for r in self.crm.records.values() if r.updated > since), key=lambda r: r.updated)
        batch = changed[: self.page]
        last = batch[-1].updated if batch else since
        return ReadBatch(batch, {"updated": last} if last else {}, more=len(changed) > self.page)

    async def write(self, write: ResultWrite) -> None:
        self._check()
        if write.key in self.crm.keys:
            return  # the CRM's own idempotency: a repeated key is accepted and ignored
        record = self.crm.records.get(write.external_id)
        if record is None:
            raise CrmRejected(f"fake CRM: no record {write.external_id}")
        status = write.status if write.status is not None else record.status
        self.crm.keys.add(write.key)
        self.crm.writes += 1
        self.crm.notes.setdefault(write.external_id, []).append(write.comment)
        self.crm.put(write.external_id, status=status, phones=record.phones, fields=record.fields)

    async def aclose(self) -> None:
        return None
