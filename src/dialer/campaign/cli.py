"""``dialer campaign list|start|pause|resume|stop|acknowledge``: campaign control from the command line.

The commands call the same service as the API (:func:`dialer.campaign.service.change_status`: the status machine,
the runnability check, the audit entry, here with the actor "cli"); a running engine sees the new status within
its control poll (a second), exactly as after an API call. ``register(app)`` is called by :mod:`dialer.cli`; the
work is in plain async functions (:func:`list_campaigns`, :func:`act`) that tests call directly.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy import select

from dialer.audit.recorder import Actor
from dialer.campaign import service
from dialer.campaign.status import Action, allowed_actions
from dialer.config import Settings
from dialer.exceptions import DialerError
from dialer.models import Campaign

CLI_ACTOR = Actor(None, "cli", ("system",))
console = Console(stderr=True)
campaign_app = typer.Typer(help="Campaigns: list them, start, pause, resume, stop, acknowledge an auto-stop.",
                           no_args_is_help=True)


def _row(c: Campaign) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "status": c.status.value, "status_reason": c.status_reason,
            "kind": c.kind.value, "dial_mode": c.dial_mode.value, "priority": c.priority,
            "start_at": c.start_at.isoformat() if c.start_at else None,
            "allowed_actions": [a.value for a in allowed_actions(c.status)]}


async def list_campaigns(*, settings: Settings | None = None, database_url: str | None = None) -> list[dict[str, Any]]:
    """Every campaign with its status and what the status allows."""
    from dialer.cli_support import open_database

    async with open_database(settings, database_url=database_url) as (_engine, maker, _settings), maker() as session:
        return [_row(c) for c in (await session.scalars(select(Campaign).order_by(Campaign.id))).all()]


async def act(campaign_id: int, action: Action, reason: str = "", *, settings: Settings | None = None,
              database_url: str | None = None) -> dict[str, Any]:
    """Apply one action of the status machine, audited as the CLI; raises :class:`DialerError` when refused."""
    from dialer.cli_support import open_database

    async with (open_database(settings, database_url=database_url) as (_engine, maker, _settings),
                maker() as session, session.begin()):
        session.info["actor"] = CLI_ACTOR
        campaign = await service.change_status(session, campaign_id, action, reason)
        return _row(campaign)


def _print(row: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(row, ensure_ascii=False))
    else:
        reason = f" ({row['status_reason']})" if row["status_reason"] else ""
        print(f"{row['id']}\t{row['name']}\t{row['status']}{reason}")


def _run_action(action: Action, campaign_id: int, reason: str, as_json: bool) -> None:
    try:
        row = asyncio.run(act(campaign_id, action, reason))
    except DialerError as err:
        console.print(f"[red]{action.value} refused:[/red] {err.detail}")
        raise typer.Exit(1) from None
    _print(row, as_json)


_ID = Annotated[int, typer.Argument(help="Campaign id (see `dialer campaign list`)")]
_REASON = Annotated[str, typer.Option("--reason", help="Why (kept as the status reason and in the audit log)")]
_JSON = Annotated[bool, typer.Option("--json", help="Print JSON")]


@campaign_app.command("list")
def list_command(as_json: _JSON = False) -> None:
    """List campaigns with their status."""
    rows = asyncio.run(list_campaigns())
    if as_json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        _print(row, False)


@campaign_app.command("start")
def start_command(campaign_id: _ID, reason: _REASON = "", as_json: _JSON = False) -> None:
    """draft, stopped or finished → running (the campaign must be runnable)."""
    _run_action(Action.start, campaign_id, reason, as_json)


@campaign_app.command("pause")
def pause_command(campaign_id: _ID, reason: _REASON = "", as_json: _JSON = False) -> None:
    """running → paused: no new calls; calls in progress go on."""
    _run_action(Action.pause, campaign_id, reason, as_json)


@campaign_app.command("resume")
def resume_command(campaign_id: _ID, reason: _REASON = "", as_json: _JSON = False) -> None:
    """paused → running."""
    _run_action(Action.resume, campaign_id, reason, as_json)


@campaign_app.command("stop")
def stop_command(campaign_id: _ID, reason: _REASON = "", as_json: _JSON = False) -> None:
    """→ stopped: ringing calls are cancelled and the operators released."""
    _run_action(Action.stop, campaign_id, reason, as_json)


@campaign_app.command("acknowledge")
def acknowledge_command(campaign_id: _ID, reason: Annotated[str, typer.Option(
        "--reason", help="Why it is safe to dial again after the auto-stop (required)")],
                        as_json: _JSON = False) -> None:
    """auto_paused → running, saying why it is safe to dial again."""
    _run_action(Action.acknowledge, campaign_id, reason, as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(campaign_app, name="campaign")
