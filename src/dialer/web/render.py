"""Rendering pages: one Jinja2 environment; :func:`render` gives every template the same context.

Context of every page: ``t``/``_`` (translate), ``lang``, ``languages``, ``principal`` (or ``None``), ``user``
(display name), ``nav`` (the sections the user sees), ``active_nav`` (key of the current entry), ``csrf_token``,
``i18n_json`` (the JS catalogue), ``static(path)`` (a cache-busted URL under ``/static``), ``request``.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from dialer.api.routes import api_routes
from dialer.auth.service import Principal
from dialer.web import i18n, nav

env = Environment(loader=PackageLoader("dialer.web", "templates"), autoescape=select_autoescape(["html"]),
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


@cache
def _static_version(path: str) -> str:
    file = resources.files("dialer.web").joinpath("static", path)
    try:
        return hashlib.sha256(file.read_bytes()).hexdigest()[:10]
    except (FileNotFoundError, IsADirectoryError):
        return "0"


def static(path: str) -> str:
    return f"/static/{path}?v={_static_version(path)}"


def routed_pages(app: FastAPI) -> frozenset[str]:
    """Paths of the GET routes of the application (nav entries appear once their page exists)."""
    cached: frozenset[str] | None = getattr(app.state, "web_routed_pages", None)
    if cached is None:
        cached = frozenset(path for path, route in api_routes(app)
                           if isinstance(route, APIRoute) and "GET" in (route.methods or ()))
        app.state.web_routed_pages = cached
    return cached


def _js_catalogue(lang: str) -> Markup:
    # "</" cannot end the <script> element early once escaped
    text = json.dumps(i18n.catalogue(lang), ensure_ascii=False).replace("</", "<\\/")
    return Markup(text)


def context(request: Request, principal: Principal | None, **extra: Any) -> dict[str, Any]:
    lang = i18n.language_of(request)
    t = i18n.translator(lang)
    sections = nav.visible(principal.permissions, routed_pages(request.app)) if principal else []
    ctx: dict[str, Any] = {
        "request": request, "t": t, "_": t, "lang": lang, "languages": i18n.LANGUAGES, "principal": principal,
        "user": principal.login if principal else "", "nav": sections, "active_nav": "",
        "csrf_token": (principal.csrf_token or "") if principal else "", "i18n_json": _js_catalogue(lang),
        "static": static, "title": "",
    }
    ctx.update(extra)
    return ctx


def render(request: Request, template: str, principal: Principal | None, *, status_code: int = 200,
           **extra: Any) -> HTMLResponse:
    html = env.get_template(template).render(context(request, principal, **extra))
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})
