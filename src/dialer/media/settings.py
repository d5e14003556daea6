"""Settings of the media plane (``DIALER_MEDIA_*``): whether calls may be anchored on rtpengine, which rtpengine
(a child process of the product, or an external one) and where recordings are spooled. See docs/sip.md, "Media
plane (rtpengine)"."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dialer.config import Settings

__all__ = ["MediaSettings", "get_media_settings"]


class MediaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIALER_MEDIA_", extra="ignore")

    #: The media plane on: ``dialer run`` / ``dialer engine`` start rtpengine (or reach ``ng_url``) and the SIP driver
    #: anchors calls that need it (recorded ones; every call with ``relay_all``). Off: media flows directly between
    #: carrier and phone, nothing is started.
    enabled: bool = False
    #: An external rtpengine's ng address (``udp:HOST:PORT``, e.g. a production one with its kernel module); empty:
    #: the product starts its own rtpengine as a child process.
    ng_url: str = ""
    #: The own rtpengine's ng port on 127.0.0.1.
    ng_port: int = Field(2223, gt=0, lt=65536)
    #: The rtpengine program.
    rtpengine_binary: str = "rtpengine"
    #: The address rtpengine relays media on, as its ``--interface``: ``IP`` or ``IP!ADVERTISED`` (behind NAT).
    #: Empty: ``DIALER_SIP_PUBLIC_HOST`` if that is an IP address, else the address of the default route.
    interface: str = ""
    #: UDP ports of the own rtpengine (two per call side: RTP and RTCP); open them in the firewall.
    port_min: int = Field(30000, gt=1023, lt=65536)
    port_max: int = Field(39999, gt=1023, lt=65536)
    #: rtpengine's log level (syslog numbers: 3 errors … 6 every command, 7 debug).
    log_level: int = Field(5, ge=0, le=7)
    #: rtpengine's worker threads (``--num-threads``); 0: its default, one per CPU core.
    threads: int = Field(0, ge=0, le=64)
    #: Anchor every call on the relay, not only the recorded ones.
    relay_all: bool = False
    #: Where recordings go: ``spool/`` (finished calls' pcaps with their sidecars), ``rtpengine/`` (the own
    #: rtpengine's recording directory). Default ``<data_dir>/recordings``.
    recordings_dir: Path | None = None
    #: With an external rtpengine: its ``--recording-dir`` as this machine sees it (a shared directory). Empty:
    #: recording is unavailable with an external rtpengine.
    rtpengine_recording_dir: Path | None = None
    #: How long an ng request waits for its first reply (doubled at each of ``ng_tries`` tries).
    ng_retransmit_s: float = Field(0.5, gt=0)
    ng_tries: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _ports(self) -> MediaSettings:
        if self.port_max - self.port_min < 3:
            raise ValueError("DIALER_MEDIA_PORT_MAX must be at least DIALER_MEDIA_PORT_MIN + 3")
        return self

    def recordings_path(self, settings: Settings) -> Path:
        return self.recordings_dir or settings.data_dir / "recordings"


@lru_cache
def get_media_settings() -> MediaSettings:
    return MediaSettings()
