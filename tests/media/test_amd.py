"""Answering-machine detection: app_amd's rules on exact synthetic patterns, the detector on generated speech of
every class, streaming edge cases, the samples and their RTP pcap, and the benchmark's report."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
import struct
from pathlib import Path

import numpy as np
import pytest

from dialer.media.amd import AmdConfig, AmdDecision, AmdDetector, AmdResult
from dialer.media.samples import (
    EXPECTED,
    Sample,
    SampleClass,
    generate,
    generate_set,
    missing_tools,
    write_rtp_pcap,
    write_wav,
)
from dialer.telephony.sip.rtp import PT_PCMA, PT_PCMU, decode_g711
from dialer.tools.bench.amd import bench_amd, detect

RATE = 8000
#: app_amd exactly: the energy rule alone (no voice detector, no noise floor).
ASTERISK = AmdConfig(vad_mode=None, noise_margin_db=None)


def silence(ms: int) -> bytes:
    return bytes(ms * RATE // 1000 * 2)


def tone(ms: int, amplitude: float = 4000.0, freq: float = 700.0) -> bytes:
    t = np.arange(ms * RATE // 1000) / RATE
    return (np.sin(2 * np.pi * freq * t) * amplitude).astype("<i2").tobytes()


def noise(ms: int, rms: float, seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    return np.clip(rng.standard_normal(ms * RATE // 1000) * rms, -32768, 32767).astype("<i2").tobytes()


@pytest.fixture(scope="session")
def samples() -> dict[str, Sample]:
    """Three samples of each class, as they would arrive over RTP (G.711 round trip)."""
    lacking = missing_tools()
    if lacking:
        pytest.fail(f"AMD samples need {', '.join(lacking)}: the test command installs espeak-ng and sox")
    return {s.name: s for s in generate_set(3, seed=0)}


# --- app_amd's rules, timed to the frame ------------------------------------------------------------------------
@pytest.mark.parametrize(("audio", "config", "expected"), [
    # a person: "Алло?" (400 ms) and a wait; human once 800 ms of silence follow the greeting
    (silence(500) + tone(400) + silence(1000), ASTERISK, AmdDecision(AmdResult.human, "HUMAN-800-800", 1700)),
    # a machine: 1.5 s of voice in the greeting
    (silence(300) + tone(2000), ASTERISK, AmdDecision(AmdResult.machine, "LONGGREETING-1500-1500", 1800)),
    # a machine: the fourth word (more than maximum_number_of_words=3)
    (silence(300) + (tone(200) + silence(200)) * 4, ASTERISK,
     AmdDecision(AmdResult.machine, "MAXWORDS-4-3", 300 + 3 * 400 + 100)),
    # nobody speaks
    (silence(3000), ASTERISK, AmdDecision(AmdResult.machine, "INITIALSILENCE-2500-2500", 2500)),
    # clicks shorter than a word keep breaking the silence and never make a word: not sure after 5 s
    (silence(300) + (tone(60) + silence(60)) * 50, ASTERISK, AmdDecision(AmdResult.notsure, "TOOLONG-5000", 5000)),
    # one endless word
    (silence(300) + tone(1500), dataclasses.replace(ASTERISK, maximum_word_length_ms=1000, greeting_ms=5000),
     AmdDecision(AmdResult.machine, "MAXWORDLENGTH-1000", 1300)),
    # a quieter answer than the threshold is silence
    (silence(500) + tone(400, amplitude=300) + silence(2500), ASTERISK,
     AmdDecision(AmdResult.machine, "INITIALSILENCE-2500-2500", 2500)),
    # 10 ms frames decide at the same audio time
    (silence(500) + tone(400) + silence(1000), dataclasses.replace(ASTERISK, frame_ms=10),
     AmdDecision(AmdResult.human, "HUMAN-800-800", 1700)),
])
def test_app_amd_rules(audio: bytes, config: AmdConfig, expected: AmdDecision) -> None:
    assert AmdDetector(config).feed(audio) == expected


def test_steady_noise_is_a_long_greeting_to_asterisk_and_silence_to_the_noise_floor() -> None:
    line = silence(200) + noise(4000, rms=900)  # mean |x| ≈ 720, well above the threshold of 256
    assert AmdDetector(ASTERISK).feed(line) == AmdDecision(AmdResult.machine, "LONGGREETING-1500-1500", 1700)
    with_floor = dataclasses.replace(ASTERISK, noise_margin_db=9.0)
    # present from the first frame, the noise sets the floor at once
    assert AmdDetector(with_floor).feed(noise(4000, rms=900)) == AmdDecision(
        AmdResult.machine, "INITIALSILENCE-2500-2500", 2500)
    # starting after digital silence it passes for a "greeting" until the floor catches up, but that greeting does
    # not stand out from the noise after it: nobody spoke, and the initial silence goes on
    decision = AmdDetector().feed(line)
    assert decision is not None and decision.cause == "INITIALSILENCE-2500-2500", decision
    assert AmdDetector(AmdConfig(noise_margin_db=None, vad_mode=2)).feed(line) == AmdDecision(  # the VAD alone
        AmdResult.human, "HUMAN-800-800", 1100)
    # ... while a voice over that noise still stands out from the floor
    speech_over_noise = np.frombuffer(silence(300) + tone(400, amplitude=6000) + silence(1500), "<i2") \
        + np.frombuffer(noise(2200, rms=300), "<i2")
    decision = AmdDetector(with_floor).feed(speech_over_noise.astype("<i2").tobytes())
    assert decision == AmdDecision(AmdResult.human, "HUMAN-800-800", 1500)


# --- generated speech ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(SampleClass))
def test_generated_samples_of_each_class(samples: dict[str, Sample], kind: SampleClass) -> None:
    mine = [s for s in samples.values() if s.kind is kind]
    assert len(mine) == 3
    for sample in mine:
        decision = detect(sample.pcm, AmdConfig())
        assert decision.result is EXPECTED[kind], (sample.name, decision, sample.params)
        if kind is SampleClass.human_short:
            # decided 800 ms after the answer ends: after the lead and the words, before the end of the wait
            lead, speech = int(sample.params["lead_ms"]), int(sample.params["speech_ms"])  # type: ignore[call-overload]
            assert decision.cause == "HUMAN-800-800"
            assert lead + 800 < decision.decided_after_ms <= lead + speech + 800 + 40, (decision, sample.params)
        elif kind is SampleClass.machine:
            assert decision.cause.startswith(("LONGGREETING-", "MAXWORDS-")), decision
            assert decision.decided_after_ms < 5000
        elif kind is SampleClass.silence:
            assert decision == AmdDecision(AmdResult.machine, "INITIALSILENCE-2500-2500", 2500), sample.params
        else:  # noise starting late may pass for a word first; the silence is counted after it
            assert decision.cause == "INITIALSILENCE-2500-2500", (decision, sample.params)
            assert 2500 <= decision.decided_after_ms <= 2500 + int(sample.params["onset_ms"]) + 500  # type: ignore[call-overload]


def test_feeding_in_odd_pieces_decides_as_feeding_at_once(samples: dict[str, Sample]) -> None:
    picker = random.Random(7)
    for sample in samples.values():
        whole = AmdDetector().feed(sample.pcm) or AmdDetector().finish()
        detector = AmdDetector()
        decision, pos = None, 0
        while decision is None and pos < len(sample.pcm):
            size = picker.choice([1, 3, 7, 159, 160, 161, 321, 999])  # odd byte counts split samples in two
            decision = detector.feed(sample.pcm[pos:pos + size])
            pos += size
        assert (decision or detector.finish()) == whole, sample.name


def test_edge_cases() -> None:
    detector = AmdDetector()
    assert detector.feed(b"") is None
    assert detector.feed(b"\x01") is None  # half a sample waits for its other byte
    assert detector.finish() == AmdDecision(AmdResult.notsure, "NOAUDIODATA-0", 0)

    detector = AmdDetector()
    assert detector.feed(silence(1000) + b"\x00") is None
    assert detector.analysed_ms == 1000
    assert detector.finish() == AmdDecision(AmdResult.notsure, "TOOLONG-1000", 1000)
    assert detector.feed(tone(3000)) == AmdDecision(AmdResult.notsure, "TOOLONG-1000", 1000)  # decided stays

    detector = AmdDetector(ASTERISK)
    decided = detector.feed(silence(3000))
    assert decided is not None and decided.result is AmdResult.machine
    assert detector.feed(tone(500)) is decided and detector.finish() is decided and detector.decision is decided
    assert detector.analysed_ms == 2500

    # 16 kHz audio works too (the voice detector takes 8, 16, 32 and 48 kHz)
    wide = AmdDetector(ASTERISK, sample_rate=16000)
    assert wide.feed(bytes(16000 * 2 * 3)) == AmdDecision(AmdResult.machine, "INITIALSILENCE-2500-2500", 2500)


@pytest.mark.parametrize(("changes", "message"), [
    ({"frame_ms": 25}, "frame_ms must be 10, 20 or 30"),
    ({"vad_mode": 4}, "vad_mode must be 0, 1, 2, 3 or None"),
    ({"greeting_ms": -1}, "greeting_ms must be a whole number"),
    ({"silence_threshold": 2.5}, "silence_threshold must be a whole number"),
    ({"total_analysis_ms": 0}, "total_analysis_ms must be positive"),
    ({"noise_margin_db": -3.0}, "noise_margin_db must be a number of dB"),
])
def test_bad_settings_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AmdConfig(**changes)  # type: ignore[arg-type]


def test_bad_sample_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="not 11025"):
        AmdDetector(sample_rate=11025)


# --- the samples --------------------------------------------------------------------------------------------------
def test_samples_are_deterministic_and_as_described(samples: dict[str, Sample]) -> None:
    again = generate(SampleClass.human_short, 1, seed=0, codec=PT_PCMU)
    assert again == samples["human_short-001"]
    assert generate(SampleClass.human_short, 1, seed=1, codec=PT_PCMU).pcm != again.pcm
    for sample in samples.values():
        assert len(sample.pcm) % 2 == 0
        assert sample.codec in (PT_PCMA, PT_PCMU)
        assert sample.duration_ms >= 5500
        level = np.abs(np.frombuffer(sample.pcm, "<i2").astype(np.int32))
        if sample.kind is SampleClass.silence:
            assert level.mean() < 40
        elif sample.kind is SampleClass.machine:
            assert 3000 <= int(sample.params["speech_ms"]) <= 12000, sample.params  # type: ignore[call-overload]
            assert level.max() > 2000
        elif sample.kind is SampleClass.human_short:
            assert 200 <= int(sample.params["lead_ms"]) <= 800  # type: ignore[call-overload]
            lead = int(sample.params["lead_ms"]) * RATE // 1000  # type: ignore[call-overload]
            assert level[:lead].mean() < 256 and level.max() > 2000  # quiet line, then a voice
    with pytest.raises(ValueError, match="codec"):
        generate(SampleClass.noise, 0, codec=9)
    with pytest.raises(ValueError):
        generate("fax", 0)


def test_rtp_pcap_holds_20ms_g711_packets(samples: dict[str, Sample], tmp_path: Path) -> None:
    sample = samples["machine-000"]
    path = write_rtp_pcap(tmp_path / "m.pcap", sample.pcm, payload_type=PT_PCMU, src=("10.1.2.3", 4000),
                          dst=("10.3.2.1", 5000))
    data = path.read_bytes()
    magic, major, minor, _, _, snaplen, linktype = struct.unpack_from("<IHHiIII", data)
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    pos, packets, stamps, audio = 24, 0, [], bytearray()
    while pos < len(data):
        sec, usec, incl, orig = struct.unpack_from("<IIII", data, pos)
        frame = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        assert incl == orig <= snaplen and frame[12:14] == b"\x08\x00"
        ip = frame[14:34]
        assert ip[0] == 0x45 and ip[9] == 17 and ip[12:16] == bytes([10, 1, 2, 3]) and ip[16:20] == bytes([10, 3, 2, 1])
        words = struct.unpack("!10H", ip)
        assert (sum(words) + (sum(words) >> 16)) & 0xFFFF == 0xFFFF  # the header checksum holds
        sport, dport, length, _ = struct.unpack_from("!HHHH", frame, 34)
        assert (sport, dport, length) == (4000, 5000, len(frame) - 34)
        rtp = frame[42:]
        assert rtp[0] == 0x80 and rtp[1] & 0x7F == PT_PCMU and len(rtp) == 12 + 160
        assert struct.unpack_from("!H", rtp, 2)[0] == (1000 + packets) & 0xFFFF
        stamps.append(sec + usec / 1e6)
        audio += rtp[12:]
        packets += 1
    assert packets == math.ceil(len(sample.pcm) / 2 / 160)
    assert all(abs(b - a - 0.02) < 1e-6 for a, b in itertools.pairwise(stamps))
    decoded = np.frombuffer(decode_g711(PT_PCMU, bytes(audio)), "<i2")[:len(sample.pcm) // 2].astype(np.int32)
    original = np.frombuffer(sample.pcm, "<i2").astype(np.int32)
    assert np.abs(decoded - original).max() <= 1024  # one more G.711 pass: within a quantisation step

    wav = write_wav(tmp_path / "m.wav", sample.pcm)
    assert wav.read_bytes()[:4] == b"RIFF" and wav.stat().st_size == 44 + len(sample.pcm)


def test_bench_reports_accuracy_and_deciding_time_by_class() -> None:
    report = bench_amd(per_class=2, variants=False)
    assert report["samples"] == 8 and 0.0 <= report["accuracy"] <= 1.0
    assert set(report["by_class"]) == {k.value for k in SampleClass}
    for kind, figures in report["by_class"].items():
        assert figures["count"] == 2 and figures["expected"] == EXPECTED[SampleClass(kind)].value
        assert figures["decision_ms_p50"] <= figures["decision_ms_p95"] <= figures["decision_ms_max"] <= 5000
        assert sum(figures["results"].values()) == 2 == sum(report["confusion"][kind].values())
    assert report["config"]["initial_silence_ms"] == 2500
    assert set(report["human_decided_within_ms"]) == {"1000", "1500", "2000"}
