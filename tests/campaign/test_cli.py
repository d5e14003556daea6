"""``dialer campaign …``: the status machine from the command line, audited as the CLI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from dialer.cli import app as cli_app
from dialer.config import get_settings
from dialer.db import make_engine, make_sessionmaker
from dialer.models import AuditEntry, Campaign
from dialer.models.enums import CampaignStatus
from tests.engine.selection_data import make_world


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DIALER_DATABASE_URL", db_url)
    monkeypatch.setenv("DIALER_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str) -> Result:
    return CliRunner().invoke(cli_app, ["campaign", *args])


async def _campaign(db_url: str) -> int:
    engine = make_engine(db_url)
    try:
        return (await make_world(make_sessionmaker(engine))).campaign_id
    finally:
        await engine.dispose()


async def _stored(db_url: str, campaign_id: int) -> tuple[CampaignStatus, list[AuditEntry]]:
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session:
            campaign = await session.get(Campaign, campaign_id)
            assert campaign is not None
            entries = (await session.scalars(select(AuditEntry).where(
                AuditEntry.object_type == "campaigns", AuditEntry.object_id == str(campaign_id))
                .order_by(AuditEntry.id))).all()
            return campaign.status, list(entries)
    finally:
        await engine.dispose()


def test_campaign_control_from_the_cli(db_url: str, cli_env: None) -> None:
    campaign_id = asyncio.run(_campaign(db_url))
    cid = str(campaign_id)

    r = run("list", "--json")
    assert r.exit_code == 0, r.output
    [row] = json.loads(r.stdout)
    assert (row["id"], row["status"], row["allowed_actions"]) == (campaign_id, "draft", ["start"])

    r = run("start", cid, "--reason", "утренняя смена", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["status"] == "running"
    for action, status in (("pause", "paused"), ("resume", "running"), ("stop", "stopped")):
        r = run(action, cid)
        assert r.exit_code == 0, r.output
        assert r.stdout.split("\t")[2].startswith(status)

    # what the status machine refuses is refused here too, with the reason, and changes nothing
    r = run("resume", cid)
    assert r.exit_code == 1 and "resume refused" in r.output
    r = run("acknowledge", cid, "--reason", "проверили")
    assert r.exit_code == 1
    r = run("pause", "999999")
    assert r.exit_code == 1 and "does not exist" in r.output

    status, entries = asyncio.run(_stored(db_url, campaign_id))
    assert status is CampaignStatus.stopped
    entries = [e for e in entries if e.event.startswith("status:")]
    events = [(e.user_login, e.event) for e in entries]
    assert events == [("cli", "status: draft → running"), ("cli", "status: running → paused"),
                      ("cli", "status: paused → running"), ("cli", "status: running → stopped")]
    assert entries[0].changes["status_reason"]["new"] == "утренняя смена"
