"""one history again: transfers, the media plane and recordings, ClickHouse outbox, scheduled delivery

Merges the features developed side by side on revision 0016 (each brought its own migration, its permissions and
their grants; ``dialer.migrate`` upgrades to every head, so this revision only joins them).

Revision ID: 0018_merge
Revises: 0017_transfers, 0017_media, 0017_clickhouse, 0017_delivery
Create Date: 2026-12-08 02:30:00
"""

from collections.abc import Sequence

revision: str = "0018_merge"
down_revision: str | Sequence[str] | None = ("0017_transfers", "0017_media", "0017_clickhouse", "0017_delivery")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
