"""reports: the direction of calls in the rollups; the ClickHouse copy's outbox and status

* ``direction`` ('outbound' | 'inbound') joins the keys of ``report_attempt_hours``, ``report_outcome_hours`` and
  ``report_operator_days`` (issue #12 §3: reports filter and split by it; the abandon ledger counts outbound calls
  only). The rollups are emptied and their marks forgotten: the first report (or ``dialer reports rollup``) builds
  them again from the attempts, with the direction.
* ``clickhouse_outbox``: a row per change of a finished attempt or an operator's state period, written by row
  triggers in the changing transaction (``dialer.reports.clickhouse.copier`` installs the triggers when the copy is
  enabled, ``DIALER_CLICKHOUSE`` not ``off``, and removes them when it is not), read and deleted by the copier
  once ClickHouse holds the rows. ``clickhouse_copy_status`` keeps what the administrator sees: rows copied, the last
  copy, the last error.

Revision ID: 0017_clickhouse
Revises: 0016_merge
Create Date: 2026-12-08 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_clickhouse"
down_revision: str | Sequence[str] | None = "0016_merge"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEYS = {
    "report_attempt_hours": ("hour", "campaign_id", "list_id", "operator_id", "code_id", "outcome"),
    "report_outcome_hours": ("hour", "campaign_id", "list_id", "code_id", "outcome"),
    "report_operator_days": ("day", "operator_id", "campaign_id", "code_id", "outcome"),
}

# The trigger functions; the triggers themselves come and go with the setting (copier.install_triggers).
_FUNCTIONS = ("""
CREATE FUNCTION clickhouse_outbox_attempt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO clickhouse_outbox (source, row_id, at) VALUES ('a', OLD.id, OLD.queued_at);
        RETURN OLD;
    END IF;
    INSERT INTO clickhouse_outbox (source, row_id, at) VALUES ('a', NEW.id, NEW.queued_at);
    RETURN NEW;
END $$""", """
CREATE FUNCTION clickhouse_outbox_period() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO clickhouse_outbox (source, row_id, at) VALUES ('p', OLD.id, OLD.started_at);
        RETURN OLD;
    END IF;
    INSERT INTO clickhouse_outbox (source, row_id, at) VALUES ('p', NEW.id, NEW.started_at);
    RETURN NEW;
END $$""")


def upgrade() -> None:
    for table in _KEYS:
        op.execute(f"DELETE FROM {table}")
    op.execute("DELETE FROM report_rollup_marks")
    for table, keys in _KEYS.items():
        op.add_column(table, sa.Column("direction", sa.String(16), nullable=False, server_default="outbound"))
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.create_primary_key(f"pk_{table}", table, [*keys, "direction"])
    op.create_table(
        "clickhouse_outbox",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(1), nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("source IN ('a', 'p')", name=op.f("ck_clickhouse_outbox_source")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clickhouse_outbox")),
    )
    op.create_table(
        "clickhouse_copy_status",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("copied_rows", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("copied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), server_default="", nullable=False),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_clickhouse_copy_status_single")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clickhouse_copy_status")),
    )
    for function in _FUNCTIONS:
        op.execute(function)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS clickhouse_outbox_attempt ON attempts")
    op.execute("DROP TRIGGER IF EXISTS clickhouse_outbox_attempt_deleted ON attempts")
    op.execute("DROP TRIGGER IF EXISTS clickhouse_outbox_period ON operator_state_log")
    op.execute("DROP FUNCTION IF EXISTS clickhouse_outbox_attempt()")
    op.execute("DROP FUNCTION IF EXISTS clickhouse_outbox_period()")
    op.drop_table("clickhouse_copy_status")
    op.drop_table("clickhouse_outbox")
    for table in _KEYS:
        op.execute(f"DELETE FROM {table}")
    op.execute("DELETE FROM report_rollup_marks")
    for table, keys in _KEYS.items():
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.create_primary_key(f"pk_{table}", table, list(keys))
        op.drop_column(table, "direction")
