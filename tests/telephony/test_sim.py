"""The simulated driver passes the driver contract, in virtual time."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from dialer.core.clock import VirtualClock
from dialer.telephony.base import CallEventKind, Originate, Telephony
from dialer.telephony.sim import SimTelephony
from dialer.telephony.traffic import Constant, Outcomes, Scenario, builtin_scenario
from tests.telephony.contract import INBOUND_CALLER, INBOUND_DIALLED, DriverContract, Recorder

OUTCOMES = {
    "answer": Outcomes(human=1.0), "machine": Outcomes(machine=1.0), "busy": Outcomes(busy=1.0),
    "reject": Outcomes(rejected=1.0), "fail": Outcomes(failed=1.0), "ring": Outcomes(),
}


def scenario(behaviour: str) -> Scenario:
    return Scenario(name=behaviour, operators=1, hours=1, seed=3, outcomes=OUTCOMES[behaviour],
                    answer_after_s=Constant(1.0), no_answer_timeout_s=60.0, machine_detect_s=2.0,
                    talk_time_s=Constant(10.0), wrap_up_s=Constant(5.0), abandon_after_s=2.0,
                    busy_after_s=Constant(1.0))


class SimHarness:
    endpoint = "op-1"

    def __init__(self) -> None:
        self.clock = VirtualClock()

    @contextlib.asynccontextmanager
    async def driver(self, behaviour: str) -> AsyncIterator[Telephony]:
        sim = SimTelephony(self.clock, scenario(behaviour), patience_s=Constant(30.0))
        await sim.start()
        sim.register_endpoint(self.endpoint)
        try:
            yield sim
        finally:
            await sim.close()

    async def advance(self, seconds: float) -> None:
        await self.clock.run_for(seconds)

    async def call_in(self, driver: Telephony, behaviour: str) -> None:
        assert isinstance(driver, SimTelephony)
        if behaviour == "inbound_talk":
            driver.incoming(INBOUND_CALLER, INBOUND_DIALLED, talk_s=3.0, hold_patience_s=30.0)
        elif behaviour == "inbound_refused":
            driver.incoming(INBOUND_CALLER, INBOUND_DIALLED, ring_patience_s=30.0)
        else:
            driver.incoming(INBOUND_CALLER, INBOUND_DIALLED, ring_patience_s=1.0)


class TestSimContract(DriverContract):
    @pytest.fixture
    def harness(self) -> SimHarness:
        return SimHarness()


async def test_same_seed_same_calls() -> None:
    async def run(seed: int) -> list[str]:
        clock = VirtualClock()
        sim = SimTelephony(clock, builtin_scenario("s20_p25"), seed=seed)
        await sim.start()
        rec = Recorder(sim)
        for i in range(200):
            await sim.originate(Originate(number=f"+7912000{i:04d}", answer_timeout_s=26))
        await clock.run_for(40)
        await rec.stop()
        await sim.close()
        return [f"{e.call_id}:{e.kind}" for e in rec.events]  # type: ignore[union-attr]

    first, again, other = await run(5), await run(5), await run(6)
    assert first == again and first != other
    answered = sum(1 for e in first if e.endswith(":answered"))
    assert 40 <= answered <= 80  # about a quarter live plus a tenth machines out of 200


async def test_unconnected_customer_hangs_up_when_patience_ends() -> None:
    clock = VirtualClock()
    sim = SimTelephony(clock, scenario("answer"), patience_s=Constant(4.0))
    await sim.start()
    rec = Recorder(sim)
    call = await sim.originate(Originate(number="+79120000001", answer_timeout_s=5))
    await clock.run_for(4.9)
    assert rec.kinds(call)[-1] == CallEventKind.answered
    await clock.run_for(0.2)
    assert rec.kinds(call)[-1] == CallEventKind.hung_up
    await rec.stop()
    await sim.close()
