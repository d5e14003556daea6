"""The delivery worker: takes outbox items and sends them, losing nothing and repeating nothing.

Guarantees
    *In order per record*: of the items of one target (a CRM connector or a webhook subscription) with the same
    ``record_key`` only the oldest undelivered one — the *head* — is ever taken; the next follows once it is
    delivered. A dead head keeps the items behind it waiting until an administrator sends it again (an older
    status must never overwrite a newer one in the CRM).

    *At least once, effectively once*: an item is marked delivered only after the target answered; a crash (or a
    lost answer) between sending and confirming sends it again once its lease (:attr:`lease_s`) has passed. The
    adapters make that repetition harmless (:mod:`dialer.crm.base`); webhook receivers deduplicate by
    ``X-Event-ID``.

    *Retries*: a failed try waits ``base_backoff_s · 2^(tries-1)`` (at most :attr:`max_backoff_s`), or what the
    target asked for in ``Retry-After``; after the target's ``max_tries`` the item is *dead* (a dead letter).
    While a target is unreachable the worker probes it with one item at a time and leaves its other items alone
    (they keep their tries), so an outage of hours costs a few probes, not every item's tries.

    *Dialling never waits for a CRM*: producers only insert rows (:mod:`dialer.crm.outbox`); the worker runs in
    the web process (``dialer run``), its own task, on its own database sessions.

Time comes from the injected clock (tests move a ``VirtualClock``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.core.clock import Clock, SystemClock
from dialer.crm.base import CrmAdapter, CrmError, CrmRejected, CrmUnavailable, ResultWrite
from dialer.crm.http import CURRENT_ITEM, Http, Trace
from dialer.crm.registry import build
from dialer.crm.signing import sign

__all__ = ["DeliveryWorker", "Outcome", "result_status", "webhook_body"]

log = logging.getLogger(__name__)

#: Requests kept for the debug page.
KEEP_REQUESTS = 2000

_HEADS = text(
    "WITH heads AS (SELECT DISTINCT ON (connector_id, subscription_id, record_key) id, status, tries, next_at,"
    " lease_until FROM integration_outbox WHERE status <> 'delivered'"
    " ORDER BY connector_id, subscription_id, record_key, id) "
    "SELECT id FROM heads WHERE status = 'pending' AND (tries = 0 OR next_at <= :now)"
    " AND (lease_until IS NULL OR lease_until < :now) ORDER BY id LIMIT :limit")

_CLAIM = text(
    "UPDATE integration_outbox SET lease_until = :until WHERE id = ANY(:ids) AND status = 'pending'"
    " AND (lease_until IS NULL OR lease_until < :now) "
    "RETURNING id, connector_id, subscription_id, record_key, event, payload, tries, created_at")

_ATTEMPTS = text(
    "SELECT a.id, a.comment, a.dialed_at, a.connected_at, a.hung_up_at, cc.name AS code, o.name AS operator "
    "FROM attempts a LEFT JOIN completion_codes cc ON cc.id = a.completion_code_id "
    "LEFT JOIN operators o ON o.id = a.operator_id WHERE a.id = ANY(:ids)")


@dataclass(slots=True)
class Outcome:
    """How one try ended."""

    item_id: int
    delivered: bool
    error: str = ""
    retry_after: float | None = None
    unavailable: bool = False


@dataclass(slots=True)
class _Target:
    key: str
    max_tries: int
    adapter: CrmAdapter | None = None
    connector: dict[str, Any] | None = None
    subscription: dict[str, Any] | None = None


def result_status(result_map: dict[str, Any], payload: dict[str, Any]) -> str | None:
    """The CRM status a result sets (001 "Финальный статус CRM после исчерпания попыток"): the completion code's
    mapping first, then for a final contact ``exhausted`` (attempts used up) or ``final:<category>``, then
    ``category:<category>``; None when nothing maps (the status stays)."""
    category = str(payload.get("category") or "")
    keys = [f"code:{payload.get('completion_code_id')}"]
    if payload.get("final"):
        if payload.get("reason") in ("max_attempts", "outcome_exhausted"):
            keys.append("exhausted")
        keys.append(f"final:{category}")
    keys.append(f"category:{category}")
    for key in keys:
        value = result_map.get(key)
        if value not in (None, ""):
            return str(value)
    return None


def webhook_body(item_id: int, event: str, data: dict[str, Any], sent_at: datetime) -> bytes:
    """The JSON a webhook POSTs: its id (the same on every try), event name, time of sending, the event's data."""
    return json.dumps({"id": item_id, "event": event, "sent_at": sent_at.isoformat(), "data": data},
                      ensure_ascii=False, separators=(",", ":"), default=str).encode()


