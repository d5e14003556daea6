"""The administration pages: one generic page per registry entry (``web/admin``), and the special editors
(roles × permissions, the audit log, one contact list with its contacts and import wizard, one campaign with its
status actions and selection builder, one DNC list with its entries).

Every page only renders the frame and its configuration; the page's module (``static/admin*.js``) reads and writes
through the JSON API, which checks the permissions again.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, get_args

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from dialer.auth.permissions import P
from dialer.auth.service import Principal
from dialer.voip.schemas import DigestAlgorithm
from dialer.web import admin, nav
from dialer.web.access import page
from dialer.web.render import render, routed_pages

router = APIRouter(include_in_schema=False)


def config_json(data: Any) -> Markup:
    """``data`` as JSON safe inside a ``<script type="application/json">`` element."""
    return Markup(json.dumps(data, ensure_ascii=False).replace("</", "<\\/"))


def _perms(principal: Principal, *wanted: P) -> dict[str, bool]:
    return {p.value: p in principal.permissions for p in wanted}


@router.get("/admin")
async def admin_index(request: Request, principal: Principal = page(None)) -> HTMLResponse:
    sections = [s for s in nav.visible(principal.permissions, routed_pages(request.app)) if s.item.key == "admin"]
    if not sections:
        return render(request, "error.html", principal, status_code=403, code=403, permission="")
    return render(request, "admin/index.html", principal, active_nav="admin", pages=sections[0].children,
                  title="nav.admin")


#: The digest algorithms the SIP driver offers phones (``voip.schemas.DigestAlgorithm``), strongest first.
DIGEST_ALGORITHMS: tuple[str, ...] = get_args(DigestAlgorithm)
DIGEST_FIELD = admin.Field("digest_algorithms", "multi", options=DIGEST_ALGORITHMS, help="admin.help.digest_algorithms",
                           span=2)
DIGEST_COLUMN = admin.Column("digest_algorithms", render="list:admin.default.digest_algorithms")


def _with_digest_algorithms(config: dict[str, Any]) -> None:
    """The SIP device form's digest algorithms (issue #12): checkboxes, none = the driver's default (MD5 only)."""
    for resource in config["resources"]:
        if resource["key"] != "sip_devices":
            continue
        names = [f["name"] for f in resource["fields"]]
        if "digest_algorithms" not in names:
            at = names.index("auto_answer") + 1 if "auto_answer" in names else len(names)
            resource["fields"].insert(at, DIGEST_FIELD.to_json())
        if all(c["key"] != "digest_algorithms" for c in resource["columns"]):
            resource["columns"].insert(len(resource["columns"]) - 1, DIGEST_COLUMN.to_json())


def _generic(spec: admin.AdminPage) -> Callable[..., Awaitable[HTMLResponse]]:
    async def handler(request: Request, principal: Principal = page(spec.permission)) -> HTMLResponse:
        config = admin.page_config(spec, principal.permissions)
        if spec.key == "admin.timezones":
            config["numbering"] = P.timezones_write in principal.permissions
        if spec.key == "admin.operators":
            # one form for a user and the operator behind him (#13 §5): needs both writes and the roles to read
            config["accounts"] = {P.users_write, P.operators_write, P.roles_read} <= principal.permissions
        if spec.key == "admin.telephony" and P.monitoring_read in principal.permissions:
            config["live"] = ["telephony"]  # device registrations and trunk states as they change
        if spec.key == "admin.telephony":
            _with_digest_algorithms(config)
        if spec.key == "admin.codes" and P.reports_read in principal.permissions:
            # the "successful" mark of codes (conversion, issue #14): the reports' list, changed with codes.write
            config["successful"] = {"endpoint": "/api/reports/successful-codes",
                                    "write": P.codes_write in principal.permissions}
        return render(request, "admin/resource.html", principal, active_nav=spec.key, title=spec.title,
                      config=config_json(config))

    handler.__name__ = "admin_" + spec.key.split(".", 1)[1]
    return handler


for _spec in admin.PAGES:
    router.add_api_route(_spec.path, _generic(_spec), methods=["GET"], response_class=HTMLResponse)


@router.get("/admin/roles")
async def admin_roles(request: Request, principal: Principal = page(P.roles_read)) -> HTMLResponse:
    config = {"roles": admin.ROLES.to_json(principal.permissions), "refs": admin.REFS,
              "can_write": P.roles_write in principal.permissions}
    return render(request, "admin/roles.html", principal, active_nav="admin.roles", title="nav.admin.roles",
                  config=config_json(config))


@router.get("/admin/audit")
async def admin_audit(request: Request, principal: Principal = page(P.audit_read)) -> HTMLResponse:
    config = {"can_export": P.audit_export in principal.permissions,
              "can_users": P.users_read in principal.permissions}
    return render(request, "admin/audit.html", principal, active_nav="admin.audit", title="nav.admin.audit",
                  config=config_json(config))


@router.get("/admin/lists/{list_id}")
async def admin_list(list_id: int, request: Request, principal: Principal = page(P.lists_read)) -> HTMLResponse:
    config = {"id": list_id, "resource": admin.LISTS.to_json(principal.permissions), "refs": admin.REFS,
              "perms": _perms(principal, P.lists_write, P.contacts_read, P.contacts_write, P.contacts_delete,
                              P.contacts_import, P.contacts_export, P.dnc_read, P.fields_read)}
    return render(request, "admin/list.html", principal, active_nav="admin.lists", title="nav.admin.lists",
                  config=config_json(config))


@router.get("/admin/campaigns/{campaign_id}")
async def admin_campaign(campaign_id: int, request: Request,
                         principal: Principal = page(P.campaigns_read)) -> HTMLResponse:
    config = {"id": campaign_id, "resource": admin.CAMPAIGNS.to_json(principal.permissions), "refs": admin.REFS,
              "selection": admin.selection_catalogue(),
              "live": P.monitoring_read in principal.permissions,
              "perms": _perms(principal, P.campaigns_write, P.campaigns_control, P.selections_read,
                              P.selections_write, P.fields_read, P.skills_read, P.pools_read)}
    return render(request, "admin/campaign.html", principal, active_nav="admin.campaigns",
                  title="nav.admin.campaigns", config=config_json(config))


@router.get("/admin/dnc/{list_id}")
async def admin_dnc_list(list_id: int, request: Request, principal: Principal = page(P.dnc_read)) -> HTMLResponse:
    config = {"id": list_id, "resource": admin.DNC.to_json(principal.permissions), "refs": admin.REFS,
              "can_write": P.dnc_write in principal.permissions}
    return render(request, "admin/dnc.html", principal, active_nav="admin.dnc", title="nav.admin.dnc",
                  config=config_json(config))
