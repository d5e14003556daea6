"""The permission catalogue (47 permissions, one per action family) and the six roles of 001.

Every endpoint declares one permission from here. The catalogue is seeded by the migrations and
re-synchronised at start-up, so adding a permission is a code change plus a restart, while
assigning permissions to roles and users is a data change through the API.
"""

from __future__ import annotations

from enum import StrEnum


class P(StrEnum):
    # Contacts and their reference data
    fields_read = "fields.read"
    fields_write = "fields.write"
    lists_read = "lists.read"
    lists_write = "lists.write"
    contacts_read = "contacts.read"
    contacts_write = "contacts.write"
    contacts_delete = "contacts.delete"
    contacts_import = "contacts.import"
    contacts_export = "contacts.export"
    dnc_read = "dnc.read"
    dnc_write = "dnc.write"
    callbacks_read = "callbacks.read"
    callbacks_write = "callbacks.write"
    # Operators
    operators_read = "operators.read"
    operators_write = "operators.write"
    skills_read = "skills.read"
    skills_write = "skills.write"
    pools_read = "pools.read"
    pools_write = "pools.write"
    # Campaign configuration
    codes_read = "completion_codes.read"
    codes_write = "completion_codes.write"
    strategies_read = "strategies.read"
    strategies_write = "strategies.write"
    campaigns_read = "campaigns.read"
    campaigns_write = "campaigns.write"
    campaigns_control = "campaigns.control"
    selections_read = "selections.read"
    selections_write = "selections.write"
    holidays_read = "holidays.read"
    holidays_write = "holidays.write"
    # Reference books and telephony
    timezones_read = "timezones.read"
    timezones_write = "timezones.write"
    callerids_read = "caller_ids.read"
    callerids_write = "caller_ids.write"
    telephony_read = "telephony.read"
    telephony_write = "telephony.write"
    integrations_read = "integrations.read"
    integrations_write = "integrations.write"
    # Access and audit
    users_read = "users.read"
    users_write = "users.write"
    roles_read = "roles.read"
    roles_write = "roles.write"
    tokens_manage = "tokens.manage"
    audit_read = "audit.read"
    audit_export = "audit.export"
    # Work
    monitoring_read = "monitoring.read"
    operators_control = "operators.control"
    reports_read = "reports.read"
    reports_schedule = "reports.schedule"
    panel_use = "operator_panel.use"
    # Call recordings (issue #16 §1): every listen and download is in the audit log (003 §10.1)
    recordings_listen = "recordings.listen"
    recordings_download = "recordings.download"
    transfers_external = "transfers.external"


DESCRIPTIONS: dict[P, str] = {
    P.fields_read: "See contact fields",
    P.fields_write: "Create, change and delete contact fields",
    P.lists_read: "See contact lists",
    P.lists_write: "Create, change and delete contact lists and their fields",
    P.contacts_read: "See contacts",
    P.contacts_write: "Add and edit contacts",
    P.contacts_delete: "Delete contacts, in bulk or all of a list",
    P.contacts_import: "Import contacts and numbering registries from files",
    P.contacts_export: "Export contacts to CSV or XLSX",
    P.dnc_read: "See do-not-call lists and the blacklist",
    P.dnc_write: "Change do-not-call lists and the blacklist",
    P.callbacks_read: "See callbacks",
    P.callbacks_write: "Schedule, change and cancel callbacks",
    P.operators_read: "See operators",
    P.operators_write: "Create, change and delete operators and their skills",
    P.skills_read: "See skills",
    P.skills_write: "Create, change and delete skills",
    P.pools_read: "See operator pools",
    P.pools_write: "Create, change and delete operator pools and their members",
    P.codes_read: "See completion codes and groups",
    P.codes_write: "Create, change and delete completion codes and groups",
    P.strategies_read: "See strategies",
    P.strategies_write: "Create, change and delete strategies and their rules",
    P.campaigns_read: "See campaigns",
    P.campaigns_write: "Create, change and delete campaigns",
    P.campaigns_control: "Start, pause, resume and stop campaigns; acknowledge auto-stops",
    P.selections_read: "See selection rules",
    P.selections_write: "Create, change and delete selection rules",
    P.holidays_read: "See the holiday calendar",
    P.holidays_write: "Change the holiday calendar",
    P.timezones_read: "See time zones and phone codes",
    P.timezones_write: "Change time zones and phone codes, load the numbering registry",
    P.callerids_read: "See caller IDs and groups",
    P.callerids_write: "Change caller IDs and groups",
    P.telephony_read: "See trunks and SIP devices",
    P.telephony_write: "Change trunks and SIP devices",
    P.integrations_read: "See CRM connections, webhooks, the outbox and the integration log",
    P.integrations_write: "Change CRM connections, status mappings, webhooks and the integration API's addresses",
    P.users_read: "See users",
    P.users_write: "Create, change and deactivate users, grant them roles and permissions",
    P.roles_read: "See roles and the permission catalogue",
    P.roles_write: "Create roles and change their permissions",
    P.tokens_manage: "Create and revoke API tokens of one's own",
    P.audit_read: "Read the audit log",
    P.audit_export: "Export the audit log",
    P.monitoring_read: "Watch operators and campaigns live",
    P.operators_control: "Force an operator's status, release an operator",
    P.reports_read: "Read reports",
    P.reports_schedule: "Schedule reports sent by e-mail, send them now, see their deliveries",
    P.panel_use: "Work in the operator panel",
    P.recordings_listen: "Listen to call recordings (every listen is in the audit log)",
    P.recordings_download: "Download call recordings and create time-limited links to them for integrations",
    P.transfers_external: "Transfer a customer to an external number",
}

ALL = frozenset(P)
_READ = frozenset(p for p in P if p.value.endswith(".read"))

#: role code → (Russian name, English name, description, permissions)
ROLES: dict[str, tuple[str, str, str, frozenset[P]]] = {
    "admin": ("Администратор", "Administrator",
              "Full access: users, campaigns, equipment, reports, settings", ALL - {P.panel_use}),
    "supervisor": ("Супервайзер", "Supervisor",
                   "Monitoring of operators and campaigns, reports; can change statuses and pause campaigns",
                   _READ - {P.users_read, P.roles_read, P.audit_read, P.integrations_read}
                   | {P.campaigns_control, P.operators_control, P.monitoring_read, P.reports_read,
                      P.reports_schedule,
                      P.recordings_listen, P.recordings_download,
                      P.callbacks_write, P.tokens_manage, P.transfers_external}),
    "operator": ("Оператор", "Operator", "Own panel only: taking calls, wrap-up, manual dialling",
                 frozenset({P.panel_use, P.callbacks_read, P.callbacks_write})),
    "system_admin": ("Системный администратор", "System administrator",
                     "Service account with full rights (for the Dialer team)", ALL),
    "system_supervisor": ("Системный супервайзер", "System supervisor",
                          "Service account with supervisor rights", frozenset()),  # filled below
    "system_tester": ("Системный тестер", "System tester", "Read only, for audit", _READ),
}
ROLES["system_supervisor"] = (*ROLES["system_supervisor"][:3], ROLES["supervisor"][3])
