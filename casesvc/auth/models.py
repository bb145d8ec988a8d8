from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from casesvc.common.db import CreatedMixin, IdMixin
from casesvc.extensions import db


class User(IdMixin, CreatedMixin, db.Model):
    """A staff member (role = their agency's kind), or an admin/auditor without agency."""

    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(150), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    agency_code: Mapped[str | None] = mapped_column(ForeignKey("agencies.code"), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
