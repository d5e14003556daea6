"""Media settings of campaigns and operators applied to calls (issue #16 §1, §3, §4; migration 0017_media).

* Recording: ``record_mode`` 'all' records every call of the campaign, 'percent' a random ``record_percent`` of them
  (drawn per call), 'none' none — :attr:`Originate.record`. An operator's ``record_override`` decides for the calls
  he takes: 'always' starts recording a call that is not recorded when he is connected (the driver's optional
  :class:`~dialer.telephony.base.Records`), 'never' stops a recorded one (what was recorded before he joined is
  kept); 'inherit' leaves the campaign's choice. A call counts as recorded only once the driver did it: without the
  media relay (``DIALER_MEDIA_RELAY_ALL``) the SIP driver cannot record after the answer, and the engine says so once
  per operator and campaign (a warning in its log).
* Consent: a recorded call's customer hears the campaign's ``record_consent_audio`` before he is connected; the engine
  waits for its length (the WAV file's duration in the hold-audio directory) and only then looks for an operator — the
  regulatory wait for an operator (``operator_wait_s``) and the hold limit stop while it plays and go on when it ends,
  since the customer is being served by it meanwhile (an abandoned call is one answered into silence, seed 001);
  machine detection's decision time before it counts.
* Answering machines: ``amd_enabled`` asks the driver to detect machines (:attr:`Originate.detect_machine`);
  ``amd_message`` is left on a machine after its greeting (:attr:`Originate.machine_message`): the driver plays it and
  hangs up, and the engine waits for that instead of hanging up at once. A machine is never a live answer: it counts
  neither in the pacer's answers nor in the abandon rate (``answered_by`` 'machine').
* Abandon message: with ``abandon_message`` a live customer nobody took within the grace time hears it once instead
  of hold music, is hung up, and the attempt ends abandoned with a callback booked no sooner than
  ``DIALER_ABANDON_CALLBACK_AFTER_S`` (default an hour: the re-call lockout of an abandoned call) — as inbound
  callers get their message and a callback.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import wave
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from dialer.config import get_settings

__all__ = ["EngineMediaSettings", "audio_length_s", "media_settings", "record_drawn"]

log = logging.getLogger(__name__)


class EngineMediaSettings(BaseSettings):
    """``DIALER_ABANDON_CALLBACK_AFTER_S``: how soon after an abandoned customer heard the abandon message his
    callback is due (the re-call lockout); ``DIALER_MESSAGE_DEFAULT_S``: the length assumed for a message whose WAV
    file cannot be read (a driver that generates its own stand-in)."""

    model_config = SettingsConfigDict(env_prefix="DIALER_", extra="ignore")

    abandon_callback_after_s: float = 3600.0
    message_default_s: float = 8.0


@functools.lru_cache
def media_settings() -> EngineMediaSettings:
    return EngineMediaSettings()


def record_drawn(mode: str, percent: int | None, rng: random.Random) -> bool:
    """Whether a call of a campaign with ``record_mode`` ``mode`` is recorded."""
    if mode == "all":
        return True
    if mode == "percent" and percent:
        return rng.random() * 100.0 < float(percent)
    return False


def audio_length_s(name: str, directory: str | Path | None = None) -> float | None:
    """The length of the audio ``name`` (a WAV file of the hold-audio directory, named without ``.wav`` as campaigns
    name it); None when it cannot be read."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    folder = Path(directory) if directory is not None else get_settings().hold_audio_dir
    path = folder / (name if name.endswith(".wav") else name + ".wav")
    with contextlib.suppress(OSError, wave.Error, EOFError), wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
        if rate > 0:
            return wav.getnframes() / float(rate)
    log.info("audio %r: no readable WAV at %s", name, path)
    return None
