"""The traffic model: the scenario format, its validation, distributions and seeded fates."""

from __future__ import annotations

import copy
import json
import math
import random
import statistics
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dialer.core.clock import VirtualClock
from dialer.telephony.base import CallEvent, CallEventKind, Originate
from dialer.telephony.sim import SimTelephony
from dialer.telephony.traffic import (
    BUILTIN_SCENARIOS,
    Constant,
    Distribution,
    Exponential,
    LogNormal,
    Outcome,
    Scenario,
    ScenarioError,
    TrafficSampler,
    Uniform,
    builtin_scenario,
    load_scenario,
)

ISSUE_EXAMPLE: dict[str, Any] = {
    "name": "s20_drift", "operators": 20, "hours": 8, "seed": 1,
    "outcomes": {"human": 0.25, "machine": 0.10, "busy": 0.10, "failed": 0.05, "rejected": 0.0},
    "human_by_hour": [0.30, 0.30, 0.30, 0.30, 0.08, 0.08, 0.08, 0.08],
    "answer_after_s": {"dist": "uniform", "low": 5, "high": 20}, "no_answer_timeout_s": 26,
    "machine_detect_s": 3, "talk_time_s": {"dist": "exponential", "mean": 150},
    "wrap_up_s": {"dist": "constant", "value": 15}, "abandon_after_s": 2,
}


def test_the_issue_example_loads_from_a_file_and_equals_the_builtin(tmp_path: Path) -> None:
    path = tmp_path / "drift.json"
    path.write_text(json.dumps(ISSUE_EXAMPLE))
    scenario = load_scenario(path)
    assert scenario == BUILTIN_SCENARIOS["s20_drift"]
    assert Scenario.from_json(scenario.to_json()) == scenario
    assert scenario.human_at(0) == 0.30 and scenario.human_at(4) == 0.08 and scenario.human_at(99) == 0.08
    assert scenario.outcomes.no_answer == pytest.approx(0.50)


def test_builtin_scenarios_follow_the_issue() -> None:
    assert list(BUILTIN_SCENARIOS) == ["s20_p25", "s20_p10", "s100_p25", "s20_drift"]
    expected = {"s20_p25": (20, 0.25), "s20_p10": (20, 0.10), "s100_p25": (100, 0.25)}
    for name, (operators, human) in expected.items():
        s = builtin_scenario(name)
        assert (s.operators, s.outcomes.human, s.human_by_hour) == (operators, human, None)
    for s in BUILTIN_SCENARIOS.values():
        assert s.hours == 8 and s.talk_time_s == Exponential(150.0) and s.wrap_up_s == Constant(15.0)
        assert s.answer_after_s == Uniform(5.0, 20.0) and s.no_answer_timeout_s == 26 and s.abandon_after_s == 2
        assert s.outcomes.machine == 0.10 and s.outcomes.busy + s.outcomes.failed == pytest.approx(0.15)
    with pytest.raises(ScenarioError, match="no built-in scenario"):
        builtin_scenario("nope")


