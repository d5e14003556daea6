"""Pacing algorithms on hand-made observations and on short simulated campaigns."""

from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys

import pytest

from dialer.engine.pacing import (
    PACERS,
    DialResult,
    FixedLinesPacer,
    FixedRatioPacer,
    Observation,
    PredictivePacer,
    PreviewPacer,
    ProgressivePacer,
    RatioBase,
    VicidialAdaptPacer,
    make_pacer,
)
from dialer.telephony.traffic import BUILTIN_SCENARIOS, Scenario
from dialer.tools.bench.pacing import simulate


def obs(now: float = 0.0, *, logged_in: int = 20, ready: int = 0, in_call: int = 0, wrap_up: int = 0,
        dialling: int = 0, waiting: int = 0) -> Observation:
    return Observation(now=now, operators_logged_in=logged_in, operators_ready=ready, operators_in_call=in_call,
                       operators_wrap_up=wrap_up, calls_dialling=dialling, calls_waiting=waiting,
                       dialled_at=[now - 5.0] * dialling, talk_started_at=[now - 60.0] * in_call,
                       wrap_up_started_at=[now - 5.0] * wrap_up)


def short(name: str, hours: float, **changes: object) -> Scenario:
    return dataclasses.replace(BUILTIN_SCENARIOS[name], hours=hours, **changes)  # type: ignore[arg-type]


def test_progressive_covers_each_free_operator_once() -> None:
    pacer = ProgressivePacer()
    assert pacer.decide(obs(ready=5)) == 5
    assert pacer.decide(obs(ready=5, dialling=3)) == 2
    assert pacer.decide(obs(ready=2, dialling=3)) == 0
    assert PreviewPacer().decide(obs(ready=4, dialling=1)) == 3


def test_progressive_never_abandons() -> None:
    for name in ("s20_p25", "s20_drift"):
        result = simulate(short(name, 1.0), ProgressivePacer())
        assert result.live_answers > 300 and result.abandoned == 0


def test_fixed_lines_and_fixed_ratios() -> None:
    assert FixedLinesPacer(10).decide(obs(dialling=6, waiting=1)) == 3
    assert FixedLinesPacer(10).decide(obs(dialling=12)) == 0
    sample = obs(ready=4, in_call=12, wrap_up=4, dialling=5)
    assert FixedRatioPacer(2.5).decide(sample) == 10 - 5  # free operators
    assert FixedRatioPacer(2.5, RatioBase.available).decide(sample) == 20 - 5  # free or in wrap-up
    assert FixedRatioPacer(1.5, RatioBase.dial_level).decide(sample) == 24 - 5 - 12  # VICIdial: lines in use
    assert FixedRatioPacer(1.0).decide(sample) == ProgressivePacer().decide(sample)
    with pytest.raises(ValueError):
        FixedRatioPacer(-1)


def _feed(pacer: VicidialAdaptPacer, start: int, stop: int, **state: int) -> int:
    n = 0
    for t in range(start, stop):
        n = pacer.decide(obs(float(t), **state))
    return n


def test_vicidial_adapt_update_rule() -> None:
    pacer = VicidialAdaptPacer()
    state = {"ready": 5, "in_call": 15, "waiting": 1}
    _feed(pacer, 0, 15, **state)
    assert pacer.level == 1.0  # the first update comes after 15 s of samples
    n = _feed(pacer, 15, 16, **state)
    assert pacer.level == pytest.approx(1.0 * (1 + (5 - 1) / 20))
    assert n == round(1.2 * 20) - 1 - 15  # goal minus the waiting and connected calls
    # every operator waiting: doubled every 15 s up to the maximum level
    _feed(pacer, 16, 46, ready=20)
    assert pacer.level == 3.0
    # more calls waiting than operators ready: the level falls, never below 1
    _feed(pacer, 46, 76, ready=0, in_call=20, waiting=10)
    assert pacer.level == 1.0


def test_vicidial_adapt_hard_limit_resets_the_level() -> None:
    pacer = VicidialAdaptPacer(level=2.0)
    _feed(pacer, 0, 15, ready=2, in_call=18)
    for i in range(60):
        pacer.on_call_result(float(i), DialResult.human if i % 6 == 0 else DialResult.no_answer, 10.0)
    pacer.on_abandon(65.0)  # 1 drop out of 10 live answers: 10% > 3%
    _feed(pacer, 15, 59, ready=2, in_call=18)
    assert pacer.level > 2.0  # drop statistics are only recomputed every 60 s
    _feed(pacer, 59, 76, ready=2, in_call=18)
    assert pacer.level == 1.0


def test_predictive_starts_progressive_and_reacts_to_its_state() -> None:
    pacer = PredictivePacer()
    assert pacer.decide(obs(ready=3, dialling=1)) == 2  # no history yet: progressive
    trained = PredictivePacer()
    simulate(short("s20_p25", 1.0), trained)

    def decide(**state: int) -> int:
        return copy.deepcopy(trained).decide(obs(3600.0, **state))  # a copy: deciding updates the pacer

    base = decide(ready=2, in_call=16, wrap_up=2)
    assert base > 2  # dials ahead of the free operators
    assert decide(ready=6, in_call=12, wrap_up=2) > base
    assert decide(ready=2, in_call=16, wrap_up=2, dialling=3) < base
    assert decide(ready=2, in_call=16, wrap_up=2, dialling=base + 2) == 0
    assert decide(ready=0, in_call=20, waiting=2) == 0
    assert decide(logged_in=0) == 0


def test_predictive_keeps_abandons_under_the_cap_and_beats_progressive() -> None:
    scenario = short("s20_p25", 2.0)
    ours = simulate(scenario, PredictivePacer())
    progressive = simulate(scenario, ProgressivePacer())
    assert 0 < ours.abandon_pct <= 3.0
    assert ours.talk_s >= 1.15 * progressive.talk_s


def test_simulation_is_deterministic() -> None:
    scenario = short("s20_drift", 1.0)
    first = simulate(scenario, PredictivePacer())
    assert simulate(scenario, PredictivePacer()) == first
    assert simulate(dataclasses.replace(scenario, seed=2), PredictivePacer()) != first


def test_registry() -> None:
    assert set(PACERS) == {"progressive", "preview", "vicidial_adapt", "predictive"}
    assert isinstance(make_pacer("predictive"), PredictivePacer)
    with pytest.raises(ValueError, match="unknown pacer"):
        make_pacer("psychic")


def test_pacing_imports_no_framework_database_or_traffic_model() -> None:
    code = ("import sys, dialer.engine.pacing; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette', 'sqlalchemy', 'asyncpg') "
            "or m.startswith('dialer.telephony')]; print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
