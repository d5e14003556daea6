"""attempts by number

The supervisor's call search finds every attempt of a number — finished ones too, manual calls to numbers that
are no contact's included — with one index probe, newest first.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 22:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_attempts_number', 'attempts', ['number', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_attempts_number', table_name='attempts')
