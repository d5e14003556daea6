"""The operator's client card: the list's card template, the CRM link, the call script, the history and notes.

* Fields: those of the contact's list marked ``in_card`` (the list's card template, 000 §3.7), in the list's order.
* CRM link: the list's ``crm_url`` with ``{field name}`` placeholders replaced by the contact's values,
  URL-encoded; only ``http``/``https`` links are given (anything else yields no link).
* Call script: the campaign's ``call_script`` with ``{field name}`` placeholders filled in (002 §5.2.6), returned
  as plain text and as parts (text and filled values) that the page renders as text nodes — never as HTML. A
  placeholder naming no field stays as written, so the script's author sees it.
* History: the client's attempts (newest first); notes: the comments earlier operators left on them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.engine import repository as engine_repo
from dialer.models import (
    Attempt,
    Campaign,
    Contact,
    ContactList,
    Field,
    ListField,
    campaign_pools,
    pool_operators,
)
from dialer.models.enums import CampaignStatus

__all__ = ["PLACEHOLDER", "card_fields", "contact_data", "crm_link", "dialable_campaigns", "display", "fill_script",
           "number_history", "preview_seconds"]

#: ``{field name}``: any text without braces between a pair of braces.
PLACEHOLDER = re.compile(r"\{([^{}\n]{1,200})\}")


def display(value: Any) -> str:
    """A field value as the operator reads it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list | tuple):
        return ", ".join(display(v) for v in value)
    return str(value)


def fill_script(script: str, values: Mapping[str, Any]) -> list[dict[str, str]]:
    """The script as parts: ``{"text": ...}`` and ``{"field": name, "value": ...}`` for each known placeholder."""
    parts: list[dict[str, str]] = []
    pos = 0
    for m in PLACEHOLDER.finditer(script):
        name = m.group(1).strip()
        if name not in values:
            continue
        if m.start() > pos:
            parts.append({"text": script[pos:m.start()]})
        parts.append({"field": name, "value": display(values[name])})
        pos = m.end()
    if pos < len(script):
        parts.append({"text": script[pos:]})
    return parts


def crm_link(template: str, values: Mapping[str, Any]) -> str | None:
    """The CRM link with the contact's values (URL-encoded), or None when there is none or it is not http(s)."""
    template = (template or "").strip()
    if not template.lower().startswith(("http://", "https://")):
        return None

    def value(m: re.Match[str]) -> str:
        return quote(display(values.get(m.group(1).strip())), safe="")

    url = PLACEHOLDER.sub(value, template)
    return url if url.lower().startswith(("http://", "https://")) else None


async def card_fields(session: AsyncSession, list_id: int | None, data: Mapping[str, Any]
                      ) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    """The list's card fields in order (``[{"field_id", "name", "type", "value", "text"}]``), every value of the
    contact by field name (for placeholders), and the list's CRM URL template. A list without any field defined
    shows every value the contact has."""
    if list_id is None:
        # no contact (a manual call to a number outside the lists): the script's field placeholders stay empty
        names = (await session.scalars(select(Field.name))).all()
        return [], dict.fromkeys(names), ""
    rows = (await session.execute(
        select(Field.id, Field.name, Field.type, ListField.in_card)
        .join(ListField, ListField.field_id == Field.id)
        .where(ListField.list_id == list_id).order_by(ListField.position, Field.id))).all()
    crm = await session.scalar(select(ContactList.crm_url).where(ContactList.id == list_id)) or ""
    if not rows:
        # a list without a card template (no fields defined for it): every value the contact has
        ids = [int(k) for k in data if k.isdigit()]
        rows = (await session.execute(select(Field.id, Field.name, Field.type, literal(True))
                                      .where(Field.id.in_(ids)).order_by(Field.id))).all() if ids else []
    values: dict[str, Any] = {}
    shown: list[dict[str, Any]] = []
    for fid, name, ftype, in_card in rows:
        value = data.get(str(fid))
        values[name] = value
        if in_card:
            shown.append({"field_id": int(fid), "name": name, "type": getattr(ftype, "value", str(ftype)),
                          "value": value, "text": display(value)})
    return shown, values, crm


async def contact_data(session: AsyncSession, contact_id: int | None) -> tuple[int | None, dict[str, Any]]:
    """A contact's list and values (by field id as text); ``(None, {})`` when there is none."""
    if contact_id is None:
        return None, {}
    row = (await session.execute(select(Contact.list_id, Contact.data).where(Contact.id == contact_id))).first()
    return (int(row[0]), dict(row[1] or {})) if row is not None else (None, {})


async def preview_seconds(session: AsyncSession, campaign_id: int) -> float:
    params = await session.scalar(select(Campaign.dial_params).where(Campaign.id == campaign_id))
    return float((params or {}).get("preview_seconds", 10))


async def dialable_campaigns(session: AsyncSession, operator_id: int) -> list[Campaign]:
    """Running or paused campaigns the operator works for: in one of their pools, or they have none."""
    has_pools = select(campaign_pools.c.pool_id).where(campaign_pools.c.campaign_id == Campaign.id).exists()
    his = (select(campaign_pools.c.pool_id)
           .join(pool_operators, pool_operators.c.pool_id == campaign_pools.c.pool_id)
           .where(campaign_pools.c.campaign_id == Campaign.id, pool_operators.c.operator_id == operator_id)
           .exists())
    return list((await session.scalars(
        select(Campaign).where(Campaign.status.in_([CampaignStatus.running, CampaignStatus.paused]),
                               ~has_pools | his)
        .order_by(Campaign.priority.desc(), Campaign.name))).all())


async def number_history(session: AsyncSession, number: str, limit: int = 20) -> list[dict[str, Any]]:
    """The attempts on a number (for a call that has no contact), newest first, as ``contact_card`` lists them."""
    return await engine_repo.attempt_history(session, Attempt.number == number, limit=limit)
