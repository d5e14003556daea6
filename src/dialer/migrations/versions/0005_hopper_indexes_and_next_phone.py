"""hopper indexes and next phone

The engine's hopper takes due contacts of a list in timer order (``ix_contacts_due``) and phones whose
zones are all open now (GIN on ``contact_phones.timezones``); a strategy's "switch to another phone type"
is remembered in ``contacts.next_phone_id``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 03:36:13.174464
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_contact_phones_timezones', 'contact_phones', ['timezones'], unique=False, postgresql_using='gin')
    op.add_column('contacts', sa.Column('next_phone_id', sa.BigInteger(), nullable=True))
    op.create_foreign_key(op.f('fk_contacts_next_phone_id_contact_phones'), 'contacts', 'contact_phones', ['next_phone_id'], ['id'], ondelete='SET NULL', use_alter=True)
    op.create_index('ix_contacts_next_phone', 'contacts', ['next_phone_id'], unique=False,
                    postgresql_where=sa.text('next_phone_id IS NOT NULL'))
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_contacts_due ON contacts "
        "(list_id, (COALESCE(next_call_at, '-infinity'::timestamptz)), id) WHERE status <> 'done'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_contacts_due")
    op.drop_index('ix_contacts_next_phone', table_name='contacts')
    op.drop_constraint(op.f('fk_contacts_next_phone_id_contact_phones'), 'contacts', type_='foreignkey')
    op.drop_column('contacts', 'next_phone_id')
    op.drop_index('ix_contact_phones_timezones', table_name='contact_phones', postgresql_using='gin')
