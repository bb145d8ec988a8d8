"""The reminders calendar at a secret address (`POST /api/v1/reminders/feed`): for calendar
programs, which send no bearer token. The address reads that user's feed and nothing else, is
replaced or ended at will, and stops with the user."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import icalendar
import pytest
from sqlalchemy import select

from casesvc.audit.models import AuditInbox
from casesvc.auth.models import CalendarFeed
from casesvc.common.timeutil import rfc3339, utcnow
from casesvc.extensions import db
from tests.conftest import assert_problem

FEED = "/api/v1/reminders/feed"


@pytest.fixture
def reminder(world) -> dict:
    """A reminder for health, due tomorrow, on a case health takes part in under consent."""
    case = world.case(participants=("health",))
    world.consent(case, ["health"])
    resp = world["police"].post(
        f"/api/v1/cases/{case['id']}/reminders",
        json={"due_at": rfc3339(utcnow() + timedelta(days=1)), "assignee_agency": "health"},
    )
    assert resp.status_code == 201, resp.json
    return {**resp.json, "case_id": case["id"]}


def new_address(actor) -> str:
    resp = actor.post(FEED)
    assert resp.status_code == 201, resp.json
    return resp.json["url"]


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["feed"][0]


def calendar_at(client, url: str):
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def uids(resp) -> set[str]:
    return {str(e["uid"]) for e in icalendar.Calendar.from_ical(resp.data).walk("VEVENT")}


def assert_401(resp):
    assert resp.status_code == 401
    assert resp.mimetype == "application/problem+json"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_secret_address_serves_the_users_calendar_without_a_bearer_token(world, client, reminder):
    url = new_address(world["health"])
    assert urlsplit(url).path == "/api/v1/reminders.ics"
    resp = calendar_at(client, url)
    assert resp.status_code == 200 and resp.mimetype == "text/calendar"
    assert uids(resp) == {f"{reminder['id']}@casesvc"} == uids(world["health"].get("/api/v1/reminders.ics"))


def test_the_token_opens_nothing_but_the_calendar(world, client, reminder):
    token = token_of(new_address(world["health"]))
    for path in ("/api/v1/reminders", f"/api/v1/cases/{reminder['case_id']}", "/api/v1/cases", "/api/v1/auth/me"):
        assert_401(client.get(f"{path}?feed={token}"))


def test_only_the_stored_hash_of_the_token_is_kept(world, app):
    token = token_of(new_address(world["health"]))
    with app.app_context():
        stored = db.session.scalars(select(CalendarFeed.token_hash)).all()
    assert len(stored) == 1 and token not in stored[0]


def test_a_new_address_replaces_the_old_one(world, client, reminder):
    old = new_address(world["health"])
    new = new_address(world["health"])
    assert token_of(old) != token_of(new)
    assert_401(calendar_at(client, old))
    assert calendar_at(client, new).status_code == 200


def feeds_of(app, user_id) -> int:
    with app.app_context():
        count = len(db.session.scalars(select(CalendarFeed.id).where(CalendarFeed.user_id == user_id)).all())
        db.session.remove()
        return count


def test_an_ended_address_is_refused(world, app, client, reminder):
    url = new_address(world["health"])
    assert uids(calendar_at(client, url)) == {f"{reminder['id']}@casesvc"}
    assert world["health"].delete(FEED).status_code == 204
    assert feeds_of(app, world["health"].user_id) == 0
    assert_401(calendar_at(client, url))
    assert_problem(calendar_at(client, url), 401, "unauthorized")
    assert world["health"].delete(FEED).status_code == 404
    assert_problem(world["health"].delete(FEED), 404, "not-found")


def test_an_unknown_or_empty_token_is_refused(world, client):
    assert_401(client.get("/api/v1/reminders.ics?feed=not-a-token-this-service-made"))
    assert_401(client.get("/api/v1/reminders.ics?feed="))
    assert_401(client.get("/api/v1/reminders.ics"))


def test_a_disabled_users_address_stops_at_once(world, client, reminder):
    url = new_address(world["health"])
    assert uids(calendar_at(client, url)) == {f"{reminder['id']}@casesvc"}
    disabled = world["admin"].post(f"/api/v1/users/{world['health'].user_id}/disable")
    assert disabled.status_code == 200
    assert disabled.json["active"] is False
    assert_401(calendar_at(client, url))
    assert_problem(calendar_at(client, url), 401, "unauthorized")
    assert b"VCALENDAR" not in calendar_at(client, url).data


@pytest.mark.parametrize("who", ["admin", "auditor"])
def test_roles_without_reminders_have_no_address(world, app, who):
    assert world[who].post(FEED).status_code == 403
    assert_problem(world[who].post(FEED), 403, "case-content-forbidden")
    assert feeds_of(app, world[who].user_id) == 0


def test_an_address_needs_the_reminders_read_scope(world, app):
    narrowed = world.as_user(world["health"].user_id, "school_health", "health", "user.health", scopes=["cases:read"])
    assert narrowed.post(FEED).status_code == 403
    assert "reminders:read" in assert_problem(narrowed.post(FEED), 403, "insufficient-scope")["detail"]
    assert feeds_of(app, world["health"].user_id) == 0


def test_reading_at_the_address_is_audited_as_the_user(world, client, app, reminder):
    url = new_address(world["health"])
    assert calendar_at(client, url).status_code == 200
    with app.app_context():
        last = db.session.scalars(select(AuditInbox).order_by(AuditInbox.n.desc()).limit(1)).one()
        assert (last.action, last.actor, last.outcome) == (
            "reminders.reminders_calendar",
            world["health"].user_id,
            "allowed",
        )
        assert token_of(url) not in str([getattr(last, c.name) for c in AuditInbox.__table__.columns])
