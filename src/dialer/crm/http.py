"""HTTP for adapters and webhooks: one httpx client, every exchange traced, transport errors translated.

A :class:`Trace` is what the "Отладка взаимодействия" page shows (003 §10.6): method, URL (the token query
parameter masked), status, time taken, the start of the request and answer bodies. Errors are translated at the
edge: a timeout, a refused or reset connection, a 5xx or a 429 become :class:`CrmUnavailable` (with the server's
``Retry-After`` for 429/503), any other 4xx :class:`CrmRejected`.
"""

from __future__ import annotations

import contextvars
import dataclasses
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from dialer.crm.base import CrmRejected, CrmUnavailable

__all__ = ["CURRENT_ITEM", "DEFAULT_TIMEOUT_S", "Http", "Trace", "parse_retry_after"]

DEFAULT_TIMEOUT_S = 10.0
#: How much of each body a trace keeps.
EXCERPT = 2000

#: The outbox item being delivered in this task (its requests' traces name it).
CURRENT_ITEM: contextvars.ContextVar[int | None] = contextvars.ContextVar("dialer_crm_item", default=None)

_SECRET_QUERY = re.compile(r"((?:token|key|auth|secret)=)[^&]+", re.IGNORECASE)


@dataclasses.dataclass(slots=True)
class Trace:
    target: str
    method: str
    url: str
    status: int | None
    duration_ms: float
    request: str
    response: str
    error: str = ""
    outbox_id: int | None = None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _mask(url: str) -> str:
    return _SECRET_QUERY.sub(r"\1***", url)


def _excerpt(data: bytes | str | None) -> str:
    if not data:
        return ""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return text[:EXCERPT]


class Http:
    """An httpx client that records a :class:`Trace` per request (into ``on_trace``) and translates failures."""

    def __init__(self, target: str, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 on_trace: Callable[[Trace], None] | None = None, client: httpx.AsyncClient | None = None) -> None:
        self.target = target
        self.on_trace = on_trace
        self.client = client or httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self._owns = client is None

    async def aclose(self) -> None:
        if self._owns:
            await self.client.aclose()

    async def request(self, method: str, url: str, *, target: str | None = None, **kwargs: Any) -> httpx.Response:
        """Send one request; a 2xx answer is returned, anything else raised as a CrmError."""
        started = time.perf_counter()
        name = target or self.target
        request = self.client.build_request(method, url, **kwargs)
        body = request.content if request.content else b""
        trace = Trace(name, method, _mask(str(request.url)), None, 0.0, _excerpt(body), "",
                      outbox_id=CURRENT_ITEM.get())
        try:
            response = await self.client.send(request)
            await response.aread()
        except httpx.TimeoutException as err:
            trace.error = f"timeout: {type(err).__name__}"
            raise CrmUnavailable(f"{name}: no answer in time ({type(err).__name__})") from err
        except httpx.TransportError as err:
            trace.error = f"{type(err).__name__}: {err}"
            raise CrmUnavailable(f"{name}: {type(err).__name__}: {err}") from err
        finally:
            trace.duration_ms = round((time.perf_counter() - started) * 1000, 2)
            if trace.error and self.on_trace is not None:
                self.on_trace(trace)
        trace.status = response.status_code
        trace.response = _excerpt(response.content)
        if self.on_trace is not None:
            self.on_trace(trace)
        if response.status_code == 429 or response.status_code >= 500:
            raise CrmUnavailable(f"{name}: HTTP {response.status_code}",
                                 retry_after=parse_retry_after(response.headers.get("retry-after")))
        if response.status_code >= 400:
            raise CrmRejected(f"{name}: HTTP {response.status_code}: {_excerpt(response.content)[:300]}")
        return response
