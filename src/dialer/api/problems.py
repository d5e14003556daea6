"""RFC 9457 problem details for every error the API returns, in the request's language.

Every reason carries a message id and its parameters besides its text::

    {"type": "/problems/conflict", "title": "Конфликт", "status": 409, "code": "value_exists",
     "params": {"field": "Название", "value": "Взыскание"}, "detail": "Название: значение «Взыскание» уже есть",
     "errors": [{"field": "name", "label": "Название", "code": "value_exists",
                 "params": {"field": "Название", "value": "Взыскание"}, "reason": "значение «Взыскание» уже есть"}]}

``field`` stays the machine path (``conditions.0.value``), ``label`` is how a person reads it ("Условия №1 ›
Значение"). The language is :func:`dialer.web.i18n.api_language` (the ``lang`` cookie, else Accept-Language, else
Russian). Message ids come from the error (``DialerError.code``, ``errors[i]["code"]``), from Pydantic's error type,
or -- for an error raised with English text only -- from the English template of ``messages.en.json`` the text
matches (``{name}`` placeholders become the parameters), the way gettext keys messages by their English text.
"""

from __future__ import annotations

import logging
import re
from functools import cache, lru_cache
from string import Formatter
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dialer.exceptions import DialerError, TooManyAttempts
from dialer.web import i18n

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"


