"""The operator's workplace (``/api/workplace``), supervisor actions (``/api/supervisor``), live monitoring.

Every action is a command for the engine (see :mod:`dialer.engine.commands`): the request waits up to a few seconds
for the engine's answer and returns it (200), a refusal as 409, or 202 when the engine has not answered yet.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from dialer.api.deps import Session, require
from dialer.auth.permissions import P
from dialer.auth.service import Principal
from dialer.core.singleflight import SingleFlight
from dialer.engine.commands import CommandKind
from dialer.workplace import service
from dialer.workplace.schemas import (
    AttemptBrief,
    AttemptDetail,
    AutoAnswerBody,
    AutoAnswerRead,
    CommandResult,
    CompleteBody,
    ConsultBody,
    ForceStateBody,
    LiveSnapshot,
    ManualDialBody,
    OperatorStateRead,
    PauseBody,
    TransferBody,
    TransferTargets,
)

_panel = Depends(require(P.panel_use))
_control = Depends(require(P.operators_control))
_monitor = Depends(require(P.monitoring_read))

workplace = APIRouter(prefix="/api/workplace", tags=["workplace"])
supervisor = APIRouter(prefix="/api/supervisor", tags=["supervisor"])
monitoring = APIRouter(prefix="/api", tags=["monitoring"])


async def _send(request: Request, response: Response, principal: Principal, kind: CommandKind, operator_id: int,
                payload: dict[str, Any] | None = None) -> CommandResult:
    result, status = await service.send(request.app.state.sessionmaker, kind, operator_id, payload,
                                        user_id=principal.user_id)
    response.status_code = status
    return result


async def _mine(session: Session, principal: Principal) -> int:
    return (await service.operator_of(session, principal.user_id)).id


@workplace.get("/state", response_model=OperatorStateRead, summary="My status, time in it, my call and its card")
async def my_state(session: Session, principal: Principal = _panel) -> Any:
    return await service.state(session, await service.operator_of(session, principal.user_id))


@workplace.post("/ready", response_model=CommandResult, summary="Ready for calls (after a call: when it ends)")
async def ready(request: Request, response: Response, session: Session, principal: Principal = _panel) -> Any:
    return await _send(request, response, principal, CommandKind.ready, await _mine(session, principal))


@workplace.post("/pause", response_model=CommandResult, summary="Take a break with a reason")
async def pause(body: PauseBody, request: Request, response: Response, session: Session,
                principal: Principal = _panel) -> Any:
    return await _send(request, response, principal, CommandKind.pause, await _mine(session, principal),
                       {"reason": body.reason})


@workplace.post("/offline", response_model=CommandResult, summary="Log out of work")
async def offline(request: Request, response: Response, session: Session, principal: Principal = _panel) -> Any:
    return await _send(request, response, principal, CommandKind.offline, await _mine(session, principal))


@workplace.post("/complete", response_model=CommandResult,
                summary="Set the completion code of my call (postpone, never call again)")
async def complete(body: CompleteBody, request: Request, response: Response, session: Session,
                   principal: Principal = _panel) -> Any:
    op = await service.operator_of(session, principal.user_id)
    payload = await service.check_complete(session, op, body)
    return await _send(request, response, principal, CommandKind.complete, op.id, payload)


@workplace.post("/preview/confirm", response_model=CommandResult, summary="Place the previewed call now")
async def preview_confirm(request: Request, response: Response, session: Session,
                          principal: Principal = _panel) -> Any:
    return await _send(request, response, principal, CommandKind.preview_confirm, await _mine(session, principal))


@workplace.post("/preview/skip", response_model=CommandResult, summary="Skip the previewed contact")
async def preview_skip(request: Request, response: Response, session: Session, principal: Principal = _panel) -> Any:
    return await _send(request, response, principal, CommandKind.preview_skip, await _mine(session, principal))


@workplace.post("/hangup", response_model=CommandResult, summary="Hang up my call")
async def hangup(request: Request, response: Response, session: Session, principal: Principal = _panel) -> Any:
    return await _send(request, response, principal, CommandKind.hangup, await _mine(session, principal))


@workplace.post("/manual-dial", response_model=CommandResult,
                summary="Call a number or a contact myself, outside the queue (ready or on a break)")
async def manual_dial(body: ManualDialBody, request: Request, response: Response, session: Session,
                      principal: Principal = _panel) -> Any:
    op = await service.operator_of(session, principal.user_id)
    payload = await service.manual_dial_payload(session, op, body)
    return await _send(request, response, principal, CommandKind.manual_dial, op.id, payload)


@workplace.post("/auto-answer", response_model=AutoAnswerRead,
                summary="My phone answers offered calls by itself (on) or rings until I pick up (off)")
async def auto_answer(body: AutoAnswerBody, session: Session, principal: Principal = _panel) -> Any:
    return await service.set_auto_answer(session, await service.operator_of(session, principal.user_id),
                                         body.enabled)


@workplace.get("/transfer-targets", response_model=TransferTargets,
               summary="Whom I can transfer my customer to: operators logged in with their state, pools, skills")
async def my_transfer_targets(session: Session, principal: Principal = _panel) -> Any:
    op = await service.operator_of(session, principal.user_id)
    return await service.transfer_targets(session, external_allowed=P.transfers_external in principal.permissions,
                                          exclude_operator_id=op.id)


@workplace.post("/transfer", response_model=CommandResult,
                summary="Transfer my customer: to a ready operator, a pool or a skill (queued), an external number")
async def transfer(body: TransferBody, request: Request, response: Response, session: Session,
                   principal: Principal = _panel) -> Any:
    op = await service.operator_of(session, principal.user_id)
    attempt_id, payload = await service.transfer_payload(
        session, op, body, external_allowed=P.transfers_external in principal.permissions, source="panel",
        user_id=principal.user_id)
    result = await _send(request, response, principal, CommandKind.transfer, op.id, payload)
    await service.audit_transfer(session, f"transfer to {body.to}", attempt_id, op, payload, result)
    return result


@workplace.post("/consult", response_model=CommandResult,
                summary="Attended transfer: hold my customer and call a ready operator")
async def consult(body: ConsultBody, request: Request, response: Response, session: Session,
                  principal: Principal = _panel) -> Any:
    op = await service.operator_of(session, principal.user_id)
    attempt_id, payload = await service.consult_payload(session, op, body, source="panel",
                                                        user_id=principal.user_id)
    result = await _send(request, response, principal, CommandKind.consult, op.id, payload)
    await service.audit_transfer(session, "consultation", attempt_id, op, payload, result)
    return result


@workplace.post("/consult/complete", response_model=CommandResult,
                summary="Attended transfer: hand my customer to the operator I consulted")
async def consult_complete(request: Request, response: Response, session: Session,
                           principal: Principal = _panel) -> Any:
    return await _consult_step(request, response, session, principal, CommandKind.consult_complete,
                               "consultation completed")


@workplace.post("/consult/cancel", response_model=CommandResult,
                summary="Attended transfer: end the consultation and go back to my customer")
async def consult_cancel(request: Request, response: Response, session: Session,
                         principal: Principal = _panel) -> Any:
    return await _consult_step(request, response, session, principal, CommandKind.consult_cancel,
                               "consultation cancelled")


async def _consult_step(request: Request, response: Response, session: Any, principal: Principal,
                        kind: CommandKind, what: str) -> Any:
    """The end of the operator's consultation (complete or cancel), for the call he is in, audited."""
    op = await service.operator_of(session, principal.user_id)
    attempt_id = await service.connected_attempt(session, op)
    result = await _send(request, response, principal, kind, op.id, {"attempt_id": attempt_id})
    await service.audit_transfer(session, what, attempt_id, op, {}, result)
    return result


