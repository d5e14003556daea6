"""SIP messages: parsing and serialising requests and responses (RFC 3261 §7, §20, §25).

A :class:`Message` keeps its headers as an ordered list of ``(name, value)`` with canonical names, so that
compact forms (``v``, ``i``, ``m`` …) read like their long forms and several header lines of one name
(``Via``, ``Record-Route``) keep their order. Comma-separated values are split with :func:`split_values`,
which respects quoted strings and ``<...>``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

COMPACT = {"v": "Via", "i": "Call-ID", "m": "Contact", "f": "From", "t": "To", "l": "Content-Length",
           "c": "Content-Type", "k": "Supported", "s": "Subject", "e": "Content-Encoding", "o": "Event",
           "r": "Refer-To", "u": "Allow-Events", "x": "Session-Expires"}
_SPECIAL = {"call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate", "www-auth": "WWW-Auth",
            "mime-version": "MIME-Version", "rack": "RAck", "rseq": "RSeq", "sip-etag": "SIP-ETag"}
MULTI = frozenset({"Via", "Route", "Record-Route", "Contact", "Allow", "Supported", "Require"})

REASONS = {100: "Trying", 180: "Ringing", 183: "Session Progress", 200: "OK", 202: "Accepted",
           400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 407: "Proxy Authentication Required", 408: "Request Timeout",
           420: "Bad Extension", 423: "Interval Too Brief", 480: "Temporarily Unavailable",
           481: "Call/Transaction Does Not Exist", 486: "Busy Here", 487: "Request Terminated",
           488: "Not Acceptable Here", 491: "Request Pending", 500: "Server Internal Error",
           501: "Not Implemented", 503: "Service Unavailable", 603: "Decline"}

BRANCH_MAGIC = "z9hG4bK"


class ParseError(ValueError):
    """A malformed SIP message."""


_CANONICAL: dict[str, str] = {}


def canonical(name: str) -> str:
    """The header's canonical name (compact forms expanded); memoised, headers repeat in every message."""
    known = _CANONICAL.get(name)
    if known is not None:
        return known
    result = _canonical(name)
    if len(_CANONICAL) < 4096:
        _CANONICAL[name] = result
    return result


def _canonical(name: str) -> str:
    low = name.strip().lower()
    if len(low) == 1 and low in COMPACT:
        return COMPACT[low]
    special = _SPECIAL.get(low)
    if special is not None:
        return special
    return "-".join(part.capitalize() for part in low.split("-"))


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return BRANCH_MAGIC + secrets.token_hex(8)


