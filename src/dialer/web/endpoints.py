"""The pages of the browser UI (not in the OpenAPI schema) and the live-event stream (in it)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from dialer.api.deps import Session, public
from dialer.auth.service import Principal, resolve_principal
from dialer.web import i18n, live, nav
from dialer.web.access import page, safe_next
from dialer.web.render import render, routed_pages

pages = APIRouter(include_in_schema=False)


@pages.get("/")
async def home(request: Request, principal: Principal = page(None)) -> Response:
    target = nav.first_path(nav.visible(principal.permissions, routed_pages(request.app)))
    if target is None:
        return render(request, "error.html", principal, status_code=403, code=403, permission="")
    return RedirectResponse(target, status_code=303)


@pages.get("/login")
@public
async def login_page(request: Request, session: Session, next: str = Query("/")) -> Response:
    target = safe_next(next)
    principal = await resolve_principal(session, cookie=request.cookies.get("dialer_session"), authorization=None)
    if principal is not None:
        return RedirectResponse(target, status_code=303)
    return render(request, "login.html", None, next_url=target, title="login.title")


@pages.get("/lang/{code}")
@public
async def set_language(code: str, request: Request, next: str = Query("/")) -> Response:
    response = RedirectResponse(safe_next(next), status_code=303)
    if code in i18n.LANGUAGES:
        response.set_cookie(i18n.COOKIE, code, max_age=365 * 86400, samesite="lax", path="/")
    return response


def _area_routers() -> list[APIRouter]:
    """The page routers of the UI's areas: every module ``dialer.web.<area>_pages`` with a ``router``
    (``operator_pages``, ``supervisor_pages``, ``admin_pages`` ...)."""
    import importlib
    import pkgutil

    import dialer.web

    found = []
    for mod in sorted(pkgutil.iter_modules(dialer.web.__path__), key=lambda m: m.name):
        if mod.name.endswith("_pages"):
            found.append(importlib.import_module(f"dialer.web.{mod.name}").router)
    return found


routers = [pages, live.router, *_area_routers()]

# the panels' own reads (/api/panels), in the API schema
from dialer.api import panels as _panels  # noqa: E402

routers += _panels.routers
