"""the application runs as a role that cannot erase the audit log

The application used to connect as the database owner (the embedded server's superuser), so a bug or an injected
statement could erase the audit log despite its triggers: ``SET session_replication_role = replica``, ``ALTER TABLE
… DISABLE TRIGGER``, ``DETACH PARTITION`` + ``DROP``. Now two roles split the work:

* ``dialer_data`` (no login) owns every table of the application except the audit log (and ``alembic_version``):
  whoever is in it may change them and their indexes (fields add expression indexes at run time, imports
  ``ANALYZE``);
* ``dialer_app`` (login, in ``dialer_data``) is what the API and the engine connect as (dialer/db.py:
  ``runtime_url``). On the audit log it may only ``SELECT`` and ``INSERT`` — no trigger stands between it and the
  log's rows, privileges do, so replica mode (which imports use to skip row triggers) erases nothing; the log's
  partitions and triggers belong to the migration role, and ``audit_ensure_partitions`` runs with that role's rights
  (``SECURITY DEFINER``), so the application still creates next month's partition.

Tables that later migrations create are handed to ``dialer_data`` by ``dialer_hand_over()``, which
``dialer.migrate.prepare_database`` calls after every upgrade. Roles belong to the whole server: they are created
once, only by a superuser (the embedded server's); with another role the migration changes nothing and the
application keeps connecting as given (README: ``DIALER_DATABASE_APP_URL``).

Revision ID: 0012_roles
Revises: 0011
Create Date: 2026-12-07 23:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012_roles"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HAND_OVER = """
CREATE OR REPLACE FUNCTION dialer_hand_over() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    rel record;
    moved integer := 0;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dialer_data') THEN
        RETURN 0;
    END IF;
    FOR rel IN
        SELECT c.oid::regclass AS name FROM pg_class c
        WHERE c.relnamespace = current_schema()::regnamespace
          AND c.relkind IN ('r', 'p', 'v', 'm')
          AND c.relname <> 'alembic_version'
          AND c.relname <> 'audit_log'
          AND NOT c.relispartition
          AND pg_get_userbyid(c.relowner) <> 'dialer_data'
    LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO dialer_data', rel.name);
        moved := moved + 1;
    END LOOP;
    -- partitions of the application's own partitioned tables follow their parent (none of the audit log's)
    FOR rel IN
        SELECT c.oid::regclass AS name FROM pg_class c
        JOIN pg_inherits i ON i.inhrelid = c.oid
        WHERE c.relnamespace = current_schema()::regnamespace
          AND i.inhparent <> 'audit_log'::regclass
          AND pg_get_userbyid(c.relowner) <> 'dialer_data'
    LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO dialer_data', rel.name);
        moved := moved + 1;
    END LOOP;
    GRANT SELECT, INSERT ON audit_log TO dialer_app;
    RETURN moved;
END $$
"""


# migration 0010's function with every name qualified by its schema: it runs with its owner's rights, so a caller's
# temporary table named like a partition must not make it skip one
_ENSURE = """
CREATE OR REPLACE FUNCTION audit_ensure_partitions(months_ahead integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    first date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    here text := current_schema();
    lo date;
    hi date;
    name text;
    created integer := 0;
BEGIN
    FOR i IN 0..months_ahead LOOP
        lo := first + make_interval(months => i);
        hi := lo + interval '1 month';
        name := 'audit_log_p' || to_char(lo, 'YYYYMM');
        IF to_regclass(format('%I.%I', here, name)) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I.%I PARTITION OF %I.audit_log FOR VALUES FROM (%L) TO (%L)',
                here, name, here, lo::timestamptz AT TIME ZONE 'UTC', hi::timestamptz AT TIME ZONE 'UTC');
            EXECUTE format('CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON %I.%I '
                           'FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()', here, name);
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END $$
"""


def upgrade() -> None:
    op.execute("""
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE NOTICE 'not a superuser: the dialer_data and dialer_app roles are not created';
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dialer_data') THEN
        CREATE ROLE dialer_data NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dialer_app') THEN
        CREATE ROLE dialer_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
            IN ROLE dialer_data;
    END IF;
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO dialer_app', current_database());
    -- imports skip the per-row foreign-key triggers of contacts in replica mode (contact/repository.py); the audit
    -- log does not rest on triggers for this role (it has no UPDATE, DELETE or TRUNCATE on it at all)
    IF current_setting('server_version_num')::int >= 150000 THEN
        GRANT SET ON PARAMETER session_replication_role TO dialer_app;
    END IF;
    -- an index belongs to its table's schema: building one (a new field's) needs CREATE there
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO dialer_data', current_schema());
END $$
""")
    op.execute(_HAND_OVER)
    op.execute("""
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'dialer_data') THEN
        PERFORM dialer_hand_over();
    END IF;
END $$
""")
    # the application creates next month's audit partition with the migration role's rights
    op.execute(_ENSURE)
    op.execute("ALTER FUNCTION audit_ensure_partitions(integer) SECURITY DEFINER")
    # its names resolve in this schema, never in the caller's temporary one (pg_temp last: a temporary table named
    # like a partition must not make it skip or misplace one)
    op.execute("""
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION audit_ensure_partitions(integer) SET search_path = %I, pg_temp', current_schema());
END $$
""")


def downgrade() -> None:
    op.execute("ALTER FUNCTION audit_ensure_partitions(integer) SECURITY INVOKER")
    op.execute("ALTER FUNCTION audit_ensure_partitions(integer) RESET search_path")
    op.execute("""
DO $$
DECLARE rel record;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dialer_data') THEN
        RETURN;
    END IF;
    FOR rel IN SELECT c.oid::regclass AS name FROM pg_class c
               WHERE c.relnamespace = current_schema()::regnamespace AND pg_get_userbyid(c.relowner) = 'dialer_data'
                 AND c.relkind IN ('r', 'p', 'v', 'm')
    LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO %I', rel.name, current_user);
    END LOOP;
    REVOKE SELECT, INSERT ON audit_log FROM dialer_app;
END $$
""")
    op.execute("DROP FUNCTION IF EXISTS dialer_hand_over()")
