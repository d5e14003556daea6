"""drop contacts data gin index

The per-field expression indexes serve equality, ranges and sorting on every field; the GIN index
over the whole document cost imports about a third of their speed for no query that needs it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 02:41:22.025952
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index(op.f('ix_contacts_data_gin'), table_name='contacts', postgresql_ops={'data': 'jsonb_path_ops'}, postgresql_using='gin')


def downgrade() -> None:
    op.create_index(op.f('ix_contacts_data_gin'), 'contacts', ['data'], unique=False, postgresql_ops={'data': 'jsonb_path_ops'}, postgresql_using='gin')
