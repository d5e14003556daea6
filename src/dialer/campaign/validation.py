"""Pure checks and parsers of campaign configuration: intervals, HH:MM times, numbers, zones, schedules, dial modes.

They raise ``ValueError`` (for use inside Pydantic validators, which turn it into a field error)
or :class:`~dialer.exceptions.ValidationFailed` naming the field (for checks that span fields).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import time
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import available_timezones

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dialer.exceptions import ValidationFailed
from dialer.models.enums import DialMode

#: Longest retry interval accepted: one year, in minutes.
MAX_INTERVAL_MIN = 525_600
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)", re.ASCII)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def parse_intervals(text: str | Sequence[int]) -> list[int]:
    """Retry intervals in minutes from ``"15;60;1440"`` (or a list of ints), as a list of positive ints.

    Spaces around the numbers are ignored; an empty part, a non-integer or a non-positive number is an
    error saying which part is wrong (1-based, as the user counts).
    """
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(";")]
        if parts == [""]:
            raise ValueError("give at least one interval in minutes, like 15;60;1440")
        values: list[int] = []
        for n, part in enumerate(parts, 1):
            if not part:
                raise ValueError(f"interval {n} is empty; separate minutes with ';', like 15;60;1440")
            if not re.fullmatch(r"[+-]?\d+", part, re.ASCII):
                raise ValueError(f"interval {n} ({part!r}) is not a whole number of minutes")
            values.append(int(part))
    elif isinstance(text, list | tuple):
        if not text:
            raise ValueError("give at least one interval in minutes, like 15;60;1440")
        values = []
        for n, item in enumerate(text, 1):
            if not isinstance(item, int) or isinstance(item, bool):
                raise ValueError(f"interval {n} ({item!r}) is not a whole number of minutes")
            values.append(item)
    else:
        raise ValueError("intervals are text like 15;60;1440 or a list of minutes")
    for n, value in enumerate(values, 1):
        if value <= 0:
            raise ValueError(f"interval {n} ({value}) must be a positive number of minutes")
        if value > MAX_INTERVAL_MIN:
            raise ValueError(f"interval {n} ({value}) is longer than a year")
    return values


def format_intervals(values: Sequence[int]) -> str:
    return ";".join(str(v) for v in values)


def parse_hhmm(value: Any) -> time:
    """A time of day written ``HH:MM`` (24-hour); ``time`` objects pass through without seconds."""
    if isinstance(value, time):
        return value.replace(second=0, microsecond=0, tzinfo=None)
    if isinstance(value, str) and (m := _HHMM.fullmatch(value.strip())):
        return time(int(m[1]), int(m[2]))
    raise ValueError(f"{value!r} is not a time HH:MM (00:00–23:59)")


def parse_hhmm_end(value: Any) -> time:
    """Like :func:`parse_hhmm`, and ``24:00`` (the end of the day) too, stored as ``00:00``."""
    if isinstance(value, str) and value.strip() == "24:00":
        return time(0, 0)
    return parse_hhmm(value)


def span_minutes(start: time, end: time) -> int:
    """Length of a daily span in minutes: ``end`` after ``start`` that day, else the next day (overnight);
    ``start == end`` is a whole day (``00:00``–``00:00``, or ``22:00``–``22:00`` to the next day's 22:00)."""
    length = (end.hour * 60 + end.minute - start.hour * 60 - start.minute) % 1440
    return length or 1440


def format_hhmm(value: time) -> str:
    return value.strftime("%H:%M")


def to_e164(number: str, region: str) -> str:
    """Normalise a phone number to E.164; numbers without a country code are read in ``region``."""
    text = number.strip()
    if not text:
        raise ValueError("a phone number is required")
    try:
        parsed = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException as err:
        raise ValueError(f"{text!r} is not a phone number ({err._msg})") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"{text!r} is not a valid phone number (read with country {region.upper()} "
                         "unless it starts with +)")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def check_time_zone(name: str) -> str:
    """An IANA time zone name such as ``Europe/Moscow``."""
    if name not in _zones():
        raise ValueError(f"{name!r} is not an IANA time zone (like Europe/Moscow or Asia/Yekaterinburg)")
    return name


