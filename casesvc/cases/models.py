from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from casesvc.common.db import CreatedMixin, IdMixin, UTCDateTime
from casesvc.common.timeutil import utcnow
from casesvc.extensions import Model


class Case(IdMixin, CreatedMixin, Model):
    __tablename__ = "cases"

    youth_id: Mapped[str] = mapped_column(ForeignKey("youths.id", ondelete="RESTRICT"), index=True, nullable=False)
    municipality: Mapped[str] = mapped_column(String(4), nullable=False)
    origin: Mapped[str] = mapped_column(String(20), nullable=False)
    summary: Mapped[str | None] = mapped_column(Text)
    lead_agency: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False)
    coordinator: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="open")
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(20))
    status_reason: Mapped[str | None] = mapped_column(Text)
    legal_hold: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)

    participants: Mapped[list[Participant]] = relationship(
        back_populates="case",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="(Participant.added_at, Participant.agency_code)",
    )

    version: Mapped[int] = mapped_column(Integer, nullable=False)
    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_cases_municipality_created", "municipality", "created_at", "id"),
        Index("ix_cases_created", "created_at", "id"),
        # the statistics: a municipality's cases opened in a window (migration 0012)
        Index("ix_cases_municipality_opened", "municipality", "opened_at"),
    )

    @property
    def participant_codes(self) -> list[str]:
        return [p.agency_code for p in self.participants]


class Participant(Model):
    """An agency taking part in a case; the lead agency is always one."""

    __tablename__ = "case_participants"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    case: Mapped[Case] = relationship(back_populates="participants")

    __table_args__ = (
        Index("ix_case_participants_agency", "agency_code", "case_id"),
        # a case's participants in joining order, index-only (migration 0005)
        Index("ix_case_participants_case_order", "case_id", "added_at", "agency_code"),
    )
