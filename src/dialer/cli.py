"""The ``dialer`` command: run the product, migrate, manage users, import files, benchmarks."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from dialer.config import get_settings

app = typer.Typer(help="Dialer: an outbound call-centre platform.", no_args_is_help=True, add_completion=False)
user_app = typer.Typer(help="Users of the product.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks; each prints one JSON object.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(bench_app, name="bench")
console = Console(stderr=True)


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
) -> None:
    """Start the product: database (embedded unless DIALER_DATABASE_URL is set), migrations, web API and engine."""
    from dialer.tools.serve import serve

    settings = get_settings()
    asyncio.run(_first_start(settings))
    asyncio.run(serve(settings, host=host, port=port))


async def _first_start(settings: Any) -> None:
    """Migrate, and on an empty installation create the first administrator with a printed password."""
    from sqlalchemy import func, select

    from dialer.cli_support import open_database
    from dialer.models import User

    async with open_database(settings) as (_engine, maker, _settings):
        async with maker() as session:
            users = await session.scalar(select(func.count()).select_from(User))
        if users:
            return
        password = secrets.token_urlsafe(12)
        await _create_user(maker, "admin", password, ("admin",), "Administrator")
        path = settings.data_dir / "initial-admin-password.txt"
        path.write_text(password + "\n")
        path.chmod(0o600)
        console.print(f"[bold green]First start:[/] administrator [bold]admin[/] created, password "
                      f"[bold]{password}[/] (also in {path})")


async def _create_user(maker: Any, login: str, password: str, roles: tuple[str, ...], full_name: str) -> int:
    from sqlalchemy import insert, select

    from dialer.audit.recorder import Actor
    from dialer.auth.service import hash_password
    from dialer.models import Role, User, user_roles

    async with maker() as session, session.begin():
        session.info["actor"] = Actor(None, "cli", ("system",))
        known = dict((await session.execute(select(Role.code, Role.id))).all())
        if unknown := [r for r in roles if r not in known]:
            raise typer.BadParameter(f"unknown roles {unknown}; known: {', '.join(sorted(known))}")
        user = User(login=login, full_name=full_name, password_hash=hash_password(password))
        session.add(user)
        await session.flush()
        for code in roles:
            await session.execute(insert(user_roles).values(user_id=user.id, role_id=known[code]))
        return user.id


@app.command()
def engine() -> None:
    """Run the dialing engine alone (the API may run in another process: `dialer run --no-engine`)."""
    from dialer.tools.engine import run_engine

    asyncio.run(run_engine(get_settings()))


@app.command()
def demo(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
) -> None:
    """The demo: sample campaign with 10,000 contacts, simulated operators and telephony in real time, the API."""
    from dialer.tools.demo import run_demo

    asyncio.run(run_demo(get_settings(), host=host, port=port))


@app.command()
def migrate() -> None:
    """Create the database if needed and apply all migrations."""
    from dialer.cli_support import open_database

    async def go() -> None:
        async with open_database():
            pass

    asyncio.run(go())
    console.print("[green]Database is up to date.[/]")


@user_app.command("create")
def user_create(
    login: str,
    role: Annotated[list[str], typer.Option("--role", help="Role code (repeatable): admin, supervisor, ...")],
    password: Annotated[str | None, typer.Option(help="Password; asked for when omitted")] = None,
    full_name: Annotated[str, typer.Option(help="Full name")] = "",
) -> None:
    """Create a user, e.g. the first administrator: ``dialer user create admin --role admin``."""
    from dialer.auth.service import MIN_PASSWORD_LENGTH
    from dialer.cli_support import open_database

    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise typer.BadParameter(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")

    async def go() -> int:
        async with open_database() as (_engine, maker, _settings):
            return await _create_user(maker, login, password, tuple(role), full_name)

    try:
        user_id = asyncio.run(go())
    except Exception as err:
        if "uq_users_login" in str(err):
            console.print(f"[red]A user with login '{login}' already exists.[/]")
            raise typer.Exit(1)
        raise
    console.print(f"[green]User {login} created (id {user_id}).[/]")


@app.command("import-numbering")
def import_numbering(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    skip_invalid: Annotated[bool, typer.Option(
        help="Load the good rows of a file that has bad ones; by default such a file is refused and changes "
             "nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Load the national numbering registry (ABC/DEF CSV of the regulator) into the phone-code table."""
    from dialer.cli_support import open_database
    from dialer.phone.registry import RegistryFormatError
    from dialer.timezone.service import import_numbering as run_import

    async def go(progress: Progress | None) -> dict[str, Any]:
        task = progress.add_task("numbering registry", total=file.stat().st_size) if progress else None

        def advance(done: int, total: int, rows: int) -> None:
            if progress is not None and task is not None:
                progress.update(task, completed=done, total=total)

        async with open_database() as (_engine, maker, _settings):
            return await run_import(maker, file, progress=advance, skip_invalid=skip_invalid)

    try:
        if as_json:
            result = asyncio.run(go(None))
        else:
            with _progress() as progress:
                result = asyncio.run(go(progress))
    except RegistryFormatError as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(2)
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        console.print(f"[green]{result['ranges']} ranges loaded[/], {result['rejected']} rows rejected "
                      f"in {result['seconds']} s.")
        for row in result["errors"][:20]:
            console.print(f"  line {row['line']}, {row['column']}: {row['reason']}")


