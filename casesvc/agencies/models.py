from __future__ import annotations

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from casesvc.common.db import CreatedMixin, state_digest
from casesvc.extensions import Model


class Agency(CreatedMixin, Model):
    """A service taking part in the SLT collaboration; its code is its identity in the API."""

    __tablename__ = "agencies"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    municipalities: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)

    @property
    def version(self) -> str:
        """The ETag's value. There is no version column: a digest of what a PATCH can change
        serves instead, so a PATCH made on a stale read is refused (412) all the same."""
        return state_digest(self.name, sorted(self.municipalities or []))

    def serves(self, municipality: str) -> bool:
        return municipality in (self.municipalities or [])
