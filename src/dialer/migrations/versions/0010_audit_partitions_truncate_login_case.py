"""audit partitions refuse TRUNCATE; logins unique regardless of case

PostgreSQL does not copy a partitioned table's TRUNCATE trigger to its partitions, so ``TRUNCATE
audit_log_p202612`` emptied a month of the audit log: every partition now carries the trigger, and
``audit_ensure_partitions`` gives it to the partitions it creates. Logins that differ only in case
("Ivanova" and "ivanova") are one login to the people typing them: a unique index on ``lower(login)``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 01:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ENSURE = """
CREATE OR REPLACE FUNCTION audit_ensure_partitions(months_ahead integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    first date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    lo date;
    hi date;
    name text;
    created integer := 0;
BEGIN
    FOR i IN 0..months_ahead LOOP
        lo := first + make_interval(months => i);
        hi := lo + interval '1 month';
        name := 'audit_log_p' || to_char(lo, 'YYYYMM');
        IF to_regclass(name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF audit_log FOR VALUES FROM (%L) TO (%L)',
                name, lo::timestamptz AT TIME ZONE 'UTC', hi::timestamptz AT TIME ZONE 'UTC');
            {truncate_trigger}
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END $$
"""
_TRIGGER = ("EXECUTE format('CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON %I "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()', name);")

_EXISTING_PARTITIONS = """
DO $$
DECLARE part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'audit_log'::regclass LOOP
        IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = part AND tgname = 'audit_log_no_truncate') THEN
            EXECUTE format('CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON %s '
                           'FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()', part);
        END IF;
    END LOOP;
END $$
"""

_DROP_PARTITION_TRIGGERS = """
DO $$
DECLARE part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'audit_log'::regclass LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS audit_log_no_truncate ON %s', part);
    END LOOP;
END $$
"""

_CASE_DUPLICATES = """
DO $$
DECLARE dups text;
BEGIN
    SELECT string_agg(logins, '; ') INTO dups FROM (
        SELECT string_agg(login, ', ' ORDER BY login) AS logins FROM users GROUP BY lower(login) HAVING count(*) > 1
    ) d;
    IF dups IS NOT NULL THEN
        RAISE EXCEPTION 'users whose logins differ only in case must be renamed first: %', dups;
    END IF;
END $$
"""


def upgrade() -> None:
    op.execute(_ENSURE.replace("{truncate_trigger}", _TRIGGER))
    op.execute(_EXISTING_PARTITIONS)
    op.execute(_CASE_DUPLICATES)
    op.execute("CREATE UNIQUE INDEX uq_users_login_lower ON users (lower(login))")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS uq_users_login_lower")
    op.execute(_DROP_PARTITION_TRIGGERS)
    op.execute(_ENSURE.replace("{truncate_trigger}", ""))
