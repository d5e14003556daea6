"""Member groups: a named group of other objects, such as completion-code groups and caller-ID groups.

A group row has a ``name`` (unique, required) and a ``description``; its members are rows of an
association table ``(group_id, <member>_id)``. One :class:`MemberGroup` declares such a group and
gives everything the API needs:

- the three schemas ``<Prefix>Create``, ``<Prefix>Update`` and ``<Prefix>Read``, whose member ids
  are one list under ``members_field`` (``code_ids``, ``caller_id_ids``);
- a :class:`~dialer.api.crud.Resource` whose hooks refuse a null name or description on update,
  check that every member exists (422 naming ``members_field`` and the missing ids), replace the
  membership when the payload gives it (duplicates dropped, first occurrence kept; the change
  audited on the group), read the member ids back sorted, and run the domain's refusal before a
  delete (a group campaigns still use).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, create_model
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.api.crud import (
    Hook,
    ReadSchema,
    Resource,
    Schema,
    ensure_all_exist,
    member_ids,
    not_null_hook,
    set_members,
)
from dialer.auth.permissions import P
from dialer.models import Base


@dataclasses.dataclass(frozen=True)
class GroupSchemas:
    create: type[BaseModel]
    update: type[BaseModel]
    read: type[BaseModel]


def group_schemas(prefix: str, members_field: str, *, name_length: int) -> GroupSchemas:
    """``<prefix>Create`` / ``Update`` / ``Read``: name, description and the member ids under ``members_field``."""
    name = Annotated[str, Field(min_length=1, max_length=name_length)]
    create = create_model(
        f"{prefix}Create", __base__=Schema, __module__=__name__,
        name=(name, ...), description=(str, ""), **{members_field: (list[int], [])},  # type: ignore[call-overload]
    )
    update = create_model(
        f"{prefix}Update", __base__=Schema, __module__=__name__,
        name=(name | None, None), description=(str | None, None),  # type: ignore[call-overload]
        **{members_field: (list[int] | None, None)},
    )
    read = create_model(
        f"{prefix}Read", __base__=ReadSchema, __module__=__name__,
        id=(int, ...), name=(str, ...), description=(str, ...),  # type: ignore[call-overload]
        **{members_field: (list[int], ...)}, created_at=(datetime, ...),
    )
    return GroupSchemas(create, update, read)


@dataclasses.dataclass(frozen=True)
class MemberGroup:
    """A named group with members, declared once (see the module's docstring)."""

    #: The group's table (columns ``id``, ``name``, ``description``, ``created_at``).
    model: type[Base]
    #: The members' table; every member id must be a row of it.
    member_model: type[Base]
    #: The association table (``group_column``, ``member_column``).
    members: Table
    member_column: str
    #: The payload and read field holding the member ids.
    members_field: str
    #: Prefix of the schema names (``CodeGroup`` → ``CodeGroupCreate``, ``CodeGroupUpdate``, ``CodeGroupRead``).
    schema_prefix: str
    path: str
    tag: str
    read_perm: P
    write_perm: P
    #: ``(session, group)`` before the group is deleted; raise to refuse.
    before_delete: Hook | None = None
    group_column: str = "group_id"
    schemas: GroupSchemas = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        length = self.model.__table__.columns["name"].type.length  # type: ignore[attr-defined]
        object.__setattr__(self, "schemas", group_schemas(self.schema_prefix, self.members_field, name_length=length))

    async def after_save(self, session: AsyncSession, obj: Any, extra: dict[str, Any]) -> None:
        """Check and write the members the payload gave (a PATCH without them keeps the membership)."""
        ids = extra.get(self.members_field)
        if ids is None:
            return
        await ensure_all_exist(session, self.member_model, ids, self.members_field)
        await set_members(session, self.members, self.group_column, obj.id, self.member_column, ids,
                          otype=self.model.__tablename__)

    async def read_extra(self, session: AsyncSession, obj: Any) -> dict[str, Any]:
        return {self.members_field: await member_ids(session, self.members, self.group_column, obj.id,
                                                     self.member_column)}

    def resource(self) -> Resource:
        """The group's five CRUD endpoints under ``/api/<path>``."""
        return Resource(
            model=self.model, path=self.path, tag=self.tag, read_schema=self.schemas.read,
            create_schema=self.schemas.create, update_schema=self.schemas.update,
            read_perm=self.read_perm, write_perm=self.write_perm,
            search=("name", "description"), sort=("id", "name", "created_at"), extra_fields=(self.members_field,),
            before_update=not_null_hook(self.model), after_save=self.after_save, read_extra=self.read_extra,
            before_delete=self.before_delete,
        )
