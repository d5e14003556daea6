"""Traffic model of the simulated telephony: what happens to each call the dialer places.

A :class:`Scenario` describes a campaign's traffic (also read from a JSON file, ``dialer bench pacing --scenario``)::

    {"name": "s20_drift", "operators": 20, "hours": 8, "seed": 1,
     "outcomes": {"human": 0.25, "machine": 0.10, "busy": 0.10, "failed": 0.05, "rejected": 0.0},
     "human_by_hour": [0.30, 0.30, 0.30, 0.30, 0.08, 0.08, 0.08, 0.08],
     "answer_after_s": {"dist": "uniform", "low": 5, "high": 20}, "no_answer_timeout_s": 26,
     "machine_detect_s": 3, "talk_time_s": {"dist": "exponential", "mean": 150},
     "wrap_up_s": {"dist": "constant", "value": 15}, "abandon_after_s": 2}

* ``outcomes`` are per-attempt probabilities; the rest of the mass is "no answer". ``human_by_hour``, when
  present, replaces ``human`` for calls placed in that hour of the campaign (hour 0 first); again the rest of the
  mass goes to "no answer".
* Distributions: ``{"dist": "constant", "value": v}``, ``{"dist": "uniform", "low": a, "high": b}``,
  ``{"dist": "exponential", "mean": m}``, ``{"dist": "lognormal", "mean": m, "sigma": s}`` where ``mean`` is the
  mean of the distribution itself (so ``mu = ln(mean) - sigma**2 / 2``) and ``sigma`` the standard deviation of
  its logarithm. A bare number is accepted as a constant.
* ``answer_after_s`` is when a human or an answering machine picks up; one that would pick up after
  ``no_answer_timeout_s`` is a no answer (the dialer hangs up at the timeout). A machine is recognised
  ``machine_detect_s`` after it picks up and is hung up without an operator. A live answer not connected to an
  operator within ``abandon_after_s`` is abandoned.
* ``busy_after_s`` (an extension, optional, default uniform 1–5 s) is when busy, rejected and failed calls are
  signalled; the issue's format does not say, and it only shapes how long such calls hold a line.
* ``patience_s`` (optional distribution) is how long a live customer waits for an operator before hanging up,
  in the simulated telephony (the demo, the engine's tests); the pacing benchmark does not use it (a live answer
  not connected within ``abandon_after_s`` is abandoned there whatever happens later).
* ``hour_basis`` (optional): ``"campaign"`` (default, the benchmarks' meaning) reads ``human_by_hour`` by hours
  since the start; ``"clock"`` reads it by the hour of the day on the clock in ``time_zone`` (optional, default
  ``Europe/Moscow``), so ``human_by_hour`` then has 24 values, 00:00–01:00 first — answer rates by time of day
  for the simulated telephony in real or virtual time.

:class:`TrafficSampler` turns a scenario into per-call fates from ``random.Random(seed)``. Every call consumes the
same draws in the same order whatever happens to it, so the k-th call placed gets the same fate (for the same
placement hour) under every pacing algorithm, and a run is reproducible from the seed alone. The module knows
nothing about pacing; the simulated telephony driver and the pacing benchmark both build on it.
"""

from __future__ import annotations

import json
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "BUILTIN_SCENARIOS",
    "CallFate",
    "Constant",
    "Distribution",
    "Exponential",
    "LogNormal",
    "Outcome",
    "Outcomes",
    "Scenario",
    "ScenarioError",
    "TrafficSampler",
    "Uniform",
    "builtin_scenario",
    "load_scenario",
]