class DeliveryWorker:
    """Run :meth:`run` as a task; :meth:`deliver_due` does one round (tests and the benchmark call it)."""

    def __init__(self, maker: async_sessionmaker[AsyncSession], *, clock: Clock | None = None,
                 concurrency: int = 16, batch: int = 200, base_backoff_s: float = 2.0,
                 max_backoff_s: float = 600.0, lease_s: float = 120.0, timeout_s: float = 10.0,
                 poll_s: float = 1.0, adapters: dict[int, CrmAdapter] | None = None) -> None:
        self.maker = maker
        self.clock: Clock = clock or SystemClock()
        self.concurrency = concurrency
        self.batch = batch
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.lease_s = lease_s
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        #: Adapters given from outside (tests), by connector id; others are built from the connector's row.
        self._given = dict(adapters or {})
        self._adapters: dict[tuple[int, str], CrmAdapter] = {}
        self._webhooks = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self._web = Http("webhook", client=self._webhooks, on_trace=self._trace)
        #: Targets found unreachable: probed with one item at a time until one gets through.
        self._held: set[str] = set()
        self._traces: list[Trace] = []
        self._wake = asyncio.Event()
        self.delivered = 0
        self.failed = 0
        self.dead = 0
        self.rounds = 0
        #: Called with each outcome (the benchmark counts them).
        self.on_outcome: Callable[[Outcome], None] | None = None

    def _trace(self, trace: Trace) -> None:
        self._traces.append(trace)

    def wake(self) -> None:
        self._wake.set()

    async def aclose(self) -> None:
        for adapter in self._adapters.values():
            with contextlib.suppress(Exception):
                await adapter.aclose()
        self._adapters.clear()
        await self._webhooks.aclose()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; a database or target failure is logged and the loop goes on."""
        try:
            while not stop.is_set():
                try:
                    done = await self.deliver_due()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("outbox delivery round failed")
                    done = 0
                if done:
                    continue
                self._wake.clear()
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                sleeper = asyncio.ensure_future(self.clock.sleep(self.poll_s))
                try:
                    await asyncio.wait({waiter, stopper, sleeper}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for f in (waiter, stopper, sleeper):
                        f.cancel()
        finally:
            await self.aclose()

    # --- one round ------------------------------------------------------------------------------------------
    async def deliver_due(self) -> int:
        """Take the due heads, deliver them (concurrently, one per record), record the outcomes; returns how many
        items were tried."""
        now = self.clock.utcnow()
        async with self.maker() as session, session.begin():
            ids = list((await session.execute(_HEADS, {"now": now, "limit": self.batch * 4})).scalars())
            if not ids:
                return 0
            rows = list((await session.execute(_CLAIM, {
                "ids": ids, "now": now, "until": now + timedelta(seconds=self.lease_s)})).mappings())
            targets = await self._targets(session, rows)
            attempts = await self._attempts(session, rows)
        self.rounds += 1
        chosen: list[tuple[dict[str, Any], _Target]] = []
        probing: set[str] = set()
        released: list[int] = []
        for row in sorted(rows, key=lambda r: r["id"]):
            target = targets.get(_target_key(row))
            if target is not None and target.key in self._held:
                if target.key in probing or len(chosen) >= self.batch:
                    released.append(row["id"])
                    continue
                probing.add(target.key)
            elif len(chosen) >= self.batch:
                released.append(row["id"])
                continue
            chosen.append((dict(row), target) if target is not None else (dict(row), _Target("gone", 1)))
        gate = asyncio.Semaphore(self.concurrency)

        async def one(row: dict[str, Any], target: _Target) -> Outcome:
            async with gate:
                return await self._deliver(row, target, attempts)

        outcomes = await asyncio.gather(*(one(r, t) for r, t in chosen))
        await self._record([(r, t, o) for (r, t), o in zip(chosen, outcomes, strict=True)], released)
        return len(chosen)

    async def _targets(self, session: AsyncSession, rows: list[Any]) -> dict[str, _Target]:
        found: dict[str, _Target] = {}
        connector_ids = sorted({r["connector_id"] for r in rows if r["connector_id"] is not None})
        subscription_ids = sorted({r["subscription_id"] for r in rows if r["subscription_id"] is not None})
        if connector_ids:
            for c in (await session.execute(text(
                    "SELECT id, name, kind, settings, token, result_map, max_tries, is_active, write_enabled,"
                    " updated_at FROM crm_connectors WHERE id = ANY(:ids)"), {"ids": connector_ids})).mappings():
                key = f"crm:{c['id']}"
                adapter = self._given.get(c["id"])
                if adapter is None:
                    cache = (c["id"], str(c["updated_at"]))
                    adapter = self._adapters.get(cache)
                    if adapter is None:
                        try:
                            adapter = build(c["kind"], name=c["name"], token=c["token"], settings=dict(c["settings"]),
                                            on_trace=self._trace, timeout_s=self.timeout_s)
                        except (KeyError, ValueError) as err:
                            log.error("connector %s cannot be used: %s", c["name"], err)
                            adapter = None
                        else:
                            self._adapters[cache] = adapter
                found[key] = _Target(key, int(c["max_tries"]), adapter=adapter, connector=dict(c))
        if subscription_ids:
            for s in (await session.execute(text(
                    "SELECT id, name, url, client_id, secret, max_tries, is_active FROM webhook_subscriptions"
                    " WHERE id = ANY(:ids)"), {"ids": subscription_ids})).mappings():
                key = f"webhook:{s['id']}"
                found[key] = _Target(key, int(s["max_tries"]), subscription=dict(s))
        return found

    async def _attempts(self, session: AsyncSession, rows: list[Any]) -> dict[int, Any]:
        ids = sorted({int(r["payload"]["attempt_id"]) for r in rows
                      if r["connector_id"] is not None and r["payload"].get("attempt_id") is not None})
        if not ids:
            return {}
        return {int(a["id"]): a for a in (await session.execute(_ATTEMPTS, {"ids": ids})).mappings()}

    async def _deliver(self, row: dict[str, Any], target: _Target, attempts: dict[int, Any]) -> Outcome:
        item_id = int(row["id"])
        CURRENT_ITEM.set(item_id)
        try:
            if target.subscription is not None:
                await self._send_webhook(row, target.subscription)
            elif target.connector is not None:
                if target.adapter is None:
                    raise CrmRejected(f"connector {target.connector['name']}: unusable settings")
                await target.adapter.write(self._write(row, target.connector, attempts))
            else:
                raise CrmRejected("the target of this item no longer exists")
        except CrmUnavailable as err:
            return Outcome(item_id, False, str(err), retry_after=err.retry_after, unavailable=True)
        except CrmError as err:
            return Outcome(item_id, False, str(err))
        except Exception as err:  # a bug in an adapter must not stop the worker: the item is retried
            log.exception("delivery of outbox item %d failed", item_id)
            return Outcome(item_id, False, f"{type(err).__name__}: {err}")
        return Outcome(item_id, True)

    async def _send_webhook(self, row: dict[str, Any], sub: dict[str, Any]) -> None:
        sent_at = self.clock.utcnow()
        body = webhook_body(int(row["id"]), str(row["event"]), dict(row["payload"]), sent_at)
        headers = {"Content-Type": "application/json", "X-Client-ID": str(sub["client_id"]),
                   "X-Client-Sign": sign(str(sub["client_id"]), body, str(sub["secret"])),
                   "X-Event-ID": str(row["id"]), "X-Timestamp": sent_at.isoformat()}
        await self._web.request("POST", str(sub["url"]), content=body, headers=headers,
                                target=f"webhook:{sub['name']}")

    def _write(self, row: dict[str, Any], connector: dict[str, Any], attempts: dict[int, Any]) -> ResultWrite:
        payload = dict(row["payload"])
        attempt = attempts.get(int(payload.get("attempt_id") or 0))
        code = attempt["code"] if attempt is not None else None
        operator = attempt["operator"] if attempt is not None else None
        call_at = attempt["dialed_at"] if attempt is not None else None
        talk = None
        if attempt is not None and attempt["connected_at"] is not None and attempt["hung_up_at"] is not None:
            talk = round((attempt["hung_up_at"] - attempt["connected_at"]).total_seconds(), 1)
        callback = datetime.fromisoformat(payload["callback_at"]) if payload.get("callback_at") else None
        parts = [f"Звонок {payload.get('number', '')}: {payload.get('category', '')}"]
        if code:
            parts.append(f"код «{code}»")
        if operator:
            parts.append(f"оператор {operator}")
        if talk is not None:
            parts.append(f"разговор {talk:g} с")
        if callback is not None:
            parts.append(f"перезвонить {callback.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
        if attempt is not None and attempt["comment"]:
            parts.append(f"комментарий: {attempt['comment']}")
        return ResultWrite(
            key=f"dialer-{row['id']}", external_id=str(payload["external_id"]),
            status=result_status(dict(connector["result_map"] or {}), payload), comment="; ".join(parts),
            completion_code=code, operator=operator, callback_at=callback, call_at=call_at, talk_s=talk,
            attempt_id=payload.get("attempt_id"))

    def _backoff(self, tries: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), 3600.0)
        return min(self.max_backoff_s, self.base_backoff_s * 2 ** max(tries - 1, 0))

    async def _record(self, done: list[tuple[dict[str, Any], _Target, Outcome]], released: list[int]) -> None:
        now = self.clock.utcnow()
        delivered = [o.item_id for _, _, o in done if o.delivered]
        failed: list[dict[str, Any]] = []
        # a target is held when none of its items got through this round (it is down, not merely flaky)
        answered = {t.key for _, t, o in done if not o.unavailable}
        self._held -= answered
        self._held |= {t.key for _, t, o in done if o.unavailable} - answered
        for row, target, outcome in done:
            if self.on_outcome is not None:
                self.on_outcome(outcome)
            if outcome.delivered:
                continue
            tries = int(row["tries"]) + 1
            delay = self._backoff(tries, outcome.retry_after)
            next_at = now + timedelta(seconds=delay)
            dead = tries >= target.max_tries
            failed.append({"id": outcome.item_id, "tries": tries, "next": next_at, "error": outcome.error[:2000],
                           "status": "dead" if dead else "pending"})
        traces, self._traces = self._traces, []
        async with self.maker() as session, session.begin():
            if delivered:
                await session.execute(text(
                    "UPDATE integration_outbox SET status = 'delivered', tries = tries + 1, delivered_at = :now,"
                    " lease_until = NULL, last_error = '' WHERE id = ANY(:ids)"), {"ids": delivered, "now": now})
            if failed:
                await session.execute(text(
                    "UPDATE integration_outbox o SET tries = f.tries, next_at = f.next, last_error = f.error,"
                    " status = f.status, lease_until = NULL FROM unnest(CAST(:ids AS bigint[]), CAST(:tries AS int[]),"
                    " CAST(:next AS timestamptz[]), CAST(:error AS text[]), CAST(:status AS text[]))"
                    " AS f(id, tries, next, error, status) WHERE o.id = f.id"),
                    {"ids": [f["id"] for f in failed], "tries": [f["tries"] for f in failed],
                     "next": [f["next"] for f in failed], "error": [f["error"] for f in failed],
                     "status": [f["status"] for f in failed]})
            if released:
                await session.execute(text("UPDATE integration_outbox SET lease_until = NULL WHERE id = ANY(:ids)"),
                                      {"ids": released})
            if traces:
                await session.execute(text(
                    "INSERT INTO integration_requests (target, method, url, status, duration_ms, request, response,"
                    " error, outbox_id, at) VALUES (:target, :method, :url, :status, :duration_ms, :request,"
                    " :response, :error, :outbox_id, :at)"),
                    [{"target": t.target[:250], "method": t.method, "url": t.url, "status": t.status,
                      "duration_ms": t.duration_ms, "request": t.request, "response": t.response, "error": t.error,
                      "outbox_id": t.outbox_id, "at": now} for t in traces])
                if self.rounds % 50 == 0:
                    await session.execute(text(
                        "DELETE FROM integration_requests WHERE id < (SELECT id FROM integration_requests"
                        " ORDER BY id DESC OFFSET :keep LIMIT 1)"), {"keep": KEEP_REQUESTS})
        self.delivered += len(delivered)
        self.failed += len(failed)
        self.dead += sum(1 for f in failed if f["status"] == "dead")


def _target_key(row: Any) -> str:
    return f"crm:{row['connector_id']}" if row["connector_id"] is not None else f"webhook:{row['subscription_id']}"
