"""engine commands and run stats

Operator and supervisor commands reach the engine, which may run in another process, through the
``engine_commands`` table (plus a NOTIFY for speed); each engine heartbeat stores what the monitoring
API shows about the engine itself in ``engine_runs.stats``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('engine_commands',
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('operator_id', sa.BigInteger(), nullable=True),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('result', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_engine_commands_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_engine_commands_operator_id_operators'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_engine_commands'))
    )
    op.create_index('ix_engine_commands_pending', 'engine_commands', ['id'], unique=False, postgresql_where=sa.text('processed_at IS NULL'))
    op.add_column('engine_runs', sa.Column('stats', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False))


def downgrade() -> None:
    op.drop_column('engine_runs', 'stats')
    op.drop_index('ix_engine_commands_pending', table_name='engine_commands', postgresql_where=sa.text('processed_at IS NULL'))
    op.drop_table('engine_commands')
