"""The allocation benchmark, run small: the JSON's shape and its invariants (never its speed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dialer.db import database_name
from dialer.tools.bench.allocation import (
    CAMPAIGNS,
    WORLDS,
    all_splits,
    bench_allocation,
    main,
    team_sizes,
    timetable,
)

CAMPAIGN_KEYS = {"campaign", "priority", "own_operators", "attempts", "live_answers", "abandon_pct", "talk_min",
                 "operator_hours", "talk_min_per_operator_hour", "dialable_min", "dialable_zero_operator_min",
                 "max_operators_seen", "max_operators", "over_max_operators_min"}


def test_teams_and_timetable() -> None:
    assert team_sizes(8) == [4, 2, 2] and team_sizes(3) == [1, 1, 1] and sum(team_sizes(13)) == 13
    with pytest.raises(ValueError):
        team_sizes(2)
    assert all_splits(4) == [(1, 1, 2), (1, 2, 1), (2, 1, 1)] and len(all_splits(8)) == 21
    assert all(sum(x) == 8 and min(x) >= 1 for x in all_splits(8))
    shifts = timetable(8, 2.0, seed=1)
    assert shifts == timetable(8, 2.0, seed=1) and len(shifts) == 8
    assert any(s.login > 0 for s in shifts) and any(s.logout < 7200 for s in shifts)
    for s in shifts:
        assert 0 <= s.login < s.logout <= 7200
        assert s.break_at < 0 or s.login < s.break_at < s.break_at + s.break_s < s.logout


def test_main_refuses_too_few_operators(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--operators", "2"]) == 2
    assert "--operators" in capsys.readouterr().err


def _check_world(world: dict[str, Any], hours: float) -> None:
    rows = world["campaigns"]
    assert [r["campaign"] for r in rows] == [c.key for c in CAMPAIGNS]
    assert world["overlaps"] == 0  # no operator counted in two campaigns at once
    allocated = sum(r["operator_hours"] for r in rows)
    assert allocated == pytest.approx(world["allocated_operator_hours"], abs=0.01)
    assert world["allocated_operator_hours"] <= world["logged_in_operator_hours"] + 1e-6
    assert world["logged_in_operator_hours"] <= sum(r["own_operators"] for r in rows) * hours + 1e-6
    assert world["talk_min"] == pytest.approx(sum(r["talk_min"] for r in rows), abs=0.2)
    assert world["talk_min_per_operator_hour"] == pytest.approx(
        world["talk_min"] / world["logged_in_operator_hours"], rel=0.01)
    for r in rows:
        assert set(r) >= CAMPAIGN_KEYS, r
        assert 0 <= r["live_answers"] <= r["attempts"]
        assert 0 <= r["abandon_pct"] <= 100
        assert 0 <= r["dialable_zero_operator_min"] <= r["dialable_min"] <= hours * 60 + 1e-6
        assert 0 <= r["over_max_operators_min"] <= hours * 60 + 1e-6
        if r["max_operators"] is None:
            assert r["over_max_operators_min"] == 0
        if r["dialable_min"] > 0:  # a campaign with work got operators
            assert r["max_operators_seen"] > 0, r
        if r["operator_hours"]:
            assert r["talk_min_per_operator_hour"] == pytest.approx(r["talk_min"] / r["operator_hours"], rel=0.02)
            # talk fits in the operator time (sampled every 10 s: a little slack)
            assert r["talk_min"] <= 60 * r["operator_hours"] + 1.0
        else:
            assert r["talk_min"] == 0


@pytest.mark.slow
async def test_both_worlds_small(server_url: str, template_url: str) -> None:
    # 05:45 UTC: the survey (Moscow, Kaliningrad) opens 15 min in, at 09:00 in Moscow
    hours = 0.5
    result = await bench_allocation(operators=6, contacts=300, hours=hours, seed=3,
                                    start=datetime(2026, 12, 8, 5, 45, tzinfo=UTC), database_url=server_url,
                                    template=database_name(template_url), best_fixed=True,
                                    splits=[(2, 2, 2), (3, 2, 1)])
    assert result["benchmark"] == "allocation" and result["operators"] == 6
    assert "natural pool split" in result["baseline"]
    for name in WORLDS:
        _check_world(result[name], hours)
    assert result["shared"]["split"] == result["fixed"]["split"] == team_sizes(6) == [2, 2, 2]
    # the best fixed split: the better of those tried, the natural one reused
    tried = result["splits_tried"]
    assert [t["split"] for t in tried] == [[2, 2, 2], [3, 2, 1]]
    assert tried[0]["talk_min_per_operator_hour"] == result["fixed"]["talk_min_per_operator_hour"]
    best = result["best_fixed"]
    _check_world(best, hours)
    assert best["talk_min_per_operator_hour"] == max(t["talk_min_per_operator_hour"] for t in tried)
    assert [r["own_operators"] for r in best["campaigns"]] == best["split"]
    shared = {r["campaign"]: r for r in result["shared"]["campaigns"]}
    fixed = {r["campaign"]: r for r in result["fixed"]["campaigns"]}
    for key, row in fixed.items():  # the fixed split keeps each campaign to its own team
        assert row["max_operators_seen"] <= row["own_operators"], key
    assert shared["collection"]["max_operators_seen"] <= shared["collection"]["own_operators"] + 1  # its maximum
    # windows open by zone: the survey had nothing to dial for its first quarter of an hour, then it had
    for rows in (shared, fixed):
        assert 0 < rows["survey"]["dialable_min"] <= hours * 60 - 14
        assert rows["collection"]["attempts"] > 0 and rows["sales"]["attempts"] > 0
    assert shared["survey"]["attempts"] > 0
    gain = result["talk_per_operator_hour_gain_pct"]
    assert gain == pytest.approx(100 * (result["shared"]["talk_min_per_operator_hour"]
                                        / result["fixed"]["talk_min_per_operator_hour"] - 1), abs=0.2)
