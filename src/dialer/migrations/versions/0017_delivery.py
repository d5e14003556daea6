"""reports sent by e-mail on a schedule: schedules, their runs, the permission ``reports.schedule``

The permission goes to the roles that read reports and supervise or administer (admin, supervisor, system_admin,
system_supervisor), as migration 0001 gives it on a new database.

Revision ID: 0017_delivery
Revises: 0016_merge
Create Date: 2026-12-08 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017_delivery"
down_revision: str | Sequence[str] | None = "0016_merge"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PERMISSION = "reports.schedule"
DESCRIPTION = "Schedule reports sent by e-mail, send them now, see their deliveries"
ROLES = ("admin", "supervisor", "system_admin", "system_supervisor")


def upgrade() -> None:
    op.create_table(
        "report_schedules",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("report", sa.String(length=32), nullable=False),
        sa.Column("view_id", sa.BigInteger(), nullable=True),
        sa.Column("filters", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("frequency", sa.String(length=8), nullable=False),
        sa.Column("at_time", sa.Time(), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=True),
        sa.Column("month_day", sa.SmallInteger(), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("recipients", postgresql.ARRAY(sa.String(length=254)), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("format IN ('pdf', 'xlsx', 'csv')", name=op.f("ck_report_schedules_format")),
        sa.CheckConstraint("period IN ('today', 'yesterday', 'last_week', 'last_month')",
                           name=op.f("ck_report_schedules_period")),
        sa.CheckConstraint("frequency IN ('daily', 'weekly', 'monthly')", name=op.f("ck_report_schedules_frequency")),
        sa.CheckConstraint("(frequency = 'weekly') = (weekday IS NOT NULL) "
                           "AND (weekday IS NULL OR weekday BETWEEN 0 AND 6)", name=op.f("ck_report_schedules_weekday")),
        sa.CheckConstraint("(frequency = 'monthly') = (month_day IS NOT NULL) "
                           "AND (month_day IS NULL OR month_day BETWEEN 1 AND 31)",
                           name=op.f("ck_report_schedules_month_day")),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_report_schedules_created_by_users")),
        sa.ForeignKeyConstraint(["view_id"], ["report_views.id"], ondelete="SET NULL",
                                name=op.f("fk_report_schedules_view_id_report_views")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_schedules")),
    )
    op.create_index("ix_report_schedules_due", "report_schedules", ["next_run_at"], unique=False,
                    postgresql_where=sa.text("is_active"))
    op.create_table(
        "report_runs",
        sa.Column("schedule_id", sa.BigInteger(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("requested_by", sa.BigInteger(), nullable=True),
        sa.Column("period_from", sa.Date(), nullable=False),
        sa.Column("period_to", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.String(length=100), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.CheckConstraint("status IN ('pending', 'sending', 'retrying', 'sent', 'failed')",
                           name=op.f("ck_report_runs_status")),
        sa.ForeignKeyConstraint(["requested_by"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_report_runs_requested_by_users")),
        sa.ForeignKeyConstraint(["schedule_id"], ["report_schedules.id"], ondelete="CASCADE",
                                name=op.f("fk_report_runs_schedule_id_report_schedules")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_runs")),
    )
    op.create_index("uq_report_runs_due", "report_runs", ["schedule_id", "due_at"], unique=True,
                    postgresql_where=sa.text("NOT manual"))
    op.create_index("ix_report_runs_schedule", "report_runs", ["schedule_id", "id"], unique=False)
    op.create_index("ix_report_runs_open", "report_runs", ["next_attempt_at"], unique=False,
                    postgresql_where=sa.text("status IN ('pending', 'sending', 'retrying')"))
    bind = op.get_bind()
    bind.execute(sa.text("INSERT INTO permissions (code, description) VALUES (:code, :description)"
                         " ON CONFLICT (code) DO NOTHING"), {"code": PERMISSION, "description": DESCRIPTION})
    bind.execute(sa.text("INSERT INTO role_permissions (role_id, permission) SELECT r.id, :code FROM roles r"
                         " WHERE r.code = ANY(:roles) AND EXISTS (SELECT 1 FROM role_permissions p"
                         " WHERE p.role_id = r.id AND p.permission = 'reports.read') ON CONFLICT DO NOTHING"),
                 {"code": PERMISSION, "roles": list(ROLES)})


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM permissions WHERE code = 'reports.schedule'"))
    op.drop_index("ix_report_runs_open", table_name="report_runs",
                  postgresql_where=sa.text("status IN ('pending', 'sending', 'retrying')"))
    op.drop_index("ix_report_runs_schedule", table_name="report_runs")
    op.drop_index("uq_report_runs_due", table_name="report_runs", postgresql_where=sa.text("NOT manual"))
    op.drop_table("report_runs")
    op.drop_index("ix_report_schedules_due", table_name="report_schedules", postgresql_where=sa.text("is_active"))
    op.drop_table("report_schedules")
