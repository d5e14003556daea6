"""Generic list / read / create / update / delete endpoints for configuration entities.

Each entity declares a :class:`Resource`: its model, schemas, the two permissions, which columns
can be searched and sorted, and optional hooks for what is special about it (members of a group,
refusing to delete a system object). Lists page, sort and search the same way everywhere
(000 §15): ``?page=1&per_page=50&sort=-name,id&q=text`` plus exact filters declared per entity.
The checks hooks share (references exist, required columns stay set) are here too; a named group
with members is declared once with :class:`dialer.api.groups.MemberGroup`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Select, String, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from dialer.api.deps import Session, require
from dialer.auth.permissions import P
from dialer.exceptions import NotFound, ValidationFailed
from dialer.models import Base

T = TypeVar("T")
MAX_PER_PAGE = 1000
#: Largest request body the configuration endpoints read (413 beyond): JSON objects, not file uploads.
MAX_JSON_BODY = 2 * 1024 * 1024
#: List path → its sortable columns, filled by :func:`crud_router` (the OpenAPI schema declares them).
SORTABLE: dict[str, tuple[str, ...]] = {}


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    per_page: int


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid", str_strip_whitespace=True)


class ReadSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


@dataclasses.dataclass
class ListParams:
    page: int
    per_page: int
    sort: str | None
    q: str | None


def list_params(
    page: int = Query(1, ge=1, description="Page number, from 1"),
    per_page: int = Query(50, ge=1, le=MAX_PER_PAGE, description="Items per page"),
    sort: str | None = Query(None, description="Comma-separated columns, '-' for descending: -created_at,name"),
    q: str | None = Query(None, description="Case-insensitive search in the entity's text columns"),
) -> ListParams:
    return ListParams(page, per_page, sort, q)


def apply_sort(stmt: Select[Any], sort: str | None, allowed: dict[str, Any], default: Sequence[Any]) -> Select[Any]:
    if not sort:
        return stmt.order_by(*default)
    order = []
    for raw in sort.split(","):
        key = raw.strip()
        desc = key.startswith("-")
        key = key.lstrip("-+")
        if key not in allowed:
            raise ValidationFailed.field("sort", f"cannot sort by '{key}'; allowed: {', '.join(sorted(allowed))}")
        col = allowed[key]
        order.append(col.desc().nulls_last() if desc else col.asc().nulls_last())
    return stmt.order_by(*order, *default)


def apply_search(stmt: Select[Any], q: str | None, columns: Sequence[Any]) -> Select[Any]:
    if not q or not columns:
        return stmt
    pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return stmt.where(or_(*(cast(c, String).ilike(pattern) for c in columns)))


async def paginate(session: AsyncSession, stmt: Select[Any], params: ListParams) -> tuple[list[Any], int]:
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = (await session.scalars(stmt.limit(params.per_page).offset((params.page - 1) * params.per_page))).all()
    return list(rows), int(total or 0)


Hook = Callable[..., Awaitable[Any]]


@dataclasses.dataclass
class Resource:
    model: type[Base]
    path: str
    tag: str
    read_schema: type[BaseModel]
    create_schema: type[BaseModel]
    update_schema: type[BaseModel]
    read_perm: P
    write_perm: P
    search: Sequence[str] = ("name",)
    sort: Sequence[str] = ("id", "name")
    filters: Sequence[str] = ()
    #: Fields of the create/update schema that are not columns (member ids ...), handled by hooks.
    extra_fields: Sequence[str] = ()
    #: (session, data) -> data, before a new object is built.
    before_create: Hook | None = None
    #: (session, obj, extra) after the object got its id.
    after_save: Hook | None = None
    #: (session, obj, data) -> data, before changes are applied.
    before_update: Hook | None = None
    #: (session, obj) before the object is deleted; raise to refuse.
    before_delete: Hook | None = None
    #: (session, obj) after the deletion was flushed; raise to refuse (the request is rolled back).
    after_delete: Hook | None = None
    #: (session, obj) -> dict of additional read fields (member ids ...).
    read_extra: Hook | None = None
    #: (stmt, request) -> stmt: more list filtering.
    list_filter: Callable[[Select[Any], Request], Select[Any]] | None = None
    #: How error messages name one object ("strategy 5 does not exist"); derived from the table by default.
    label: str | None = None
    #: Hide the default endpoints that the domain replaces ("create", "update", "delete").
    skip: Sequence[str] = ()

    def column(self, name: str) -> InstrumentedAttribute[Any]:
        return getattr(self.model, name)


def singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith(("ses", "xes")):
        return name[:-2]
    return name.removesuffix("s")


async def load(session: AsyncSession, model: type[Base], obj_id: int, what: str | None = None) -> Any:
    obj = await session.get(model, obj_id)
    if obj is None:
        raise NotFound(f"{what or model.__tablename__} {obj_id} does not exist")
    return obj


async def missing_ids(session: AsyncSession, model: type[Base], ids: Iterable[int]) -> list[int]:
    """The ids among ``ids`` that have no row in ``model``'s table."""
    wanted = set(ids)
    if not wanted:
        return []
    column: Any = model.id  # type: ignore[attr-defined]
    found = set((await session.scalars(select(column).where(column.in_(wanted)))).all())
    return sorted(wanted - found)


