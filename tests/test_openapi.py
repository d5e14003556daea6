"""The OpenAPI schema is served, and the copy in docs/ is current."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from dialer.cli import openapi_text

DOC = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"


async def test_openapi_is_served_and_documented(app: FastAPI, anon: httpx.AsyncClient) -> None:
    r = await anon.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert "/api/auth/login" in paths and "/api/audit" in paths
    current = openapi_text(app)
    assert DOC.exists(), "run: .venv/bin/dialer openapi --output docs/openapi.json"
    assert DOC.read_text() == current, "docs/openapi.json is stale: run dialer openapi --output docs/openapi.json"


async def test_operations_declare_their_problem_answers(app: FastAPI) -> None:
    schema = app.openapi()
    assert schema["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status", "detail"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, item in schema["paths"].items():
        for method, op in item.items():
            responses = op["responses"]
            assert responses["422"]["content"] == problem, (method, path)
            assert "Retry-After" in responses["429"]["headers"]
            if path == "/api/recordings/{recording_id}/shared":  # its signature is its credential
                assert "403" in responses and "security" not in op, (method, path)
            elif path not in ("/api/auth/login", "/api/health"):
                assert {"401", "403"} <= responses.keys(), (method, path)
                assert op["security"] == [{"token": []}, {"session": []}]
            if "{" in path:
                assert "404" in responses, (method, path)
            if method in ("post", "patch", "put", "delete"):
                assert "409" in responses, (method, path)
            if "requestBody" in op:
                assert "413" in responses, (method, path)
    login = schema["paths"]["/api/auth/login"]["post"]["responses"]
    assert "401" in login and "403" not in login


async def test_sort_values_and_password_rules_are_declared(app: FastAPI, admin: httpx.AsyncClient) -> None:
    import re

    from dialer.auth.service import MIN_PASSWORD_LENGTH

    schema = app.openapi()
    app.state.rate_limiter = None  # one request per sortable column of every list, as fast as it goes
    sortable = 0
    for path, item in schema["paths"].items():
        sort = next((p for p in item.get("get", {}).get("parameters", []) if p["name"] == "sort"), None)
        if sort is None or path in ("/api/lists/{list_id}/contacts", "/api/lists/{list_id}/imports"):
            continue  # contacts sort by the list's fields too; imports are always newest first
        pattern = next(s["pattern"] for s in sort["schema"]["anyOf"] if s.get("type") == "string")
        columns = re.findall(r"\w+", pattern.split(")")[0])
        sortable += 1
        if "{" in path:
            continue
        for column in columns:  # every declared column is accepted, others are refused
            r = await admin.get(path, params={"sort": f"-{column},id"})
            assert r.status_code == 200, (path, column, r.text)
        assert re.fullmatch(pattern, "nonexistent") is None
        r = await admin.get(path, params={"sort": "nonexistent"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "sort", path
    assert sortable >= 20
    for name in ("UserCreate", "UserUpdate"):
        password = schema["components"]["schemas"][name]["properties"]["password"]
        string = next(s for s in password.get("anyOf", [password]) if s.get("type") == "string")
        assert string["minLength"] == MIN_PASSWORD_LENGTH
