"""Emergency accesses and their reviews. The reason and the review's comment are free text: they
live here, retained and deleted with the case (the database cascades), never in the audit chain,
which records only that an access was opened and reviewed, and the finding."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from casesvc.common.db import CreatedMixin, IdMixin, UTCDateTime
from casesvc.extensions import Model


class EmergencyAccess(IdMixin, CreatedMixin, Model):
    """One user's read-only access to one case, from `started_at` until `expires_at`."""

    __tablename__ = "emergency_accesses"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[str] = mapped_column(String(36), nullable=False)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    review: Mapped[EmergencyReview | None] = relationship(
        back_populates="access", cascade="all, delete-orphan", lazy="joined", uselist=False
    )

    __table_args__ = (
        Index("ix_emergency_accesses_case_user", "case_id", "user_id", "expires_at"),
        Index("ix_emergency_accesses_started", "started_at", "id"),
    )

    @property
    def user(self) -> str:
        return self.user_id

    @property
    def agency(self) -> str:
        return self.agency_code

    @property
    def reviewed(self) -> bool:
        return self.review is not None


class EmergencyReview(Model):
    """An auditor's or admin's finding on one emergency access: once."""

    __tablename__ = "emergency_access_reviews"

    access_id: Mapped[str] = mapped_column(ForeignKey("emergency_accesses.id", ondelete="CASCADE"), primary_key=True)
    finding: Mapped[str] = mapped_column(String(12), nullable=False)
    comment: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[str] = mapped_column(String(64), nullable=False)
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    access: Mapped[EmergencyAccess] = relationship(back_populates="review")
