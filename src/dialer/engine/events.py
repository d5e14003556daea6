"""What the engine tells the world: typed, past-tense events and their JSON form.

Every state change of the engine is published as one of these (``engine.bus`` carries them in-process and
across processes). An event is a frozen dataclass; :func:`encode` turns it into the JSON text sent over
PostgreSQL ``NOTIFY`` (``{"type": "CallAnswered", "at": "2025-03-04T07:00:01.5+00:00", ...}``) and
:func:`decode` back. ``NOTIFY`` payloads are limited to 8000 bytes: an event that would be larger is sent with its
bulky fields (the contact card of a preview) emptied and ``truncated`` set; a subscriber then reads the rest from
the API.

Identifiers are the database ids, so a panel can fetch details (``GET /api/attempts/{id}``).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from datetime import datetime
from typing import Any, ClassVar

__all__ = [
    "EVENT_TYPES",
    "MAX_PAYLOAD_BYTES",
    "AttemptFinished",
    "CallAnswered",
    "CallConnected",
    "CallEnded",
    "CallIncoming",
    "CallOnHold",
    "CallPlaced",
    "CallRinging",
    "CallTransferred",
    "CampaignAutoPaused",
    "CampaignFinished",
    "CampaignScheduleChanged",
    "CampaignStatusChanged",
    "CommandFailed",
    "DeviceStateChanged",
    "EngineStarted",
    "EngineStopped",
    "Event",
    "ListenerReconnected",
    "OperatorMissedCall",
    "OperatorStateChanged",
    "PreviewEnded",
    "PreviewStarted",
    "TrunkStateChanged",
    "decode",
    "encode",
]

#: PostgreSQL's limit for a NOTIFY payload (bytes, with the default block size).
MAX_PAYLOAD_BYTES = 8000


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every event: ``at`` is when it happened (UTC, the engine's clock)."""

    at: datetime
    #: Set on the receiving side when bulky fields were dropped to fit a NOTIFY payload.
    truncated: bool = False

    type: ClassVar[str] = "Event"


def _event(cls: type[Event]) -> type[Event]:
    cls.type = cls.__name__
    return cls


# --- the engine ---------------------------------------------------------------------------------------------


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EngineStarted(Event):
    run_id: int
    host: str
    pid: int
    #: Attempts of dead runs closed as errors at start.
    recovered_attempts: int


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EngineStopped(Event):
    run_id: int


# --- calls --------------------------------------------------------------------------------------------------


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CallPlaced(Event):
    attempt_id: int
    campaign_id: int
    contact_id: int | None
    number: str
    caller_id: str | None
    call_id: str
    #: The operator reserved for it (progressive, preview, personal callbacks); None when assigned on answer.
    operator_id: int | None


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CallRinging(Event):
    attempt_id: int
    campaign_id: int


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CallAnswered(Event):
    attempt_id: int
    campaign_id: int
    answered_by: str  # human | machine


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CallOnHold(Event):
    """A live answer found no operator within the abandon threshold: it hears hold audio and counts as abandoned."""

    attempt_id: int
    campaign_id: int
    waited_s: float


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CallConnected(Event):
    attempt_id: int
    campaign_id: int
    operator_id: int
    waited_s: float


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(Event):
    """The telephony part of an attempt is over (hung up, or an unanswered result)."""

    attempt_id: int
    campaign_id: int
    result: str  # hung_up | busy | no_answer | rejected | failed | error
    side: str | None
    cause: str
    sip_code: int | None


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AttemptFinished(Event):
    """The attempt is done: one of the six categories and a completion code."""

    attempt_id: int
    campaign_id: int
    contact_id: int | None
    operator_id: int | None
    category: str
    completion_code_id: int | None
    #: The regulatory fact: a live answer not connected within the threshold (whatever happened later).
    abandoned: bool
    waited_s: float | None


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CallIncoming(Event):
    """A customer's own call arrived on a trunk and became an inbound attempt (engine/inbound.py): it rings until the
    engine answers it, then waits for an operator like any live customer."""

    attempt_id: int
    campaign_id: int
    contact_id: int | None
    number: str
    #: The number he dialled (one of the caller IDs).
    dialled: str | None
    #: How he was matched: "last campaign" or "caller id".
    how: str
    #: An operator already reserved for him, if any was free.
    operator_id: int | None


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CallTransferred(Event):
    """A transfer of an attempt's customer began or ended (engine/transfers.py; one ``call_transfers`` row)."""

    transfer_id: int
    attempt_id: int
    campaign_id: int
    #: operator | pool | skill | external | attended | rescue
    kind: str
    #: panel | supervisor | phone | engine
    source: str
    from_operator_id: int | None
    to_operator_id: int | None
    to_pool_id: int | None
    to_skill_id: int | None
    to_number: str | None
    #: pending | connected | failed | cancelled | refused | abandoned | callback
    result: str
    detail: str = ""


