"""Where the SIP driver hands a call's media to a relay (issue #16): the :class:`MediaAnchor` hook points.

Without an anchor (or with :class:`DirectMedia`) media flows directly between the carrier and the operator's phone,
as the 3PCC flows set it up, and the driver's own RTP (hold audio, ringback, messages) goes straight to the carrier.
With an anchor whose :meth:`MediaAnchor.wants` says yes for a call (it is recorded, listened to for an answering
machine …), every SDP that crosses from one side of the call to the other passes through the relay's ``offer`` /
``answer`` (rtpengine's ``ng`` semantics), so that both sides send their media to the relay:

* ``offer(from_tag=A, sdp of A)`` returns the SDP to send to B; ``answer(from_tag=A, to_tag=B, sdp of B)`` returns
  the SDP to send to A (A made the offer, B answers it);
* the tags name the two sides of a call: :data:`CUSTOMER_TAG` (the carrier's leg) and :data:`DIALER_TAG` (whatever
  the driver puts in front of the customer: its own RTP for hold audio, then an operator's phone, a consulted phone,
  an external number);
* ``delete`` when the call ends; ``start_recording``/``stop_recording`` for ``Originate.record`` and the driver's
  :class:`~dialer.telephony.base.Records` capability.

An anchor that raises fails the call cleanly — the driver never leaves a call half set up on a dead relay: a call
being placed is reported ``failed`` ("media relay unavailable"), an answered call is hung up by the dialer with that
cause, an inbound call is refused with 503. The driver wraps what the anchor raised in :class:`MediaRelayError`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from dialer.telephony.base import Originate, TelephonyError

#: The relay's name for the carrier's side of a call.
CUSTOMER_TAG = "customer"
#: The relay's name for the dialer's side of a call (its own RTP, an operator's phone, an external party).
DIALER_TAG = "dialer"


class MediaRelayError(TelephonyError):
    """The media relay failed (no answer, refused an offer): the call it was setting up fails."""


@runtime_checkable
class MediaAnchor(Protocol):
    """A media relay between a call's legs (rtpengine in dialer.media.rtpengine). Tags name the two sides of a
    call: CUSTOMER_TAG (the carrier leg) and DIALER_TAG (what the driver stands for toward the customer: its own
    RTP for hold audio, then the operator's phone, a consulted phone or an external number)."""

    def wants(self, request: Originate) -> bool:
        """Does this call's media pass the relay (recording, machine detection …)? Asked once per call."""
        ...

    async def offer(self, call_id: str, sdp: bytes, *, from_tag: str, to_tag: str | None,
                    webrtc: bool = False) -> bytes:
        """``sdp`` is ``from_tag``'s offer; returns the offer to send to the other side."""
        ...

    async def answer(self, call_id: str, sdp: bytes, *, from_tag: str, to_tag: str, webrtc: bool = False) -> bytes:
        """``sdp`` is ``to_tag``'s answer to ``from_tag``'s offer; returns the answer to send to ``from_tag``."""
        ...

    async def delete(self, call_id: str) -> None:
        """The call is over: free its relay ports (and finish its recording)."""
        ...

    async def start_recording(self, call_id: str) -> None:
        ...

    async def stop_recording(self, call_id: str) -> None:
        ...


class DirectMedia:
    """No relay: media flows directly between the peers, SDP passes unchanged (the driver never calls the media
    methods, since :meth:`wants` is always False)."""

    def wants(self, request: Originate) -> bool:
        return False

    async def offer(self, call_id: str, sdp: bytes, *, from_tag: str, to_tag: str | None,
                    webrtc: bool = False) -> bytes:
        return sdp

    async def answer(self, call_id: str, sdp: bytes, *, from_tag: str, to_tag: str, webrtc: bool = False) -> bytes:
        return sdp

    async def delete(self, call_id: str) -> None:
        return None

    async def start_recording(self, call_id: str) -> None:
        raise MediaRelayError("calls are not recorded without a media relay")

    async def stop_recording(self, call_id: str) -> None:
        raise MediaRelayError("calls are not recorded without a media relay")
