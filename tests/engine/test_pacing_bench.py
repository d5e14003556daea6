"""The pacing benchmark: rows, the hindsight search, the command's entry point and the targets of docs/benchmarks.md."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from dialer.engine.pacing import FixedRatioPacer, PredictivePacer, RatioBase
from dialer.telephony.traffic import BUILTIN_SCENARIOS, Scenario
from dialer.tools.bench.pacing import (
    ALGORITHMS,
    best_fixed_ratio,
    main,
    run_bench,
    simulate,
    small_team_scenario,
    small_team_study,
)

KEYS = {"scenario", "algorithm", "operators", "talk_min_per_operator_hour", "occupancy", "abandon_pct", "attempts"}


def small(**changes: object) -> Scenario:
    base = dataclasses.replace(BUILTIN_SCENARIOS["s20_p25"], name="small", operators=6, hours=1.0)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_rows_for_every_algorithm() -> None:
    rows = run_bench([small()], workers=1)
    assert [r["algorithm"] for r in rows] == list(ALGORITHMS)
    by_name = {r["algorithm"]: r for r in rows}
    for row in rows:
        assert set(row) >= KEYS and row["scenario"] == "small" and row["operators"] == 6
        assert 0 < row["occupancy"] <= 1 and row["attempts"] > 0
        assert row["talk_min_per_operator_hour"] <= 60 * row["occupancy"]
    assert by_name["progressive"]["abandon_pct"] == 0
    fixed = by_name["best_fixed_ratio"]
    assert fixed["abandon_pct"] <= 3.0 and fixed["ratio_base"] in {b.value for b in RatioBase}
    assert fixed["talk_min_per_operator_hour"] >= by_name["progressive"]["talk_min_per_operator_hour"]


def test_best_fixed_ratio_is_the_best_feasible_ratio_it_tried() -> None:
    scenario = small(operators=10)
    base, ratio, result = best_fixed_ratio(scenario)
    assert result.abandon_pct <= 3.0
    assert simulate(scenario, FixedRatioPacer(ratio, base)).talk_s == result.talk_s  # reproducible
    bolder = simulate(scenario, FixedRatioPacer(ratio * 1.3, base))
    assert bolder.abandon_pct > 3.0 or bolder.talk_s <= result.talk_s


def test_workers_give_the_same_rows() -> None:
    scenarios = [small(), small(name="small_seed2", seed=2)]
    algorithms = ("progressive", "predictive")
    assert run_bench(scenarios, algorithms, workers=2) == run_bench(scenarios, algorithms, workers=1)
    with pytest.raises(ValueError, match="unknown algorithm"):
        run_bench(scenarios, ("psychic",))


def test_main_prints_json_for_scenario_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(small(name="tiny").to_json()))
    code = main(["--json", "--no-builtin", "--scenario", str(path), "--algorithm", "progressive",
                 "--algorithm", "predictive", "--workers", "1"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["scenario"], r["algorithm"]) for r in rows] == [("tiny", "progressive"), ("tiny", "predictive")]
    assert all(set(r) >= KEYS for r in rows)


def test_main_reports_an_invalid_scenario_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    data = small().to_json()
    data["operators"] = -3
    path.write_text(json.dumps(data))
    assert main(["--json", "--no-builtin", "--scenario", str(path)]) == 2
    assert f"{path}: operators: must be a whole number" in capsys.readouterr().err


@pytest.mark.slow
def test_targets_of_issue_3_on_the_builtin_scenarios() -> None:
    """The whole benchmark (about a minute on two cores) against the targets of docs/benchmarks.md."""
    rows = run_bench(workers=2)
    talk = {(r["scenario"], r["algorithm"]): r["talk_min_per_operator_hour"] for r in rows}
    for row in rows:
        if row["algorithm"] in ("predictive", "best_fixed_ratio"):
            assert row["abandon_pct"] <= 3.0, row
    for scenario in ("s20_p25", "s20_p10", "s100_p25"):
        assert talk[scenario, "predictive"] >= 0.97 * talk[scenario, "best_fixed_ratio"]
    assert talk["s20_drift", "predictive"] >= 1.08 * talk["s20_drift", "best_fixed_ratio"]
    assert talk["s20_p25", "predictive"] >= 1.2 * talk["s20_p25", "vicidial_adapt"]


# --- the small-team study (#13) -----------------------------------------------------------------------------------

STUDY_KEYS = {"algorithm", "runs", "runs_over_cap", "share_over_cap", "mean_abandon_pct", "max_abandon_pct",
              "talk_min_per_operator_hour", "occupancy"}


def test_small_team_runs_cover_five_to_ten_operators_for_an_hour() -> None:
    scenarios = [small_team_scenario(i) for i in range(12)]
    assert sorted({s.operators for s in scenarios}) == [5, 6, 7, 8, 9, 10]
    assert all(s.hours == 1.0 for s in scenarios) and len({s.seed for s in scenarios}) == 12


def test_small_team_study_reports_the_share_over_the_cap_per_algorithm() -> None:
    algorithms = ("progressive", "predictive", "predictive_mean_budget")
    study = small_team_study(4, algorithms, workers=1)
    assert study["runs"] == 4 and study["cap_pct"] == 3.0 and study["operators"] == [5, 10]
    rows = study["algorithms"]
    assert [r["algorithm"] for r in rows] == list(algorithms)
    for row in rows:
        assert set(row) >= STUDY_KEYS and row["runs"] == 4
        assert 0 <= row["runs_over_cap"] <= 4 and row["share_over_cap"] == row["runs_over_cap"] / 4
        assert (row["runs_over_cap"] > 0) == (row["max_abandon_pct"] > 3.0)
        assert 0 <= row["mean_abandon_pct"] <= row["max_abandon_pct"]
        assert 0 < row["talk_min_per_operator_hour"] <= 60 * row["occupancy"]
    assert rows[0]["runs_over_cap"] == 0 and rows[0]["max_abandon_pct"] == 0  # progressive abandons nothing
    assert small_team_study(4, algorithms, workers=2) == study  # deterministic, however spread
    with pytest.raises(ValueError, match="unknown algorithm"):
        small_team_study(2, ("best_fixed_ratio",), workers=1)


def test_mean_budget_is_the_pacer_without_the_confidence_bound() -> None:
    scenario = small_team_scenario(3)
    row = run_bench([scenario], ("predictive_mean_budget",), workers=1)[0]
    assert row["algorithm"] == "predictive_mean_budget"
    assert row == simulate(scenario, PredictivePacer(confidence_z=0.0), algorithm="predictive_mean_budget").row()


def test_main_prints_one_json_object_for_the_small_team(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--json", "--small-team", "--runs", "2", "--algorithm", "progressive", "--algorithm", "predictive",
                 "--workers", "1"])
    assert code == 0
    study = json.loads(capsys.readouterr().out)
    assert isinstance(study, dict) and study["scenario"] == "small_team" and study["runs"] == 2
    assert [r["algorithm"] for r in study["algorithms"]] == ["progressive", "predictive"]
    assert main(["--small-team", "--runs", "0"]) == 2
    assert main(["--small-team", "--algorithm", "best_fixed_ratio"]) == 2
