"""sip trunks and devices, card template, cascade indexes

SIP trunks, operators' SIP devices and the last known state of registrations and trunks (issue 4); which list
fields the operator's card shows and the list's CRM link (issue 5); indexes on ``attempts.phone_id`` and
``callbacks.contact_id`` so deleting contacts and phones does not scan those tables.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 21:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'sip_trunks',
        sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('port', sa.Integer(), nullable=False),
        sa.Column('transport', sa.String(length=8), nullable=False),
        sa.Column('username', sa.String(length=200), nullable=True),
        sa.Column('password', sa.String(length=200), nullable=True),
        sa.Column('realm', sa.String(length=255), nullable=True),
        sa.Column('from_domain', sa.String(length=255), nullable=True),
        sa.Column('caller_id', sa.String(length=32), nullable=True),
        sa.Column('dial_prefix', sa.String(length=32), nullable=False),
        sa.Column('strip_plus', sa.Boolean(), nullable=False),
        sa.Column('max_concurrent', sa.Integer(), nullable=False),
        sa.Column('calls_per_second', sa.Float(), nullable=False),
        sa.Column('connect_flow', sa.String(length=16), nullable=False),
        sa.Column('options_interval_s', sa.Float(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('created_at', _TS, server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', _TS, server_default=sa.text('now()'), nullable=False),
        sa.CheckConstraint("transport IN ('udp', 'tcp')", name=op.f('ck_sip_trunks_transport')),
        sa.CheckConstraint("connect_flow IN ('flow1', 'delayed_offer')", name=op.f('ck_sip_trunks_connect_flow')),
        sa.CheckConstraint('port BETWEEN 1 AND 65535', name=op.f('ck_sip_trunks_port')),
        sa.CheckConstraint('max_concurrent >= 0 AND calls_per_second >= 0', name=op.f('ck_sip_trunks_limits')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sip_trunks')),
        sa.UniqueConstraint('name', name=op.f('uq_sip_trunks_name')),
    )
    op.create_table(
        'sip_devices',
        sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column('login', sa.String(length=64), nullable=False),
        sa.Column('password', sa.String(length=200), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('operator_id', sa.BigInteger(), nullable=True),
        sa.Column('auto_answer', sa.Boolean(), nullable=False),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('created_at', _TS, server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', _TS, server_default=sa.text('now()'), nullable=False),
        sa.CheckConstraint("login ~ '^[A-Za-z0-9_.!~*()-]+$'", name=op.f('ck_sip_devices_login_chars')),
        sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_sip_devices_operator_id_operators'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sip_devices')),
        sa.UniqueConstraint('login', name=op.f('uq_sip_devices_login')),
        sa.UniqueConstraint('operator_id', name=op.f('uq_sip_devices_operator_id')),
    )
    op.create_table(
        'sip_registrations',
        sa.Column('login', sa.String(length=64), nullable=False),
        sa.Column('online', sa.Boolean(), nullable=False),
        sa.Column('reachable', sa.Boolean(), nullable=False),
        sa.Column('contact', sa.Text(), nullable=False),
        sa.Column('source', sa.String(length=80), nullable=False),
        sa.Column('user_agent', sa.Text(), nullable=False),
        sa.Column('expires_at', _TS, nullable=True),
        sa.Column('changed_at', _TS, server_default=sa.text('now()'), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('login', name=op.f('pk_sip_registrations')),
    )
    op.create_table(
        'sip_trunk_states',
        sa.Column('trunk_id', sa.BigInteger(), nullable=False),
        sa.Column('up', sa.Boolean(), nullable=False),
        sa.Column('changed_at', _TS, server_default=sa.text('now()'), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['trunk_id'], ['sip_trunks.id'], name=op.f('fk_sip_trunk_states_trunk_id_sip_trunks'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('trunk_id', name=op.f('pk_sip_trunk_states')),
    )
    op.add_column('contact_lists', sa.Column('crm_url', sa.Text(), server_default='', nullable=False))
    op.alter_column('contact_lists', 'crm_url', server_default=None)
    op.add_column('list_fields', sa.Column('in_card', sa.Boolean(), server_default=sa.true(), nullable=False))
    op.alter_column('list_fields', 'in_card', server_default=None)
    op.create_index('ix_attempts_phone', 'attempts', ['phone_id'], unique=False)
    op.create_index('ix_callbacks_contact', 'callbacks', ['contact_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_callbacks_contact', table_name='callbacks')
    op.drop_index('ix_attempts_phone', table_name='attempts')
    op.drop_column('list_fields', 'in_card')
    op.drop_column('contact_lists', 'crm_url')
    op.drop_table('sip_trunk_states')
    op.drop_table('sip_registrations')
    op.drop_table('sip_devices')
    op.drop_table('sip_trunks')
