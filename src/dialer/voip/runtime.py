"""What the engine needs to run the SIP driver: settings from the environment, trunks and device accounts from the
database, and the choice between the SIP driver and the simulator.

No web framework here: :mod:`dialer.tools.engine` (the engine alone) imports it.

Which telephony ``dialer run`` / ``dialer engine`` use (``DIALER_TELEPHONY``):

``auto`` (default)
    the SIP driver when at least one active trunk is configured, otherwise simulated telephony (with a warning);
``sip``
    always the SIP driver (phones can register before a trunk is configured; calls then fail as "no trunk");
``sim``
    always simulated telephony.

The media plane (``DIALER_MEDIA_ENABLED``, default off; docs/sip.md "Media plane (rtpengine)"): when on, the SIP
driver gets an :class:`~dialer.media.rtpengine.RtpEngineAnchor` — rtpengine started here as a child process (or the
external one of ``DIALER_MEDIA_NG_URL``) before the driver is built, captures an earlier run left spooled — and
recorded calls (every call with ``DIALER_MEDIA_RELAY_ALL``) pass the relay. Off, nothing is started and media flows
directly between carrier and phone. :func:`close_media` stops it after the driver closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.config import Settings
from dialer.core.clock import Clock
from dialer.media.settings import MediaSettings, get_media_settings
from dialer.models import SipDevice, SipRegistration, SipTrunk
from dialer.telephony.sip.config import DeviceAccount, SipSettings, TrunkConfig, digest_order

if TYPE_CHECKING:
    from dialer.media.rtpengine import RtpEngineAnchor
    from dialer.telephony.sip.driver import SipTelephony

__all__ = ["account_lookup", "close_media", "configured_telephony", "hang_up_lost", "load_trunks", "media_anchor",
           "sip_settings", "trunk_config", "use_sip", "watch_trunks"]

log = logging.getLogger(__name__)


def sip_settings(settings: Settings) -> SipSettings:
    """The driver's settings from the ``DIALER_SIP_*`` variables."""
    if settings.sip_tls_port is not None and not settings.sip_tls_cert:
        raise ValueError("DIALER_SIP_TLS_PORT needs DIALER_SIP_TLS_CERT (and DIALER_SIP_TLS_KEY unless the "
                         "certificate file holds the key)")
    return SipSettings(bind_host=settings.sip_bind_host, bind_port=settings.sip_port,
                       public_host=settings.sip_public_host or None, realm=settings.sip_realm,
                       rtp_port_min=settings.rtp_port_min, rtp_port_max=settings.rtp_port_max,
                       hold_audio_dir=str(settings.hold_audio_dir), tcp=settings.sip_tcp,
                       tls_port=settings.sip_tls_port, tls_cert_file=settings.sip_tls_cert or None,
                       tls_key_file=settings.sip_tls_key or None, tls_ca_file=settings.sip_tls_ca or None,
                       dns_servers=tuple(s.strip() for s in settings.sip_dns_servers.split(",") if s.strip()),
                       digest_algorithms=digest_order([a.strip() for a in settings.sip_digest_algorithms.split(",")
                                                       if a.strip()]))


def trunk_config(row: SipTrunk) -> TrunkConfig:
    return TrunkConfig(id=row.id, name=row.name, host=row.host, port=row.port, transport=row.transport,
                       username=row.username or None, password=row.password or None, realm=row.realm or None,
                       from_domain=row.from_domain or None, caller_id=row.caller_id or None,
                       dial_prefix=row.dial_prefix, strip_plus=row.strip_plus, max_concurrent=row.max_concurrent,
                       calls_per_second=row.calls_per_second, connect_flow=row.connect_flow,
                       options_interval_s=row.options_interval_s, registration=row.registration,
                       registration_expires_s=row.registration_expires_s, tls_verify=row.tls_verify,
                       dns_lookup=row.dns_lookup)


async def load_trunks(session: AsyncSession) -> list[TrunkConfig]:
    """Active trunks in the order they are tried."""
    rows = (await session.scalars(select(SipTrunk).where(SipTrunk.is_active.is_(True))
                                  .order_by(SipTrunk.position, SipTrunk.id))).all()
    return [trunk_config(r) for r in rows]


def account_lookup(maker: async_sessionmaker[AsyncSession]) -> Callable[[str], Awaitable[DeviceAccount | None]]:
    """The registrar's credential lookup: the active device with this login, read fresh on every REGISTER (a
    password changed through the API applies at the phone's next registration)."""

    async def lookup(login: str) -> DeviceAccount | None:
        async with maker() as session:
            row = await session.scalar(select(SipDevice).where(SipDevice.login == login,
                                                               SipDevice.is_active.is_(True)))
        if row is None:
            return None
        return DeviceAccount(login=row.login, password=row.password, operator_id=row.operator_id,
                             auto_answer=row.auto_answer,
                             digest_algorithms=tuple(row.digest_algorithms.split(",")) if row.digest_algorithms
                             else None)

    return lookup