def model_label(model: type[Base]) -> str:
    """``CompletionCodeGroup`` → "completion code group" (for messages)."""
    words = "".join(f" {ch.lower()}" if ch.isupper() else ch for ch in model.__name__).strip()
    return re.sub(r"\bid\b", "ID", words)


async def ensure_exists(session: AsyncSession, model: type[Base], obj_id: int | None, field: str) -> None:
    """422 naming ``field`` when ``obj_id`` (if given) has no row in ``model``'s table."""
    if obj_id is not None and await missing_ids(session, model, [obj_id]):
        raise ValidationFailed.field(field, f"{model_label(model)} {obj_id} does not exist")


async def ensure_all_exist(session: AsyncSession, model: type[Base], ids: Sequence[int], field: str) -> None:
    """422 naming ``field`` and every id of ``ids`` that has no row in ``model``'s table."""
    if missing := await missing_ids(session, model, ids):
        raise ValidationFailed.field(field, f"{model_label(model)} {', '.join(map(str, missing))} "
                                            f"{'does' if len(missing) == 1 else 'do'} not exist")


def reject_nulls(model: type[Base], data: Mapping[str, Any]) -> None:
    """A PATCH may clear optional columns, never required ones."""
    columns = model.__table__.columns
    for key, value in data.items():
        if value is None and key in columns and not columns[key].nullable:
            raise ValidationFailed.field(key, "must not be null")


def not_null_hook(model: type[Base]) -> Hook:
    """A ``before_update`` hook that only refuses nulls for required columns."""

    async def hook(session: AsyncSession, obj: Base, data: dict[str, Any]) -> dict[str, Any]:
        reject_nulls(model, data)
        return data

    return hook


async def to_read(resource: Resource, session: AsyncSession, obj: Any) -> Any:
    if resource.read_extra is None:
        return resource.read_schema.model_validate(obj)
    base = {c.key: getattr(obj, c.key) for c in obj.__table__.columns}
    base.update(await resource.read_extra(session, obj))
    return resource.read_schema.model_validate(base)


