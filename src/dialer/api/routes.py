"""Route introspection shared by the web pages (which API paths exist) and the tests (every route checks a
permission)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def api_routes(app: FastAPI) -> list[Any]:
    """Every API route with its full path, also inside included routers (FastAPI keeps those nested)."""
    from fastapi.routing import APIRoute

    found: list[Any] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                found.append((prefix + route.path, route))
            original = getattr(route, "original_router", None)
            if original is not None:
                ctx = getattr(route, "include_context", None)
                walk(list(original.routes), prefix + (getattr(ctx, "prefix", "") or ""))

    walk(list(app.routes), "")
    return found