class ScenarioError(ValueError):
    """A scenario that cannot be used; names the file (or source), the key and the reason."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        super().__init__(f"{source}: {key}: {reason}")
        self.errors = [{"field": key, "reason": reason}]
        self.source = source
        self.key = key
        self.reason = reason


class Outcome(StrEnum):
    """What the network does with one call attempt."""

    human = "human"
    machine = "machine"
    busy = "busy"
    failed = "failed"
    rejected = "rejected"
    no_answer = "no_answer"


# --- distributions --------------------------------------------------------------------------------------------


def _number(value: Any, source: str, key: str, *, minimum: float | None = None, positive: bool = False) -> float:
    # bool is an int in Python; a JSON true is not a duration
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScenarioError(source, key, f"must be a number, got {json.dumps(value)}")
    if positive and value <= 0:
        raise ScenarioError(source, key, f"must be greater than 0, got {value}")
    if minimum is not None and value < minimum:
        raise ScenarioError(source, key, f"must be at least {minimum:g}, got {value}")
    return float(value)


def _check_keys(data: Mapping[str, Any], allowed: set[str], required: set[str], source: str, prefix: str) -> None:
    for key in data:
        if key not in allowed:
            raise ScenarioError(source, f"{prefix}{key}", f"unknown key; expected one of {', '.join(sorted(allowed))}")
    for key in sorted(required):
        if key not in data:
            raise ScenarioError(source, f"{prefix}{key}", "is required")


class Distribution(ABC):
    """A non-negative random duration in seconds."""

    kind: ClassVar[str]

    @abstractmethod
    def sample(self, rng: random.Random) -> float: ...

    @abstractmethod
    def expected(self) -> float:
        """The distribution's mean."""

    @abstractmethod
    def to_json(self) -> dict[str, Any]: ...

    @staticmethod
    def from_json(data: Any, *, source: str = "<scenario>", key: str = "distribution") -> Distribution:
        """Parse ``{"dist": ..., ...}`` (or a bare number, a constant); errors name ``source`` and ``key``."""
        if not isinstance(data, dict):
            return Constant(_number(data, source, key, minimum=0))
        kind = data.get("dist")
        cls = _DISTRIBUTIONS.get(kind) if isinstance(kind, str) else None
        if cls is None:
            raise ScenarioError(source, f"{key}.dist",
                                f"must be one of {', '.join(_DISTRIBUTIONS)}, got {json.dumps(kind)}")
        return cls.parse(data, source, key)

    @classmethod
    @abstractmethod
    def parse(cls, data: Mapping[str, Any], source: str, key: str) -> Distribution: ...


@dataclass(frozen=True, slots=True)
class Constant(Distribution):
    value: float
    kind: ClassVar[str] = "constant"

    def sample(self, rng: random.Random) -> float:
        return self.value

    def expected(self) -> float:
        return self.value

    def to_json(self) -> dict[str, Any]:
        return {"dist": self.kind, "value": self.value}

    @classmethod
    def parse(cls, data: Mapping[str, Any], source: str, key: str) -> Constant:
        _check_keys(data, {"dist", "value"}, {"value"}, source, f"{key}.")
        return cls(_number(data["value"], source, f"{key}.value", minimum=0))


@dataclass(frozen=True, slots=True)
class Uniform(Distribution):
    low: float
    high: float
    kind: ClassVar[str] = "uniform"

    def sample(self, rng: random.Random) -> float:
        return self.low + (self.high - self.low) * rng.random()

    def expected(self) -> float:
        return (self.low + self.high) / 2

    def to_json(self) -> dict[str, Any]:
        return {"dist": self.kind, "low": self.low, "high": self.high}

    @classmethod
    def parse(cls, data: Mapping[str, Any], source: str, key: str) -> Uniform:
        _check_keys(data, {"dist", "low", "high"}, {"low", "high"}, source, f"{key}.")
        low = _number(data["low"], source, f"{key}.low", minimum=0)
        high = _number(data["high"], source, f"{key}.high", minimum=0)
        if high < low:
            raise ScenarioError(source, f"{key}.high", f"must not be below low ({low:g}), got {high:g}")
        return cls(low, high)


@dataclass(frozen=True, slots=True)
class Exponential(Distribution):
    mean: float
    kind: ClassVar[str] = "exponential"

    def sample(self, rng: random.Random) -> float:
        return rng.expovariate(1.0 / self.mean)

    def expected(self) -> float:
        return self.mean

    def to_json(self) -> dict[str, Any]:
        return {"dist": self.kind, "mean": self.mean}

    @classmethod
    def parse(cls, data: Mapping[str, Any], source: str, key: str) -> Exponential:
        _check_keys(data, {"dist", "mean"}, {"mean"}, source, f"{key}.")
        return cls(_number(data["mean"], source, f"{key}.mean", positive=True))


@dataclass(frozen=True, slots=True)
class LogNormal(Distribution):
    """Log-normal with the given arithmetic ``mean`` and log-space standard deviation ``sigma``."""

    mean: float
    sigma: float
    kind: ClassVar[str] = "lognormal"

    def sample(self, rng: random.Random) -> float:
        mu = math.log(self.mean) - self.sigma * self.sigma / 2
        return rng.lognormvariate(mu, self.sigma)

    def expected(self) -> float:
        return self.mean

    def to_json(self) -> dict[str, Any]:
        return {"dist": self.kind, "mean": self.mean, "sigma": self.sigma}

    @classmethod
    def parse(cls, data: Mapping[str, Any], source: str, key: str) -> LogNormal:
        _check_keys(data, {"dist", "mean", "sigma"}, {"mean", "sigma"}, source, f"{key}.")
        return cls(_number(data["mean"], source, f"{key}.mean", positive=True),
                   _number(data["sigma"], source, f"{key}.sigma", minimum=0))