# --- operators ----------------------------------------------------------------------------------------------


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OperatorStateChanged(Event):
    operator_id: int
    state: str
    previous: str
    reason: str
    campaign_id: int | None
    attempt_id: int | None


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OperatorMissedCall(Event):
    """An operator did not pick up a call offered to him within the offer timeout: the offer was withdrawn and the
    customer offered to another operator (the supervisor panel shows "operator not answering offered calls")."""

    operator_id: int
    campaign_id: int
    attempt_id: int
    #: Offers missed in a row (reset when he answers one) and since the engine started.
    missed_in_row: int
    missed_total: int
    #: He was paused with the reason "missed call" (the strategy's ``auto_pause_after_missed`` was reached).
    paused: bool
    #: False when the telephony driver cannot take an offer back (the call keeps ringing at his phone).
    withdrawn: bool


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PreviewStarted(Event):
    operator_id: int
    campaign_id: int
    attempt_id: int
    contact_id: int | None
    number: str
    preview_seconds: float
    #: The contact card: ``{"fields": {name: value}, "phones": [...], "campaign": {...}}``.
    card: dict[str, Any] = dataclasses.field(default_factory=dict)


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PreviewEnded(Event):
    operator_id: int
    campaign_id: int
    attempt_id: int
    how: str  # confirmed | timeout | skipped | cancelled


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CommandFailed(Event):
    """An operator or supervisor command the engine refused (the API also answers the request with it)."""

    command_id: int
    operator_id: int | None
    kind: str
    reason: str


# --- campaigns ----------------------------------------------------------------------------------------------


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CampaignStatusChanged(Event):
    campaign_id: int
    status: str
    previous: str | None
    reason: str


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CampaignAutoPaused(Event):
    campaign_id: int
    reason: str


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CampaignFinished(Event):
    campaign_id: int


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CampaignScheduleChanged(Event):
    """The campaign entered (``open``) or left its dialling schedule."""

    campaign_id: int
    open: bool


# --- telephony ----------------------------------------------------------------------------------------------


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DeviceStateChanged(Event):
    """An operator's phone registered, unregistered, stopped answering (``unreachable``: "SIP device dropped") or
    answers again (``reachable``)."""

    login: str
    operator_id: int | None
    state: str
    detail: str


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TrunkStateChanged(Event):
    """A trunk stopped answering (its calls are not placed) or answers again."""

    trunk_id: int
    name: str
    up: bool
    detail: str


# --- the listener -------------------------------------------------------------------------------------------


@_event
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ListenerReconnected(Event):
    """Made by :func:`dialer.engine.bus.listen` itself after its connection was re-established: events may have
    been missed meanwhile, so a subscriber should re-read the state it shows."""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls for cls in (
        EngineStarted, EngineStopped, CallPlaced, CallRinging, CallAnswered, CallOnHold, CallConnected, CallEnded,
        AttemptFinished, OperatorStateChanged, OperatorMissedCall, PreviewStarted, PreviewEnded, CommandFailed,
        CampaignStatusChanged, CampaignAutoPaused, CampaignFinished, CampaignScheduleChanged, DeviceStateChanged,
        TrunkStateChanged, ListenerReconnected, CallIncoming, CallTransferred,
    )
}


# --- JSON -----------------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _as_dict(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = {"type": event.type}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if f.name == "truncated" and not value:
            continue
        data[f.name] = _jsonable(value)
    return data


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


def encode(event: Event, *, limit: int = MAX_PAYLOAD_BYTES) -> str:
    """The event as compact JSON of at most ``limit`` UTF-8 bytes (bulky fields dropped when needed)."""
    data = _as_dict(event)
    text = _dump(data)
    if len(text.encode()) <= limit:
        return text
    # drop containers and long strings first, then keep only the scalars that identify the event
    for key, value in list(data.items()):
        if isinstance(value, dict | list):
            data[key] = type(value)()
        elif isinstance(value, str) and len(value) > 200 and key not in ("type", "at"):
            data[key] = value[:200]
    data["truncated"] = True
    text = _dump(data)
    if len(text.encode()) <= limit:
        return text
    small = {k: v for k, v in data.items() if k in ("type", "at", "truncated") or isinstance(v, int | float | bool)}
    return _dump(small)


_HINTS: dict[type[Event], dict[str, Any]] = {}


def _datetime_fields(cls: type[Event]) -> set[str]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return {name for name, hint in hints.items() if hint is datetime or hint == datetime | None}


def decode(text: str | bytes) -> Event | None:
    """The event of a JSON payload, or None for a payload that is not a known event."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    cls = EVENT_TYPES.get(str(data.get("type")))
    if cls is None:
        return None
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in names:
            kwargs[key] = value
    for key in _datetime_fields(cls):
        if isinstance(kwargs.get(key), str):
            kwargs[key] = datetime.fromisoformat(kwargs[key])
    # a truncated payload may lack fields: fill them with empty values rather than refuse the event
    for name, f in names.items():
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            kwargs[name] = None
    try:
        return cls(**kwargs)
    except TypeError:
        return None
