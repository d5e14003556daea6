"""Call recordings (issue #16 §1) and the media settings' enums of campaigns and operators."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from dialer.models.base import Base, IdMixin
from dialer.models.engine import Attempt


class RecordMode(StrEnum):
    """Which calls of a campaign are recorded (``campaigns.record_mode``)."""

    none = "none"
    all = "all"
    #: ``campaigns.record_percent`` of the calls, drawn per call.
    percent = "percent"


class RecordOverride(StrEnum):
    """An operator's exception to his campaigns' recording (``operators.record_override``)."""

    inherit = "inherit"
    always = "always"
    never = "never"


class Recording(IdMixin, Base):
    """One recorded call: an encrypted, compressed stereo file (left: the customer, right: the operator's side)
    under the recordings directory (``docs/recordings.md``)."""

    __tablename__ = "recordings"
    #: The SIP driver's call id (``attempts.call_id``). A call may have several recordings (parts): rtpengine writes
    #: a capture each time recording stops and starts again (an operator's record_override, a transfer).
    call_id: Mapped[str] = mapped_column(String(200), index=True)
    attempt_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("attempts.id", ondelete="SET NULL"), nullable=True, index=True
    )
    campaign_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("campaigns.id", ondelete="SET NULL"), nullable=True, index=True
    )
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[int] = mapped_column(Integer)
    #: Size of the stored (encrypted) file and of the audio inside it.
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    audio_bytes: Mapped[int] = mapped_column(BigInteger)
    channels: Mapped[int] = mapped_column(Integer, default=2)
    #: ``opus`` (Ogg) or ``mp3``.
    format: Mapped[str] = mapped_column(String(16))
    #: The storage's name of the file (for the local directory: its path under the recordings directory).
    #: Derived from the call id and the SHA-256 of the capture, so one capture is one row whatever re-runs the worker
    #: makes (``dialer.media.recordings.storage_key``).
    storage_key: Mapped[str] = mapped_column(String(500), unique=True)
    #: Which key encrypted it (``dialer.media.recording_crypto.key_id``), so keys can rotate.
    key_id: Mapped[str] = mapped_column(String(32))
    #: SHA-256 of the audio before encryption (hex).
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: From the campaign's ``recording_retention_days`` when it was stored; null: kept until deleted.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)


#: The recordings worker finds a call's attempt by the SIP driver's call id.
Index("ix_attempts_call_id", Attempt.__table__.c.call_id)