_DISTRIBUTIONS: dict[str, type[Distribution]] = {
    cls.kind: cls for cls in (Constant, Uniform, Exponential, LogNormal)
}


# --- the scenario ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Per-attempt probabilities; ``no_answer`` is what is left."""

    human: float = 0.0
    machine: float = 0.0
    busy: float = 0.0
    failed: float = 0.0
    rejected: float = 0.0

    KEYS: ClassVar[tuple[str, ...]] = ("human", "machine", "busy", "failed", "rejected")

    @property
    def no_answer(self) -> float:
        return max(0.0, 1.0 - self.human - self.machine - self.busy - self.failed - self.rejected)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    operators: int
    hours: float
    seed: int
    outcomes: Outcomes
    answer_after_s: Distribution
    no_answer_timeout_s: float
    machine_detect_s: float
    talk_time_s: Distribution
    wrap_up_s: Distribution
    abandon_after_s: float
    human_by_hour: tuple[float, ...] | None = None
    busy_after_s: Distribution = field(default_factory=lambda: Uniform(1.0, 5.0))
    #: How long a live customer waits for an operator (the simulated telephony; None: the driver's default).
    patience_s: Distribution | None = None
    #: ``campaign``: ``human_by_hour`` by hours since the start; ``clock``: by the hour of the day in ``time_zone``.
    hour_basis: str = "campaign"
    time_zone: str = "Europe/Moscow"

    REQUIRED: ClassVar[frozenset[str]] = frozenset({
        "name", "operators", "hours", "outcomes", "answer_after_s", "no_answer_timeout_s", "machine_detect_s",
        "talk_time_s", "wrap_up_s", "abandon_after_s"})
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"seed", "human_by_hour", "busy_after_s", "patience_s",
                                                    "hour_basis", "time_zone"})
    HOUR_BASES: ClassVar[tuple[str, ...]] = ("campaign", "clock")

    @property
    def duration_s(self) -> float:
        return self.hours * 3600.0

    def human_at(self, hour: int) -> float:
        """The live-answer probability of a call placed in ``hour`` (0-based hour of the campaign)."""
        by_hour = self.human_by_hour
        if by_hour is None:
            return self.outcomes.human
        return by_hour[min(max(hour, 0), len(by_hour) - 1)]

    def thresholds(self, hour: int) -> tuple[float, float, float, float, float]:
        """Cumulative probabilities of human, machine, busy, failed, rejected for calls placed in ``hour``."""
        o = self.outcomes
        h = self.human_at(hour)
        return (h, h + o.machine, h + o.machine + o.busy, h + o.machine + o.busy + o.failed,
                h + o.machine + o.busy + o.failed + o.rejected)

    # --- JSON ---------------------------------------------------------------------------------------------
    @classmethod
    def from_json(cls, data: Any, *, source: str = "<scenario>") -> Scenario:
        """Validate and build a scenario; a :class:`ScenarioError` names ``source``, the key and the reason."""
        if not isinstance(data, dict):
            raise ScenarioError(source, "(top level)", "must be a JSON object")
        _check_keys(data, set(cls.REQUIRED | cls.OPTIONAL), set(cls.REQUIRED), source, "")

        name = data["name"]
        if not isinstance(name, str) or not name.strip():
            raise ScenarioError(source, "name", "must be a non-empty string")
        operators = data["operators"]
        if isinstance(operators, bool) or not isinstance(operators, int) or operators < 1:
            raise ScenarioError(source, "operators",
                                f"must be a whole number of at least 1, got {json.dumps(operators)}")
        hours = _number(data["hours"], source, "hours", positive=True)
        seed = data.get("seed", 1)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ScenarioError(source, "seed", f"must be an integer, got {json.dumps(seed)}")

        raw = data["outcomes"]
        if not isinstance(raw, dict):
            raise ScenarioError(source, "outcomes", "must be an object of probabilities")
        _check_keys(raw, set(Outcomes.KEYS), set(), source, "outcomes.")
        probs = {k: _number(raw.get(k, 0.0), source, f"outcomes.{k}", minimum=0) for k in Outcomes.KEYS}
        for k, v in probs.items():
            if v > 1:
                raise ScenarioError(source, f"outcomes.{k}", f"must be a probability between 0 and 1, got {v:g}")
        outcomes = Outcomes(**probs)
        others = outcomes.machine + outcomes.busy + outcomes.failed + outcomes.rejected
        if others + outcomes.human > 1 + 1e-9:
            raise ScenarioError(source, "outcomes",
                                f"probabilities add up to {others + outcomes.human:g}, more than 1")

        hour_basis = data.get("hour_basis", "campaign")
        if hour_basis not in cls.HOUR_BASES:
            raise ScenarioError(source, "hour_basis", f"must be one of {', '.join(cls.HOUR_BASES)}, "
                                                      f"got {json.dumps(hour_basis)}")
        time_zone = data.get("time_zone", "Europe/Moscow")
        if not _is_zone(time_zone):
            raise ScenarioError(source, "time_zone", f"must be an IANA time zone such as Europe/Moscow, "
                                                     f"got {json.dumps(time_zone)}")
        human_by_hour: tuple[float, ...] | None = None
        if data.get("human_by_hour") is not None:
            raw_hours = data["human_by_hour"]
            if not isinstance(raw_hours, list) or not raw_hours:
                raise ScenarioError(source, "human_by_hour", "must be a non-empty list of probabilities, one per hour")
            if hour_basis == "clock" and len(raw_hours) != 24:
                raise ScenarioError(source, "human_by_hour",
                                    f"has {len(raw_hours)} values; by the clock it needs 24, one per hour of the day")
            if hour_basis == "campaign" and len(raw_hours) < math.ceil(hours):
                raise ScenarioError(source, "human_by_hour",
                                    f"has {len(raw_hours)} values but the scenario lasts {hours:g} hours")
            values = []
            for i, v in enumerate(raw_hours):
                p = _number(v, source, f"human_by_hour.{i}", minimum=0)
                if p + others > 1 + 1e-9:
                    raise ScenarioError(source, f"human_by_hour.{i}",
                                        f"{p:g} plus the other outcomes ({others:g}) is more than 1")
                values.append(p)
            human_by_hour = tuple(values)

        def dist(key: str) -> Distribution:
            return Distribution.from_json(data[key], source=source, key=key)

        return cls(
            name=name.strip(),
            operators=operators,
            hours=hours,
            seed=seed,
            outcomes=outcomes,
            human_by_hour=human_by_hour,
            answer_after_s=dist("answer_after_s"),
            no_answer_timeout_s=_number(data["no_answer_timeout_s"], source, "no_answer_timeout_s", positive=True),
            machine_detect_s=_number(data["machine_detect_s"], source, "machine_detect_s", minimum=0),
            talk_time_s=dist("talk_time_s"),
            wrap_up_s=dist("wrap_up_s"),
            abandon_after_s=_number(data["abandon_after_s"], source, "abandon_after_s", minimum=0),
            busy_after_s=dist("busy_after_s") if "busy_after_s" in data else Uniform(1.0, 5.0),
            patience_s=dist("patience_s") if data.get("patience_s") is not None else None,
            hour_basis=hour_basis,
            time_zone=time_zone,
        )

    def to_json(self) -> dict[str, Any]:
        o = self.outcomes
        out: dict[str, Any] = {
            "name": self.name, "operators": self.operators, "hours": self.hours, "seed": self.seed,
            "outcomes": {k: getattr(o, k) for k in Outcomes.KEYS},
        }
        if self.human_by_hour is not None:
            out["human_by_hour"] = list(self.human_by_hour)
        out.update({
            "answer_after_s": self.answer_after_s.to_json(), "no_answer_timeout_s": self.no_answer_timeout_s,
            "machine_detect_s": self.machine_detect_s, "talk_time_s": self.talk_time_s.to_json(),
            "wrap_up_s": self.wrap_up_s.to_json(), "abandon_after_s": self.abandon_after_s,
            "busy_after_s": self.busy_after_s.to_json(),
        })
        if self.patience_s is not None:
            out["patience_s"] = self.patience_s.to_json()
        if self.hour_basis != "campaign":
            out.update({"hour_basis": self.hour_basis, "time_zone": self.time_zone})
        return out


