"""The simulated driver passes the driver contract, in virtual time."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from dialer.core.clock import VirtualClock
from dialer.telephony.base import CallEventKind, Originate, Telephony
from dialer.telephony.sim import SimTelephony
from dialer.telephony.traffic import Constant, Outcomes, Scenario, builtin_scenario
from tests.telephony.contract import (
    INBOUND_CALLER,
    INBOUND_DIALLED,
    DriverContract,
    Recorder,
    TransferContract,
)

OUTCOMES = {
    "answer": Outcomes(human=1.0), "machine": Outcomes(machine=1.0), "busy": Outcomes(busy=1.0),
    "reject": Outcomes(rejected=1.0), "fail": Outcomes(failed=1.0), "ring": Outcomes(), "refer": Outcomes(human=1.0),
}


def scenario(behaviour: str) -> Scenario:
    return Scenario(name=behaviour, operators=1, hours=1, seed=3, outcomes=OUTCOMES[behaviour],
                    answer_after_s=Constant(1.0), no_answer_timeout_s=60.0, machine_detect_s=2.0,
                    talk_time_s=Constant(10.0), wrap_up_s=Constant(5.0), abandon_after_s=2.0,
                    busy_after_s=Constant(1.0))


class SimHarness:
    endpoint = "op-1"
    endpoint2 = "op-2"
    external_number = "+79990000001"
    busy_number = "+79990000002"

    def __init__(self) -> None:
        self.clock = VirtualClock()

    @contextlib.asynccontextmanager
    async def driver(self, behaviour: str) -> AsyncIterator[Telephony]:
        sim = SimTelephony(self.clock, scenario(behaviour), patience_s=Constant(30.0))
        await sim.start()
        sim.register_endpoint(self.endpoint)
        sim.register_endpoint(self.endpoint2, answer_after_s=0.5)
        sim.failing_numbers[self.busy_number] = "486 Busy Here"
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


    async def lose_phone(self, driver: Telephony, endpoint: str) -> None:
        assert isinstance(driver, SimTelephony)
        driver.phone_lost(endpoint)
        await self.advance(0.5)

    async def refer(self, driver: Telephony, endpoint: str, target: str) -> None:
        assert isinstance(driver, SimTelephony)
        driver.operator_refer(endpoint, target)


class TestSimContract(DriverContract):
    @pytest.fixture
    def harness(self) -> SimHarness:
        return SimHarness()


class TestSimTransfers(TransferContract):
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


async def test_machine_detection_reports_when_decided_with_the_moment_of_the_answer() -> None:
    for behaviour, answered_by in (("answer", "human"), ("machine", "machine")):
        clock = VirtualClock()
        sim = SimTelephony(clock, scenario(behaviour), patience_s=Constant(30.0), amd_human_s=1.5)
        await sim.start()
        rec = Recorder(sim)
        placed = clock.now()
        call = await sim.originate(Originate(number="+79120000001", answer_timeout_s=5, detect_machine=True))
        await clock.run_for(1.2)  # picked up at 1.0, still deciding
        assert CallEventKind.answered not in rec.kinds(call)
        await clock.run_for(2.0)
        [answered] = [e for e in rec.calls(call) if e.kind == CallEventKind.answered]
        assert answered.answered_by == answered_by and answered.at == pytest.approx(placed + 1.0)
        await rec.stop()
        await sim.close()


async def test_hanging_up_while_the_detector_listens_reports_a_person_answered() -> None:
    clock = VirtualClock()
    sim = SimTelephony(clock, scenario("answer"), patience_s=Constant(30.0), amd_human_s=3.0)
    await sim.start()
    rec = Recorder(sim)
    call = await sim.originate(Originate(number="+79120000001", answer_timeout_s=5, detect_machine=True))
    await clock.run_for(2.0)
    await sim.hangup(call)
    await clock.run_for(0.1)
    events = rec.calls(call)
    assert [e.kind for e in events] == [CallEventKind.trying, CallEventKind.ringing, CallEventKind.answered,
                                        CallEventKind.hung_up]
    assert events[2].answered_by == "human" and events[3].side == "dialer"
    await rec.stop()
    await sim.close()


async def test_a_lost_phone_comes_back_when_it_registers_again() -> None:
    clock = VirtualClock()
    sim = SimTelephony(clock, scenario("answer"), patience_s=Constant(30.0))
    await sim.start()
    sim.register_endpoint("op-1")
    rec = Recorder(sim)
    call = await sim.originate(Originate(number="+79120000001", answer_timeout_s=5))
    await clock.run_for(2.0)
    await sim.connect(call, "op-1")
    await clock.run_for(1.0)
    sim.phone_lost("op-1")
    await clock.run_for(0.1)
    sim.register_endpoint("op-1")
    await sim.connect(call, "op-1")
    await clock.run_for(1.0)
    assert rec.kinds(call)[-2:] == [CallEventKind.connected, CallEventKind.connected]
    # the talk time is the whole conversation: 10 s in all, 1 s of it before the phone was lost
    await clock.run_for(8.5)
    assert rec.kinds(call)[-1] == CallEventKind.hung_up
    await rec.stop()
    await sim.close()
