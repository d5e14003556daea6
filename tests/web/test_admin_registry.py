"""The administration registry against the API it drives, without a browser: permissions, sortable columns and
form fields match the API's resources; every string the admin pages use is in both catalogues; every admin nav
entry has its page, guarded by the entry's permission."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute

import dialer
from dialer.api.crud import Resource as ApiResource
from dialer.api.groups import MemberGroup
from dialer.api.routes import api_routes
from dialer.web import admin, i18n, nav
from dialer.web.access import PageAccess
from tests.conftest import make_user

STATIC = Path(admin.__file__).resolve().parents[1] / "static"


def api_resources() -> dict[str, ApiResource]:
    found: dict[str, ApiResource] = {}
    for mod in pkgutil.iter_modules(dialer.__path__):
        try:
            module = importlib.import_module(f"dialer.{mod.name}.endpoints")
        except ModuleNotFoundError:
            continue
        for value in vars(module).values():
            if isinstance(value, MemberGroup):  # a group of members (api/groups.py) makes its resource
                value = value.resource()
            if isinstance(value, ApiResource):
                found["/api/" + value.path] = value
    return found


def test_resources_match_the_api() -> None:
    api = api_resources()
    for resource in admin.RESOURCES.values():
        spec = api[resource.endpoint]
        assert (resource.read, resource.write) == (spec.read_perm, spec.write_perm), resource.key
        for column in resource.columns:
            if column.sort:
                assert column.sort in spec.sort, (resource.key, column.sort)
        assert resource.sort.lstrip("-") in spec.sort, resource.key
        create = spec.create_schema.model_fields
        for field in resource.fields:
            assert field.name in create, (resource.key, field.name)
            for sub in field.columns:
                assert sub.kind in {"text", "number", "checkbox", "select", "ref", "time"}, sub
            if field.kind in ("ref", "refs"):
                assert field.ref in admin.REFS, field
        for column in resource.columns:
            if column.render.startswith(("ref:", "refs:")):
                assert column.render.split(":")[1] in admin.REFS, column
            if column.key not in ("registration", "state"):
                assert column.key in spec.read_schema.model_fields, (resource.key, column.key)


def _registry_msgids() -> set[str]:
    ids: set[str] = set()

    def walk(field: admin.Field) -> None:
        data = field.to_json()
        ids.add(data["label"])
        if field.help:
            ids.add(field.help)
        ids.update(field.option_prefix + o for o in field.options if field.option_prefix)
        ids.update(label for label, _ in field.presets)
        for sub in field.columns:
            walk(sub)

    for resource in admin.RESOURCES.values():
        ids.add(resource.title)
        for column in resource.columns:
            ids.add(column.to_json()["label"])
        for field in resource.fields:
            walk(field)
        for action in resource.actions:
            ids.add(action.label)
            for field in action.fields:
                walk(field)
    ids.update(f"admin.dp.{p['name']}" for specs in admin.dial_param_specs().values() for p in specs)
    ids.update(f"admin.attr.{a['name']}" for a in admin.selection_catalogue()["system"])
    ids.update(f"admin.op.{op}" for ops in admin.selection_catalogue()["ops"].values() for op in ops)
    return ids


def test_every_admin_string_is_translated() -> None:
    ru, en = i18n.catalogue("ru"), i18n.catalogue("en")
    used = _registry_msgids()
    for path in STATIC.glob("admin*.js"):
        used |= set(re.findall(r'"((?:admin|common|outcome|nav|table)\.[a-z0-9_.]+[a-z0-9_])"', path.read_text()))
    missing = sorted(m for m in used if m not in ru or m not in en)
    assert missing == []
    own = json.loads((STATIC.parent / "locales" / "admin.ru.json").read_text(encoding="utf-8"))
    assert all(k.startswith(("admin.", "nav.admin.")) for k in own)


def test_admin_nav_entries_have_guarded_pages(app: FastAPI) -> None:
    routes = {path: r for path, r in api_routes(app) if isinstance(r, APIRoute) and "GET" in r.methods}
    for item in nav.NAV:
        if item.parent != "admin":
            continue
        route = routes[item.path]
        access = [d.call for d in route.dependant.dependencies if isinstance(d.call, PageAccess)]
        assert [a.permission for a in access] == [item.permission], item
    for spec in admin.PAGES:
        assert any(i.path == spec.path and i.permission == spec.permission for i in nav.NAV), spec


async def test_page_config_hides_write_controls_without_write(app: FastAPI) -> None:
    await make_user(app, "viewer", password="secret-pass-1", grants={"skills.read": True})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.post("/api/auth/login", json={"login": "viewer", "password": "secret-pass-1"})
        assert r.status_code == 200
        page = await client.get("/admin/skills")
        assert page.status_code == 200
        config = json.loads(re.search(r'id="admin-config">(.*?)</script>', page.text, re.S).group(1))  # type: ignore[union-attr]
        assert [(r["key"], r["can_write"]) for r in config["resources"]] == [("skills", False)]
        assert (await client.get("/admin/codes")).status_code == 403
