"""engine attempts and operator states

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 02:26:32.479355
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('engine_runs',
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=200), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_engine_runs'))
    )
    op.create_table('attempts',
    sa.Column('campaign_id', sa.BigInteger(), nullable=False),
    sa.Column('contact_id', sa.BigInteger(), nullable=True),
    sa.Column('phone_id', sa.BigInteger(), nullable=True),
    sa.Column('selection_id', sa.BigInteger(), nullable=True),
    sa.Column('callback_id', sa.BigInteger(), nullable=True),
    sa.Column('operator_id', sa.BigInteger(), nullable=True),
    sa.Column('engine_run_id', sa.BigInteger(), nullable=True),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('caller_id', sa.String(length=20), nullable=True),
    sa.Column('call_id', sa.String(length=200), nullable=True),
    sa.Column('state', sa.Enum('queued', 'dialing', 'ringing', 'answered', 'connected', 'wrap_up', 'done', name='attempt_state', native_enum=False, length=32), nullable=False),
    sa.Column('outcome', sa.Enum('answered', 'no_answer', 'busy', 'rejected', 'abandoned', 'error', name='outcome_category', native_enum=False, length=32), nullable=True),
    sa.Column('completion_code_id', sa.BigInteger(), nullable=True),
    sa.Column('answered_by', sa.String(length=16), nullable=True),
    sa.Column('hangup_side', sa.String(length=16), nullable=True),
    sa.Column('hangup_cause', sa.Text(), server_default='', nullable=False),
    sa.Column('sip_code', sa.Integer(), nullable=True),
    sa.Column('comment', sa.Text(), server_default='', nullable=False),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('dialed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ringing_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('connected_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('hung_up_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('wrap_up_ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['callback_id'], ['callbacks.id'], name=op.f('fk_attempts_callback_id_callbacks'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_attempts_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['completion_code_id'], ['completion_codes.id'], name=op.f('fk_attempts_completion_code_id_completion_codes'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_attempts_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['engine_run_id'], ['engine_runs.id'], name=op.f('fk_attempts_engine_run_id_engine_runs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_attempts_operator_id_operators'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['phone_id'], ['contact_phones.id'], name=op.f('fk_attempts_phone_id_contact_phones'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['selection_id'], ['selections.id'], name=op.f('fk_attempts_selection_id_selections'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attempts'))
    )
    op.create_index('ix_attempts_campaign_queued', 'attempts', ['campaign_id', 'queued_at'], unique=False)
    op.create_index('ix_attempts_contact', 'attempts', ['contact_id'], unique=False)
    op.create_index('ix_attempts_live', 'attempts', ['engine_run_id'], unique=False, postgresql_where=sa.text("state <> 'done'"))
    op.create_index('ix_attempts_operator_queued', 'attempts', ['operator_id', 'queued_at'], unique=False)
    op.create_index('uq_attempts_live_contact', 'attempts', ['contact_id'], unique=True, postgresql_where=sa.text("state <> 'done'"))
    op.create_index('uq_attempts_live_number', 'attempts', ['number'], unique=True, postgresql_where=sa.text("state <> 'done'"))
    op.create_table('operator_state_log',
    sa.Column('operator_id', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.Enum('offline', 'ready', 'reserved', 'ringing', 'in_call', 'wrap_up', 'paused', name='operator_state', native_enum=False, length=32), nullable=False),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.Column('campaign_id', sa.BigInteger(), nullable=True),
    sa.Column('attempt_id', sa.BigInteger(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['attempt_id'], ['attempts.id'], name=op.f('fk_operator_state_log_attempt_id_attempts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_operator_state_log_campaign_id_campaigns'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_operator_state_log_operator_id_operators'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_state_log'))
    )
    op.create_index('ix_operator_state_log_operator_started', 'operator_state_log', ['operator_id', 'started_at'], unique=False)
    op.create_index('uq_operator_state_log_current', 'operator_state_log', ['operator_id'], unique=True, postgresql_where=sa.text('ended_at IS NULL'))


def downgrade() -> None:
    op.drop_index('uq_operator_state_log_current', table_name='operator_state_log', postgresql_where=sa.text('ended_at IS NULL'))
    op.drop_index('ix_operator_state_log_operator_started', table_name='operator_state_log')
    op.drop_table('operator_state_log')
    op.drop_index('uq_attempts_live_number', table_name='attempts', postgresql_where=sa.text("state <> 'done'"))
    op.drop_index('uq_attempts_live_contact', table_name='attempts', postgresql_where=sa.text("state <> 'done'"))
    op.drop_index('ix_attempts_operator_queued', table_name='attempts')
    op.drop_index('ix_attempts_live', table_name='attempts', postgresql_where=sa.text("state <> 'done'"))
    op.drop_index('ix_attempts_contact', table_name='attempts')
    op.drop_index('ix_attempts_campaign_queued', table_name='attempts')
    op.drop_table('attempts')
    op.drop_table('engine_runs')