def problem(status: int, title: str, detail: str, *, slug: str, errors: list[dict[str, Any]] | None = None,
            instance: str | None = None, headers: dict[str, str] | None = None, lang: str | None = None,
            code: str | None = None, params: dict[str, Any] | None = None) -> JSONResponse:
    """The problem document; with ``lang`` its title, detail and reasons are translated (:func:`localize`)."""
    body: dict[str, Any] = {"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    if lang is not None:
        body = localize(lang, body, slug=slug, code=code, params=params)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


# --- the request's language -------------------------------------------------------------------------------------

#: Path parts that are not fields: where Pydantic found the value.
_LOCATIONS = ("body", "query", "path", "header", "cookie")


def _label_of(lang: str, name: str) -> str:
    catalogue = i18n.catalogue(lang)
    for key in (f"label.{name}", f"admin.f.{name}"):
        if key in catalogue:
            return catalogue[key]
    return name


def field_label(lang: str, field: str) -> str:
    """How a person reads a field path: ``conditions.0.value`` -> "Условия №1 › Значение" (labels of the
    catalogue's ``label.<name>``, else the admin pages' column heads ``admin.f.<name>``, else the name itself)."""
    if field in ("", "body"):
        return _label_of(lang, "body")
    shown: list[str] = []
    for part in field.split("."):
        if part.isdigit():
            number = f"№{int(part) + 1}"
            if shown:
                shown[-1] = f"{shown[-1]} {number}"
            else:
                shown.append(number)
        else:
            shown.append(_label_of(lang, part))
    return " › ".join(shown)


@cache
def _templates(prefix: str = "problem.") -> tuple[tuple[str, re.Pattern[str], tuple[str, ...]], ...]:
    """The English templates of the message catalogue as patterns, most literal text first (so "value '{value}'
    already exists" is tried before a catch-all like "{field}: {reason}")."""
    found: list[tuple[int, str, re.Pattern[str], tuple[str, ...]]] = []
    for key, template in i18n.catalogue("en").items():
        if not key.startswith(prefix):
            continue
        regex, names, literal = "", [], 0
        for text, name, _spec, _conversion in Formatter().parse(template):
            regex += re.escape(text)  # literal text with "{{" already read as "{"
            literal += len(text)
            if name is not None:
                regex += f"(?P={name})" if name in names else f"(?P<{name}>.+?)"
                names.append(name)
        found.append((literal, key.removeprefix(prefix), re.compile(f"^{regex}$", re.S), tuple(names)))
    found.sort(key=lambda t: (-t[0], t[1]))
    return tuple((code, pattern, names) for _literal, code, pattern, names in found)


def recognise(text: str, prefix: str = "problem.") -> tuple[str, dict[str, Any]]:
    """The message id (after ``prefix``) and parameters of an English text; ``("text", {"text": text})`` when no
    template fits (it is then shown as it is)."""
    for code, pattern, _names in _templates(prefix):
        if m := pattern.match(text):
            return code, m.groupdict()
    return "text", {"text": text}


def _shown(lang: str, params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as the text shows them: one that names a field (``field``, ``other_field``) by its label, a
    selection operator (``op``) by its name in the selection editor."""
    catalogue = i18n.catalogue(lang)
    shown: dict[str, Any] = {}
    for k, v in params.items():
        if k in ("field", "other_field") and isinstance(v, str):
            v = field_label(lang, v)
        elif k == "op" and isinstance(v, str):
            v = catalogue.get(f"label.op.{v}", v)
        elif k == "day" and isinstance(v, str):
            v = catalogue.get(f"label.day.{v}", v)
        elif k == "kind" and isinstance(v, str):  # what a file that is not a table is ("a PDF document")
            v = catalogue.get(f"filekind.{v}", v)
        elif k == "why" and isinstance(v, str):  # a reason inside a reason ("not a valid phone number: too short")
            code, inner = recognise(v)
            v = message(lang, code, inner, v)
        shown[k] = v
    return shown


def message(lang: str, code: str, params: dict[str, Any], fallback: str) -> str:
    """The text of message ``code`` in ``lang``; ``fallback`` (the English text as raised) when the catalogue of
    ``lang`` has no such message (a Pydantic error type no catalogue names)."""
    if code == "text":
        return str(params.get("text", fallback))
    template = i18n.catalogue(lang).get(f"problem.{code}")
    if template is None:
        return fallback
    try:
        return template.format(**_shown(lang, params))
    except (KeyError, IndexError, ValueError):
        return fallback


@lru_cache(maxsize=4096)
def translate_reason(lang: str, reason: str) -> str:
    """One English reason (of an import's error report, of a registry row) in ``lang``."""
    code, params = recognise(reason)
    return message(lang, code, params, reason)


def localize_item(lang: str, item: dict[str, Any]) -> dict[str, Any]:
    """One entry of ``errors`` with its label, message id, parameters and translated reason."""
    field = str(item.get("field", "body"))
    reason = str(item.get("reason", ""))
    code = item.get("code")
    params: dict[str, Any] = dict(item.get("params") or {})
    if code is None:
        code, params = recognise(reason)
    label = field_label(lang, field)
    text = message(lang, code, params, reason)
    shown = _shown(lang, params)
    return {**item, "field": field, "label": label, "code": code, "params": {"field": label, **shown},
            "reason": text}


def _joined(items: list[dict[str, Any]], *, key: str) -> str:
    return "; ".join(f"{e[key]}: {e['reason']}" if e["field"] != "body" else str(e["reason"]) for e in items)


def localize(lang: str, body: dict[str, Any], *, slug: str, code: str | None = None,
             params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Translate a problem document (title, detail, each reason) into ``lang``, adding message ids and labels.

    A detail that only repeats its errors ("name: value 'x' already exists") is rebuilt from the translated
    errors with labels; any other detail is translated on its own."""
    raw = list(body.get("errors") or [])
    items = [localize_item(lang, e) for e in raw]
    detail = str(body.get("detail", ""))
    originals = [{"field": str(e.get("field", "body")), "reason": str(e.get("reason", ""))} for e in raw]
    if items and code is None and detail in (_joined(originals, key="field"), *(e["reason"] for e in originals)):
        code, params = (items[0]["code"], items[0]["params"]) if len(items) == 1 else ("errors", {})
        text = _joined(items, key="label")
    else:
        if code is None:
            code, params = recognise(detail)
        params = dict(params or {})
        text = message(lang, code, params, detail)
        params = _shown(lang, params)
    title = i18n.catalogue(lang).get(f"title.{slug}", str(body.get("title", "")))
    out = {**body, "title": title, "code": code, "params": params, "detail": text}
    if items:
        out["errors"] = items
    return out


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or "body"


_UNIQUE = re.compile(r"Key \((?P<cols>[^)]*)\)=\((?P<vals>.*)\) already exists")
_FK_MISSING = re.compile(r"Key \((?P<cols>[^)]*)\)=\((?P<vals>.*)\) is not present in table \"(?P<table>\w+)\"")
_FK_USED = re.compile(r"is still referenced from table \"(?P<table>\w+)\"")


def integrity_problem(err: DBAPIError) -> tuple[int, str, list[dict[str, Any]]]:
    """Translate a constraint violation into a status, a message and the fields it is about (with message ids:
    ``value_exists``, ``object_missing``, ``out_of_range``, ``value_required``)."""
    cause = getattr(err.orig, "__cause__", None)
    # asyncpg keeps the "Key (...)=(...)" part in the cause's detail, not in the message.
    text = f"{err.orig}\n{getattr(cause, 'detail', '') or ''}"
    if m := _UNIQUE.search(text):
        cols = [c.strip() for c in m["cols"].split(",")]
        field = cols[-1]
        # a composite key ("list_id, name") names the row's own value last: that is the one the user typed
        value = m["vals"].rsplit(", ", len(cols) - 1)[-1] if len(cols) > 1 else m["vals"]
        return 409, f"{field}: value '{value}' already exists", [
            {"field": field, "reason": f"value '{value}' already exists", "code": "value_exists",
             "params": {"value": value}}]
    if m := _FK_USED.search(text):
        return 409, f"the object is still used by {m['table']}; remove those first", []
    if m := _FK_MISSING.search(text):
        field = m["cols"].strip()
        return 422, f"{field}: {m['table']} {m['vals']} does not exist", [
            {"field": field, "reason": f"{m['table']} {m['vals']} does not exist", "code": "object_missing",
             "params": {"what": m["table"], "id": m["vals"]}}]
    if "violates check constraint" in text:
        cname = re.search(r'check constraint "(\w+)"', text)
        return 422, f"a value is out of range ({cname[1] if cname else 'check'})", []
    if "violates not-null constraint" in text:
        col = re.search(r'column "(\w+)"', text)
        field = col[1] if col else "body"
        return 422, f"{field}: a value is required", [{"field": field, "reason": "a value is required",
                                                       "code": "value_required", "params": {}}]
    return 409, "the change conflicts with existing data", []


def validation_item(error: dict[str, Any]) -> dict[str, Any]:
    """One entry of ``errors``: the field (dotted path), the reason in plain (English) words, and the message id
    with its parameters -- Pydantic's error type and context, or for a validator's own ``ValueError`` the id its
    text is recognised as."""
    loc = error.get("loc", ())
    if error.get("type") == "json_invalid":
        # The location of a JSON syntax error is a character offset, not a field.
        where = next((p for p in reversed(loc) if isinstance(p, int)), None)
        what = (error.get("ctx") or {}).get("error") or "syntax error"
        reason = f"the body is not valid JSON: {what}" + (f" at character {where}" if where is not None else "")
        return {"field": "body", "reason": reason, "code": "json_invalid",
                "params": {"error": what, "position": "" if where is None else where}}
    kind = str(error.get("type", ""))
    reason = str(error.get("msg", "invalid"))
    reason = reason.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind in ("value_error", "assertion_error") or not kind:
        code, params = recognise(reason)
    else:
        code = kind
        params = {k: _ctx_text(v) for k, v in (error.get("ctx") or {}).items()}
    return {"field": _loc(loc), "reason": reason, "code": code, "params": params}


def _ctx_text(value: Any) -> Any:
    """A Pydantic context value as JSON can carry it (numbers stay numbers)."""
    return value if isinstance(value, int | float | str | bool) or value is None else str(value)


_OUT_OF_RANGE = re.compile(r"invalid input for query argument \$\d+: (?P<value>.*?) \((?P<why>[^()]*)\)\s*$")


def is_data_error(err: DBAPIError) -> bool:
    """SQLSTATE class 22 (data exception), raised by PostgreSQL or by asyncpg encoding a parameter."""
    if isinstance(err, DataError):
        return True
    cause = getattr(err.orig, "__cause__", None) or err.orig
    return str(getattr(cause, "sqlstate", "") or "").startswith("22")


def data_problem(err: DBAPIError, request: Request) -> tuple[str, list[dict[str, Any]]]:
    """A value the database cannot take (an integer beyond 64 bits, the NUL character, a string too long, a date
    out of range): the input is wrong, so 422 — naming the field when the request shows which one it was."""
    text = str(err.orig).strip().splitlines()[0] if err.orig is not None else "invalid value"
    text = re.sub(r"^<class '[\w.]+'>: ", "", text)
    fields: list[str] = []
    if m := _OUT_OF_RANGE.search(text):
        value, text = m["value"], m["why"]
        fields = [name for name, got in [*request.path_params.items(), *request.query_params.multi_items()]
                  if got.strip() == value]
    elif "0x00" in text:
        text = "the NUL character (\\u0000) cannot be stored"
        fields = [name for name, got in [*request.path_params.items(), *request.query_params.multi_items()]
                  if "\x00" in got]
    errors = [{"field": name, "reason": text} for name in dict.fromkeys(fields)] or [{"field": "body", "reason": text}]
    return "; ".join(f"{e['field']}: {e['reason']}" for e in errors), errors


class PlainTooLargeAsProblem:
    """The request-body limit answers 413 in plain text before any handler runs; make it a problem document."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replacing = False

        async def send_problem(message: Message) -> None:
            nonlocal replacing
            if message["type"] == "http.response.start" and message["status"] == 413:
                ctype = Headers(raw=message.get("headers", [])).get("content-type", "")
                replacing = ctype.startswith("text/plain")
            if not replacing:
                await send(message)
                return
            if message["type"] == "http.response.start":
                return
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                body = {"type": "/problems/http-413", "title": "Content Too Large", "status": 413,
                        "detail": "the request body is larger than this endpoint accepts",
                        "instance": scope.get("path", ""),
                        "errors": [{"field": "body", "reason": "too large"}]}
                body = localize(i18n.api_language(Request(scope)), body, slug="http-413")
                response = JSONResponse(body, status_code=413, media_type=MEDIA_TYPE)
                await response(scope, receive, send)

        await self.app(scope, receive, send_problem)


#: What a client is told to wait before trying again while the database is unreachable.
RETRY_AFTER_OUTAGE_S = 5


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached now (down, restarting, refusing connections) rather than
    that a request was wrong: connection errors raised from the driver or the pool, invalidated connections."""
    if isinstance(exc, SATimeoutError):
        return True  # no pooled connection came within the pool's timeout
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(exc, OperationalError | InterfaceError) or (
            type(exc.orig).__module__.startswith("asyncpg") and "Connection" in type(exc.orig).__name__)
    if isinstance(exc, OSError | TimeoutError):
        tb = exc.__traceback__
        while tb is not None:  # raised by the driver or the pool while connecting, not by a file or a socket of ours
            module = tb.tb_frame.f_globals.get("__name__", "")
            if module.startswith(("asyncpg", "sqlalchemy")):
                return True
            tb = tb.tb_next
    return False


def unavailable_problem(request: Request, exc: BaseException) -> JSONResponse:
    log.warning("database unavailable at %s: %s", request.url.path, exc)
    return problem(503, "Service Unavailable", "the database cannot be reached just now; try again shortly",
                   slug="unavailable", errors=[{"field": "database", "reason": "unreachable"}],
                   instance=request.url.path, headers={"Retry-After": str(RETRY_AFTER_OUTAGE_S)},
                   lang=i18n.api_language(request))


def install(app: FastAPI) -> None:
    app.add_middleware(PlainTooLargeAsProblem)

    async def outage(request: Request, exc: Exception) -> JSONResponse:
        if not database_unavailable(exc):
            raise exc
        return unavailable_problem(request, exc)

    # a database that is down answers 503 with Retry-After, not a plain-text 500
    for kind in (OSError, TimeoutError, SATimeoutError):
        app.add_exception_handler(kind, outage)

    @app.exception_handler(DialerError)
    async def dialer_error(request: Request, exc: DialerError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if isinstance(exc, TooManyAttempts):
            headers = {"Retry-After": str(exc.retry_after_s)}
        return problem(exc.status, exc.title, exc.detail, slug=exc.type_slug, errors=exc.errors,
                       instance=request.url.path, headers=headers, lang=i18n.api_language(request),
                       code=exc.code, params=exc.params)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [validation_item(e) for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
        return problem(422, "Validation failed", detail, slug="validation", errors=errors,
                       instance=request.url.path, lang=i18n.api_language(request))

    @app.exception_handler(IntegrityError)
    async def integrity_error(request: Request, exc: IntegrityError) -> JSONResponse:
        status, detail, errors = integrity_problem(exc)
        return problem(status, "Conflict" if status == 409 else "Validation failed", detail,
                       slug="conflict" if status == 409 else "validation", errors=errors,
                       instance=request.url.path, lang=i18n.api_language(request))

    @app.exception_handler(DBAPIError)
    async def data_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if database_unavailable(exc):
            return unavailable_problem(request, exc)
        if not is_data_error(exc):
            raise exc
        detail, errors = data_problem(exc, request)
        return problem(422, "Validation failed", detail, slug="validation", errors=errors, instance=request.url.path,
                       lang=i18n.api_language(request))

    @app.exception_handler(OverflowError)
    async def overflow_error(request: Request, exc: OverflowError) -> JSONResponse:
        log.info("value out of range at %s: %s", request.url.path, exc)
        return problem(422, "Validation failed", "a number or date is out of range", slug="validation",
                       errors=[{"field": "body", "reason": "a number or date is out of range"}],
                       instance=request.url.path, lang=i18n.api_language(request))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 413:
            return problem(413, "Content Too Large", str(exc.detail), slug="http-413", instance=request.url.path,
                           errors=[{"field": "body", "reason": "too large"}], lang=i18n.api_language(request))
        return problem(exc.status_code, str(exc.detail), str(exc.detail), slug=f"http-{exc.status_code}",
                       instance=request.url.path, headers=getattr(exc, "headers", None),
                       lang=i18n.api_language(request))
