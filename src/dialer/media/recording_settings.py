"""Settings of call recordings (``DIALER_MEDIA_RECORDING_*``; docs/recordings.md). The recordings directory is the
media plane's (``MediaSettings.recordings_dir``, ``DIALER_MEDIA_RECORDINGS_DIR``), which rtpengine's side spools
into."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dialer.config import Settings
from dialer.media.settings import get_media_settings


class RecordingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIALER_", extra="ignore")

    #: The AES-256 key recordings are encrypted with: 32 bytes in base64. Empty: a key generated at first use into
    #: ``<data_dir>/recording.key`` (mode 0600) — back it up: without it no recording can be played.
    media_recording_key: str = ""
    #: Earlier keys (base64, comma-separated), still used to decrypt the recordings they encrypted after a rotation.
    media_recording_old_keys: str = ""
    #: The compressed format: ``opus`` (Ogg Opus) or ``mp3``; and its bitrate for the two channels together.
    media_recording_format: Literal["opus", "mp3"] = "opus"
    media_recording_bitrate_kbps: int = Field(24, ge=8, le=256)
    #: Where the encrypted files are kept: ``local`` (under the recordings directory) or ``s3`` (an S3-compatible
    #: bucket: the endpoint, e.g. ``https://storage.yandexcloud.net``, the bucket, its region, the access key pair and
    #: an optional prefix of the objects' names).
    media_recording_storage: Literal["local", "s3"] = "local"
    media_s3_endpoint: str = ""
    media_s3_bucket: str = ""
    media_s3_region: str = "us-east-1"
    media_s3_access_key: str = ""
    media_s3_secret_key: str = ""
    media_s3_prefix: str = ""
    #: Whether the API process (``dialer run``) runs the recordings worker (spool and retention).
    media_recording_worker: bool = True
    #: Conversions run in a child process at this lower priority (``nice``), so they never slow the API down; false:
    #: in a thread of the API process.
    media_recording_convert_in_child: bool = True
    media_recording_nice: int = Field(10, ge=0, le=19)
    #: How often the worker looks into the spool.
    media_spool_poll_s: float = Field(5.0, gt=0)
    #: A call whose attempt is not found by its call id yet (the engine's journal writes behind) waits this long
    #: before it is stored without one.
    media_attempt_wait_s: float = Field(120.0, ge=0)
    #: The retention job runs daily at this hour (UTC).
    media_retention_hour: int = Field(3, ge=0, le=23)
    #: Longest recording converted (longer pcaps go to ``spool/failed/``): bounds the memory a conversion takes.
    media_recording_max_s: int = Field(4 * 3600, gt=0)
    #: How long a recording whose call attempt was never found (after ``media_attempt_wait_s``) is kept, in days:
    #: it has no campaign whose ``recording_retention_days`` could apply. 0 keeps such recordings.
    media_recording_orphan_retention_days: int = Field(365, ge=0, le=36500)
    #: A capture whose processing fails this many times in a row with an unexpected error (not a refused capture,
    #: which fails at once) is moved to ``spool/failed/`` with the error, so it cannot hold up the others.
    media_recording_max_tries: int = Field(3, ge=1, le=100)

    def recordings_dir(self, settings: Settings) -> Path:
        """``spool/`` (the captures rtpengine's side leaves), ``spool/failed/``, ``<yyyy>/<mm>/<dd>/`` (the encrypted
        files): ``DIALER_MEDIA_RECORDINGS_DIR``, default ``<data_dir>/recordings``."""
        return get_media_settings().recordings_path(settings)


@lru_cache
def get_recording_settings() -> RecordingSettings:
    return RecordingSettings()
