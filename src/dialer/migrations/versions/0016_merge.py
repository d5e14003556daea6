"""one history again: CRM, SIP, roles, inbound calls and reports; integration permissions; "Чёрный список"

Merges the features developed side by side on revision 0011 (each added its own migrations; ``dialer.migrate``
upgrades to every head). Also what the merged code needs of databases made before it:

* the new permissions ``integrations.read`` and ``integrations.write`` (CRM connections, webhooks, the outbox) for
  the roles that hold every permission (``admin``, ``system_admin``), as migration 0001 would give them today;
* the global blacklist's seeded name with "ё", as Russians write it ("Чёрный список"), unless someone renamed it.

Revision ID: 0016_merge
Revises: 0012_crm, 0012_sip, 0015_inbound, 0015_reports
Create Date: 2026-12-08 00:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_merge"
down_revision: str | Sequence[str] | None = ("0012_crm", "0012_sip", "0015_inbound", "0015_reports")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PERMISSIONS = {
    "integrations.read": "See CRM connections, webhooks, the outbox and the integration log",
    "integrations.write": "Change CRM connections, status mappings, webhooks and the integration API's addresses",
}


def upgrade() -> None:
    bind = op.get_bind()
    for code, description in _PERMISSIONS.items():
        bind.execute(sa.text("INSERT INTO permissions (code, description) VALUES (:code, :description)"
                             " ON CONFLICT (code) DO NOTHING"), {"code": code, "description": description})
        bind.execute(sa.text("INSERT INTO role_permissions (role_id, permission) SELECT id, :code FROM roles"
                             " WHERE code IN ('admin', 'system_admin') ON CONFLICT DO NOTHING"), {"code": code})
    op.execute("UPDATE dnc_lists SET name = 'Чёрный список' WHERE name = 'Черный список' AND is_global")


def downgrade() -> None:
    op.execute("UPDATE dnc_lists SET name = 'Черный список' WHERE name = 'Чёрный список' AND is_global")
    op.execute("DELETE FROM permissions WHERE code IN ('integrations.read', 'integrations.write')")