@supervisor.get("/transfer-targets", response_model=TransferTargets,
                summary="Whom a supervisor can transfer a customer to: operators logged in, pools, skills")
async def supervisor_transfer_targets(session: Session, principal: Principal = _control) -> Any:
    return await service.transfer_targets(session,
                                          external_allowed=P.transfers_external in principal.permissions)


@supervisor.post("/operators/{operator_id}/transfer", response_model=CommandResult,
                 summary="Transfer the customer of an operator's conversation (from the floor)")
async def supervisor_transfer(operator_id: int, body: TransferBody, request: Request, response: Response,
                              session: Session, principal: Principal = _control) -> Any:
    op = await service.operator(session, operator_id)
    attempt_id, payload = await service.transfer_payload(
        session, op, body, external_allowed=P.transfers_external in principal.permissions, source="supervisor",
        user_id=principal.user_id)
    result = await _send(request, response, principal, CommandKind.transfer, op.id, payload)
    await service.audit_transfer(session, f"transfer to {body.to} by a supervisor", attempt_id, op, payload,
                                 result)
    return result


@supervisor.post("/operators/{operator_id}/state", response_model=CommandResult,
                 summary="Force an operator's status (ready, paused, offline)")
async def force_state(operator_id: int, body: ForceStateBody, request: Request, response: Response,
                      session: Session, principal: Principal = _control) -> Any:
    await service.operator(session, operator_id)
    return await _send(request, response, principal, CommandKind.force_state, operator_id,
                       {"state": body.state, "reason": body.reason})


