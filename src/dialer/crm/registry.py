"""Which adapter a connector uses: a typed registry instead of an if-chain (docs/crm.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dialer.crm.base import CrmAdapter
from dialer.crm.bitrix24 import Bitrix24Adapter
from dialer.crm.fake import FakeAdapter, store
from dialer.crm.generic import GenericHttpAdapter
from dialer.crm.http import Http, Trace
from dialer.crm.leadvertex import LeadVertexAdapter

__all__ = ["ADAPTERS", "build"]

Factory = Callable[[Http, str, dict[str, Any]], CrmAdapter]


def _fake(http: Http, token: str, settings: dict[str, Any]) -> CrmAdapter:
    return FakeAdapter(store(str(settings.get("store") or "default")))


def _leadvertex(http: Http, token: str, settings: dict[str, Any]) -> CrmAdapter:
    return LeadVertexAdapter(http, token=token, account=str(settings.get("account") or ""),
                             base_url=str(settings.get("base_url") or ""),
                             changed_param=str(settings.get("changed_param") or "dateModFrom"),
                             since=str(settings.get("since") or "2000-01-01 00:00:00"))


def _generic(http: Http, token: str, settings: dict[str, Any]) -> CrmAdapter:
    return GenericHttpAdapter(http, token=token, settings=settings)


def _bitrix24(http: Http, token: str, settings: dict[str, Any]) -> CrmAdapter:
    # the inbound webhook URL carries the key: kept in the write-only token, or in the settings
    return Bitrix24Adapter(http, webhook=str(token or settings.get("webhook") or ""),
                           entity=str(settings.get("entity") or "lead"), user_id=int(settings.get("user_id") or 1),
                           register_calls=bool(settings.get("register_calls", True)),
                           read_timeout_s=float(settings.get("read_timeout_s") or 60.0))


#: Connector kind → adapter factory (the kinds of ``crm_connectors.kind``).
ADAPTERS: dict[str, Factory] = {"fake": _fake, "generic_http": _generic, "leadvertex": _leadvertex,
                                 "bitrix24": _bitrix24}


def build(kind: str, *, name: str, token: str, settings: dict[str, Any],
          on_trace: Callable[[Trace], None] | None = None, timeout_s: float = 10.0) -> CrmAdapter:
    """The adapter of a connector; raises KeyError for an unknown kind, ValueError for unusable settings."""
    factory = ADAPTERS[kind]
    return factory(Http(f"crm:{name}", timeout_s=timeout_s, on_trace=on_trace), token, settings)
