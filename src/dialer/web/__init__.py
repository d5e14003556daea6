"""The browser UI: server-rendered pages (Jinja2), small ES modules, live events over SSE (see docs/web.md).

``dialer.web.endpoints`` is discovered like every domain's; :func:`install` adds what a router cannot carry: the
``/static`` files, the handlers that turn page refusals into a login redirect or the 403 page, and the live-event
hub's shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles


def install(app: FastAPI) -> None:
    from dialer.web.access import LoginRequired, PageForbidden
    from dialer.web.render import render

    app.mount("/static", StaticFiles(packages=[("dialer.web", "static")]), name="static")

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(exc.next_url, status_code=303)

    async def forbidden(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageForbidden)
        return render(request, "error.html", exc.principal, status_code=403, code=403,
                      permission=exc.permission.value)

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(PageForbidden, forbidden)

    inner: Callable[[Any], AbstractAsyncContextManager[Any]] = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with inner(application) as state:
            try:
                yield state
            finally:
                hub = getattr(application.state, "live_hub", None)
                if hub is not None:
                    await hub.close()

    app.router.lifespan_context = lifespan
