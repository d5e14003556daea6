"""A CRM reached by plain HTTP and configured rather than coded (001: a bank's CRM "за 1–2 недели").

Settings (``crm_connectors.settings``):

``read_url``
    GET ``read_url?<since_param>=<cursor>`` answers JSON; ``records_path`` (a path, below) points at the list of
    records in it (the whole answer when empty).
``map``
    where each record keeps its ``id``, ``status``, ``phone`` (a string or a list) and ``updated`` (the change
    stamp, compared as text and used as the cursor): paths such as ``id``, ``$.client.phones``, ``items[0].id``.
``write_url``
    results are POSTed there as JSON (``key``, ``external_id``, ``status``, ``comment``, ``completion_code``,
    ``operator``, ``callback_at``, ``call_at``, ``talk_s``, ``attempt_id``) with the header ``Idempotency-Key``
    set to ``key``: the receiver must treat a repeated key as done (the same delivery after a crash).
``statuses``
    ``{id: name}`` of the CRM's statuses, or ``statuses_url`` answering that object or a list of ``{id, name}``.
``headers``
    sent with every request (an ``Authorization`` with the connector's token is added when it has one).
"""

from __future__ import annotations

import re
from typing import Any

from dialer.crm.base import CrmRecordData, CrmRejected, ReadBatch, ResultWrite
from dialer.crm.http import Http

__all__ = ["GenericHttpAdapter", "resolve"]

_STEP = re.compile(r"[^.\[\]]+|\[(\d+)\]")


def resolve(data: Any, path: str) -> Any:
    """The value at a dotted path (``$.a.b[0].c`` or ``a.b.0.c``); None when any step is missing."""
    path = path.strip()
    if path in ("", "$"):
        return data
    if path.startswith("$"):
        path = path[1:].lstrip(".")
    for match in _STEP.finditer(path):
        step = match.group(1) if match.group(1) is not None else match.group(0)
        if isinstance(data, list) and step.isdigit() and int(step) < len(data):
            data = data[int(step)]
        elif isinstance(data, dict) and step in data:
            data = data[step]
        else:
            return None
    return data


class GenericHttpAdapter:
    def __init__(self, http: Http, *, token: str = "", settings: dict[str, Any]) -> None:
        self.http = http
        self.settings = settings
        self.headers = {str(k): str(v) for k, v in (settings.get("headers") or {}).items()}
        if token:
            self.headers.setdefault("Authorization", f"Bearer {token}")
        self.map = {"id": "id", "status": "status", "phone": "phone", "updated": "updated",
                    **(settings.get("map") or {})}

    async def statuses(self) -> dict[str, str]:
        url = self.settings.get("statuses_url")
        if not url:
            return {str(k): str(v) for k, v in (self.settings.get("statuses") or {}).items()}
        answer = (await self.http.request("GET", url, headers=self.headers)).json()
        if isinstance(answer, list):
            return {str(s.get("id")): str(s.get("name", s.get("id"))) for s in answer if isinstance(s, dict)}
        return {str(k): str(v.get("name", k) if isinstance(v, dict) else v) for k, v in dict(answer).items()}

    async def read(self, cursor: dict[str, Any]) -> ReadBatch:
        url = self.settings.get("read_url")
        if not url:
            raise CrmRejected("generic HTTP connector: no read_url in its settings")
        params = {}
        if cursor.get("since"):
            params[str(self.settings.get("since_param") or "since")] = str(cursor["since"])
        response = await self.http.request("GET", url, params=params, headers=self.headers)
        try:
            answer = response.json()
        except ValueError as err:
            raise CrmRejected(f"generic HTTP read: not JSON: {response.text[:200]}") from err
        items = resolve(answer, str(self.settings.get("records_path") or ""))
        if not isinstance(items, list):
            items = []
        records: list[CrmRecordData] = []
        for item in items:
            if not isinstance(item, dict):
                continue
            external = resolve(item, self.map["id"])
            if external is None or str(external).strip() == "":
                continue
            phone = resolve(item, self.map["phone"])
            phones = tuple(str(p) for p in phone) if isinstance(phone, list) else (
                (str(phone),) if phone not in (None, "") else ())
            status = resolve(item, self.map["status"])
            updated = resolve(item, self.map["updated"])
            records.append(CrmRecordData(str(external), "" if status is None else str(status), phones, item,
                                         updated="" if updated is None else str(updated)))
        since = str(cursor.get("since") or "")
        latest = max([since, *(r.updated for r in records)]) if records else since
        return ReadBatch(records, {"since": latest} if latest else {})

    async def write(self, write: ResultWrite) -> None:
        url = self.settings.get("write_url")
        if not url:
            raise CrmRejected("generic HTTP connector: no write_url in its settings")
        body = {"key": write.key, "external_id": write.external_id, "status": write.status,
                "comment": write.comment, "completion_code": write.completion_code, "operator": write.operator,
                "callback_at": write.callback_at.isoformat() if write.callback_at else None,
                "call_at": write.call_at.isoformat() if write.call_at else None, "talk_s": write.talk_s,
                "attempt_id": write.attempt_id}
        await self.http.request("POST", url, json=body, headers={**self.headers, "Idempotency-Key": write.key})

    async def aclose(self) -> None:
        await self.http.aclose()
