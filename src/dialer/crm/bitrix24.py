"""Bitrix24 (002 §5.2.7): leads (or deals) through an inbound webhook URL (``https://<portal>/rest/<user>/<key>/``).

Reads go through ``fast-bitrix24`` (PyPI), which batches list requests and keeps to Bitrix's rate limits:
``crm.lead.list`` filtered by ``>=DATE_MODIFY`` since the cursor, and ``crm.status.list`` for the statuses. The
library retries failed requests itself with sleeps of its own, so a read is bounded by ``read_timeout_s`` here and
then counts as the CRM being unavailable (the reader tries again from the same cursor).

Writes are single REST calls through the project's traced HTTP client, never retried inside: the outbox worker is
the one place of retries, and no Bitrix method takes an idempotency key, so every step checks before it writes:

1. ``crm.lead.get``: the lead's ``COMMENTS`` already carry this delivery's marker (``[dialer <key>]``) → done;
2. the call on the lead's card (``telephony.externalcall.register`` then ``…finish``) unless ``crm.activity.list``
   shows a call of this lead starting at the attempt's dial time (each attempt has its own);
3. ``crm.lead.update``: the CRM status (``STATUS_ID``; ``STAGE_ID`` for deals) and the note with the marker.

What is assumed of Bitrix (its public REST documentation): answers are ``{"result": …}``; errors are
``{"error": …, "error_description": …}`` with HTTP 400/401/404; ``PHONE`` is a list of ``{"VALUE", "VALUE_TYPE"}``;
``DATE_MODIFY`` is ISO 8601 with the portal's offset (compared as text, as the cursor).
"""

from __future__ import annotations

import asyncio
from typing import Any

from dialer.crm.base import CrmRecordData, CrmRejected, CrmUnavailable, ReadBatch, ResultWrite
from dialer.crm.http import Http

__all__ = ["Bitrix24Adapter", "marker"]

_EPOCH = "2000-01-01T00:00:00+00:00"
_SELECT = ["ID", "TITLE", "NAME", "SECOND_NAME", "LAST_NAME", "STATUS_ID", "STAGE_ID", "PHONE", "EMAIL",
           "DATE_MODIFY", "COMMENTS", "ASSIGNED_BY_ID", "SOURCE_ID", "OPPORTUNITY"]


def marker(key: str) -> str:
    return f"[dialer {key}]"


def _phones(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(p.get("VALUE", "")).strip() for p in value if isinstance(p, dict) and p.get("VALUE"))
    if isinstance(value, str) and value.strip():
        return (value.strip(),)
    return ()


