"""Recordings encrypted at rest: AES-256-GCM in chunks, so a player's range request decrypts only what it reads.

File layout (``docs/recordings.md``)::

    header (36 bytes): b"DLRC" | version 1 | 3 zero bytes | chunk size u32 | nonce prefix 8 bytes
                       | plaintext size u64 | key id 8 bytes
    chunk i:           AES-256-GCM(plaintext[i*chunk : (i+1)*chunk]) | 16-byte tag

Chunk ``i`` is sealed with nonce ``prefix || i`` (u32, big-endian; a fresh random prefix per file) and the
associated data ``header || i || last`` (``last`` 1 for the final chunk): chunks cannot be reordered, dropped,
moved to another file, or the file cut after a chunk boundary without the tag check failing.

Keys are 32 random bytes; their id is the first 8 bytes of SHA-256 over a label and the key (hex in the database), so
a recording names the key that encrypted it and keys can rotate: the current key encrypts, every key of the
:class:`Keyring` decrypts. Without a configured key one is generated into ``<data_dir>/recording.key`` (base64,
mode 0600) at first use — it must be backed up with the database.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import os
import secrets
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"DLRC"
VERSION = 1
HEADER = struct.Struct("!4sB3xI8sQ8s")
TAG = 16
CHUNK = 64 * 1024
KEY_FILE = "recording.key"


class Readable(Protocol):
    """What a stored recording is read through: a local file, or a bucket's ranged reader."""

    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def close(self) -> None: ...


class RecordingKeyError(Exception):
    """A key setting or key file that cannot be used (the message says which and why)."""


class DecryptionError(Exception):
    """The file is not a recording of this format, was altered, or the key is not the one that encrypted it."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"dialer recording key\x00" + key).digest()[:8].hex()


def parse_key(text: str, where: str) -> bytes:
    """A base64 key of 32 bytes; :class:`RecordingKeyError` naming ``where`` otherwise."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as err:
        raise RecordingKeyError(f"{where}: not base64 ({err})") from None
    if len(key) != 32:
        raise RecordingKeyError(f"{where}: an AES-256 key is 32 bytes, this one is {len(key)}")
    return key


