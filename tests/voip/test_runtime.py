"""The engine's view of SIP configuration: which telephony to run, trunks in order, device credentials."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.config import Settings
from dialer.models import Operator, SipDevice, SipTrunk
from dialer.voip.runtime import account_lookup, load_trunks, sip_settings, use_sip


async def test_trunks_accounts_and_the_choice_of_telephony(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    auto, sim, sip = Settings(telephony="auto"), Settings(telephony="sim"), Settings(telephony="sip")
    assert not await use_sip(auto, sessionmaker) and await use_sip(sip, sessionmaker)
    async with sessionmaker() as s, s.begin():
        op = Operator(name="Петрова")
        s.add_all([op,
                   SipTrunk(name="backup", host="10.0.0.2", position=2, password="pw2"),
                   SipTrunk(name="main", host="10.0.0.1", position=1, username="u", password="pw1",
                            calls_per_second=25, connect_flow="delayed_offer"),
                   SipTrunk(name="off", host="10.0.0.3", is_active=False)])
        await s.flush()
        s.add_all([SipDevice(login="op7", password="phone-pass-7", operator_id=op.id, auto_answer=False),
                   SipDevice(login="gone", password="phone-pass-8", is_active=False)])
        op_id = op.id
    assert await use_sip(auto, sessionmaker) and not await use_sip(sim, sessionmaker)

    async with sessionmaker() as s:
        trunks = await load_trunks(s)
    assert [t.name for t in trunks] == ["main", "backup"]
    main = trunks[0]
    assert (main.username, main.password, main.calls_per_second, main.connect_flow) == ("u", "pw1", 25,
                                                                                      "delayed_offer")
    assert "pw1" not in repr(main)

    lookup = account_lookup(sessionmaker)
    account = await lookup("op7")
    assert account is not None and account.password == "phone-pass-7" and account.operator_id == op_id
    assert account.auto_answer is False and "phone-pass-7" not in repr(account)
    assert await lookup("gone") is None and await lookup("nobody") is None


async def test_a_restarted_driver_shows_phones_offline_until_they_register_again(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    from dialer.core.clock import SystemClock
    from dialer.models import SipRegistration
    from dialer.voip.runtime import configured_telephony

    async with sessionmaker() as s, s.begin():
        s.add_all([SipRegistration(login="desk-1", online=True, reachable=True, contact="sip:desk-1@10.0.0.7"),
                   SipRegistration(login="desk-2", online=False, reachable=False, detail="registration expired")])
    driver = await configured_telephony(Settings(telephony="sip"), sessionmaker, SystemClock())
    assert driver is not None  # built, not started: nothing listens
    async with sessionmaker() as s:
        one, two = await s.get(SipRegistration, "desk-1"), await s.get(SipRegistration, "desk-2")
    assert one is not None and (one.online, one.reachable) == (False, False) and "restarted" in one.detail
    assert two is not None and two.detail == "registration expired"  # rows already offline keep their reason


def test_settings_from_the_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DIALER_SIP_PORT", "5080")
    monkeypatch.setenv("DIALER_SIP_PUBLIC_HOST", "203.0.113.7")
    monkeypatch.setenv("DIALER_HOLD_AUDIO_DIR", "/srv/audio")
    settings = sip_settings(Settings())
    assert (settings.bind_port, settings.public_host, settings.hold_audio_dir) == (5080, "203.0.113.7",
                                                                                  "/srv/audio")


def test_tls_dns_and_digest_settings_from_the_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pytest

    monkeypatch.setenv("DIALER_SIP_TLS_PORT", "5061")
    monkeypatch.setenv("DIALER_SIP_TLS_CERT", "/etc/dialer/sip.pem")
    monkeypatch.setenv("DIALER_SIP_TLS_CA", "/etc/dialer/carriers.pem")
    monkeypatch.setenv("DIALER_SIP_DNS_SERVERS", "10.0.0.53, 10.0.0.54")
    monkeypatch.setenv("DIALER_SIP_DIGEST_ALGORITHMS", "MD5,SHA-256")
    settings = sip_settings(Settings())
    assert (settings.tls_port, settings.tls_cert_file, settings.tls_key_file, settings.tls_ca_file) == (
        5061, "/etc/dialer/sip.pem", None, "/etc/dialer/carriers.pem")
    assert settings.dns_servers == ("10.0.0.53", "10.0.0.54")
    assert settings.digest_algorithms == ("SHA-256", "MD5")  # RFC 8760's order whatever the variable's
    monkeypatch.setenv("DIALER_SIP_DIGEST_ALGORITHMS", "SHA-512")
    with pytest.raises(ValueError, match="unknown digest algorithm"):
        sip_settings(Settings())
    monkeypatch.setenv("DIALER_SIP_DIGEST_ALGORITHMS", "MD5")
    monkeypatch.delenv("DIALER_SIP_TLS_CERT")
    with pytest.raises(ValueError, match="DIALER_SIP_TLS_CERT"):
        sip_settings(Settings())


def test_the_default_hold_audio_is_the_engines(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dialer.engine.runner import EngineConfig
    from dialer.telephony.sip.holdaudio import DEFAULT_HOLD_AUDIO

    settings = sip_settings(Settings(data_dir=tmp_path))
    # campaigns without their own hold audio play the engine's default, which the driver writes when it is missing
    assert settings.hold_audio_dir == str(tmp_path / "audio")
    assert settings.default_hold_audio == DEFAULT_HOLD_AUDIO == EngineConfig().hold_audio
