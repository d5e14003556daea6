"""Real HTTP servers playing a CRM and a webhook receiver, with injected faults (tests, ``dialer bench crm``).

:class:`HttpServer` is a small HTTP/1.1 server on asyncio streams and h11 (the protocol library httpx itself uses),
so a test controls the connection: it can answer late, refuse, or *reset the connection after the request was
applied* — the case that makes a naive retry write twice. :class:`Faults` decides per request (seeded):
latency, a timeout (no answer before the client gives up), 5xx, 429 with ``Retry-After``, a reset after the
handler committed. Stopping and starting the server again on the same port is a CRM restart.

* :class:`LeadVertexEmulator` implements the LeadVertex admin methods :mod:`dialer.crm.leadvertex` documents, with
  LeadVertex's quirks (ids as strings, numbers as strings, ``[]`` for nothing, ``{"error": …}``, the zero date).
* :class:`Bitrix24Emulator` answers a Bitrix24 REST subset behind an inbound webhook path (leads, statuses,
  activities, the external-call telephony methods).
* :class:`GenericCrmEmulator` answers the generic HTTP adapter (records since a cursor, results with
  ``Idempotency-Key``).
* :class:`WebhookReceiver` checks every webhook's ``X-Client-Sign`` (003 §10.6) and its time, and counts events by
  ``X-Event-ID``.

Each counts what it applied, so a test or the benchmark can prove 0 lost and 0 duplicated writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import h11

from dialer.crm.signing import REPLAY_WINDOW_S, verify

__all__ = ["Bitrix24Emulator", "Faults", "GenericCrmEmulator", "HttpServer", "LeadVertexEmulator", "Reply", "Request",
           "WebhookReceiver"]


@dataclasses.dataclass(slots=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclasses.dataclass(slots=True)
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, ensure_ascii=False).encode()


@dataclasses.dataclass
class Faults:
    """What goes wrong, per request, drawn from a seeded generator (rates are probabilities 0..1)."""

    latency_s: float = 0.0
    timeout_rate: float = 0.0
    #: How long a "timeout" keeps the client waiting (longer than its timeout).
    timeout_s: float = 30.0
    error_rate: float = 0.0
    throttle_rate: float = 0.0
    retry_after_s: float = 1.0
    #: The request is applied, then the connection is reset before the answer: the client cannot know.
    reset_after_commit_rate: float = 0.0
    seed: int = 1
    counts: Counter[str] = dataclasses.field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def draw(self) -> str:
        """``ok``, ``timeout``, ``error``, ``throttle`` or ``reset``."""
        x = self._random.random()
        for name, rate in (("timeout", self.timeout_rate), ("error", self.error_rate),
                           ("throttle", self.throttle_rate), ("reset", self.reset_after_commit_rate)):
            if x < rate:
                self.counts[name] += 1
                return name
            x -= rate
        self.counts["ok"] += 1
        return "ok"


Handler = Callable[[Request], Awaitable[Reply]]


class HttpServer:
    """An HTTP/1.1 server (keep-alive) on 127.0.0.1 and a free port, calling ``handler`` per request."""

    def __init__(self, handler: Handler, *, faults: Faults | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.handler = handler
        self.faults = faults or Faults()
        self.host = host
        self.port = port
        self.requests = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> HttpServer:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening and drop every open connection (a CRM going down)."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            for task in list(self._connections):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(task), 5.0)
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> HttpServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        self._writers.add(writer)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await self._read(conn, reader)
                if request is None:
                    return
                self.requests += 1
                fault = self.faults.draw()
                if self.faults.latency_s:
                    await asyncio.sleep(self.faults.latency_s)
                if fault == "timeout":
                    with contextlib.suppress(ConnectionError):
                        await asyncio.wait_for(reader.read(1), self.faults.timeout_s)
                    return
                if fault == "error":
                    reply = Reply(503, {"error": "injected failure"})
                elif fault == "throttle":
                    reply = Reply(429, {"error": "too many requests"},
                                  {"Retry-After": f"{self.faults.retry_after_s:g}"})
                else:
                    try:
                        reply = await self.handler(request)
                    except Exception as err:
                        reply = Reply(500, {"error": f"{type(err).__name__}: {err}"})
                    if fault == "reset":
                        writer.transport.abort()
                        return
                body = reply.encoded()
                headers = [("content-type", "application/json; charset=utf-8"), ("content-length", str(len(body))),
                           *reply.headers.items()]
                writer.write(conn.send(h11.Response(status_code=reply.status, headers=headers)))
                writer.write(conn.send(h11.Data(data=body)))
                writer.write(conn.send(h11.EndOfMessage()))
                await writer.drain()
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, asyncio.IncompleteReadError):
            return
        finally:
            if task is not None:
                self._connections.discard(task)
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _read(self, conn: h11.Connection, reader: asyncio.StreamReader) -> Request | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                conn.receive_data(data)
                if not data and conn.their_state is not h11.DONE:
                    return None
                continue
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body.extend(event.data)
            elif isinstance(event, h11.EndOfMessage) and head is not None:
                target = urlsplit(head.target.decode())
                return Request(head.method.decode(), target.path, dict(parse_qsl(target.query)),
                               {k.decode().lower(): v.decode() for k, v in head.headers}, bytes(body))
            elif isinstance(event, h11.ConnectionClosed):
                return None


# --- LeadVertex ---------------------------------------------------------------------------------------------

_MARKER = re.compile(r"\[dialer [^\]]+\]")


class LeadVertexEmulator:
    """The LeadVertex admin API methods the adapter uses, on orders held in memory."""

    def __init__(self, *, token: str = "lv-token", faults: Faults | None = None) -> None:
        self.token = token
        self.statuses = {"1": "Новый", "2": "Перезвонить", "3": "Принят", "4": "Отказ", "5": "Спам"}
        self.orders: dict[str, dict[str, Any]] = {}
        self.updates = 0
        self._clock = 0
        self.server = HttpServer(self.handle, faults=faults)

    @property
    def base_url(self) -> str:
        return f"{self.server.url}/api/admin/"

    def _stamp(self) -> str:
        self._clock += 1
        return f"2026-01-01 {self._clock // 3600 % 24:02d}:{self._clock // 60 % 60:02d}:{self._clock % 60:02d}"

    def add_order(self, order_id: int | str, *, phone: str, status: int = 1, fio: str = "", **fields: Any) -> None:
        self.orders[str(order_id)] = {"fio": fio, "phone": phone, "status": status, "comment": "",
                                      "callmodeRecallAt": "0000-00-00 00:00:00", "total": "0",
                                      "lastUpdate": self._stamp(), **fields}

    def change(self, order_id: int | str, **fields: Any) -> None:
        self.orders[str(order_id)].update(fields, lastUpdate=self._stamp())

    def markers(self) -> Counter[str]:
        """How many times each delivery's marker was written, over all orders (>1 would be a duplicate)."""
        found: Counter[str] = Counter()
        for order in self.orders.values():
            found.update(_MARKER.findall(str(order.get("comment", ""))))
        return found

    async def handle(self, request: Request) -> Reply:
        match = re.fullmatch(r"/api/admin/(\w+)\.html", request.path)
        if match is None:
            return Reply(404, {"error": "no such method"})
        if request.query.get("token") != self.token:
            return Reply(200, {"error": "Invalid token"})
        method = match.group(1)
        if method == "getStatusList":
            return Reply(200, {k: {"name": v} for k, v in self.statuses.items()})
        if method == "getOrdersIdsByCondition":
            since = request.query.get("dateModFrom") or request.query.get("dateUpdFrom") or ""
            ids = [i for i, o in self.orders.items() if str(o["lastUpdate"]) >= since]
            return Reply(200, ids if ids else [])
        if method == "getOrdersIdsInStatus":
            status = request.query.get("status", "")
            return Reply(200, [i for i, o in self.orders.items() if str(o["status"]) == status])
        if method == "getOrdersByIds":
            ids = [i for i in request.query.get("ids", "").split(",") if i]
            if len(ids) > 100:
                return Reply(200, {"error": "Too many ids"})
            # LeadVertex's way: numbers as strings, no id inside the order, [] when nothing is found
            found = {i: {k: (str(v) if isinstance(v, int) else v) for k, v in self.orders[i].items()}
                     for i in ids if i in self.orders}
            return Reply(200, found if found else [])
        if method == "updateOrder" and request.method == "POST":
            order_id = request.query.get("id", "")
            if order_id not in self.orders:
                return Reply(200, {"error": f"Order {order_id} not found"})
            form = request.form()
            changes: dict[str, Any] = {k: form[k] for k in ("status", "comment", "callmodeRecallAt") if k in form}
            if "status" in changes:
                changes["status"] = int(changes["status"])
            self.change(order_id, **changes)
            self.updates += 1
            return Reply(200, {order_id: "OK"})
        return Reply(200, {"error": f"Unknown method {method}"})


