"""The contract every telephony driver must pass: simulator and SIP driver alike.

A driver's test module provides a :class:`Harness` and runs ``contract_tests(harness_fixture)``'s
tests by importing :class:`DriverContract` and subclassing it with a ``harness`` fixture.
Behaviours the harness must be able to produce on the far end: ``answer`` (a human picks up after
about 1 s and talks about 10 s once connected), ``machine``, ``busy``, ``reject``, ``fail``,
``ring`` (rings until cancelled or timed out), ``refer`` (as ``answer``, and the operator's phone asks for a
transfer, :meth:`TransferHarness.refer`). Inbound calls (:meth:`Harness.call_in`): ``inbound_talk`` (a caller
who waits to be answered and connected, talks about 3 s and hangs up), ``inbound_refused`` (waits to be refused; the
SIP caller checks for 486), ``inbound_cancel`` (gives up after about 1 s of ringing).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

import pytest

from dialer.telephony.base import (
    AnsweredBy,
    CallEvent,
    CallEventKind,
    CallId,
    EndpointEvent,
    EndpointUnavailable,
    Event,
    IncomingCall,
    Originate,
    Side,
    Telephony,
    TransferRequested,
    TransfersCalls,
    UnknownCall,
)


class Harness(Protocol):
    #: An operator endpoint that is registered and answers.
    endpoint: str

    def driver(self, behaviour: str) -> contextlib.AbstractAsyncContextManager[Telephony]: ...

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` of the driver's time pass (virtual or real)."""

    async def call_in(self, driver: Telephony, behaviour: str) -> None:
        """A customer calls the dialer from :data:`INBOUND_CALLER` to :data:`INBOUND_DIALLED` through the trunk."""


class Recorder:
    """Collects the driver's events in the background."""

    def __init__(self, driver: Telephony) -> None:
        self.events: list[Event] = []
        self._task = asyncio.create_task(self._run(driver))

    async def _run(self, driver: Telephony) -> None:
        async for event in driver.events():
            self.events.append(event)

    def calls(self, call_id: str) -> list[CallEvent]:
        return [e for e in self.events if isinstance(e, CallEvent) and e.call_id == call_id]

    def kinds(self, call_id: str) -> list[CallEventKind]:
        return [e.kind for e in self.calls(call_id)]

    def endpoint_kinds(self, endpoint: str) -> list[str]:
        return [e.kind.value for e in self.events if isinstance(e, EndpointEvent) and e.endpoint == endpoint]

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def recording(harness: Harness, behaviour: str) -> AsyncIterator[tuple[Telephony, Recorder]]:
    async with harness.driver(behaviour) as driver:
        recorder = Recorder(driver)
        await harness.advance(0.05)
        try:
            yield driver, recorder
        finally:
            await recorder.stop()


CALL = Originate(number="+79120000001", caller_id="+74950000000", answer_timeout_s=5.0)
INBOUND_CALLER, INBOUND_DIALLED = "79120000009", "74950000000"


def incoming(rec: Recorder) -> IncomingCall:
    found = [e for e in rec.events if isinstance(e, IncomingCall)]
    assert len(found) == 1, rec.events
    return found[0]


