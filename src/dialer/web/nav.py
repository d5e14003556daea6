"""The navigation registry: every section and page of the UI, with the permission that shows it.

Add an entry with :func:`register` (or append to :data:`NAV` here) when you add a page; the header shows an entry
only to users holding its permission, and only once a page is routed at its path, so an entry may be registered
before its page exists. ``parent`` puts an entry under a section (the administration pages under ``admin``); a
section is shown when the user may see at least one of its children (or its own path, when it has no children).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable

from dialer.auth.permissions import P


@dataclasses.dataclass(frozen=True, slots=True)
class NavItem:
    #: Unique key; the template marks the active entry by it (``active_nav`` in the page context).
    key: str
    path: str
    #: Message id of the label (see ``web/locales``).
    label: str
    #: Needed to see the entry; ``None`` = every logged-in user.
    permission: P | None
    #: Key of the section this page belongs to (``"admin"``), or ``None`` for a top-level section.
    parent: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class NavSection:
    item: NavItem
    children: tuple[NavItem, ...]
    #: Where ``/`` sends this user before any other section (the administration, for those who configure).
    landing: bool = False

    @property
    def path(self) -> str:
        return self.item.path


NAV: list[NavItem] = [
    NavItem("operator", "/operator", "nav.operator", P.panel_use),
    NavItem("supervisor", "/supervisor", "nav.supervisor", P.monitoring_read),
    NavItem("admin", "/admin", "nav.admin", None),
    # Administration pages: the admin pages fill these in.
    NavItem("admin.campaigns", "/admin/campaigns", "nav.admin.campaigns", P.campaigns_read, "admin"),
    NavItem("admin.lists", "/admin/lists", "nav.admin.lists", P.lists_read, "admin"),
    NavItem("admin.fields", "/admin/fields", "nav.admin.fields", P.fields_read, "admin"),
    NavItem("admin.dnc", "/admin/dnc", "nav.admin.dnc", P.dnc_read, "admin"),
    NavItem("admin.strategies", "/admin/strategies", "nav.admin.strategies", P.strategies_read, "admin"),
    NavItem("admin.codes", "/admin/codes", "nav.admin.codes", P.codes_read, "admin"),
    NavItem("admin.schedules", "/admin/holidays", "nav.admin.holidays", P.holidays_read, "admin"),
    NavItem("admin.callbacks", "/admin/callbacks", "nav.admin.callbacks", P.callbacks_read, "admin"),
    NavItem("admin.operators", "/admin/operators", "nav.admin.operators", P.operators_read, "admin"),
    NavItem("admin.skills", "/admin/skills", "nav.admin.skills", P.skills_read, "admin"),
    NavItem("admin.pools", "/admin/pools", "nav.admin.pools", P.pools_read, "admin"),
    NavItem("admin.timezones", "/admin/timezones", "nav.admin.timezones", P.timezones_read, "admin"),
    NavItem("admin.callerids", "/admin/caller-ids", "nav.admin.callerids", P.callerids_read, "admin"),
    NavItem("admin.telephony", "/admin/telephony", "nav.admin.telephony", P.telephony_read, "admin"),
    NavItem("admin.users", "/admin/users", "nav.admin.users", P.users_read, "admin"),
    NavItem("admin.roles", "/admin/roles", "nav.admin.roles", P.roles_read, "admin"),
    NavItem("admin.audit", "/admin/audit", "nav.admin.audit", P.audit_read, "admin"),
]


def register(item: NavItem) -> NavItem:
    """Add ``item`` (keys are unique; registering the same item twice is harmless)."""
    for existing in NAV:
        if existing.key == item.key:
            if existing != item:
                raise ValueError(f"navigation key {item.key!r} is already registered as {existing}")
            return item
    NAV.append(item)
    return item


#: Who configures the call centre lands in the administration rather than on the floor or the panel: a holder of
#: any of these (an administrator; a supervisor, who changes none of them, lands on his floor).
CONFIGURES: frozenset[P] = frozenset({P.users_write, P.roles_write, P.campaigns_write, P.lists_write,
                                      P.strategies_write, P.fields_write, P.telephony_write})


def _may(item: NavItem, permissions: Collection[P]) -> bool:
    return item.permission is None or item.permission in permissions


def visible(permissions: Collection[P], routed: Collection[str], items: Iterable[NavItem] | None = None
            ) -> list[NavSection]:
    """The sections (with their children) a user holding ``permissions`` sees, among pages routed at ``routed``."""
    items = list(NAV if items is None else items)
    sections: list[NavSection] = []
    for top in (i for i in items if i.parent is None):
        children = tuple(c for c in items if c.parent == top.key and c.path in routed and _may(c, permissions))
        has_children = any(c.parent == top.key for c in items)
        if has_children:
            if children and _may(top, permissions):
                landing = top.key == "admin" and bool(CONFIGURES.intersection(permissions))
                sections.append(NavSection(top, children, landing))
        elif top.path in routed and _may(top, permissions):
            sections.append(NavSection(top, ()))
    return sections


def first_path(sections: list[NavSection]) -> str | None:
    """Where ``/`` sends a user: his landing section (the administration for those who configure), else the first
    section they may see."""
    for section in sections:
        if section.landing:
            return section.path
    return sections[0].path if sections else None
