"""Supervisors polling the live floor at once share the computation of the snapshot (the load finding: 200 pollers
of /api/monitoring/live saturated the process that also paces calls)."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI


async def test_overlapping_polls_share_one_snapshot(app: FastAPI, admin: httpx.AsyncClient) -> None:
    first = await admin.get("/api/monitoring/live")
    assert first.status_code == 200
    flight = app.state.live_snapshot
    before = flight.computed
    answers = await asyncio.gather(*(admin.get("/api/monitoring/live") for _ in range(30)))
    assert all(r.status_code == 200 for r in answers)
    # 30 overlapping requests, far fewer computations (the exact number depends on how they interleave)
    assert flight.computed - before < 30 and flight.shared > 0
