"""Enumerations shared by the models, the API schemas and the engine."""

from __future__ import annotations

from enum import StrEnum


# Types of custom contact fields, stored in the database; dialer.fieldvalues converts values to them. (A comment,
# not a docstring: a docstring would become the enum's description in the OpenAPI schema.)
class FieldType(StrEnum):
    string = "string"
    integer = "integer"
    decimal = "decimal"
    date = "date"
    datetime = "datetime"
    boolean = "boolean"
    phone = "phone"
    enum = "enum"


class PhoneType(StrEnum):
    mobile = "mobile"
    home = "home"
    work = "work"
    other = "other"


class OutcomeCategory(StrEnum):
    """The six outcome categories (001): every attempt ends in exactly one."""

    answered = "answered"
    no_answer = "no_answer"
    busy = "busy"
    rejected = "rejected"
    abandoned = "abandoned"
    error = "error"


class DayType(StrEnum):
    workday = "workday"
    holiday = "holiday"


class CampaignKind(StrEnum):
    finite = "finite"
    infinite = "infinite"


class DialMode(StrEnum):
    preview = "preview"
    progressive = "progressive"
    predictive = "predictive"
    fixed_lines = "fixed_lines"


class CampaignStatus(StrEnum):
    draft = "draft"
    running = "running"
    paused = "paused"
    auto_paused = "auto_paused"
    stopped = "stopped"
    finished = "finished"


class CallbackKind(StrEnum):
    personal = "personal"  # for a specific operator
    common = "common"  # any operator of the campaign


class CallbackStatus(StrEnum):
    pending = "pending"
    done = "done"
    cancelled = "cancelled"


class PhoneCodeSource(StrEnum):
    manual = "manual"
    registry = "registry"


class ContactStatus(StrEnum):
    new = "new"  # never dialled
    in_progress = "in_progress"  # dialled, more attempts allowed
    done = "done"  # finalized by an outcome or exhausted attempts


class ImportStatus(StrEnum):
    queued = "queued"
    running = "running"
    finished = "finished"
    failed = "failed"


class AuditAction(StrEnum):
    created = "created"
    updated = "updated"
    deleted = "deleted"
    custom = "custom"


class AttemptState(StrEnum):
    queued = "queued"  # taken from the hopper, not yet placed
    dialing = "dialing"  # originate sent
    ringing = "ringing"
    answered = "answered"  # picked up, waiting for an operator (hold music)
    connected = "connected"  # talking to an operator
    wrap_up = "wrap_up"  # customer gone, operator finishing the card
    done = "done"


class OperatorState(StrEnum):
    offline = "offline"
    ready = "ready"
    reserved = "reserved"  # picked for a call that is being connected (or a preview)
    ringing = "ringing"
    in_call = "in_call"
    wrap_up = "wrap_up"
    paused = "paused"
