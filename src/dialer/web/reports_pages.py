"""The reports pages (``/reports/<name>``) and the chart libraries they load (``/reports/vendor/<lib>.js``).

A page renders only the frame and the filter bar; ``static/reports.js`` reads ``/api/reports/<name>/view`` (tables
with typed columns and Vega-Lite charts) and draws them with vega-embed. The chart libraries come from npm at install
time (``src/dialer/web/npm``: ``npm ci`` in ``scripts/start.sh`` and ``scripts/test.sh``), never from the
repository; without them the page says so and still shows every table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from dialer.auth.permissions import P
from dialer.auth.service import Principal
from dialer.reports.period import Preset, ReportSettings
from dialer.web import nav
from dialer.web.access import page
from dialer.web.render import render

router = APIRouter(include_in_schema=False)

PAGES = ("outcomes", "operators", "states", "codes", "progress", "abandon", "calls", "shift")
NPM = Path(__file__).parent / "npm" / "node_modules"
#: What /reports/vendor serves: the browser builds of the chart libraries, nothing else of node_modules.
VENDOR = {"vega": "vega/build/vega.min.js", "vega-lite": "vega-lite/build/vega-lite.min.js",
          "vega-embed": "vega-embed/build/vega-embed.min.js"}

nav.register(nav.NavItem("reports", "/reports", "nav.reports", P.reports_read))
for _name in PAGES:
    nav.register(nav.NavItem(f"reports.{_name}", f"/reports/{_name}", f"nav.reports.{_name}", P.reports_read,
                             "reports"))


def charts_installed() -> bool:
    return all((NPM / path).is_file() for path in VENDOR.values())


@router.get("/reports")
async def reports_home(principal: Principal = page(P.reports_read)) -> Response:
    return RedirectResponse("/reports/outcomes", status_code=303)


@router.get("/reports/vendor/{library}.js")
async def vendor(library: str, principal: Principal = page(P.reports_read)) -> Response:
    path = VENDOR.get(library)
    if path is None or not (NPM / path).is_file():
        return Response(f"/* {library}: not installed (npm ci in src/dialer/web/npm) */", status_code=404,
                        media_type="text/javascript")
    return FileResponse(NPM / path, media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})


def _page(name: str) -> Callable[..., Awaitable[HTMLResponse]]:
    async def handler(request: Request, principal: Principal = page(P.reports_read)) -> HTMLResponse:
        return render(request, "reports/report.html", principal, active_nav=f"reports.{name}",
                      title=f"nav.reports.{name}", report=name, presets=[p.value for p in Preset],
                      charts_installed=charts_installed(), time_zone=ReportSettings().time_zone,
                      can_cards=P.monitoring_read in principal.permissions)

    handler.__name__ = f"reports_{name}"
    return handler


for _name in PAGES:
    router.add_api_route(f"/reports/{_name}", _page(_name), methods=["GET"])
