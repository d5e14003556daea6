"""``dialer bench ...``: every benchmark command, registered here (:mod:`dialer.cli` adds ``bench_app``).

Each command imports its benchmark when it runs, so ``--help`` stays quick and needs no database.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from dialer.tools.bench.common import print_result

bench_app = typer.Typer(help="Benchmarks; each prints one JSON object.", no_args_is_help=True)

AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object")]


@bench_app.command("pacing", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench_pacing_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list")] = False,
    scenario: Annotated[list[Path] | None, typer.Option("--scenario", help="Scenario JSON file (repeatable)")] = None,
) -> None:
    """Pacing algorithms side by side in virtual time (progressive, best fixed ratio, VICIdial ADAPT, ours).

    Further options of the benchmark (--builtin NAME, --no-builtin, --algorithm NAME, --workers N) pass through.
    """
    from dialer.tools.bench.pacing import main as pacing_main

    argv = (["--json"] if as_json else []) + [a for f in scenario or [] for a in ("--scenario", str(f))]
    raise typer.Exit(pacing_main([*argv, *ctx.args]))


@bench_app.command("engine")
def bench_engine_command(
    operators: Annotated[int, typer.Option(help="Simulated operators")] = 500,
    contacts: Annotated[int, typer.Option(help="Contacts in the campaign")] = 1_000_000,
    as_json: AsJson = False,
) -> None:
    """The real engine against the real database on simulated telephony, as fast as it can."""
    from dialer.tools.bench.engine import bench_engine

    print_result(asyncio.run(bench_engine(operators, contacts)), as_json=as_json)


@bench_app.command("realtime")
def bench_realtime_command(
    operators: Annotated[int, typer.Option(help="Simulated operators (one live operator-panel client each)")] = 100,
    seconds: Annotated[float, typer.Option(help="How long to measure, wall-clock seconds")] = 30.0,
    supervisors: Annotated[int, typer.Option(help="Live supervisor clients (every event)")] = 10,
    as_json: AsJson = False,
) -> None:
    """Delay from an engine event to its arrival at live browser streams (SSE), with the demo's engine running."""
    from dialer.tools.bench.realtime import bench_realtime

    print_result(asyncio.run(bench_realtime(operators, seconds=seconds, supervisors=supervisors)), as_json=as_json)


@bench_app.command("sip")
def bench_sip_command(
    calls: Annotated[int, typer.Option(help="Calls to place")] = 2000,
    rate: Annotated[float, typer.Option(help="Calls placed per second")] = 200.0,
    hold_s: Annotated[float, typer.Option("--hold-s", help="Seconds each answered call is held")] = 1.0,
    as_json: AsJson = False,
) -> None:
    """The SIP driver against a SIPp carrier on loopback (needs the sip-tester package)."""
    from dialer.tools.bench.sip import bench_sip

    print_result(asyncio.run(bench_sip(calls, rate, hold_s)), as_json=as_json)


