"""``dialer bench allocation``: several campaigns sharing operators, through the real engine, against a fixed split.

Three campaigns (:data:`CAMPAIGNS`), each built like the engine benchmark's sample (:mod:`dialer.tools.sample`:
fields, a list of contacts with mobiles in twelve cities from Kaliningrad to Vladivostok, codes, a strategy, a
pool, operators), with a calling window of 09:00–21:00 *local to the contact's phone*, so that windows open zone
by zone through the morning:

* ``collection`` — priority 80, contacts in the Asian zones (open from the start), ``max_operators`` of its
  strategy = its own team + 1;
* ``sales`` — priority 50, contacts in every zone, its strategy asks for a skill only its own operators have;
* ``survey`` — priority 50, contacts in Moscow and Kaliningrad only: nothing to dial for the first hour of the
  default start (05:00 UTC = 08:00 in Moscow), then it opens.

The same day is run twice (or more, see ``--best-fixed``), each in a fresh database of its own on the same
PostgreSQL server (copied from a migrated template, dropped afterwards), with the same contacts, traffic, operators
and their timetable (:func:`timetable`: some log in late, some leave early, everyone takes a break):

* ``shared`` — every operator is in every campaign's pool and has the collection's and the survey's skills (the
  sales skill stays with the sales team): the engine's allocation (``engine/assign.py``) decides who works where;
* ``fixed`` — the baseline: the natural pool split, each operator in his own campaign's pool only, as created.
  With ``--best-fixed`` every split of the operators over the campaigns (at least one each) is run as well and
  the one with the most talk per operator-hour, in hindsight, is reported as ``best_fixed`` (one run of the real
  engine per split: 21 for 8 operators).

Both run the real :class:`~dialer.engine.runner.Engine` on :class:`~dialer.telephony.sim.SimTelephony` with a
:class:`~dialer.core.clock.VirtualClock`, predictive pacing, simulated operators (:class:`SimOperators`), the
traffic of ``s20_p25``. Every ``step_s`` of virtual time the engine's own picture is sampled: which operators
each campaign has (``members``), whether it has dialable contacts now (dialling, and its demand has work:
a filled hopper or live calls waiting — ``engine/assign.py``'s :class:`~dialer.engine.assign.Demand`).

Reported per campaign: ``attempts`` (placed before the end), ``live_answers``, ``abandon_pct`` (live answers not
connected within the strategy's 2 s, over live answers), ``talk_min`` and ``talk_min_per_operator_hour`` (over the
operator time allocated to it, counted from the samples, operators on a break included), ``operator_hours``,
``dialable_zero_operator_min`` (time it had dialable contacts and no operator), ``max_operators_seen`` (members
logged in, on a break included), ``max_operators`` (its strategy's) and ``over_max_operators_min`` (time it had
more members than that not on a break); overall
``talk_min_per_operator_hour`` over the logged-in operator time, and ``overlaps`` (samples where an operator was a
member of two campaigns — always 0 unless the engine is wrong).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import Any

from sqlalchemy import text, update

from dialer.config import Settings, get_settings
from dialer.core.clock import VirtualClock
from dialer.engine.assign import Demand
from dialer.engine.commands import CommandKind
from dialer.engine.runner import Engine, EngineConfig
from dialer.engine.virtual import advance
from dialer.models import Campaign, OperatorSkill, Strategy, pool_operators
from dialer.models.enums import DialMode, OperatorState
from dialer.telephony.sim import SimTelephony
from dialer.telephony.traffic import Uniform, builtin_scenario
from dialer.tools.bench.common import bench_database, print_result, run_tag
from dialer.tools.sample import Sample, create_sample
from dialer.tools.simops import SimOperators

__all__ = ["CAMPAIGNS", "WORLDS", "CampaignSpec", "all_splits", "bench_allocation", "main", "team_sizes", "timetable"]

_ASIA = ("Asia/Yekaterinburg", "Asia/Omsk", "Asia/Novosibirsk", "Asia/Krasnoyarsk", "Asia/Irkutsk",
         "Asia/Vladivostok")


@dataclasses.dataclass(frozen=True, slots=True)
class CampaignSpec:
    key: str
    priority: int
    #: Share of the operators in its own pool (the fixed split); at least one each.
    share: float
    #: Time zones of its contacts (None: every zone of the sample).
    zones: tuple[str, ...] | None
    #: Only its own operators have its skill.
    exclusive_skill: bool = False
    #: ``max_operators`` of its strategy = its own team + this (None: no maximum).
    extra_max: int | None = None


CAMPAIGNS: tuple[CampaignSpec, ...] = (
    CampaignSpec("collection", 80, 0.5, _ASIA, extra_max=1),
    CampaignSpec("sales", 50, 0.25, None, exclusive_skill=True),
    CampaignSpec("survey", 50, 0.25, ("Europe/Moscow", "Europe/Kaliningrad")),
)

WORLDS: tuple[str, ...] = ("shared", "fixed")


def team_sizes(operators: int, specs: Sequence[CampaignSpec] = CAMPAIGNS) -> list[int]:
    """Operators of each campaign's own pool: shares rounded, at least one each, the rest to the first."""
    if operators < len(specs):
        raise ValueError(f"at least {len(specs)} operators are needed (one per campaign)")
    sizes = [max(1, round(operators * s.share)) for s in specs]
    sizes[0] += operators - sum(sizes)
    if sizes[0] < 1:
        raise ValueError(f"{operators} operators cannot be split over {len(specs)} campaigns")
    return sizes


