"""The pacing benchmark (``dialer bench pacing``): pacers side by side on the same simulated traffic, in virtual time.

:func:`simulate` is a discrete-event simulation of one campaign on a :class:`~dialer.core.clock.VirtualClock`:

* operators are all logged in for the whole campaign; a free operator takes the longest-waiting live call at once;
* each placed call gets its fate from :class:`~dialer.telephony.traffic.TrafficSampler` — the k-th call placed has
  the same draws under every pacer (its outcome depends only on them and the hour it is placed in);
* a live answer is connected to a free operator at once, or waits; one not connected within ``abandon_after_s``
  is abandoned (the caller hears the message and the call ends: no operator takes it later); a machine holds its
  line until it is recognised; busy, failed, rejected and unanswered calls hold theirs until signalled;
* the pacer is asked how many calls to place every second, whenever an operator becomes ready and whenever a call
  ends its dialling phase; it sees only an :class:`~dialer.engine.pacing.Observation` and the callbacks;
* after ``hours`` no call is placed; live answers up to then are all counted, connected or abandoned. Talk and
  handling time are counted inside the campaign's hours only.

Results per scenario and algorithm: ``talk_min_per_operator_hour`` (minutes of conversation per operator per hour),
``occupancy`` (talk + wrap-up time over logged-in time), ``abandon_pct`` (abandoned / live answered × 100) and
``attempts`` (calls placed).

``predictive_mean_budget`` is :class:`~dialer.engine.pacing.PredictivePacer` with ``confidence_z=0``: its abandon
budget is ``target`` × cap from the first answer, as before the confidence bound (#13) — run it beside
``predictive`` to see what the bound buys (runs ending under the cap) and what it costs (talk time).

**Small team** (``--small-team``, :func:`small_team_study`): a team of 5–10 operators in its first hour, over many
seeds (``--runs``, 200 by default; run *i* has ``5 + i mod 6`` operators and seed ``seed + i``, the traffic of
``s20_p25``). A small sample is where a pacer that meets its target on average still ends over the cap by bad luck,
so the study reports, per algorithm, the share of runs ending over the cap, the mean (and worst) abandon rate and
talk minutes per operator-hour (all runs' talk over all runs' operator-hours). With ``--json`` it prints one JSON
object (the study); the scenario runs without ``--small-team`` print their list of rows as before.

``best_fixed_ratio`` is the strongest static baseline: :class:`~dialer.engine.pacing.FixedRatioPacer` with the ratio
found in hindsight, on the very traffic of the run, as the one with the most talk time among those that keep
abandons at or under 3%. The search covers three definitions of a dial ratio — calls in flight per free operator,
per operator not in a conversation (free or in wrap-up), and VICIdial's dial level (lines in use, conversations
included, per free or in-call operator) — and keeps the best; the row says which (``ratio_base``, ``dial_ratio``).
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from dialer.core.clock import VirtualClock
from dialer.engine.pacing import (
    DialResult,
    FixedRatioPacer,
    Observation,
    Pacer,
    PredictivePacer,
    ProgressivePacer,
    RatioBase,
    VicidialAdaptPacer,
)
from dialer.telephony.traffic import (
    BUILTIN_SCENARIOS,
    CallFate,
    Outcome,
    Scenario,
    ScenarioError,
    TrafficSampler,
    load_scenario,
)
from dialer.tools.bench.common import print_result

__all__ = [
    "ALGORITHMS",
    "CAP_PCT",
    "KNOWN_ALGORITHMS",
    "SMALL_TEAM_ALGORITHMS",
    "CampaignResult",
    "best_fixed_ratio",
    "main",
    "run_bench",
    "simulate",
    "small_team_scenario",
    "small_team_study",
]

#: The regulatory cap the benchmark holds every algorithm to, in percent of live answers.
CAP_PCT = 3.0

ALGORITHMS: tuple[str, ...] = ("progressive", "best_fixed_ratio", "vicidial_adapt", "predictive")

def _mean_budget_pacer() -> Pacer:
    return PredictivePacer(confidence_z=0.0)


_PACER_FACTORIES: dict[str, Callable[[], Pacer]] = {
    "progressive": ProgressivePacer,
    "vicidial_adapt": VicidialAdaptPacer,
    "predictive": PredictivePacer,
    "predictive_mean_budget": _mean_budget_pacer,
}

#: Every algorithm the benchmark knows; :data:`ALGORITHMS` are those run by default on the scenarios.
KNOWN_ALGORITHMS: tuple[str, ...] = (*ALGORITHMS, "predictive_mean_budget")

#: The algorithms of the small-team study by default (a hindsight best ratio is under the cap by construction).
SMALL_TEAM_ALGORITHMS: tuple[str, ...] = ("progressive", "vicidial_adapt", "predictive", "predictive_mean_budget")

_RESULT = {o: DialResult(o.value) for o in Outcome}


@dataclass(frozen=True, slots=True)
class CampaignResult:
    scenario: str
    algorithm: str
    operators: int
    hours: float
    attempts: int
    live_answers: int
    abandoned: int
    talk_s: float
    handle_s: float

    @property
    def abandon_pct(self) -> float:
        return 100.0 * self.abandoned / self.live_answers if self.live_answers else 0.0

    @property
    def talk_min_per_operator_hour(self) -> float:
        return self.talk_s / 60.0 / (self.operators * self.hours)

    @property
    def occupancy(self) -> float:
        return self.handle_s / (self.operators * self.hours * 3600.0)

    def row(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "algorithm": self.algorithm,
            "operators": self.operators,
            "talk_min_per_operator_hour": round(self.talk_min_per_operator_hour, 3),
            "occupancy": round(self.occupancy, 4),
            "abandon_pct": round(self.abandon_pct, 3),
            "attempts": self.attempts,
        }


class _Campaign:
    """One simulated campaign: operators, calls and their timers on a virtual clock."""

    def __init__(self, scenario: Scenario, pacer: Pacer, tick_s: float) -> None:
        self.scenario = scenario
        self.pacer = pacer
        self.tick_s = tick_s
        self.clock = VirtualClock()
        self.sampler = TrafficSampler(scenario)
        self.end = scenario.duration_s
        self.grace = scenario.abandon_after_s
        self.operators = scenario.operators
        self.free: deque[int] = deque(range(scenario.operators))  # longest idle first
        self.talk_started: dict[int, float] = {}
        self.wrap_started: dict[int, float] = {}
        self.dialling: dict[int, float] = {}
        self.waiting: deque[tuple[int, CallFate]] = deque()
        self.waiting_ids: set[int] = set()
        self.next_call = 0
        self.attempts = 0
        self.live_answers = 0
        self.abandoned = 0
        self.talk_s = 0.0
        self.handle_s = 0.0

    # --- the pacer's view ---------------------------------------------------------------------------------
    def decide(self) -> None:
        now = self.clock.now()
        if now >= self.end:
            return
        n = self.pacer.decide(Observation(
            now=now,
            operators_logged_in=self.operators,
            operators_ready=len(self.free),
            operators_in_call=len(self.talk_started),
            operators_wrap_up=len(self.wrap_started),
            calls_dialling=len(self.dialling),
            calls_waiting=len(self.waiting),
            dialled_at=self.dialling.values(),
            talk_started_at=self.talk_started.values(),
            wrap_up_started_at=self.wrap_started.values(),
        ))
        if n > 0:
            self.place(now, n)

    def tick(self) -> None:
        self.decide()
        nxt = self.clock.now() + self.tick_s
        if nxt < self.end:
            self.clock.call_at(nxt, self.tick)

    # --- calls --------------------------------------------------------------------------------------------
    def place(self, now: float, n: int) -> None:
        fate_of = self.sampler.fate
        call_at = self.clock.call_at
        for _ in range(n):
            call_id = self.next_call
            self.next_call += 1
            fate = fate_of(now)
            self.dialling[call_id] = now
            call_at(now + fate.resolved_s, self.resolved, call_id, fate)
        self.attempts += n

    def resolved(self, call_id: int, fate: CallFate) -> None:
        placed_at = self.dialling.pop(call_id)
        now = self.clock.now()
        outcome = fate.outcome
        self.pacer.on_call_result(placed_at, _RESULT[outcome], now - placed_at)
        if outcome is Outcome.human and now < self.end:
            self.live_answers += 1
            if self.free:
                self.connect(self.free.popleft(), fate)
            else:
                self.waiting.append((call_id, fate))
                self.waiting_ids.add(call_id)
                self.clock.call_at(now + self.grace, self.give_up, call_id)
        self.decide()

    def give_up(self, call_id: int) -> None:
        if call_id not in self.waiting_ids:
            return  # connected in time
        # waits are first come, first served and all equally patient, so the one giving up is the oldest
        head, _ = self.waiting.popleft()
        assert head == call_id
        self.waiting_ids.discard(call_id)
        self.abandoned += 1
        self.pacer.on_abandon(self.clock.now())

    # --- operators ----------------------------------------------------------------------------------------
    def connect(self, operator: int, fate: CallFate) -> None:
        now = self.clock.now()
        self.talk_started[operator] = now
        end = now + fate.talk_s
        counted = min(end, self.end) - now
        if counted > 0:
            self.talk_s += counted
            self.handle_s += counted
        self.clock.call_at(end, self.talk_ended, operator, fate)

    def talk_ended(self, operator: int, fate: CallFate) -> None:
        now = self.clock.now()
        del self.talk_started[operator]
        self.pacer.on_talk_ended(fate.talk_s)
        self.wrap_started[operator] = now
        end = now + fate.wrap_up_s
        counted = min(end, self.end) - now
        if counted > 0:
            self.handle_s += counted
        self.clock.call_at(end, self.wrap_ended, operator, fate)

    def wrap_ended(self, operator: int, fate: CallFate) -> None:
        del self.wrap_started[operator]
        self.pacer.on_wrap_up_ended(fate.wrap_up_s)
        if self.waiting:
            call_id, waiting_fate = self.waiting.popleft()
            self.waiting_ids.discard(call_id)
            self.connect(operator, waiting_fate)
        else:
            self.free.append(operator)
        self.decide()

    def run(self) -> None:
        self.clock.call_at(0.0, self.tick)
        # after the end nothing is placed; let the last live answers get an operator or give up
        self.clock.advance_to(self.end + self.grace + 1e-6)


def simulate(scenario: Scenario, pacer: Pacer, *, algorithm: str | None = None, tick_s: float = 1.0) \
        -> CampaignResult:
    """Run one campaign of ``scenario`` paced by ``pacer`` in virtual time."""
    campaign = _Campaign(scenario, pacer, tick_s)
    campaign.run()
    return CampaignResult(
        scenario=scenario.name, algorithm=algorithm or pacer.name, operators=scenario.operators,
        hours=scenario.hours, attempts=campaign.attempts, live_answers=campaign.live_answers,
        abandoned=campaign.abandoned, talk_s=campaign.talk_s, handle_s=campaign.handle_s,
    )


def _search_ratio(scenario: Scenario, base: RatioBase, cap_pct: float, tolerance: float, scan_step: float) \
        -> tuple[float, CampaignResult] | None:
    cache: dict[float, CampaignResult] = {}

    def run(ratio: float) -> CampaignResult:
        ratio = round(ratio, 6)
        if ratio not in cache:
            cache[ratio] = simulate(scenario, FixedRatioPacer(ratio, base), algorithm="best_fixed_ratio")
        return cache[ratio]

    def feasible(ratio: float) -> bool:
        return run(ratio).abandon_pct <= cap_pct

    lo, hi = 1.0, 2.0
    if not feasible(lo):
        return None
    while feasible(hi):
        lo, hi = hi, hi * 2
        if hi > 64:
            break
    while hi - lo > tolerance * lo:
        mid = (lo + hi) / 2
        if feasible(mid):
            lo = mid
        else:
            hi = mid
    # abandons are not exactly monotone in the ratio on a finite run: scan around the edge for the best feasible
    for step in range(-6, 5):
        feasible(lo * (1 + step * scan_step))
    candidates = [(r, res) for r, res in cache.items() if res.abandon_pct <= cap_pct]
    return max(candidates, key=lambda item: item[1].talk_s)


_TOLERANCE = 0.003
_SCAN_STEP = 0.015


def best_fixed_ratio(scenario: Scenario, *, cap_pct: float = CAP_PCT, tolerance: float = _TOLERANCE,
                     scan_step: float = _SCAN_STEP) \
        -> tuple[RatioBase, float, CampaignResult]:
    """The constant dial ratio with the most talk time among those with abandons <= ``cap_pct``, in hindsight, on
    the very traffic of the run; over every :class:`~dialer.engine.pacing.RatioBase` (the strongest wins).

    Abandons grow with the ratio, and talk time with them until abandons set in, so the best ratio sits at the edge
    of the feasible region: bracket it by doubling from 1, bisect the edge to a relative ``tolerance``, then,
    because a finite run is not exactly monotone, scan ratios around it (-9% to +6% in ``scan_step`` steps) and
    keep the feasible one with the most talk.
    """
    best: tuple[RatioBase, float, CampaignResult] | None = None
    for base in RatioBase:
        found = _search_ratio(scenario, base, cap_pct, tolerance, scan_step)
        if found is not None and (best is None or found[1].talk_s > best[2].talk_s):
            best = (base, found[0], found[1])
    if best is None:  # cannot happen: ratio 1 over free operators is progressive, which abandons nothing
        raise RuntimeError(f"no fixed ratio keeps abandons under {cap_pct}% in {scenario.name}")
    return best


def _fixed_ratio_row(base: RatioBase, ratio: float, result: CampaignResult) -> dict[str, Any]:
    row = result.row()
    row["dial_ratio"] = round(ratio, 4)
    row["ratio_base"] = base.value
    return row


def _run_pacer(scenario: Scenario, algorithm: str) -> dict[str, Any]:
    return simulate(scenario, _PACER_FACTORIES[algorithm](), algorithm=algorithm).row()


def _search_base(scenario: Scenario, base: RatioBase) -> tuple[RatioBase, float, CampaignResult] | None:
    found = _search_ratio(scenario, base, CAP_PCT, _TOLERANCE, _SCAN_STEP)
    return None if found is None else (base, found[0], found[1])


def run_bench(scenarios: Sequence[Scenario] | None = None, algorithms: Sequence[str] = ALGORITHMS,
              *, workers: int | None = None) -> list[dict[str, Any]]:
    """Every algorithm on every scenario (the built-in ones by default); one row per pair, in that order.

    The runs are independent and deterministic, so they are spread over ``workers`` processes (default 2; 1 runs
    them here). Each hindsight search is split by ratio base so the pool stays busy.
    """
    chosen = list(BUILTIN_SCENARIOS.values()) if scenarios is None else list(scenarios)
    for algorithm in algorithms:
        if algorithm != "best_fixed_ratio" and algorithm not in _PACER_FACTORIES:
            raise ValueError(f"unknown algorithm {algorithm!r}; known: {', '.join(KNOWN_ALGORITHMS)}")
    pairs = [(s, a) for s in chosen for a in algorithms]
    if workers is None:
        workers = 2
    if workers <= 1 or len(pairs) <= 1:
        rows = []
        for scenario, algorithm in pairs:
            if algorithm == "best_fixed_ratio":
                rows.append(_fixed_ratio_row(*best_fixed_ratio(scenario)))
            else:
                rows.append(_run_pacer(scenario, algorithm))
        return rows
    # spawn, not fork: the caller may have threads (an event loop, a database pool) that fork would copy mid-state
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        # the long jobs first (searches, big campaigns) so that the workers finish together
        searches = {(i, base): pool.submit(_search_base, s, base)
                    for i, (s, a) in sorted(enumerate(pairs), key=lambda item: -item[1][0].operators)
                    if a == "best_fixed_ratio" for base in RatioBase}
        runs = {i: pool.submit(_run_pacer, s, a)
                for i, (s, a) in sorted(enumerate(pairs), key=lambda item: -item[1][0].operators)
                if a != "best_fixed_ratio"}
        rows = []
        for i, (_, algorithm) in enumerate(pairs):
            if algorithm != "best_fixed_ratio":
                rows.append(runs[i].result())
                continue
            found = [f for base in RatioBase if (f := searches[i, base].result()) is not None]
            rows.append(_fixed_ratio_row(*max(found, key=lambda item: item[2].talk_s)))
        return rows


# --- small team, first hour (#13) ---------------------------------------------------------------------------------

SMALL_TEAM_SIZES: tuple[int, ...] = (5, 6, 7, 8, 9, 10)


def small_team_scenario(run: int, *, seed: int = 1, hours: float = 1.0,
                        sizes: Sequence[int] = SMALL_TEAM_SIZES) -> Scenario:
    """Run ``run`` of the small-team study: ``sizes[run mod len]`` operators, ``hours``, seed ``seed + run``, the
    traffic of ``s20_p25`` (25 % live answers, talk 150 s on average)."""
    return dataclasses.replace(BUILTIN_SCENARIOS["s20_p25"], name=f"small_team_{run}",
                               operators=sizes[run % len(sizes)], hours=hours, seed=seed + run)


def _small_team_runs(runs: Sequence[int], algorithms: Sequence[str], seed: int, hours: float) \
        -> list[tuple[str, CampaignResult]]:
    out = []
    for run in runs:
        scenario = small_team_scenario(run, seed=seed, hours=hours)
        for algorithm in algorithms:
            out.append((algorithm, simulate(scenario, _PACER_FACTORIES[algorithm](), algorithm=algorithm)))
    return out


def _summary(algorithm: str, results: Sequence[CampaignResult], cap_pct: float) -> dict[str, Any]:
    over = sum(1 for r in results if r.abandon_pct > cap_pct)
    pcts = sorted(r.abandon_pct for r in results)
    operator_hours = sum(r.operators * r.hours for r in results)
    live = sum(r.live_answers for r in results)
    return {
        "algorithm": algorithm,
        "runs": len(results),
        "runs_over_cap": over,
        "share_over_cap": round(over / len(results), 4),
        "mean_abandon_pct": round(sum(pcts) / len(pcts), 3),
        "median_abandon_pct": round(pcts[len(pcts) // 2], 3),
        "max_abandon_pct": round(pcts[-1], 3),
        "pooled_abandon_pct": round(100.0 * sum(r.abandoned for r in results) / live, 3) if live else 0.0,
        "talk_min_per_operator_hour": round(sum(r.talk_s for r in results) / 60.0 / operator_hours, 3),
        "occupancy": round(sum(r.handle_s for r in results) / 3600.0 / operator_hours, 4),
        "mean_live_answers": round(live / len(results), 1),
        "mean_attempts": round(sum(r.attempts for r in results) / len(results), 1),
    }


def small_team_study(runs: int = 200, algorithms: Sequence[str] = SMALL_TEAM_ALGORITHMS, *, seed: int = 1,
                     hours: float = 1.0, cap_pct: float = CAP_PCT, workers: int = 2) -> dict[str, Any]:
    """A team of 5–10 operators in its first hour, ``runs`` times (see the module's docstring); one JSON object.

    Every algorithm meets the same ``runs`` campaigns (the same traffic draws), so the shares compare directly.
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    for algorithm in algorithms:
        if algorithm not in _PACER_FACTORIES:
            raise ValueError(f"unknown algorithm {algorithm!r} for the small-team study; "
                             f"known: {', '.join(_PACER_FACTORIES)}")
    indices = list(range(runs))
    if workers <= 1 or runs == 1:
        pairs = _small_team_runs(indices, algorithms, seed, hours)
    else:
        chunks = [indices[i::workers * 4] for i in range(min(runs, workers * 4))]
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_small_team_runs, chunk, algorithms, seed, hours) for chunk in chunks]
            pairs = [pair for future in futures for pair in future.result()]
    by_algorithm: dict[str, list[CampaignResult]] = {a: [] for a in algorithms}
    for algorithm, result in pairs:
        by_algorithm[algorithm].append(result)
    return {
        "scenario": "small_team",
        "traffic": "s20_p25",
        "operators": [min(SMALL_TEAM_SIZES), max(SMALL_TEAM_SIZES)],
        "hours": hours,
        "runs": runs,
        "seed": seed,
        "cap_pct": cap_pct,
        "algorithms": [_summary(a, by_algorithm[a], cap_pct) for a in algorithms],
    }