@bench_app.command("import")
def bench_import_command(
    rows: Annotated[int, typer.Option(help="Contacts in the generated file")] = 100_000,
    database_url: Annotated[str | None, typer.Option(help="Database (default: the configured one)")] = None,
    keep: Annotated[bool, typer.Option(help="Keep the list, the fields and the file afterwards")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (also the default output)")] = False,
) -> None:
    """Import a generated CSV through the real import path and compare with a raw COPY of the same file."""
    from dialer.tools.bench.imports import bench_import

    # The output is one JSON object either way; --json is accepted so the documented command works.
    del as_json
    print_result(asyncio.run(bench_import(rows, database_url=database_url, keep=keep)))


@bench_app.command("allocation")
def bench_allocation_command(
    operators: Annotated[int, typer.Option(help="Operators in all, split over three campaigns")] = 8,
    hours: Annotated[float, typer.Option(help="Virtual hours of the day (from 05:00 UTC)")] = 2.0,
    contacts: Annotated[int, typer.Option(help="Contacts generated per campaign's list")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of contacts, traffic and operators' timetable")] = 1,
    database_url: Annotated[str | None, typer.Option(help="Server for the scratch databases (default: the "
                                                          "configured one)")] = None,
    best_fixed: Annotated[bool, typer.Option("--best-fixed", help="Also try every fixed split of the operators "
                                                                  "(one engine run each) and report the best")] = False,
    as_json: AsJson = False,
) -> None:
    """Campaigns sharing operators through the real engine (priorities, a skill, windows opening by zone, logins,
    breaks) against the same day with operators fixed to their campaigns' pools."""
    from dialer.tools.bench.allocation import bench_allocation

    print_result(asyncio.run(bench_allocation(operators=operators, contacts=contacts, hours=hours, seed=seed,
                                              database_url=database_url, best_fixed=best_fixed)),
                 as_json=as_json)


@bench_app.command("crm")
def bench_crm_command(
    operators: Annotated[int, typer.Option(help="Simulated operators")] = 100,
    contacts: Annotated[int, typer.Option(help="Contacts in the campaign (each one a CRM record)")] = 20_000,
    phase_s: Annotated[float, typer.Option(help="Wall seconds of each engine phase")] = 6.0,
    phases: Annotated[int, typer.Option(help="Engine phases of each side (without, with, alternating)")] = 4,
    latency_ms: Annotated[float, typer.Option(help="The CRM's answer delay")] = 50.0,
    as_json: AsJson = False,
) -> None:
    """Results delivered end to end to a LeadVertex emulator (latency, faults), and the engine's attempts/s with and
    without the integration in the same run."""
    from dialer.tools.bench.crm import bench_crm

    print_result(asyncio.run(bench_crm(operators, contacts, phase_s=phase_s, phases=phases, latency_ms=latency_ms)),
                 as_json=as_json)


@bench_app.command("reports")
def bench_reports_command(
    attempts: Annotated[int, typer.Option(help="Attempts generated over a year (and operators' periods)")] = 1_000_000,
    repeats: Annotated[int, typer.Option(help="Runs of each report per period (half for the year)")] = 5,
    database_url: Annotated[str | None, typer.Option(help="Server for the scratch database (default: the "
                                                          "configured one)")] = None,
    keep: Annotated[bool, typer.Option(help="Keep the scratch database afterwards")] = False,
    as_json: AsJson = False,
) -> None:
    """Every report for a day, a month and a year through the hourly rollups, and the naive GROUP BY over the raw
    tables in the same run; p95 milliseconds and whether the answers are identical."""
    from dialer.tools.bench.reports import bench_reports

    print_result(asyncio.run(bench_reports(attempts, repeats=repeats, database_url=database_url, keep=keep)),
                 as_json=as_json)


@bench_app.command("amd")
def bench_amd_command(
    per_class: Annotated[int, typer.Option(help="Generated samples of each class")] = 20,
    as_json: AsJson = False,
) -> None:
    """Answering-machine detection on generated greetings (espeak-ng + sox): accuracy and decision time by class."""
    from dialer.tools.bench.amd import bench_amd

    print_result(bench_amd(per_class=per_class), as_json=as_json)


@bench_app.command("media")
def bench_media_command(
    calls: Annotated[int, typer.Option(help="Concurrent calls through the media plane")] = 200,
    seconds: Annotated[float, typer.Option(help="How long the calls last, wall-clock seconds")] = 30.0,
    as_json: AsJson = False,
) -> None:
    """Concurrent recorded (and WebRTC-bridged) calls through rtpengine beside direct media in the same run: CPU per
    call, packet loss, set-up time, and the engine's attempts/s with and without the media load."""
    from dialer.tools.bench.media import bench_media

    print_result(asyncio.run(bench_media(calls, seconds=seconds)), as_json=as_json)
