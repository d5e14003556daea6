"""Generated audio for evaluating answering-machine detection (issue #16 §3), and RTP captures for SIPp to play.

Speech comes from espeak-ng's Russian voice (``-v ru`` and its male/female variants, varied speed and pitch), passed
through sox to the telephone band (300–3400 Hz, 8 kHz); silence, line noise and the voicemail beep are made with
numpy. Every sample is deterministic: its parameters are drawn from a generator seeded by (seed, class, index), so
the same call always returns the same bytes. The classes and what the detector must say about them:

=============  ==========================================================================  ===========
class          content                                                                     expected
=============  ==========================================================================  ===========
human_short    200–800 ms of line silence, a short answer ("Алло?", "Да, слушаю", "Алло,    human
               кто это?", "Да?" …), then the person waits; half with background noise
machine        a voicemail greeting of 3–10 s ("Здравствуйте, вы позвонили … оставьте       machine
               сообщение после сигнала"), half ending in a beep
silence        an answered line on which nobody speaks: digital silence or a faint floor    machine
noise          line noise without speech (hiss, hum, crackle; some of it louder than the    machine
               energy threshold), on half the samples starting after up to 1 s of silence
=============  ==========================================================================  ===========

Silence and noise are *machine*: that is app_amd's initial-silence rule (nobody spoke within
``initial_silence_ms``, ``INITIALSILENCE-2500-2500``), and it is also the right call for the product — an answer
without a voice is a machine that has not started, a fax or a dead line, and must not take an operator. Asterisk
with its energy-only silence detector calls loud noise a machine too, by another rule (a "long greeting").

Samples are 8 kHz mono 16-bit little-endian PCM. ``codec`` 0 (PCMU) or 8 (PCMA) passes a sample through a G.711
encode/decode round trip, as it arrives over RTP.

For SIPp (``play_pcap_audio``, e.g. the SIP driver's end-to-end AMD test)::

    from dialer.media.samples import SampleClass, generate, write_rtp_pcap
    sample = generate(SampleClass.machine, 0)
    write_rtp_pcap(tmp_path / "machine.pcap", sample.pcm, payload_type=8)   # PCMA, 20 ms packets
    # scenario: <exec play_pcap_audio="machine.pcap"/> after the 200 OK's ACK

:func:`write_rtp_pcap` writes a classic libpcap file (Ethernet / IPv4 / UDP / RTP, one 160-byte G.711 payload per
packet, 20 ms apart); SIPp rewrites the addresses and ports to the call's media, so the ones in the file are
placeholders. :func:`write_wav` writes a sample as a WAV file (for listening, or for the driver's ``play``).
"""

from __future__ import annotations

import enum
import functools
import random
import re
import shutil
import struct
import subprocess
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dialer.media.amd import AmdResult
from dialer.telephony.sip.rtp import PT_PCMA, PT_PCMU, decode_g711, encode_g711

__all__ = [
    "EXPECTED",
    "SAMPLE_RATE",
    "Sample",
    "SampleClass",
    "SampleToolMissing",
    "generate",
    "generate_set",
    "missing_tools",
    "write_rtp_pcap",
    "write_wav",
]

SAMPLE_RATE = 8000
_TOOLS = ("espeak-ng", "sox")


class SampleClass(enum.StrEnum):
    human_short = "human_short"
    machine = "machine"
    silence = "silence"
    noise = "noise"


#: What the detector should answer for each class (see the module docstring for why silence and noise are machines).
EXPECTED: dict[SampleClass, AmdResult] = {
    SampleClass.human_short: AmdResult.human,
    SampleClass.machine: AmdResult.machine,
    SampleClass.silence: AmdResult.machine,
    SampleClass.noise: AmdResult.machine,
}

