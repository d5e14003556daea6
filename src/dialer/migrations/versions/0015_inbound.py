"""inbound calls: the attempts' direction and the system code of an inbound caller called back

Customers call the campaigns' caller IDs back (issue #12 §3): such a call is an attempt like an outbound one, with
``direction`` 'inbound' (every existing and every outbound attempt is 'outbound'). An inbound caller nobody was free
to take (or who called outside the campaign's hours) hears a message, gets a callback booked and is hung up: the
attempt ends with the system code ``inbound_callback`` (category ``abandoned``, not final), so reports can tell it
apart from an outbound call nobody took.

Revision ID: 0015_inbound
Revises: 0012_roles
Create Date: 2026-12-07 23:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_inbound"
down_revision: str | None = "0012_roles"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("attempts", sa.Column("direction", sa.String(16), nullable=False, server_default="outbound"))
    op.create_check_constraint(op.f("ck_attempts_direction"), "attempts", "direction IN ('outbound', 'inbound')")
    op.get_bind().execute(sa.text(
        "INSERT INTO completion_codes (name, category, description, system_key, is_final, adds_to_dnc,"
        " created_at, updated_at) SELECT 'Входящий: перезвоним', 'abandoned',"
        " 'An inbound caller nobody could take (or outside the hours): a message was played and a callback booked',"
        " 'inbound_callback', false, false, now(), now()"
        " WHERE NOT EXISTS (SELECT 1 FROM completion_codes WHERE system_key = 'inbound_callback')"))


def downgrade() -> None:
    op.get_bind().execute(sa.text(
        "UPDATE attempts SET completion_code_id = (SELECT id FROM completion_codes WHERE system_key = 'abandoned')"
        " WHERE completion_code_id = (SELECT id FROM completion_codes WHERE system_key = 'inbound_callback')"))
    op.get_bind().execute(sa.text("DELETE FROM completion_codes WHERE system_key = 'inbound_callback'"))
    op.drop_constraint(op.f("ck_attempts_direction"), "attempts", type_="check")
    op.drop_column("attempts", "direction")
