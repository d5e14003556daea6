"""rtpengine as the product runs it: audio relayed both ways through the anchor, a recorded call's capture spooled
with its sidecar, the process restarted after kill -9, and captures a crash left behind spooled afterwards."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

from dialer.media.rtpengine import RtpEngineAnchor, RtpEngineProcess
from dialer.telephony.sip.anchor import CUSTOMER_TAG, DIALER_TAG
from dialer.telephony.sip.sdp import audio_media
from tests.media.rtpengine_support import RtpEndpoint, exchange, port_range, read_pcap, running_rtpengine, sdp

CUSTOMER_FILL, DIALER_FILL = 0x11, 0x22


async def anchored_call(anchor: RtpEngineAnchor, call_id: str, *, record: bool
                        ) -> tuple[RtpEndpoint, tuple[str, int], RtpEndpoint, tuple[str, int]]:
    """The driver's 3PCC order: our offer to the carrier through the relay, the carrier's answer back. Returns the
    dialer's endpoint and where it sends, the customer's endpoint and where it sends."""
    dialer = await RtpEndpoint.open(DIALER_FILL)
    customer = await RtpEndpoint.open(CUSTOMER_FILL)
    to_customer = await anchor.offer(call_id, sdp(dialer.port), from_tag=DIALER_TAG, to_tag=None)
    if record:
        await anchor.start_recording(call_id)
    to_dialer = await anchor.answer(call_id, sdp(customer.port), from_tag=DIALER_TAG, to_tag=CUSTOMER_TAG)
    customer_media, dialer_media = audio_media(to_customer), audio_media(to_dialer)
    assert customer_media is not None and dialer_media is not None
    assert customer_media.port not in (dialer.port, customer.port)  # the relay, not the peer
    return (dialer, (dialer_media.host, dialer_media.port), customer, (customer_media.host, customer_media.port))


def spooled(recordings: Path) -> list[tuple[dict[str, object], Path]]:
    spool = recordings / "spool"
    return [(json.loads(p.read_text()), p.with_suffix(".pcap")) for p in sorted(spool.glob("*.json"))]


async def test_audio_relayed_both_ways_and_the_recording_spooled(tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    async with running_rtpengine(recordings / "rtpengine") as engine:
        anchor = RtpEngineAnchor(engine, recordings)
        plain = await anchored_call(anchor, "plain-1", record=False)
        dialer, dialer_to, customer, customer_to = await anchored_call(anchor, "rec/1 ü", record=True)
        try:
            await asyncio.gather(exchange(dialer, dialer_to, customer, customer_to, 50),
                                 exchange(plain[0], plain[1], plain[2], plain[3], 50))
            assert customer.payloads_from(DIALER_FILL) == 50 and dialer.payloads_from(CUSTOMER_FILL) == 50
            assert plain[2].payloads_from(DIALER_FILL) == 50 and plain[0].payloads_from(CUSTOMER_FILL) == 50
            await anchor.delete("plain-1")
            assert spooled(recordings) == []  # not recorded: nothing spooled
            await anchor.delete("rec/1 ü")
        finally:
            for endpoint in (dialer, customer, plain[0], plain[2]):
                endpoint.close()
    [(sidecar, pcap)] = spooled(recordings)
    assert pcap.exists() and pcap.name.endswith("-rec_1__.pcap")
    assert sidecar["call_id"] == "rec/1 ü" and sidecar["recovered"] is False
    assert str(sidecar["started_at"]) <= str(sidecar["ended_at"])
    cust, dial = sidecar["customer"], sidecar["dialer"]
    assert isinstance(cust, dict) and isinstance(dial, dict)
    assert (cust["host"], cust["port"]) == ("127.0.0.1", customer.port)
    assert (dial["host"], dial["port"]) == ("127.0.0.1", dialer.port)
    assert cust["relay_port"] == customer_to[1] and dial["relay_port"] == dialer_to[1]
    packets = read_pcap(pcap)
    by_destination = {port: [p for (_, (_, dst), p) in packets if dst == port]
                      for port in (cust["relay_port"], dial["relay_port"])}
    # both directions, each told apart by the relay port it arrived on, as the module docstring promises
    assert len(by_destination[cust["relay_port"]]) == 50
    assert all(p[12] == CUSTOMER_FILL for p in by_destination[cust["relay_port"]])
    assert len(by_destination[dial["relay_port"]]) == 50
    assert all(p[12] == DIALER_FILL for p in by_destination[dial["relay_port"]])
    assert not list((recordings / "rtpengine" / "pcaps").iterdir())


async def test_restarted_after_kill_9_and_the_lost_calls_capture_spooled(tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    async with running_rtpengine(recordings / "rtpengine") as engine:
        anchor = RtpEngineAnchor(engine, recordings)
        lost: list[str] = []

        async def on_lost(call_ids: list[str]) -> None:
            lost.extend(call_ids)

        anchor.on_lost = on_lost
        dialer, dialer_to, customer, customer_to = await anchored_call(anchor, "lost-1", record=True)
        try:
            await exchange(dialer, dialer_to, customer, customer_to, 20)
            first = engine.pid
            assert first is not None
            os.kill(first, signal.SIGKILL)
            for _ in range(500):
                if engine.restarts == 1 and engine.pid not in (None, first) and spooled(recordings) and lost:
                    break
                await asyncio.sleep(0.02)
            assert engine.restarts == 1 and engine.pid not in (None, first)
            await engine.client.ping()
            assert lost == ["lost-1"]  # told, so that the driver ends the call
            [(sidecar, pcap)] = spooled(recordings)
            assert sidecar["call_id"] == "lost-1" and sidecar["recovered"] is True
            assert len(read_pcap(pcap)) > 0  # what was written before the crash, cut at a whole packet
            await anchor.delete("lost-1")  # the driver's clean-up of the lost call is harmless
            # the restarted rtpengine relays new calls
            again = await anchored_call(anchor, "after-restart", record=False)
            await exchange(again[0], again[1], again[2], again[3], 10)
            assert again[2].payloads_from(DIALER_FILL) == 10 and again[0].payloads_from(CUSTOMER_FILL) == 10
            for endpoint in (again[0], again[2]):
                endpoint.close()
        finally:
            dialer.close()
            customer.close()


async def test_captures_of_a_crashed_run_spooled_at_the_next_start(tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    low, high = port_range()
    first = RtpEngineProcess(interface="127.0.0.1", ng_port=port_range()[0] + 300, port_min=low, port_max=high,
                             recording_dir=recordings / "rtpengine")
    anchor = RtpEngineAnchor(first, recordings)
    await anchor.start()
    dialer, dialer_to, customer, customer_to = await anchored_call(anchor, "crashed-1", record=True)
    try:
        await exchange(dialer, dialer_to, customer, customer_to, 20)
    finally:
        dialer.close()
        customer.close()
    await first.stop()  # the product went away with the call still up: rtpengine's capture is left unfinished
    assert spooled(recordings) == []
    second = RtpEngineProcess(interface="127.0.0.1", ng_port=first.ng_port, port_min=low, port_max=high,
                              recording_dir=recordings / "rtpengine")
    later = RtpEngineAnchor(second, recordings)
    await later.start()
    try:
        [(sidecar, pcap)] = spooled(recordings)
        assert sidecar["call_id"] == "crashed-1" and sidecar["recovered"] is True
        cust = sidecar["customer"]
        assert isinstance(cust, dict) and cust["relay_port"] == customer_to[1] and cust["port"] == customer.port
        assert {dst for (_, (_, dst), _) in read_pcap(pcap)} <= {customer_to[1], dialer_to[1]}
        assert not list((recordings / "rtpengine" / "dialer-calls").glob("*.json"))
    finally:
        await later.stop()
