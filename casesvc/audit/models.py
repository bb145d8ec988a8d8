"""Audit storage. A request writes its event to `audit_inbox` in its own transaction (durable
with the work, and no lock on the chain). The sealer moves inbox rows, in batches, into
`audit_events`, giving each its `seq`, `prev_hash` and `hash`. `audit_events` is append-only:
triggers made by the migration refuse UPDATE and DELETE in SQLite and PostgreSQL alike.

Events hold ids and codes only — never names or free text — because they outlive the case.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from casesvc.common.db import UTCDateTime
from casesvc.extensions import Model

# SQLite autoincrements only an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
AutoBigInt = BigInteger().with_variant(Integer(), "sqlite")


class EventFields:
    id: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    actor: Mapped[str | None] = mapped_column(String(64))
    actor_role: Mapped[str | None] = mapped_column(String(20))
    actor_agency: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    resource_type: Mapped[str | None] = mapped_column(String(32))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    case_id: Mapped[str | None] = mapped_column(String(36))
    youth_id: Mapped[str | None] = mapped_column(String(36))
    ids: Mapped[list[str] | None] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(10), nullable=False)
    status: Mapped[int | None] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(45))
    # "emergency" for a read under an emergency access (README "Emergency access"), else NULL; hashed only
    # when set, so events recorded before the field hash as they did (audit/chain.py)
    basis: Mapped[str | None] = mapped_column(String(16))


class AuditInbox(EventFields, Model):
    """Events recorded but not yet sealed into the chain."""

    __tablename__ = "audit_inbox"

    n: Mapped[int] = mapped_column(AutoBigInt, primary_key=True, autoincrement=True)


class AuditEvent(EventFields, Model):
    """The sealed, hash-chained log."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)

    __table_args__ = (
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_case", "case_id", "seq"),
        Index("ix_audit_events_youth", "youth_id", "seq"),
        Index("ix_audit_events_actor", "actor", "seq"),
    )
