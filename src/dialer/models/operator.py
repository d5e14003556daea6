"""Skills, operators and operator pools."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Column, ForeignKey, Integer, String, Table, Text
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import Mapped, mapped_column

from dialer.models.base import Base, IdMixin, TimestampMixin, enum_values
from dialer.models.media import RecordOverride

pool_operators = Table(
    "pool_operators",
    Base.metadata,
    Column("pool_id", BigInteger, ForeignKey("operator_pools.id", ondelete="CASCADE"), primary_key=True),
    Column("operator_id", BigInteger, ForeignKey("operators.id", ondelete="CASCADE"), primary_key=True),
)


class Skill(IdMixin, TimestampMixin, Base):
    __tablename__ = "skills"
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")


class Operator(IdMixin, TimestampMixin, Base):
    __tablename__ = "operators"
    name: Mapped[str] = mapped_column(String(300))
    #: The user account the operator logs in with (one operator per user).
    user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL"), nullable=True, unique=True
    )
    extension: Mapped[str | None] = mapped_column(String(64), nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    auto_answer: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Recording of this operator's calls whatever his campaigns say (issue #16 §1): inherit, always, never.
    record_override: Mapped[RecordOverride] = mapped_column(
        SAEnum(RecordOverride, name="record_override", native_enum=False, length=32, values_callable=enum_values,
               validate_strings=True), default=RecordOverride.inherit, server_default=RecordOverride.inherit.value)


class OperatorSkill(Base):
    __tablename__ = "operator_skills"
    operator_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("operators.id", ondelete="CASCADE"), primary_key=True
    )
    skill_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True)
    level: Mapped[int] = mapped_column(Integer)

    __table_args__ = (CheckConstraint("level BETWEEN 1 AND 100", name="level_range"),)


class OperatorPool(IdMixin, TimestampMixin, Base):
    __tablename__ = "operator_pools"
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
