"""Request signatures of 003 §10.6: ``X-Client-Sign = sha256hex(client_id + json + key)``.

The dialer signs every webhook it sends this way and puts the time of sending into the signed JSON itself
(``sent_at``, also sent as ``X-Timestamp``), so a receiver that checks the signature and refuses a ``sent_at`` older
than a few minutes (:data:`REPLAY_WINDOW_S`) cannot be fed a recorded request again; ``id`` (also ``X-Event-ID``)
is the same for every try of one event, so a receiver deduplicates retries by it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

__all__ = ["REPLAY_WINDOW_S", "new_client_id", "new_key", "sign", "verify"]

#: How old a signed request may be for :func:`verify` to accept it.
REPLAY_WINDOW_S = 300.0


def sign(client_id: str, body: bytes | str, key: str) -> str:
    """The hex SHA-256 of the client id, the exact body bytes and the key, concatenated (003 §10.6)."""
    data = body.encode() if isinstance(body, str) else body
    return hashlib.sha256(client_id.encode() + data + key.encode()).hexdigest()


def verify(client_id: str, body: bytes, key: str, signature: str, *, sent_at: datetime | None = None,
           now: datetime | None = None, window_s: float = REPLAY_WINDOW_S) -> bool:
    """A receiver's check: the signature matches and, when the time of sending is given, it is recent."""
    if not hmac.compare_digest(sign(client_id, body, key), signature.strip().lower()):
        return False
    if sent_at is not None and now is not None:
        return abs((now - sent_at).total_seconds()) <= window_s
    return True


def new_client_id() -> str:
    """A 32-hex-digit client id like 003's "уникальный код идентификации"."""
    return secrets.token_hex(16).upper()


def new_key() -> str:
    """A fresh signing key (32 hex digits, as in 003's example)."""
    return secrets.token_hex(16).upper()
