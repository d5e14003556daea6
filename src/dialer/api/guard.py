"""The request guard: what every HTTP request goes through before any route reads its body.

One pure ASGI middleware (:class:`RequestGuard`, installed by :func:`install`), in this order:

1. ``OPTIONS`` on an API path answers ``204`` with ``Allow`` listing every method of the path (a path's methods are
   several routes; a ``405`` gets the same complete ``Allow``).
2. A request without any credentials (no session cookie, no ``Authorization: Bearer``) to a route that requires
   them gets ``401`` at once — its body is never read. Public routes (``@public``: login, health) and the browser
   pages (which redirect to the login page themselves) are left alone. Credentials that may come with a body larger
   than :data:`UNVERIFIED_BODY` are looked up first (once a minute per credential): made-up ones get ``401`` before
   the server reads megabytes for them.
3. Bodies are capped for every route: :data:`MAX_BODY` (JSON and forms); on routes that take a file
   (``UploadFile``) the settings' ``upload_max_unpacked_mb`` (else :data:`MAX_UPLOAD_BODY`). A ``Content-Length``
   above the cap is refused before reading; a chunked body is counted while it streams and refused once it passes
   the cap. Routers' own ``max_body_size`` still applies inside (the smaller limit wins).
4. The rate limit per principal (:mod:`dialer.api.ratelimit`): the session or API token, else the client address.
5. Values PostgreSQL cannot store or bind are refused as ``422`` naming the field: the NUL character in path, query
   and JSON strings, and integers outside 64 bits in integer path/query parameters and anywhere in a JSON body.

Every refusal is an RFC 9457 problem document.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, params
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request, cookie_parser
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dialer.api.deps import Require
from dialer.api.problems import problem
from dialer.api.ratelimit import RateLimiter
from dialer.api.routes import api_routes
from dialer.auth.service import credentials_valid
from dialer.web import i18n

#: Largest request body of any route without a file upload (JSON documents, forms).
MAX_BODY = 2 * 1024 * 1024
#: Largest request body of a route that takes a file (contact imports, DNC and numbering files) when the settings
#: name no upload size (``upload_max_unpacked_mb``, which is used otherwise).
MAX_UPLOAD_BODY = 512 * 1024 * 1024
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
SESSION_COOKIE = "dialer_session"
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
#: How many times the principal's burst an address may present credentials the limiter has not seen yet.
NEW_CREDENTIALS_PER_ADDRESS = 20

#: Largest body read for credentials the guard has not verified yet (a larger or chunked one waits for the lookup).
UNVERIFIED_BODY = 64 * 1024
#: How long credentials the guard verified are believed without another lookup (the route authenticates anyway).
VERIFIED_TTL_S = 60.0

#: Paths the rate limit leaves alone: static files carry no database work.
UNLIMITED_PREFIXES = ("/static/",)

_LONG_DIGITS = re.compile(rb"\d{19,}")
_INT64_REASON = f"must be an integer between {INT64_MIN} and {INT64_MAX}"
_NUL_REASON = "must not contain the NUL character (\\u0000)"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes its cap (FastAPI re-raises HTTP exceptions as they are)."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"the request body is larger than this endpoint accepts "
                                                 f"({limit} bytes)")
        self.limit = limit


@dataclass(frozen=True)
class RouteInfo:
    path: str
    regex: re.Pattern[str]
    methods: frozenset[str]
    public: bool
    needs_credentials: bool
    upload: bool
    int_params: frozenset[str] = field(default_factory=frozenset)


def _is_int(annotation: Any) -> bool:
    if annotation is int:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, set, tuple, frozenset):
        return any(_is_int(arg) for arg in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _is_int(typing.get_args(annotation)[0])
    return False


def _needs_credentials(route: APIRoute) -> bool:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Require):
            return True
        stack.extend(dep.dependencies)
    return False


def _fields(route: APIRoute) -> tuple[list[Any], list[Any]]:
    """The path and query parameters, and the body parameters, of a route and all its dependencies."""
    plain: list[Any] = []
    body: list[Any] = []
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        plain.extend([*dependant.path_params, *dependant.query_params])
        body.extend(dependant.body_params)
        stack.extend(dependant.dependencies)
    return plain, body


def route_table(app: FastAPI) -> list[RouteInfo]:
    table = []
    for path, route in api_routes(app):
        plain, body = _fields(route)
        ints = {f.alias for f in plain if _is_int(f.field_info.annotation)}
        upload = any(isinstance(f.field_info, params.File) for f in body)
        table.append(RouteInfo(
            path=path, regex=compile_path(path)[0], methods=frozenset(route.methods or ()),
            public=bool(getattr(route.endpoint, "__dialer_public__", False)),
            needs_credentials=_needs_credentials(route), upload=upload, int_params=frozenset(ints)))
    return table


def allowed_methods(routes: Iterable[RouteInfo]) -> list[str]:
    methods = set().union(*(r.methods for r in routes))
    if "GET" in methods:
        methods.add("HEAD")
    methods.add("OPTIONS")
    return sorted(methods)


def _walk_json(value: Any, where: str) -> Iterator[dict[str, str]]:
    if isinstance(value, str):
        if "\x00" in value:
            yield {"field": where, "reason": _NUL_REASON}
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            yield {"field": where, "reason": _INT64_REASON}
    elif isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where != "body" else str(key)
            if "\x00" in key:
                yield {"field": path, "reason": _NUL_REASON}
            yield from _walk_json(item, path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_json(item, f"{where}.{index}" if where != "body" else str(index))


def json_body_errors(body: bytes) -> list[dict[str, str]]:
    """NUL characters and integers outside 64 bits in a JSON document (invalid JSON is left to the route)."""
    if b"\\u0000" not in body and _LONG_DIGITS.search(body) is None:
        return []
    try:
        document = json.loads(body)
    except ValueError:
        return []
    return list(_walk_json(document, "body"))


def parameter_errors(route: RouteInfo | None, path_params: dict[str, str], query: list[tuple[str, str]]
                     ) -> list[dict[str, str]]:
    errors = []
    ints = route.int_params if route else frozenset()
    for name, value in [*path_params.items(), *query]:
        if "\x00" in value or "\x00" in name:
            errors.append({"field": name, "reason": _NUL_REASON})
        elif name in ints:
            try:
                number = int(value.strip())
            except ValueError:
                continue  # not a number at all: the route's own validation says so
            if not INT64_MIN <= number <= INT64_MAX:
                errors.append({"field": name, "reason": _INT64_REASON})
    return errors


def _is_json(content_type: str) -> bool:
    main = content_type.split(";", 1)[0].strip().lower()
    return main == "application/json" or (main.startswith("application/") and main.endswith("+json"))


def credential_key(headers: Headers) -> str | None:
    """A stable, non-secret key of the credentials a request carries (None: it carries none)."""
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "token:" + hashlib.sha256(token.strip().encode()).hexdigest()[:32]
    cookie = cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE)
    if cookie:
        return "session:" + hashlib.sha256(cookie.encode()).hexdigest()[:32]
    return None


class RequestGuard:
    def __init__(self, app: ASGIApp, owner: FastAPI) -> None:
        self.app = app
        self.owner = owner
        self._table: list[RouteInfo] | None = None
        #: credential key → monotonic time until which it is believed valid
        self._verified: dict[str, float] = {}

    async def credentials_refused(self, key: str, headers: Headers) -> bool:
        """Look the request's credentials up (cached for :data:`VERIFIED_TTL_S`): True when they are not valid.
        Without a database to ask, the route decides (it answers 503 itself)."""
        now = time.monotonic()
        if self._verified.get(key, 0.0) > now:
            return False
        maker = getattr(self.owner.state, "sessionmaker", None)
        if maker is None:
            return False
        try:
            async with maker() as session:
                valid = await credentials_valid(
                    session, cookie=cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE),
                    authorization=headers.get("authorization"))
        except Exception:
            return False
        if not valid:
            return True
        if len(self._verified) > 10_000:
            self._verified = {k: t for k, t in self._verified.items() if t > now}
        self._verified[key] = now + VERIFIED_TTL_S
        return False

    def upload_limit(self) -> int:
        """The settings' limit of an upload's size (``upload_max_unpacked_mb``) plus room for the form around it."""
        settings = getattr(self.owner.state, "settings", None)
        mb = getattr(settings, "upload_max_unpacked_mb", None)
        return int(mb) * 1024 * 1024 + 1024 * 1024 if isinstance(mb, int) else MAX_UPLOAD_BODY

    def table(self) -> list[RouteInfo]:
        if self._table is None:
            self._table = route_table(self.owner)
        return self._table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        instance = path
        matches = [(r, m) for r in self.table() if (m := r.regex.match(path))]
        routes = [r for r, _ in matches]

        async def refuse(status: int, title: str, detail: str, slug: str, *, errors: list[dict[str, Any]] | None
                         = None, headers: dict[str, str] | None = None) -> None:
            response = problem(status, title, detail, slug=slug, errors=errors, instance=instance, headers=headers,
                               lang=i18n.api_language(Request(scope)))
            await response(scope, receive, send)

        if method == "OPTIONS" and routes:
            await send({"type": "http.response.start", "status": 204,
                        "headers": [(b"allow", ", ".join(allowed_methods(routes)).encode())]})
            await send({"type": "http.response.body", "body": b""})
            return

        route, found = next(((r, m) for r, m in matches if method in r.methods or
                             (method == "HEAD" and "GET" in r.methods)), (None, None))
        headers = Headers(scope=scope)
        credentials = credential_key(headers)
        if route is not None and route.needs_credentials and credentials is None:
            await refuse(401, "Not authenticated", "log in or send an API token (Authorization: Bearer ...)",
                         "not-authenticated", headers={"WWW-Authenticate": "Bearer"})
            return

        limit = self.upload_limit() if route is not None and route.upload else MAX_BODY
        length = headers.get("content-length")
        if length is not None and length.strip().isdigit() and int(length) > limit:
            await refuse(413, "Content Too Large", BodyTooLarge(limit).detail, "http-413",
                         errors=[{"field": "body", "reason": f"larger than {limit} bytes"}])
            return

        limiter = getattr(self.owner.state, "rate_limiter", None)
        if isinstance(limiter, RateLimiter) and not path.startswith(UNLIMITED_PREFIXES):
            client = scope.get("client")
            address = "address:" + (client[0] if client else "")
            key = credentials or address
            wait = 0.0
            if credentials is not None and not limiter.known(credentials):
                # credentials seen for the first time are also counted against their address, in a bucket of their
                # own: a client making up new cookies or tokens does not get a fresh bucket each time, while a whole
                # office behind one address (a hundred operators opening their panels at the start of a shift) does
                # not run into it
                wait = limiter.take("new:" + address, cost=1.0 / NEW_CREDENTIALS_PER_ADDRESS)
            wait = wait or limiter.take(key)
            if wait:
                seconds = limiter.retry_after(wait)
                await refuse(429, "Too many requests", f"too many requests; try again in {seconds} s",
                             "too-many-requests", headers={"Retry-After": str(seconds)})
                return

        small = length is not None and length.strip().isdigit() and int(length) <= UNVERIFIED_BODY
        if (route is not None and route.needs_credentials and credentials is not None and method in BODY_METHODS
                and not small and await self.credentials_refused(credentials, headers)):
            await refuse(401, "Not authenticated", "log in or send an API token (Authorization: Bearer ...)",
                         "not-authenticated", headers={"WWW-Authenticate": "Bearer"})
            return

        errors = parameter_errors(route, found.groupdict() if found else {},
                                  parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True,
                                            encoding="utf-8", errors="replace"))
        if errors:
            await refuse(422, "Validation failed", "; ".join(f"{e['field']}: {e['reason']}" for e in errors),
                         "validation", errors=errors)
            return

        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        inner_receive: Receive = receive_limited
        if method in BODY_METHODS and _is_json(headers.get("content-type", "")):
            chunks = []
            try:
                while True:
                    message = await receive_limited()
                    if message["type"] != "http.request":
                        break
                    chunks.append(message.get("body", b""))
                    if not message.get("more_body", False):
                        break
            except BodyTooLarge as err:
                await refuse(413, "Content Too Large", str(err.detail), "http-413",
                             errors=[{"field": "body", "reason": f"larger than {limit} bytes"}])
                return
            body = b"".join(chunks)
            if errors := json_body_errors(body):
                await refuse(422, "Validation failed", "; ".join(f"{e['field']}: {e['reason']}" for e in errors),
                             "validation", errors=errors)
                return
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            inner_receive = replay

        started = False

        async def send_allow(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if message["status"] == 405 and routes:
                    raw = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                    raw.append((b"allow", ", ".join(allowed_methods(routes)).encode()))
                    message = {**message, "headers": raw}
            await send(message)

        try:
            await self.app(scope, inner_receive, send_allow)
        except BodyTooLarge as err:
            if started:
                raise
            await refuse(413, "Content Too Large", str(err.detail), "http-413",
                         errors=[{"field": "body", "reason": f"larger than {err.limit} bytes"}])


def install(app: FastAPI) -> None:
    """Add the guard (outermost of the application's own middleware) and the rate limiter from the environment."""
    from dialer.api.ratelimit import from_environment

    app.state.rate_limiter = from_environment()
    app.add_middleware(RequestGuard, owner=app)
