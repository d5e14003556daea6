"""``dialer import FILE --list NAME``: the command-line side of the importer.

``register(app)`` is called by :mod:`dialer.cli` to add the command (``dialer bench import`` is
registered with the other benchmarks in :mod:`dialer.tools.bench.cli`). The work is in plain
async functions (:func:`import_file`) that tests call directly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from dialer.audit.recorder import Actor
from dialer.config import Settings
from dialer.contact.importer import ImportOptions, ImportProgress, run_import
from dialer.core.tasks import background as tasks
from dialer.exceptions import DialerError

CLI_ACTOR = Actor(None, "cli", ("system",))
console = Console(stderr=True)


def parse_mapping(items: Sequence[str]) -> dict[str, str | None]:
    """``["Тел=Телефон", "Примечание="]`` → ``{"Тел": "Телефон", "Примечание": None}`` (empty: ignore)."""
    mapping: dict[str, str | None] = {}
    for item in items:
        column, sep, target = item.partition("=")
        if not sep or not column.strip():
            raise typer.BadParameter(f"'{item}': write COLUMN=FIELD (or COLUMN= to ignore the column)",
                                     param_hint="--map")
        mapping[column.strip()] = target.strip() or None
    return mapping


async def import_file(path: Path, *, list_name: str, mapping: dict[str, str | None] | None = None,
                      country: str | None = None, tags: Sequence[str] = (), skip_dnc: bool = False,
                      dnc_list_id: int | None = None, allow_duplicates: bool = False, sheet: str | None = None,
                      settings: Settings | None = None, database_url: str | None = None,
                      progress: Callable[[ImportProgress], None] | None = None) -> dict[str, Any]:
    """Import a file into the list named ``list_name`` (created from the header if it does not exist).

    Returns what ``--json`` prints. Raises :class:`DialerError` when the import cannot start.
    """
    from dialer.cli_support import open_database

    options = ImportOptions(mapping=dict(mapping) if mapping else None, country=country, tags=list(tags),
                            skip_dnc=skip_dnc, dnc_list_id=dnc_list_id, allow_duplicates=allow_duplicates,
                            sheet=sheet)
    async with open_database(settings, database_url=database_url) as (_engine, maker, resolved):
        result = await run_import(maker, path, settings=resolved, list_name=list_name, create_list=True,
                                  options=options, actor=CLI_ACTOR, progress=progress)
        await tasks.wait_idle()
    return {"imported": result.imported, "rejected": result.rejected, "duplicates": result.duplicates,
            "dnc_filtered": result.dnc_filtered, "errors_file": result.errors_file, "list_id": result.list_id,
            "seconds": result.seconds, "rows": result.rows, "status": result.status.value, "job_id": result.job_id,
            "message": result.message, "uncertain_numbers": result.uncertain_numbers,
            "settled_by_place": result.settled_by_place}


def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV or XLSX file")],
    list_name: Annotated[str, typer.Option("--list", help="Contact list; created from the header if missing")],
    map_: Annotated[list[str] | None, typer.Option("--map", help="COLUMN=FIELD (repeatable); COLUMN= ignores")] = None,
    country: Annotated[str | None, typer.Option(help="Country of numbers without a code, e.g. RU")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag of the batch (repeatable)")] = None,
    skip_dnc: Annotated[bool, typer.Option("--skip-dnc", help="Leave out numbers of the blacklist")] = False,
    dnc_list: Annotated[int | None, typer.Option("--dnc-list", help="Also leave out this DNC list's numbers")] = None,
    allow_duplicates: Annotated[bool, typer.Option("--allow-duplicates",
                                                   help="Import numbers already in the list")] = False,
    sheet: Annotated[str | None, typer.Option(help="XLSX worksheet to read (default: the first visible one)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Import contacts from a CSV or XLSX file into a contact list."""
    mapping = parse_mapping(map_ or [])

    def run(progress: Callable[[ImportProgress], None] | None) -> dict[str, Any]:
        return asyncio.run(import_file(file, list_name=list_name, mapping=mapping, country=country, tags=tag or [],
                                       skip_dnc=skip_dnc or dnc_list is not None, dnc_list_id=dnc_list,
                                       allow_duplicates=allow_duplicates, sheet=sheet, progress=progress))

    try:
        if as_json:
            result = run(None)
        else:
            with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("rows"), TimeElapsedColumn(), TimeRemainingColumn(), console=console) as bar:
                task = bar.add_task(file.name, total=None)

                def advance(p: ImportProgress) -> None:
                    bar.update(task, completed=p.rows_done, total=p.rows_total or None)

                result = run(advance)
    except DialerError as err:
        if as_json:
            print(json.dumps({"error": err.detail, "errors": err.errors}, ensure_ascii=False))
        else:
            console.print(f"[red]{err.detail}[/]")
        raise typer.Exit(2)
    if as_json:
        print(json.dumps({k: result[k] for k in result if k != "message" or result[k]}, ensure_ascii=False))
    else:
        colour = "green" if result["status"] == "finished" else "red"
        console.print(f"[{colour}]{result['status']}[/]: {result['imported']} imported, {result['rejected']} "
                      f"rejected, {result['duplicates']} duplicates, {result['dnc_filtered']} in DNC "
                      f"(list {result['list_id']}, {result['seconds']} s)")
        if result["errors_file"]:
            console.print(f"Rows with problems: {result['errors_file']}")
        if result["message"]:
            console.print(f"[{'yellow' if colour == 'green' else 'red'}]{result['message']}[/]")
        if result["uncertain_numbers"]:
            from dialer.timezone.service import REGISTRY_HINT

            console.print(f"[yellow]{result['uncertain_numbers']} numbers have an uncertain time zone[/] (dialled "
                          "only while the window is open in all their candidate zones; "
                          f"{result['settled_by_place']} were settled by the contact's city or region). "
                          f"To place them, {REGISTRY_HINT}.")
    if result["status"] != "finished":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)