def check_schedule(periods: Sequence[Mapping[str, Any]], path: str = "schedule") -> None:
    """Periods must not overlap anywhere in the week (touching ends are fine).

    A period runs from ``start`` on its weekday for :func:`span_minutes`: an ``end`` of ``00:00`` (or ``24:00``)
    is midnight, an ``end`` before ``start`` runs past midnight into the next day (Sunday's into Monday), and
    ``start == end`` is 24 hours.
    """
    week = 7 * 1440
    spans: list[tuple[int, int, int]] = []
    for i, period in enumerate(periods):
        weekday, start, end = period["weekday"], period["start"], period["end"]
        begin = weekday * 1440 + start.hour * 60 + start.minute
        spans.append((i, begin, begin + span_minutes(start, end)))
    for i, begin, finish in spans:
        for j, other_begin, other_finish in spans:
            if j >= i:
                break
            if any(begin < other_finish + shift and other_begin + shift < finish for shift in (-week, 0, week)):
                this, other = periods[i], periods[j]
                span = f"{format_hhmm(other['start'])}–{format_hhmm(other['end'])}"
                if other["weekday"] != this["weekday"]:
                    span = f"{WEEKDAYS[other['weekday']]} {span}"
                raise ValidationFailed.field(
                    f"{path}.{i}", f"{WEEKDAYS[this['weekday']]} {format_hhmm(this['start'])}–"
                                   f"{format_hhmm(this['end'])} overlaps {path}.{j} ({span})")


# --- strategy rules -------------------------------------------------------------------------------


def check_outcome_retries(retries: Sequence[Mapping[str, Any]]) -> None:
    """One retry setting per outcome."""
    seen: dict[str, int] = {}
    for i, item in enumerate(retries):
        if (earlier := seen.get(item["outcome"])) is not None:
            raise ValidationFailed.field(f"outcome_retries.{i}.outcome",
                                         f"'{item['outcome']}' is already set at outcome_retries.{earlier}")
        seen[item["outcome"]] = i


def check_result_rules(rules: Sequence[Mapping[str, Any]]) -> None:
    """One rule per (code, day type); a rule either ends the calls or says when to call again.

    Switching to another phone needs both the phone type and the attempts on the previous number.
    """
    seen: dict[tuple[int, str], int] = {}
    for i, rule in enumerate(rules):
        path = f"result_rules.{i}"
        key = (rule["completion_code_id"], str(rule["day_type"]))
        if key in seen:
            raise ValidationFailed.field(f"{path}.completion_code_id",
                                         f"this code already has a {key[1]} rule at result_rules.{seen[key]}")
        seen[key] = i
        has_interval = rule["retry_interval_s"] is not None
        if has_interval and rule["use_common_interval"]:
            raise ValidationFailed.field(f"{path}.retry_interval_s",
                                         "give either retry_interval_s or use_common_interval, not both")
        switches = rule["switch_to_phone_type"] is not None
        if rule["is_final"]:
            if has_interval or rule["use_common_interval"] or switches:
                raise ValidationFailed.field(f"{path}.is_final", "a final rule ends the calls; it cannot also "
                                                                 "retry or switch to another phone")
            continue
        if switches and rule["attempts_on_previous_number"] is None:
            raise ValidationFailed.field(f"{path}.attempts_on_previous_number",
                                         "say after how many attempts to switch to the other phone")
        if rule["attempts_on_previous_number"] is not None and not switches:
            raise ValidationFailed.field(f"{path}.switch_to_phone_type",
                                         "say which phone type to switch to after attempts_on_previous_number")
        if not has_interval and not rule["use_common_interval"]:
            raise ValidationFailed.field(f"{path}.retry_interval_s", "give the interval before the next call, "
                                                                     "set use_common_interval, or mark is_final")


# --- dial modes -----------------------------------------------------------------------------------


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PreviewParams(_Params):
    """The operator sees the card for ``preview_seconds`` before the call is placed (004 §2.6)."""

    mode: Literal[DialMode.preview] = DialMode.preview
    preview_seconds: int = Field(10, ge=1, le=300)


class ProgressiveParams(_Params):
    """A call is placed only for an operator who is already free; no parameters."""

    mode: Literal[DialMode.progressive] = DialMode.progressive


