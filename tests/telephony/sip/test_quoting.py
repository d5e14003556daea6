"""Quoted strings in SIP headers (RFC 3261 §25.1: ``quoted-string``, ``quoted-pair``): a ``;`` ``,`` ``<`` ``>`` or
``=`` inside quotes belongs to the value, and ``\\"`` is a quote. Every header with quoted parts is checked: the
digest headers (Authorization, WWW-Authenticate, Proxy-*), name-addr headers (Contact, From, To with display
names and parameters) and Via."""

from __future__ import annotations

import pytest

from dialer.telephony.sip.auth import Credentials, parse_digest, pick_challenge, verify
from dialer.telephony.sip.message import Address, Message, Via, parse_params, split_values


def test_digest_uri_with_semicolon_is_one_parameter() -> None:
    """The defect: ``uri="sip:host:5095;transport=udp"`` was split into ``uri`` and ``transport``."""
    auth = parse_digest('Digest username="op-1", realm="dialer", nonce="n1", '
                        'uri="sip:127.0.0.1:5095;transport=udp", response="abc", algorithm=MD5, '
                        'qop=auth, nc=00000001, cnonce="c;1,2"')
    assert auth["uri"] == "sip:127.0.0.1:5095;transport=udp"
    assert auth["cnonce"] == "c;1,2"
    assert "transport" not in auth and auth["username"] == "op-1" and auth["nc"] == "00000001"


def test_digest_answer_with_such_a_uri_verifies() -> None:
    creds = Credentials("op-1", "s3cret")
    challenge = parse_digest('Digest realm="dialer", nonce="n;2", algorithm=SHA-256, qop="auth,auth-int"')
    assert challenge["qop"] == "auth,auth-int" and challenge["nonce"] == "n;2"
    header = creds.authorization(challenge, "REGISTER", "sip:127.0.0.1:5095;transport=udp")
    assert verify(parse_digest(header), "REGISTER", "s3cret")
    assert not verify(parse_digest(header), "REGISTER", "wrong")


def test_escaped_quotes_and_backslashes_in_digest_values() -> None:
    auth = parse_digest(r'Digest realm="a \"quoted\" realm, with comma", nonce="x\\y", opaque=""')
    assert auth == {"realm": 'a "quoted" realm, with comma', "nonce": "x\\y", "opaque": ""}


def test_proxy_authenticate_challenges_pick_the_strongest() -> None:
    values = ['Digest realm="r;1", nonce="a,b", algorithm=MD5',
              'Digest realm="r;1", nonce="c;d", algorithm=SHA-256, qop="auth"']
    chosen = pick_challenge(values)
    assert chosen["algorithm"] == "SHA-256" and chosen["nonce"] == "c;d" and chosen["realm"] == "r;1"


def test_display_names_with_separators_in_name_addr_headers() -> None:
    addr = Address.parse(r'"Иванов; Пётр <VIP>, \"отдел\"" <sip:op-1@h:5060;transport=udp>;tag=7;x="a;b,c"')
    assert addr.display == 'Иванов; Пётр <VIP>, "отдел"'
    assert addr.uri.user == "op-1" and addr.uri.params == {"transport": "udp"}
    assert addr.params == {"tag": "7", "x": "a;b,c"}
    again = Address.parse(str(addr))
    assert (again.display, again.params, str(again.uri)) == (addr.display, addr.params, str(addr.uri))


def test_contacts_split_only_outside_quotes() -> None:
    raw = (b'REGISTER sip:h SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n'
           b'To: <sip:a@h>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n'
           b'Contact: "Desk, 2;a" <sip:a@10.0.0.1>;expires=60, "B" <sip:a@10.0.0.2>\r\nContent-Length: 0\r\n\r\n')
    msg = Message.parse(raw)
    contacts = [Address.parse(c) for c in msg.all("Contact")]
    assert [(c.display, c.uri.host, c.params) for c in contacts] == [
        ("Desk, 2;a", "10.0.0.1", {"expires": "60"}), ("B", "10.0.0.2", {})]
    assert msg.contact() is not None and msg.contact().display == "Desk, 2;a"  # type: ignore[union-attr]


def test_via_with_quoted_parameter() -> None:
    via = Via.parse('SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKx;comment="a;b=c";rport')
    assert (via.host, via.port, via.branch) == ("10.0.0.1", 5062, "z9hG4bKx")
    assert via.params == {"branch": "z9hG4bKx", "comment": "a;b=c", "rport": ""}


@pytest.mark.parametrize(("text", "parsed"), [
    (';a=1;b;c="x y"', {"a": "1", "b": "", "c": "x y"}),
    ('c="x;y";d=2', {"c": "x;y", "d": "2"}),
    (r'e="say \"hi\";ok"', {"e": 'say "hi";ok'}),
    ("", {}),
])
def test_parameters(text: str, parsed: dict[str, str]) -> None:
    assert parse_params(text) == parsed


def test_split_values_keeps_quoted_commas() -> None:
    assert split_values(r'"a,\"b" <sip:x>, <sip:y;p=1,2>') == [r'"a,\"b" <sip:x>', "<sip:y;p=1,2>"]
