"""The SIP driver passes the same driver contract as the simulator, against real SIPp peers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.telephony.contract import DriverContract
from tests.telephony.sip.harness import SipHarness
from tests.telephony.sip.sipp import sipp_available

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sipp_available(), reason="SIPp (sip-tester) is not installed")]


class TestSipContract(DriverContract):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> SipHarness:
        return SipHarness(tmp_path)