class PredictiveParams(_Params):
    """Dial ahead of operators from a forecast, holding abandoned calls under a cap."""

    mode: Literal[DialMode.predictive] = DialMode.predictive
    #: Abandoned calls allowed, in % of live answers (the usual legal cap is 3).
    abandon_cap_pct: float = Field(3.0, ge=0, le=100)
    #: Sliding window the abandon rate is measured over, in minutes.
    abandon_window_min: int = Field(60, ge=1, le=43_200)
    #: At most this many lines per free operator.
    max_ratio: float = Field(3.0, ge=1, le=20)


class FixedLinesParams(_Params):
    """Keep ``max_lines`` calls in progress ("Не ограничено", 002 §5.2.5)."""

    mode: Literal[DialMode.fixed_lines] = DialMode.fixed_lines
    max_lines: int = Field(ge=1, le=10_000)


DIAL_PARAMS: dict[DialMode, type[_Params]] = {
    DialMode.preview: PreviewParams,
    DialMode.progressive: ProgressiveParams,
    DialMode.predictive: PredictiveParams,
    DialMode.fixed_lines: FixedLinesParams,
}


def normalize_dial(mode: DialMode, params: Mapping[str, Any], abandon_cap_pct: Decimal | None,
                   current_cap: Decimal) -> tuple[dict[str, Any], Decimal]:
    """Validate ``dial_params`` for ``mode``; return them with defaults filled, and the abandon cap column.

    For predictive dialling the cap lives in ``dial_params.abandon_cap_pct`` and is mirrored into the
    ``abandon_cap_pct`` column; the column may also be given on its own and then fills the parameter.
    Errors name the parameter: ``dial_params.max_lines``.
    """
    if not isinstance(params, Mapping):
        raise ValidationFailed.field("dial_params", "must be an object")
    data = {k: v for k, v in params.items() if k != "mode"}
    if params.get("mode") not in (None, mode.value):
        raise ValidationFailed.field("dial_params.mode", f"is {params.get('mode')!r} but dial_mode is {mode.value!r}")
    if mode is DialMode.predictive and abandon_cap_pct is not None:
        if "abandon_cap_pct" in data and Decimal(str(data["abandon_cap_pct"])) != abandon_cap_pct:
            raise ValidationFailed.field("abandon_cap_pct", "differs from dial_params.abandon_cap_pct; give one")
        data.setdefault("abandon_cap_pct", float(abandon_cap_pct))
    elif mode is DialMode.predictive and "abandon_cap_pct" not in data:
        data["abandon_cap_pct"] = float(current_cap)
    try:
        model = DIAL_PARAMS[mode].model_validate(data)
    except ValidationError as err:
        errors = [{"field": ".".join(["dial_params", *(str(p) for p in e["loc"])]),
                   "reason": f"{e['msg']} (dial mode {mode.value})"} for e in err.errors()]
        raise ValidationFailed("; ".join(f"{e['field']}: {e['reason']}" for e in errors), errors=errors) from None
    result = model.model_dump(exclude={"mode"})
    if isinstance(model, PredictiveParams):
        cap = Decimal(str(model.abandon_cap_pct)).quantize(Decimal("0.01"))
    else:
        cap = abandon_cap_pct if abandon_cap_pct is not None else current_cap
    if not Decimal(0) <= cap <= Decimal(100):
        raise ValidationFailed.field("abandon_cap_pct", "must be between 0 and 100")
    return result, cap


# --- media settings (issue #16 §1, §3, §4) ------------------------------------------------------------------------

_AUDIO_NAME = re.compile(r"^[^/\\\x00-\x1f.][^/\\\x00-\x1f]{0,199}$")


def check_audio_name(value: str) -> str:
    """An audio name of a campaign (consent announcement, answering-machine and abandon messages): a file of the
    hold-audio directory named without ``.wav``, as ``hold_audio`` is — no path."""
    if not _AUDIO_NAME.match(value):
        raise ValueError("an audio name is a file of the hold-audio directory without '.wav' (e.g. 'consent-ru'): "
                         "1–200 characters, no '/' or '\\', not starting with '.'")
    return value.removesuffix(".wav")


def check_recording(mode: str, percent: int | None) -> None:
    """``record_mode`` 'percent' needs ``record_percent`` (1–99); other modes ignore it."""
    if mode == "percent" and percent is None:
        raise ValidationFailed.field("record_percent", "record_mode 'percent' needs record_percent (1–99): the share "
                                     "of calls recorded")
