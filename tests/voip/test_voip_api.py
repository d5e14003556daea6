from __future__ import annotations

from datetime import UTC, datetime

import httpx
from fastapi import FastAPI

from dialer.models import SipRegistration, SipTrunkState


async def _audit(admin: httpx.AsyncClient, otype: str, oid: int) -> list[dict]:
    r = await admin.get("/api/audit", params={"object_type": otype, "object_id": oid})
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def test_trunk_crud_never_returns_or_audits_the_password(admin: httpx.AsyncClient, app: FastAPI) -> None:
    r = await admin.post("/api/trunks", json={
        "name": "Основной оператор", "host": "sip.carrier.example", "username": "acc1", "password": "s3cr3t-Pa55",
        "max_concurrent": 120, "calls_per_second": 20, "connect_flow": "delayed_offer", "caller_id": "+74950000000"})
    assert r.status_code == 201, r.text
    trunk = r.json()
    assert "password" not in trunk and trunk["has_password"] is True
    assert trunk["transport"] == "udp" and trunk["port"] == 5060 and trunk["state"] is None
    assert "s3cr3t" not in r.text

    r = await admin.patch(f"/api/trunks/{trunk['id']}", json={"password": "other-secret", "port": 5080})
    assert r.status_code == 200 and r.json()["port"] == 5080 and "other-secret" not in r.text
    entries = await _audit(admin, "sip_trunks", trunk["id"])
    text = str(entries)
    assert entries and "s3cr3t" not in text and "other-secret" not in text

    r = await admin.patch(f"/api/trunks/{trunk['id']}", json={"password": None})
    assert r.json()["has_password"] is False

    async with app.state.sessionmaker() as s, s.begin():
        s.add(SipTrunkState(trunk_id=trunk["id"], up=False, detail="no answer to OPTIONS"))
    state = (await admin.get(f"/api/trunks/{trunk['id']}")).json()["state"]
    assert state["up"] is False and state["detail"] == "no answer to OPTIONS"

    listed = (await admin.get("/api/trunks", params={"q": "carrier"})).json()
    assert listed["total"] == 1 and "password" not in listed["items"][0]