def _study_table(study: dict[str, Any]) -> str:
    head = f"{'algorithm':<23} {'over cap':>9} {'share':>6} {'mean ab %':>9} {'max ab %':>8} {'talk min/op·h':>13}"
    lines = [f"small team ({study['operators'][0]}–{study['operators'][1]} operators, {study['hours']:g} h), "
             f"{study['runs']} runs, cap {study['cap_pct']:g}%", head, "-" * len(head)]
    for r in study["algorithms"]:
        lines.append(f"{r['algorithm']:<23} {r['runs_over_cap']:>9} {r['share_over_cap']:>6.3f} "
                     f"{r['mean_abandon_pct']:>9.2f} {r['max_abandon_pct']:>8.2f} "
                     f"{r['talk_min_per_operator_hour']:>13.2f}")
    return "\n".join(lines)


def _table(rows: list[dict[str, Any]]) -> str:
    head = f"{'scenario':<14} {'algorithm':<17} {'ops':>4} {'talk min/op·h':>13} {'occupancy':>9} " \
           f"{'abandon %':>9} {'attempts':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['scenario']:<14} {r['algorithm']:<17} {r['operators']:>4} "
                     f"{r['talk_min_per_operator_hour']:>13.2f} {r['occupancy']:>9.3f} {r['abandon_pct']:>9.2f} "
                     f"{r['attempts']:>9}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``dialer bench pacing [--json] [--scenario FILE ...]``: print the results; returns the exit status.

    The built-in scenarios run unless ``--no-builtin`` (or ``--builtin NAME`` picks some); each ``--scenario FILE``
    adds one from a JSON file. An invalid file is reported on stderr (file, key, reason) with status 2.
    """
    parser = argparse.ArgumentParser(
        prog="dialer bench pacing", description="Pacing algorithms side by side on simulated traffic, in virtual time.")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.add_argument("--scenario", action="append", default=[], metavar="FILE",
                        help="add a scenario from a JSON file (repeatable)")
    parser.add_argument("--builtin", action="append", default=[], choices=list(BUILTIN_SCENARIOS), metavar="NAME",
                        help=f"run only these built-in scenarios (repeatable): {', '.join(BUILTIN_SCENARIOS)}")
    parser.add_argument("--no-builtin", action="store_true", help="run no built-in scenario")
    parser.add_argument("--algorithm", action="append", default=[], choices=KNOWN_ALGORITHMS, metavar="NAME",
                        help=f"run only these algorithms (repeatable): {', '.join(KNOWN_ALGORITHMS)}")
    parser.add_argument("--workers", type=int, default=2, help="processes to use (default 2)")
    parser.add_argument("--small-team", action="store_true",
                        help="run the small-team study (5–10 operators, first hour, many seeds) instead of scenarios")
    parser.add_argument("--runs", type=int, default=200, help="runs of the small-team study (default 200)")
    parser.add_argument("--seed", type=int, default=1, help="first seed of the small-team study (default 1)")
    args = parser.parse_args(argv)

    if args.small_team:
        if args.runs < 1:
            print("error: --runs must be at least 1", file=sys.stderr)
            return 2
        chosen = tuple(args.algorithm) or SMALL_TEAM_ALGORITHMS
        if "best_fixed_ratio" in chosen:
            print("error: best_fixed_ratio is not part of the small-team study", file=sys.stderr)
            return 2
        started = time.perf_counter()
        study = small_team_study(args.runs, chosen, seed=args.seed, workers=args.workers)
        if args.json:
            print_result(study, indent=1)
        else:
            print(_study_table(study))
            print(f"\n{args.runs * len(chosen)} runs in {time.perf_counter() - started:.1f} s")
        return 0

    scenarios: list[Scenario] = []
    if not args.no_builtin:
        scenarios.extend(BUILTIN_SCENARIOS[name] for name in args.builtin or BUILTIN_SCENARIOS)
    try:
        scenarios.extend(load_scenario(path) for path in args.scenario)
    except ScenarioError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    rows = run_bench(scenarios, tuple(args.algorithm) or ALGORITHMS, workers=args.workers)
    elapsed = time.perf_counter() - started
    if args.json:
        print_result(rows, indent=1)
    else:
        print(_table(rows))
        print(f"\n{len(rows)} runs in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover - the CLI wires main() as ``dialer bench pacing``
    raise SystemExit(main())
