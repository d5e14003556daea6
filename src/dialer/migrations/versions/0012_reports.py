"""reports: successful completion codes and the hourly rollups

Revision ID: 0012_reports
Revises: 0011
Create Date: 2026-12-07 22:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012_reports'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'report_successful_codes',
        sa.Column('code_id', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['code_id'], ['completion_codes.id'], ondelete='CASCADE',
                                name=op.f('fk_report_successful_codes_code_id_completion_codes')),
        sa.PrimaryKeyConstraint('code_id', name=op.f('pk_report_successful_codes')),
    )
    op.create_table(
        'report_attempt_hours',
        sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
        sa.Column('campaign_id', sa.BigInteger(), nullable=False),
        sa.Column('list_id', sa.BigInteger(), nullable=False),
        sa.Column('operator_id', sa.BigInteger(), nullable=False),
        sa.Column('code_id', sa.BigInteger(), nullable=False),
        sa.Column('outcome', sa.String(length=32), nullable=False),
        sa.Column('attempts', sa.BigInteger(), nullable=False),
        sa.Column('handled', sa.BigInteger(), nullable=False),
        sa.Column('talk_ms', sa.BigInteger(), nullable=False),
        sa.Column('wrap_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('hour', 'campaign_id', 'list_id', 'operator_id', 'code_id', 'outcome',
                                name=op.f('pk_report_attempt_hours')),
    )
    op.create_table(
        'report_state_hours',
        sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
        sa.Column('operator_id', sa.BigInteger(), nullable=False),
        sa.Column('state', sa.String(length=32), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('ms', sa.BigInteger(), nullable=False),
        sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('hour', 'operator_id', 'state', 'reason', name=op.f('pk_report_state_hours')),
    )
    op.create_table(
        'report_rollup_marks',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('sealed_until', sa.DateTime(timezone=True),
                  server_default=sa.text("'1970-01-01 00:00:00+00'"), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_report_rollup_marks')),
    )


def downgrade() -> None:
    op.drop_table('report_rollup_marks')
    op.drop_table('report_state_hours')
    op.drop_table('report_attempt_hours')
    op.drop_table('report_successful_codes')
