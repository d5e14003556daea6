"""The operator's workplace page (``/operator``): status, the client card, call controls, wrap-up, manual dial.

The page is a frame; ``static/operator.js`` reads ``GET /api/workplace/state``, follows the operator's live events
and sends the workplace commands (``/api/workplace/*``), which check the permission again.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from dialer.auth.permissions import P
from dialer.auth.service import Principal
from dialer.web.access import page
from dialer.web.render import render

router = APIRouter(include_in_schema=False)

#: The keyboard shortcuts of the panel, as shown in its help popover (key, message id of the action).
SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("F2", "operator.key.ready"),
    ("F3", "operator.key.pause"),
    ("F4", "operator.key.hangup"),
    ("F7", "operator.key.transfer"),
    ("F8", "operator.key.confirm"),
    ("F9", "operator.key.skip"),
    ("1–9", "operator.key.code"),
    ("Ctrl+Enter", "operator.key.complete"),
    ("/", "operator.key.dial"),
    ("?", "operator.key.help"),
)


@router.get("/operator")
async def operator_panel(request: Request, principal: Principal = page(P.panel_use)) -> HTMLResponse:
    return render(request, "operator/panel.html", principal, active_nav="operator", title="nav.operator",
                  shortcuts=SHORTCUTS)
