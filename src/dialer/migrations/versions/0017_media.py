"""call recordings and the media settings of campaigns and operators (issue #16 §1, §3, §4)

* ``recordings``: one encrypted, compressed stereo file per recorded call (``docs/recordings.md``), unique per
  SIP call id; an index on ``attempts.call_id`` lets the recordings worker find the call's attempt;
* campaigns: ``record_mode`` (none / all / percent), ``record_percent``, ``record_consent_audio``,
  ``recording_retention_days``, ``amd_enabled``, ``amd_message``, ``abandon_message``;
* operators: ``record_override`` (inherit / always / never);
* the permissions ``recordings.listen`` and ``recordings.download`` for the supervisor-type and administrator roles,
  as the first migration would give them today ("журнал прослушивания", 003 §10.1).

Revision ID: 0017_media
Revises: 0016_merge
Create Date: 2026-12-08 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_media"
down_revision: str | Sequence[str] | None = "0016_merge"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PERMISSIONS = {
    "recordings.listen": "Listen to call recordings (every listen is in the audit log)",
    "recordings.download": "Download call recordings and create time-limited links to them for integrations",
}
_ROLES = ("admin", "system_admin", "supervisor", "system_supervisor")


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(length=200), nullable=False),
        sa.Column("attempt_id", sa.BigInteger(), nullable=True),
        sa.Column("campaign_id", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("audio_bytes", sa.BigInteger(), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("storage_key", sa.String(length=500), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["attempt_id"], ["attempts.id"], name=op.f("fk_recordings_attempt_id_attempts"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name=op.f("fk_recordings_campaign_id_campaigns"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
        sa.UniqueConstraint("call_id", name=op.f("uq_recordings_call_id")),
    )
    op.create_index(op.f("ix_recordings_attempt_id"), "recordings", ["attempt_id"])
    op.create_index(op.f("ix_recordings_campaign_id"), "recordings", ["campaign_id"])
    op.create_index(op.f("ix_recordings_started_at"), "recordings", ["started_at"])
    op.create_index(op.f("ix_recordings_expires_at"), "recordings", ["expires_at"])
    op.create_index("ix_attempts_call_id", "attempts", ["call_id"])

    op.add_column("campaigns", sa.Column("record_mode", sa.Enum("none", "all", "percent", name="record_mode",
                                                                native_enum=False, length=32),
                                         server_default="none", nullable=False))
    op.add_column("campaigns", sa.Column("record_percent", sa.Integer(), nullable=True))
    op.add_column("campaigns", sa.Column("record_consent_audio", sa.String(length=200), nullable=True))
    op.add_column("campaigns", sa.Column("recording_retention_days", sa.Integer(), nullable=True))
    op.add_column("campaigns", sa.Column("amd_enabled", sa.Boolean(), server_default=sa.text("false"),
                                         nullable=False))
    op.add_column("campaigns", sa.Column("amd_message", sa.String(length=200), nullable=True))
    op.add_column("campaigns", sa.Column("abandon_message", sa.String(length=200), nullable=True))
    op.create_check_constraint(op.f("ck_campaigns_record_percent_range"), "campaigns",
                               "record_percent IS NULL OR record_percent BETWEEN 1 AND 99")
    op.create_check_constraint(op.f("ck_campaigns_record_percent_given"), "campaigns",
                               "record_mode <> 'percent' OR record_percent IS NOT NULL")
    op.create_check_constraint(op.f("ck_campaigns_recording_retention_range"), "campaigns",
                               "recording_retention_days IS NULL OR recording_retention_days BETWEEN 1 AND 36500")
    op.add_column("operators", sa.Column("record_override", sa.Enum("inherit", "always", "never",
                                                                    name="record_override", native_enum=False,
                                                                    length=32),
                                         server_default="inherit", nullable=False))

    bind = op.get_bind()
    for code, description in _PERMISSIONS.items():
        bind.execute(sa.text("INSERT INTO permissions (code, description) VALUES (:code, :description)"
                             " ON CONFLICT (code) DO NOTHING"), {"code": code, "description": description})
        bind.execute(sa.text("INSERT INTO role_permissions (role_id, permission) SELECT id, :code FROM roles"
                             " WHERE code IN :roles ON CONFLICT DO NOTHING").bindparams(
            sa.bindparam("roles", expanding=True)), {"code": code, "roles": list(_ROLES)})


def downgrade() -> None:
    op.execute("DELETE FROM permissions WHERE code IN ('recordings.listen', 'recordings.download')")
    op.drop_column("operators", "record_override")
    for name in ("recording_retention_range", "record_percent_given", "record_percent_range"):
        op.drop_constraint(op.f(f"ck_campaigns_{name}"), "campaigns", type_="check")
    for column in ("abandon_message", "amd_message", "amd_enabled", "recording_retention_days",
                   "record_consent_audio", "record_percent", "record_mode"):
        op.drop_column("campaigns", column)
    op.drop_index("ix_attempts_call_id", table_name="attempts")
    op.drop_table("recordings")
