"""LeadVertex, the seed's ready adapter (001): its admin API ``https://{account}.leadvertex.ru/api/admin/{method}.html``.

No official documentation is reachable here; the methods and their shapes come from public client code
(lShamanl/api-manager-leadvertex-plugin, gwinn/saas-connector, Hamza-crypto/Leadvertex-to-webshippy). What this
adapter assumes, and tolerates:

* every call carries ``token`` in the query string; an error is an object ``{"error": …}`` (also with HTTP 200);
* ``getStatusList`` → ``{"<id>": {"name": …}, …}``;
* ``getOrdersIdsByCondition?dateModFrom=YYYY-MM-DD HH:MM:SS`` → ids changed since then, as a list of strings or
  numbers (an empty answer may be ``[]`` or ``{}``); the parameter is configurable (``changed_param``, e.g.
  ``dateUpdFrom``);
* ``getOrdersByIds?ids=1,2`` (at most 100 ids) → an object keyed by id whose orders carry no ``id`` of their own;
  numbers may come as strings; ``status`` is an int (or its string); ``lastUpdate`` / ``lastModify`` are
  "YYYY-MM-DD HH:MM:SS" in the account's time and serve as the read cursor (compared as text; the boundary second
  is read again, which is harmless); ``callmodeRecallAt`` is "0000-00-00 00:00:00" when unset; unknown fields are
  kept as they are and may be mapped to list fields;
* ``updateOrder?id=N`` (POST form: ``status``, ``comment``, ``callmodeRecallAt``) → ``{"<id>": "OK"}``.

``updateOrder`` has no idempotency key, so a write is made safe by reading the order first: the note the dialer
appends to the order's ``comment`` ends with a marker naming the delivery (``[dialer <key>]``); if the order
already shows it (the previous try was applied but its answer was lost), nothing is written again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dialer.crm.base import CrmRecordData, CrmRejected, ReadBatch, ResultWrite
from dialer.crm.http import Http

__all__ = ["BATCH", "LeadVertexAdapter", "marker", "parse_time"]

#: getOrdersByIds takes at most this many ids.
BATCH = 100
_UNSET = "0000-00-00 00:00:00"
_EPOCH = "2000-01-01 00:00:00"


def marker(key: str) -> str:
    return f"[dialer {key}]"


def parse_time(value: Any) -> datetime | None:
    """A LeadVertex "YYYY-MM-DD HH:MM:SS" (naive, the account's time), None for empty or the zero date."""
    if not isinstance(value, str) or not value.strip() or value.startswith("0000"):
        return None
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None


def _ids(answer: Any) -> list[str]:
    if isinstance(answer, dict):
        values = list(answer.values())
        # either {"0": "12", "1": "13"} or {"12": {...}}: prefer values that look like ids
        answer = values if all(isinstance(v, int | str) for v in values) else list(answer)
    if not isinstance(answer, list):
        return []
    return [str(int(v)) if isinstance(v, int | float) else str(v).strip() for v in answer if str(v).strip()]


def _phones(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v).strip() for v in value if str(v).strip())
    if value is None:
        return ()
    text = str(int(value)) if isinstance(value, int | float) else str(value)
    return tuple(p.strip() for p in text.replace(";", ",").split(",") if p.strip())


def _status(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip() if value is not None else ""


class LeadVertexAdapter:
    def __init__(self, http: Http, *, token: str, account: str = "", base_url: str = "",
                 changed_param: str = "dateModFrom", since: str = _EPOCH) -> None:
        if not base_url and not account:
            raise ValueError("LeadVertex needs an account (or a base URL)")
        self.http = http
        self.token = token
        self.base = (base_url or f"https://{account}.leadvertex.ru/api/admin/").rstrip("/") + "/"
        self.changed_param = changed_param
        self.since = since

    async def _call(self, method: str, *, params: dict[str, Any] | None = None,
                    form: dict[str, Any] | None = None) -> Any:
        query = {"token": self.token, **(params or {})}
        url = f"{self.base}{method}.html"
        if form is None:
            response = await self.http.request("GET", url, params=query)
        else:
            response = await self.http.request("POST", url, params=query, data=form)
        try:
            answer = response.json()
        except ValueError as err:
            raise CrmRejected(f"LeadVertex {method}: not JSON: {response.text[:200]}") from err
        if isinstance(answer, dict) and "error" in answer:
            raise CrmRejected(f"LeadVertex {method}: {answer['error']}")
        return answer

    async def statuses(self) -> dict[str, str]:
        answer = await self._call("getStatusList")
        if not isinstance(answer, dict):
            return {}
        return {str(k): str(v.get("name", k)) if isinstance(v, dict) else str(v) for k, v in answer.items()}

    async def orders(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), BATCH):
            answer = await self._call("getOrdersByIds", params={"ids": ",".join(ids[start:start + BATCH])})
            if isinstance(answer, dict):
                found.update({str(k): v for k, v in answer.items() if isinstance(v, dict)})
        return found

    def _record(self, order_id: str, order: dict[str, Any]) -> CrmRecordData:
        updated = str(order.get("lastUpdate") or order.get("lastModify") or "")
        return CrmRecordData(order_id, _status(order.get("status")), _phones(order.get("phone")), order,
                             updated=updated, recall_at=parse_time(order.get("callmodeRecallAt")))

    async def read(self, cursor: dict[str, Any]) -> ReadBatch:
        since = str(cursor.get("since") or self.since)
        ids = _ids(await self._call("getOrdersIdsByCondition", params={self.changed_param: since}))
        orders = await self.orders(ids)
        records = sorted((self._record(i, o) for i, o in orders.items()), key=lambda r: (r.updated, r.external_id))
        latest = max([since, *(r.updated for r in records if r.updated)])
        return ReadBatch(records, {"since": latest})

    async def write(self, write: ResultWrite) -> None:
        found = (await self.orders([write.external_id])).get(write.external_id)
        if found is None:
            raise CrmRejected(f"LeadVertex: no order {write.external_id}")
        comment = str(found.get("comment") or "")
        tag = marker(write.key)
        if tag in comment:
            return  # the previous try was applied; its answer was lost
        form: dict[str, Any] = {"comment": f"{comment}\n{write.comment} {tag}".lstrip("\n")}
        if write.status is not None:
            form["status"] = write.status
        if write.callback_at is not None:
            form["callmodeRecallAt"] = write.callback_at.strftime("%Y-%m-%d %H:%M:%S")
        answer = await self._call("updateOrder", params={"id": write.external_id}, form=form)
        if not (isinstance(answer, dict) and str(answer.get(write.external_id, "")).upper() == "OK"):
            raise CrmRejected(f"LeadVertex updateOrder {write.external_id}: unexpected answer {answer!r:.200}")

    async def aclose(self) -> None:
        await self.http.aclose()
