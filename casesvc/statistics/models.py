"""What the statistics need and the reactions table does not keep: that a reaction was made
active, and when and how it ended. Written by the statistics' own signal handlers
(casesvc/statistics/handlers.py); gone with the reaction (and so with its case)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from casesvc.extensions import Model


class ReactionSpan(Model):
    __tablename__ = "statistics_reaction_spans"

    reaction_id: Mapped[str] = mapped_column(ForeignKey("reactions.id", ondelete="CASCADE"), primary_key=True)
    activated_on: Mapped[date] = mapped_column(Date, nullable=False)  # Europe/Oslo
    ended_on: Mapped[date | None] = mapped_column(Date)  # Europe/Oslo; once it left `active`
    ended_status: Mapped[str | None] = mapped_column(String(20))  # completed, breached, cancelled
