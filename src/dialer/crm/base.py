"""The CRM adapter interface: what every CRM driver does, and the errors it may raise.

An adapter is thin (like a telephony driver, :mod:`dialer.telephony.base`): it speaks one CRM's API and translates
its errors at the edge; delivery order, retries, backoff and dead letters are :mod:`dialer.crm.worker`'s, the field
mapping into contact lists is :mod:`dialer.crm.reader`'s. Every adapter passes the one contract suite
(``tests/crm/test_contract.py``); :class:`dialer.crm.fake.FakeAdapter` is the in-memory one beside the real ones.

Writes must be idempotent by ``ResultWrite.key``: the worker may send one again after a crash between sending and
confirming. An adapter uses the CRM's own idempotency when it has one, otherwise it reads the record before
writing and skips a write the record already shows (LeadVertex).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Protocol

__all__ = ["CrmAdapter", "CrmError", "CrmRecordData", "CrmRejected", "CrmUnavailable", "ReadBatch", "ResultWrite"]


class CrmError(Exception):
    """Base of what an adapter raises."""


class CrmUnavailable(CrmError):
    """The CRM did not take the request now (timeout, connection refused or reset, 5xx, 429): try again later;
    ``retry_after`` seconds when it said so (``Retry-After``)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CrmRejected(CrmError):
    """The CRM refused the request itself (unknown record, bad token, validation): retrying the same will not help
    until someone changes something, so the worker counts it as a failed try with the CRM's message."""


@dataclasses.dataclass(frozen=True, slots=True)
class CrmRecordData:
    """A record as the CRM has it: its id, status, phones, fields by the CRM's own names."""

    external_id: str
    status: str
    phones: tuple[str, ...]
    fields: dict[str, Any]
    #: The record's change time as the CRM writes it (compared as text, used as the read cursor).
    updated: str = ""
    #: When the CRM wants it called again (LeadVertex ``callmodeRecallAt``), for the "postpone" status action.
    recall_at: datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ReadBatch:
    """Records read since a cursor and the cursor to continue from next time."""

    records: list[CrmRecordData]
    cursor: dict[str, Any]
    #: More records are waiting: read again at once rather than after the poll interval.
    more: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class ResultWrite:
    """The result of a finished attempt to write to a CRM record (001 "пишет результат обратно в CRM")."""

    #: Unique per delivery (``dialer-<outbox id>``): the same write sent twice must take effect once.
    key: str
    external_id: str
    #: The CRM status to set (from the connector's result map); None leaves the status as it is.
    status: str | None
    #: A note for the record's history: outcome, completion code, operator, call time, operator's comment.
    comment: str
    completion_code: str | None = None
    operator: str | None = None
    callback_at: datetime | None = None
    call_at: datetime | None = None
    talk_s: float | None = None
    attempt_id: int | None = None


class CrmAdapter(Protocol):
    """One CRM, through its API. Built from a connector's settings and token (:mod:`dialer.crm.registry`)."""

    async def statuses(self) -> dict[str, str]:
        """The CRM's statuses: id → name (for the status mapping in the UI). Raises CrmError."""
        ...

    async def read(self, cursor: dict[str, Any]) -> ReadBatch:
        """Records new or changed since ``cursor`` (``{}`` the first time), and where to continue. Raises
        CrmError; a failed read is tried again from the same cursor, so nothing is skipped."""
        ...

    async def write(self, write: ResultWrite) -> None:
        """Write one result to its record, idempotently by ``write.key``. Raises CrmUnavailable (try again later)
        or CrmRejected."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
