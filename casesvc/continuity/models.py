"""The history of a case's moves: every handover of the lead and every transfer to another
municipality, with who made it and when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from casesvc.common.db import CreatedMixin, IdMixin, UTCDateTime
from casesvc.common.timeutil import utcnow
from casesvc.extensions import Model


class CaseMove(IdMixin, CreatedMixin, Model):
    """One move. `kind`: `handover` (the lead changes, the municipality stays) or `transfer`
    (both change). The reason is free text: it is kept here, never in the audit chain, and the
    history lists ids and codes only."""

    __tablename__ = "case_moves"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    actor: Mapped[str] = mapped_column(String(64), nullable=False)  # user or client id
    actor_agency: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False)
    from_agency: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False)
    to_agency: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False)
    from_municipality: Mapped[str] = mapped_column(String(4), nullable=False)
    to_municipality: Mapped[str] = mapped_column(String(4), nullable=False)
    # a transfer's consent, recorded with it (the receiving lead's basis for sharing)
    consent_id: Mapped[str | None] = mapped_column(ForeignKey("consents.id", ondelete="SET NULL"))
    # the agencies that left the case with a transfer, space-separated codes
    departed: Mapped[str | None] = mapped_column(String(2000))
    reason: Mapped[str] = mapped_column(Text, nullable=False)

    __table_args__ = (Index("ix_case_moves_case_created", "case_id", "created_at", "id"),)

    @property
    def departed_agencies(self) -> list[str]:
        return self.departed.split() if self.departed else []
