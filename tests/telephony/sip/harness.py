"""Building blocks of the SIP tests: a driver on loopback, SIPp carriers and SIPp operator phones."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from dialer.telephony.base import Telephony
from dialer.telephony.sip import DeviceAccount, SipSettings, SipTelephony, TrunkConfig
from tests.telephony.sip.sipp import Sipp, free_port, stop_all

LOGIN, PASSWORD = "op-1", "s3cret"
ACCOUNTS = {LOGIN: DeviceAccount(LOGIN, PASSWORD, operator_id=1),
            "op-2": DeviceAccount("op-2", "other", operator_id=2, auto_answer=False)}


async def accounts(login: str) -> DeviceAccount | None:
    return ACCOUNTS.get(login)


def settings(**overrides: Any) -> SipSettings:
    low = free_port()
    base = SipSettings(bind_host="127.0.0.1", bind_port=0, rtp_port_min=low, rtp_port_max=low + 1,
                       device_ping_s=30.0, device_timeout_s=1.0)
    return replace(base, **overrides)


def trunk(port: int, **overrides: Any) -> TrunkConfig:
    return replace(TrunkConfig(id=1, name="sipp", host="127.0.0.1", port=port, options_interval_s=0), **overrides)


def answer_params(**overrides: object) -> dict[str, object]:
    params: dict[str, object] = {
        "answer_ms": 1000, "talk_ms": 10000, "rtp_port": free_port(), "answer_header": "", "record_route": "",
        "contact_hostport": "[local_ip]:[local_port]", "reinvite_regexp": ".*", "ack_regexp": ".*",
        "bye_regexp": ".*", "wait_ms": 60000}
    params.update(overrides)
    return params


def reply_params(code: int, reason: str, **overrides: object) -> dict[str, object]:
    params: dict[str, object] = {"answer_ms": 300, "code": code, "reason": reason, "extra_headers": ""}
    params.update(overrides)
    return params


def phone_params(**overrides: object) -> dict[str, object]:
    params: dict[str, object] = {"invite_regexp": ".*", "ack_regexp": ".*", "talk_ms": 60000,
                                 "rtp_port": free_port()}
    params.update(overrides)
    return params


async def register_phone(driver: SipTelephony, workdir: Path, phone_port: int, login: str = LOGIN,
                         password: str = PASSWORD, *, expires: int = 300, expect: int = 200,
                         path: str = "", tcp: bool = False, ruri_params: str = "") -> Sipp:
    """A SIPp UAC REGISTERs ``login`` with its Contact at ``phone_port``; returns it after it exited.
    ``ruri_params`` (e.g. ``;transport=udp``) end the Request-URI, which SIPp also puts into the digest's uri."""
    host, port = driver.local_address()
    reg = Sipp("phone_register", {"phone_port": phone_port, "expires": expires, "realm": driver.settings.realm,
                                  "expect": expect, "ruri_params": ruri_params,
                                  "path_header": f"Path: {path}\n" if path else ""},
               workdir, remote=f"{host}:{port}",
               extra=["-s", login, "-au", login, "-ap", password, *(["-t", "t1"] if tcp else []),
                      # SIPp's digest uri is the bare host:port unless told
                      *(["-auth_uri", f"{host}:{port}{ruri_params}"] if ruri_params else [])])
    await reg.start()
    code = await reg.wait(10)
    assert code == 0, reg.errors()
    return reg


BEHAVIOURS: dict[str, tuple[str, dict[str, object]]] = {
    "answer": ("carrier_answer", {}),
    "machine": ("carrier_answer", {"answer_header": "X-Answered-By: machine\n"}),
    "busy": ("carrier_reply", reply_params(486, "Busy Here", answer_ms=1000)),
    "reject": ("carrier_reply", reply_params(603, "Decline", answer_ms=1000)),
    "fail": ("carrier_reply", reply_params(503, "Service Unavailable", answer_ms=1000)),
    "ring": ("carrier_ring", {"on_cancel": 487}),
}


class SipHarness:
    """The contract's harness for the SIP driver: SIPp plays the carrier and the operator's phone."""

    endpoint = LOGIN

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.callers: list[Sipp] = []

    @contextlib.asynccontextmanager
    async def driver(self, behaviour: str) -> AsyncIterator[Telephony]:
        template, params = BEHAVIOURS[behaviour]
        if template == "carrier_answer":
            params = answer_params(**params)
        carrier = await Sipp(template, params, self.workdir).start()
        phone = await Sipp("phone_answer", phone_params(), self.workdir).start()
        driver = SipTelephony(settings(hold_audio_dir=str(self.workdir)), [trunk(carrier.port)], accounts)
        await driver.start()
        try:
            await register_phone(driver, self.workdir, phone.port)
            yield driver
            for caller in self.callers:  # each SIPp caller saw what its scenario expects (486, 487, BYE …)
                assert await caller.wait(20) == 0, caller.errors()
        finally:
            await driver.close()
            await stop_all(carrier, phone, *self.callers)

    async def advance(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def call_in(self, driver: Telephony, behaviour: str) -> None:
        """A SIPp caller on the trunk's address (127.0.0.1) calls the driver."""
        assert isinstance(driver, SipTelephony)
        self.callers.append(await start_caller(self.workdir, driver.transport.port, behaviour))


async def start_caller(workdir: Path, port: int, behaviour: str, *, caller: str = "79120000009",
                       dialled: str = "74950000000", local_ip: str = "127.0.0.1", **params: object) -> Sipp:
    """A SIPp customer calling the dialer on ``port``: ``inbound_talk`` (answered, re-INVITEd when connected, hangs up
    after ``talk_ms``; or hung up by the dialer), ``inbound_refused`` (expects ``code``, default 486),
    ``inbound_cancel`` (CANCELs after ``ring_ms``)."""
    base: dict[str, object] = {"caller": caller, "dialled": dialled, "rtp_port": free_port()}
    if behaviour == "inbound_talk":
        template = "caller"
        base.update({"answer_ms": 20000, "wait_ms": 30000, "talk_ms": 3000, "reinvite_regexp": "m=audio "})
    elif behaviour == "inbound_refused":
        template = "caller_refused"
        base.update({"code": 486, "wait_ms": 20000})
    else:
        template = "caller_cancel"
        base.update({"ring_ms": 1000})
    base.update(params)
    return await Sipp(template, base, workdir, remote=f"127.0.0.1:{port}", local_ip=local_ip).start()
