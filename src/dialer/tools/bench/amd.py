"""``dialer bench amd``: answering-machine detection on generated greetings (issue #16 §3).

:func:`bench_amd` generates ``per_class`` samples of each class (:mod:`dialer.media.samples`: short human answers,
voicemail greetings, silence, line noise; espeak-ng + sox, seeded, through a G.711 round trip as over RTP), feeds
each to an :class:`~dialer.media.amd.AmdDetector` in 20 ms pieces as RTP would bring them, and reports:

- ``accuracy`` over all samples, and ``by_class``: per class the expected answer, ``accuracy``, what was answered
  (``results``), the rules that decided (``causes``) and the deciding time (``decision_ms_p50``/``p95``/``max``:
  milliseconds of audio analysed, which is the time a live call waits for the decision);
- ``confusion``: expected class → answer → count;
- ``human_decided_within_ms``: the share of people recognised within 1, 1.5 and 2 seconds of answering — the
  deciding time counts toward the engine's 2-second rule;
- ``variants``: the same samples under other settings (Asterisk's energy-only rule, the voice detector without
  the noise floor, a shorter after-greeting silence, ...) to show why the defaults are what they are;
- ``config`` (the defaults measured), the time spent generating and analysing, and the analysis' CPU cost per
  second of audio.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from dialer.media.amd import AmdConfig, AmdDecision, AmdDetector, AmdResult
from dialer.media.samples import EXPECTED, Sample, SampleClass, generate_set
from dialer.stats import percentile

__all__ = ["VARIANTS", "bench_amd", "detect", "evaluate"]

_CHUNK = 320  # 20 ms of 8 kHz 16-bit audio: one G.711 RTP packet's worth

#: Alternatives measured beside the defaults: name → the fields changed.
VARIANTS: dict[str, dict[str, Any]] = {
    "asterisk_energy_only": {"vad_mode": None, "noise_margin_db": None},
    "vad_without_noise_floor": {"noise_margin_db": None},
    "energy_with_noise_floor": {"vad_mode": None},
    "vad_mode_2": {"vad_mode": 2},
    "after_greeting_silence_600": {"after_greeting_silence_ms": 600},
    "maximum_words_2": {"maximum_number_of_words": 2},
    "frame_10ms": {"frame_ms": 10},
}


def detect(pcm: bytes, config: AmdConfig) -> AmdDecision:
    """Feed ``pcm`` in 20 ms pieces until the detector decides; at the end of the audio, its final answer."""
    detector = AmdDetector(config)
    for start in range(0, len(pcm), _CHUNK):
        decision = detector.feed(pcm[start:start + _CHUNK])
        if decision is not None:
            return decision
    return detector.finish()


def _ms_stats(values: Sequence[int]) -> dict[str, int]:
    return {"decision_ms_p50": int(percentile(values, 0.5)), "decision_ms_p95": int(percentile(values, 0.95)),
            "decision_ms_max": max(values, default=0)}


def evaluate(samples: Sequence[Sample], config: AmdConfig) -> dict[str, Any]:
    """Accuracy, answers, causes and deciding times of ``config`` on ``samples``."""
    decisions = [(sample, detect(sample.pcm, config)) for sample in samples]
    by_class: dict[str, Any] = {}
    confusion: dict[str, dict[str, int]] = {}
    for kind in SampleClass:
        mine = [(s, d) for s, d in decisions if s.kind is kind]
        if not mine:
            continue
        correct = sum(d.result is s.expected for s, d in mine)
        results = Counter(d.result.value for _, d in mine)
        confusion[kind.value] = {r.value: results.get(r.value, 0) for r in AmdResult}
        by_class[kind.value] = {
            "expected": EXPECTED[kind].value,
            "count": len(mine),
            "correct": correct,
            "accuracy": round(correct / len(mine), 4),
            **_ms_stats([d.decided_after_ms for _, d in mine]),
            "results": confusion[kind.value],
            "causes": dict(Counter(d.cause.split("-")[0] for _, d in mine).most_common()),
            "wrong": [{"sample": s.name, "cause": d.cause, "params": s.params}
                      for s, d in mine if d.result is not s.expected][:5],
        }
    correct = sum(d.result is s.expected for s, d in decisions)
    humans = [d.decided_after_ms for s, d in decisions
              if s.kind is SampleClass.human_short and d.result is AmdResult.human]
    human_total = sum(s.kind is SampleClass.human_short for s in samples)
    return {
        "accuracy": round(correct / len(decisions), 4) if decisions else 0.0,
        "by_class": by_class,
        "confusion": confusion,
        "analysed_audio_s": round(sum(d.decided_after_ms for _, d in decisions) / 1000, 2),
        "human_decided_within_ms": {
            str(limit): round(sum(ms <= limit for ms in humans) / human_total, 4) if human_total else 0.0
            for limit in (1000, 1500, 2000)
        },
    }


def bench_amd(per_class: int = 20, *, seed: int = 0, variants: bool = True) -> dict[str, Any]:
    """Generate the samples, run the detector with its defaults (and the ``VARIANTS``), report the figures."""
    started = time.perf_counter()
    samples = generate_set(per_class, seed=seed)
    generated = time.perf_counter()
    config = AmdConfig()
    cpu = time.process_time()
    result = evaluate(samples, config)
    cpu = time.process_time() - cpu
    audio_s = result["analysed_audio_s"]
    report: dict[str, Any] = {
        "samples": len(samples),
        "per_class": per_class,
        "seed": seed,
        **result,
        "config": config.to_json(),
        "generate_s": round(generated - started, 2),
        "analyse_s": round(time.perf_counter() - generated, 2),
        # The detector's CPU per second of audio it analysed (the audio after a decision is not looked at).
        "cpu_ms_per_audio_s": round(cpu * 1000 / audio_s, 3) if audio_s else 0.0,
    }
    if variants:
        report["variants"] = {}
        for name, changes in VARIANTS.items():
            measured = evaluate(samples, dataclasses.replace(config, **changes))
            report["variants"][name] = {
                "changes": changes,
                "accuracy": measured["accuracy"],
                "by_class": {kind: {key: figures[key] for key in ("accuracy", "decision_ms_p50", "decision_ms_p95")}
                             for kind, figures in measured["by_class"].items()},
                "human_decided_within_ms": measured["human_decided_within_ms"],
            }
    return report