def _mutate(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(ISSUE_EXAMPLE)
    *parents, last = path.split(".")
    target: Any = data
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is _DELETE:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(("path", "value", "key", "reason"), [
    ("operators", _DELETE, "operators", "is required"),
    ("talk_time", 5, "talk_time", "unknown key"),
    ("operators", 0, "operators", "at least 1"),
    ("operators", True, "operators", "whole number"),
    ("operators", 2.5, "operators", "whole number"),
    ("hours", "8", "hours", "must be a number"),
    ("name", "  ", "name", "non-empty"),
    ("seed", 1.5, "seed", "integer"),
    ("outcomes.human", 1.2, "outcomes.human", "between 0 and 1"),
    ("outcomes.machine", 0.8, "outcomes", "more than 1"),
    ("outcomes.voicemail", 0.1, "outcomes.voicemail", "unknown key"),
    ("human_by_hour", [0.3, 0.3], "human_by_hour", "lasts 8 hours"),
    ("human_by_hour.2", 0.9, "human_by_hour.2", "more than 1"),
    ("human_by_hour.3", -0.1, "human_by_hour.3", "at least 0"),
    ("answer_after_s.dist", "gamma", "answer_after_s.dist", "must be one of"),
    ("answer_after_s.high", 1, "answer_after_s.high", "must not be below low"),
    ("talk_time_s.mean", 0, "talk_time_s.mean", "greater than 0"),
    ("talk_time_s", {"dist": "lognormal", "mean": 150}, "talk_time_s.sigma", "is required"),
    ("wrap_up_s.scale", 2, "wrap_up_s.scale", "unknown key"),
    ("no_answer_timeout_s", 0, "no_answer_timeout_s", "greater than 0"),
    ("abandon_after_s", None, "abandon_after_s", "must be a number"),
])
def test_validation_names_the_file_the_key_and_the_reason(tmp_path: Path, path: str, value: Any, key: str,
                                                          reason: str) -> None:
    file = tmp_path / "bad.json"
    file.write_text(json.dumps(_mutate(path, value)))
    with pytest.raises(ScenarioError) as info:
        load_scenario(file)
    err = info.value
    assert (err.source, err.key) == (str(file), key)
    assert reason in err.reason
    assert str(err).startswith(f"{file}: {key}: ")
    assert isinstance(err, ValueError) and err.errors == [{"field": key, "reason": err.reason}]


def test_unreadable_and_malformed_files_are_scenario_errors(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot be read"):
        load_scenario(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x",\n "operators": }')
    with pytest.raises(ScenarioError, match=r"not valid JSON.*line 2 column 15"):
        load_scenario(broken)
    listed = tmp_path / "list.json"
    listed.write_text("[]")
    with pytest.raises(ScenarioError, match="must be a JSON object"):
        load_scenario(listed)


def test_a_bare_number_is_a_constant_and_optional_keys_default() -> None:
    data = _mutate("wrap_up_s", 12)
    del data["seed"], data["human_by_hour"]
    scenario = Scenario.from_json(data)
    assert scenario.wrap_up_s == Constant(12.0) and scenario.seed == 1 and scenario.human_by_hour is None
    assert scenario.busy_after_s == Uniform(1.0, 5.0)


@pytest.mark.parametrize(("dist", "mean", "stdev"), [
    (Constant(7.0), 7.0, 0.0),
    (Uniform(5.0, 20.0), 12.5, 15.0 / math.sqrt(12)),
    (Exponential(150.0), 150.0, 150.0),
    (LogNormal(150.0, 0.8), 150.0, 150.0 * math.sqrt(math.exp(0.64) - 1)),
])
def test_distributions_sample_their_mean_and_spread(dist: Distribution, mean: float, stdev: float) -> None:
    rng = random.Random(42)
    samples = [dist.sample(rng) for _ in range(40_000)]
    assert dist.expected() == mean
    assert statistics.fmean(samples) == pytest.approx(mean, rel=0.03, abs=1e-9)
    assert statistics.pstdev(samples) == pytest.approx(stdev, rel=0.06, abs=1e-9)
    assert min(samples) >= 0
    assert Distribution.from_json(dist.to_json()) == dist
    assert [dist.sample(random.Random(1)) for _ in range(3)] == [dist.sample(random.Random(1)) for _ in range(3)]


def test_fates_follow_the_outcome_probabilities_and_the_hour() -> None:
    scenario = BUILTIN_SCENARIOS["s20_drift"]
    sampler = TrafficSampler(scenario)
    n = 20_000
    early = Counter(sampler.fate(10.0).outcome for _ in range(n))
    late = Counter(sampler.fate(5 * 3600.0).outcome for _ in range(n))
    assert early[Outcome.human] / n == pytest.approx(0.30, abs=0.015)
    assert late[Outcome.human] / n == pytest.approx(0.08, abs=0.01)
    for counts in (early, late):
        assert counts[Outcome.machine] / n == pytest.approx(0.10, abs=0.01)
        assert counts[Outcome.busy] / n == pytest.approx(0.10, abs=0.01)
        assert counts[Outcome.failed] / n == pytest.approx(0.05, abs=0.01)
        assert counts[Outcome.rejected] == 0
    assert late[Outcome.no_answer] / n == pytest.approx(0.67, abs=0.015)


def test_fate_timings() -> None:
    scenario = BUILTIN_SCENARIOS["s20_p25"]
    sampler = TrafficSampler(scenario)
    for _ in range(5_000):
        fate = sampler.fate(0.0)
        if fate.outcome in (Outcome.human, Outcome.machine):
            assert 5.0 <= fate.signal_s <= 20.0
        if fate.outcome is Outcome.machine:
            assert fate.resolved_s == fate.signal_s + 3.0
        elif fate.outcome is Outcome.no_answer:
            assert fate.resolved_s == fate.signal_s == 26.0
        elif fate.outcome is not Outcome.human:
            assert 1.0 <= fate.resolved_s <= 5.0
        assert fate.wrap_up_s == 15.0 and fate.talk_s >= 0


def test_an_answer_after_the_timeout_is_no_answer() -> None:
    slow = Scenario.from_json(_mutate("answer_after_s", {"dist": "constant", "value": 30}))
    sampler = TrafficSampler(slow)
    outcomes = {sampler.fate(0.0).outcome for _ in range(2_000)}
    assert Outcome.human not in outcomes and Outcome.machine not in outcomes and Outcome.no_answer in outcomes


def test_the_kth_call_gets_the_same_draws_whatever_the_pacing() -> None:
    scenario = BUILTIN_SCENARIOS["s20_drift"]
    a, b = TrafficSampler(scenario), TrafficSampler(scenario)
    same_hour = [a.fate(100.0) for _ in range(500)]
    assert same_hour == [b.fate(200.0) for _ in range(500)]
    # placed in another hour, call k keeps its talk and wrap-up draws; only the outcome may change
    c = TrafficSampler(scenario)
    later = [c.fate(6 * 3600.0) for _ in range(500)]
    assert [f.talk_s for f in later] == [f.talk_s for f in same_hour]
    assert sum(f.outcome is Outcome.human for f in later) < sum(f.outcome is Outcome.human for f in same_hour)
    assert TrafficSampler(scenario, seed=2).fate(0.0) != same_hour[0]


def test_patience_and_hours_by_the_clock(tmp_path: Path) -> None:
    data = copy.deepcopy(ISSUE_EXAMPLE)
    data.update(patience_s={"dist": "uniform", "low": 10, "high": 20}, hour_basis="clock",
                time_zone="Asia/Vladivostok", human_by_hour=[0.0] * 9 + [0.5] * 12 + [0.0] * 3)
    scenario = Scenario.from_json(data)
    assert scenario.patience_s == Uniform(10.0, 20.0) and scenario.hour_basis == "clock"
    assert Scenario.from_json(scenario.to_json()) == scenario
    # without the keys: the benchmarks' meaning, hours since the start
    plain = Scenario.from_json(ISSUE_EXAMPLE)
    assert (plain.patience_s, plain.hour_basis) == (None, "campaign")
    assert "hour_basis" not in plain.to_json() and "patience_s" not in plain.to_json()
    # by the clock the list has one value per hour of the day
    bad = {**data, "human_by_hour": [0.3] * 8}
    with pytest.raises(ScenarioError, match="needs 24"):
        Scenario.from_json(bad)
    with pytest.raises(ScenarioError, match="hour_basis"):
        Scenario.from_json({**data, "hour_basis": "sun"})
    with pytest.raises(ScenarioError, match="time_zone"):
        Scenario.from_json({**data, "time_zone": "Mars/Olympus"})
    # the sampler reads the hour it is given
    sampler = TrafficSampler(scenario, seed=3)
    night = Counter(sampler.fate(0.0, hour=3).outcome for _ in range(2000))
    day = Counter(sampler.fate(0.0, hour=12).outcome for _ in range(2000))
    assert night[Outcome.human] == 0 and 0.4 < day[Outcome.human] / 2000 < 0.6


async def test_the_simulator_uses_the_scenarios_patience_and_the_clocks_hour() -> None:
    data = copy.deepcopy(ISSUE_EXAMPLE)
    data.update(outcomes={"human": 1.0}, patience_s={"dist": "constant", "value": 7}, hour_basis="clock",
                time_zone="Europe/Moscow", human_by_hour=[0.0] * 12 + [1.0] * 12,
                answer_after_s={"dist": "constant", "value": 1})
    scenario = Scenario.from_json(data)
    for utc_hour, answers in ((6, False), (10, True)):  # 09:00 and 13:00 in Moscow
        clock = VirtualClock(epoch=datetime(2026, 3, 4, utc_hour, 0, tzinfo=UTC))
        sim = SimTelephony(clock, scenario, seed=1)
        assert sim.patience_s == Constant(7.0)
        await sim.start()
        await sim.originate(Originate(number="+79160000001", answer_timeout_s=20))
        await clock.run_for(60)
        await sim.close()
        events = [e async for e in sim.events() if isinstance(e, CallEvent)]
        by_kind = {e.kind: e for e in events}
        if answers:
            assert list(by_kind) == [CallEventKind.trying, CallEventKind.ringing, CallEventKind.answered,
                                     CallEventKind.hung_up]
            # nobody connected him: he hung up after his patience
            assert by_kind[CallEventKind.hung_up].at - by_kind[CallEventKind.answered].at == pytest.approx(7.0)
        else:
            assert list(by_kind) == [CallEventKind.trying, CallEventKind.ringing, CallEventKind.no_answer]
