"""engine limits: the longest a live customer waits for an operator; schedule periods over midnight

``strategies.max_hold_s``: a customer who answered and got no operator is hung up ("no operator") and recorded as
abandoned after this many seconds from the answer (NULL: he waits until he hangs up himself).
``campaign_schedules``: the check ``start < end`` goes: a period may end at midnight (00:00), run over midnight
(end before start) or last 24 hours (end equal to start), as the engine reads them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('strategies', sa.Column('max_hold_s', sa.Integer(), nullable=True, server_default=sa.text('30')))
    op.create_check_constraint(op.f('ck_strategies_max_hold_positive'), 'strategies',
                               'max_hold_s IS NULL OR max_hold_s > 0')
    op.drop_constraint(op.f('ck_campaign_schedules_start_before_end'), 'campaign_schedules', type_='check')


def downgrade() -> None:
    # periods the old rule refuses cannot be kept: they are dropped (an end of 00:00 becomes 23:59)
    op.execute("UPDATE campaign_schedules SET \"end\" = '23:59' WHERE \"end\" = '00:00' AND start > '00:00'")
    op.execute('DELETE FROM campaign_schedules WHERE start >= "end"')
    op.create_check_constraint(op.f('ck_campaign_schedules_start_before_end'), 'campaign_schedules',
                               'start < "end"')
    op.drop_constraint(op.f('ck_strategies_max_hold_positive'), 'strategies', type_='check')
    op.drop_column('strategies', 'max_hold_s')