# --- generic HTTP CRM ---------------------------------------------------------------------------------------


class GenericCrmEmulator:
    """``GET /records?since=`` (``{"items": [...]}``) and ``POST /results`` with ``Idempotency-Key``."""

    def __init__(self, *, faults: Faults | None = None) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.applied = 0
        self._version = 0
        self.server = HttpServer(self.handle, faults=faults)

    def put(self, record_id: str, *, phone: str, status: str = "new", **fields: Any) -> None:
        self._version += 1
        self.records[record_id] = {"id": record_id, "client": {"phone": phone}, "state": status,
                                   "changed": f"{self._version:010d}", **fields}

    async def handle(self, request: Request) -> Reply:
        if request.path == "/records" and request.method == "GET":
            since = request.query.get("since", "")
            return Reply(200, {"items": [r for r in self.records.values() if r["changed"] > since]})
        if request.path == "/statuses":
            return Reply(200, [{"id": "new", "name": "Новая"}, {"id": "done", "name": "Готово"}])
        if request.path == "/results" and request.method == "POST":
            key = request.headers.get("idempotency-key", "")
            if not key:
                return Reply(400, {"error": "Idempotency-Key is required"})
            if key in self.results:
                return Reply(200, {"ok": True, "repeated": True})
            body = request.json()
            record = self.records.get(str(body.get("external_id")))
            if record is None:
                return Reply(404, {"error": "no such record"})
            self.results[key] = body
            self.applied += 1
            if body.get("status"):
                self._version += 1
                record.update(state=body["status"], changed=f"{self._version:010d}")
            return Reply(200, {"ok": True})
        return Reply(404, {"error": "not found"})


