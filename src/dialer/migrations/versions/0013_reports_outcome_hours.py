"""reports: the hourly rollup of attempts without the operator

Revision ID: 0013_reports
Revises: 0012_reports
Create Date: 2026-12-07 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013_reports'
down_revision: str | None = '0012_reports'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'report_outcome_hours',
        sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
        sa.Column('campaign_id', sa.BigInteger(), nullable=False),
        sa.Column('list_id', sa.BigInteger(), nullable=False),
        sa.Column('code_id', sa.BigInteger(), nullable=False),
        sa.Column('outcome', sa.String(length=32), nullable=False),
        sa.Column('attempts', sa.BigInteger(), nullable=False),
        sa.Column('handled', sa.BigInteger(), nullable=False),
        sa.Column('talk_ms', sa.BigInteger(), nullable=False),
        sa.Column('wrap_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('hour', 'campaign_id', 'list_id', 'code_id', 'outcome',
                                name=op.f('pk_report_outcome_hours')),
    )
    # Rebuilt from the finer rollup at the next refresh: everything sealed so far is redone once.
    op.execute("DELETE FROM report_rollup_marks")


def downgrade() -> None:
    op.drop_table('report_outcome_hours')
