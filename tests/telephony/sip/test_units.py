"""The SIP driver's pure parts: messages, digest, G.711, WAV, SDP, outcome mapping."""

from __future__ import annotations

import io
import math
import struct
import wave

import pytest

from dialer.telephony.base import CallEventKind
from dialer.telephony.sip import outcome
from dialer.telephony.sip.auth import Credentials, NonceIssuer, digest_response, parse_digest, pick_challenge, verify
from dialer.telephony.sip.config import DeviceAccount, TrunkConfig
from dialer.telephony.sip.dialog import Leg
from dialer.telephony.sip.message import Address, Message, Uri, frame_length
from dialer.telephony.sip.rtp import (
    PT_PCMA,
    PT_PCMU,
    alaw_to_linear,
    decode,
    encode,
    linear_to_alaw,
    linear_to_ulaw,
    read_wav,
    resample,
    ulaw_to_linear,
)
from dialer.telephony.sip.sdp import Origin, audio_media, offer, pick_codec, with_origin
from dialer.telephony.sip.transport import Peer

RESPONSE = (
    b"SIP/2.0 200 OK\r\n"
    b"v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;rport=5060, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKdef\r\n"
    b"Via: SIP/2.0/TCP [2001:db8::1]:5070;branch=z9hG4bKghi\r\n"
    b"f: \"Dialer, Inc\" <sip:74950000000@example.com>;tag=aaa\r\n"
    b"t: <sip:79120000001@carrier.example>;tag=bbb\r\n"
    b"i: call-1@host\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Record-Route: <sip:p1.example;lr>, <sip:p2.example;lr;ftag=aaa>\r\n"
    b"Record-Route: <sip:p3.example:5080;lr>\r\n"
    b"m: <sip:carrier@203.0.113.5:5062;transport=tcp>\r\n"
    b"Subject: a folded\r\n   header\r\n"
    b"c: application/sdp\r\n"
    b"l: 4\r\n\r\nv=0\r\nextra"
)


def test_parse_compact_headers_multiple_via_and_record_route() -> None:
    msg = Message.parse(RESPONSE)
    assert msg.status == 200 and msg.reason == "OK" and not msg.is_request
    assert msg.call_id == "call-1@host" and msg.cseq == (7, "INVITE")
    vias = msg.all("Via")
    assert len(vias) == 3 and msg.via.branch == "z9hG4bKabc" and msg.via.params["rport"] == "5060"
    from dialer.telephony.sip.message import Via
    assert Via.parse(vias[2]).host == "2001:db8::1" and Via.parse(vias[2]).port == 5070
    assert msg.from_.display == "Dialer, Inc" and msg.from_.tag == "aaa"
    assert msg.to.uri.user == "79120000001" and msg.to.tag == "bbb"
    assert msg.all("Record-Route") == ["<sip:p1.example;lr>", "<sip:p2.example;lr;ftag=aaa>",
                                       "<sip:p3.example:5080;lr>"]
    contact = msg.contact()
    assert contact is not None and contact.uri.address() == ("203.0.113.5", 5062) and contact.uri.transport() == "tcp"
    assert msg["Subject"] == "a folded header"
    assert msg.body == b"v=0\r"  # Content-Length rules
    again = Message.parse(msg.encode())
    assert again.headers == msg.headers and again.body == msg.body


def test_request_round_trip_and_response_copies_headers() -> None:
    req = Message.request("OPTIONS", "sip:op@10.0.0.5:5062", [
        ("Via", "SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK1;rport"), ("From", "<sip:a@b>;tag=1"),
        ("To", "<sip:op@b>"), ("Call-ID", "x"), ("CSeq", "1 OPTIONS"), ("Max-Forwards", "70")])
    parsed = Message.parse(req.encode())
    assert parsed.method == "OPTIONS" and parsed.uri == "sip:op@10.0.0.5:5062"
    resp = parsed.response(200, to_tag="t9")
    assert resp.status == 200 and resp["To"] == "<sip:op@b>;tag=t9" and resp["CSeq"] == "1 OPTIONS"
    assert resp.get("Max-Forwards") is None


