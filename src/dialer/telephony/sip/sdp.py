"""Just enough SDP (RFC 4566 / 3264): our own G.711 offer, reading where media goes, keeping our origin.

The dialer's own media (hold audio) is a G.711 session; the operator's and the carrier's descriptions
pass through it untouched except for the ``o=`` line, which towards one peer must keep one origin with a
growing version (RFC 3264 §8), whoever wrote the rest.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from dialer.telephony.sip.rtp import PT_PCMA, PT_PCMU


@dataclass(slots=True)
class Origin:
    """Our ``o=`` line towards one peer; ``version`` grows with each description we send it."""

    host: str
    session: int = field(default_factory=lambda: secrets.randbits(31))
    version: int = 0

    def line(self) -> str:
        family = "IP6" if ":" in self.host else "IP4"
        return f"o=dialer {self.session} {self.version} IN {family} {self.host}"

    def next_line(self) -> str:
        self.version += 1
        return self.line()


def offer(origin: Origin, host: str, port: int, direction: str = "sendrecv") -> bytes:
    """Our G.711 offer; ``direction`` "inactive" holds a peer (RFC 3264 §8.4: it sends us nothing)."""
    if direction not in ("sendrecv", "sendonly", "recvonly", "inactive"):
        raise ValueError(f"{direction!r} is not an SDP direction")
    family = "IP6" if ":" in host else "IP4"
    lines = ["v=0", origin.line(), "s=dialer", f"c=IN {family} {host}", "t=0 0",
             f"m=audio {port} RTP/AVP {PT_PCMA} {PT_PCMU} 101",
             f"a=rtpmap:{PT_PCMA} PCMA/8000", f"a=rtpmap:{PT_PCMU} PCMU/8000",
             "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=ptime:20", f"a={direction}"]
    return ("\r\n".join(lines) + "\r\n").encode()


def with_origin(body: bytes, origin: Origin) -> bytes:
    """``body`` with its ``o=`` line replaced by the next version of ``origin``."""
    lines = body.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
    out = [origin.next_line() if line.startswith("o=") else line for line in lines if line]
    return ("\r\n".join(out) + "\r\n").encode()


@dataclass(frozen=True, slots=True)
class Media:
    host: str
    port: int
    payload_types: tuple[int, ...]


def audio_media(body: bytes) -> Media | None:
    """Where the peer wants audio (session or media-level ``c=``), and its payload types in order."""
    host: str | None = None
    media_host: str | None = None
    port: int | None = None
    pts: tuple[int, ...] = ()
    in_audio = False
    for raw in body.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if line.startswith("m="):
            in_audio = line.startswith("m=audio") and port is None
            if in_audio:
                parts = line[2:].split()
                try:
                    port = int(parts[1].split("/")[0])
                    pts = tuple(int(p) for p in parts[3:] if p.isdigit())
                except (IndexError, ValueError):
                    return None
        elif line.startswith("c="):
            addr = line[2:].split()
            if len(addr) >= 3:
                if port is None:
                    host = addr[2].split("/")[0]
                elif in_audio:
                    media_host = addr[2].split("/")[0]
    target = media_host or host
    if target is None or port is None:
        return None
    return Media(target, port, pts)


def pick_codec(media: Media) -> int | None:
    """The first G.711 payload type the peer lists (its preference), or None."""
    for pt in media.payload_types:
        if pt in (PT_PCMA, PT_PCMU):
            return pt
    return None