HUMAN_PHRASES = (
    "Алло?", "Да, слушаю", "Алло, кто это?", "Да?", "Слушаю", "Алло", "Да, алло?", "Алло, слушаю вас",
    "Говорите", "Да, кто это?",
)
MACHINE_GREETINGS = (
    "Здравствуйте, вы позвонили Ивану Петрову. Сейчас я не могу ответить, оставьте сообщение после сигнала.",
    "Абонент не может ответить на ваш звонок. Оставьте голосовое сообщение после звукового сигнала.",
    "Здравствуйте! Вы позвонили в компанию Ромашка. Все операторы заняты. Пожалуйста, оставайтесь на линии.",
    "Привет, это Маша. Я сейчас занята, перезвоню позже. Оставьте сообщение.",
    "Вы позвонили на автоответчик. Говорите после сигнала.",
    "Здравствуйте, вы позвонили Светлане. К сожалению, я не могу сейчас подойти к телефону. "
    "Пожалуйста, назовите своё имя и номер телефона, и я обязательно перезвоню.",
    "Добрый день. Вы дозвонились в офис. Наш рабочий день с девяти до шести. Оставьте сообщение после сигнала.",
    "Аппарат абонента выключен или находится вне зоны действия сети. Оставьте сообщение после сигнала.",
)
_VOICES = ("ru", "ru+m1", "ru+m3", "ru+m5", "ru+f2", "ru+f3", "ru+f4")


class SampleToolMissing(RuntimeError):
    """espeak-ng or sox is not installed (Debian packages ``espeak-ng`` and ``sox``)."""


def missing_tools() -> list[str]:
    return [tool for tool in _TOOLS if shutil.which(tool) is None]


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    kind: SampleClass
    #: 8 kHz mono 16-bit little-endian PCM.
    pcm: bytes
    #: The G.711 payload type the sample went through (0 PCMU, 8 PCMA), None for none.
    codec: int | None
    #: How it was made (text, voice, speed, levels, ...), for reports and reproducing one by hand.
    params: dict[str, object] = field(default_factory=dict)

    @property
    def expected(self) -> AmdResult:
        return EXPECTED[self.kind]

    @property
    def duration_ms(self) -> int:
        return len(self.pcm) // 2 * 1000 // SAMPLE_RATE


# --- the pieces -------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=256)
def _speech(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng's voice through sox to the telephone band, peak-normalised, as float samples in [-1, 1]."""
    lacking = missing_tools()
    if lacking:
        raise SampleToolMissing(f"generating AMD samples needs {' and '.join(lacking)} (apt-get install "
                                f"{' '.join(lacking)})")
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
                         check=True, capture_output=True, timeout=60).stdout
    raw = subprocess.run(["sox", "-t", "wav", "-", "-t", "raw", "-r", str(SAMPLE_RATE), "-e", "signed-integer",
                          "-b", "16", "-c", "1", "-L", "-", "sinc", "300-3400", "norm", "-1"],
                         input=wav, check=True, capture_output=True, timeout=60).stdout
    audio = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    # espeak pads its output with silence; trim it so the sample's own silences are the ones we add.
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    return audio[loud[0]:loud[-1] + 1] if loud.size else audio


def _ms(ms: float) -> int:
    return round(ms * SAMPLE_RATE / 1000)


def _line_noise(rng: np.random.Generator, n: int, rms: float, colour: float, hum: float,
                crackle: float) -> np.ndarray:
    """Noise with a 1/f^colour spectrum (0 white, 1 pink, 2 brown) at ``rms`` (16-bit units), plus mains hum at
    50 Hz and harmonics (``hum`` of the rms) and random clicks (``crackle`` per second)."""
    if n == 0 or rms <= 0:
        return np.zeros(n)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    freqs[0] = freqs[1] if n > 1 else 1.0
    spectrum /= freqs ** (colour / 2)
    noise = np.fft.irfft(spectrum, n)
    noise *= 1.0 / max(float(np.sqrt(np.mean(noise ** 2))), 1e-12)
    if hum > 0:
        t = np.arange(n) / SAMPLE_RATE
        phase = rng.uniform(0, 2 * np.pi)
        mains = sum(np.sin(2 * np.pi * 50 * k * t + phase * k) / k for k in (1, 3, 5, 7))
        noise = noise + hum * np.sqrt(2) * mains
    if crackle > 0:
        clicks = rng.random(n) < crackle / SAMPLE_RATE
        noise = noise + clicks * rng.choice([-1.0, 1.0], n) * 8.0
    return noise * rms


