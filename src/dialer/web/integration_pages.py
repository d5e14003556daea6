"""The integration pages: CRM connectors with their status mapping, webhooks, the API's allow-list
(``/admin/integrations``) and "Отладка взаимодействия" (003 §10.6; ``/admin/integrations/debug``): send a test
event, the last requests and answers with status and timing, the outbox's backlog, dead letters to send again.

The pages render the frame; ``static/admin_integrations.js`` reads and writes through the JSON API
(:mod:`dialer.crm.endpoints`), which checks the permissions again.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from dialer.auth.permissions import P
from dialer.auth.service import Principal
from dialer.crm.outbox import WEBHOOK_EVENTS
from dialer.web import nav
from dialer.web.access import page
from dialer.web.render import render

router = APIRouter(include_in_schema=False)

nav.register(nav.NavItem("admin.integrations", "/admin/integrations", "nav.admin.integrations", P.integrations_read,
                         "admin"))


def _config(principal: Principal, view: str) -> Markup:
    data = {"view": view, "can_write": P.integrations_write in principal.permissions,
            "can_lists": P.lists_read in principal.permissions, "can_codes": P.codes_read in principal.permissions,
            "events": list(WEBHOOK_EVENTS),
            "kinds": ["leadvertex", "bitrix24", "generic_http", "fake"]}
    return Markup(json.dumps(data, ensure_ascii=False).replace("</", "<\\/"))


@router.get("/admin/integrations")
async def integrations(request: Request, principal: Principal = page(P.integrations_read)) -> HTMLResponse:
    return render(request, "admin/integrations.html", principal, active_nav="admin.integrations",
                  title="nav.admin.integrations", config=_config(principal, "settings"))


@router.get("/admin/integrations/debug")
async def integrations_debug(request: Request, principal: Principal = page(P.integrations_read)) -> HTMLResponse:
    return render(request, "admin/integrations.html", principal, active_nav="admin.integrations",
                  title="int.debug.title", config=_config(principal, "debug"))
