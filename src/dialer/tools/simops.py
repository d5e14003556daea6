"""Simulated operators for the demo, the benchmarks and the tests.

Each simulated operator has a phone on the simulated telephony that answers by itself, goes ready when the engine
starts, and after every conversation wraps up for a time drawn from ``wrap_up_s`` and sets a completion code the
simulation picks among the campaign's codes (seeded). A share of the calls (``callback_share``) ends with a
postpone. Operators not managed here (a human in the demo) still get a simulated phone when ``phones_for_all``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Collection
from datetime import timedelta
from typing import Any

from dialer.engine.commands import CommandKind
from dialer.engine.runner import Engine
from dialer.engine.state import OperatorSlot
from dialer.models.enums import OperatorState
from dialer.telephony.sim import SimTelephony
from dialer.telephony.traffic import Constant, Distribution

__all__ = ["SimOperators"]


class SimOperators:
    """Attach to an engine before it runs: ``SimOperators(engine, sim, operator_ids={...})``."""

    def __init__(self, engine: Engine, telephony: SimTelephony, *, operator_ids: Collection[int] | None = None,
                 exclude: Collection[int] = (), wrap_up_s: Distribution | None = None, answer_after_s: float = 0.0,
                 seed: int = 1, callback_share: float = 0.0, phones_for_all: bool = True,
                 go_ready: bool = True) -> None:
        self.engine = engine
        self.telephony = telephony
        self.operator_ids = set(operator_ids) if operator_ids is not None else None
        self.exclude = set(exclude)
        self.wrap_up_s = wrap_up_s or Constant(5.0)
        self.answer_after_s = answer_after_s
        self.callback_share = callback_share
        self.phones_for_all = phones_for_all
        self.go_ready = go_ready
        self.completed = 0
        self._rng = random.Random(seed)
        self._tasks: set[asyncio.Task[None]] = set()
        self._phones: set[str] = set()
        engine.hooks.append(self._on_state)
        engine.startup_hooks.append(self._start)
        engine.shutdown_hooks.append(self.close)

    def manages(self, operator_id: int) -> bool:
        if operator_id in self.exclude:
            return False
        return self.operator_ids is None or operator_id in self.operator_ids

    def _phone(self, op: OperatorSlot) -> None:
        if op.endpoint not in self._phones and (self.manages(op.id) or self.phones_for_all):
            self._phones.add(op.endpoint)
            self.telephony.register_endpoint(op.endpoint, answer_after_s=self.answer_after_s)

    def _start(self, engine: Engine) -> None:
        for op in list(engine.operators.values()):
            if not op.info.is_active:
                continue
            self._phone(op)
            if self.manages(op.id) and self.go_ready:
                engine.submit(CommandKind.ready, op.id)

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def _on_state(self, op: OperatorSlot, previous: OperatorState) -> None:
        if op.state is OperatorState.ready:
            self._phone(op)  # an operator added while the engine runs gets his simulated phone too
        if op.state is not OperatorState.wrap_up or op.call is None or not self.manages(op.id):
            return
        delay = self.wrap_up_s.sample(self._rng)
        payload = self._completion(op)
        task = asyncio.create_task(self._complete_later(op.id, op.call.attempt_id, delay, payload),
                                   name=f"simulated operator {op.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _completion(self, op: OperatorSlot) -> dict[str, Any]:
        assert op.call is not None
        campaign = op.call.campaign
        codes = [campaign.plan.codes[i] for i in sorted(campaign.cfg.code_ids) if i in campaign.plan.codes]
        # people pick the campaign's own codes; "never call" and DNC codes are rare, leave them to humans
        own = [c for c in codes if c.system_key is None and not c.adds_to_dnc] or codes
        payload: dict[str, Any] = {"completion_code_id": self._rng.choice(own).id if own else
                                   self.engine.codes.get("answered")}
        if self.callback_share and self._rng.random() < self.callback_share:
            at = self.engine.clock.utcnow() + timedelta(minutes=self._rng.choice((30, 60, 120, 180)))
            payload["callback_at"] = at.isoformat()
        return payload

    async def _complete_later(self, operator_id: int, attempt_id: int, delay: float, payload: dict[str, Any]) -> None:
        await self.engine.clock.sleep(delay)
        op = self.engine.operators.get(operator_id)
        if op is None or op.state is not OperatorState.wrap_up or op.call is None or op.call.attempt_id != attempt_id:
            return  # the wrap-up already ended (timeout, supervisor)
        self.completed += 1
        self.engine.submit(CommandKind.complete, operator_id, **payload)
