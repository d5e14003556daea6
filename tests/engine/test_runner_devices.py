"""Phones and trunks as the engine sees them: registration state reaches the bus and the database."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine import events as ev
from dialer.engine.commands import CommandKind
from dialer.models import SipRegistration, SipTrunk, SipTrunkState
from dialer.models.enums import OperatorState
from dialer.telephony.base import TrunkEvent
from tests.engine.engine_world import Harness, engine_world, scenario


async def test_device_and_trunk_states_are_published_and_saved(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=1)
    op_id = world.operator_ids[0]
    async with sessionmaker() as s, s.begin():
        trunk = SipTrunk(name="carrier", host="127.0.0.1")
        s.add(trunk)
        await s.flush()
        trunk_id = trunk.id
    h = Harness(sessionmaker, scenario(), sim_operators=False)
    async with h.running():
        endpoint = h.engine.operators[op_id].endpoint
        h.sim.register_endpoint(endpoint)
        await h.advance(1)
        assert (await h.engine.submit(CommandKind.ready, op_id))["ok"]
        h.sim.unregister_endpoint(endpoint)
        h.sim._emit(TrunkEvent(trunk_id, "carrier", False, h.clock.now(), "no answer to OPTIONS"))
        await h.advance(1)
        await h.engine.journal.drained()
        events = h.drain_events()
        states = [(e.login, e.operator_id, e.state) for e in events if isinstance(e, ev.DeviceStateChanged)]
        assert states == [(endpoint, op_id, "registered"), (endpoint, op_id, "unregistered")]
        trunks = [e for e in events if isinstance(e, ev.TrunkStateChanged)]
        assert [(t.trunk_id, t.up, t.detail) for t in trunks] == [(trunk_id, False, "no answer to OPTIONS")]
        # a ready operator whose phone left is paused, not offered calls he cannot take
        assert h.engine.operators[op_id].state is OperatorState.paused
    async with sessionmaker() as s:
        reg = await s.scalar(select(SipRegistration).where(SipRegistration.login == endpoint))
        state = await s.get(SipTrunkState, trunk_id)
    assert reg is not None and not reg.online and not reg.reachable
    assert state is not None and not state.up and state.detail == "no answer to OPTIONS"
