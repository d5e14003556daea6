"""trunk registration

A trunk may register with its carrier (some accept calls only from registered accounts): ``registration`` and the
lifetime asked for, ``registration_expires_s``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('sip_trunks', sa.Column('registration', sa.Boolean(), server_default='false', nullable=False))
    op.add_column('sip_trunks', sa.Column('registration_expires_s', sa.Integer(), server_default='300', nullable=False))
    op.create_check_constraint(op.f('ck_sip_trunks_registration_expires'), 'sip_trunks',
                               'registration_expires_s BETWEEN 30 AND 86400')


def downgrade() -> None:
    op.drop_constraint(op.f('ck_sip_trunks_registration_expires'), 'sip_trunks', type_='check')
    op.drop_column('sip_trunks', 'registration_expires_s')
    op.drop_column('sip_trunks', 'registration')