class Bitrix24Adapter:
    def __init__(self, http: Http, *, webhook: str, entity: str = "lead", user_id: int = 1,
                 register_calls: bool = True, read_timeout_s: float = 60.0, since: str = _EPOCH) -> None:
        if not webhook.startswith(("http://", "https://")):
            raise ValueError("Bitrix24 needs the inbound webhook URL (https://<portal>/rest/<user>/<key>/)")
        if entity not in ("lead", "deal"):
            raise ValueError("Bitrix24 entity must be 'lead' or 'deal'")
        self.http = http
        self.webhook = webhook.rstrip("/") + "/"
        self.entity = entity
        self.user_id = user_id
        self.register_calls = register_calls
        self.read_timeout_s = read_timeout_s
        self.since = since
        self.status_field = "STATUS_ID" if entity == "lead" else "STAGE_ID"

    def _library(self) -> Any:
        from fast_bitrix24 import BitrixAsync  # imported when a Bitrix24 connector is used

        return BitrixAsync(self.webhook, verbose=False)

    async def _listed(self, method: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            async with asyncio.timeout(self.read_timeout_s):
                found = await self._library().get_all(method, params)
        except TimeoutError as err:
            raise CrmUnavailable(f"Bitrix24 {method}: no answer in {self.read_timeout_s:g} s") from err
        except (CrmUnavailable, CrmRejected):
            raise
        except Exception as err:  # the library's own errors (connection, retries exhausted, HTTP 4xx/5xx)
            raise CrmUnavailable(f"Bitrix24 {method}: {type(err).__name__}: {err}") from err
        return [r for r in (found or []) if isinstance(r, dict)]

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        try:
            response = await self.http.request("POST", f"{self.webhook}{method}.json", json=params)
        except CrmRejected as err:
            raise CrmRejected(f"Bitrix24 {method}: {err}") from err
        answer = response.json()
        if isinstance(answer, dict) and "error" in answer:
            raise CrmRejected(f"Bitrix24 {method}: {answer.get('error_description') or answer['error']}")
        return answer.get("result") if isinstance(answer, dict) else None

    async def statuses(self) -> dict[str, str]:
        entity_id = "STATUS" if self.entity == "lead" else "DEAL_STAGE"
        rows = await self._listed("crm.status.list", {"filter": {"ENTITY_ID": entity_id}})
        return {str(r.get("STATUS_ID")): str(r.get("NAME") or r.get("STATUS_ID")) for r in rows}

    async def read(self, cursor: dict[str, Any]) -> ReadBatch:
        since = str(cursor.get("since") or self.since)
        rows = await self._listed(f"crm.{self.entity}.list", {
            "select": _SELECT, "filter": {">=DATE_MODIFY": since}})
        records = [CrmRecordData(str(r.get("ID")), str(r.get(self.status_field) or ""), _phones(r.get("PHONE")), r,
                                 updated=str(r.get("DATE_MODIFY") or "")) for r in rows if r.get("ID")]
        records.sort(key=lambda r: (r.updated, r.external_id))
        latest = max([since, *(r.updated for r in records if r.updated)])
        return ReadBatch(records, {"since": latest})

    async def write(self, write: ResultWrite) -> None:
        found = await self._call(f"crm.{self.entity}.get", {"id": write.external_id})
        if not isinstance(found, dict):
            raise CrmRejected(f"Bitrix24: no {self.entity} {write.external_id}")
        comments = str(found.get("COMMENTS") or "")
        tag = marker(write.key)
        if tag in comments:
            return  # applied by an earlier try whose answer was lost
        if self.register_calls and write.call_at is not None:
            await self._register_call(write, found)
        fields: dict[str, Any] = {"COMMENTS": f"{comments}\n{write.comment} {tag}".lstrip("\n")}
        if write.status is not None:
            fields[self.status_field] = write.status
        await self._call(f"crm.{self.entity}.update", {"id": write.external_id, "fields": fields})

    async def _register_call(self, write: ResultWrite, found: dict[str, Any]) -> None:
        assert write.call_at is not None
        start = write.call_at.isoformat()
        owner_type = 1 if self.entity == "lead" else 2
        calls = await self._call("crm.activity.list", {"filter": {
            "OWNER_TYPE_ID": owner_type, "OWNER_ID": write.external_id, "TYPE_ID": 2, "START_TIME": start}})
        if calls:
            return  # registered by an earlier try
        phones = _phones(found.get("PHONE"))
        registered = await self._call("telephony.externalcall.register", {
            "USER_ID": self.user_id, "PHONE_NUMBER": phones[0] if phones else "", "CALL_START_DATE": start,
            "TYPE": 1, "CRM_CREATE": 0, "CRM_ENTITY_TYPE": self.entity.upper(), "CRM_ENTITY_ID": write.external_id,
            "SHOW": 0})
        call_id = registered.get("CALL_ID") if isinstance(registered, dict) else None
        if not call_id:
            raise CrmRejected(f"Bitrix24 telephony.externalcall.register gave no CALL_ID: {registered!r:.200}")
        await self._call("telephony.externalcall.finish", {
            "CALL_ID": call_id, "USER_ID": self.user_id, "DURATION": int(write.talk_s or 0),
            "STATUS_CODE": "200" if write.talk_s else "304", "ADD_TO_CHAT": 0})

    async def aclose(self) -> None:
        await self.http.aclose()
