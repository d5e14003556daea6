"""Registering the dialer with a carrier (RFC 3261 §10) for trunks that accept calls only from registered accounts.

A :class:`TrunkRegistration` keeps one trunk registered: REGISTER with the trunk's account (``From``/``To``
``sip:user@domain``, one Call-ID and rising CSeq for the life of the binding, our address as Contact), answers
a 401/407 digest challenge, takes a 423's ``Min-Expires``, reads the lifetime the carrier granted (the
``expires`` of our Contact in the 200, else its ``Expires``) and registers again before it runs out; after a
failure it tries again ``registration_retry_s`` later. Each outcome goes to ``on_change(registered, detail)``:
the driver takes calls through the trunk only while it is registered. :meth:`unregister` removes the binding
(``Expires: 0``) when the trunk is stopped.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable

from dialer.core.clock import wait_for
from dialer.telephony.sip.auth import AuthError, Credentials, pick_challenge
from dialer.telephony.sip.config import TrunkConfig
from dialer.telephony.sip.message import Address, Message, ParseError, new_tag
from dialer.telephony.sip.transaction import TransactionLayer, via_header
from dialer.telephony.sip.transport import Peer

log = logging.getLogger(__name__)

#: How long one REGISTER (with its challenge round) may take before it counts as unanswered.
ANSWER_TIMEOUT_S = 10.0


def refresh_after(granted: int) -> float:
    """Seconds until the next REGISTER: well before a long lifetime ends, half-way through a short one."""
    return float(granted - 10) if granted > 60 else max(granted / 2, 1.0)


class TrunkRegistration:
    """Keeps one trunk registered; ``run()`` is the loop, ``registered``/``detail`` the last outcome."""

    def __init__(self, layer: TransactionLayer, config: TrunkConfig, peer: Peer,
                 local: Callable[[str], tuple[str, int]], user_agent: str,
                 on_change: Callable[[bool, str], None]) -> None:
        if config.username is None or config.password is None:
            raise ValueError(f"trunk {config.name}: registration needs a username and a password")
        self.layer, self.config, self.peer, self.local = layer, config, peer, local
        self.user_agent, self.on_change = user_agent, on_change
        self.credentials = Credentials(config.username, config.password, config.realm)
        self.call_id = f"{uuid.uuid4().hex}@dialer"
        self.tag = new_tag()
        self.cseq = 0
        self.registered = False
        self.detail = "registering"

    @property
    def uri(self) -> str:
        """The registrar's URI: the trunk's domain (``from_domain``, else host and port)."""
        cfg = self.config
        domain = cfg.from_domain or (cfg.host if cfg.port == 5060 else f"{cfg.host}:{cfg.port}")
        return f"sip:{domain}" + (f";transport={self.peer.transport}" if self.peer.reliable else "")

    def _contact(self) -> str:
        host, port = self.local(self.peer.transport)
        return f"<sip:{self.config.username}@{host}:{port}" + (
            f";transport={self.peer.transport}>" if self.peer.reliable else ">")

    def request(self, expires: int, authorization: tuple[str, str] | None = None) -> Message:
        cfg = self.config
        host, port = self.local(self.peer.transport)
        self.cseq += 1
        aor = f"<sip:{cfg.username}@{cfg.from_domain or cfg.host}>"
        headers = [("Via", via_header(self.peer.transport, host, port)), ("Max-Forwards", "70"),
                   ("From", f"{aor};tag={self.tag}"), ("To", aor), ("Call-ID", self.call_id),
                   ("CSeq", f"{self.cseq} REGISTER"), ("Contact", self._contact()), ("Expires", str(expires)),
                   ("User-Agent", self.user_agent)]
        if authorization is not None:
            headers.append(authorization)
        return Message.request("REGISTER", self.uri, headers)

    def granted(self, response: Message, asked: int) -> int:
        """The lifetime the registrar gave our binding."""
        host, port = self.local(self.peer.transport)
        for contact in response.all("Contact"):  # split at commas outside quotes and <>
            try:
                address = Address.parse(contact)
            except ParseError:
                continue
            expires = address.params.get("expires", "")
            if address.uri.address() == (host, port) and expires.isdigit():
                return int(expires)
        header = response.get("Expires")
        return int(header) if header and header.strip().isdigit() else asked

    async def register(self, expires: int) -> tuple[bool, str, int]:
        """One registration (``expires`` 0 removes it): (registered, what happened, lifetime granted)."""
        request = self.request(expires)
        challenged = 0
        for _ in range(6):
            response = await self.layer.final_response(request, self.peer, ANSWER_TIMEOUT_S)
            if response is None:
                return False, f"no answer to REGISTER within {ANSWER_TIMEOUT_S:g} s", 0
            code = response.status or 0
            if code in (401, 407):
                header, answer = (("WWW-Authenticate", "Authorization") if code == 401
                                  else ("Proxy-Authenticate", "Proxy-Authorization"))
                try:
                    challenge = pick_challenge(response.all(header))
                    if challenged and challenge.get("stale", "").lower() != "true":
                        return False, f"the carrier refused the credentials ({code} {response.reason})", 0
                    value = self.credentials.authorization(challenge, "REGISTER", self.uri)
                except (AuthError, ParseError) as err:
                    return False, f"cannot answer the carrier's challenge: {err}", 0
                challenged += 1
                request = self.request(expires, (answer, value))
                continue
            if code == 423 and expires:
                minimum = (response.get("Min-Expires") or "").strip()
                if minimum.isdigit() and int(minimum) > expires:
                    expires, challenged = int(minimum), 0
                    request = self.request(expires)
                    continue
            if 200 <= code < 300:
                lifetime = self.granted(response, expires) if expires else 0
                return True, (f"registered for {lifetime} s" if expires else "unregistered"), lifetime
            return False, f"REGISTER answered {code} {response.reason}", 0
        return False, "REGISTER went round in circles (too many challenges)", 0

    async def run(self) -> None:
        """Register, keep registered, and say how it went after each attempt."""
        cfg = self.config
        while True:
            ok, detail, lifetime = await self.register(cfg.registration_expires_s)
            if ok and lifetime <= 0:
                ok, detail = False, "the carrier granted no registration lifetime"
            # Said when it changes: registered or not, and why it failed (not every refresh).
            if ok != self.registered or (not ok and detail != self.detail):
                (log.info if ok else log.warning)("trunk %s: %s", cfg.name, detail)
            self.registered, self.detail = ok, detail
            self.on_change(ok, detail)
            await self.layer.clock.sleep(refresh_after(lifetime) if ok else cfg.registration_retry_s)

    async def unregister(self) -> None:
        """Remove the binding (best effort, briefly)."""
        if not self.registered:
            return
        self.registered = False
        with contextlib.suppress(TimeoutError):
            await wait_for(self.layer.clock, self.register(0), 2.0)
