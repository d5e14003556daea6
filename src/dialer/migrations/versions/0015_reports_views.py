"""reports: users' saved views

Revision ID: 0015_reports
Revises: 0014_reports
Create Date: 2026-12-07 23:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0015_reports'
down_revision: str | None = '0014_reports'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'report_views',
        sa.Column('user_id', sa.BigInteger(), nullable=False),
        sa.Column('report', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('query', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('is_default', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE',
                                name=op.f('fk_report_views_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_report_views')),
        sa.UniqueConstraint('user_id', 'report', 'name', name='uq_report_views_user_report_name'),
    )
    op.create_index('uq_report_views_default', 'report_views', ['user_id', 'report'], unique=True,
                    postgresql_where=sa.text('is_default'))


def downgrade() -> None:
    op.drop_index('uq_report_views_default', table_name='report_views', postgresql_where=sa.text('is_default'))
    op.drop_table('report_views')