def crud_router(resource: Resource) -> APIRouter:
    """Build the five standard endpoints of one entity."""
    r = resource
    router = APIRouter(prefix=f"/api/{r.path}", tags=[r.tag], max_body_size=MAX_JSON_BODY)
    read_dep = Depends(require(r.read_perm))
    write_dep = Depends(require(r.write_perm))
    sort_cols = {name: r.column(name) for name in r.sort}
    SORTABLE[f"/api/{r.path}"] = tuple(sorted(sort_cols))
    search_cols = [r.column(name) for name in r.search]
    label = r.label or singular(r.model.__tablename__).replace("_", " ")

    async def list_items(request: Request, session: Session, params: ListParams = Depends(list_params),
                         _: Any = read_dep) -> Any:
        stmt: Select[Any] = select(r.model)
        for name in r.filters:
            if name in request.query_params:
                col = r.column(name)
                value: Any = request.query_params[name]
                python_type = col.type.python_type
                try:
                    value = (value.lower() in ("1", "true", "yes")) if python_type is bool else python_type(value)
                except (TypeError, ValueError):
                    raise ValidationFailed.field(name, f"'{value}' is not a valid {python_type.__name__}")
                stmt = stmt.where(col == value)
        if r.list_filter:
            stmt = r.list_filter(stmt, request)
        stmt = apply_search(stmt, params.q, search_cols)
        stmt = apply_sort(stmt, params.sort, sort_cols, [r.column("id")] if hasattr(r.model, "id") else [])
        items, total = await paginate(session, stmt, params)
        return {"items": [await to_read(r, session, i) for i in items], "total": total,
                "page": params.page, "per_page": params.per_page}

    async def get_item(item_id: int, session: Session, _: Any = read_dep) -> Any:
        return await to_read(r, session, await load(session, r.model, item_id, label))

    async def create_item(payload: BaseModel, session: Session, response: Response, _: Any = write_dep) -> Any:
        data = payload.model_dump()
        extra = {k: data.pop(k) for k in r.extra_fields if k in data}
        if r.before_create:
            data = await r.before_create(session, data)
        obj = r.model(**data)
        session.add(obj)
        await session.flush()
        if r.after_save:
            await r.after_save(session, obj, extra)
        await session.refresh(obj)
        response.status_code = 201
        return await to_read(r, session, obj)

    async def update_item(item_id: int, payload: BaseModel, session: Session, _: Any = write_dep) -> Any:
        obj = await load(session, r.model, item_id, label)
        data = payload.model_dump(exclude_unset=True)
        extra = {k: data.pop(k) for k in r.extra_fields if k in data}
        if r.before_update:
            data = await r.before_update(session, obj, data)
        for key, value in data.items():
            setattr(obj, key, value)
        await session.flush()
        if r.after_save:
            await r.after_save(session, obj, extra)
        await session.refresh(obj)
        return await to_read(r, session, obj)

    async def delete_item(item_id: int, session: Session, _: Any = write_dep) -> Response:
        obj = await load(session, r.model, item_id, label)
        if r.before_delete:
            await r.before_delete(session, obj)
        await session.delete(obj)
        await session.flush()
        if r.after_delete:
            await r.after_delete(session, obj)
        return Response(status_code=204)

    # Annotations are strings under postponed evaluation; the payload types are per resource.
    create_item.__annotations__["payload"] = r.create_schema
    update_item.__annotations__["payload"] = r.update_schema
    name = r.path.replace("/", "_").replace("-", "_")
    router.add_api_route("", list_items, methods=["GET"], response_model=Page[r.read_schema],  # type: ignore[name-defined]
                         summary=f"List {r.tag}", name=f"{name}_list")
    router.add_api_route("/{item_id}", get_item, methods=["GET"], response_model=r.read_schema,
                         summary=f"Get one of {r.tag}", name=f"{name}_get")
    if "create" not in r.skip:
        router.add_api_route("", create_item, methods=["POST"], response_model=r.read_schema, status_code=201,
                             summary=f"Create one of {r.tag}", name=f"{name}_create")
    if "update" not in r.skip:
        router.add_api_route("/{item_id}", update_item, methods=["PATCH"], response_model=r.read_schema,
                             summary=f"Change one of {r.tag}", name=f"{name}_update")
    if "delete" not in r.skip:
        router.add_api_route("/{item_id}", delete_item, methods=["DELETE"], status_code=204,
                             summary=f"Delete one of {r.tag}", name=f"{name}_delete")
    return router


async def set_members(session: AsyncSession, table: Any, owner_col: str, owner_id: int, member_col: str,
                      member_ids: Sequence[int] | None, *, otype: str) -> None:
    """Replace the members of a many-to-many association and audit the difference."""
    from sqlalchemy import delete, insert

    from dialer.audit.recorder import log
    from dialer.models.enums import AuditAction

    if member_ids is None:
        return
    wanted = list(dict.fromkeys(member_ids))
    current = set((await session.scalars(
        select(table.c[member_col]).where(table.c[owner_col] == owner_id))).all())
    if set(wanted) == current:
        return
    await session.execute(delete(table).where(table.c[owner_col] == owner_id))
    if wanted:
        await session.execute(insert(table), [{owner_col: owner_id, member_col: m} for m in wanted])
    await log(session, AuditAction.updated, otype, owner_id,
              changes={member_col + "s": {"old": sorted(current), "new": sorted(wanted)}})


async def member_ids(session: AsyncSession, table: Any, owner_col: str, owner_id: int, member_col: str) -> list[int]:
    return sorted((await session.scalars(select(table.c[member_col]).where(table.c[owner_col] == owner_id))).all())
