from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from casesvc.common.db import CreatedMixin, IdMixin, UTCDateTime
from casesvc.common.timeutil import utcnow
from casesvc.extensions import Model


class Youth(IdMixin, CreatedMixin, Model):
    __tablename__ = "youths"

    national_id: Mapped[str] = mapped_column(String(11), unique=True, nullable=False)
    given_name: Mapped[str] = mapped_column(String(200), nullable=False)
    family_name: Mapped[str] = mapped_column(String(200), nullable=False)
    birth_date: Mapped[date] = mapped_column(Date, nullable=False)
    municipality: Mapped[str] = mapped_column(String(4), nullable=False)
    school: Mapped[str | None] = mapped_column(String(200))
    # Invariant 6: the agency that registered the youth keeps sight of the record.
    created_by_agency: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)

    guardians: Mapped[list[Guardian]] = relationship(
        back_populates="youth", cascade="all, delete-orphan", order_by="Guardian.position", lazy="selectin"
    )

    # Optimistic locking: the version is the ETag; an UPDATE of a changed row fails.
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    __mapper_args__ = {"version_id_col": version}


class Guardian(IdMixin, Model):
    __tablename__ = "guardians"

    youth_id: Mapped[str] = mapped_column(ForeignKey("youths.id", ondelete="CASCADE"), index=True, nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    relation: Mapped[str] = mapped_column(String(20), nullable=False)
    phone: Mapped[str | None] = mapped_column(String(40))
    email: Mapped[str | None] = mapped_column(String(254))

    youth: Mapped[Youth] = relationship(back_populates="guardians")