@app.command()
def openapi(
    output: Annotated[Path | None, typer.Option(help="Write to this file instead of standard output")] = None,
) -> None:
    """Print the OpenAPI schema of the REST API (docs/openapi.json is kept current by a test)."""
    from dialer.app import create_app

    text = openapi_text(create_app(prepare=False))
    if output:
        output.write_text(text)
    else:
        print(text, end="")


def openapi_text(application: Any) -> str:
    return json.dumps(application.openapi(), ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                    console=console)


@bench_app.command("pacing", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench_pacing(
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
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """The real engine against the real database on simulated telephony, as fast as it can."""
    from dialer.tools.bench.engine import bench_engine

    result = asyncio.run(bench_engine(operators, contacts))
    print(json.dumps(result, ensure_ascii=False) if as_json else result)


@bench_app.command("realtime")
def bench_realtime_command(
    operators: Annotated[int, typer.Option(help="Simulated operators (one live operator-panel client each)")] = 100,
    seconds: Annotated[float, typer.Option(help="How long to measure, wall-clock seconds")] = 30.0,
    supervisors: Annotated[int, typer.Option(help="Live supervisor clients (every event)")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Delay from an engine event to its arrival at live browser streams (SSE), with the demo's engine running."""
    from dialer.tools.bench.realtime import bench_realtime

    result = asyncio.run(bench_realtime(operators, seconds=seconds, supervisors=supervisors))
    print(json.dumps(result, ensure_ascii=False) if as_json else result)


@bench_app.command("sip")
def bench_sip_command(
    calls: Annotated[int, typer.Option(help="Calls to place")] = 2000,
    rate: Annotated[float, typer.Option(help="Calls placed per second")] = 200.0,
    hold_s: Annotated[float, typer.Option("--hold-s", help="Seconds each answered call is held")] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """The SIP driver against a SIPp carrier on loopback (needs the sip-tester package)."""
    from dialer.tools.bench.sip import bench_sip

    result = asyncio.run(bench_sip(calls, rate, hold_s))
    print(json.dumps(result, ensure_ascii=False) if as_json else result)


def _register_domain_commands() -> None:
    """Commands that live beside their domain (``dialer import``, ``dialer bench import``, ``dialer campaign``)."""
    try:
        from dialer.contact import cli as contact_cli
    except ImportError:  # pragma: no cover - the contact domain is part of the product
        return
    register = getattr(contact_cli, "register", None)
    if register is not None:
        register(app, bench_app)
    from dialer.campaign import cli as campaign_cli

    campaign_cli.register(app)


_register_domain_commands()


def main() -> None:
    app(prog_name="dialer")


if __name__ == "__main__":
    main()
