"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 01:55:33.579324
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from dialer.migrations._0001_data import AUDIT_SQL, seed

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('clock_timestamp()'), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=True),
    sa.Column('user_login', sa.String(length=200), server_default='', nullable=False),
    sa.Column('user_roles', sa.Text(), server_default='', nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('event', sa.Text(), server_default='', nullable=False),
    sa.Column('object_type', sa.String(length=64), nullable=False),
    sa.Column('object_id', sa.String(length=64), nullable=True),
    sa.Column('changes', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('client', sa.String(length=100), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('id', 'at', name=op.f('pk_audit_log')),
    postgresql_partition_by='RANGE (at)'
    )
    op.create_index('ix_audit_log_at', 'audit_log', ['at'], unique=False)
    op.create_index('ix_audit_log_object', 'audit_log', ['object_type', 'object_id'], unique=False)
    op.create_index('ix_audit_log_user', 'audit_log', ['user_id'], unique=False)
    op.create_table('caller_id_groups',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_caller_id_groups')),
    sa.UniqueConstraint('name', name=op.f('uq_caller_id_groups_name'))
    )
    op.create_table('caller_ids',
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_caller_ids')),
    sa.UniqueConstraint('number', name=op.f('uq_caller_ids_number'))
    )
    op.create_table('completion_code_groups',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_completion_code_groups')),
    sa.UniqueConstraint('name', name=op.f('uq_completion_code_groups_name'))
    )
    op.create_table('completion_codes',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('category', sa.Enum('answered', 'no_answer', 'busy', 'rejected', 'abandoned', 'error', name='outcome_category', native_enum=False, length=32), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('system_key', sa.String(length=64), nullable=True),
    sa.Column('is_final', sa.Boolean(), nullable=False),
    sa.Column('adds_to_dnc', sa.Boolean(), nullable=False),
    sa.Column('crm_status', sa.String(length=200), nullable=True),
    sa.Column('hotkey', sa.String(length=16), nullable=True),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_completion_codes')),
    sa.UniqueConstraint('name', name=op.f('uq_completion_codes_name')),
    sa.UniqueConstraint('system_key', name=op.f('uq_completion_codes_system_key'))
    )
    op.create_table('contact_lists',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_lists')),
    sa.UniqueConstraint('name', name=op.f('uq_contact_lists_name'))
    )
    op.create_table('dnc_lists',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('is_global', sa.Boolean(), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dnc_lists')),
    sa.UniqueConstraint('name', name=op.f('uq_dnc_lists_name'))
    )
    op.create_index('uq_dnc_lists_one_global', 'dnc_lists', ['is_global'], unique=True, postgresql_where=sa.text('is_global'))
    op.create_table('fields',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('type', sa.Enum('string', 'integer', 'decimal', 'date', 'datetime', 'boolean', 'phone', 'enum', name='field_type', native_enum=False, length=32), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('mask', sa.Text(), nullable=True),
    sa.Column('is_client_id', sa.Boolean(), nullable=False),
    sa.Column('options', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('phone_type', sa.Enum('mobile', 'home', 'work', 'other', name='phone_type', native_enum=False, length=32), nullable=True),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fields')),
    sa.UniqueConstraint('name', name=op.f('uq_fields_name'))
    )
    op.create_table('holidays',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('is_working_day', sa.Boolean(), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_holidays')),
    sa.UniqueConstraint('day', name=op.f('uq_holidays_day'))
    )
    op.create_table('login_failures',
    sa.Column('login', sa.String(length=200), nullable=False),
    sa.Column('client', sa.String(length=100), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    op.create_index(op.f('ix_login_failures_at'), 'login_failures', ['at'], unique=False)
    op.create_index(op.f('ix_login_failures_client'), 'login_failures', ['client'], unique=False)
    op.create_index(op.f('ix_login_failures_login'), 'login_failures', ['login'], unique=False)
    op.create_table('operator_pools',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_pools')),
    sa.UniqueConstraint('name', name=op.f('uq_operator_pools_name'))
    )
    op.create_table('permissions',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_permissions'))
    )
    op.create_table('roles',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('is_system', sa.Boolean(), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roles')),
    sa.UniqueConstraint('code', name=op.f('uq_roles_code'))
    )
    op.create_table('skills',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_skills')),
    sa.UniqueConstraint('name', name=op.f('uq_skills_name'))
    )
    op.create_table('time_zones',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('tz', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_time_zones')),
    sa.UniqueConstraint('name', name=op.f('uq_time_zones_name'))
    )
    op.create_table('users',
    sa.Column('login', sa.String(length=200), nullable=False),
    sa.Column('full_name', sa.String(length=300), nullable=False),
    sa.Column('email', sa.String(length=300), nullable=True),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('login', name=op.f('uq_users_login'))
    )
    op.create_table('api_tokens',
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    op.create_index(op.f('ix_api_tokens_user_id'), 'api_tokens', ['user_id'], unique=False)
    op.create_table('caller_id_group_members',
    sa.Column('group_id', sa.BigInteger(), nullable=False),
    sa.Column('caller_id_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['caller_id_id'], ['caller_ids.id'], name=op.f('fk_caller_id_group_members_caller_id_id_caller_ids'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['group_id'], ['caller_id_groups.id'], name=op.f('fk_caller_id_group_members_group_id_caller_id_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'caller_id_id', name=op.f('pk_caller_id_group_members'))
    )
    op.create_table('completion_code_group_members',
    sa.Column('group_id', sa.BigInteger(), nullable=False),
    sa.Column('code_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['code_id'], ['completion_codes.id'], name=op.f('fk_completion_code_group_members_code_id_completion_codes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['group_id'], ['completion_code_groups.id'], name=op.f('fk_completion_code_group_members_group_id_completion_code_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'code_id', name=op.f('pk_completion_code_group_members'))
    )
    op.create_table('dnc_entries',
    sa.Column('list_id', sa.BigInteger(), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('is_prefix', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('comment', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['list_id'], ['dnc_lists.id'], name=op.f('fk_dnc_entries_list_id_dnc_lists'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dnc_entries')),
    sa.UniqueConstraint('list_id', 'number', 'is_prefix', name='uq_dnc_entries_list_number')
    )
    op.create_index('ix_dnc_entries_number', 'dnc_entries', ['number'], unique=False)
    op.create_table('import_jobs',
    sa.Column('list_id', sa.BigInteger(), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('filename', sa.Text(), nullable=False),
    sa.Column('status', sa.Enum('queued', 'running', 'finished', 'failed', name='import_status', native_enum=False, length=32), nullable=False),
    sa.Column('options', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('tags', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('rows_total', sa.BigInteger(), nullable=False),
    sa.Column('rows_done', sa.BigInteger(), nullable=False),
    sa.Column('imported', sa.BigInteger(), nullable=False),
    sa.Column('rejected', sa.BigInteger(), nullable=False),
    sa.Column('duplicates', sa.BigInteger(), nullable=False),
    sa.Column('dnc_filtered', sa.BigInteger(), nullable=False),
    sa.Column('errors_path', sa.Text(), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_import_jobs_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['list_id'], ['contact_lists.id'], name=op.f('fk_import_jobs_list_id_contact_lists'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_jobs'))
    )
    op.create_index(op.f('ix_import_jobs_list_id'), 'import_jobs', ['list_id'], unique=False)
    op.create_table('list_fields',
    sa.Column('list_id', sa.BigInteger(), nullable=False),
    sa.Column('field_id', sa.BigInteger(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['field_id'], ['fields.id'], name=op.f('fk_list_fields_field_id_fields'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['list_id'], ['contact_lists.id'], name=op.f('fk_list_fields_list_id_contact_lists'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('list_id', 'field_id', name=op.f('pk_list_fields'))
    )
    op.create_table('operators',
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=True),
    sa.Column('extension', sa.String(length=64), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('auto_answer', sa.Boolean(), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_operators_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operators')),
    sa.UniqueConstraint('user_id', name=op.f('uq_operators_user_id'))
    )
    op.create_table('phone_codes',
    sa.Column('time_zone_id', sa.BigInteger(), nullable=True),
    sa.Column('prefix', sa.String(length=20), nullable=True),
    sa.Column('range_from', sa.BigInteger(), nullable=False),
    sa.Column('range_to', sa.BigInteger(), nullable=False),
    sa.Column('tz', sa.String(length=64), nullable=True),
    sa.Column('region', sa.Text(), nullable=True),
    sa.Column('carrier', sa.Text(), nullable=True),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('source', sa.String(length=16), server_default='manual', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['time_zone_id'], ['time_zones.id'], name=op.f('fk_phone_codes_time_zone_id_time_zones'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phone_codes'))
    )
    op.create_index('ix_phone_codes_range', 'phone_codes', ['range_from', 'range_to'], unique=False)
    op.create_index(op.f('ix_phone_codes_time_zone_id'), 'phone_codes', ['time_zone_id'], unique=False)
    op.create_table('role_permissions',
    sa.Column('role_id', sa.BigInteger(), nullable=False),
    sa.Column('permission', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['permission'], ['permissions.code'], name=op.f('fk_role_permissions_permission_permissions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], name=op.f('fk_role_permissions_role_id_roles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('role_id', 'permission', name=op.f('pk_role_permissions'))
    )
    op.create_table('strategies',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('phone_field_id', sa.BigInteger(), nullable=True),
    sa.Column('skill_id', sa.BigInteger(), nullable=True),
    sa.Column('default_completion_code_id', sa.BigInteger(), nullable=True),
    sa.Column('call_window_start', sa.Time(), nullable=False),
    sa.Column('call_window_end', sa.Time(), nullable=False),
    sa.Column('answer_timeout_s', sa.Integer(), nullable=False),
    sa.Column('max_call_duration_s', sa.Integer(), nullable=True),
    sa.Column('max_attempts_per_contact', sa.Integer(), nullable=True),
    sa.Column('max_attempts_per_day', sa.Integer(), nullable=True),
    sa.Column('pause_between_attempts_s', sa.Integer(), nullable=False),
    sa.Column('common_retry_interval_s', sa.Integer(), nullable=False),
    sa.Column('min_operators', sa.Integer(), nullable=True),
    sa.Column('max_operators', sa.Integer(), nullable=True),
    sa.Column('operator_wait_s', sa.Integer(), nullable=False),
    sa.Column('wrap_up_s', sa.Integer(), nullable=False),
    sa.Column('auto_pause_after_missed', sa.Integer(), nullable=True),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('answer_timeout_s > 0', name=op.f('ck_strategies_answer_timeout_positive')),
    sa.CheckConstraint('min_operators IS NULL OR max_operators IS NULL OR min_operators <= max_operators', name=op.f('ck_strategies_operators_range')),
    sa.ForeignKeyConstraint(['default_completion_code_id'], ['completion_codes.id'], name=op.f('fk_strategies_default_completion_code_id_completion_codes'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['phone_field_id'], ['fields.id'], name=op.f('fk_strategies_phone_field_id_fields'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['skill_id'], ['skills.id'], name=op.f('fk_strategies_skill_id_skills'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_strategies')),
    sa.UniqueConstraint('name', name=op.f('uq_strategies_name'))
    )
    op.create_table('user_permission_grants',
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('permission', sa.String(length=64), nullable=False),
    sa.Column('granted', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['permission'], ['permissions.code'], name=op.f('fk_user_permission_grants_permission_permissions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_permission_grants_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'permission', name=op.f('pk_user_permission_grants'))
    )
    op.create_table('user_roles',
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('role_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], name=op.f('fk_user_roles_role_id_roles'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_roles_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'role_id', name=op.f('pk_user_roles'))
    )
    op.create_table('user_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('client', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_user_sessions'))
    )
    op.create_index(op.f('ix_user_sessions_user_id'), 'user_sessions', ['user_id'], unique=False)
    op.create_table('campaigns',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('strategy_id', sa.BigInteger(), nullable=False),
    sa.Column('completion_code_group_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.Enum('finite', 'infinite', name='campaign_kind', native_enum=False, length=32), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('dnc_list_id', sa.BigInteger(), nullable=True),
    sa.Column('caller_id_group_id', sa.BigInteger(), nullable=True),
    sa.Column('dial_mode', sa.Enum('preview', 'progressive', 'predictive', 'fixed_lines', name='dial_mode', native_enum=False, length=32), nullable=False),
    sa.Column('dial_params', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('max_concurrent_calls', sa.Integer(), nullable=True),
    sa.Column('abandon_cap_pct', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('call_script', sa.Text(), nullable=False),
    sa.Column('hold_audio', sa.Text(), nullable=True),
    sa.Column('status', sa.Enum('draft', 'running', 'paused', 'auto_paused', 'stopped', 'finished', name='campaign_status', native_enum=False, length=32), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=False),
    sa.Column('status_changed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('priority BETWEEN 1 AND 100', name=op.f('ck_campaigns_priority_range')),
    sa.ForeignKeyConstraint(['caller_id_group_id'], ['caller_id_groups.id'], name=op.f('fk_campaigns_caller_id_group_id_caller_id_groups'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['completion_code_group_id'], ['completion_code_groups.id'], name=op.f('fk_campaigns_completion_code_group_id_completion_code_groups'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['dnc_list_id'], ['dnc_lists.id'], name=op.f('fk_campaigns_dnc_list_id_dnc_lists'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['strategy_id'], ['strategies.id'], name=op.f('fk_campaigns_strategy_id_strategies'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns')),
    sa.UniqueConstraint('name', name=op.f('uq_campaigns_name'))
    )
    op.create_table('contacts',
    sa.Column('list_id', sa.BigInteger(), nullable=False),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('tags', postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('import_job_id', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.Enum('new', 'in_progress', 'done', name='contact_status', native_enum=False, length=32), server_default='new', nullable=False),
    sa.Column('attempts_total', sa.Integer(), server_default='0', nullable=False),
    sa.Column('attempts_today', sa.Integer(), server_default='0', nullable=False),
    sa.Column('attempts_day', sa.Date(), nullable=True),
    sa.Column('last_outcome', sa.Enum('answered', 'no_answer', 'busy', 'rejected', 'abandoned', 'error', name='outcome_category', native_enum=False, length=32), nullable=True),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('next_call_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['import_job_id'], ['import_jobs.id'], name=op.f('fk_contacts_import_job_id_import_jobs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['list_id'], ['contact_lists.id'], name=op.f('fk_contacts_list_id_contact_lists'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contacts'))
    )
    op.create_index('ix_contacts_data_gin', 'contacts', ['data'], unique=False, postgresql_using='gin', postgresql_ops={'data': 'jsonb_path_ops'})
    op.create_index('ix_contacts_list_id_id', 'contacts', ['list_id', 'id'], unique=False)
    op.create_index('ix_contacts_list_next_call', 'contacts', ['list_id', 'status', 'next_call_at'], unique=False)
    op.create_table('operator_skills',
    sa.Column('operator_id', sa.BigInteger(), nullable=False),
    sa.Column('skill_id', sa.BigInteger(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.CheckConstraint('level BETWEEN 1 AND 100', name=op.f('ck_operator_skills_level_range')),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_operator_skills_operator_id_operators'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['skill_id'], ['skills.id'], name=op.f('fk_operator_skills_skill_id_skills'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('operator_id', 'skill_id', name=op.f('pk_operator_skills'))
    )
    op.create_table('pool_operators',
    sa.Column('pool_id', sa.BigInteger(), nullable=False),
    sa.Column('operator_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_pool_operators_operator_id_operators'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['pool_id'], ['operator_pools.id'], name=op.f('fk_pool_operators_pool_id_operator_pools'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pool_id', 'operator_id', name=op.f('pk_pool_operators'))
    )
    op.create_table('strategy_outcome_retries',
    sa.Column('strategy_id', sa.BigInteger(), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('intervals_min', postgresql.ARRAY(sa.Integer()), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['strategy_id'], ['strategies.id'], name=op.f('fk_strategy_outcome_retries_strategy_id_strategies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_strategy_outcome_retries')),
    sa.UniqueConstraint('strategy_id', 'outcome', name='uq_strategy_outcome_retries_outcome')
    )
    op.create_table('strategy_result_rules',
    sa.Column('strategy_id', sa.BigInteger(), nullable=False),
    sa.Column('completion_code_id', sa.BigInteger(), nullable=False),
    sa.Column('day_type', sa.Enum('workday', 'holiday', name='day_type', native_enum=False, length=32), nullable=False),
    sa.Column('retry_interval_s', sa.Integer(), nullable=True),
    sa.Column('use_common_interval', sa.Boolean(), nullable=False),
    sa.Column('attempts_on_previous_number', sa.Integer(), nullable=True),
    sa.Column('switch_to_phone_type', sa.Enum('mobile', 'home', 'work', 'other', name='phone_type', native_enum=False, length=32), nullable=True),
    sa.Column('is_final', sa.Boolean(), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['completion_code_id'], ['completion_codes.id'], name=op.f('fk_strategy_result_rules_completion_code_id_completion_codes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['strategy_id'], ['strategies.id'], name=op.f('fk_strategy_result_rules_strategy_id_strategies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_strategy_result_rules')),
    sa.UniqueConstraint('strategy_id', 'completion_code_id', 'day_type', name='uq_strategy_result_rules_code_day')
    )
    op.create_table('callbacks',
    sa.Column('campaign_id', sa.BigInteger(), nullable=False),
    sa.Column('contact_id', sa.BigInteger(), nullable=True),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.Enum('personal', 'common', name='callback_kind', native_enum=False, length=32), nullable=False),
    sa.Column('operator_id', sa.BigInteger(), nullable=True),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.Enum('pending', 'done', 'cancelled', name='callback_status', native_enum=False, length=32), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('window_start < window_end', name=op.f('ck_callbacks_window_order')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_callbacks_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_callbacks_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_callbacks_operator_id_operators'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_callbacks'))
    )
    op.create_index('ix_callbacks_due', 'callbacks', ['campaign_id', 'status', 'window_start'], unique=False)
    op.create_table('campaign_lists',
    sa.Column('campaign_id', sa.BigInteger(), nullable=False),
    sa.Column('list_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_lists_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['list_id'], ['contact_lists.id'], name=op.f('fk_campaign_lists_list_id_contact_lists'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('campaign_id', 'list_id', name=op.f('pk_campaign_lists'))
    )
    op.create_table('campaign_pools',
    sa.Column('campaign_id', sa.BigInteger(), nullable=False),
    sa.Column('pool_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_pools_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['pool_id'], ['operator_pools.id'], name=op.f('fk_campaign_pools_pool_id_operator_pools'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('campaign_id', 'pool_id', name=op.f('pk_campaign_pools'))
    )
    op.create_table('campaign_schedules',
    sa.Column('campaign_id', sa.BigInteger(), nullable=False),
    sa.Column('weekday', sa.SmallInteger(), nullable=False),
    sa.Column('start', sa.Time(), nullable=False),
    sa.Column('end', sa.Time(), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.CheckConstraint('start < "end"', name=op.f('ck_campaign_schedules_start_before_end')),
    sa.CheckConstraint('weekday BETWEEN 0 AND 6', name=op.f('ck_campaign_schedules_weekday_range')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_schedules_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_schedules'))
    )
    op.create_index(op.f('ix_campaign_schedules_campaign_id'), 'campaign_schedules', ['campaign_id'], unique=False)
    op.create_table('contact_phones',
    sa.Column('contact_id', sa.BigInteger(), nullable=False),
    sa.Column('list_id', sa.BigInteger(), nullable=False),
    sa.Column('field_id', sa.BigInteger(), nullable=True),
    sa.Column('phone_type', sa.Enum('mobile', 'home', 'work', 'other', name='phone_type', native_enum=False, length=32), server_default='mobile', nullable=False),
    sa.Column('position', sa.Integer(), server_default='0', nullable=False),
    sa.Column('raw', sa.Text(), server_default='', nullable=False),
    sa.Column('e164', sa.String(length=20), nullable=False),
    sa.Column('region', sa.Text(), nullable=True),
    sa.Column('carrier', sa.Text(), nullable=True),
    sa.Column('timezones', postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('tz_uncertain', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_contact_phones_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['field_id'], ['fields.id'], name=op.f('fk_contact_phones_field_id_fields'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['list_id'], ['contact_lists.id'], name=op.f('fk_contact_phones_list_id_contact_lists'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_phones'))
    )
    op.create_index(op.f('ix_contact_phones_contact_id'), 'contact_phones', ['contact_id'], unique=False)
    op.create_index('ix_contact_phones_e164', 'contact_phones', ['e164'], unique=False)
    op.create_index('ix_contact_phones_list_e164', 'contact_phones', ['list_id', 'e164'], unique=False)
    op.create_table('selections',
    sa.Column('campaign_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('conditions', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('sort', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('skill_id', sa.BigInteger(), nullable=True),
    sa.Column('min_skill_level', sa.Integer(), nullable=True),
    sa.Column('pool_id', sa.BigInteger(), nullable=True),
    sa.Column('max_attempts_per_day', sa.Integer(), nullable=True),
    sa.Column('max_attempts_total', sa.Integer(), nullable=True),
    sa.Column('pause_between_attempts_s', sa.Integer(), nullable=True),
    sa.Column('final_crm_status', sa.String(length=200), nullable=True),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('min_skill_level IS NULL OR min_skill_level BETWEEN 1 AND 100', name=op.f('ck_selections_min_skill_range')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_selections_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['pool_id'], ['operator_pools.id'], name=op.f('fk_selections_pool_id_operator_pools'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['skill_id'], ['skills.id'], name=op.f('fk_selections_skill_id_skills'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_selections')),
    sa.UniqueConstraint('campaign_id', 'name', name='uq_selections_campaign_name')
    )
    op.create_index(op.f('ix_selections_campaign_id'), 'selections', ['campaign_id'], unique=False)

    for statement in AUDIT_SQL:
        op.execute(statement)
    seed()


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS audit_ensure_partitions(integer)")
    op.drop_index(op.f('ix_selections_campaign_id'), table_name='selections')
    op.drop_table('selections')
    op.drop_index('ix_contact_phones_list_e164', table_name='contact_phones')
    op.drop_index('ix_contact_phones_e164', table_name='contact_phones')
    op.drop_index(op.f('ix_contact_phones_contact_id'), table_name='contact_phones')
    op.drop_table('contact_phones')
    op.drop_index(op.f('ix_campaign_schedules_campaign_id'), table_name='campaign_schedules')
    op.drop_table('campaign_schedules')
    op.drop_table('campaign_pools')
    op.drop_table('campaign_lists')
    op.drop_index('ix_callbacks_due', table_name='callbacks')
    op.drop_table('callbacks')
    op.drop_table('strategy_result_rules')
    op.drop_table('strategy_outcome_retries')
    op.drop_table('pool_operators')
    op.drop_table('operator_skills')
    op.drop_index('ix_contacts_list_next_call', table_name='contacts')
    op.drop_index('ix_contacts_list_id_id', table_name='contacts')
    op.drop_index('ix_contacts_data_gin', table_name='contacts', postgresql_using='gin', postgresql_ops={'data': 'jsonb_path_ops'})
    op.drop_table('contacts')
    op.drop_table('campaigns')
    op.drop_index(op.f('ix_user_sessions_user_id'), table_name='user_sessions')
    op.drop_table('user_sessions')
    op.drop_table('user_roles')
    op.drop_table('user_permission_grants')
    op.drop_table('strategies')
    op.drop_table('role_permissions')
    op.drop_index(op.f('ix_phone_codes_time_zone_id'), table_name='phone_codes')
    op.drop_index('ix_phone_codes_range', table_name='phone_codes')
    op.drop_table('phone_codes')
    op.drop_table('operators')
    op.drop_table('list_fields')
    op.drop_index(op.f('ix_import_jobs_list_id'), table_name='import_jobs')
    op.drop_table('import_jobs')
    op.drop_index('ix_dnc_entries_number', table_name='dnc_entries')
    op.drop_table('dnc_entries')
    op.drop_table('completion_code_group_members')
    op.drop_table('caller_id_group_members')
    op.drop_index(op.f('ix_api_tokens_user_id'), table_name='api_tokens')
    op.drop_table('api_tokens')
    op.drop_table('users')
    op.drop_table('time_zones')
    op.drop_table('skills')
    op.drop_table('roles')
    op.drop_table('permissions')
    op.drop_table('operator_pools')
    op.drop_index(op.f('ix_login_failures_login'), table_name='login_failures')
    op.drop_index(op.f('ix_login_failures_client'), table_name='login_failures')
    op.drop_index(op.f('ix_login_failures_at'), table_name='login_failures')
    op.drop_table('login_failures')
    op.drop_table('holidays')
    op.drop_table('fields')
    op.drop_index('uq_dnc_lists_one_global', table_name='dnc_lists', postgresql_where=sa.text('is_global'))
    op.drop_table('dnc_lists')
    op.drop_table('contact_lists')
    op.drop_table('completion_codes')
    op.drop_table('completion_code_groups')
    op.drop_table('caller_ids')
    op.drop_table('caller_id_groups')
    op.drop_index('ix_audit_log_user', table_name='audit_log')
    op.drop_index('ix_audit_log_object', table_name='audit_log')
    op.drop_index('ix_audit_log_at', table_name='audit_log')
    op.drop_table('audit_log')
    op.execute("DROP FUNCTION IF EXISTS audit_refuse_change() CASCADE")