def _beep(rng: np.random.Generator) -> np.ndarray:
    freq = float(rng.choice([425.0, 800.0, 1000.0, 1400.0]))
    t = np.arange(_ms(rng.uniform(300, 700))) / SAMPLE_RATE
    tone = np.sin(2 * np.pi * freq * t) * 0.3
    ramp = min(40, t.size // 2)
    if ramp:
        envelope = np.linspace(0.0, 1.0, ramp)
        tone[:ramp] *= envelope
        tone[-ramp:] *= envelope[::-1]
    return tone


def _to_pcm(audio: np.ndarray, codec: int | None) -> bytes:
    pcm = np.clip(np.round(audio), -32768, 32767).astype("<i2").tobytes()
    if codec is not None:
        pcm = decode_g711(codec, encode_g711(codec, pcm))
    return pcm


def _rng(seed: int, kind: SampleClass, index: int) -> tuple[random.Random, np.random.Generator]:
    picker = random.Random(f"amd-{seed}-{kind}-{index}")  # str seeds hash with SHA-512: stable across runs
    return picker, np.random.default_rng(picker.getrandbits(64))


# --- the classes ---------------------------------------------------------------------------------------------------
def generate(kind: SampleClass | str, index: int, *, seed: int = 0, codec: int | None = PT_PCMA) -> Sample:
    """The ``index``-th sample of ``kind`` (the same bytes for the same arguments)."""
    kind = SampleClass(kind)
    if codec not in (None, PT_PCMU, PT_PCMA):
        raise ValueError(f"codec must be None, 0 (PCMU) or 8 (PCMA), not {codec!r}")
    picker, rng = _rng(seed, kind, index)
    params: dict[str, object] = {}
    if kind in (SampleClass.human_short, SampleClass.machine):
        text = picker.choice(HUMAN_PHRASES if kind is SampleClass.human_short else MACHINE_GREETINGS)
        voice = picker.choice(_VOICES)
        speed = picker.randint(140, 200) if kind is SampleClass.human_short else picker.randint(150, 190)
        pitch = picker.randint(30, 70)
        level_db = picker.uniform(-26.0, -12.0)  # speech RMS relative to full scale
        if kind is SampleClass.human_short:
            speech = _speech(text, voice, speed, pitch)
        else:  # sentence by sentence, with the pauses a recorded greeting has between them
            gaps = []
            pieces: list[np.ndarray] = []
            for sentence in re.findall(r"[^.!?]+[.!?]?", text):
                if pieces:
                    gaps.append(round(picker.uniform(150, 700)))
                    pieces.append(np.zeros(_ms(gaps[-1])))
                pieces.append(_speech(sentence.strip(), voice, speed, pitch))
            speech = np.concatenate(pieces)
            params["pauses_ms"] = gaps
        speech = speech * (10 ** (level_db / 20) * 32768 / max(float(np.sqrt(np.mean(speech ** 2))), 1e-12))
        if kind is SampleClass.human_short:
            lead_ms = picker.uniform(200, 800)
            parts = [np.zeros(_ms(lead_ms)), speech, np.zeros(max(0, _ms(5500) - _ms(lead_ms) - speech.size))]
        else:
            lead_ms = picker.uniform(100, 1000)
            parts = [np.zeros(_ms(lead_ms)), speech]
            if picker.random() < 0.5:
                parts += [np.zeros(_ms(picker.uniform(200, 600))), _beep(rng) * 32768]
                params["beep"] = True
            parts.append(np.zeros(_ms(1500)))
        audio = np.concatenate([p for p in parts if p.size > 0])
        if picker.random() < 0.5:
            noise_db = level_db - picker.uniform(20.0, 35.0)
            audio = audio + _line_noise(rng, audio.size, 10 ** (noise_db / 20) * 32768,
                                        colour=picker.choice([0.0, 1.0]), hum=picker.choice([0.0, 0.3]),
                                        crackle=0.0)
            params["noise_db"] = round(noise_db, 1)
        params.update(text=text, voice=voice, speed=speed, pitch=pitch, level_db=round(level_db, 1),
                      lead_ms=round(lead_ms), speech_ms=speech.size * 1000 // SAMPLE_RATE)
    elif kind is SampleClass.silence:
        floor = picker.choice([0.0, 0.0, picker.uniform(2.0, 40.0)])
        audio = _line_noise(rng, _ms(6000), floor, colour=1.0, hum=0.0, crackle=0.0)
        params["floor_rms"] = round(floor, 1)
    else:
        rms = picker.choice([picker.uniform(60.0, 300.0), picker.uniform(300.0, 1500.0)])
        colour = picker.choice([0.0, 1.0, 2.0])
        hum = picker.choice([0.0, 0.5, 2.0])
        crackle = picker.choice([0.0, 0.0, 3.0])
        onset_ms = picker.choice([0, round(picker.uniform(100, 1000))])  # noise present at once, or starting late
        audio = np.concatenate([np.zeros(_ms(onset_ms)),
                                _line_noise(rng, _ms(6000 - onset_ms), rms, colour=colour, hum=hum, crackle=crackle)])
        params.update(rms=round(rms, 1), colour=colour, hum=hum, crackle=crackle, onset_ms=onset_ms)
    return Sample(f"{kind}-{index:03d}", kind, _to_pcm(audio, codec), codec, params)


def generate_set(per_class: int, *, seed: int = 0, kinds: tuple[SampleClass, ...] = tuple(SampleClass),
                 ) -> list[Sample]:
    """``per_class`` samples of each class, alternating PCMA and PCMU round trips (as calls arrive over RTP)."""
    if per_class < 1:
        raise ValueError("per_class must be at least 1")
    return [generate(kind, i, seed=seed, codec=PT_PCMA if i % 2 == 0 else PT_PCMU)
            for kind in kinds for i in range(per_class)]


# --- files ---------------------------------------------------------------------------------------------------------
def write_wav(path: str | Path, pcm: bytes) -> Path:
    """8 kHz mono 16-bit PCM as a WAV file."""
    path = Path(path)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm[:len(pcm) & ~1])
    return path


def _checksum(data: bytes) -> int:
    if len(data) & 1:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def write_rtp_pcap(path: str | Path, pcm: bytes, *, payload_type: int = PT_PCMA,
                   src: tuple[str, int] = ("192.0.2.1", 40000), dst: tuple[str, int] = ("192.0.2.2", 40000),
                   ssrc: int = 0x5EED0AAD) -> Path:
    """``pcm`` (8 kHz mono 16-bit) as a libpcap capture of RTP: Ethernet / IPv4 / UDP / RTP, G.711
    ``payload_type`` (0 PCMU, 8 PCMA), 160 samples (20 ms) per packet 20 ms apart, the last one padded with
    silence. The addresses are placeholders (SIPp's ``play_pcap_audio`` sends to the call's media address)."""
    payload = encode_g711(payload_type, pcm)
    silence = encode_g711(payload_type, b"\0\0")
    if len(payload) % 160:
        payload += silence * (160 - len(payload) % 160)
    src_ip, dst_ip = (bytes(int(x) for x in ip.split(".")) for ip in (src[0], dst[0]))
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # LINKTYPE_ETHERNET
    seq, timestamp = 1000, 160_000
    for i in range(len(payload) // 160):
        rtp = struct.pack("!BBHII", 0x80, (0x80 if i == 0 else 0) | payload_type, (seq + i) & 0xFFFF,
                          (timestamp + 160 * i) & 0xFFFFFFFF, ssrc) + payload[160 * i:160 * (i + 1)]
        udp_len = 8 + len(rtp)
        pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, 17, udp_len)
        udp_head = struct.pack("!HHHH", src[1], dst[1], udp_len, 0)
        udp_sum = _checksum(pseudo + udp_head + rtp) or 0xFFFF
        udp = struct.pack("!HHHH", src[1], dst[1], udp_len, udp_sum) + rtp
        ip_head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0x4000, 64, 17, 0,
                              src_ip, dst_ip)
        ip_head = ip_head[:10] + struct.pack("!H", _checksum(ip_head)) + ip_head[12:]
        frame = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip_head + udp
        micros = i * 20_000
        out += struct.pack("<IIII", 1_700_000_000 + micros // 1_000_000, micros % 1_000_000, len(frame),
                           len(frame))
        out += frame
    path = Path(path)
    path.write_bytes(bytes(out))
    return path
