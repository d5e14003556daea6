"""The page of scheduled report delivery (``/reports/schedules``, under Reports in the header): the schedules, a
create/edit form, "send now" and each schedule's run history with its errors. ``static/report_schedules.js`` reads
and writes ``/api/reports/schedules``, which checks ``reports.schedule`` again."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from dialer.auth.permissions import P
from dialer.auth.service import Principal
from dialer.reports import delivery
from dialer.web import nav
from dialer.web.access import page
from dialer.web.render import render

router = APIRouter(include_in_schema=False)

nav.register(nav.NavItem("reports.schedules", "/reports/schedules", "nav.reports.schedules", P.reports_schedule,
                         "reports"))


@router.get("/reports/schedules")
async def report_schedules(request: Request, principal: Principal = page(P.reports_schedule)) -> HTMLResponse:
    config = {
        "reports": list(delivery.REPORTS), "formats": list(delivery.FORMATS), "periods": list(delivery.PERIODS),
        "frequencies": list(delivery.FREQUENCIES), "time_zone": delivery.centre_time_zone(),
        "placeholders": list(delivery.PLACEHOLDERS), "default_subject": delivery.DEFAULT_SUBJECT,
        "default_body": delivery.DEFAULT_BODY, "smtp_configured": bool(delivery.DeliverySettings().host),
        "retries_after_s": list(delivery.BACKOFF_S), "can_views": P.reports_read in principal.permissions,
    }
    return render(request, "reports/schedules.html", principal, active_nav="reports.schedules",
                  title="nav.reports.schedules",
                  config=Markup(json.dumps(config, ensure_ascii=False).replace("</", "<\\/")))
