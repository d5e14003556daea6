"""Transfers: the stages of an attempt at which its customer went from one operator to another (issue #12 §2).

An attempt keeps one row whatever happens to its customer; each transfer — ordered from the operator panel, by a
supervisor from the floor, by the operator's own phone (SIP REFER), or the engine's rescue of a customer whose
operator's phone died — is one ``call_transfers`` row: who, to whom, which kind, when, and how it ended. The call
card's timeline and the reports read them (``attempt_id`` joins ``attempts``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dialer.models.base import Base, IdMixin

#: ``call_transfers.kind``: to an operator (blind), to a pool's or a skill's operators (queued), to an external
#: number, attended (after a consultation), and the engine's rescue of a customer whose operator's phone died.
TRANSFER_KINDS = ("operator", "pool", "skill", "external", "attended", "rescue")
#: ``call_transfers.source``: who ordered it.
TRANSFER_SOURCES = ("panel", "supervisor", "phone", "engine")
#: ``call_transfers.result``: ``pending`` until it ends; ``connected`` (the target took the customer), ``failed``
#: (the target did not: the customer waits for any operator), ``cancelled`` (a consultation called off),
#: ``refused`` (not carried out: no such target, not allowed), ``abandoned`` (the customer hung up first),
#: ``callback`` (nobody took him within the limit: message and callback).
TRANSFER_RESULTS = ("pending", "connected", "failed", "cancelled", "refused", "abandoned", "callback")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class CallTransfer(IdMixin, Base):
    """One transfer of an attempt's customer (see the module docstring)."""

    __tablename__ = "call_transfers"
    attempt_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("attempts.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    from_operator_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("operators.id", ondelete="SET NULL"), nullable=True)
    to_operator_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("operators.id", ondelete="SET NULL"), nullable=True)
    to_pool_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("operator_pools.id", ondelete="SET NULL"), nullable=True)
    to_skill_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("skills.id", ondelete="SET NULL"), nullable=True)
    to_number: Mapped[str | None] = mapped_column(String(20), nullable=True)
    #: The user who ordered it (panel, floor); None for a phone's REFER and the engine's rescue.
    requested_by: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    #: The transferring operator's note for the next one (shown on the receiving operator's card).
    comment: Mapped[str] = mapped_column(Text, default="", server_default="")
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: When the target took the customer (the new connection).
    connected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    result: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    detail: Mapped[str] = mapped_column(Text, default="", server_default="")

    __table_args__ = (
        CheckConstraint(_in("kind", TRANSFER_KINDS), name="kind"),
        CheckConstraint(_in("source", TRANSFER_SOURCES), name="source"),
        CheckConstraint(_in("result", TRANSFER_RESULTS), name="result"),
        Index("ix_call_transfers_attempt", "attempt_id"),
        Index("ix_call_transfers_requested", "requested_at"),
    )