# --- webhook receiver ---------------------------------------------------------------------------------------


class WebhookReceiver:
    """Accepts webhooks only with a valid signature and a recent ``sent_at``; counts them by event id."""

    def __init__(self, *, client_id: str, key: str, faults: Faults | None = None,
                 now: Callable[[], datetime] | None = None) -> None:
        self.client_id = client_id
        self.key = key
        self.now = now
        self.events: dict[int, dict[str, Any]] = {}
        self.received: Counter[int] = Counter()
        self.refused = 0
        self.server = HttpServer(self.handle, faults=faults)

    async def handle(self, request: Request) -> Reply:
        signature = request.headers.get("x-client-sign", "")
        try:
            body = request.json()
            sent_at = datetime.fromisoformat(str(body["sent_at"]))
        except (ValueError, KeyError, TypeError):
            self.refused += 1
            return Reply(400, {"error": "not a webhook body"})
        now = self.now() if self.now is not None else None
        if request.headers.get("x-client-id") != self.client_id or not verify(
                self.client_id, request.body, self.key, signature, sent_at=sent_at, now=now,
                window_s=REPLAY_WINDOW_S):
            self.refused += 1
            return Reply(403, {"error": "bad signature"})
        event_id = int(request.headers.get("x-event-id", body.get("id", 0)))
        self.received[event_id] += 1
        self.events.setdefault(event_id, body)
        return Reply(200, {"ok": True})


# --- Bitrix24 -----------------------------------------------------------------------------------------------


