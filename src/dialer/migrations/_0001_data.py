"""Data and SQL of the first migration, kept apart so the schema part can be regenerated."""

import sqlalchemy as sa
from alembic import op

from dialer.auth.permissions import DESCRIPTIONS, ROLES

#: The audit log is append-only (the database refuses UPDATE, DELETE and TRUNCATE) and partitioned by
#: month; ``audit_ensure_partitions(n)`` creates this month's and the next n months' partitions and
#: is called by the migration and at every start of the product.
AUDIT_SQL = [
    """
    CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$
    """,
    """
    CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()
    """,
    """
    CREATE TRIGGER audit_log_append_only_stmt BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()
    """,
    """
    CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()
    """,
    """
    CREATE FUNCTION audit_ensure_partitions(months_ahead integer) RETURNS integer LANGUAGE plpgsql AS $$
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
                created := created + 1;
            END IF;
        END LOOP;
        RETURN created;
    END $$
    """,
    "CREATE TABLE audit_log_default PARTITION OF audit_log DEFAULT",
    "SELECT audit_ensure_partitions(3)",
]

SYSTEM_CODES = [
    # system_key, name, category, is_final, adds_to_dnc
    ("answered", "Отвечен", "answered", False, False),
    ("no_answer", "Нет ответа", "no_answer", False, False),
    ("busy", "Занято", "busy", False, False),
    ("rejected", "Отклонён", "rejected", False, False),
    ("abandoned", "Клиент упущен", "abandoned", False, False),
    ("error", "Ошибка", "error", False, False),
    ("answering_machine", "Автоответчик", "no_answer", False, False),
    ("dnc_hit", "Номер в списке DNC", "error", True, False),
    ("outside_window", "Вне окна звонка", "error", False, False),
    ("invalid_number", "Неверный номер", "error", True, False),
    ("never_call", "Больше не звонить", "answered", True, True),
]


def seed() -> None:
    """System data every installation has from its first migration."""
    conn = op.get_bind()
    conn.execute(
        sa.text("INSERT INTO permissions (code, description) VALUES (:code, :description)"),
        [{"code": p.value, "description": d} for p, d in DESCRIPTIONS.items()],
    )
    for code, (name_ru, _name_en, description, permissions) in ROLES.items():
        role_id = conn.execute(
            sa.text(
                "INSERT INTO roles (code, name, description, is_system, created_at, updated_at) "
                "VALUES (:code, :name, :description, true, now(), now()) RETURNING id"
            ),
            {"code": code, "name": name_ru, "description": description},
        ).scalar_one()
        if permissions:
            conn.execute(
                sa.text("INSERT INTO role_permissions (role_id, permission) VALUES (:role_id, :permission)"),
                [{"role_id": role_id, "permission": p.value} for p in sorted(permissions)],
            )
    conn.execute(
        sa.text(
            "INSERT INTO completion_codes (name, category, description, system_key, is_final, adds_to_dnc,"
            " created_at, updated_at) VALUES (:name, :category, '', :key, :final, :dnc, now(), now())"
        ),
        [{"key": k, "name": n, "category": c, "final": f, "dnc": d} for k, n, c, f, d in SYSTEM_CODES],
    )
    conn.execute(
        sa.text(
            "INSERT INTO dnc_lists (name, description, is_global, created_at, updated_at) "
            "VALUES ('Черный список', 'Global blacklist: never dialled by any campaign', true, now(), now())"
        )
    )

