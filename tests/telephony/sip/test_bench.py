"""``dialer bench sip`` runs end to end against SIPp (a small load; the real figures come from the CLI)."""

from __future__ import annotations

import pytest

from dialer.tools.bench.sip import bench_sip
from tests.telephony.sip.sipp import sipp_available

pytestmark = pytest.mark.skipif(not sipp_available(), reason="SIPp (sip-tester) is not installed")


@pytest.mark.slow
async def test_bench_places_and_completes_every_call() -> None:
    result = await bench_sip(calls=100, rate=200, hold_s=0.3)
    assert result["completed"] == 100 and result["failed"] == 0 and result["sipp_exit"] == 0
    assert 0 < result["setup_p50_ms"] <= result["setup_p99_ms"] < 500
    assert result["max_concurrent"] >= 30  # 0.3 s held at 200 calls/s
    assert result["cpu_s_per_call"] > 0