@supervisor.post("/operators/{operator_id}/release", response_model=CommandResult,
                 summary="Release an operator: end his preview or wrap-up (default code), end his break")
async def release(operator_id: int, request: Request, response: Response, session: Session,
                  principal: Principal = _control) -> Any:
    await service.operator(session, operator_id)
    return await _send(request, response, principal, CommandKind.release, operator_id)


@monitoring.get("/monitoring/live", response_model=LiveSnapshot,
                summary="Operators and campaigns now: states, calls, today's outcomes, abandon rate")
async def live(request: Request, session: Session, _: Any = _monitor) -> Any:
    # every supervisor sees the same floor: requests that overlap share one computation (one set of queries), on a
    # session of its own so that no requester's disconnect cuts the others' answer; the request's own connection
    # (taken by the permission check) goes back to the pool first, so waiting pollers hold none
    await session.commit()
    flight: SingleFlight[Any] | None = getattr(request.app.state, "live_snapshot", None)
    if flight is None:
        flight = request.app.state.live_snapshot = SingleFlight()

    async def compute() -> Any:
        async with request.app.state.sessionmaker() as session:
            return await service.snapshot(session)

    return await flight.run(compute)


@monitoring.get("/monitoring/attempts", response_model=list[AttemptBrief],
                summary="Find call attempts: by number, operator or campaign; the latest first")
async def find_attempts(session: Session, number: str | None = Query(None, max_length=40,
                                                                     description="As dialled or typed"),
                        operator_id: int | None = None, campaign_id: int | None = None,
                        result_pending: bool = Query(False, description=(
                            "Only conversations an engine crash cut off whose result nobody has recorded yet "
                            "(POST /api/attempts/{id}/result records it)")),
                        limit: int = Query(50, ge=1, le=200), _: Any = _monitor) -> Any:
    return await service.find_attempts(session, number=number, operator_id=operator_id, campaign_id=campaign_id,
                                       result_pending=result_pending, limit=limit)


@monitoring.post("/attempts/{attempt_id}/result", response_model=AttemptBrief,
                 summary="Record the result of a conversation an engine crash cut off (a supervisor)")
async def record_result(attempt_id: int, body: CompleteBody, session: Session, _: Any = _control) -> Any:
    return await service.record_result(session, attempt_id, body, operator_id=None)


@workplace.get("/results-pending", response_model=list[AttemptBrief],
               summary="My conversations an engine crash cut off, waiting for their result")
async def my_results_pending(session: Session, principal: Principal = _panel) -> Any:
    return await service.find_attempts(session, operator_id=await _mine(session, principal), result_pending=True)


@workplace.post("/results-pending/{attempt_id}", response_model=AttemptBrief,
                summary="Record the result of my conversation an engine crash cut off")
async def my_record_result(attempt_id: int, body: CompleteBody, session: Session,
                           principal: Principal = _panel) -> Any:
    return await service.record_result(session, attempt_id, body, operator_id=await _mine(session, principal))


@monitoring.get("/attempts/{attempt_id}", response_model=AttemptDetail,
                summary="One call attempt: the card with the timeline of its stages")
async def attempt(attempt_id: int, session: Session, _: Any = _monitor) -> Any:
    return await service.attempt_detail(session, attempt_id)


routers = [workplace, supervisor, monitoring]
