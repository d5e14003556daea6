"""one history again: recordings in parts (0019) and the ClickHouse copy's initial load (0020)

Revision ID: 0021_merge
Revises: 0019_recording_parts, 0020_clickhouse_load
Create Date: 2026-12-08 03:25:00
"""

from collections.abc import Sequence

revision: str = "0021_merge"
down_revision: str | Sequence[str] | None = ("0019_recording_parts", "0020_clickhouse_load")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
