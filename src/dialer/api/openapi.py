"""What the generated OpenAPI schema does not say by itself, added centrally once it is built.

- every operation declares the problem documents it may answer (``application/problem+json``: 401/403 where it
  needs credentials, 404 with path parameters, 409 for changes, 413 with a body, 422, 429) — FastAPI's own 422
  schema is replaced, the API answers problem details;
- the session cookie and API tokens as security schemes;
- the allowed ``sort`` values of list endpoints (a pattern of the sortable columns);
- the password rules of users' passwords.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from dialer.auth.service import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH

PROBLEM_MEDIA_TYPE = "application/problem+json"
CHANGE_METHODS = {"post", "put", "patch", "delete"}

#: Sortable columns of list endpoints outside the generic CRUD (which registers its own in :data:`SORTABLE`).
#: Owners of those endpoints: better declared beside them.
SORTABLE: dict[str, tuple[str, ...]] = {
    "/api/audit": ("action", "at", "id", "object_type", "user_login"),
    "/api/callbacks": ("created_at", "id", "status", "window_end", "window_start"),
    "/api/campaigns/{campaign_id}/selections": ("created_at", "id", "is_active", "name", "priority"),
    "/api/dnc-lists/{list_id}/entries": ("created_at", "id", "number"),
}
#: Public operations that still answer 401 (wrong login or password).
PUBLIC_401 = {("/api/auth/login", "post")}
#: Schemas whose ``password`` is a user's password (the rules of ``dialer.auth.schemas``).
USER_PASSWORD_SCHEMAS = ("UserCreate", "UserUpdate")


class ProblemError(BaseModel):
    field: str = Field(description="The field (dotted path; 'body' for the whole body)")
    reason: str = Field(description="Why it was refused, in plain words")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(description="A URI reference naming the kind of problem, e.g. /problems/validation")
    title: str
    status: int
    detail: str
    instance: str | None = Field(None, description="The request path")
    errors: list[ProblemError] | None = Field(None, description="Each wrong field and the reason")


DESCRIPTIONS = {
    401: "Not authenticated: no valid session cookie or API token",
    403: "Permission denied, or the CSRF token is missing or wrong",
    404: "The object does not exist",
    409: "The change conflicts with the current state or existing data",
    413: "The request body is too large",
    422: "Validation failed: errors name each field and the reason",
    429: "Too many requests: try again after Retry-After seconds",
}


def sort_pattern(columns: Iterable[str]) -> str:
    names = "|".join(re.escape(c) for c in sorted(columns))
    return f"^-?({names})(,-?({names}))*$"


def _problem_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": DESCRIPTIONS[status],
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if status == 429:
        response["headers"] = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return response


def _add_problems(operation: dict[str, Any], method: str, path: str, needs_credentials: bool) -> None:
    responses = operation.setdefault("responses", {})
    statuses = [422, 429]
    if needs_credentials:
        statuses += [401, 403]
    elif (path, method) in PUBLIC_401:
        statuses.append(401)
    if "{" in path:
        statuses.append(404)
    if method in CHANGE_METHODS:
        statuses.append(409)
    if "requestBody" in operation:
        statuses.append(413)
    for status in sorted(statuses):
        current = responses.get(str(status))
        if current is None or status == 422:
            responses[str(status)] = _problem_response(status)
        else:
            current.setdefault("content", {})[PROBLEM_MEDIA_TYPE] = {"schema": {"$ref": "#/components/schemas/Problem"}}


def _sort_parameters(operation: dict[str, Any], columns: Iterable[str]) -> None:
    columns = sorted(columns)
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "query" and parameter.get("name") == "sort":
            schema = parameter.setdefault("schema", {})
            string = next((s for s in schema.get("anyOf", []) if s.get("type") == "string"), schema)
            string["pattern"] = sort_pattern(columns)
            parameter["description"] = schema["description"] = (
                f"Comma-separated columns, '-' for descending; columns: {', '.join(columns)}")


def _password_rules(schemas: dict[str, Any]) -> None:
    rule = {"minLength": MIN_PASSWORD_LENGTH, "maxLength": MAX_PASSWORD_LENGTH}
    text = (f"At least {MIN_PASSWORD_LENGTH} and at most {MAX_PASSWORD_LENGTH} characters, at least 3 different "
            "characters, not the login")
    for name in USER_PASSWORD_SCHEMAS:
        prop = schemas.get(name, {}).get("properties", {}).get("password")
        if prop is None:
            continue
        for variant in prop.get("anyOf", [prop]):
            if variant.get("type") == "string":
                variant.update(rule)
        prop["description"] = text


def _drop_unused(schema: dict[str, Any], names: Iterable[str]) -> None:
    components = schema.get("components", {}).get("schemas", {})
    for name in names:
        if name not in components:
            continue
        rest = {k: v for k, v in components.items() if k != name}
        text = json.dumps({**schema, "components": {**schema["components"], "schemas": rest}})
        if f'"#/components/schemas/{name}"' not in text:
            del components[name]


def decorate(app: FastAPI, schema: dict[str, Any], sortable: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    from dialer.api.guard import route_table

    routes = {(r.path, m.lower()): r for r in route_table(app) for m in r.methods}
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    schemas["Problem"] = problem_schema
    components["securitySchemes"] = {
        "session": {"type": "apiKey", "in": "cookie", "name": "dialer_session",
                    "description": "Browser session (POST /api/auth/login); unsafe methods also need the "
                                   "X-CSRF-Token header"},
        "token": {"type": "http", "scheme": "bearer", "description": "API token (POST /api/tokens): dlr_..."},
    }
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete", "head", "options"}:
                continue
            route = routes.get((path, method))
            needs_credentials = route is not None and route.needs_credentials
            _add_problems(operation, method, path, needs_credentials)
            if needs_credentials:
                operation["security"] = [{"token": []}, {"session": []}]
            if method == "get" and path in sortable:
                _sort_parameters(operation, sortable[path])
    _password_rules(schemas)
    _drop_unused(schema, ["HTTPValidationError", "ValidationError"])
    return schema


def install(app: FastAPI) -> None:
    from dialer.api.crud import SORTABLE as CRUD_SORTABLE

    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if getattr(app.state, "openapi_decorated", False) and app.openapi_schema:
            return app.openapi_schema
        schema = decorate(app, build(), {**SORTABLE, **CRUD_SORTABLE})
        app.openapi_schema = schema
        app.state.openapi_decorated = True
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
