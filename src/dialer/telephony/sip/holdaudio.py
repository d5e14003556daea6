"""The hold audio a fresh installation plays: a soft two-tone chime, generated rather than shipped as a binary.

Campaigns name their hold audio (``campaigns.hold_audio``; the engine's default is ``hold-music``), and the SIP
driver looks the name up in ``SipSettings.hold_audio_dir``. When the default file is missing there at start, the
driver writes this chime: 8 kHz mono 16-bit PCM (what G.711 carries, so nothing is resampled), a "ding-dong" every
three seconds, each note a sine with a little second harmonic under a soft attack and an exponential decay that
reaches silence before the next note — the file loops without a click.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import struct
import tempfile
import wave
from pathlib import Path

from dialer.telephony.sip.rtp import encode

log = logging.getLogger(__name__)

#: The engine's default hold audio name (``EngineConfig.hold_audio``).
DEFAULT_HOLD_AUDIO = "hold-music"
RATE = 8000
#: (start s, frequency Hz): E5 then C5, twice in the loop.
NOTES = ((0.0, 659.25), (0.55, 523.25), (3.0, 659.25), (3.55, 523.25))
LOOP_S = 6.0
NOTE_S = 2.2
PEAK = 0.22  # of full scale: soft
ATTACK_S = 0.012
DECAY_S = 0.45


def chime_samples(rate: int = RATE) -> list[int]:
    """The chime loop as 16-bit samples."""
    total = int(LOOP_S * rate)
    mix = [0.0] * total
    length = int(NOTE_S * rate)
    for start_s, freq in NOTES:
        start = int(start_s * rate)
        for i in range(min(length, total - start)):
            t = i / rate
            envelope = min(1.0, t / ATTACK_S) * math.exp(-t / DECAY_S) * (1.0 - i / length)
            phase = 2 * math.pi * freq * t
            mix[start + i] += envelope * (math.sin(phase) + 0.18 * math.sin(2 * phase))
    return [round(max(-1.0, min(1.0, v * PEAK)) * 32767) for v in mix]


#: The ringback tone a customer hears while an operator's phone rings: 425 Hz (the CEPT tone Russia uses), 1 s on,
#: 4 s off (ITU-T E.180).
RINGBACK_HZ, RINGBACK_ON_S, RINGBACK_LOOP_S = 425.0, 1.0, 5.0


def ringback_samples(rate: int = RATE) -> list[int]:
    """One ringback cadence as 16-bit samples: the tone with 5 ms ramps (no clicks), then silence."""
    on, total, ramp = int(RINGBACK_ON_S * rate), int(RINGBACK_LOOP_S * rate), int(0.005 * rate)
    out = [0] * total
    for i in range(on):
        gain = min(1.0, i / ramp, (on - i) / ramp)
        out[i] = round(gain * PEAK * 32767 * math.sin(2 * math.pi * RINGBACK_HZ * i / rate))
    return out


@functools.lru_cache(maxsize=4)
def ringback(payload_type: int) -> bytes:
    """The ringback cadence encoded for ``payload_type`` (PCMA or PCMU), computed once."""
    return encode(ringback_samples(), payload_type)


def write_chime(path: Path, rate: int = RATE) -> None:
    """Write the chime to ``path`` atomically (a reader never sees half a file)."""
    _write_wav(path, chime_samples(rate), rate)


def ensure_default_hold_audio(directory: str | Path, name: str = DEFAULT_HOLD_AUDIO) -> Path | None:
    """Make sure ``<directory>/<name>.wav`` exists: write the chime when it does not. Returns the file, or None when
    it could not be written (logged; customers then wait in silence)."""
    path = Path(directory) / (name if name.endswith(".wav") else f"{name}.wav")
    if path.exists():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_chime(path)
    except OSError as err:
        log.warning("cannot write the default hold audio %s: %s", path, err)
        return None
    log.info("wrote the default hold audio %s", path)
    return path


#: The engine's default message to an inbound caller nobody can take (``EngineConfig.inbound_message``).
DEFAULT_MESSAGE = "callback-message"


def message_samples(rate: int = RATE) -> list[int]:
    """A generated stand-in for the recorded "we will call you back" message: three soft rising tones, 3 s, then
    silence to 4 s. An operator replaces the file with a recording of the same name."""
    out = [0] * int(4.0 * rate)
    for i, freq in enumerate((523.25, 659.25, 783.99)):
        start = int(i * 1.0 * rate)
        length = int(0.8 * rate)
        for n in range(length):
            t = n / rate
            env = min(1.0, t / ATTACK_S) * min(1.0, (length - n) / (ATTACK_S * rate))
            out[start + n] = int(PEAK * 32767 * env * math.sin(2 * math.pi * freq * t))
    return out


def ensure_default_message(directory: str | Path, name: str = DEFAULT_MESSAGE) -> Path | None:
    """Make sure ``<directory>/<name>.wav`` exists (the generated stand-in when it does not); None when it could
    not be written (logged; inbound callers then hear silence before they are hung up)."""
    path = Path(directory) / (name if name.endswith(".wav") else f"{name}.wav")
    if path.exists():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_wav(path, message_samples())
    except OSError as err:
        log.warning("cannot write the default inbound message %s: %s", path, err)
        return None
    log.info("wrote the default inbound message %s", path)
    return path


def _write_wav(path: Path, samples: list[int], rate: int = RATE) -> None:
    """16-bit mono WAV written atomically: to a temporary file beside ``path``, then renamed over it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh, wave.open(fh, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(rate)
            wav.writeframes(struct.pack(f"<{len(samples)}h", *samples))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