@dataclasses.dataclass(frozen=True, slots=True)
class Shift:
    """One operator's day, in seconds from the start: logged in from ``login`` to ``logout``, a break."""

    login: float
    logout: float
    break_at: float
    break_s: float


def timetable(operators: int, hours: float, seed: int) -> list[Shift]:
    """Every fourth operator logs in late (10–40 % into the run), every fourth (offset by two) leaves early
    (60–90 %), everyone takes a break of 5–15 min between 30 % and 70 % of the run; seeded."""
    rng = random.Random(seed * 7919 + operators)
    total = hours * 3600.0
    shifts = []
    for i in range(operators):
        login = rng.uniform(0.1, 0.4) * total if i % 4 == 3 else 0.0
        logout = rng.uniform(0.6, 0.9) * total if i % 4 == 1 else total
        break_at = rng.uniform(0.3, 0.7) * total
        break_s = rng.uniform(300.0, 900.0)
        if not (login < break_at < logout - break_s):
            break_at, break_s = -1.0, 0.0  # no break in a short shift
        shifts.append(Shift(login, logout, break_at, break_s))
    return shifts


# --- the databases ------------------------------------------------------------------------------------------------

async def _admin(server_url: str) -> Any:
    import asyncpg

    from dialer.db import asyncpg_dsn, with_database

    return await asyncpg.connect(asyncpg_dsn(with_database(server_url, "postgres")))


