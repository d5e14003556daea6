"""system completion code for calls cut by an engine crash

A call the engine was working on when its process died is closed by the next engine's recovery. It counts as an
attempt and goes through the campaign's strategy like any other result, with this code of its own (category
``error``, not final), so reports can tell it apart and the retry rules decide when the contact is called again.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.get_bind().execute(sa.text(
        "INSERT INTO completion_codes (name, category, description, system_key, is_final, adds_to_dnc,"
        " created_at, updated_at) SELECT 'Прервано перезапуском', 'error',"
        " 'The call was cut when the engine stopped unexpectedly', 'engine_restarted', false, false, now(), now()"
        " WHERE NOT EXISTS (SELECT 1 FROM completion_codes WHERE system_key = 'engine_restarted')"))


def downgrade() -> None:
    op.get_bind().execute(sa.text(
        "UPDATE attempts SET completion_code_id = (SELECT id FROM completion_codes WHERE system_key = 'error')"
        " WHERE completion_code_id = (SELECT id FROM completion_codes WHERE system_key = 'engine_restarted')"))
    op.get_bind().execute(sa.text("DELETE FROM completion_codes WHERE system_key = 'engine_restarted'"))