class Bitrix24Emulator:
    """The subset of Bitrix24's REST API the adapter uses, behind an inbound webhook path ``/rest/1/<key>/``:
    ``crm.lead.list`` (``>=DATE_MODIFY`` filter, one page: at most 50 leads, as the tests keep it), ``crm.lead.get``,
    ``crm.lead.update``, ``crm.status.list``, ``crm.activity.list``, ``telephony.externalcall.register`` and
    ``…finish``. Answers are ``{"result": …, "time": …}``, errors ``{"error", "error_description"}`` with HTTP 400."""

    def __init__(self, *, key: str = "b24key", faults: Faults | None = None) -> None:
        self.key = key
        self.leads: dict[str, dict[str, Any]] = {}
        self.statuses = {"NEW": "Не обработан", "IN_PROCESS": "В работе", "CONVERTED": "Качественный лид",
                         "JUNK": "Некачественный лид"}
        self.activities: list[dict[str, Any]] = []
        self.finished: list[str] = []
        self.updates = 0
        self._clock = 0
        self.server = HttpServer(self.handle, faults=faults)

    @property
    def webhook(self) -> str:
        return f"{self.server.url}/rest/1/{self.key}/"

    def _stamp(self) -> str:
        self._clock += 1
        return f"2026-01-01T{self._clock // 3600 % 24:02d}:{self._clock // 60 % 60:02d}:{self._clock % 60:02d}+03:00"

    def add_lead(self, lead_id: int | str, *, phone: str, status: str = "NEW", **fields: Any) -> None:
        self.leads[str(lead_id)] = {"ID": str(lead_id), "TITLE": f"Лид {lead_id}", "STATUS_ID": status,
                                    "PHONE": [{"ID": "1", "VALUE": phone, "VALUE_TYPE": "WORK"}], "COMMENTS": "",
                                    "DATE_MODIFY": self._stamp(), **fields}

    def change(self, lead_id: int | str, **fields: Any) -> None:
        self.leads[str(lead_id)].update(fields, DATE_MODIFY=self._stamp())

    def markers(self) -> Counter[str]:
        found: Counter[str] = Counter()
        for lead in self.leads.values():
            found.update(_MARKER.findall(str(lead.get("COMMENTS", ""))))
        return found

    def calls(self) -> Counter[tuple[str, str]]:
        """Calls registered per (lead, start time): more than one would be a duplicate on the card."""
        return Counter((str(a["OWNER_ID"]), str(a["START_TIME"])) for a in self.activities)

    @staticmethod
    def _ok(result: Any, **extra: Any) -> Reply:
        return Reply(200, {"result": result, **extra, "time": {"start": 0, "finish": 0, "duration": 0.01,
                                                              "processing": 0.01, "operating": 0}})

    @staticmethod
    def _error(code: str, text: str, status: int = 400) -> Reply:
        return Reply(status, {"error": code, "error_description": text})

    async def handle(self, request: Request) -> Reply:
        prefix = f"/rest/1/{self.key}/"
        if not request.path.startswith(prefix):
            return self._error("INVALID_CREDENTIALS", "Invalid request credentials", 401)
        method = request.path[len(prefix):].removesuffix(".json").lower()
        params = request.json() if request.body else {}
        params = params if isinstance(params, dict) else {}
        flt = params.get("filter") or {}
        if method == "crm.lead.list":
            since = str(flt.get(">=DATE_MODIFY") or "")
            found = [dict(lead) for lead in self.leads.values() if str(lead["DATE_MODIFY"]) >= since]
            return self._ok(found, total=len(found))
        if method == "crm.status.list":
            rows = [{"ENTITY_ID": "STATUS", "STATUS_ID": k, "NAME": v} for k, v in self.statuses.items()]
            return self._ok(rows, total=len(rows))
        if method == "crm.lead.get":
            lead = self.leads.get(str(params.get("id")))
            return self._ok(dict(lead)) if lead is not None else self._error("NOT_FOUND", "Not found")
        if method == "crm.lead.update":
            lead_id = str(params.get("id"))
            if lead_id not in self.leads:
                return self._error("NOT_FOUND", "Not found")
            self.change(lead_id, **dict(params.get("fields") or {}))
            self.updates += 1
            return self._ok(True)
        if method == "crm.activity.list":
            rows = [a for a in self.activities if all(str(a.get(k)) == str(v) for k, v in flt.items())]
            return self._ok(rows, total=len(rows))
        if method == "telephony.externalcall.register":
            owner = str(params.get("CRM_ENTITY_ID"))
            if owner not in self.leads:
                return self._error("ERROR_CORE", "Lead not found")
            call_id = f"externalCall.{len(self.activities) + 1}"
            self.activities.append({"ID": str(len(self.activities) + 1), "OWNER_TYPE_ID": 1, "OWNER_ID": owner,
                                    "TYPE_ID": 2, "START_TIME": params.get("CALL_START_DATE"), "ORIGIN_ID": call_id})
            return self._ok({"CALL_ID": call_id, "CRM_CREATED_LEAD": None})
        if method == "telephony.externalcall.finish":
            call_id = str(params.get("CALL_ID"))
            if not any(a["ORIGIN_ID"] == call_id for a in self.activities):
                return self._error("ERROR_CORE", "Call not found")
            self.finished.append(call_id)
            return self._ok({"CALL_ID": call_id})
        return self._error("ERROR_METHOD_NOT_FOUND", f"Method not found: {method}")
