"""Every SQL statement of the engine (and the reads the operator API shares with it).

The engine writes with Core statements, not the ORM: attempts and operator periods are operational records, not
configuration, so they are not audited row by row (the audit hook only sees ORM flushes), and bulk forms
(multi-row INSERT, executemany UPDATE) keep a hundred and more attempts a second cheap.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import psutil
from sqlalchemy import Enum as SAEnum
from sqlalchemy import String, Table, and_, bindparam, case, delete, func, select, text, union_all, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from dialer.engine.pacing import PacingHistory
from dialer.engine.selection import not_in_dnc_lists
from dialer.models import (
    Attempt,
    CallerId,
    Campaign,
    CompletionCode,
    Contact,
    ContactList,
    ContactPhone,
    DncList,
    EngineCommand,
    EngineRun,
    Field,
    ListField,
    Operator,
    OperatorSkill,
    OperatorStateLog,
    SipDevice,
    SipRegistration,
    SipTrunk,
    SipTrunkState,
    Strategy,
    caller_id_group_members,
    campaign_pools,
    completion_code_group_members,
    pool_operators,
)
from dialer.models.enums import AttemptState, CampaignKind, CampaignStatus, DialMode, OperatorState, OutcomeCategory

#: Campaign statuses the engine keeps a runtime for.
ACTIVE_STATUSES = (CampaignStatus.running, CampaignStatus.paused, CampaignStatus.auto_paused)


def _rows(result: Any) -> int:
    """Rows affected by an UPDATE or DELETE (the typed Result hides the cursor's ``rowcount``)."""
    return int(getattr(result, "rowcount", 0) or 0)


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


# --- reference data -------------------------------------------------------------------------------------------


async def system_codes(session: AsyncSession) -> dict[str, int]:
    """``system_key`` → completion code id of the codes the engine sets by itself."""
    rows = await session.execute(select(CompletionCode.system_key, CompletionCode.id)
                                 .where(CompletionCode.system_key.is_not(None)))
    return {str(k): int(i) for k, i in rows.all()}


@dataclasses.dataclass(frozen=True)
class CampaignConfig:
    """What the engine needs of a campaign and its strategy, read in one go."""

    id: int
    name: str
    status: CampaignStatus
    status_reason: str
    kind: CampaignKind
    priority: int
    dial_mode: DialMode
    dial_params: Mapping[str, Any]
    abandon_cap_pct: Decimal
    max_concurrent_calls: int | None
    hold_audio: str | None
    time_zone: str
    completion_code_group_id: int
    code_ids: frozenset[int]
    pool_ids: frozenset[int]
    caller_ids: tuple[str, ...]
    answer_timeout_s: int
    wrap_up_s: int
    operator_wait_s: int
    default_completion_code_id: int | None
    skill_id: int | None
    max_operators: int | None
    min_operators: int | None = None
    #: A connected call is cut after this many seconds (None: no limit).
    max_call_duration_s: int | None = None
    #: A live answer without an operator is hung up this many seconds after the answer (None: no limit).
    max_hold_s: int | None = None
    #: Missed offers in a row after which an operator is paused ("missed call"; None: never).
    auto_pause_after_missed: int | None = None
    #: Media (issue #16; migration 0017_media): which calls are recorded ('none', 'all', 'percent' of them), the
    #: audio a recorded call's customer hears before he is connected, answering-machine detection and the message
    #: left on a machine, the message a live customer nobody took within the grace time hears (audio names).
    record_mode: str = "none"
    record_percent: int | None = None
    record_consent_audio: str | None = None
    amd_enabled: bool = False
    amd_message: str | None = None
    abandon_message: str | None = None

    def version(self) -> tuple[Any, ...]:
        """What, when changed, requires a new pacer."""
        return (self.dial_mode, tuple(sorted(self.dial_params.items())), self.abandon_cap_pct, self.operator_wait_s)


async def campaign_statuses(session: AsyncSession, also: Iterable[int] = ()) -> dict[int, tuple[CampaignStatus, str]]:
    """Status and reason of the campaigns the engine works on: the active ones plus ``also`` (to see them leave)."""
    ids = list(also)
    stmt = select(Campaign.id, Campaign.status, Campaign.status_reason).where(
        Campaign.status.in_(ACTIVE_STATUSES) | Campaign.id.in_(ids) if ids else Campaign.status.in_(ACTIVE_STATUSES))
    return {int(i): (CampaignStatus(s), r) for i, s, r in (await session.execute(stmt)).all()}


async def due_drafts(session: AsyncSession, now_utc: datetime) -> list[tuple[int, datetime | None]]:
    """Campaigns still in draft whose launch time has come: (id, start_at)."""
    rows = await session.execute(select(Campaign.id, Campaign.start_at).where(
        Campaign.status == CampaignStatus.draft, Campaign.start_at <= now_utc).order_by(Campaign.id))
    return [(int(i), at) for i, at in rows.all()]


async def campaign_configs(session: AsyncSession, ids: Sequence[int]) -> dict[int, CampaignConfig]:
    if not ids:
        return {}
    rows = (await session.execute(
        select(Campaign, Strategy).join(Strategy, Strategy.id == Campaign.strategy_id).where(Campaign.id.in_(ids))
    )).all()
    codes: dict[int, set[int]] = {}
    group_ids = {c.completion_code_group_id for c, _ in rows}
    for gid, cid in (await session.execute(
            select(completion_code_group_members.c.group_id, completion_code_group_members.c.code_id)
            .where(completion_code_group_members.c.group_id.in_(group_ids)))).all():
        codes.setdefault(int(gid), set()).add(int(cid))
    pools: dict[int, set[int]] = {}
    for camp, pool in (await session.execute(
            select(campaign_pools.c.campaign_id, campaign_pools.c.pool_id)
            .where(campaign_pools.c.campaign_id.in_(ids)))).all():
        pools.setdefault(int(camp), set()).add(int(pool))
    caller_groups = {c.caller_id_group_id for c, _ in rows if c.caller_id_group_id is not None}
    numbers: dict[int, list[str]] = {}
    if caller_groups:
        for gid, number in (await session.execute(
                select(caller_id_group_members.c.group_id, CallerId.number)
                .join(CallerId, CallerId.id == caller_id_group_members.c.caller_id_id)
                .where(caller_id_group_members.c.group_id.in_(caller_groups), CallerId.is_active)
                .order_by(CallerId.id))).all():
            numbers.setdefault(int(gid), []).append(str(number))
    out = {}
    for c, s in rows:
        out[c.id] = CampaignConfig(
            id=c.id, name=c.name, status=c.status, status_reason=c.status_reason, kind=c.kind, priority=c.priority,
            dial_mode=c.dial_mode, dial_params=dict(c.dial_params or {}), abandon_cap_pct=c.abandon_cap_pct,
            max_concurrent_calls=c.max_concurrent_calls, hold_audio=c.hold_audio, time_zone=c.time_zone,
            completion_code_group_id=c.completion_code_group_id,
            code_ids=frozenset(codes.get(c.completion_code_group_id, ())), pool_ids=frozenset(pools.get(c.id, ())),
            caller_ids=tuple(numbers.get(c.caller_id_group_id, ())) if c.caller_id_group_id is not None else (),
            answer_timeout_s=s.answer_timeout_s, wrap_up_s=s.wrap_up_s, operator_wait_s=s.operator_wait_s,
            default_completion_code_id=s.default_completion_code_id, skill_id=s.skill_id,
            max_operators=s.max_operators, min_operators=s.min_operators, max_call_duration_s=s.max_call_duration_s,
            max_hold_s=s.max_hold_s, auto_pause_after_missed=s.auto_pause_after_missed,
            record_mode=str(getattr(c.record_mode, "value", c.record_mode) or "none"),
            record_percent=c.record_percent, record_consent_audio=c.record_consent_audio or None,
            amd_enabled=bool(c.amd_enabled), amd_message=c.amd_message or None,
            abandon_message=c.abandon_message or None)
    return out


@dataclasses.dataclass(frozen=True)
class OperatorInfo:
    id: int
    name: str
    user_id: int | None
    extension: str | None
    is_active: bool
    pools: frozenset[int]
    skills: Mapping[int, int]
    #: His exception to his campaigns' recording: 'inherit', 'always' or 'never' (operators.record_override).
    record_override: str = "inherit"

    @property
    def endpoint(self) -> str:
        """The operator's phone as the telephony driver knows it."""
        return self.extension or f"op-{self.id}"


async def roster(session: AsyncSession) -> list[OperatorInfo]:
    # an operator's phone is his active SIP device when he has one, else the extension of his record
    device = (select(SipDevice.login).where(SipDevice.operator_id == Operator.id, SipDevice.is_active.is_(True))
              .limit(1).scalar_subquery())
    ops = (await session.execute(select(Operator.id, Operator.name, Operator.user_id,
                                        func.coalesce(device, Operator.extension), Operator.is_active,
                                        Operator.record_override)
                                 .order_by(Operator.id))).all()
    pools: dict[int, set[int]] = {}
    for pool, op in (await session.execute(select(pool_operators.c.pool_id, pool_operators.c.operator_id))).all():
        pools.setdefault(int(op), set()).add(int(pool))
    skills: dict[int, dict[int, int]] = {}
    for op, skill, level in (await session.execute(
            select(OperatorSkill.operator_id, OperatorSkill.skill_id, OperatorSkill.level))).all():
        skills.setdefault(int(op), {})[int(skill)] = int(level)
    return [OperatorInfo(int(i), n, u, e, bool(a), frozenset(pools.get(int(i), ())), skills.get(int(i), {}),
                         str(getattr(r, "value", r) or "inherit"))
            for i, n, u, e, a, r in ops]


# --- engine runs and recovery -----------------------------------------------------------------------------------


class EngineAlreadyRunning(RuntimeError):
    """Another engine keeps a heartbeat on this database."""


@dataclasses.dataclass(frozen=True)
class Recovery:
    dead_runs: list[int]
    closed_attempts: list[int]
    dropped_previews: int
    closed_operator_periods: int
    #: The closed attempts as the strategy needs them (see :mod:`dialer.engine.recovery`).
    closed: list[RecoveredAttempt] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True)
