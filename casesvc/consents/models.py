from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from casesvc.common.db import CreatedMixin, IdMixin, UTCDateTime
from casesvc.common.timeutil import oslo_today
from casesvc.extensions import Model


class Consent(IdMixin, CreatedMixin, Model):
    """Consent to share between agencies: purpose, categories, which agencies, how long."""

    __tablename__ = "consents"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), nullable=False)
    given_by: Mapped[str] = mapped_column(String(10), nullable=False)
    # `given`, or `refused`: the youth and/or guardian said no (README "Consent refusals"). A refusal is
    # recorded for the next caseworker to know; it grants nothing and cannot be withdrawn.
    decision: Mapped[str] = mapped_column(String(10), nullable=False, default="given", server_default="given")
    given_on: Mapped[date] = mapped_column(Date, nullable=False)
    expires_on: Mapped[date] = mapped_column(Date, nullable=False)
    purpose: Mapped[str] = mapped_column(Text, nullable=False)
    covers_general: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    covers_health: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recorded_by_agency: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False)

    grants: Mapped[list[ConsentAgency]] = relationship(
        back_populates="consent", cascade="all, delete-orphan", lazy="selectin"
    )

    __table_args__ = (Index("ix_consents_case_created", "case_id", "created_at", "id"),)

    @property
    def version(self) -> int:
        """The ETag's value: a consent changes once at most, when it is withdrawn."""
        return 1 if self.withdrawn_at is None else 2

    @property
    def agencies(self) -> list[str]:
        return sorted(g.agency_code for g in self.grants)

    @property
    def active(self) -> bool:
        """Given, not expired, not withdrawn — today in Oslo (invariant 4: no caching)."""

        today = oslo_today()
        return self.decision == "given" and self.withdrawn_at is None and self.given_on <= today <= self.expires_on

    @property
    def expires_on_shown(self) -> date | None:
        """A refusal has no expiry: its stored `expires_on` (the day it was given, when none was
        sent) is not an end date of anything."""
        return None if self.decision == "refused" and self.expires_on == self.given_on else self.expires_on

    @property
    def categories(self) -> list[str]:
        return [c for c, on in (("general", self.covers_general), ("health", self.covers_health)) if on]


class ConsentAgency(Model):
    """An agency a consent allows to receive shared information."""

    __tablename__ = "consent_agencies"

    consent_id: Mapped[str] = mapped_column(ForeignKey("consents.id", ondelete="CASCADE"), primary_key=True)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"), primary_key=True)

    consent: Mapped[Consent] = relationship(back_populates="grants")

    __table_args__ = (Index("ix_consent_agencies_agency", "agency_code", "consent_id"),)