class DriverContract:
    """Subclass with a ``harness`` fixture returning a :class:`Harness`."""

    async def test_answered_call_is_connected_and_hung_up_by_the_customer(self, harness: Any) -> None:
        async with recording(harness, "answer") as (driver, rec):
            call = await driver.originate(CALL)
            await harness.advance(3.0)
            kinds = rec.kinds(call)
            assert kinds[0] == CallEventKind.trying and kinds[-1] == CallEventKind.answered
            answered = rec.calls(call)[-1]
            assert answered.answered_by == AnsweredBy.human
            await driver.connect(call, harness.endpoint)
            await harness.advance(2.0)
            assert rec.kinds(call)[-1] == CallEventKind.connected
            await harness.advance(15.0)
            last = rec.calls(call)[-1]
            assert last.kind == CallEventKind.hung_up and last.side == Side.customer
            with pytest.raises(UnknownCall):
                await driver.hangup(call)

    async def test_dialer_hangs_up_an_answered_call(self, harness: Any) -> None:
        async with recording(harness, "answer") as (driver, rec):
            call = await driver.originate(CALL)
            await harness.advance(3.0)
            await driver.hangup(call)
            await harness.advance(0.5)
            last = rec.calls(call)[-1]
            assert last.kind == CallEventKind.hung_up and last.side == Side.dialer

    @pytest.mark.parametrize(("behaviour", "result"), [
        ("busy", CallEventKind.busy), ("reject", CallEventKind.rejected), ("fail", CallEventKind.failed),
    ])
    async def test_unanswered_results(self, harness: Any, behaviour: str, result: CallEventKind) -> None:
        async with recording(harness, behaviour) as (driver, rec):
            call = await driver.originate(CALL)
            await harness.advance(6.0)
            kinds = rec.kinds(call)
            assert kinds[0] == CallEventKind.trying
            assert kinds[-1] == result and kinds.count(result) == 1
            assert rec.calls(call)[-1].cause

    async def test_no_answer_after_the_answer_timeout(self, harness: Any) -> None:
        async with recording(harness, "ring") as (driver, rec):
            call = await driver.originate(CALL)
            await harness.advance(3.0)
            assert CallEventKind.no_answer not in rec.kinds(call)
            await harness.advance(3.0)
            assert rec.kinds(call)[-1] == CallEventKind.no_answer

    async def test_hangup_while_ringing_cancels(self, harness: Any) -> None:
        async with recording(harness, "ring") as (driver, rec):
            call = await driver.originate(CALL)
            await harness.advance(1.0)
            await driver.hangup(call)
            await harness.advance(0.5)
            last = rec.calls(call)[-1]
            assert last.kind == CallEventKind.no_answer and last.cause == "cancelled"
            assert rec.kinds(call).count(CallEventKind.no_answer) == 1

    async def test_machine_is_reported_as_such(self, harness: Any) -> None:
        async with recording(harness, "machine") as (driver, rec):
            call = await driver.originate(CALL)
            await harness.advance(4.5)
            answered = [e for e in rec.calls(call) if e.kind == CallEventKind.answered]
            assert answered and answered[0].answered_by == AnsweredBy.machine
            await driver.hangup(call)

    async def test_machine_message_is_left_and_the_dialer_hangs_up(self, harness: Any) -> None:
        async with recording(harness, "machine") as (driver, rec):
            call = await driver.originate(Originate(number=CALL.number, caller_id=CALL.caller_id,
                                                    answer_timeout_s=5.0, detect_machine=True,
                                                    machine_message="callback-message"))
            await harness.advance(15.0)
            events = rec.calls(call)
            answered = [e for e in events if e.kind == CallEventKind.answered]
            assert answered and answered[0].answered_by == AnsweredBy.machine
            last = events[-1]
            assert last.kind == CallEventKind.hung_up and last.side == Side.dialer
            assert last.cause == "machine message left"

    async def test_errors(self, harness: Any) -> None:
        async with recording(harness, "answer") as (driver, _rec):
            with pytest.raises(UnknownCall):
                await driver.hangup("no-such-call")  # type: ignore[arg-type]
            call = await driver.originate(CALL)
            await harness.advance(3.0)
            with pytest.raises(EndpointUnavailable):
                await driver.connect(call, "nobody-registered-this")
            await driver.hangup(call)

    # --- inbound calls ---------------------------------------------------------------------------------------
    async def test_inbound_call_is_answered_connected_and_hung_up_by_the_caller(self, harness: Any) -> None:
        async with recording(harness, "answer") as (driver, rec):
            await harness.call_in(driver, "inbound_talk")
            await harness.advance(1.0)
            call = incoming(rec)
            assert (call.caller, call.dialled) == (INBOUND_CALLER, INBOUND_DIALLED) and call.trunk_id == 1
            assert rec.kinds(call.call_id) == []  # ringing: nothing reported until it is answered
            await driver.answer(call.call_id)  # type: ignore[attr-defined]
            await harness.advance(1.0)
            answered = rec.calls(call.call_id)
            assert [e.kind for e in answered] == [CallEventKind.answered]
            assert answered[0].answered_by == AnsweredBy.human
            await driver.play(call.call_id, None)
            await driver.connect(call.call_id, harness.endpoint)
            await harness.advance(2.0)
            assert rec.kinds(call.call_id)[-1] == CallEventKind.connected
            await harness.advance(6.0)
            last = rec.calls(call.call_id)[-1]
            assert last.kind == CallEventKind.hung_up and last.side == Side.customer
            assert rec.kinds(call.call_id) == [CallEventKind.answered, CallEventKind.connected, CallEventKind.hung_up]

    async def test_refusing_an_inbound_call(self, harness: Any) -> None:
        async with recording(harness, "answer") as (driver, rec):
            await harness.call_in(driver, "inbound_refused")
            await harness.advance(1.0)
            call = incoming(rec)
            await driver.hangup(call.call_id, "nobody takes it")
            await harness.advance(1.0)
            [ended] = rec.calls(call.call_id)
            assert ended.kind == CallEventKind.hung_up and ended.side == Side.dialer
            with pytest.raises(UnknownCall):
                await driver.answer(call.call_id)  # type: ignore[attr-defined]

    async def test_a_caller_who_gives_up_while_it_rings(self, harness: Any) -> None:
        async with recording(harness, "answer") as (driver, rec):
            await harness.call_in(driver, "inbound_cancel")
            await harness.advance(3.0)
            call = incoming(rec)
            [ended] = rec.calls(call.call_id)
            assert ended.kind == CallEventKind.hung_up and ended.side == Side.customer
            with pytest.raises(UnknownCall):
                await driver.answer(call.call_id)  # type: ignore[attr-defined]


