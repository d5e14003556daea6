"""reports: the ClickHouse copy's initial load and pending truncation kept on its status (issue #14 review)

* ``load_until_id``: the newest outbox id of the rows enqueued when the copy was (re)started from scratch; reports
  read PostgreSQL until every outbox row up to it is sent (then it is cleared and ``loaded_at`` set). Right after
  the copy is turned on the lag looks fresh while ClickHouse holds only part of the data.
* ``needs_truncate``: set with the triggers in the same transaction, cleared once ClickHouse's tables are emptied;
  a restart after a failed truncation truncates again (rows deleted while the copy was off would otherwise stay).

Revision ID: 0020_clickhouse_load
Revises: 0017_clickhouse
Create Date: 2026-12-08 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_clickhouse_load"
down_revision: str | Sequence[str] | None = "0017_clickhouse"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("clickhouse_copy_status", sa.Column("load_until_id", sa.BigInteger(), nullable=True))
    op.add_column("clickhouse_copy_status", sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("clickhouse_copy_status",
                  sa.Column("needs_truncate", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    op.drop_column("clickhouse_copy_status", "needs_truncate")
    op.drop_column("clickhouse_copy_status", "loaded_at")
    op.drop_column("clickhouse_copy_status", "load_until_id")
