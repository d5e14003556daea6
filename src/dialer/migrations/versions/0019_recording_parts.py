"""several recordings per call: one row per rtpengine capture (issue #16 §1, review of the recordings)

rtpengine writes a capture each time a call's recording stops and starts again (an operator's ``record_override``,
a transfer); each is a recording of its own, shown in order in the call card. ``recordings.call_id`` is no longer
unique (an ordinary index); what makes a re-run of the worker idempotent is the stored file's name, derived from the
call id and the capture's SHA-256, now unique.

Revision ID: 0019_recording_parts
Revises: 0018_merge
Create Date: 2026-12-08 03:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019_recording_parts"
down_revision: str | Sequence[str] | None = "0018_merge"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f("uq_recordings_call_id"), "recordings", type_="unique")
    op.create_index(op.f("ix_recordings_call_id"), "recordings", ["call_id"])
    op.create_unique_constraint(op.f("uq_recordings_storage_key"), "recordings", ["storage_key"])


def downgrade() -> None:
    # only the first recording of each call survives a downgrade (the older schema holds one per call)
    op.execute("DELETE FROM recordings r USING recordings o WHERE r.call_id = o.call_id AND r.id > o.id")
    op.drop_constraint(op.f("uq_recordings_storage_key"), "recordings", type_="unique")
    op.drop_index(op.f("ix_recordings_call_id"), table_name="recordings")
    op.create_unique_constraint(op.f("uq_recordings_call_id"), "recordings", ["call_id"])