# --- transfers, a lost phone, a phone's own transfer, machine detection ------------------------------------------
class TransferHarness(Harness, Protocol):
    #: A second operator endpoint, registered and answering.
    endpoint2: str
    #: External numbers reachable through the trunk: one that answers, one that is busy.
    external_number: str
    busy_number: str

    async def lose_phone(self, driver: Telephony, endpoint: str) -> None:
        """The phone of ``endpoint`` dies in the middle of its call (the driver finds out by itself)."""

    async def refer(self, driver: Telephony, endpoint: str, target: str) -> None:
        """The phone of ``endpoint`` asks to transfer its call to ``target`` (SIP: a REFER)."""


def endpoint_events(rec: Recorder, endpoint: str) -> list[EndpointEvent]:
    return [e for e in rec.events if isinstance(e, EndpointEvent) and e.endpoint == endpoint]


async def connected_call(harness: Any, driver: Telephony, rec: Recorder) -> CallId:
    """A customer answered and connected to ``harness.endpoint``."""
    call = await driver.originate(CALL)
    await harness.advance(3.0)
    assert rec.kinds(call)[-1] == CallEventKind.answered
    await driver.connect(call, harness.endpoint)
    await harness.advance(2.0)
    assert rec.kinds(call)[-1] == CallEventKind.connected, rec.events
    return call


