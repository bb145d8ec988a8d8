"""Calendar feeds: a secret address per user for `GET /api/v1/reminders.ics`, for calendar
programs, which cannot send a bearer token.

The token is 256 random bits, shown once; only its SHA-256 is stored (it is random, so a slow
hash adds nothing). It works on the calendar path only, and reads as a principal holding just
`reminders:read`. Each request checks that the user is still active, as for a bearer token.
Asking for a new address replaces the old one; deleting it ends it.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any, cast

from flask import request
from sqlalchemy import CursorResult, delete, select

from casesvc.agencies.models import Agency
from casesvc.auth.models import CalendarFeed, User
from casesvc.extensions import db
from casesvc.policy import Principal

FEED_PATH = "/api/v1/reminders.ics"
FEED_PARAM = "feed"
FEED_SCOPES = frozenset({"reminders:read"})


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def feed_token() -> str | None:
    """The request's feed token: only on the calendar path, and only without a bearer token."""
    if request.path != FEED_PATH or "Authorization" in request.headers:
        return None
    token = request.args.get(FEED_PARAM, "")
    return token or None


def new_feed(principal: Principal) -> str:
    """A new secret address for the caller (the old one, if any, stops working). Returns the token."""
    token = secrets.token_urlsafe(32)
    db.session.execute(delete(CalendarFeed).where(CalendarFeed.user_id == principal.subject))
    db.session.add(CalendarFeed(user_id=principal.subject, token_hash=_hash(token)))
    db.session.flush()
    return token


def end_feed(principal: Principal) -> bool:
    """End the caller's address; whether there was one."""
    deleted = cast(
        "CursorResult[Any]", db.session.execute(delete(CalendarFeed).where(CalendarFeed.user_id == principal.subject))
    )
    return deleted.rowcount > 0


def feed_principal(token: str) -> Principal | None:
    """The user behind a feed token, holding only what the feed needs; None when the token is
    unknown or its user is disabled."""
    row = db.session.execute(
        select(User.id, User.role, User.agency_code, User.username, User.active, Agency.municipalities)
        .join(CalendarFeed, CalendarFeed.user_id == User.id)
        .outerjoin(Agency, Agency.code == User.agency_code)
        .where(CalendarFeed.token_hash == _hash(token))
    ).first()
    if row is None or not row.active:
        return None
    return Principal(
        subject=row.id,
        role=row.role,
        agency=row.agency_code,
        municipalities=frozenset(row.municipalities or ()),
        scopes=FEED_SCOPES,
        username=row.username,
    )