def generate_key_file(path: Path) -> bytes:
    """Read the key file, or create it (mode 0600, never overwriting one another process made meanwhile)."""
    if path.exists():
        return parse_key(path.read_text(encoding="ascii"), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return parse_key(path.read_text(encoding="ascii"), str(path))
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(base64.b64encode(key).decode() + "\n")
        out.flush()
        os.fsync(out.fileno())
    return key


@dataclasses.dataclass(frozen=True)
class Keyring:
    """The key that encrypts new recordings and every key that may decrypt old ones, by id."""

    current: bytes
    keys: dict[str, bytes]

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    @classmethod
    def of(cls, current: bytes, *others: bytes) -> Keyring:
        return cls(current, {key_id(k): k for k in (current, *others)})

    def key(self, kid: str) -> bytes:
        try:
            return self.keys[kid]
        except KeyError:
            raise DecryptionError(f"the recording was encrypted with key {kid}, which is not configured "
                                  "(DIALER_MEDIA_RECORDING_KEY / DIALER_MEDIA_RECORDING_OLD_KEYS)") from None

    def link_secret(self) -> bytes:
        """The HMAC key of the recordings' time-limited links, derived from the current key."""
        return hmac.new(self.current, b"dialer recording links", hashlib.sha256).digest()


class RecordingKeyMissing(RecordingKeyError):
    """No key is configured and none was generated yet (nothing was ever recorded with a generated key)."""


def load_keyring(configured: str, old: str, data_dir: Path, *, generate: bool = True) -> Keyring:
    """The configured key (base64) — or the generated key file — plus the old keys and any key file left from
    before a key was configured. ``generate=False`` (the API's reading side) never creates the key file:
    :class:`RecordingKeyMissing` when there is no key at all."""
    others: list[bytes] = [parse_key(k, f"DIALER_MEDIA_RECORDING_OLD_KEYS[{i}]")
                           for i, k in enumerate(p for p in old.split(",") if p.strip())]
    path = data_dir / KEY_FILE
    if configured.strip():
        current = parse_key(configured, "DIALER_MEDIA_RECORDING_KEY")
        if path.exists():
            others.append(parse_key(path.read_text(encoding="ascii"), str(path)))
    elif generate or path.exists():
        current = generate_key_file(path)
    else:
        raise RecordingKeyMissing(f"no recordings key: DIALER_MEDIA_RECORDING_KEY is not set and {path} does not "
                                  "exist (it is generated when the first recording is stored)")
    return Keyring.of(current, *others)


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack("!I", index)


def _aad(header: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack("!IB", index, 1 if last else 0)


def encrypt(src: BinaryIO, size: int, out: BinaryIO, key: bytes, *, chunk: int = CHUNK) -> int:
    """Encrypt ``size`` bytes of ``src`` into ``out``; returns the bytes written."""
    prefix = secrets.token_bytes(8)
    header = HEADER.pack(MAGIC, VERSION, chunk, prefix, size, bytes.fromhex(key_id(key)))
    out.write(header)
    written = len(header)
    aead = AESGCM(key)
    count = max(1, -(-size // chunk))
    for index in range(count):
        data = src.read(min(chunk, size - index * chunk))
        sealed = aead.encrypt(_nonce(prefix, index), data, _aad(header, index, index == count - 1))
        out.write(sealed)
        written += len(sealed)
    return written


@dataclasses.dataclass(frozen=True)
class _Header:
    raw: bytes
    chunk: int
    prefix: bytes
    size: int
    kid: str


def _read_header(stream: Readable) -> _Header:
    raw = stream.read(HEADER.size)
    if len(raw) != HEADER.size:
        raise DecryptionError("not an encrypted recording: the file is shorter than its header")
    magic, version, chunk, prefix, size, kid = HEADER.unpack(raw)
    if magic != MAGIC or version != VERSION or not 0 < chunk <= 16 * 1024 * 1024:
        raise DecryptionError("not an encrypted recording of this version")
    return _Header(raw, chunk, prefix, size, kid.hex())


class EncryptedFile:
    """Reads the plaintext of an encrypted recording, whole or by byte range, checking every chunk it touches."""

    def __init__(self, stream: Readable, keyring: Keyring) -> None:
        self.stream = stream
        self.header = _read_header(stream)
        self.aead = AESGCM(keyring.key(self.header.kid))

    @property
    def size(self) -> int:
        return self.header.size

    @property
    def key_id(self) -> str:
        return self.header.kid

    def _chunk(self, index: int) -> bytes:
        h = self.header
        count = max(1, -(-h.size // h.chunk))
        if not 0 <= index < count:
            raise DecryptionError(f"chunk {index} is outside the file")
        length = min(h.chunk, h.size - index * h.chunk)
        self.stream.seek(HEADER.size + index * (h.chunk + TAG))
        sealed = self.stream.read(length + TAG)
        if len(sealed) != length + TAG:
            raise DecryptionError("the file is cut short")
        try:
            return self.aead.decrypt(_nonce(h.prefix, index), sealed, _aad(h.raw, index, index == count - 1))
        except InvalidTag:
            raise DecryptionError("the recording was altered or the key is wrong (authentication failed)") from None

    def read_range(self, start: int, end: int) -> Iterator[bytes]:
        """Plaintext bytes ``start`` … ``end`` inclusive, chunk by chunk."""
        if self.size == 0:
            self._chunk(0)  # the empty file's tag is still checked
            return
        h = self.header
        for index in range(start // h.chunk, end // h.chunk + 1):
            data = self._chunk(index)
            offset = index * h.chunk
            yield data[max(0, start - offset):end - offset + 1]

    def read_all(self) -> bytes:
        return b"".join(self.read_range(0, self.size - 1)) if self.size else b"".join(self.read_range(0, 0))