def _is_zone(name: Any) -> bool:
    if not isinstance(name, str) or not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; every problem is a :class:`ScenarioError` naming the file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ScenarioError(source, "(file)", f"cannot be read: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise ScenarioError(source, "(file)", "is not UTF-8 text") from err
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ScenarioError(source, "(file)", f"is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}") \
            from err
    return Scenario.from_json(data, source=source)


# --- fates ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallFate:
    """What will happen to one placed call, in seconds from the moment it is placed.

    ``signal_s`` is when the network reports the result: the pick-up of a human or a machine, the busy/failed/
    rejected signal, or the dialer's own no-answer timeout. ``talk_s`` and ``wrap_up_s`` apply if a human is
    connected to an operator. ``machine_detect_s`` is how long after pick-up a machine is recognised.
    """

    outcome: Outcome
    signal_s: float
    machine_detect_s: float
    talk_s: float
    wrap_up_s: float

    @property
    def resolved_s(self) -> float:
        """When the dialer knows the call's outcome: the pick-up of a human, a machine's recognition, the signal."""
        return self.signal_s + self.machine_detect_s if self.outcome is Outcome.machine else self.signal_s


class TrafficSampler:
    """Seeded per-call fates of a scenario; ``fate(placed_at)`` gives the next placed call's fate.

    Each call draws, in this order and whatever its outcome: the outcome uniform, the pick-up delay, the busy
    signal delay, the talk time and the wrap-up time. Identical call indices therefore get identical draws under
    any pacing, and the outcome depends only on that uniform and the hour the call is placed in.
    """

    def __init__(self, scenario: Scenario, *, seed: int | None = None) -> None:
        self.scenario = scenario
        self.rng = random.Random(scenario.seed if seed is None else seed)
        self.placed = 0
        self._hour = -1
        self._thresholds = scenario.thresholds(0)
        # bound methods, looked up once: this sits in the benchmark's inner loop
        self._answer = scenario.answer_after_s.sample
        self._busy = scenario.busy_after_s.sample
        self._talk = scenario.talk_time_s.sample
        self._wrap = scenario.wrap_up_s.sample

    def fate(self, placed_at: float, *, hour: int | None = None) -> CallFate:
        """The fate of the next call, placed ``placed_at`` seconds after the campaign started; ``hour`` (when given)
        is the index into ``human_by_hour`` instead of the hours since the start (``hour_basis`` "clock")."""
        rng = self.rng
        u = rng.random()
        answer = self._answer(rng)
        busy = self._busy(rng)
        talk = self._talk(rng)
        wrap = self._wrap(rng)
        self.placed += 1

        if hour is None:
            hour = int(placed_at // 3600.0)
        if hour != self._hour:
            self._hour = hour
            self._thresholds = self.scenario.thresholds(hour)
        human, machine, busy_t, failed_t, rejected_t = self._thresholds
        s = self.scenario
        if u < machine:
            if answer >= s.no_answer_timeout_s:  # would pick up after the dialer has given up
                return CallFate(Outcome.no_answer, s.no_answer_timeout_s, 0.0, talk, wrap)
            if u < human:
                return CallFate(Outcome.human, answer, 0.0, talk, wrap)
            return CallFate(Outcome.machine, answer, s.machine_detect_s, talk, wrap)
        if u < rejected_t:
            outcome = Outcome.busy if u < busy_t else Outcome.failed if u < failed_t else Outcome.rejected
            return CallFate(outcome, min(busy, s.no_answer_timeout_s), 0.0, talk, wrap)
        return CallFate(Outcome.no_answer, s.no_answer_timeout_s, 0.0, talk, wrap)


# --- built-in scenarios --------------------------------------------------------------------


def _builtin(name: str, operators: int, human: float, human_by_hour: tuple[float, ...] | None = None) -> Scenario:
    return Scenario(
        name=name, operators=operators, hours=8.0, seed=1,
        outcomes=Outcomes(human=human, machine=0.10, busy=0.10, failed=0.05, rejected=0.0),
        human_by_hour=human_by_hour,
        answer_after_s=Uniform(5.0, 20.0), no_answer_timeout_s=26.0, machine_detect_s=3.0,
        talk_time_s=Exponential(150.0), wrap_up_s=Constant(15.0), abandon_after_s=2.0,
    )


BUILTIN_SCENARIOS: dict[str, Scenario] = {
    s.name: s for s in (
        _builtin("s20_p25", 20, 0.25),
        _builtin("s20_p10", 20, 0.10),
        _builtin("s100_p25", 100, 0.25),
        _builtin("s20_drift", 20, 0.25, (0.30,) * 4 + (0.08,) * 4),
    )
}


def builtin_scenario(name: str) -> Scenario:
    try:
        return BUILTIN_SCENARIOS[name]
    except KeyError:
        raise ScenarioError("<built-in>", "name", f"no built-in scenario {name!r}; "
                            f"known: {', '.join(BUILTIN_SCENARIOS)}") from None
