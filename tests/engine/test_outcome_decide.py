"""The strategy's rule book as a pure function: every rule, its precedence and its edges."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from dialer.engine.outcome import ContactDecision, History, Reason, decide, retry_key
from dialer.engine.selection import CodePlan, OutcomeRetryPlan, ResultRulePlan
from dialer.models.enums import DayType, OutcomeCategory, PhoneType
from tests.engine.selection_data import NOW

COMMON = 3600
PLAIN = CodePlan(1, "Думает", OutcomeCategory.answered, is_final=False, adds_to_dnc=False, system_key=None)
FINAL = CodePlan(2, "Купил", OutcomeCategory.answered, is_final=True, adds_to_dnc=False, system_key=None)
DNC = CodePlan(3, "Жалоба", OutcomeCategory.answered, is_final=False, adds_to_dnc=True, system_key=None)
BUSY = CodePlan(4, "Занято", OutcomeCategory.busy, is_final=False, adds_to_dnc=False, system_key="busy")


def rule(**kw: Any) -> ResultRulePlan:
    values: dict[str, Any] = dict(completion_code_id=1, day_type=DayType.workday, retry_interval_s=None,
                                  use_common_interval=False, attempts_on_previous_number=None,
                                  switch_to_phone_type=None, is_final=False)
    return ResultRulePlan(**(values | kw))


RETRY = OutcomeRetryPlan("busy", (15, 60, 1440), 5)
LATER = NOW + timedelta(hours=2)


def run(code: CodePlan = PLAIN, *, never_call: bool = False, callback_at: Any = None, rule: Any = None,
        retry: Any = None, history: History = History(1, 1, 1), max_attempts: int | None = None,
        available: frozenset[PhoneType] = frozenset()) -> ContactDecision:
    return decide(code=code, never_call=never_call, callback_at=callback_at, rule=rule, retry=retry, history=history,
                  max_attempts_per_contact=max_attempts, common_interval_s=COMMON, switch_types_available=available,
                  now=NOW)


def retry_in(seconds: float, reason: Reason, switch: PhoneType | None = None) -> ContactDecision:
    return ContactDecision(False, NOW + timedelta(seconds=seconds), switch, reason)


def final(reason: Reason, dnc: bool = False) -> ContactDecision:
    return ContactDecision(True, None, None, reason, add_to_dnc=dnc)


EVERYTHING = dict(callback_at=LATER, rule=rule(is_final=True), retry=RETRY, history=History(9, 9, 9), max_attempts=3)

CASES: list[tuple[str, dict[str, Any], ContactDecision]] = [
    # 1. never call / DNC codes beat everything, even a final code and a postpone
    ("never call", dict(never_call=True, **EVERYTHING), final(Reason.never_call, dnc=True)),
    ("never call with a final code", dict(code=FINAL, never_call=True), final(Reason.never_call, dnc=True)),
    ("dnc code", dict(code=DNC, **EVERYTHING), final(Reason.dnc_code, dnc=True)),
    # 2. a final code beats a postpone and the rules
    ("final code", dict(code=FINAL, **EVERYTHING), final(Reason.final_code)),
    # 3. a postpone beats the rules and the attempt limit
    ("postpone", dict(**EVERYTHING), ContactDecision(False, LATER, None, Reason.postponed)),
    ("postpone in the past", dict(callback_at=NOW - timedelta(minutes=1)),
     ContactDecision(False, NOW - timedelta(minutes=1), None, Reason.postponed)),
    # 4. the code's result rule
    ("rule final", dict(rule=rule(is_final=True), retry=RETRY), final(Reason.rule_final)),
    ("rule interval", dict(rule=rule(retry_interval_s=600), retry=RETRY), retry_in(600, Reason.rule_retry)),
    ("rule common interval", dict(rule=rule(use_common_interval=True)), retry_in(COMMON, Reason.rule_retry)),
    ("rule without interval uses the common one", dict(rule=rule()), retry_in(COMMON, Reason.rule_retry)),
    ("rule interval 0: at once", dict(rule=rule(retry_interval_s=0)), retry_in(0, Reason.rule_retry)),
    ("switch: too early", dict(rule=rule(retry_interval_s=60, attempts_on_previous_number=3,
                                         switch_to_phone_type=PhoneType.home),
                               history=History(5, 5, 2), available=frozenset({PhoneType.home})),
     retry_in(60, Reason.rule_retry)),
    ("switch: reached", dict(rule=rule(retry_interval_s=60, attempts_on_previous_number=3,
                                       switch_to_phone_type=PhoneType.home),
                             history=History(5, 5, 3), available=frozenset({PhoneType.home})),
     retry_in(60, Reason.rule_switch, PhoneType.home)),
    ("switch: past it", dict(rule=rule(use_common_interval=True, attempts_on_previous_number=3,
                                       switch_to_phone_type=PhoneType.home),
                             history=History(7, 7, 4), available=frozenset({PhoneType.home, PhoneType.work})),
     retry_in(COMMON, Reason.rule_switch, PhoneType.home)),
    ("switch: no such phone", dict(rule=rule(retry_interval_s=60, attempts_on_previous_number=1,
                                             switch_to_phone_type=PhoneType.home),
                                   available=frozenset({PhoneType.work})),
     retry_in(60, Reason.switch_unavailable)),
    ("switch without a count: at once", dict(rule=rule(retry_interval_s=60, switch_to_phone_type=PhoneType.work),
                                             available=frozenset({PhoneType.work})),
     retry_in(60, Reason.rule_switch, PhoneType.work)),
    ("a rule beats the outcome retries", dict(rule=rule(retry_interval_s=5), retry=RETRY, history=History(9, 9, 9)),
     retry_in(5, Reason.rule_retry)),
    # 5. the outcome's retries: the k-th such attempt waits the k-th interval, the last repeats, max is final
    ("outcome 1st", dict(code=BUSY, retry=RETRY, history=History(1, 1, 1)), retry_in(15 * 60, Reason.outcome_retry)),
    ("outcome 2nd", dict(code=BUSY, retry=RETRY, history=History(2, 2, 2)), retry_in(60 * 60, Reason.outcome_retry)),
    ("outcome 3rd", dict(code=BUSY, retry=RETRY, history=History(3, 3, 3)),
     retry_in(1440 * 60, Reason.outcome_retry)),
    ("outcome 4th repeats the last", dict(code=BUSY, retry=RETRY, history=History(4, 4, 4)),
     retry_in(1440 * 60, Reason.outcome_retry)),
    ("outcome max reached", dict(code=BUSY, retry=RETRY, history=History(5, 5, 5)), final(Reason.outcome_exhausted)),
    ("outcome max 1", dict(code=BUSY, retry=OutcomeRetryPlan("busy", (15,), 1)), final(Reason.outcome_exhausted)),
    ("outcome counts its own attempts, not all", dict(code=BUSY, retry=RETRY, history=History(9, 1, 9)),
     retry_in(15 * 60, Reason.outcome_retry)),
    # 6. nothing configured: the common interval
    ("nothing configured", dict(), retry_in(COMMON, Reason.common_interval)),
    # 7. the attempt limit ends whatever 4–6 said
    ("limit over the common interval", dict(history=History(3, 1, 1), max_attempts=3), final(Reason.max_attempts)),
    ("limit not yet", dict(history=History(2, 1, 1), max_attempts=3), retry_in(COMMON, Reason.common_interval)),
    ("limit over an outcome retry", dict(code=BUSY, retry=RETRY, history=History(3, 1, 1), max_attempts=3),
     final(Reason.max_attempts)),
    ("limit over a switch", dict(rule=rule(retry_interval_s=60, attempts_on_previous_number=1,
                                           switch_to_phone_type=PhoneType.home),
                                 history=History(3, 1, 1), max_attempts=3, available=frozenset({PhoneType.home})),
     final(Reason.max_attempts)),
    ("a final rule is a rule's verdict, not the limit's", dict(rule=rule(is_final=True), history=History(3, 1, 1),
                                                              max_attempts=3), final(Reason.rule_final)),
]


@pytest.mark.parametrize(("kw", "expected"), [pytest.param(kw, expected, id=name) for name, kw, expected in CASES])
def test_decide(kw: dict[str, Any], expected: ContactDecision) -> None:
    assert run(**kw) == expected


@pytest.mark.parametrize(("retries", "category", "machine", "expected"), [
    ({"machine": RETRY, "no_answer": RETRY}, OutcomeCategory.no_answer, True, "machine"),
    ({"no_answer": RETRY}, OutcomeCategory.no_answer, True, "no_answer"),  # no machine setting: its category's
    ({"machine": RETRY}, OutcomeCategory.no_answer, False, "no_answer"),
    ({}, OutcomeCategory.busy, False, "busy"),
])
def test_retry_key(retries: dict[str, OutcomeRetryPlan], category: OutcomeCategory, machine: bool,
                   expected: str) -> None:
    assert retry_key(retries, category, machine) == expected


def test_reasons_are_strings() -> None:
    assert run().reason == "common_interval"
    assert {r.value for r in Reason} >= {c[2].reason for c in CASES}