async def test_trunk_validation_names_the_field(admin: httpx.AsyncClient) -> None:
    bad = [({"name": "t", "host": "sip://x y"}, "host"), ({"name": "t", "host": "h", "transport": "sctp"}, "transport"),
           ({"name": "t", "host": "h", "port": 70000}, "port"),
           ({"name": "t", "host": "h", "connect_flow": "magic"}, "connect_flow"),
           ({"name": "t", "host": "h", "caller_id": "abc"}, "caller_id"),
           ({"name": "t", "host": "h", "max_concurrent": -1}, "max_concurrent"),
           ({"name": "t", "host": "h", "registration": True, "username": "acct"}, "registration"),
           ({"name": "t", "host": "h", "registration_expires_s": 10}, "registration_expires_s")]
    for body, field in bad:
        r = await admin.post("/api/trunks", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["errors"][0]["field"] == field, r.json()
    assert (await admin.get("/api/trunks")).json()["total"] == 0


async def test_devices_bind_one_operator_and_show_registration(admin: httpx.AsyncClient, app: FastAPI) -> None:
    op = (await admin.post("/api/operators", json={"name": "Иванова"})).json()
    r = await admin.post("/api/sip-devices", json={"login": "op101", "password": "short"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "password"
    r = await admin.post("/api/sip-devices", json={"login": "op 101", "password": "long-enough-1"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "login"
    r = await admin.post("/api/sip-devices", json={"login": "op101", "password": "long-enough-1",
                                                   "operator_id": op["id"]})
    assert r.status_code == 201, r.text
    dev = r.json()
    assert "password" not in dev and dev["registration"] is None and dev["operator_id"] == op["id"]

    r = await admin.post("/api/sip-devices", json={"login": "op101", "password": "long-enough-1"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "login"
    r = await admin.post("/api/sip-devices", json={"login": "op102", "password": "long-enough-1",
                                                   "operator_id": op["id"]})
    assert r.status_code == 409 and "op101" in r.json()["detail"]
    r = await admin.post("/api/sip-devices", json={"login": "op103", "password": "long-enough-1",
                                                   "operator_id": 999999})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "operator_id"
    r = await admin.patch(f"/api/sip-devices/{dev['id']}", json={"password": None})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "password"

    async with app.state.sessionmaker() as s, s.begin():
        s.add(SipRegistration(login="op101", online=True, reachable=True, contact="sip:op101@127.0.0.1:5070",
                              source="127.0.0.1:5070", user_agent="MicroSIP/3.21",
                              expires_at=datetime(2030, 1, 1, tzinfo=UTC), detail=""))
    reg = (await admin.get(f"/api/sip-devices/{dev['id']}")).json()["registration"]
    assert reg["online"] and reg["user_agent"] == "MicroSIP/3.21" and reg["source"] == "127.0.0.1:5070"
    assert (await admin.get("/api/sip-devices", params={"operator_id": op["id"]})).json()["total"] == 1
    assert "long-enough-1" not in str(await _audit(admin, "sip_devices", dev["id"]))


async def test_trunk_registration_needs_an_account_and_reaches_the_driver(admin: httpx.AsyncClient,
                                                                          app: FastAPI) -> None:
    from dialer.voip.runtime import load_trunks

    r = await admin.post("/api/trunks", json={"name": "Zadarma", "host": "sip.zadarma.com", "username": "12345",
                                              "password": "secret-1", "registration": True,
                                              "registration_expires_s": 120})
    assert r.status_code == 201, r.text
    trunk = r.json()
    assert (trunk["registration"], trunk["registration_expires_s"]) == (True, 120)
    # Taking the password away while the trunk registers is refused; so is registering without a user name.
    r = await admin.patch(f"/api/trunks/{trunk['id']}", json={"password": None})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "registration"
    r = await admin.patch(f"/api/trunks/{trunk['id']}", json={"registration": False, "password": None})
    assert r.status_code == 200
    async with app.state.sessionmaker() as session:
        [config] = await load_trunks(session)
    assert (config.registration, config.registration_expires_s, config.password) == (False, 120, None)


async def test_device_digest_algorithms_reach_the_registrar_in_rfc_8760_order(admin: httpx.AsyncClient,
                                                                             app: FastAPI) -> None:
    from dialer.voip.runtime import account_lookup

    r = await admin.post("/api/sip-devices", json={"login": "bs1", "password": "long-enough-1"})
    assert r.status_code == 201 and r.json()["digest_algorithms"] is None  # the driver's default
    dev = r.json()
    r = await admin.patch(f"/api/sip-devices/{dev['id']}", json={"digest_algorithms": ["MD5", "SHA-256"]})
    assert r.status_code == 200 and r.json()["digest_algorithms"] == ["SHA-256", "MD5"]  # RFC 8760's order
    for bad in (["MD5", "MD5"], [], ["SHA-512-256"]):
        r = await admin.patch(f"/api/sip-devices/{dev['id']}", json={"digest_algorithms": bad})
        assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("digest_algorithms"), r.text
    r = await admin.patch(f"/api/sip-devices/{dev['id']}", json={"digest_algorithms": ["MD5"]})
    assert r.json()["digest_algorithms"] == ["MD5"]
    account = await account_lookup(app.state.sessionmaker)("bs1")
    assert account is not None and account.digest_algorithms == ("MD5",)
    assert any("digest_algorithms" in str(e) for e in await _audit(admin, "sip_devices", dev["id"]))
    r = await admin.patch(f"/api/sip-devices/{dev['id']}", json={"digest_algorithms": None})
    assert r.json()["digest_algorithms"] is None
    account = await account_lookup(app.state.sessionmaker)("bs1")
    assert account is not None and account.digest_algorithms is None


async def test_trunk_tls_and_dns_lookup_fields(admin: httpx.AsyncClient, app: FastAPI) -> None:
    from dialer.voip.runtime import load_trunks

    r = await admin.post("/api/trunks", json={"name": "tls", "host": "sip.carrier.example", "port": 5061,
                                              "transport": "tls", "tls_verify": False, "dns_lookup": "naptr"})
    assert r.status_code == 201, r.text
    assert (r.json()["transport"], r.json()["tls_verify"], r.json()["dns_lookup"]) == ("tls", False, "naptr")
    r = await admin.post("/api/trunks", json={"name": "t2", "host": "h", "dns_lookup": "mx"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "dns_lookup"
    async with app.state.sessionmaker() as session:
        [config] = await load_trunks(session)
    assert (config.transport, config.tls_verify, config.dns_lookup) == ("tls", False, "naptr")