def test_stream_framing() -> None:
    data = RESPONSE + b"\r\n\r\n" + RESPONSE[:50]
    size = frame_length(data)
    assert size is not None and Message.parse(data[:size]).call_id == "call-1@host"
    assert frame_length(RESPONSE[:100]) is None


def test_uri_and_address() -> None:
    uri = Uri.parse("sip:+7912@[2001:db8::2]:5070;user=phone;lr")
    assert uri.user == "+7912" and uri.host == "2001:db8::2" and uri.port == 5070 and "lr" in uri.params
    assert str(uri) == "sip:+7912@[2001:db8::2]:5070;user=phone;lr"
    addr = Address.parse("sip:bob@example.com;tag=77")
    assert addr.tag == "77" and addr.uri.params == {}


def test_leg_routes_loose_and_strict() -> None:
    def leg(route: list[str]) -> Leg:
        made = Leg.new(call_id="c", local=Address(Uri("sip", "a", "h")), remote=Address(Uri("sip", "b", "h")),
                       target=Uri.parse("sip:b@198.51.100.7:5090"), peer=Peer("udp", "198.51.100.1", 5060),
                       contact="<sip:a@h>", via_host="h", via_port=5060, role="customer", origin_host="h")
        made.route = route
        return made

    loose = leg(["<sip:192.0.2.1:5070;lr>", "<sip:192.0.2.2;lr>"])
    bye = loose.request("BYE")
    assert bye.uri == "sip:b@198.51.100.7:5090" and bye.all("Route") == loose.route
    assert loose.next_hop() == Peer("udp", "192.0.2.1", 5070)
    strict = leg(["<sip:192.0.2.3>"])
    bye = strict.request("BYE")
    assert bye.uri == "sip:192.0.2.3" and bye.all("Route") == ["<sip:b@198.51.100.7:5090>"]
    assert leg([]).next_hop() == Peer("udp", "198.51.100.7", 5090)


def test_digest_rfc2617_vector_and_sha256() -> None:
    # RFC 2617 §3.5
    assert digest_response("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life", "GET", "/dir/index.html",
                           "dcd98b7102dd2f0e8b11d0f600bfb0c093", qop="auth", nc="00000001",
                           cnonce="0a4f113b") == "6629fae49393a05397450978507c4ef1"
    challenge = pick_challenge(['Digest realm="r", nonce="n1", algorithm=MD5, qop="auth"',
                                'Digest realm="r", nonce="n1", algorithm=SHA-256, qop="auth"'])
    assert challenge["algorithm"] == "SHA-256"
    creds = Credentials("user", "pw")
    value = creds.authorization(challenge, "INVITE", "sip:1@h")
    parsed = parse_digest(value)
    assert parsed["algorithm"] == "SHA-256" and len(parsed["response"]) == 64
    assert verify(parsed, "INVITE", "pw") and not verify(parsed, "INVITE", "wrong")
    assert "pw" not in repr(creds)
    with pytest.raises(Exception, match="realm"):
        Credentials("user", "pw", realm="other").authorization(challenge, "INVITE", "sip:1@h")


def test_nonces_are_signed() -> None:
    issuer = NonceIssuer()
    nonce = issuer.issue()
    assert issuer.check(nonce) == (True, False)
    assert issuer.check(nonce[:-1] + ("0" if nonce[-1] != "0" else "1"))[0] is False
    assert NonceIssuer().check(nonce)[0] is False


def test_secrets_stay_out_of_repr() -> None:
    assert "hunter2" not in repr(TrunkConfig(1, "t", "h", password="hunter2"))
    assert "hunter2" not in repr(DeviceAccount("op", "hunter2"))


