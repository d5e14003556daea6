"""The reports pages: each navigation entry is a page guarded by reports.read; without the npm step the pages still
work and say that charts are unavailable."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from dialer.api.routes import api_routes
from dialer.auth.permissions import P
from dialer.web import nav, reports_pages
from dialer.web.access import PageAccess
from tests.conftest import client_for


def test_every_reports_entry_is_a_guarded_page(app: FastAPI) -> None:
    routes = {path: r for path, r in api_routes(app) if isinstance(r, APIRoute) and "GET" in r.methods}
    entries = [i for i in nav.NAV if i.parent == "reports"]
    pages = [f"/reports/{name}" for name in reports_pages.PAGES]
    # the reports first, in their order; other pages of the menu (the scheduled delivery's) after them
    assert [i.path for i in entries][:len(pages)] == pages
    for item in entries:
        access = [d.call for d in routes[item.path].dependant.dependencies if isinstance(d.call, PageAccess)]
        assert len(access) == 1, item
        if item.path in pages:
            assert access[0].permission == P.reports_read, item


async def test_pages_without_the_chart_libraries(app: FastAPI, admin: httpx.AsyncClient, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    installed = (await admin.get("/reports/outcomes")).text
    if reports_pages.charts_installed():
        assert "/reports/vendor/vega-embed.js" in installed and 'id="rep-no-charts"' not in installed
        r = await admin.get("/reports/vendor/vega-lite.js")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    monkeypatch.setattr(reports_pages, "NPM", tmp_path)  # as if `npm ci` had not run
    page = await admin.get("/reports/outcomes")
    assert page.status_code == 200 and 'id="rep-no-charts"' in page.text and "vendor/vega" not in page.text
    assert "npm ci" in page.text
    assert (await admin.get("/reports/vendor/vega.js")).status_code == 404
    assert (await admin.get("/reports/vendor/left-pad.js")).status_code == 404  # only the three libraries
    r = await admin.get("/reports", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/reports/outcomes"
    async with await client_for(app, "op", roles=("operator",)) as op:
        assert (await op.get("/reports/outcomes")).status_code == 403
