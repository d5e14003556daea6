"""transfers: the ``call_transfers`` table, the permission ``transfers.external`` and the system code
``transfer_callback`` (issue #12 §2)

* ``call_transfers``: one row per transfer of an attempt's customer — kind (operator, pool, skill, external,
  attended, rescue), who ordered it (panel, supervisor, phone, engine), from and to whom, when, and its result.
* ``transfers.external``: sending a customer to a number outside the call centre through the trunk (an operator
  needs it besides the panel; administrators and supervisors get it, operators when an administrator grants it).
* ``transfer_callback`` (category ``abandoned``, not final): a transferred or rescued customer nobody took within the
  limit heard the message and got a callback, as an inbound caller does.

Revision ID: 0017_transfers
Revises: 0016_merge
Create Date: 2026-12-08 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_transfers"
down_revision: str | Sequence[str] | None = "0016_merge"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PERMISSION = "transfers.external"
_DESCRIPTION = "Transfer a customer to an external number"


def upgrade() -> None:
    op.create_table(
        "call_transfers",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("attempt_id", sa.BigInteger(), nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("from_operator_id", sa.BigInteger(), nullable=True),
        sa.Column("to_operator_id", sa.BigInteger(), nullable=True),
        sa.Column("to_pool_id", sa.BigInteger(), nullable=True),
        sa.Column("to_skill_id", sa.BigInteger(), nullable=True),
        sa.Column("to_number", sa.String(20), nullable=True),
        sa.Column("requested_by", sa.BigInteger(), nullable=True),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.String(16), server_default="pending", nullable=False),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.CheckConstraint("kind IN ('operator', 'pool', 'skill', 'external', 'attended', 'rescue')",
                           name=op.f("ck_call_transfers_kind")),
        sa.CheckConstraint("source IN ('panel', 'supervisor', 'phone', 'engine')",
                           name=op.f("ck_call_transfers_source")),
        sa.CheckConstraint("result IN ('pending', 'connected', 'failed', 'cancelled', 'refused', 'abandoned', "
                           "'callback')", name=op.f("ck_call_transfers_result")),
        sa.ForeignKeyConstraint(["attempt_id"], ["attempts.id"], name=op.f("fk_call_transfers_attempt_id_attempts"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name=op.f("fk_call_transfers_campaign_id_campaigns"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["from_operator_id"], ["operators.id"],
                                name=op.f("fk_call_transfers_from_operator_id_operators"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["to_operator_id"], ["operators.id"],
                                name=op.f("fk_call_transfers_to_operator_id_operators"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["to_pool_id"], ["operator_pools.id"],
                                name=op.f("fk_call_transfers_to_pool_id_operator_pools"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["to_skill_id"], ["skills.id"], name=op.f("fk_call_transfers_to_skill_id_skills"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["requested_by"], ["users.id"], name=op.f("fk_call_transfers_requested_by_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_transfers")),
    )
    op.create_index("ix_call_transfers_attempt", "call_transfers", ["attempt_id"])
    op.create_index("ix_call_transfers_requested", "call_transfers", ["requested_at"])
    bind = op.get_bind()
    bind.execute(sa.text("INSERT INTO permissions (code, description) VALUES (:code, :description)"
                         " ON CONFLICT (code) DO NOTHING"), {"code": _PERMISSION, "description": _DESCRIPTION})
    bind.execute(sa.text("INSERT INTO role_permissions (role_id, permission) SELECT id, :code FROM roles"
                         " WHERE code IN ('admin', 'system_admin', 'supervisor', 'system_supervisor')"
                         " ON CONFLICT DO NOTHING"), {"code": _PERMISSION})
    bind.execute(sa.text(
        "INSERT INTO completion_codes (name, category, description, system_key, is_final, adds_to_dnc,"
        " created_at, updated_at) SELECT 'Перевод: перезвоним', 'abandoned',"
        " 'A transferred or rescued customer nobody could take in time: a message was played and a callback booked',"
        " 'transfer_callback', false, false, now(), now()"
        " WHERE NOT EXISTS (SELECT 1 FROM completion_codes WHERE system_key = 'transfer_callback')"))


def downgrade() -> None:
    bind = op.get_bind()
    bind.execute(sa.text(
        "UPDATE attempts SET completion_code_id = (SELECT id FROM completion_codes WHERE system_key = 'abandoned')"
        " WHERE completion_code_id = (SELECT id FROM completion_codes WHERE system_key = 'transfer_callback')"))
    bind.execute(sa.text("DELETE FROM completion_codes WHERE system_key = 'transfer_callback'"))
    bind.execute(sa.text("DELETE FROM permissions WHERE code = :code"), {"code": _PERMISSION})
    op.drop_index("ix_call_transfers_requested", table_name="call_transfers")
    op.drop_index("ix_call_transfers_attempt", table_name="call_transfers")
    op.drop_table("call_transfers")