def split_values(value: str) -> list[str]:
    """Split a comma-separated header value, ignoring commas inside quotes and angle brackets."""
    if "," not in value:
        value = value.strip()
        return [value] if value else []
    parts: list[str] = []
    depth, quoted, start = 0, False, 0
    i = 0
    while i < len(value):
        ch = value[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(value[start:i].strip())
            start = i + 1
        i += 1
    last = value[start:].strip()
    if last:
        parts.append(last)
    return [p for p in parts if p]


def split_outside_quotes(text: str, sep: str) -> list[str]:
    """Split ``text`` at ``sep`` characters that are not inside a quoted string (RFC 3261 §25.1: a
    ``quoted-string`` may hold any separator, and ``quoted-pair`` escapes a quote or backslash)."""
    if '"' not in text:
        return text.split(sep)
    parts: list[str] = []
    start = 0
    while (i := _find_outside_quotes(text, sep, start)) >= 0:
        parts.append(text[start:i])
        start = i + 1
    parts.append(text[start:])
    return parts


def unquote(value: str) -> str:
    """A parameter value as meant: a quoted string loses its quotes and its quoted-pairs are resolved
    (``"a \\"b\\""`` → ``a "b"``); a token stays as it is."""
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        inner = value[1:-1]
        if "\\" not in inner:
            return inner
        out: list[str] = []
        i = 0
        while i < len(inner):
            if inner[i] == "\\" and i + 1 < len(inner):
                i += 1
            out.append(inner[i])
            i += 1
        return "".join(out)
    return value


def quote(value: str) -> str:
    """``value`` as a quoted string (quotes and backslashes escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_params(text: str, sep: str = ";") -> dict[str, str]:
    """``;a=1;b;c="x y"`` (leading ';' optional) → ``{"a": "1", "b": "", "c": "x y"}`` (names lower-cased).

    Separators inside quoted values belong to the value (``uri="sip:h;transport=udp"`` is one parameter); quoted
    values are returned unquoted. ``sep=","`` reads the auth-params of a digest header."""
    params: dict[str, str] = {}
    for raw in split_outside_quotes(text, sep):
        raw = raw.strip()
        if not raw:
            continue
        name, _, val = raw.partition("=")
        params[name.strip().lower()] = unquote(val)
    return params


def _find_outside_quotes(text: str, ch: str, start: int = 0) -> int:
    """The index of the first ``ch`` at or after ``start`` that is not inside a quoted string, or -1."""
    quoted, i = False, start
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == ch:
            return i
        i += 1
    return -1


@dataclass(slots=True)
class Uri:
    """A SIP URI: ``sip:user@host:port;params`` (headers after '?' are kept verbatim)."""

    scheme: str
    user: str | None
    host: str
    port: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    headers: str = ""

    @classmethod
    def parse(cls, text: str) -> Uri:
        text = text.strip()
        scheme, sep, rest = text.partition(":")
        if not sep or scheme.lower() not in ("sip", "sips", "tel"):
            raise ParseError(f"not a SIP URI: {text!r}")
        rest, _, headers = rest.partition("?")
        hostport, *param_parts = rest.split(";")
        user: str | None = None
        if "@" in hostport:
            user, _, hostport = hostport.rpartition("@")
        port: int | None = None
        if hostport.startswith("["):
            host, _, tail = hostport[1:].partition("]")
            if tail.startswith(":"):
                port = int(tail[1:])
        else:
            host, sep, port_text = hostport.partition(":")
            if sep:
                try:
                    port = int(port_text)
                except ValueError as err:
                    raise ParseError(f"bad port in {text!r}") from err
        return cls(scheme.lower(), user, host, port, parse_params(";".join(param_parts)), headers)

    def __str__(self) -> str:
        out = f"{self.scheme}:"
        if self.user is not None:
            out += f"{self.user}@"
        out += f"[{self.host}]" if ":" in self.host else self.host
        if self.port is not None:
            out += f":{self.port}"
        for name, val in self.params.items():
            out += f";{name}={val}" if val else f";{name}"
        if self.headers:
            out += f"?{self.headers}"
        return out

    def transport(self) -> str:
        return self.params.get("transport", "udp").lower()

    def address(self) -> tuple[str, int]:
        return self.host, self.port or (5061 if self.scheme == "sips" else 5060)


_TOKEN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")


def _params_text(params: dict[str, str]) -> str:
    """Header parameters written back: a value that is not a token (or host) is quoted."""
    out = ""
    for name, val in params.items():
        if not val:
            out += f";{name}"
        elif all(c in _TOKEN or c in ":[]" for c in val):
            out += f";{name}={val}"
        else:
            out += f";{name}={quote(val)}"
    return out


@dataclass(slots=True)
class Address:
    """A name-addr or addr-spec with header parameters: ``"Bob" <sip:bob@h>;tag=1``."""

    uri: Uri
    display: str = ""
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Address:
        text = text.strip()
        lt = _find_outside_quotes(text, "<")
        if lt >= 0:
            gt = text.find(">", lt)
            if gt < 0:
                raise ParseError(f"unbalanced <> in {text!r}")
            display = unquote(text[:lt])
            return cls(Uri.parse(text[lt + 1:gt]), display, parse_params(text[gt + 1:]))
        # addr-spec form: parameters after the URI belong to the header, not the URI
        uri_text, _, params = text.partition(";")
        return cls(Uri.parse(uri_text), "", parse_params(params))

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def __str__(self) -> str:
        out = f"{quote(self.display)} <{self.uri}>" if self.display else f"<{self.uri}>"
        return out + _params_text(self.params)


@dataclass(slots=True)
class Via:
    transport: str
    host: str
    port: int | None
    params: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> Via:
        proto, _, rest = text.strip().partition(" ")
        parts = proto.split("/")
        if len(parts) != 3:
            raise ParseError(f"bad Via {text!r}")
        sent_by, _, params = rest.strip().partition(";")
        sent_by = sent_by.strip()
        port: int | None = None
        if sent_by.startswith("["):
            host, _, tail = sent_by[1:].partition("]")
            if tail.startswith(":"):
                port = int(tail[1:])
        else:
            host, sep, port_text = sent_by.partition(":")
            if sep:
                port = int(port_text)
        return cls(parts[2].strip().upper(), host, port, parse_params(params))

    @property
    def branch(self) -> str:
        return self.params.get("branch", "")


class Message:
    """A SIP request (``method`` set) or response (``status`` set)."""

    __slots__ = ("body", "headers", "method", "reason", "status", "uri")

    def __init__(self, *, method: str | None = None, uri: str | None = None, status: int | None = None,
                 reason: str = "", headers: Iterable[tuple[str, str]] = (), body: bytes = b"") -> None:
        self.method = method
        self.uri = uri
        self.status = status
        self.reason = reason
        self.headers: list[tuple[str, str]] = list(headers)
        self.body = body

    # --- building ---------------------------------------------------------------------------------------
    @classmethod
    def request(cls, method: str, uri: str, headers: Iterable[tuple[str, str]] = (), body: bytes = b"") -> Message:
        return cls(method=method, uri=uri, headers=headers, body=body)

    def response(self, status: int, reason: str = "", *, to_tag: str | None = None,
                 headers: Iterable[tuple[str, str]] = (), body: bytes = b"") -> Message:
        """A response to this request: Via, From, To, Call-ID and CSeq copied (RFC 3261 §8.2.6)."""
        copied = [(n, v) for n, v in self.headers if n in ("Via", "From", "Call-ID", "CSeq", "To")]
        if to_tag is not None:
            copied = [(n, v if n != "To" or ";tag=" in v else f"{v};tag={to_tag}") for n, v in copied]
        return Message(status=status, reason=reason or REASONS.get(status, ""), headers=[*copied, *headers],
                       body=body)

    # --- reading ----------------------------------------------------------------------------------------
    @property
    def is_request(self) -> bool:
        return self.method is not None

    def get(self, name: str, default: str | None = None) -> str | None:
        for n, v in self.headers:
            if n == name:
                return v
        return default

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def all(self, name: str) -> list[str]:
        """Every value of a header, multi-line and comma-separated ones split into a flat list."""
        values = [v for n, v in self.headers if n == name]
        if name in MULTI:
            return [part for v in values for part in split_values(v)]
        return values

    def set(self, name: str, value: str) -> None:
        """Replace every line of ``name`` by one with ``value`` (appended if absent)."""
        for i, (n, _) in enumerate(self.headers):
            if n == name:
                self.headers[i] = (name, value)
                self.headers = [h for j, h in enumerate(self.headers) if h[0] != name or j == i]
                return
        self.headers.append((name, value))

    def remove(self, name: str) -> None:
        self.headers = [h for h in self.headers if h[0] != name]

    @property
    def call_id(self) -> str:
        return self["Call-ID"]

    @property
    def cseq(self) -> tuple[int, str]:
        num, _, method = self["CSeq"].strip().partition(" ")
        return int(num), method.strip().upper()

    @property
    def via(self) -> Via:
        vias = self.all("Via")
        if not vias:
            raise ParseError("no Via")
        return Via.parse(vias[0])

    @property
    def from_(self) -> Address:
        return Address.parse(self["From"])

    @property
    def to(self) -> Address:
        return Address.parse(self["To"])

    def contact(self) -> Address | None:
        values = self.all("Contact")
        if not values or values[0].strip() == "*":
            return None
        return Address.parse(values[0])

    @property
    def summary(self) -> str:
        if self.method is not None:
            return f"{self.method} {self.uri}"
        return f"{self.status} {self.reason}"

    # --- wire format ------------------------------------------------------------------------------------
    def encode(self) -> bytes:
        first = f"{self.method} {self.uri} SIP/2.0" if self.method else f"SIP/2.0 {self.status} {self.reason}"
        lines = [first]
        lines.extend(f"{n}: {v}" for n, v in self.headers if n != "Content-Length")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body

    @classmethod
    def parse(cls, data: bytes) -> Message:
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep:
            head, sep, body = data.partition(b"\n\n")
            if not sep:
                raise ParseError("no end of headers")
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError:
            text = head.decode("latin-1")
        lines = text.replace("\r\n", "\n").split("\n")
        while lines and not lines[0].strip():  # keep-alive CRLFs before a message
            lines.pop(0)
        if not lines:
            raise ParseError("empty message")
        first = lines[0].strip()
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if not line:
                continue
            if line[0] in " \t" and headers:  # folded continuation line
                name, value = headers[-1]
                headers[-1] = (name, f"{value} {line.strip()}")
                continue
            name, colon, value = line.partition(":")
            if not colon:
                raise ParseError(f"bad header line {line!r}")
            headers.append((canonical(name), value.strip()))
        length_text = next((v for n, v in headers if n == "Content-Length"), None)
        if length_text is not None:
            try:
                length = int(length_text)
            except ValueError as err:
                raise ParseError("bad Content-Length") from err
            if length > len(body):
                raise ParseError("truncated body")
            body = body[:length]
        if first.startswith("SIP/2.0 "):
            _, _, rest = first.partition(" ")
            code_text, _, reason = rest.partition(" ")
            try:
                status = int(code_text)
            except ValueError as err:
                raise ParseError(f"bad status line {first!r}") from err
            msg = cls(status=status, reason=reason.strip(), headers=headers, body=body)
        else:
            parts = first.split(" ")
            if len(parts) != 3 or parts[2] != "SIP/2.0":
                raise ParseError(f"bad request line {first!r}")
            msg = cls(method=parts[0].upper(), uri=parts[1], headers=headers, body=body)
        for required in ("Call-ID", "CSeq", "From", "To", "Via"):
            if msg.get(required) is None:
                raise ParseError(f"missing {required}")
        return msg

    def __repr__(self) -> str:
        return f"<Message {self.summary} call-id={self.get('Call-ID')}>"


def frame_length(buffer: bytes | bytearray) -> int | None:
    """For stream transports: the size of the first complete message in ``buffer`` or None if incomplete."""
    start = 0
    while buffer[start:start + 2] == b"\r\n":  # keep-alives
        start += 2
    end = buffer.find(b"\r\n\r\n", start)
    if end < 0:
        return None
    length = 0
    for line in bytes(buffer[start:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"content-length", b"l"):
            length = int(value.strip() or b"0")
            break
    total = end + 4 + length
    return total if len(buffer) >= total else None