class RecoveredAttempt:
    attempt_id: int
    campaign_id: int
    contact_id: int | None
    phone_id: int | None
    number: str
    answered_by: str | None


def _alive(pid: int, since: datetime | None = None) -> bool:
    """Whether process ``pid`` of this host lives — and, given ``since`` (when its run started), is the process that
    started that run rather than a later one that was given the same pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if since is not None:
        try:
            started = psutil.Process(pid).create_time()
        except (psutil.Error, OSError):
            return True
        if started > since.timestamp() + 5.0:  # younger than the run: the pid was reused
            return False
    return True


async def start_run(session: AsyncSession, *, host: str, pid: int, now_utc: datetime, dead_after_s: float,
                    error_code_id: int | None) -> tuple[int, Recovery]:
    """Register this engine and recover what dead runs left behind, in one transaction.

    The recovery rule: a run that has not stopped is dead when it ran on this host and its process is gone (or is
    this very process: an earlier run of it), or when it ran on another host and its heartbeat is older than
    ``dead_after_s``. A run whose process lives on this host is never declared dead, however late its heartbeat (a
    stalled engine is still an engine: two would dial at once); another live run refuses the start
    (:class:`EngineAlreadyRunning`). A run declared dead that is in fact alive elsewhere finds its run row stopped at
    its next heartbeat and stops dialling (the fence, :meth:`dialer.engine.runner.Engine.run`).

    Attempts that are not done and belong to a dead run (or to no run) are closed — category ``error``, the code
    ``error_code_id`` (the system code ``engine_restarted``), hang-up cause "engine restarted", hung up at the last
    moment the call was known alive (its dead run's last heartbeat or its own last stage, whichever is later) — which
    frees their contact and number; :mod:`dialer.engine.recovery` then applies the strategy to them. Previews that
    were never placed (``queued``) are deleted; every open operator period is closed (operators start offline).
    Recorded results (attempts already done) are not touched.
    """
    # one engine at a time: the lock serialises two engines starting together
    await session.execute(text("SELECT pg_advisory_xact_lock(72201)"))
    db_now: datetime = (await session.execute(select(func.now()))).scalar_one()
    runs = (await session.execute(select(EngineRun.id, EngineRun.host, EngineRun.pid, EngineRun.heartbeat_at,
                                         EngineRun.started_at)
                                  .where(EngineRun.stopped_at.is_(None)))).all()
    dead: list[int] = []
    for other_id, run_host, run_pid, heartbeat, started in runs:
        age = (db_now - heartbeat).total_seconds()
        # this host: the process decides; another host: the heartbeat (the fence covers a wrong guess)
        is_dead = (run_pid == pid or not _alive(run_pid, started)) if run_host == host else age > dead_after_s
        if is_dead:
            dead.append(int(other_id))
        else:
            raise EngineAlreadyRunning(f"engine run {other_id} (pid {run_pid} on {run_host}) is alive: its heartbeat "
                                       f"is {age:.0f} s old")
    if dead:
        await session.execute(update(EngineRun).where(EngineRun.id.in_(dead)).values(stopped_at=func.now()))
    orphan = Attempt.engine_run_id.in_(dead) | Attempt.engine_run_id.is_(None) if dead \
        else Attempt.engine_run_id.is_(None)
    dropped = _rows(await session.execute(delete(Attempt).where(Attempt.state == AttemptState.queued, orphan)))
    last_beat = select(EngineRun.heartbeat_at).where(EngineRun.id == Attempt.engine_run_id).scalar_subquery()
    # GREATEST ignores NULLs: the later of the run's last heartbeat and the call's last recorded stage
    last_alive = func.coalesce(Attempt.hung_up_at, func.greatest(last_beat, Attempt.dialed_at, Attempt.ringing_at,
                                                                  Attempt.answered_at, Attempt.connected_at), now_utc)
    closed = (await session.execute(
        update(Attempt).where(Attempt.state != AttemptState.done, orphan)
        .values(state=AttemptState.done, outcome=OutcomeCategory.error, completion_code_id=error_code_id,
                hangup_cause="engine restarted", hung_up_at=last_alive,
                wrap_up_ended_at=case((Attempt.connected_at.is_not(None),
                                       func.coalesce(Attempt.wrap_up_ended_at, last_alive)),
                                      else_=Attempt.wrap_up_ended_at))
        .returning(Attempt.id, Attempt.campaign_id, Attempt.contact_id, Attempt.phone_id, Attempt.number,
                   Attempt.answered_by))).all()
    periods = _rows(await session.execute(update(OperatorStateLog).where(OperatorStateLog.ended_at.is_(None))
                                          .values(ended_at=now_utc)))
    run_id: int = (await session.execute(pg_insert(EngineRun).values(host=host, pid=pid)
                                         .returning(EngineRun.id))).scalar_one()
    recovered = [RecoveredAttempt(int(r.id), int(r.campaign_id), r.contact_id, r.phone_id, r.number, r.answered_by)
                 for r in closed]
    return run_id, Recovery(dead, [r.attempt_id for r in recovered], dropped, periods, recovered)


async def heartbeat(session: AsyncSession | AsyncConnection, run_id: int, stats: Mapping[str, Any]) -> bool:
    """Renew the run's lease; False when the run was declared dead and stopped by another engine (fenced)."""
    found = await session.execute(update(EngineRun).where(EngineRun.id == run_id, EngineRun.stopped_at.is_(None))
                                  .values(heartbeat_at=func.now(), stats=dict(stats)).returning(EngineRun.id))
    return found.first() is not None


async def stop_run(session: AsyncSession, run_id: int, now_utc: datetime) -> None:
    await session.execute(update(EngineRun).where(EngineRun.id == run_id).values(stopped_at=func.now()))
    await session.execute(update(OperatorStateLog).where(OperatorStateLog.ended_at.is_(None))
                          .values(ended_at=now_utc))


# --- attempts -------------------------------------------------------------------------------------------------


async def insert_attempts(session: AsyncSession | AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> dict[int, int]:
    """Insert live attempts; returns contact id → attempt id for the rows that went in.

    A row whose contact or number already has a live attempt is skipped by the partial unique indexes
    (``ON CONFLICT DO NOTHING``): that is what makes a double dial impossible whatever the engine believes. A row
    whose number is blocked by the campaign's DNC list or the global blacklist (the number itself or a prefix
    entry) is not inserted either: the check is part of the same statement (``INSERT … SELECT … WHERE NOT
    EXISTS``, the lists read there too), so a number put on a DNC list after it was read into the hopper, or a
    list given to the campaign meanwhile, is never dialled.
    """
    if not rows:
        return {}
    table = _table(Attempt)
    keys = list(rows[0])
    arrays = [func.unnest(sql_cast(bindparam(f"v_{k}", [r[k] for r in rows], expanding=False),
                               ARRAY(_plain_type(table.c[k].type)))).label(k) for k in keys]
    source = select(*arrays).subquery("v")
    chosen = select(*[source.c[k] for k in keys]).where(
        not_in_dnc_lists(dnc_lists_of(source.c.campaign_id), source.c.number))
    stmt = (pg_insert(Attempt).from_select(keys, chosen).on_conflict_do_nothing()
            .returning(Attempt.id, Attempt.contact_id))
    return {int(c): int(i) for i, c in (await session.execute(stmt)).all() if c is not None}


async def start_dialing(session: AsyncSession | AsyncConnection, attempt_id: int, dialed_at: datetime) -> bool:
    """A queued attempt (a preview) becomes ``dialing`` unless its number is blocked by DNC now (one statement,
    like :func:`insert_attempts`); False when it was refused or is no longer queued."""
    stmt = (update(Attempt).where(Attempt.id == attempt_id, Attempt.state == AttemptState.queued,
                                  not_in_dnc_lists(dnc_lists_of(Attempt.campaign_id), Attempt.number))
            .values(state=AttemptState.dialing, dialed_at=dialed_at).returning(Attempt.id))
    return (await session.execute(stmt)).first() is not None


def dnc_lists_of(campaign_id: Any) -> Any:
    """The DNC lists that block a campaign's numbers: its own list and the global blacklist (a query)."""
    return union_all(select(DncList.id).where(DncList.is_global),
                     select(Campaign.dnc_list_id).where(Campaign.id == campaign_id,
                                                        Campaign.dnc_list_id.is_not(None)))


def _plain_type(sql_type: Any) -> Any:
    """The column's type for an array parameter (enums are stored as text)."""
    return String() if isinstance(sql_type, SAEnum) else sql_type


#: Columns the engine writes after an attempt was inserted, with their SQL types (for ``unnest``).
ATTEMPT_COLUMN_TYPES: dict[str, str] = {
    "state": "text", "call_id": "text", "operator_id": "bigint", "dialed_at": "timestamptz",
    "ringing_at": "timestamptz", "answered_at": "timestamptz", "answered_by": "text", "connected_at": "timestamptz",
    "hung_up_at": "timestamptz", "hangup_side": "text", "hangup_cause": "text", "sip_code": "integer",
    "outcome": "text", "completion_code_id": "bigint", "comment": "text", "wrap_up_ended_at": "timestamptz",
}


def _unnest_update(columns: Sequence[str], *, final: bool) -> Any:
    """``UPDATE attempts ... FROM unnest(arrays)``: one statement for any number of attempts.

    A column given as NULL for a row keeps its stored value (COALESCE), so rows with different sets of changes share
    the statement. Done attempts are never touched again; finishing returns the ids it finished.
    """
    sets = ", ".join(f"{c} = COALESCE(v.{c}, a.{c})" for c in columns if c != "state")
    state = "'done'" if final else "COALESCE(v.state, a.state)"
    arrays = ", ".join(f"CAST(:{c} AS {ATTEMPT_COLUMN_TYPES[c]}[])" for c in columns)
    names = ", ".join(columns)
    sql = (f"UPDATE attempts AS a SET state = {state}{', ' + sets if sets else ''} "
           f"FROM unnest(CAST(:ids AS bigint[]), {arrays}) AS v(id, {names}) "
           f"WHERE a.id = v.id AND a.state <> 'done'")
    return text(sql + (" RETURNING a.id" if final else ""))


def _arrays(changes: Mapping[int, Mapping[str, Any]]) -> tuple[list[str], dict[str, list[Any]]]:
    columns = sorted({c for cols in changes.values() for c in cols} | {"state"})
    unknown = set(columns) - set(ATTEMPT_COLUMN_TYPES)
    if unknown:
        raise ValueError(f"not attempt columns the engine writes: {sorted(unknown)}")
    params: dict[str, list[Any]] = {"ids": list(changes)}
    for c in columns:
        params[c] = [_plain(cols.get(c)) for cols in changes.values()]
    return columns, params


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, AttemptState | OutcomeCategory) else value


async def update_attempts(session: AsyncSession | AsyncConnection, changes: Mapping[int, Mapping[str, Any]]) -> None:
    """Apply per-attempt stage changes to attempts that are still live, in one statement."""
    if changes:
        columns, params = _arrays(changes)
        await session.execute(_unnest_update(columns, final=False), params)


async def finish_attempts(session: AsyncSession, changes: Mapping[int, Mapping[str, Any]]) -> set[int]:
    """Mark attempts done with their final columns; returns the ids that were still live (each finishes once)."""
    if not changes:
        return set()
    columns, params = _arrays(changes)
    rows = await session.execute(_unnest_update(columns, final=True), params)
    return {int(i) for i in rows.scalars().all()}


async def delete_queued(session: AsyncSession, attempt_ids: Sequence[int]) -> None:
    """Delete attempts that never reached the telephone network: previews never dialled, and calls the driver could
    not place (``dialing`` without a call id)."""
    if attempt_ids:
        await session.execute(delete(Attempt).where(
            Attempt.id.in_(attempt_ids),
            (Attempt.state == AttemptState.queued)
            | ((Attempt.state == AttemptState.dialing) & Attempt.call_id.is_(None))))


async def pacing_history(session: AsyncSession, campaign_id: int, *, now: float, now_utc: datetime,
                         window_s: float, grace_s: float, recent: int = 2000, durations: int = 500) -> PacingHistory:
    """A campaign's pacing so far, from its finished attempts, for :meth:`PredictivePacer.seed`.

    A live answer is an attempt answered by a human; it was abandoned when no operator was connected within
    ``grace_s`` of the answer (the regulatory definition the engine applies). ``now``/``now_utc`` are the engine's
    clock reading and UTC time, to turn timestamps into clock readings.
    """
    a = _table(Attempt).c
    human = a.answered_by == "human"
    abandoned = and_(human, (a.connected_at.is_(None))
                     | (a.connected_at > a.answered_at + func.make_interval(0, 0, 0, 0, 0, 0, grace_s)))
    done = and_(a.campaign_id == campaign_id, a.state == AttemptState.done.value)
    live, lost = (await session.execute(
        select(func.count().filter(human), func.count().filter(abandoned)).where(done))).one()

    def clock(at: datetime) -> float:
        return now - (now_utc - at).total_seconds()

    since = now_utc - timedelta(seconds=window_s)
    window: list[tuple[float, bool]] = []
    for at, was_abandoned in (await session.execute(
            select(a.answered_at, abandoned).where(done, human, a.answered_at >= since)
            .order_by(a.answered_at))).all():
        window.append((clock(at), False))
        if was_abandoned:
            window.append((clock(at), True))
    results: list[tuple[float, bool]] = []
    for dialed, answered, by, ended in reversed((await session.execute(
            select(a.dialed_at, a.answered_at, a.answered_by, a.hung_up_at)
            .where(done, a.dialed_at.is_not(None), a.hangup_cause != "engine restarted")
            .order_by(a.id.desc()).limit(recent))).all()):
        end = answered if answered is not None else ended
        if end is not None:
            results.append((max(0.0, (end - dialed).total_seconds()), by == "human"))
    talks: list[float] = []
    wraps: list[float] = []
    for connected, hung_up, wrapped in reversed((await session.execute(
            select(a.connected_at, a.hung_up_at, a.wrap_up_ended_at)
            .where(done, a.connected_at.is_not(None), a.hung_up_at.is_not(None))
            .order_by(a.id.desc()).limit(durations))).all()):
        talks.append(max(0.0, (hung_up - connected).total_seconds()))
        if wrapped is not None:
            wraps.append(max(0.0, (wrapped - hung_up).total_seconds()))
    return PacingHistory(int(live), int(lost), window, results, talks, wraps)


# --- operator periods -----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class OperatorPeriod:
    operator_id: int
    state: OperatorState
    reason: str
    campaign_id: int | None
    attempt_id: int | None
    started_at: datetime


async def record_periods(session: AsyncSession, periods: Sequence[OperatorPeriod], *,
                         check_references: bool = False) -> None:
    """Close each operator's open period and insert the new ones (one row per period; the last stays open).

    Several changes of one operator in a batch become closed rows, so the unique "one open period" index holds.
    """
    if not periods:
        return
    by_op: dict[int, list[OperatorPeriod]] = {}
    for p in periods:
        by_op.setdefault(p.operator_id, []).append(p)
    closes = [{"_op": op, "_at": ps[0].started_at} for op, ps in by_op.items()]
    table = _table(OperatorStateLog)
    await session.execute(
        update(table).where(and_(table.c.operator_id == bindparam("_op"), table.c.ended_at.is_(None)))
        .values(ended_at=bindparam("_at")), closes)
    # ``check_references`` (the journal's careful retry): what was deleted meanwhile (a campaign, its attempts, an
    # operator) must not sink the unit: a period keeps its time and state without the vanished reference, and a
    # deleted operator's periods go with him. The first try does not pay for the three lookups.
    if check_references:
        operators: set[int] | None = await _existing(session, Operator.id, by_op)
        campaigns = await _existing(session, Campaign.id, {p.campaign_id for p in periods if p.campaign_id})
        attempts = await _existing(session, Attempt.id, {p.attempt_id for p in periods if p.attempt_id})
    else:
        operators = None
    rows = []
    for op_id, ps in by_op.items():
        if operators is not None and op_id not in operators:
            continue
        for i, p in enumerate(ps):
            ended = ps[i + 1].started_at if i + 1 < len(ps) else None
            if p.state is OperatorState.offline and ended is None:
                continue  # offline is the absence of a period: nothing stays open for it
            campaign_id, attempt_id = p.campaign_id, p.attempt_id
            if operators is not None:
                campaign_id = campaign_id if campaign_id in campaigns else None
                attempt_id = attempt_id if attempt_id in attempts else None
            rows.append({"operator_id": p.operator_id, "state": p.state.value, "reason": p.reason,
                         "campaign_id": campaign_id, "attempt_id": attempt_id, "started_at": p.started_at,
                         "ended_at": ended})
    if rows:
        await session.execute(table.insert(), rows)


async def _existing(session: AsyncSession, column: Any, ids: Iterable[int]) -> set[int]:
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    return {int(i) for i in (await session.scalars(select(column).where(column.in_(wanted)))).all()}


# --- commands -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CommandRow:
    id: int
    kind: str
    operator_id: int | None
    payload: Mapping[str, Any]
    created_at: datetime


async def pending_commands(session: AsyncSession | AsyncConnection, *, after_id: int = 0,
                           limit: int = 500) -> list[CommandRow]:
    rows = (await session.execute(
        select(EngineCommand.id, EngineCommand.kind, EngineCommand.operator_id, EngineCommand.payload,
               EngineCommand.created_at)
        .where(EngineCommand.processed_at.is_(None), EngineCommand.id > after_id)
        .order_by(EngineCommand.id).limit(limit))).all()
    return [CommandRow(int(i), k, o, p or {}, c) for i, k, o, p, c in rows]


async def mark_commands(session: AsyncSession, results: Sequence[tuple[int, Mapping[str, Any]]]) -> None:
    if results:
        table = _table(EngineCommand)
        await session.execute(
            update(table).where(table.c.id == bindparam("_id")).values(processed_at=func.now(),
                                                                        result=bindparam("_result")),
            [{"_id": i, "_result": dict(r)} for i, r in results])


async def expire_commands(session: AsyncSession, older_than_s: float) -> int:
    """Commands queued while no engine ran, older than ``older_than_s``: refused rather than applied late."""
    return _rows(await session.execute(
        update(EngineCommand)
        .where(EngineCommand.processed_at.is_(None),
               EngineCommand.created_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, older_than_s))
        .values(processed_at=func.now(), result={"ok": False, "error": "expired: the engine was not running"})))


