"""reports: day rollups of operators' attempts and states in the centre's time zone

Revision ID: 0014_reports
Revises: 0013_reports
Create Date: 2026-12-07 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014_reports'
down_revision: str | None = '0013_reports'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column('report_rollup_marks', 'name', type_=sa.String(length=80), existing_nullable=False)
    op.create_table(
        'report_operator_days',
        sa.Column('day', sa.DateTime(timezone=True), nullable=False),
        sa.Column('operator_id', sa.BigInteger(), nullable=False),
        sa.Column('campaign_id', sa.BigInteger(), nullable=False),
        sa.Column('code_id', sa.BigInteger(), nullable=False),
        sa.Column('outcome', sa.String(length=32), nullable=False),
        sa.Column('attempts', sa.BigInteger(), nullable=False),
        sa.Column('handled', sa.BigInteger(), nullable=False),
        sa.Column('talk_ms', sa.BigInteger(), nullable=False),
        sa.Column('wrap_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('day', 'operator_id', 'campaign_id', 'code_id', 'outcome',
                                name=op.f('pk_report_operator_days')),
    )
    op.create_table(
        'report_state_days',
        sa.Column('day', sa.DateTime(timezone=True), nullable=False),
        sa.Column('operator_id', sa.BigInteger(), nullable=False),
        sa.Column('state', sa.String(length=32), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('ms', sa.BigInteger(), nullable=False),
        sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('day', 'operator_id', 'state', 'reason', name=op.f('pk_report_state_days')),
    )


def downgrade() -> None:
    op.drop_table('report_state_days')
    op.drop_table('report_operator_days')
    op.alter_column('report_rollup_marks', 'name', type_=sa.String(length=32), existing_nullable=False)
