"""One settings object for the whole product, read from ``DIALER_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIALER_", extra="ignore")

    #: Any PostgreSQL server, e.g. ``postgresql://user:pass@host:5432/dialer``. Empty: embedded server.
    database_url: str = ""
    #: What the API and the engine connect with, when it differs from ``database_url`` (which then only migrates):
    #: a role that cannot erase the audit log, e.g. ``dialer_app`` (docs/architecture.md, "Database roles").
    #: Empty: the embedded server's ``dialer_app``; with ``database_url`` set, ``database_url`` itself.
    database_app_url: str = ""
    #: Where the embedded PostgreSQL cluster, import error reports and other files live.
    data_dir: Path = Field(default_factory=lambda: Path.cwd() / "var")
    host: str = "127.0.0.1"
    port: int = 8000
    #: Reverse proxies whose ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed (comma-separated addresses or
    #: networks, ``*`` for any): the client address that login throttling, rate limits and the audit log use is then
    #: the one the proxy saw. Anyone else's forwarded headers are ignored, so a client cannot choose its address.
    trusted_proxies: str = "127.0.0.1"
    #: Session cookie lifetime.
    session_hours: int = 12
    #: Cookies get the ``Secure`` flag (turn on behind HTTPS).
    secure_cookies: bool = False
    #: Failed logins allowed per login (and per client address) inside the window before refusing.
    login_max_failures: int = 5
    login_window_seconds: int = 900
    #: Default country for phone numbers written without a country code.
    default_country: str = "RU"
    #: UI language by default.
    language: str = "ru"
    #: Audit partitions are created this many months ahead.
    audit_months_ahead: int = 3
    #: Telephony of ``dialer run`` / ``dialer engine``: ``auto`` (SIP when an active trunk is configured, else
    #: simulated), ``sip`` or ``sim``.
    telephony: Literal["auto", "sip", "sim"] = "auto"
    #: SIP signalling: address and port the driver listens on (UDP, and TCP when ``sip_tcp``).
    sip_bind_host: str = "0.0.0.0"
    sip_port: int = 5060
    sip_tcp: bool = True
    #: Address advertised in Via, Contact and SDP when the dialer is behind NAT; empty: the bound address.
    sip_public_host: str = ""
    #: Realm of the registrar operators' phones authenticate with.
    sip_realm: str = "dialer"
    #: The TLS listener for phones (usually 5061); unset: none (TLS trunks need no listener).
    sip_tls_port: int | None = None
    #: PEM certificate chain and key of the TLS listener.
    sip_tls_cert: str = ""
    sip_tls_key: str = ""
    #: PEM authorities that sign carriers' certificates; empty: the system's.
    sip_tls_ca: str = ""
    #: Comma-separated DNS servers ("ip" or "ip:port") for trunks' SRV/NAPTR lookups; empty: /etc/resolv.conf.
    sip_dns_servers: str = ""
    #: Comma-separated digest algorithms offered to phones without a setting of their own (MD5, SHA-256).
    sip_digest_algorithms: str = "MD5"
    #: Inbound calls (engine/inbound.py): how long a caller waits for a free operator (at most the campaign's
    #: ``max_hold_s``), the message then played (a file of the hold-audio directory, without ``.wav``) and for how
    #: long, and how soon after the callback booked for him is due.
    inbound_queue_s: float = 30.0
    inbound_message: str = "callback-message"
    inbound_message_s: float = 8.0
    inbound_callback_after_s: float = 60.0
    #: UDP ports for hold music RTP.
    rtp_port_min: int = 20000
    rtp_port_max: int = 20999
    #: Where the WAV files campaigns name as hold audio live (default ``<data_dir>/audio``).
    hold_audio_dir_override: Path | None = Field(default=None, alias="DIALER_HOLD_AUDIO_DIR")
    #: Limits on an uploaded table (contact imports, DNC files), checked while it is read, so a hostile
    #: file (an XLSX "zip bomb", a giant cell, millions of empty rows) is refused quickly with bounded
    #: memory. Rows of a sheet or records of a CSV file, blank ones included (imports of 1 M rows are normal).
    upload_max_rows: int = Field(default=1_500_000, gt=0)
    #: Columns of a row; an XLSX cell beyond them, or a non-empty CSV cell beyond them, refuses the file.
    upload_max_columns: int = Field(default=500, gt=0)
    #: Characters of one cell (Excel's own limit is 32,767).
    upload_max_cell_chars: int = Field(default=32_767, gt=0)
    #: Uncompressed size of an upload in MiB: a CSV file's size; an XLSX workbook's parts, as its ZIP
    #: directory declares them and as counted while they are unpacked (1.5 M rows of 5 columns take ~0.5 GiB).
    upload_max_unpacked_mb: int = Field(default=2048, gt=0)

    @property
    def import_dir(self) -> Path:
        return self.data_dir / "imports"

    @property
    def hold_audio_dir(self) -> Path:
        return self.hold_audio_dir_override or self.data_dir / "audio"


@lru_cache
def get_settings() -> Settings:
    return Settings()