def test_g711_known_values_and_round_trip() -> None:
    assert linear_to_ulaw(0) == 0xFF and linear_to_ulaw(-32768) == 0x00 and linear_to_ulaw(32767) == 0x80
    assert linear_to_alaw(0) == 0xD5 and linear_to_alaw(32767) == 0xAA and linear_to_alaw(-32768) == 0x2A
    assert ulaw_to_linear(0xFF) == 0 and alaw_to_linear(0xD5) == 8
    previous_u, previous_a = -40000, -40000
    for sample in range(-32768, 32768, 7):
        u, a = ulaw_to_linear(linear_to_ulaw(sample)), alaw_to_linear(linear_to_alaw(sample))
        # logarithmic quantisation: the error grows with the magnitude, never beyond one step
        assert abs(u - sample) <= max(8, abs(sample) // 16 + 16)
        assert abs(a - sample) <= max(16, abs(sample) // 16 + 32)
        assert u >= previous_u and a >= previous_a  # monotonic
        previous_u, previous_a = u, a
    samples = [int(8000 * math.sin(i / 5)) for i in range(400)]
    for pt in (PT_PCMU, PT_PCMA):
        data = encode(samples, pt)
        assert len(data) == 400
        assert max(abs(x - y) for x, y in zip(decode(data, pt), samples, strict=True)) < 600


def _wav(rate: int, channels: int, frames: list[int]) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", s) for s in frames for _ in range(channels)))
    return buf.getvalue()


def test_wav_reader_mixes_down_and_resamples() -> None:
    wav = read_wav(_wav(16000, 2, [1000 * (i % 4) for i in range(1600)]))
    assert wav.rate == 16000 and len(wav.samples) == 1600 and wav.samples[:4].tolist() == [0, 1000, 2000, 3000]
    down = resample(wav.samples, wav.rate)
    assert len(down) == 800 and down[:2].tolist() == [0, 2000]
    alaw = b"RIFF" + struct.pack("<I", 4 + 26 + 8 + 4) + b"WAVE" + b"fmt " + struct.pack(
        "<IHHIIHHH", 18, 6, 1, 8000, 8000, 1, 8, 0) + b"data" + struct.pack("<I", 4) + bytes([0xD5, 0x55, 0xAA, 0x2A])
    decoded = read_wav(alaw)
    assert decoded.rate == 8000 and decoded.samples.tolist()[:2] == [8, -8]
    with pytest.raises(ValueError):
        read_wav(b"RIFF0000WAVEjunk")


def test_sdp_offer_origin_and_media() -> None:
    origin = Origin("192.0.2.10")
    body = offer(origin, "192.0.2.10", 20000)
    media = audio_media(body)
    assert media is not None and (media.host, media.port) == ("192.0.2.10", 20000) and pick_codec(media) == PT_PCMA
    theirs = b"v=0\r\no=phone 1 1 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    rewritten = with_origin(theirs, origin).decode()
    assert f"o=dialer {origin.session} 1 IN IP4 192.0.2.10" in rewritten and "m=audio 4000 RTP/AVP 0" in rewritten
    assert f"o=dialer {origin.session} 2 " in with_origin(theirs, origin).decode()
    media = audio_media(b"v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 5 RTP/AVP 18 0\r\nc=IN IP4 2.2.2.2\r\n")
    assert media is not None and media.host == "2.2.2.2" and pick_codec(media) == PT_PCMU


@pytest.mark.parametrize(("code", "reason", "kind", "cause"), [
    (486, "Busy Here", CallEventKind.busy, "486 Busy Here"),
    (600, "Busy Everywhere", CallEventKind.busy, "600 Busy Everywhere"),
    (603, "Decline", CallEventKind.rejected, "603 Decline"),
    (404, "Not Found", CallEventKind.failed, "invalid number: 404 Not Found"),
    (484, "Address Incomplete", CallEventKind.failed, "invalid number: 484 Address Incomplete"),
    (408, "Request Timeout", CallEventKind.no_answer, "408 Request Timeout"),
    (480, "Unavailable", CallEventKind.no_answer, "480 Unavailable"),
    (487, "Request Terminated", CallEventKind.no_answer, "487 Request Terminated"),
    (503, "Service Unavailable", CallEventKind.failed, "503 Service Unavailable"),
    (500, "Oops", CallEventKind.failed, "500 Oops"),
])
def test_outcome_mapping(code: int, reason: str, kind: CallEventKind, cause: str) -> None:
    assert outcome(code, reason) == (kind, cause)


def test_redirect_is_reported_not_followed() -> None:
    resp = Message(status=302, reason="Moved", headers=[("Contact", "<sip:other@192.0.2.9>")])
    kind, cause = outcome(302, "Moved", resp)
    assert kind == CallEventKind.failed and cause == "302 Moved; redirect not followed: <sip:other@192.0.2.9>"