class TransferContract:
    """Subclass with a ``harness`` fixture returning a :class:`TransferHarness`."""

    async def test_release_then_connect_to_another_operator(self, harness: Any) -> None:
        async with recording(harness, "answer") as (driver, rec):
            assert isinstance(driver, TransfersCalls)
            call = await connected_call(harness, driver, rec)
            await driver.release(call)
            await harness.advance(0.5)
            [ended] = [e for e in endpoint_events(rec, harness.endpoint) if e.kind.value == "hung_up"]
            assert ended.call_id == call and ended.detail == "released" and not ended.offer_failed
            assert rec.kinds(call)[-1] == CallEventKind.connected  # the call goes on: the customer waits
            with pytest.raises(UnknownCall):
                await driver.release(call)
            await driver.connect(call, harness.endpoint2)
            await harness.advance(2.0)
            last = rec.calls(call)[-1]
            assert last.kind == CallEventKind.connected and last.endpoint == harness.endpoint2
            await driver.hangup(call)
            await harness.advance(0.5)
            assert rec.calls(call)[-1].kind == CallEventKind.hung_up

    async def test_consult_then_complete(self, harness: Any) -> None:
        async with recording(harness, "answer") as (driver, rec):
            assert isinstance(driver, TransfersCalls)
            call = await connected_call(harness, driver, rec)
            with pytest.raises(UnknownCall):
                await driver.complete(call)  # nothing consulted yet
            await driver.consult(call, harness.endpoint2)
            await harness.advance(2.0)
            second = [e for e in endpoint_events(rec, harness.endpoint2) if e.kind.value in ("ringing", "answered")]
            assert "answered" in [e.kind.value for e in second] and all(e.call_id == call for e in second)
            await driver.complete(call)
            await harness.advance(1.0)
            first_ended = [e for e in endpoint_events(rec, harness.endpoint) if e.kind.value == "hung_up"]
            assert [e.call_id for e in first_ended] == [call]
            last = rec.calls(call)[-1]
            assert last.kind == CallEventKind.connected and last.endpoint == harness.endpoint2
            await driver.hangup(call)
            await harness.advance(0.5)
            assert [e.kind.value for e in endpoint_events(rec, harness.endpoint2)][-1] == "hung_up"

    async def test_consult_then_cancel(self, harness: Any) -> None:
        async with recording(harness, "answer") as (driver, rec):
            assert isinstance(driver, TransfersCalls)
            call = await connected_call(harness, driver, rec)
            await driver.consult(call, harness.endpoint2)
            await harness.advance(2.0)
            await driver.cancel_consult(call)
            await harness.advance(1.0)
            assert [e.kind.value for e in endpoint_events(rec, harness.endpoint2)][-1] == "hung_up"
            assert "hung_up" not in rec.endpoint_kinds(harness.endpoint)  # the first operator still talks
            assert rec.kinds(call)[-1] == CallEventKind.connected
            with pytest.raises(UnknownCall):
                await driver.cancel_consult(call)
            await driver.hangup(call)
            await harness.advance(0.5)
            last = rec.calls(call)[-1]
            assert last.kind == CallEventKind.hung_up and last.endpoint == harness.endpoint

    async def test_external_transfer(self, harness: Any) -> None:
        async with recording(harness, "answer") as (driver, rec):
            assert isinstance(driver, TransfersCalls)
            call = await connected_call(harness, driver, rec)
            await driver.transfer_external(call, harness.external_number)
            await harness.advance(4.0)
            [ended] = [e for e in endpoint_events(rec, harness.endpoint) if e.kind.value == "hung_up"]
            assert ended.call_id == call
            last = rec.calls(call)[-1]
            assert last.kind == CallEventKind.connected and last.endpoint == f"external:{harness.external_number}"
            await driver.hangup(call)
            await harness.advance(0.5)
            assert rec.calls(call)[-1].kind == CallEventKind.hung_up

    async def test_failed_external_transfer_puts_the_customer_back_to_waiting(self, harness: Any) -> None:
        async with recording(harness, "answer") as (driver, rec):
            assert isinstance(driver, TransfersCalls)
            call = await connected_call(harness, driver, rec)
            await driver.transfer_external(call, harness.busy_number)
            await harness.advance(4.0)
            [failed] = endpoint_events(rec, f"external:{harness.busy_number}")
            assert failed.kind.value == "hung_up" and failed.offer_failed and failed.call_id == call
            assert rec.kinds(call)[-1] == CallEventKind.connected  # not ended: waiting for an operator again
            await driver.connect(call, harness.endpoint2)
            await harness.advance(2.0)
            last = rec.calls(call)[-1]
            assert last.kind == CallEventKind.connected and last.endpoint == harness.endpoint2
            await driver.hangup(call)

    async def test_a_lost_phone_puts_the_customer_back_to_waiting(self, harness: Any) -> None:
        async with recording(harness, "answer") as (driver, rec):
            call = await connected_call(harness, driver, rec)
            await harness.lose_phone(driver, harness.endpoint)
            lost = [e for e in endpoint_events(rec, harness.endpoint) if e.kind.value == "hung_up"]
            assert len(lost) == 1 and lost[0].phone_lost and lost[0].call_id == call
            assert "unreachable" in rec.endpoint_kinds(harness.endpoint)
            assert rec.kinds(call)[-1] == CallEventKind.connected  # the customer was not hung up on
            with pytest.raises(EndpointUnavailable):
                await driver.connect(call, harness.endpoint)
            await driver.connect(call, harness.endpoint2)
            await harness.advance(2.0)
            last = rec.calls(call)[-1]
            assert last.kind == CallEventKind.connected and last.endpoint == harness.endpoint2
            await driver.hangup(call)

    async def test_a_phone_asks_for_a_transfer(self, harness: Any) -> None:
        async with recording(harness, "refer") as (driver, rec):
            assert isinstance(driver, TransfersCalls)
            call = await connected_call(harness, driver, rec)
            await harness.refer(driver, harness.endpoint, harness.endpoint2)
            await harness.advance(1.0)
            [asked] = [e for e in rec.events if isinstance(e, TransferRequested)]
            assert (asked.call_id, asked.endpoint, asked.target, asked.attended) == (
                call, harness.endpoint, harness.endpoint2, False)
            await driver.release(call)
            await driver.connect(call, harness.endpoint2)
            await harness.advance(2.0)
            last = rec.calls(call)[-1]
            assert last.kind == CallEventKind.connected and last.endpoint == harness.endpoint2
            await driver.hangup(call)

    async def test_transfers_of_calls_not_connected(self, harness: Any) -> None:
        async with recording(harness, "answer") as (driver, _rec):
            assert isinstance(driver, TransfersCalls)
            with pytest.raises(UnknownCall):
                await driver.release("no-such-call")  # type: ignore[arg-type]
            call = await driver.originate(CALL)
            await harness.advance(3.0)
            for attempt in (driver.release(call), driver.consult(call, harness.endpoint2), driver.complete(call),
                            driver.cancel_consult(call)):
                with pytest.raises(UnknownCall):
                    await attempt
            await driver.hangup(call)
