"""Events (follow-ups that happened) and notes. Neither is ever edited: a correction is a new
entry that names the one it corrects."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from casesvc.common.db import CreatedMixin, IdMixin, UTCDateTime
from casesvc.extensions import Model


class EntryMixin(IdMixin, CreatedMixin):
    category: Mapped[str] = mapped_column(String(10), nullable=False, default="general")
    visibility: Mapped[str] = mapped_column(String(10), nullable=False, default="shared")
    author_agency: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False)
    author_user: Mapped[str] = mapped_column(ForeignKey("users.id"), nullable=False)

    # the ETag's value: an entry is written once and never changes (a correction is a new entry)
    version = 1


class Event(EntryMixin, Model):
    __tablename__ = "events"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    reaction_id: Mapped[str | None] = mapped_column(ForeignKey("reactions.id", ondelete="CASCADE"))
    condition_id: Mapped[str | None] = mapped_column(ForeignKey("conditions.id", ondelete="CASCADE"))
    # The responsible agency of the condition, copied at write time so the drug-test exception
    # of the access policy can be applied in SQL without a join.
    condition_agency: Mapped[str | None] = mapped_column(String(32))
    result: Mapped[str | None] = mapped_column(String(10))
    summary: Mapped[str | None] = mapped_column(Text)
    corrects: Mapped[str | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))

    __table_args__ = (Index("ix_events_case_created", "case_id", "created_at", "id"),)


class Note(EntryMixin, Model):
    __tablename__ = "notes"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    corrects: Mapped[str | None] = mapped_column(ForeignKey("notes.id", ondelete="SET NULL"))

    __table_args__ = (Index("ix_notes_case_created", "case_id", "created_at", "id"),)