# --- the contact card -------------------------------------------------------------------------------------------


async def contact_card(session: AsyncSession, contact_id: int | None, *, campaign_id: int | None = None,
                       history: int = 20) -> dict[str, Any]:
    """What the operator sees of a contact: field values by name, phones, list, campaign, attempt history."""
    card: dict[str, Any] = {"contact_id": contact_id, "fields": {}, "phones": [], "history": []}
    if campaign_id is not None:
        row = (await session.execute(select(Campaign.id, Campaign.name, Campaign.call_script)
                                     .where(Campaign.id == campaign_id))).one_or_none()
        if row is not None:
            card["campaign"] = {"id": row[0], "name": row[1], "script": row[2]}
    if contact_id is None:
        return card
    contact = (await session.execute(select(Contact.id, Contact.list_id, Contact.data, Contact.status,
                                            Contact.attempts_total, Contact.last_outcome, Contact.next_call_at)
                                     .where(Contact.id == contact_id))).one_or_none()
    if contact is None:
        return card
    _, list_id, data, status, attempts_total, last_outcome, next_call_at = contact
    # the list's card template: its in-card fields in their order; a list without fields shows every value
    template = (await session.execute(select(ListField.field_id, ListField.in_card)
                                      .where(ListField.list_id == list_id).order_by(ListField.position))).all()
    ordered = [int(i) for i, in_card in template if in_card]
    if template:
        data = {k: v for k, v in data.items() if k.isdigit() and int(k) in ordered}
    ids = {int(k) for k in data if k.isdigit()}
    names = dict((await session.execute(select(Field.id, Field.name).where(Field.id.in_(ids)))).all()) if ids else {}
    card["list"] = {"id": list_id, "name": await session.scalar(select(ContactList.name)
                                                                .where(ContactList.id == list_id))}
    fields: dict[str, Any] = {}
    for fid in [*[i for i in ordered if i in names], *sorted(i for i in names if i not in ordered)]:
        fields[names[fid]] = data[str(fid)]
    card["fields"] = fields
    card["status"] = status.value if hasattr(status, "value") else status
    card["attempts_total"] = attempts_total
    card["last_outcome"] = last_outcome.value if last_outcome is not None else None
    card["next_call_at"] = next_call_at.isoformat() if next_call_at else None
    card["phones"] = [{"id": i, "number": n, "type": t.value if hasattr(t, "value") else t, "region": r}
                      for i, n, t, r in (await session.execute(
                          select(ContactPhone.id, ContactPhone.e164, ContactPhone.phone_type, ContactPhone.region)
                          .where(ContactPhone.contact_id == contact_id)
                          .order_by(ContactPhone.position, ContactPhone.id))).all()]
    card["history"] = [{**h, "at": h["at"].isoformat() if h["at"] else None}
                       for h in await attempt_history(session, Attempt.contact_id == contact_id, limit=history)]
    return card


