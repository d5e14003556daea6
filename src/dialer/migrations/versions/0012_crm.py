"""CRM connectors, CRM records, webhook subscriptions, the delivery outbox and its request log

Revision ID: 0012_crm
Revises: 0011
Create Date: 2026-12-07 22:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012_crm"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column]:
    return [sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)]


def upgrade() -> None:
    op.create_table(
        "crm_connectors",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("settings", postgresql.JSONB(), nullable=False),
        sa.Column("token", sa.String(500), nullable=False),
        sa.Column("list_id", sa.BigInteger(), nullable=True),
        sa.Column("read_enabled", sa.Boolean(), nullable=False),
        sa.Column("write_enabled", sa.Boolean(), nullable=False),
        sa.Column("poll_interval_s", sa.Integer(), nullable=False),
        sa.Column("status_map", postgresql.JSONB(), nullable=False),
        sa.Column("result_map", postgresql.JSONB(), nullable=False),
        sa.Column("max_tries", sa.Integer(), nullable=False),
        sa.Column("cursor", postgresql.JSONB(), nullable=False),
        sa.Column("last_read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.CheckConstraint("kind IN ('fake', 'generic_http', 'leadvertex', 'bitrix24')",
                           name=op.f("ck_crm_connectors_kind")),
        sa.CheckConstraint("poll_interval_s BETWEEN 5 AND 86400", name=op.f("ck_crm_connectors_poll_interval")),
        sa.CheckConstraint("max_tries BETWEEN 1 AND 100", name=op.f("ck_crm_connectors_max_tries")),
        sa.ForeignKeyConstraint(["list_id"], ["contact_lists.id"], ondelete="SET NULL",
                                name=op.f("fk_crm_connectors_list_id_contact_lists")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_connectors")),
        sa.UniqueConstraint("name", name=op.f("uq_crm_connectors_name")),
    )
    op.create_table(
        "crm_records",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("connector_id", sa.BigInteger(), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=True),
        sa.Column("crm_status", sa.String(200), nullable=False),
        sa.Column("phone", sa.String(64), nullable=False),
        sa.Column("crm_updated", sa.String(64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(["connector_id"], ["crm_connectors.id"], ondelete="CASCADE",
                                name=op.f("fk_crm_records_connector_id_crm_connectors")),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="SET NULL",
                                name=op.f("fk_crm_records_contact_id_contacts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_records")),
        sa.UniqueConstraint("connector_id", "external_id", name="uq_crm_records_connector_external"),
    )
    op.create_index(op.f("ix_crm_records_contact_id"), "crm_records", ["contact_id"])
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("client_id", sa.String(200), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("events", postgresql.ARRAY(sa.String(64)), nullable=False),
        sa.Column("max_tries", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.CheckConstraint("max_tries BETWEEN 1 AND 100", name=op.f("ck_webhook_subscriptions_max_tries")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscriptions")),
        sa.UniqueConstraint("name", name=op.f("uq_webhook_subscriptions_name")),
    )
    op.create_table(
        "integration_outbox",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("connector_id", sa.BigInteger(), nullable=True),
        sa.Column("subscription_id", sa.BigInteger(), nullable=True),
        sa.Column("record_key", sa.String(200), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'dead')", name=op.f("ck_integration_outbox_status")),
        sa.CheckConstraint("(connector_id IS NULL) <> (subscription_id IS NULL)",
                           name=op.f("ck_integration_outbox_one_target")),
        sa.ForeignKeyConstraint(["connector_id"], ["crm_connectors.id"], ondelete="CASCADE",
                                name=op.f("fk_integration_outbox_connector_id_crm_connectors")),
        sa.ForeignKeyConstraint(["subscription_id"], ["webhook_subscriptions.id"], ondelete="CASCADE",
                                name=op.f("fk_integration_outbox_subscription_id_webhook_subscriptions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_outbox")),
    )
    op.create_index("ix_integration_outbox_open", "integration_outbox",
                    ["connector_id", "subscription_id", "record_key", "id"],
                    postgresql_where=sa.text("status <> 'delivered'"))
    op.create_table(
        "integration_requests",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("target", sa.String(250), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_requests")),
    )
    op.create_index(op.f("ix_integration_requests_at"), "integration_requests", ["at"])
    op.create_table(
        "integration_allow",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("cidr", sa.String(64), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_allow")),
        sa.UniqueConstraint("cidr", name=op.f("uq_integration_allow_cidr")),
    )


def downgrade() -> None:
    op.drop_table("integration_allow")
    op.drop_index(op.f("ix_integration_requests_at"), table_name="integration_requests")
    op.drop_table("integration_requests")
    op.drop_index("ix_integration_outbox_open", table_name="integration_outbox")
    op.drop_table("integration_outbox")
    op.drop_table("webhook_subscriptions")
    op.drop_index(op.f("ix_crm_records_contact_id"), table_name="crm_records")
    op.drop_table("crm_records")
    op.drop_table("crm_connectors")
