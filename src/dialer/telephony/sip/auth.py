"""HTTP digest authentication for SIP (RFC 3261 §22, RFC 2617, RFC 8760 for SHA-256), both sides.

Client side: answer a ``WWW-Authenticate`` (401) or ``Proxy-Authenticate`` (407) challenge from a trunk.
Server side: challenge operators' phones that REGISTER and check their answers; nonces are stateless
(a timestamp signed with a per-process secret) so the registrar keeps no per-nonce state.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from dialer.telephony.sip.message import parse_params, quote

ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


class AuthError(Exception):
    """A challenge that cannot be answered (unknown algorithm, wrong realm, no credentials)."""


def _hash(algorithm: str, text: str) -> str:
    return ALGORITHMS[algorithm](text.encode()).hexdigest()


def parse_digest(value: str) -> dict[str, str]:
    """``Digest realm="x", nonce="y", qop="auth,auth-int"`` → a dict with lower-case keys, values unquoted.

    The auth-params are split at commas outside quoted strings only, and nothing else splits them: a quoted
    ``uri="sip:h:5095;transport=udp"`` or ``qop="auth,auth-int"`` is one value (RFC 3261 §25.1, RFC 7616 §3.4)."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise AuthError(f"unsupported authentication scheme {scheme!r}")
    return parse_params(rest, sep=",")


def digest_response(algorithm: str, username: str, realm: str, password: str, method: str, uri: str, nonce: str,
                    *, qop: str | None = None, nc: str = "", cnonce: str = "") -> str:
    ha1 = _hash(algorithm, f"{username}:{realm}:{password}")
    ha2 = _hash(algorithm, f"{method}:{uri}")
    if qop:
        return _hash(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _hash(algorithm, f"{ha1}:{nonce}:{ha2}")


def pick_challenge(values: list[str]) -> dict[str, str]:
    """Of several challenges (a server may offer SHA-256 and MD5), the strongest one we support."""
    best: dict[str, str] | None = None
    for value in values:
        try:
            params = parse_digest(value)
        except AuthError:
            continue
        algorithm = params.get("algorithm", "MD5").upper()
        if algorithm not in ALGORITHMS:
            continue
        if best is None or algorithm == "SHA-256":
            best = params
    if best is None:
        raise AuthError("no supported digest challenge (MD5 or SHA-256)")
    return best


@dataclass(slots=True)
class Credentials:
    username: str
    password: str
    realm: str | None = None  # expected realm; None accepts any

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, realm={self.realm!r})"

    def authorization(self, challenge: dict[str, str], method: str, uri: str, nc: int = 1) -> str:
        """The ``Authorization`` / ``Proxy-Authorization`` value answering ``challenge``."""
        realm = challenge.get("realm", "")
        if self.realm is not None and realm != self.realm:
            raise AuthError(f"challenged for realm {realm!r}, configured for {self.realm!r}")
        algorithm = challenge.get("algorithm", "MD5").upper()
        if algorithm not in ALGORITHMS:
            raise AuthError(f"unsupported digest algorithm {algorithm}")
        nonce = challenge.get("nonce", "")
        qops = [q.strip() for q in challenge.get("qop", "").split(",") if q.strip()]
        if qops and "auth" not in qops:
            raise AuthError(f"unsupported qop {challenge.get('qop')}")
        qop = "auth" if qops else None
        cnonce = secrets.token_hex(8) if qop else ""
        nc_text = f"{nc:08x}" if qop else ""
        response = digest_response(algorithm, self.username, realm, self.password, method, uri, nonce,
                                   qop=qop, nc=nc_text, cnonce=cnonce)
        parts = [f"username={quote(self.username)}", f"realm={quote(realm)}", f"nonce={quote(nonce)}",
                 f"uri={quote(uri)}", f'response="{response}"', f"algorithm={algorithm}"]
        if qop:
            parts += [f"qop={qop}", f"nc={nc_text}", f'cnonce="{cnonce}"']
        if "opaque" in challenge:
            parts.append(f"opaque={quote(challenge['opaque'])}")
        return "Digest " + ", ".join(parts)


class NonceIssuer:
    """Stateless nonces: ``<timestamp>.<hmac>``; valid for ``lifetime_s``."""

    def __init__(self, lifetime_s: float = 300.0) -> None:
        self._secret = secrets.token_bytes(16)
        self.lifetime_s = lifetime_s

    def issue(self) -> str:
        stamp = f"{time.time():.3f}"
        sig = hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:16]
        return f"{stamp}.{sig}"

    def check(self, nonce: str) -> tuple[bool, bool]:
        """(authentic, stale)."""
        stamp, _, sig = nonce.rpartition(".")
        good = hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:16]
        if not hmac.compare_digest(sig, good):
            return False, False
        try:
            age = time.time() - float(stamp)
        except ValueError:
            return False, False
        return True, age > self.lifetime_s


def challenge_header(realm: str, nonce: str, algorithm: str = "MD5", *, stale: bool = False) -> str:
    text = f'Digest realm={quote(realm)}, nonce="{nonce}", algorithm={algorithm}, qop="auth"'
    return text + (", stale=true" if stale else "")


def verify(authorization: dict[str, str], method: str, password: str) -> bool:
    """Check a client's digest answer (MD5 or SHA-256, with or without qop=auth)."""
    algorithm = authorization.get("algorithm", "MD5").upper()
    if algorithm not in ALGORITHMS:
        return False
    qop = authorization.get("qop") or None
    expected = digest_response(algorithm, authorization.get("username", ""), authorization.get("realm", ""),
                               password, method, authorization.get("uri", ""), authorization.get("nonce", ""),
                               qop=qop, nc=authorization.get("nc", ""), cnonce=authorization.get("cnonce", ""))
    return hmac.compare_digest(expected, authorization.get("response", "").lower())
