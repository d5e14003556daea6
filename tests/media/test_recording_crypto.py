"""dialer.media.recording_crypto: chunked AES-256-GCM round trips, ranges, wrong keys and tampering refused."""

from __future__ import annotations

import base64
import io
import os
import stat
from pathlib import Path

import pytest

from dialer.media.recording_crypto import (
    HEADER,
    DecryptionError,
    EncryptedFile,
    Keyring,
    RecordingKeyError,
    encrypt,
    key_id,
    load_keyring,
)


def _sealed(data: bytes, key: bytes, chunk: int = 1000) -> io.BytesIO:
    out = io.BytesIO()
    written = encrypt(io.BytesIO(data), len(data), out, key, chunk=chunk)
    assert written == len(out.getvalue())
    out.seek(0)
    return out


@pytest.mark.parametrize("size", [0, 1, 999, 1000, 1001, 3500])
def test_round_trip_and_ranges(size: int) -> None:
    key = os.urandom(32)
    data = os.urandom(size)
    sealed = _sealed(data, key)
    reader = EncryptedFile(sealed, Keyring.of(key))
    assert reader.size == size and reader.key_id == key_id(key)
    assert reader.read_all() == data
    if size > 10:
        for first, last in [(0, 0), (5, size - 1), (size // 2, size // 2 + 7), (size - 3, size - 1)]:
            assert b"".join(reader.read_range(first, last)) == data[first:last + 1]


def test_wrong_key_is_refused() -> None:
    key, other = os.urandom(32), os.urandom(32)
    sealed = _sealed(b"secret call audio" * 100, key)
    with pytest.raises(DecryptionError, match="not configured"):
        EncryptedFile(sealed, Keyring.of(other))
    # a key that claims the right id but is not the key: the tag check fails
    sealed.seek(0)
    forged = Keyring(other, {key_id(key): other})
    with pytest.raises(DecryptionError, match="authentication failed"):
        EncryptedFile(sealed, forged).read_all()


def test_rotation_old_key_still_decrypts() -> None:
    old, new = os.urandom(32), os.urandom(32)
    sealed = _sealed(b"x" * 3000, old)
    ring = Keyring.of(new, old)
    assert ring.current_id == key_id(new)
    assert EncryptedFile(sealed, ring).read_all() == b"x" * 3000


def test_tampering_and_truncation_are_detected() -> None:
    key = os.urandom(32)
    data = os.urandom(3000)
    raw = bytearray(_sealed(data, key).getvalue())
    raw[HEADER.size + 50] ^= 1
    with pytest.raises(DecryptionError, match="authentication failed"):
        EncryptedFile(io.BytesIO(bytes(raw)), Keyring.of(key)).read_all()
    whole = _sealed(data, key).getvalue()
    with pytest.raises(DecryptionError, match="cut short"):
        EncryptedFile(io.BytesIO(whole[:-5]), Keyring.of(key)).read_all()
    # a chunk swapped with another: the nonce and associated data give it away
    size = 1000 + 16
    first, second = whole[HEADER.size:HEADER.size + size], whole[HEADER.size + size:HEADER.size + 2 * size]
    swapped = whole[:HEADER.size] + second + first + whole[HEADER.size + 2 * size:]
    with pytest.raises(DecryptionError):
        EncryptedFile(io.BytesIO(swapped), Keyring.of(key)).read_all()
    with pytest.raises(DecryptionError, match="not an encrypted recording"):
        EncryptedFile(io.BytesIO(b"OggS" + bytes(100)), Keyring.of(key))


def test_generated_key_file_is_private_and_reused(tmp_path: Path) -> None:
    ring = load_keyring("", "", tmp_path)
    path = tmp_path / "recording.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert base64.b64decode(path.read_text()) == ring.current
    assert load_keyring("", "", tmp_path).current == ring.current
    # a key configured later encrypts; the generated one still decrypts what it encrypted
    configured = base64.b64encode(os.urandom(32)).decode()
    later = load_keyring(configured, "", tmp_path)
    assert later.current != ring.current and ring.current_id in later.keys


def test_bad_key_settings_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(RecordingKeyError, match="DIALER_MEDIA_RECORDING_KEY: an AES-256 key is 32 bytes"):
        load_keyring(base64.b64encode(b"short").decode(), "", tmp_path)
    with pytest.raises(RecordingKeyError, match="DIALER_MEDIA_RECORDING_OLD_KEYS\\[0\\]: not base64"):
        load_keyring(base64.b64encode(os.urandom(32)).decode(), "!!!", tmp_path)