async def use_sip(settings: Settings, maker: async_sessionmaker[AsyncSession]) -> bool:
    """Whether the engine should run the SIP driver (see the module docstring)."""
    mode = settings.telephony
    if mode == "sip":
        return True
    if mode == "sim":
        return False
    async with maker() as session:
        active = await session.scalar(select(func.count()).select_from(SipTrunk)
                                      .where(SipTrunk.is_active.is_(True)))
    return bool(active)


async def watch_trunks(driver: SipTelephony, maker: async_sessionmaker[AsyncSession], *,
                       interval_s: float = 5.0, stop: asyncio.Event | None = None) -> None:
    """Apply trunk changes made through the API to the running driver (polls the newest ``updated_at``)."""
    seen: tuple[object, ...] | None = None
    while stop is None or not stop.is_set():
        try:
            async with maker() as session:
                mark = tuple((await session.execute(
                    select(func.count(), func.max(SipTrunk.updated_at)).select_from(SipTrunk))).one())
                if mark != seen:
                    trunks: Sequence[TrunkConfig] = await load_trunks(session)
                    if seen is not None:
                        log.info("trunks changed: %s", ", ".join(t.name for t in trunks) or "none active")
                    await driver.set_trunks(trunks)
                    seen = mark
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reloading trunks failed")
        if stop is None:
            await asyncio.sleep(interval_s)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)


async def configured_telephony(settings: Settings, maker: async_sessionmaker[AsyncSession],
                               clock: Clock) -> SipTelephony | None:
    """The SIP driver with the configured trunks when the engine should use it (see the module docstring), else
    None (the caller falls back to simulated telephony)."""
    if not await use_sip(settings, maker):
        return None
    from dialer.telephony.sip.driver import SipTelephony

    async with maker() as session, session.begin():
        trunks = await load_trunks(session)
        # the registrar's bindings lived in the process that ran before: until each phone registers with this one,
        # it is offline (the supervisor's floor shows it, and offers to it would fail as "not registered")
        await session.execute(update(SipRegistration).where(SipRegistration.online.is_(True)).values(
            online=False, reachable=False, changed_at=func.now(),
            detail="the dialer restarted: waiting for the phone to register again"))
    sip = sip_settings(settings)
    log.info("telephony: SIP on %s:%s, trunks: %s", sip.bind_host, sip.bind_port,
             ", ".join(t.name for t in trunks) or "none active")
    anchor = await media_anchor(settings, clock)
    try:
        driver = SipTelephony(sip, trunks, account_lookup(maker), clock=clock, anchor=anchor)
    except BaseException:
        # nothing else would stop the relay started above: the caller gets no driver to close
        if anchor is not None:
            await anchor.stop()
        raise
    if anchor is not None:
        anchor.on_lost = functools.partial(hang_up_lost, driver)
    return driver


async def hang_up_lost(driver: SipTelephony, call_ids: list[str]) -> None:
    """End the calls whose media a restart of rtpengine lost (ringing ones are cancelled, answered ones hung up by
    the dialer): better a clean end than a call nobody can hear."""
    from dialer.telephony.base import CallId, TelephonyError

    for call_id in call_ids:
        try:
            await driver.hangup(CallId(call_id), "media relay restarted")
        except TelephonyError as err:  # already over (UnknownCall) or the hang-up failed: nothing left to do
            log.info("call %s after the media relay's restart: %s", call_id, err)


async def media_anchor(settings: Settings, clock: Clock, media: MediaSettings | None = None
                       ) -> RtpEngineAnchor | None:
    """The started media relay when ``DIALER_MEDIA_ENABLED`` (see the module docstring), else None (direct media).
    Raises :class:`~dialer.media.rtpengine.RtpEngineError` when rtpengine cannot be started or reached: a product
    configured to record must not silently run without recordings."""
    media = media or get_media_settings()
    if not media.enabled:
        return None
    from dialer.media.rtpengine import ExternalRtpEngine, MediaEngine, RtpEngineAnchor, RtpEngineProcess

    recordings = media.recordings_path(settings)
    engine: MediaEngine
    if media.ng_url:
        engine = ExternalRtpEngine(media.ng_url, recording_dir=media.rtpengine_recording_dir, clock=clock,
                                   retransmit_s=media.ng_retransmit_s, tries=media.ng_tries)
    else:
        engine = RtpEngineProcess.from_settings(media, recordings, public_host=settings.sip_public_host or None,
                                                clock=clock)
    anchor = RtpEngineAnchor(engine, recordings, relay_all=media.relay_all, clock=clock)
    await anchor.start()
    log.info("media plane: %s calls through rtpengine, recordings spooled to %s",
             "all" if media.relay_all else "recorded", recordings / "spool")
    return anchor


async def close_media(driver: SipTelephony | None) -> None:
    """Stop the media relay of ``driver`` (after the driver closed: its calls' deletes have gone out)."""
    from dialer.media.rtpengine import RtpEngineAnchor

    anchor = getattr(driver, "anchor", None)
    if isinstance(anchor, RtpEngineAnchor):
        await anchor.stop()