async def attempt_history(session: AsyncSession, *where: Any, limit: int) -> list[dict[str, Any]]:
    """Attempts matching ``where`` (a contact's, a number's), newest first, as the client card lists them."""
    rows = (await session.execute(
        select(Attempt.id, Attempt.campaign_id, Attempt.number, Attempt.state, Attempt.outcome, CompletionCode.name,
               Operator.name, Attempt.queued_at, Attempt.comment)
        .outerjoin(CompletionCode, CompletionCode.id == Attempt.completion_code_id)
        .outerjoin(Operator, Operator.id == Attempt.operator_id)
        .where(*where).order_by(Attempt.id.desc()).limit(limit))).all()
    return [{"attempt_id": i, "campaign_id": c, "number": n, "state": st.value if st else None,
             "outcome": o.value if o else None, "completion_code": code, "operator": op, "at": at,
             "comment": comment} for i, c, n, st, o, code, op, at, comment in rows]


# --- telephony state (SIP registrations and trunks, as the engine's driver sees them) ---------------------------


async def save_registration(session: AsyncSession, login: str, *, online: bool, reachable: bool, contact: str = "",
                            source: str = "", user_agent: str = "", expires_at: datetime | None = None,
                            detail: str = "") -> None:
    """Upsert the last known registration of a device (read by the API and the supervisor panel)."""
    values = {"online": online, "reachable": reachable, "contact": contact, "source": source,
              "user_agent": user_agent, "expires_at": expires_at, "detail": detail, "changed_at": func.now()}
    await session.execute(pg_insert(SipRegistration).values(login=login, **values)
                          .on_conflict_do_update(index_elements=[SipRegistration.login], set_=values))


async def save_trunk_state(session: AsyncSession, trunk_id: int, *, up: bool, detail: str = "") -> None:
    values = {"up": up, "detail": detail, "changed_at": func.now()}
    exists = await session.get(SipTrunk, trunk_id)
    if exists is None:  # deleted meanwhile
        return
    await session.execute(pg_insert(SipTrunkState).values(trunk_id=trunk_id, **values)
                          .on_conflict_do_update(index_elements=[SipTrunkState.trunk_id], set_=values))


async def mark_registrations_offline(session: AsyncSession, detail: str) -> None:
    """At engine start: registrations held by a previous process are gone with its registrar."""
    await session.execute(update(SipRegistration).where(SipRegistration.online.is_(True))
                          .values(online=False, reachable=False, detail=detail, changed_at=func.now()))
