"""Reminders, agencies' webhooks, and the webhook outbox with its attempts."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from casesvc.common.db import CreatedMixin, IdMixin, UTCDateTime
from casesvc.common.timeutil import utcnow
from casesvc.extensions import Model

_UNESCALATED = "status = 'pending' AND escalated_at IS NULL"


class Reminder(IdMixin, CreatedMixin, Model):
    """Something an agency must do on a case, and when.

    `dedupe_key` — (rule, source, due date) — is unique: the worker inserts with "on conflict do
    nothing", so running it twice, or four times at once, creates each reminder once.
    `basis_at`/`basis_on` record what the due time was computed from (the last event, an end
    date …); the worker skips a source whose current basis already has its reminder, which keeps
    a run with nothing new cheap."""

    __tablename__ = "reminders"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), nullable=False)
    reaction_id: Mapped[str | None] = mapped_column(ForeignKey("reactions.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30), nullable=False)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    assignee_agency: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False)
    assignee_user: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="pending")
    source_type: Mapped[str] = mapped_column(String(20), nullable=False)
    source_id: Mapped[str] = mapped_column(String(36), nullable=False)
    basis_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    basis_on: Mapped[date | None] = mapped_column(Date)
    dedupe_key: Mapped[str] = mapped_column(String(120), nullable=False)
    text: Mapped[str | None] = mapped_column(Text)  # manual reminders only; never in webhooks or feeds
    created_by: Mapped[str | None] = mapped_column(String(36))  # user id (manual), else None (worker)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    settled_by: Mapped[str | None] = mapped_column(String(80))  # a user id, or "event:<id>", "case", …

    version: Mapped[int] = mapped_column(Integer, nullable=False)
    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ux_reminders_dedupe_key", "dedupe_key", unique=True),
        Index("ix_reminders_source", "source_id", "kind"),
        Index("ix_reminders_assignee_status_due", "assignee_agency", "status", "due_at", "id"),
        Index("ix_reminders_case_status", "case_id", "status"),
        Index("ix_reminders_status_due", "status", "due_at"),
        # what the worker may have to escalate: pending and not yet escalated (rows leave it when
        # they are escalated or settled, so the check stays small)
        Index(
            "ix_reminders_unescalated",
            "due_at",
            postgresql_where=sql_text(_UNESCALATED),
            sqlite_where=sql_text(_UNESCALATED),
        ),
        Index("ix_reminders_reaction", "reaction_id"),
    )

    @property
    def source(self) -> dict:
        return {"type": self.source_type, "id": self.source_id}


class Webhook(Model):
    """Where an agency's due reminders are POSTed. The secret is kept to sign with, encrypted
    (casesvc.common.crypto); it is never shown again after it is set."""

    __tablename__ = "webhooks"

    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code", ondelete="CASCADE"), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    secret: Mapped[str] = mapped_column(String(512), nullable=False)  # "enc1:" + a Fernet token
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    __mapper_args__ = {"version_id_col": version}


class WebhookDelivery(IdMixin, CreatedMixin, Model):
    """The outbox: one row per reminder to announce, written in the reminder's transaction.

    A worker claims due rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL) by setting a lease; a
    worker that dies after claiming leaves the row to be claimed again when the lease runs out.
    `state`: pending (including retries) → delivered | failed | cancelled."""

    __tablename__ = "webhook_deliveries"

    reminder_id: Mapped[str] = mapped_column(ForeignKey("reminders.id", ondelete="CASCADE"), nullable=False)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code", ondelete="CASCADE"), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)  # frozen at creation: every retry sends the same bytes
    state: Mapped[str] = mapped_column(String(12), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(String(36))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_reminder", "reminder_id"),
    )


class WebhookAttempt(IdMixin, Model):
    """One HTTP attempt, as listed at /agencies/{code}/webhook/deliveries."""

    __tablename__ = "webhook_attempts"

    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False)
    reminder_id: Mapped[str] = mapped_column(ForeignKey("reminders.id", ondelete="CASCADE"), nullable=False)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code", ondelete="CASCADE"), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(10), nullable=False)
    error: Mapped[str | None] = mapped_column(String(200))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_webhook_attempts_agency", "agency_code", "attempted_at", "id"),
        Index("ix_webhook_attempts_delivery", "delivery_id"),
    )
