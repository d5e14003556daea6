"""Recordings in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Yandex Object Storage …): the second
:class:`dialer.media.recordings.RecordingStorage`, for installations whose recordings outgrow a local disk.

Path-style requests (``<endpoint>/<bucket>/<prefix><key>``) signed with AWS Signature Version 4 over the exact
payload's SHA-256, through httpx (no SDK). ``put`` is one PUT (recordings are a few MB; the file is already encrypted,
so the bucket never sees audio); ``open`` gives a seekable reader whose reads are ranged GETs, so playback fetches only
the encrypted chunks a player asks for; ``delete`` is a DELETE (a missing object is no error). Settings:
``DIALER_MEDIA_RECORDING_STORAGE=s3`` and ``DIALER_MEDIA_S3_*`` (docs/recordings.md).
"""

from __future__ import annotations

import hashlib
import hmac
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class S3Error(Exception):
    """The bucket refused a request; the message has the status and the bucket's own error code."""


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign_v4(method: str, url: str, headers: dict[str, str], payload_sha256: str, *, access_key: str,
            secret_key: str, region: str, now: datetime, service: str = "s3") -> dict[str, str]:
    """``headers`` plus ``x-amz-date``, ``x-amz-content-sha256`` and the ``Authorization`` of AWS Signature Version 4
    (docs.aws.amazon.com, "Signature Version 4 signing process")."""
    parts = urlsplit(url)
    amz_date = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    signed = {k.lower(): v.strip() for k, v in headers.items()}
    signed.update({"host": parts.netloc, "x-amz-date": amz_date, "x-amz-content-sha256": payload_sha256})
    names = sorted(signed)
    query = "&".join(sorted(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                            for k, _, v in (p.partition("=") for p in parts.query.split("&") if p)))
    canonical = "\n".join([method, quote(parts.path or "/", safe="/-_.~"), query,
                           "".join(f"{n}:{signed[n]}\n" for n in names), ";".join(names), payload_sha256])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out = {k: v for k, v in signed.items() if k != "host"}
    out["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={';'.join(names)}, "
                            f"Signature={signature}")
    return out


class S3Storage:
    """Recordings as objects of one bucket (see the module's docstring). Methods block: call them in a thread."""

    def __init__(self, endpoint: str, bucket: str, *, access_key: str, secret_key: str, region: str = "us-east-1",
                 prefix: str = "", timeout_s: float = 30.0, client: httpx.Client | None = None) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"DIALER_MEDIA_S3_ENDPOINT must be an http(s) address, not {endpoint!r}")
        if not bucket:
            raise ValueError("DIALER_MEDIA_S3_BUCKET is required with DIALER_MEDIA_RECORDING_STORAGE=s3")
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.access_key, self.secret_key, self.region = access_key, secret_key, region
        self.client = client or httpx.Client(timeout=timeout_s)

    def url(self, key: str) -> str:
        if ".." in key.split("/") or key.startswith("/"):
            raise ValueError(f"storage key {key!r} is not a plain relative name")
        return f"{self.endpoint}/{self.bucket}/{self.prefix}{key}"

    def request(self, method: str, key: str, *, body: bytes = b"", headers: dict[str, str] | None = None
                ) -> httpx.Response:
        url = self.url(key)
        payload = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        signed = sign_v4(method, url, headers or {}, payload, access_key=self.access_key,
                         secret_key=self.secret_key, region=self.region, now=datetime.now(UTC))
        return self.client.request(method, url, content=body or None, headers=signed)

    @staticmethod
    def _raise(response: httpx.Response, what: str) -> None:
        code = ""
        if "<Code>" in response.text:
            code = response.text.split("<Code>", 1)[1].split("</Code>", 1)[0]
        raise S3Error(f"{what}: the bucket answered {response.status_code} {code}".rstrip())

    def put(self, key: str, src: Path) -> None:
        response = self.request("PUT", key, body=src.read_bytes(),
                                headers={"content-type": "application/octet-stream"})
        if response.status_code != 200:
            self._raise(response, f"storing {key}")

    def open(self, key: str) -> S3Reader:
        response = self.request("HEAD", key)
        if response.status_code == 404:
            raise FileNotFoundError(f"{self.bucket}/{self.prefix}{key}")
        if response.status_code != 200:
            self._raise(response, f"reading {key}")
        return S3Reader(self, key, int(response.headers["content-length"]))

    def delete(self, key: str) -> None:
        response = self.request("DELETE", key)
        if response.status_code not in (200, 204, 404):
            self._raise(response, f"deleting {key}")

    def close(self) -> None:
        self.client.close()


#: The least a ranged GET asks for: a player reading 64 KiB chunks one after another costs one request per MiB, not
#: one per chunk (the bytes beyond what is read are kept for the next reads of the same stream).
READ_AHEAD = 1 << 20


class S3Reader(io.RawIOBase):
    """A seekable, read-only view of one object: reads are ranged GETs of at least :data:`READ_AHEAD` bytes, kept
    in a buffer that serves the following reads."""

    def __init__(self, storage: S3Storage, key: str, size: int, *, read_ahead: int = READ_AHEAD) -> None:
        super().__init__()
        self.storage, self.key, self.size, self.position = storage, key, size, 0
        self.read_ahead = read_ahead
        #: The object's bytes ``buffer_start`` … ``buffer_start + len(buffer) - 1`` last fetched.
        self.buffer, self.buffer_start = b"", 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self.size - self.position
        size = min(size, self.size - self.position)
        if size <= 0:
            return b""
        offset = self.position - self.buffer_start
        if not (offset >= 0 and offset + size <= len(self.buffer)):
            self._fetch(max(size, self.read_ahead))
            offset = self.position - self.buffer_start
        data = self.buffer[offset:offset + size]
        self.position += len(data)
        return data

    def _fetch(self, size: int) -> None:
        """``size`` bytes from the position (fewer at the end) into the buffer, by one ranged GET."""
        last = min(self.size, self.position + size) - 1
        response = self.storage.request("GET", self.key, headers={"range": f"bytes={self.position}-{last}"})
        if response.status_code not in (200, 206):
            self.storage._raise(response, f"reading {self.key}")
        data = response.content
        if response.status_code == 200:  # a server that ignores Range
            data = data[self.position:last + 1]
        self.buffer, self.buffer_start = data, self.position

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)
