"""The administration UI's registry: every admin page, its resources (API endpoint, permissions, table columns,
form fields) as data, rendered by one template (``admin/resource.html``) and one ES module (``static/admin.js``).

A :class:`Resource` describes one API collection (``/api/skills``): the permission to read it and the one to change
it, the columns of its table (``Column``) and the fields of its form (``Field``). A :class:`AdminPage` shows one or
more resources (tabs) at a path under ``/admin``; its nav entry (``web/nav.py``) carries the same permission. The
browser gets :meth:`Resource.to_json` for the resources the user may read, with ``can_write`` telling it whether
to show create, edit and delete; the API checks the permissions again.

Field kinds (``Field.kind``), what the form shows and sends:

``text``, ``textarea``, ``password`` (write-only: empty = keep), ``number`` (``""`` → null), ``checkbox``,
``time`` (``HH:MM``), ``date``, ``datetime`` (local → ISO with offset), ``select`` (``options``: fixed values,
labels from ``option_prefix`` + value), ``ref`` (one id from another resource, ``ref`` names it in :data:`REFS`),
``refs`` (several ids, checkboxes), ``lines`` (a list of strings, one per line), ``rows`` (a sub-table: a list of
objects whose columns are ``Field``s; ``ordered`` adds up/down), ``grants`` (per-permission allow / deny),
``dialparams`` (the parameters of the dial mode chosen in ``depends``), ``json`` (free JSON).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dialer.auth.permissions import P
from dialer.campaign.selection import OPS, SYSTEM_ATTRIBUTES
from dialer.campaign.validation import DIAL_PARAMS
from dialer.models.enums import ContactStatus, FieldType, OutcomeCategory, PhoneType

#: Resources a ``ref``/``refs`` field or column can point at: endpoint, the attribute shown, read permission.
REFS: dict[str, dict[str, str]] = {
    "fields": {"endpoint": "/api/fields", "label": "name", "perm": P.fields_read.value},
    "lists": {"endpoint": "/api/lists", "label": "name", "perm": P.lists_read.value},
    "dnc_lists": {"endpoint": "/api/dnc-lists", "label": "name", "perm": P.dnc_read.value},
    "skills": {"endpoint": "/api/skills", "label": "name", "perm": P.skills_read.value},
    "pools": {"endpoint": "/api/pools", "label": "name", "perm": P.pools_read.value},
    "operators": {"endpoint": "/api/operators", "label": "name", "perm": P.operators_read.value},
    "codes": {"endpoint": "/api/completion-codes", "label": "name", "perm": P.codes_read.value},
    "code_groups": {"endpoint": "/api/completion-code-groups", "label": "name", "perm": P.codes_read.value},
    "strategies": {"endpoint": "/api/strategies", "label": "name", "perm": P.strategies_read.value},
    "campaigns": {"endpoint": "/api/campaigns", "label": "name", "perm": P.campaigns_read.value},
    "caller_ids": {"endpoint": "/api/caller-ids", "label": "number", "perm": P.callerids_read.value},
    "caller_id_groups": {"endpoint": "/api/caller-id-groups", "label": "name", "perm": P.callerids_read.value},
    "time_zones": {"endpoint": "/api/time-zones", "label": "name", "perm": P.timezones_read.value},
    "users": {"endpoint": "/api/users", "label": "login", "perm": P.users_read.value},
    "roles": {"endpoint": "/api/roles", "label": "name", "perm": P.roles_read.value},
}

OUTCOMES = [o.value for o in OutcomeCategory]
PHONE_TYPES = [p.value for p in PhoneType]
FIELD_TYPES = [f.value for f in FieldType]
WEEKDAYS = [str(i) for i in range(7)]
RETRY_OUTCOMES = ["busy", "no_answer", "machine", "abandoned", "rejected", "error"]


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    kind: str = "text"
    #: Message id of the label; ``admin.f.<name>`` by default.
    label: str = ""
    required: bool = False
    options: tuple[str, ...] = ()
    #: Labels of ``options``: message id prefix (``admin.enum.field_type.``); empty = the value itself.
    option_prefix: str = ""
    ref: str = ""
    #: Sub-fields of a ``rows`` field.
    columns: tuple[Field, ...] = ()
    ordered: bool = False
    #: Value of a new object.
    default: Any = None
    #: Only when creating (not sent on update) / shown read-only on update.
    create_only: bool = False
    help: str = ""
    #: Another field this one depends on (``dialparams`` → ``dial_mode``).
    depends: str = ""
    #: Width of the field in the form grid: 1 (a quarter), 2 (half) or 4 (full line).
    span: int = 1
    min: float | None = None
    max: float | None = None
    step: str = ""
    #: Nullable: an empty ``select``/``ref`` sends null.
    nullable: bool = True
    #: Buttons of a ``rows`` field adding ready-made rows: (label message id, rows).
    presets: tuple[tuple[str, tuple[dict[str, Any], ...]], ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "kind": self.kind, "label": self.label or f"admin.f.{self.name}",
                                "required": self.required, "span": self.span, "nullable": self.nullable}
        for key in ("option_prefix", "ref", "help", "depends", "step"):
            if value := getattr(self, key):
                data[key] = value
        if self.options:
            data["options"] = list(self.options)
        if self.columns:
            data["columns"] = [c.to_json() for c in self.columns]
        if self.ordered:
            data["ordered"] = True
        if self.default is not None:
            data["default"] = self.default
        if self.create_only:
            data["create_only"] = True
        if self.min is not None:
            data["min"] = self.min
        if self.max is not None:
            data["max"] = self.max
        if self.presets:
            data["presets"] = [{"label": label, "rows": list(rows)} for label, rows in self.presets]
        if self.kind == "dialparams":
            data["modes"] = dial_param_specs()
        return data


@dataclasses.dataclass(frozen=True)
class Column:
    key: str
    label: str = ""
    #: Server column to sort by ("" = not sortable).
    sort: str = ""
    #: ``text`` | ``yesno`` | ``datetime`` | ``date`` | ``ref:<REFS key>`` | ``refs:<REFS key>`` | ``enum:<prefix>``
    #: | ``count`` (length of a list) | ``trunk_state`` | ``registration`` | ``status`` (campaign status pill).
    render: str = "text"
    width: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"key": self.key, "label": self.label or f"admin.f.{self.key}",
                                "render": self.render}
        if self.sort:
            data["sort"] = self.sort
        if self.width:
            data["width"] = self.width
        return data


@dataclasses.dataclass(frozen=True)
class Action:
    """An operation on one object besides saving it (``POST <endpoint>/<id>/<key>``), offered in its dialog to
    users who may write; ``fields`` make the body."""

    key: str
    label: str
    fields: tuple[Field, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "fields": [f.to_json() for f in self.fields]}


@dataclasses.dataclass(frozen=True)
class Resource:
    key: str
    endpoint: str
    read: P
    write: P
    #: Message id of the tab / dialog title (plural) and of one object (for "New …").
    title: str
    columns: tuple[Column, ...]
    fields: tuple[Field, ...]
    sort: str = "name"
    #: A page of its own for one object (``/admin/lists/{id}``): rows open it instead of the dialog.
    detail: str = ""
    #: Attribute naming an object in the delete confirmation.
    label: str = "name"
    #: No create button (objects come from elsewhere, e.g. the numbering registry).
    no_create: bool = False
    #: Extra filters of the list (``{"is_system": False}``).
    filters: dict[str, Any] = dataclasses.field(default_factory=dict)
    actions: tuple[Action, ...] = ()

    def to_json(self, permissions: frozenset[P] | set[P]) -> dict[str, Any]:
        return {
            "key": self.key, "endpoint": self.endpoint, "title": self.title, "sort": self.sort,
            "columns": [c.to_json() for c in self.columns], "fields": [f.to_json() for f in self.fields],
            "can_write": self.write in permissions, "detail": self.detail, "label": self.label,
            "no_create": self.no_create, "filters": self.filters, "actions": [a.to_json() for a in self.actions],
        }


@dataclasses.dataclass(frozen=True)
class AdminPage:
    key: str
    path: str
    permission: P
    title: str
    resources: tuple[Resource, ...]


def dial_param_specs() -> dict[str, list[dict[str, Any]]]:
    """The parameters of each dial mode (from the API's own models), for the ``dialparams`` editor."""
    specs: dict[str, list[dict[str, Any]]] = {}
    for mode, model in DIAL_PARAMS.items():
        schema = model.model_json_schema()
        items = []
        for name, prop in schema.get("properties", {}).items():
            if name == "mode":
                continue
            items.append({"name": name, "type": prop.get("type", "number"), "default": prop.get("default"),
                          "min": prop.get("minimum"), "max": prop.get("maximum"),
                          "required": name in schema.get("required", [])})
        specs[mode.value] = items
    return specs


def selection_catalogue() -> dict[str, Any]:
    """What the selection builder offers: operators per field type and the contacts' system attributes."""
    return {
        "ops": {t.value: sorted(op.value for op in ops) for t, ops in OPS.items()},
        "system": [{"name": a.name, "type": a.type.value, "options": list(a.options)}
                   for a in SYSTEM_ATTRIBUTES.values()],
        "statuses": [s.value for s in ContactStatus],
    }


# --- the resources ------------------------------------------------------------------------------------------------

T = Field
NAME = T("name", required=True, span=2)
DESCRIPTION = T("description", "textarea", span=4)
ID = Column("id", "admin.f.id", "id", width="5em")
C_NAME = Column("name", sort="name")
C_DESC = Column("description")

FIELDS = Resource(
    "fields", "/api/fields", P.fields_read, P.fields_write, "nav.admin.fields",
    (ID, C_NAME, Column("type", sort="type", render="enum:admin.enum.field_type."),
     Column("is_client_id", render="yesno"), Column("mask"), Column("options", render="count"), C_DESC),
    (NAME, T("type", "select", required=True, options=tuple(FIELD_TYPES), option_prefix="admin.enum.field_type.",
             default="string", nullable=False),
     T("phone_type", "select", options=tuple(PHONE_TYPES), option_prefix="admin.enum.phone_type."),
     T("mask", help="admin.help.mask"), T("is_client_id", "checkbox"),
     T("options", "lines", span=2, help="admin.help.options"), DESCRIPTION),
)

LISTS = Resource(
    "lists", "/api/lists", P.lists_read, P.lists_write, "nav.admin.lists",
    (ID, C_NAME, Column("contact_count", "admin.f.contact_count", render="text"),
     Column("fields", render="count"), Column("created_at", sort="created_at", render="datetime"), C_DESC),
    (NAME, T("crm_url", span=2, help="admin.help.crm_url", default=""), DESCRIPTION,
     T("fields", "rows", span=4, ordered=True, default=[], columns=(
         T("field_id", "ref", ref="fields", required=True, nullable=False, span=2),
         T("required", "checkbox"), T("in_card", "checkbox", default=True)))),
    detail="/admin/lists/{id}",
)

DNC = Resource(
    "dnc", "/api/dnc-lists", P.dnc_read, P.dnc_write, "nav.admin.dnc",
    (ID, C_NAME, Column("entries"), Column("is_global", render="yesno"),
     Column("created_at", sort="created_at", render="datetime"), C_DESC),
    (NAME, DESCRIPTION),
    detail="/admin/dnc/{id}",
)

CODES = Resource(
    "codes", "/api/completion-codes", P.codes_read, P.codes_write, "admin.tab.codes",
    (ID, C_NAME, Column("category", sort="category", render="enum:outcome."), Column("is_final", render="yesno"),
     Column("adds_to_dnc", render="yesno"), Column("hotkey"), Column("crm_status"),
     Column("is_system", render="yesno")),
    (NAME, T("category", "select", required=True, options=tuple(OUTCOMES), option_prefix="outcome.",
             default="answered", nullable=False),
     T("hotkey"), T("crm_status", span=2), T("is_final", "checkbox"), T("adds_to_dnc", "checkbox"), DESCRIPTION),
)

CODE_GROUPS = Resource(
    "code_groups", "/api/completion-code-groups", P.codes_read, P.codes_write, "admin.tab.code_groups",
    (ID, C_NAME, Column("code_ids", "admin.f.code_ids", render="refs:codes"), C_DESC),
    (NAME, DESCRIPTION, T("code_ids", "refs", ref="codes", span=4, default=[])),
)

STRATEGY_RETRIES = T("outcome_retries", "rows", span=4, default=[], help="admin.help.intervals", columns=(
    T("outcome", "select", required=True, options=tuple(RETRY_OUTCOMES), option_prefix="admin.enum.retry.",
      nullable=False, default="no_answer"),
    T("intervals", required=True, span=2), T("max_attempts", "number", required=True, min=1, default=3)))

STRATEGY_RULES = T("result_rules", "rows", span=4, default=[], help="admin.help.result_rules", columns=(
    T("completion_code_id", "ref", ref="codes", required=True, nullable=False, span=2),
    T("day_type", "select", required=True, options=("workday", "holiday"), option_prefix="admin.enum.day_type.",
      nullable=False, default="workday"),
    T("is_final", "checkbox"), T("retry_interval_s", "number", min=0),
    T("use_common_interval", "checkbox"),
    T("switch_to_phone_type", "select", options=tuple(PHONE_TYPES), option_prefix="admin.enum.phone_type."),
    T("attempts_on_previous_number", "number", min=1)))

STRATEGIES = Resource(
    "strategies", "/api/strategies", P.strategies_read, P.strategies_write, "nav.admin.strategies",
    (ID, C_NAME, Column("call_window_start"), Column("call_window_end"),
     Column("max_attempts_per_contact"), Column("result_rules", render="count"),
     Column("created_at", sort="created_at", render="datetime")),
    (NAME, T("phone_field_id", "ref", ref="fields", span=2),
     T("call_window_start", "time", default="09:00"), T("call_window_end", "time", default="21:00"),
     T("answer_timeout_s", "number", default=30, min=0, max=600), T("wrap_up_s", "number", default=60, min=0),
     T("common_retry_interval_s", "number", default=3600, min=0),
     T("pause_between_attempts_s", "number", default=0, min=0),
     T("max_attempts_per_contact", "number", min=1), T("max_attempts_per_day", "number", min=1),
     T("max_call_duration_s", "number", min=0), T("max_hold_s", "number", default=30, min=0),
     T("operator_wait_s", "number", default=2, min=0), T("auto_pause_after_missed", "number", min=1),
     T("min_operators", "number", min=0), T("max_operators", "number", min=0),
     T("skill_id", "ref", ref="skills"), T("default_completion_code_id", "ref", ref="codes"),
     T("description", "textarea", span=2), STRATEGY_RETRIES, STRATEGY_RULES),
)

SCHEDULE = T("schedule", "rows", span=4, default=[], help="admin.help.schedule", columns=(
    T("weekday", "select", required=True, options=tuple(WEEKDAYS), option_prefix="admin.weekday.", nullable=False,
      default="0"),
    T("start", "time", required=True, default="09:00"), T("end", "time", required=True, default="21:00")),
    presets=(("admin.preset.workdays", tuple({"weekday": d, "start": "09:00", "end": "21:00"} for d in range(5))),
             ("admin.preset.weekend", tuple({"weekday": d, "start": "10:00", "end": "18:00"} for d in (5, 6)))))

CAMPAIGNS = Resource(
    "campaigns", "/api/campaigns", P.campaigns_read, P.campaigns_write, "nav.admin.campaigns",
    (ID, C_NAME, Column("status", sort="status", render="status"),
     Column("dial_mode", sort="dial_mode", render="enum:admin.enum.dial_mode."), Column("priority", sort="priority"),
     Column("strategy_id", render="ref:strategies"), Column("list_ids", "admin.f.list_ids", render="refs:lists"),
     Column("status_changed_at", sort="status_changed_at", render="datetime")),
    (NAME, T("kind", "select", options=("finite", "infinite"), option_prefix="admin.enum.kind.", default="finite",
             nullable=False),
     T("priority", "number", default=50, min=1, max=100),
     T("dial_mode", "select", required=True, options=("preview", "progressive", "predictive", "fixed_lines"),
       option_prefix="admin.enum.dial_mode.", default="progressive", nullable=False),
     T("dial_params", "dialparams", depends="dial_mode", span=3, default={}),
     T("strategy_id", "ref", ref="strategies", required=True, nullable=False),
     T("completion_code_group_id", "ref", ref="code_groups", required=True, nullable=False),
     T("caller_id_group_id", "ref", ref="caller_id_groups"), T("dnc_list_id", "ref", ref="dnc_lists"),
     T("list_ids", "refs", ref="lists", required=True, span=2, default=[]),
     T("pool_ids", "refs", ref="pools", span=2, default=[]),
     T("time_zone", default="Europe/Moscow"), T("start_at", "datetime"),
     T("max_concurrent_calls", "number", min=1), T("hold_audio"),
     T("description", "textarea", span=2), T("call_script", "textarea", span=2, help="admin.help.call_script"),
     SCHEDULE),
    detail="/admin/campaigns/{id}", sort="-id",
)

HOLIDAYS = Resource(
    "holidays", "/api/holidays", P.holidays_read, P.holidays_write, "nav.admin.holidays",
    (ID, Column("day", sort="day", render="date"), C_NAME, Column("is_working_day", render="yesno")),
    (T("day", "date", required=True), T("name", span=2), T("is_working_day", "checkbox")),
    sort="day", label="day",
)

CALLBACKS = Resource(
    "callbacks", "/api/callbacks", P.callbacks_read, P.callbacks_write, "nav.admin.callbacks",
    (ID, Column("window_start", sort="window_start", render="datetime"), Column("window_end", render="datetime"),
     Column("number"), Column("campaign_id", render="ref:campaigns"), Column("contact_id"),
     Column("kind", render="enum:admin.enum.callback_kind."), Column("status", sort="status",
                                                                     render="enum:admin.enum.callback_status."),
     Column("operator_id", render="ref:operators"), Column("comment")),
    (T("campaign_id", "ref", ref="campaigns", required=True, nullable=False, span=2), T("contact_id", "number"),
     T("number"), T("window_start", "datetime", required=True), T("window_end", "datetime", required=True),
     T("kind", "select", options=("common", "personal"), option_prefix="admin.enum.callback_kind.",
       default="common", nullable=False),
     T("operator_id", "ref", ref="operators"),
     T("status", "select", options=("pending", "done", "cancelled"), option_prefix="admin.enum.callback_status.",
       default="pending", nullable=False),
     T("comment", "textarea", span=4)),
    sort="window_start", label="number",
    actions=(Action("postpone", "admin.action.postpone", (
        T("minutes", "number", min=1, help="admin.help.postpone"), T("until", "datetime"))),),
)

OPERATORS = Resource(
    "operators", "/api/operators", P.operators_read, P.operators_write, "nav.admin.operators",
    (ID, C_NAME, Column("extension", sort="extension"), Column("is_active", sort="is_active", render="yesno"),
     Column("auto_answer", render="yesno"), Column("user_id", render="ref:users"),
     Column("skills", render="count"), Column("pool_ids", "admin.f.pool_ids", render="refs:pools")),
    (NAME, T("extension"), T("user_id", "ref", ref="users"), T("is_active", "checkbox", default=True),
     T("auto_answer", "checkbox", default=True),
     T("record_override", "select", options=("inherit", "always", "never"), option_prefix="admin.enum.record_override.",
       default="inherit", nullable=False),
     T("description", "textarea", span=3),
     T("skills", "rows", span=2, default=[], columns=(
         T("skill_id", "ref", ref="skills", required=True, nullable=False, span=2),
         T("level", "number", required=True, min=1, max=100, default=50))),
     T("pool_ids", "refs", ref="pools", span=2, default=[])),
)

SKILLS = Resource(
    "skills", "/api/skills", P.skills_read, P.skills_write, "nav.admin.skills",
    (ID, C_NAME, C_DESC, Column("created_at", sort="created_at", render="datetime")),
    (NAME, DESCRIPTION),
)

POOLS = Resource(
    "pools", "/api/pools", P.pools_read, P.pools_write, "nav.admin.pools",
    (ID, C_NAME, Column("operator_ids", "admin.f.operator_ids", render="refs:operators"), C_DESC),
    (NAME, DESCRIPTION, T("operator_ids", "refs", ref="operators", span=4, default=[])),
)

TIME_ZONES = Resource(
    "time_zones", "/api/time-zones", P.timezones_read, P.timezones_write, "admin.tab.time_zones",
    (ID, C_NAME, Column("tz", sort="tz"), Column("utc_offset"), Column("phone_codes"), C_DESC),
    (NAME, T("tz", required=True, help="admin.help.tz"), DESCRIPTION),
)

PHONE_CODES = Resource(
    "phone_codes", "/api/phone-codes", P.timezones_read, P.timezones_write, "admin.tab.phone_codes",
    (ID, Column("prefix"), Column("range_from", sort="range_from"), Column("range_to"), Column("tz"),
     Column("time_zone_id", render="ref:time_zones"), Column("region", sort="region"),
     Column("carrier", sort="carrier"), Column("source", sort="source")),
    (T("prefix", help="admin.help.prefix"), T("range_from"), T("range_to"), T("tz"),
     T("time_zone_id", "ref", ref="time_zones"), T("region"), T("carrier", span=2), DESCRIPTION),
    sort="range_from", label="prefix",
)

CALLER_IDS = Resource(
    "caller_ids", "/api/caller-ids", P.callerids_read, P.callerids_write, "admin.tab.caller_ids",
    (ID, Column("number", sort="number"), Column("is_active", render="yesno"), C_DESC),
    (T("number", required=True), T("is_active", "checkbox", default=True), T("description", "textarea", span=2)),
    sort="number", label="number",
)

CALLER_ID_GROUPS = Resource(
    "caller_id_groups", "/api/caller-id-groups", P.callerids_read, P.callerids_write, "admin.tab.caller_id_groups",
    (ID, C_NAME, Column("caller_id_ids", "admin.f.caller_id_ids", render="refs:caller_ids"), C_DESC),
    (NAME, DESCRIPTION, T("caller_id_ids", "refs", ref="caller_ids", span=4, default=[])),
)

USERS = Resource(
    "users", "/api/users", P.users_read, P.users_write, "nav.admin.users",
    (ID, Column("login", sort="login"), Column("full_name", sort="full_name"), Column("email"),
     Column("role_ids", "admin.f.role_ids", render="refs:roles"), Column("is_active", render="yesno"),
     Column("last_login_at", sort="last_login_at", render="datetime")),
    (T("login", required=True), T("full_name", span=2), T("email"),
     T("password", "password", help="admin.help.password"),
     T("language", "select", options=("ru", "en"), option_prefix="admin.enum.lang.", default="ru", nullable=False),
     T("is_active", "checkbox", default=True),
     T("role_ids", "refs", ref="roles", span=4, default=[]), T("grants", "grants", span=4, default={})),
    sort="login", label="login",
)

ROLES = Resource(
    "roles", "/api/roles", P.roles_read, P.roles_write, "admin.tab.roles",
    (ID, Column("code", sort="code"), C_NAME, Column("is_system", render="yesno"),
     Column("permissions", render="count"), C_DESC),
    (T("code", required=True, create_only=True, help="admin.help.role_code"), NAME, DESCRIPTION),
)

TRUNKS = Resource(
    "trunks", "/api/trunks", P.telephony_read, P.telephony_write, "admin.tab.trunks",
    (ID, C_NAME, Column("state", "admin.f.trunk_state", render="trunk_state"), Column("host", sort="host"),
     Column("port"), Column("transport"), Column("is_active", render="yesno"), Column("position", sort="position"),
     Column("max_concurrent"), Column("calls_per_second")),
    (NAME, T("host", required=True), T("port", "number", default=5060, min=1, max=65535),
     T("transport", "select", options=("udp", "tcp", "tls"), default="udp", nullable=False),
     T("tls_verify", "checkbox", default=True),
     T("dns_lookup", "select", options=("a", "srv", "naptr"), option_prefix="admin.enum.dns_lookup.", default="a",
       nullable=False),
     T("username"), T("password", "password", help="admin.help.password"), T("realm"), T("from_domain"),
     T("caller_id"), T("dial_prefix", default=""), T("strip_plus", "checkbox", default=True),
     T("connect_flow", "select", options=("flow1", "delayed_offer"), option_prefix="admin.enum.connect_flow.",
       default="flow1", nullable=False),
     T("calls_per_second", "number", default=0, min=0, step="any"), T("max_concurrent", "number", default=0, min=0),
     T("options_interval_s", "number", default=30, min=0, step="any"),
     T("registration", "checkbox", default=False, label="admin.f.trunk_registration"),
     T("registration_expires_s", "number", default=300, min=30, max=86400),
     T("position", "number", default=0),
     T("is_active", "checkbox", default=True), T("description", "textarea", span=3)),
    sort="position",
)

DEVICES = Resource(
    "sip_devices", "/api/sip-devices", P.telephony_read, P.telephony_write, "admin.tab.sip_devices",
    (ID, Column("login", sort="login"), Column("registration", render="registration"),
     Column("operator_id", render="ref:operators"), Column("is_active", sort="is_active", render="yesno"),
     Column("auto_answer", render="yesno"), C_DESC),
    (T("login", required=True), T("password", "password", help="admin.help.password"),
     T("operator_id", "ref", ref="operators"), T("is_active", "checkbox", default=True),
     T("auto_answer", "checkbox", default=True), T("description", "textarea", span=3)),
    sort="login", label="login",
)

#: The generic pages (one or more resources as tabs). Special pages (roles, audit, one list, one campaign, one DNC
#: list) are routed in ``admin_pages`` with templates of their own.
PAGES: tuple[AdminPage, ...] = (
    AdminPage("admin.campaigns", "/admin/campaigns", P.campaigns_read, "nav.admin.campaigns", (CAMPAIGNS,)),
    AdminPage("admin.lists", "/admin/lists", P.lists_read, "nav.admin.lists", (LISTS,)),
    AdminPage("admin.fields", "/admin/fields", P.fields_read, "nav.admin.fields", (FIELDS,)),
    AdminPage("admin.dnc", "/admin/dnc", P.dnc_read, "nav.admin.dnc", (DNC,)),
    AdminPage("admin.strategies", "/admin/strategies", P.strategies_read, "nav.admin.strategies", (STRATEGIES,)),
    AdminPage("admin.codes", "/admin/codes", P.codes_read, "nav.admin.codes", (CODES, CODE_GROUPS)),
    AdminPage("admin.schedules", "/admin/holidays", P.holidays_read, "nav.admin.holidays", (HOLIDAYS,)),
    AdminPage("admin.callbacks", "/admin/callbacks", P.callbacks_read, "nav.admin.callbacks", (CALLBACKS,)),
    AdminPage("admin.operators", "/admin/operators", P.operators_read, "nav.admin.operators", (OPERATORS,)),
    AdminPage("admin.skills", "/admin/skills", P.skills_read, "nav.admin.skills", (SKILLS,)),
    AdminPage("admin.pools", "/admin/pools", P.pools_read, "nav.admin.pools", (POOLS,)),
    AdminPage("admin.timezones", "/admin/timezones", P.timezones_read, "nav.admin.timezones",
              (TIME_ZONES, PHONE_CODES)),
    AdminPage("admin.callerids", "/admin/caller-ids", P.callerids_read, "nav.admin.callerids",
              (CALLER_IDS, CALLER_ID_GROUPS)),
    AdminPage("admin.users", "/admin/users", P.users_read, "nav.admin.users", (USERS,)),
    AdminPage("admin.telephony", "/admin/telephony", P.telephony_read, "nav.admin.telephony", (TRUNKS, DEVICES)),
)

RESOURCES: dict[str, Resource] = {r.key: r for p in PAGES for r in p.resources} | {ROLES.key: ROLES}


def page_config(page: AdminPage, permissions: frozenset[P] | set[P]) -> dict[str, Any]:
    """What ``admin.js`` gets for a page: its resources the user may read, and the ``REFS`` catalogue."""
    return {"key": page.key, "resources": [r.to_json(permissions) for r in page.resources if r.read in permissions],
            "refs": REFS}
