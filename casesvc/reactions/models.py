from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from casesvc.common.db import CreatedMixin, IdMixin, UTCDateTime
from casesvc.extensions import Model


class Reaction(IdMixin, CreatedMixin, Model):
    __tablename__ = "reactions"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), nullable=False)
    type: Mapped[str] = mapped_column(String(30), nullable=False)
    legal_basis: Mapped[str] = mapped_column(String(30), nullable=False)
    police_reference: Mapped[str | None] = mapped_column(String(100))
    starts_on: Mapped[date] = mapped_column(Date, nullable=False)
    ends_on: Mapped[date | None] = mapped_column(Date)
    probation_ends_on: Mapped[date | None] = mapped_column(Date)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="draft")
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_by_agency: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False)

    conditions: Mapped[list[Condition]] = relationship(
        back_populates="reaction", cascade="all, delete-orphan", lazy="selectin", order_by="Condition.position"
    )
    signatures: Mapped[list[Signature]] = relationship(
        back_populates="reaction", cascade="all, delete-orphan", lazy="selectin", order_by="Signature.created_at"
    )

    version: Mapped[int] = mapped_column(Integer, nullable=False)
    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (Index("ix_reactions_case_created", "case_id", "created_at", "id"),)


class Condition(IdMixin, Model):
    __tablename__ = "conditions"

    reaction_id: Mapped[str] = mapped_column(ForeignKey("reactions.id", ondelete="CASCADE"), index=True, nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    kind: Mapped[str] = mapped_column(String(30), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    every_days: Mapped[int | None] = mapped_column(Integer)
    responsible_agency: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False)

    reaction: Mapped[Reaction] = relationship(back_populates="conditions")


class Signature(IdMixin, CreatedMixin, Model):
    __tablename__ = "signatures"

    reaction_id: Mapped[str] = mapped_column(ForeignKey("reactions.id", ondelete="CASCADE"), index=True, nullable=False)
    party: Mapped[str] = mapped_column(String(30), nullable=False)
    signed_on: Mapped[date] = mapped_column(Date, nullable=False)
    recorded_by_agency: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False)

    reaction: Mapped[Reaction] = relationship(back_populates="signatures")
