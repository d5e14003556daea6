"""Helpers of the campaign tests: reference data inserted through the ORM, a ready-to-run campaign setup.

Fields, lists and contacts belong to the contact package; these tests insert them directly so
they depend only on the shared data model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from dialer.models import Contact, ContactList, ContactPhone, Field
from dialer.models.enums import FieldType, PhoneType
from tests.conftest import client_for


async def add_field(app: FastAPI, name: str, type: FieldType, *, options: list[str] | None = None,
                    phone_type: PhoneType | None = None) -> int:
    async with app.state.sessionmaker() as session, session.begin():
        field = Field(name=name, type=type, options=options or [], phone_type=phone_type)
        session.add(field)
        await session.flush()
        return field.id


async def add_list(app: FastAPI, name: str) -> int:
    async with app.state.sessionmaker() as session, session.begin():
        contact_list = ContactList(name=name)
        session.add(contact_list)
        await session.flush()
        return contact_list.id


async def add_contact(app: FastAPI, list_id: int, data: dict[str, Any], *, phone: str | None = None,
                      **system: Any) -> int:
    async with app.state.sessionmaker() as session, session.begin():
        contact = Contact(list_id=list_id, data=data, **system)
        session.add(contact)
        await session.flush()
        if phone:
            session.add(ContactPhone(contact_id=contact.id, list_id=list_id, e164=phone, raw=phone))
        return contact.id


@dataclasses.dataclass
class Setup:
    """A runnable configuration: a phone field, a list, a strategy, a code group with a code."""

    phone_field_id: int
    list_id: int
    strategy_id: int
    group_id: int
    code_id: int

    def campaign(self, name: str = "Весна", **overrides: Any) -> dict[str, Any]:
        return {"name": name, "strategy_id": self.strategy_id, "completion_code_group_id": self.group_id,
                "list_ids": [self.list_id], **overrides}


async def make_setup(app: FastAPI, admin: httpx.AsyncClient) -> Setup:
    phone_field_id = await add_field(app, "Телефон", FieldType.phone, phone_type=PhoneType.mobile)
    list_id = await add_list(app, "Заказы")
    code = (await admin.post("/api/completion-codes", json={"name": "Купил", "category": "answered",
                                                            "is_final": True})).json()
    group = (await admin.post("/api/completion-code-groups", json={"name": "Продажи",
                                                                   "code_ids": [code["id"]]})).json()
    r = await admin.post("/api/strategies", json={"name": "Обычная", "phone_field_id": phone_field_id})
    assert r.status_code == 201, r.text
    return Setup(phone_field_id, list_id, r.json()["id"], group["id"], code["id"])


@pytest.fixture
async def setup(app: FastAPI, admin: httpx.AsyncClient) -> Setup:
    return await make_setup(app, admin)


def field_errors(response: httpx.Response) -> dict[str, str]:
    """The problem's errors as {field: reason}."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return {e["field"]: e["reason"] for e in response.json().get("errors", [])}


@pytest.fixture
async def admin(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An administrator's API client that asks for English (``Accept-Language: en``), as integrations do: these
    tests read the reasons of problem details in English (tests/campaign/test_problem_language.py reads Russian)."""
    async with await client_for(app, "admin", roles=("admin",)) as client:
        client.headers["Accept-Language"] = "en"
        yield client


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client without credentials that asks for English."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers={"Accept-Language": "en"}) as client:
        yield client
