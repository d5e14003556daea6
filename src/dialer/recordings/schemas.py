"""API schemas of call recordings."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from dialer.api.crud import ReadSchema, Schema

#: The longest a shared link lives (003 §10.6 p.6: a time-limited link for the CRM).
MAX_LINK_TTL_S = 24 * 3600


class RecordingRead(ReadSchema):
    id: int
    call_id: str
    attempt_id: int | None
    campaign_id: int | None
    started_at: datetime
    ended_at: datetime
    duration_ms: int
    #: Stored (encrypted) size and the audio's own size, in bytes.
    size_bytes: int
    audio_bytes: int
    channels: int
    #: ``opus`` (Ogg) or ``mp3``.
    format: str
    key_id: str
    sha256: str
    created_at: datetime
    expires_at: datetime | None
    #: Playback (Range requests; ``recordings.listen``) and download (``recordings.download``) addresses.
    stream_url: str
    download_url: str


class LinkCreate(Schema):
    ttl_s: int = Field(3600, ge=60, le=MAX_LINK_TTL_S,
                       description="How long the link works, in seconds (1 minute … 24 hours)")


class LinkRead(Schema):
    #: Works without a session or token until ``expires_at``; relative to the dialer's address.
    url: str
    expires_at: datetime


class FailedCaptureRead(Schema):
    name: str
    reason: str
    failed_at: datetime


class SpoolState(Schema):
    #: Captures waiting for the worker.
    pending: int
    #: Captures that could not be converted (in ``spool/failed/``), with the reasons.
    failed: int
    failed_items: list[FailedCaptureRead]
