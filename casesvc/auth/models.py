from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from casesvc.common.db import CreatedMixin, IdMixin, UTCDateTime, state_digest
from casesvc.extensions import Model

# no password hash verifies against this: a provider's user has no password login
EXTERNAL_PASSWORD_HASH = "!external"  # noqa: S105 (a marker, not a password)


class User(IdMixin, CreatedMixin, Model):
    """A staff member (role = their agency's kind), or an admin/auditor without agency."""

    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(150), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    agency_code: Mapped[str | None] = mapped_column(ForeignKey("agencies.code"), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

    @property
    def version(self) -> str:
        """The ETag's value: users have no version column, so a digest of what can change in one
        (a change made after a caller's read still shows as 412 on a stale If-Match)."""
        return state_digest(self.username, self.role, self.agency_code, self.active)


class ApiClient(IdMixin, CreatedMixin, Model):
    """A program calling the API with `client_credentials`. Its id is the `client_id`; only a
    SHA-256 of the secret is kept (the secret is 256 random bits, so a slow hash adds nothing)."""

    __tablename__ = "api_clients"

    name: Mapped[str] = mapped_column(String(150), unique=True, nullable=False)
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    agency_code: Mapped[str | None] = mapped_column(ForeignKey("agencies.code"), nullable=True)
    scopes: Mapped[str] = mapped_column(String(500), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RefreshFamily(IdMixin, CreatedMixin, Model):
    """One login: every refresh token rotated from it, and every access token issued with them,
    carry its id. Revoking the family (reuse of a spent refresh token, or RFC 7009 revocation of
    a refresh token) refuses all of them on the next request."""

    __tablename__ = "refresh_families"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)


class RefreshToken(Model):
    """A refresh token by its `jti`; `used_at` is set when it is exchanged (once)."""

    __tablename__ = "refresh_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(
        ForeignKey("refresh_families.id", ondelete="CASCADE"), index=True, nullable=False
    )
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RevokedToken(Model):
    """The denylist (RFC 7009): access tokens revoked before they expire, by `jti` (or by a
    SHA-256 of the token for a provider's token without one). Rows past `expires_at` are pruned."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(80), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True, nullable=False)
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class ExternalIdentity(CreatedMixin, Model):
    """A user provisioned from the external identity provider, by (issuer, `sub`)."""

    __tablename__ = "external_identities"

    issuer: Mapped[str] = mapped_column(String(255), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True, nullable=False)


class CalendarFeed(IdMixin, CreatedMixin, Model):
    """A user's secret calendar address: `GET /api/v1/reminders.ics?feed=<token>` reads that
    user's reminder feed, and nothing else, without a bearer token (calendar programs cannot
    send one). Only a SHA-256 of the token is kept; one feed per user, replaced or deleted at will."""

    __tablename__ = "calendar_feeds"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True, nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)


class RateLimitCounter(Model):
    """A counter of the token endpoint's rate limits (casesvc.auth.limits) when they are kept in
    the service's own database: `hits` failed attempts under `key` in the fixed window that ends
    at `expires_at` (Unix time, seconds). Every worker and host counts in the same row; rows
    past `expires_at` count as empty and are deleted from time to time."""

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer, nullable=False)
    expires_at: Mapped[float] = mapped_column(Float, index=True, nullable=False)
