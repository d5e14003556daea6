"""REST API of SIP trunks and operators' SIP devices (permissions ``telephony.read`` / ``telephony.write``).

Passwords are accepted, never returned; the audit log records that they changed, not their values.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.api.crud import Resource, crud_router
from dialer.auth.permissions import P
from dialer.exceptions import Conflict, ValidationFailed
from dialer.models import Operator, SipDevice, SipRegistration, SipTrunk, SipTrunkState
from dialer.voip.schemas import DeviceCreate, DeviceRead, DeviceUpdate, TrunkCreate, TrunkRead, TrunkUpdate


async def _trunk_read_extra(session: AsyncSession, obj: SipTrunk) -> dict[str, Any]:
    state = await session.get(SipTrunkState, obj.id)
    return {"has_password": bool(obj.password),
            "state": None if state is None else
            {"up": state.up, "changed_at": state.changed_at, "detail": state.detail}}


def _check_registration(merged: dict[str, Any]) -> None:
    """A trunk that registers with its carrier needs the account to register with."""
    if merged.get("registration") and not (merged.get("username") and merged.get("password")):
        raise ValidationFailed.field("registration", "registering with the carrier needs a username and a password")


async def _trunk_before_create(session: AsyncSession, data: dict[str, Any]) -> dict[str, Any]:
    _check_registration(data)
    return data


async def _trunk_before_update(session: AsyncSession, obj: SipTrunk, data: dict[str, Any]) -> dict[str, Any]:
    _check_registration({"registration": obj.registration, "username": obj.username, "password": obj.password, **data})
    return data


trunks = Resource(
    model=SipTrunk, path="trunks", tag="trunks", read_schema=TrunkRead, create_schema=TrunkCreate,
    update_schema=TrunkUpdate, read_perm=P.telephony_read, write_perm=P.telephony_write,
    search=("name", "host", "description"), sort=("id", "name", "host", "position", "created_at"),
    filters=("is_active",), read_extra=_trunk_read_extra, before_create=_trunk_before_create,
    before_update=_trunk_before_update,
)


async def _check_operator(session: AsyncSession, data: dict[str, Any], device_id: int | None) -> None:
    operator_id = data.get("operator_id")
    if operator_id is None:
        return
    if await session.get(Operator, operator_id) is None:
        raise ValidationFailed.field("operator_id", f"operator {operator_id} does not exist")
    other = await session.scalar(select(SipDevice.login).where(SipDevice.operator_id == operator_id,
                                                               SipDevice.id != (device_id or 0)))
    if other is not None:
        raise Conflict(f"operator {operator_id} already has the SIP device '{other}'")


async def _check_login(session: AsyncSession, data: dict[str, Any], device_id: int | None) -> None:
    login = data.get("login")
    if login is None:
        return
    if await session.scalar(select(SipDevice.id).where(SipDevice.login == login,
                                                       SipDevice.id != (device_id or 0))) is not None:
        raise ValidationFailed.field("login", f"the login '{login}' is taken by another device")


async def _check_phone_clash(session: AsyncSession, login: str | None, operator_id: int | None) -> None:
    """A device of one operator may not carry the login another operator has as his extension: the engine
    sends each operator's calls to his device's login or else his extension, so both would ring one phone."""
    if login is None or operator_id is None:
        return  # a device of nobody may well be the phone an operator's extension names
    other = (await session.execute(select(Operator.id, Operator.name).where(
        Operator.extension == login, Operator.id != operator_id).limit(1))).first()
    if other is not None:
        raise Conflict(f"login: '{login}' is the extension of operator '{other.name}' (id {other.id}); as the "
                       f"device of operator {operator_id} it would make both operators' calls ring one phone",
                       errors=[{"field": "login", "reason": f"the extension of operator {other.id}"}])


def _store_algorithms(data: dict[str, Any]) -> dict[str, Any]:
    """The API's list of digest algorithms (already in RFC 8760's order) as the column's text."""
    if data.get("digest_algorithms") is not None:
        data["digest_algorithms"] = ",".join(data["digest_algorithms"])
    return data


async def _device_before_create(session: AsyncSession, data: dict[str, Any]) -> dict[str, Any]:
    _store_algorithms(data)
    await _check_login(session, data, None)
    await _check_operator(session, data, None)
    await _check_phone_clash(session, data.get("login"), data.get("operator_id"))
    return data


async def _device_before_update(session: AsyncSession, obj: SipDevice, data: dict[str, Any]) -> dict[str, Any]:
    if "password" in data and data["password"] is None:
        raise ValidationFailed.field("password", "a SIP device needs a password; send a new one or leave it out")
    _store_algorithms(data)
    await _check_login(session, data, obj.id)
    await _check_operator(session, data, obj.id)
    await _check_phone_clash(session, data.get("login", obj.login), data.get("operator_id", obj.operator_id))
    return data


async def _device_read_extra(session: AsyncSession, obj: SipDevice) -> dict[str, Any]:
    reg = await session.get(SipRegistration, obj.login)
    return {"digest_algorithms": obj.digest_algorithms.split(",") if obj.digest_algorithms else None,
            "registration": None if reg is None else {
        "online": reg.online, "reachable": reg.reachable, "contact": reg.contact, "source": reg.source,
        "user_agent": reg.user_agent, "expires_at": reg.expires_at, "changed_at": reg.changed_at,
        "detail": reg.detail}}


devices = Resource(
    model=SipDevice, path="sip-devices", tag="sip devices", read_schema=DeviceRead, create_schema=DeviceCreate,
    update_schema=DeviceUpdate, read_perm=P.telephony_read, write_perm=P.telephony_write,
    search=("login", "description"), sort=("id", "login", "created_at", "is_active"),
    filters=("is_active", "operator_id"), before_create=_device_before_create,
    before_update=_device_before_update, read_extra=_device_read_extra, label="SIP device",
)

routers = [crud_router(trunks), crud_router(devices)]