async def _create_database(server_url: str, name: str, settings: Settings, template: str | None) -> str:
    from dialer.db import with_database
    from dialer.migrate import prepare_database

    url = with_database(server_url, name)
    if template is None:
        await prepare_database(url, settings)
        return url
    conn = await _admin(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    finally:
        await conn.close()
    return url


async def _drop_database(server_url: str, name: str) -> None:
    conn = await _admin(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# --- one world ----------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class _Tally:
    operator_s: float = 0.0
    dialable_zero_s: float = 0.0
    dialable_s: float = 0.0
    max_members: int = 0
    over_max_s: float = 0.0


async def _build(maker: Any, world: str, *, operators: int, contacts: int, seed: int, split: Sequence[int]) \
        -> list[Sample]:
    samples: list[Sample] = []
    natural = team_sizes(operators)
    for i, (spec, size) in enumerate(zip(CAMPAIGNS, split, strict=True)):
        suffix = f" ({spec.key})"
        sample = await create_sample(maker, name=f"Распределение: {spec.key}", contacts=contacts, operators=size,
                                     suffix=suffix, mode=DialMode.predictive, seed=seed + i, start=False)
        samples.append(sample)
        async with maker() as session, session.begin():
            if spec.zones is not None:
                await session.execute(text(
                    "DELETE FROM contacts WHERE list_id = :l AND id IN (SELECT contact_id FROM contact_phones "
                    "WHERE list_id = :l AND NOT (timezones && CAST(:z AS text[])))"),
                    {"l": sample.list_id, "z": list(spec.zones)})
            await session.execute(update(Strategy).where(Strategy.id == sample.strategy_id).values(
                call_window_start=dtime(9), call_window_end=dtime(21),
                max_operators=natural[i] + spec.extra_max if spec.extra_max is not None else None))
            await session.execute(update(Campaign).where(Campaign.id == sample.campaign_id).values(
                priority=spec.priority))
    if world == "shared":
        async with maker() as session, session.begin():
            everyone = [op for s in samples for op in s.operator_ids]
            for sample in samples:
                others = [op for op in everyone if op not in sample.operator_ids]
                await session.execute(pool_operators.insert(), [
                    {"pool_id": sample.pool_id, "operator_id": op} for op in others])
            for spec, sample in zip(CAMPAIGNS, samples, strict=True):
                if spec.exclusive_skill:
                    continue
                others = [op for op in everyone if op not in sample.operator_ids]
                session.add_all([OperatorSkill(operator_id=op, skill_id=sample.skill_id, level=50) for op in others])
    async with maker() as session:
        await session.execute(text("ANALYZE contacts"))
        await session.execute(text("ANALYZE contact_phones"))
        await session.commit()
    from dialer.campaign import service as campaign_service
    from dialer.campaign.status import Action
    from dialer.engine.journal import ENGINE_ACTOR

    for sample in samples:
        async with maker() as session, session.begin():
            session.info["actor"] = ENGINE_ACTOR
            await campaign_service.change_status(session, sample.campaign_id, Action.start)
    return samples


async def _run_world(maker: Any, world: str, *, operators: int, contacts: int, hours: float, seed: int,
                     epoch: datetime, step_s: float, split: Sequence[int] | None = None) -> dict[str, Any]:
    split = list(split) if split is not None else team_sizes(operators)
    samples = await _build(maker, world, operators=operators, contacts=contacts, seed=seed, split=split)
    campaign_ids = [s.campaign_id for s in samples]
    operator_ids = [op for s in samples for op in s.operator_ids]
    shifts = dict(zip(operator_ids, timetable(operators, hours, seed), strict=True))
    events: list[tuple[float, int, CommandKind]] = []
    for op, shift in shifts.items():
        events.append((shift.login, op, CommandKind.ready))
        if shift.break_at >= 0:
            events.append((shift.break_at, op, CommandKind.pause))
            events.append((shift.break_at + shift.break_s, op, CommandKind.ready))
        if shift.logout < hours * 3600.0:
            events.append((shift.logout, op, CommandKind.offline))
    events.sort(key=lambda e: (e[0], e[1], e[2].value))

    clock = VirtualClock(epoch=epoch)
    traffic = dataclasses.replace(builtin_scenario("s20_p25"), operators=operators)
    sim = SimTelephony(clock, traffic, seed=seed)
    engine = Engine(maker, sim, clock=clock, database_url=None,
                    config=EngineConfig(drain_s=0, seed=seed, auto_stop_errors=0))
    SimOperators(engine, sim, operator_ids=operator_ids, wrap_up_s=Uniform(10.0, 20.0), seed=seed, go_ready=False)
    tallies = {c: _Tally() for c in campaign_ids}
    logged_in_s = 0.0
    overlaps = 0
    end = hours * 3600.0
    pending = list(events)
    async with engine.running():
        await advance(clock, engine, 0)
        t = 0.0
        while t < end:
            while pending and pending[0][0] <= t:
                _, op, kind = pending.pop(0)
                engine.submit(kind, op, **({"reason": "break"} if kind is CommandKind.pause else {}))
            step = min(step_s, end - t, *([pending[0][0] - t] if pending else []))
            step = max(step, 1e-3)
            await advance(clock, engine, step)
            t += step
            seen: set[int] = set()
            for cid in campaign_ids:
                c = engine.campaigns.get(cid)
                tally = tallies[cid]
                members = set(c.members) if c is not None else set()
                overlaps += len(seen & members)
                seen |= members
                working = [m for m in members if engine.operators[m].state is not OperatorState.offline]
                tally.operator_s += len(working) * step
                tally.max_members = max(tally.max_members, len(working))
                cap = c.cfg.max_operators if c is not None else None
                if cap is not None and sum(1 for m in working if engine.operators[m].state
                                           is not OperatorState.paused) > cap:
                    tally.over_max_s += step
                if c is not None and c.dialing and Demand.of(c).has_work:
                    tally.dialable_s += step
                    if not working:
                        tally.dialable_zero_s += step
            logged_in_s += step * sum(1 for op in operator_ids
                                      if engine.operators[op].state is not OperatorState.offline)
        await engine.journal.drained()
    end_at = epoch + timedelta(seconds=end)
    rows: list[dict[str, Any]] = []
    async with maker() as session:
        for spec, sample, size in zip(CAMPAIGNS, samples, team_sizes(operators), strict=True):
            attempts, live, abandoned, talk_s = (await session.execute(text(
                "SELECT count(*) FILTER (WHERE dialed_at < :end), "
                "count(*) FILTER (WHERE answered_by = 'human' AND answered_at < :end), "
                "count(*) FILTER (WHERE answered_by = 'human' AND answered_at < :end "
                "AND (connected_at IS NULL OR connected_at > answered_at + interval '2 seconds')), "
                "COALESCE(sum(extract(epoch FROM LEAST(COALESCE(hung_up_at, CAST(:end AS timestamptz)), "
                "CAST(:end AS timestamptz)) - connected_at)) FILTER (WHERE connected_at < :end), 0) "
                "FROM attempts WHERE campaign_id = :c"), {"c": sample.campaign_id, "end": end_at})).one()
            tally = tallies[sample.campaign_id]
            op_hours = tally.operator_s / 3600.0
            rows.append({
                "campaign": spec.key, "priority": spec.priority,
                "own_operators": len(sample.operator_ids),
                "attempts": int(attempts), "live_answers": int(live),
                "abandon_pct": round(100.0 * int(abandoned) / int(live), 2) if live else 0.0,
                "talk_min": round(float(talk_s) / 60.0, 1),
                "operator_hours": round(op_hours, 3),
                "talk_min_per_operator_hour": round(float(talk_s) / 60.0 / op_hours, 2) if op_hours else 0.0,
                "dialable_min": round(tally.dialable_s / 60.0, 1),
                "dialable_zero_operator_min": round(tally.dialable_zero_s / 60.0, 1),
                "max_operators_seen": tally.max_members,
                "max_operators": size + spec.extra_max if spec.extra_max is not None else None,
                "over_max_operators_min": round(tally.over_max_s / 60.0, 1),
            })
    total_talk_min = sum(r["talk_min"] for r in rows)
    logged_in_h = logged_in_s / 3600.0
    return {
        "world": world,
        "split": split,
        "campaigns": rows,
        "talk_min": round(total_talk_min, 1),
        "logged_in_operator_hours": round(logged_in_h, 3),
        "allocated_operator_hours": round(sum(t.operator_s for t in tallies.values()) / 3600.0, 3),
        "talk_min_per_operator_hour": round(total_talk_min / logged_in_h, 2) if logged_in_h else 0.0,
        "overlaps": overlaps,
    }


def all_splits(operators: int, parts: int = len(CAMPAIGNS)) -> list[tuple[int, ...]]:
    """Every way to split ``operators`` over ``parts`` campaigns with at least one each, in lexical order."""
    if parts == 1:
        return [(operators,)] if operators >= 1 else []
    return [(first, *rest) for first in range(1, operators - parts + 2)
            for rest in all_splits(operators - first, parts - 1)]


def _gain(shared: dict[str, Any], fixed: dict[str, Any]) -> float | None:
    base = fixed["talk_min_per_operator_hour"]
    return round(100.0 * (shared["talk_min_per_operator_hour"] / base - 1.0), 1) if base else None


async def bench_allocation(*, operators: int = 8, contacts: int = 2000, hours: float = 2.0, seed: int = 1,
                           start: datetime | None = None, step_s: float = 10.0, settings: Settings | None = None,
                           database_url: str | None = None, template: str | None = None,
                           best_fixed: bool = False, splits: Sequence[Sequence[int]] | None = None) \
        -> dict[str, Any]:
    """Run the worlds (see the module's docstring); returns the figures as one JSON-ready object.

    ``database_url`` names the server (its database part is ignored): each world gets a database of its own there,
    copied from ``template`` (a migrated database; without one a migrated scratch template is made first) and
    dropped afterwards. Without it, the configured server (the embedded one when nothing is configured).

    ``best_fixed`` also runs the fixed world with every split of the operators over the campaigns (``splits``, by
    default :func:`all_splits`) and reports the one with the most talk per operator-hour as ``best_fixed``.
    """
    from dialer.db import resolve_url

    settings = settings or get_settings()
    server: str | None = database_url or await asyncio.to_thread(resolve_url, settings)
    if not server:
        raise RuntimeError("no database server configured")
    epoch = start or datetime(2026, 12, 8, 5, 0, tzinfo=UTC)
    natural = team_sizes(operators)
    tried = [tuple(x) for x in (splits if splits is not None else all_splits(operators))] if best_fixed else []
    for split in tried:
        if len(split) != len(CAMPAIGNS) or sum(split) != operators or min(split) < 1:
            raise ValueError(f"split {split} does not give {operators} operators to {len(CAMPAIGNS)} campaigns")
    tag = run_tag("_")
    started = time.perf_counter()
    scratch_template = None
    if template is None:
        scratch_template = f"dialer_bench_alloc_{tag}_template"
        await _create_database(server, scratch_template, settings, None)
        template = scratch_template

    async def world(label: str, kind: str, split: Sequence[int]) -> dict[str, Any]:
        name = f"dialer_bench_alloc_{tag}_{label}"
        try:
            url = await _create_database(server, name, settings, template)
            async with bench_database(pool_size=6, settings=settings, database_url=url) as db:
                return await _run_world(db.maker, kind, operators=operators, contacts=contacts, hours=hours,
                                        seed=seed, epoch=epoch, step_s=step_s, split=split)
        finally:
            await _drop_database(server, name)

    try:
        shared = await world("shared", "shared", natural)
        fixed = await world("fixed", "fixed", natural)
        searched = [fixed if list(split) == natural else await world(f"fixed_{'_'.join(map(str, split))}", "fixed",
                                                                      split)
                    for split in tried]
    finally:
        if scratch_template is not None:
            await _drop_database(server, scratch_template)
    result: dict[str, Any] = {
        "benchmark": "allocation",
        "operators": operators, "contacts_per_list": contacts, "hours": hours, "seed": seed,
        "start_utc": epoch.isoformat(), "traffic": "s20_p25", "dial_mode": "predictive",
        "baseline": "fixed: the natural pool split (each operator only in his own campaign's pool), not searched",
        "shared": shared, "fixed": fixed,
        "talk_per_operator_hour_gain_pct": _gain(shared, fixed),
    }
    if searched:
        best = max(searched, key=lambda w: (w["talk_min_per_operator_hour"], w["split"] == natural))
        result["best_fixed_baseline"] = (f"best_fixed: the split with the most talk per operator-hour among "
                                         f"{len(searched)} tried, in hindsight on this very day")
        result["splits_tried"] = [{"split": w["split"], "talk_min_per_operator_hour": w["talk_min_per_operator_hour"],
                                   "abandon_pct": [r["abandon_pct"] for r in w["campaigns"]]} for w in searched]
        result["best_fixed"] = best
        result["talk_per_operator_hour_gain_vs_best_fixed_pct"] = _gain(shared, best)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """``dialer bench allocation [--json] [--operators N] [--hours H] [--contacts N] [--seed S]``."""
    parser = argparse.ArgumentParser(prog="dialer bench allocation",
                                     description="Campaigns sharing operators through the real engine, "
                                                 "against the natural fixed split.")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--operators", type=int, default=8, help="operators in all (default 8)")
    parser.add_argument("--hours", type=float, default=2.0, help="virtual hours (default 2)")
    parser.add_argument("--contacts", type=int, default=2000, help="contacts generated per list (default 2000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", default=None, help="server to create the scratch databases on")
    parser.add_argument("--best-fixed", action="store_true",
                        help="also try every fixed split of the operators and report the best (one run each)")
    args = parser.parse_args(argv)
    if args.operators < len(CAMPAIGNS) or args.hours <= 0 or args.contacts < 1:
        print(f"error: need --operators >= {len(CAMPAIGNS)}, --hours > 0, --contacts >= 1", file=sys.stderr)
        return 2
    result = asyncio.run(bench_allocation(operators=args.operators, contacts=args.contacts, hours=args.hours,
                                          seed=args.seed, database_url=args.database_url,
                                          best_fixed=args.best_fixed))
    print_result(result, as_json=True, indent=None if args.json else 1)
    return 0


if __name__ == "__main__":  # pragma: no cover - the CLI wires main() as ``dialer bench allocation``
    raise SystemExit(main())
