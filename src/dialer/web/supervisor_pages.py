"""The supervisor's live floor (``/supervisor``) and the call detail card (``/supervisor/attempts/{id}``).

The pages only render the frame; ``static/supervisor.js`` reads ``GET /api/monitoring/live`` and follows
``/live/events``. What the user may do (pause campaigns, force operators' states, edit pool membership) is passed
to the page so that actions the user lacks are not shown; the API checks the permissions again.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from dialer.auth.permissions import P
from dialer.auth.service import Principal
from dialer.engine.operator_fsm import PAUSE_REASONS
from dialer.web.access import page
from dialer.web.render import render

router = APIRouter(include_in_schema=False)


def _abilities(principal: Principal) -> dict[str, bool]:
    held = principal.permissions
    return {"campaigns_control": P.campaigns_control in held, "operators_control": P.operators_control in held,
            "pools_edit": P.operators_write in held}


@router.get("/supervisor")
async def supervisor(request: Request, principal: Principal = page(P.monitoring_read)) -> HTMLResponse:
    return render(request, "supervisor/floor.html", principal, active_nav="supervisor", title="nav.supervisor",
                  can=_abilities(principal), pause_reasons=list(PAUSE_REASONS))


@router.get("/supervisor/attempts/{attempt_id}")
async def attempt_card(attempt_id: int, request: Request,
                       principal: Principal = page(P.monitoring_read)) -> HTMLResponse:
    return render(request, "supervisor/attempt.html", principal, active_nav="supervisor",
                  title="supervisor.card.title", attempt_id=attempt_id)
