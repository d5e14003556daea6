"""How the audit log reads to a person: table, action and event names in the request's language.

Entries keep what was recorded (``object_type`` "campaigns", ``event`` "status: draft → running" — the log is
append-only and its text is the record); the API adds labels beside them: "Кампании", "статус: черновик →
работает". Events are recognised by the English templates ``event.*`` of the message catalogue, the way problem
details are (:func:`dialer.api.problems.recognise`).
"""

from __future__ import annotations

from typing import Any

from dialer.api.problems import recognise
from dialer.web import i18n


def table_label(lang: str, table: str) -> str:
    return i18n.catalogue(lang).get(f"table.{table}", table)


def action_label(lang: str, action: str) -> str:
    return i18n.catalogue(lang).get(f"admin.audit.action.{action}", action)


def event_label(lang: str, event: str) -> str:
    """"status: draft → running" -> "статус: черновик → работает"; an event no template knows stays as recorded."""
    if not event:
        return ""
    code, params = recognise(event, prefix="event.")
    if code == "text":
        return event
    catalogue = i18n.catalogue(lang)
    shown: dict[str, Any] = {
        k: catalogue.get(f"admin.enum.campaign_status.{v}", v) if k in ("old", "new") else v
        for k, v in params.items()}
    try:
        return catalogue.get(f"event.{code}", event).format(**shown)
    except (KeyError, IndexError, ValueError):
        return event
