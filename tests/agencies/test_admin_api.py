"""README "Identity": the admin manages agencies and users over the API. Only the admin role with the
`admin` scope may; role and scope are checked before the body is read. Disabling a user takes
effect at once, a change of an agency's municipalities on the very next request, and the audit
log of these writes holds ids and codes only."""

from __future__ import annotations

import hashlib
import json
import logging
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from casesvc.auth.models import User
from casesvc.extensions import db
from casesvc.web.idempotency import IdempotencyKey
from tests.audit.test_audit_recording import events, head_seq
from tests.conftest import (
    PASSWORD,
    all_pages,
    assert_field_error,
    assert_oauth_error,
    assert_problem,
    assert_token_granted,
    assert_token_refused,
    assert_token_works,
)

TOKEN_URL = "/api/v1/auth/token"
FAKE_PASSWORD = "fake test password 123"


def login(client, username, password=PASSWORD):
    return client.post(TOKEN_URL, data={"grant_type": "password", "username": username, "password": password})


def refresh(client, refresh_token):
    return client.post(TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": refresh_token})


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def new_agency(**fields):
    return {"code": "fake-nav", "kind": "nav", "name": "Fake NAV Testby", "municipalities": ["0301"], **fields}


def new_user(**fields):
    return {"username": "fake.person", "role": "nav", "agency": "nav", "password": FAKE_PASSWORD, **fields}


def field_problem(resp, field):
    assert resp.status_code == 422, resp.json
    assert resp.mimetype == "application/problem+json"
    assert resp.json["type"].endswith("/validation-error")
    assert field in resp.json["errors"], resp.json
    return " ".join(resp.json["errors"][field])


# --- who may: admin role with the admin scope, before anything is parsed -------------------------

# every endpoint, a body a validator would refuse for the writes (so a 422 would show that the
# body was read before the caller was checked)
ENDPOINTS = [
    ("get", "/api/v1/agencies", None),
    ("get", "/api/v1/agencies?kind=army", None),
    ("post", "/api/v1/agencies", {"kind": "army"}),
    ("get", "/api/v1/agencies/nav", None),
    ("patch", "/api/v1/agencies/nav", {"kind": "army"}),
    ("get", "/api/v1/users", None),
    ("get", "/api/v1/users?role=wizard", None),
    ("post", "/api/v1/users", {"role": "wizard"}),
    ("get", "/api/v1/users/{nav_user}", None),
    ("post", "/api/v1/users/{nav_user}/disable", None),
    ("post", "/api/v1/users/{nav_user}/enable", None),
    ("patch", "/api/v1/users/{nav_user}", {"role": "wizard"}),
    ("post", "/api/v1/users/{nav_user}/password", {"password": "short"}),
]
ENDPOINT_IDS = [f"{m} {u}" for m, u, _ in ENDPOINTS]


def call(actor_or_client, world, method, url, body):
    url = url.format(nav_user=world["nav"].user_id)
    kwargs = {"json": body} if body is not None else {}
    return getattr(actor_or_client, method)(url, **kwargs)


@pytest.mark.parametrize("method,url,body", ENDPOINTS, ids=ENDPOINT_IDS)
def test_without_a_token_every_admin_endpoint_is_401(world, client, method, url, body):
    resp = call(client, world, method, url, body)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert resp.mimetype == "application/problem+json"


@pytest.mark.parametrize("who", ["police", "slt", "health", "auditor"])
@pytest.mark.parametrize("method,url,body", ENDPOINTS, ids=ENDPOINT_IDS)
def test_staff_and_auditor_get_403_on_every_admin_endpoint(world, method, url, body, who):
    resp = call(world[who], world, method, url, body)
    assert resp.status_code == 403, resp.json
    assert resp.json["type"].endswith("/admin-required")
    assert "errors" not in resp.json


@pytest.mark.parametrize("method,url,body", ENDPOINTS, ids=ENDPOINT_IDS)
def test_an_admin_token_without_the_admin_scope_gets_403(world, method, url, body):
    admin = world["admin"]
    narrow = world.as_user(admin.user_id, "admin", None, "user.admin", scopes=["audit:read"])
    resp = call(narrow, world, method, url, body)
    assert resp.status_code == 403, resp.json
    assert resp.json["type"].endswith("/insufficient-scope")


def test_refused_callers_change_nothing(world, client):
    nav_user = world["nav"].user_id
    assert world["police"].post(f"/api/v1/users/{nav_user}/disable").status_code == 403
    assert (
        world["police"].post(f"/api/v1/users/{nav_user}/password", json={"password": FAKE_PASSWORD}).status_code == 403
    )
    assert (
        world["nav"]
        .patch(f"/api/v1/users/{nav_user}", json={"role": "admin", "agency": None}, headers={"If-Match": "*"})
        .status_code
        == 403
    )
    assert login(client, "user.nav").status_code == 200
    assert login(client, "user.nav", FAKE_PASSWORD).status_code == 400
    assert world["auditor"].post("/api/v1/agencies", json=new_agency()).status_code == 403
    assert world["slt"].post("/api/v1/users", json=new_user()).status_code == 403
    admin = world["admin"]
    assert admin.get(f"/api/v1/users/{nav_user}").json["active"] is True
    assert admin.get(f"/api/v1/users/{nav_user}").json["role"] == "nav"
    assert admin.get("/api/v1/agencies/fake-nav").status_code == 404
    assert admin.get("/api/v1/users?agency=nav").json["items"][0]["username"] == "user.nav"
    assert len(admin.get("/api/v1/users?agency=nav").json["items"]) == 1


# --- agencies ------------------------------------------------------------------------------------


def test_admin_creates_an_agency_with_location_and_etag(world):
    admin = world["admin"]
    resp = admin.post("/api/v1/agencies", json=new_agency(municipalities=["4601", "0301", "0301"]))
    assert resp.status_code == 201, resp.json
    assert resp.headers["Location"] == "/api/v1/agencies/fake-nav"
    assert resp.headers["ETag"]
    assert resp.json == {
        "code": "fake-nav",
        "kind": "nav",
        "name": "Fake NAV Testby",
        "municipalities": ["0301", "4601"],
        "created_at": resp.json["created_at"],
    }
    fetched = admin.get(resp.headers["Location"])
    assert fetched.status_code == 200
    assert fetched.json == resp.json
    assert fetched.headers["ETag"] == resp.headers["ETag"]
    # its users can be created at once
    assert admin.post("/api/v1/users", json=new_user(agency="fake-nav")).status_code == 201


def test_an_unknown_agency_is_404(world):
    resp = world["admin"].get("/api/v1/agencies/no-such-agency")
    assert resp.status_code == 404
    assert resp.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    "fields,field",
    [
        ({"kind": "army"}, "kind"),
        ({"code": "Fake NAV!"}, "code"),
        ({"code": "police"}, "code"),  # exists
        ({"name": "   "}, "name"),
        ({"municipalities": ["301"]}, "municipalities.0"),
        ({"municipalities": []}, "municipalities"),
        ({"name": None}, "name"),
    ],
    ids=[
        "unknown-kind",
        "bad-code",
        "duplicate-code",
        "blank-name",
        "three-digit-municipality",
        "no-municipality",
        "null-name",
    ],
)
def test_bad_agency_input_is_422_on_the_field(world, fields, field):
    resp = world["admin"].post("/api/v1/agencies", json=new_agency(**fields))
    message = field_problem(resp, field)
    assert "--" not in message + resp.json["detail"]  # the API speaks of fields, not of CLI options
    assert world["admin"].get("/api/v1/agencies/fake-nav").status_code == 404


def test_service_messages_name_the_field_not_the_command_line_option(world):
    admin = world["admin"]
    dup = admin.post("/api/v1/agencies", json=new_agency(code="police"))
    assert field_problem(dup, "code") == "agency 'police' already exists"
    assert dup.json["detail"] == "agency 'police' already exists"
    staff = admin.post("/api/v1/users", json=new_user(agency=None))
    assert field_problem(staff, "agency") == "agency is required for a nav user"
    auditor = admin.post("/api/v1/users", json=new_user(role="auditor", agency="nav"))
    assert field_problem(auditor, "agency") == "agency must be left out: an auditor user belongs to no agency"


def test_agencies_list_newest_first_filtered_by_kind_and_paginated(world):
    admin = world["admin"]
    for code in ("fake-a", "fake-b", "fake-c"):
        assert admin.post("/api/v1/agencies", json=new_agency(code=code)).status_code == 201
    navs = admin.get("/api/v1/agencies?kind=nav").json
    assert [a["code"] for a in navs["items"]] == ["fake-c", "fake-b", "fake-a", "nav"]
    assert navs["next_cursor"] is None
    seen = [a["code"] for a in all_pages(admin, "/api/v1/agencies", limit=3)]
    assert len(seen) == len(set(seen)) == len(world.AGENCIES) + 3
    assert seen[:3] == ["fake-c", "fake-b", "fake-a"]
    assert admin.get("/api/v1/agencies?kind=army").status_code == 422
    assert admin.get("/api/v1/agencies?cursor=garbage").status_code == 422


def test_patch_changes_name_and_municipalities_and_needs_if_match(world):
    admin = world["admin"]
    read = admin.get("/api/v1/agencies/nav")
    etag = read.headers["ETag"]
    missing = admin.patch("/api/v1/agencies/nav", json={"name": "Fake NAV Nyby"})
    assert missing.status_code == 428
    changed = admin.patch(
        "/api/v1/agencies/nav",
        json={"name": "Fake NAV Nyby", "municipalities": ["4601", "0301"]},
        headers={"If-Match": etag},
    )
    assert changed.status_code == 200, changed.json
    assert changed.json["name"] == "Fake NAV Nyby"
    assert changed.json["municipalities"] == ["0301", "4601"]
    assert changed.json["code"] == "nav" and changed.json["kind"] == "nav"
    assert changed.headers["ETag"] != etag
    # a PATCH made on the old read is refused: nothing is overwritten silently
    stale = admin.patch("/api/v1/agencies/nav", json={"name": "Fake NAV Gammelby"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert stale.headers["ETag"] == changed.headers["ETag"]
    assert admin.get("/api/v1/agencies/nav").json["name"] == "Fake NAV Nyby"


def test_patch_ignores_the_code_and_kind_which_never_change(world):
    admin = world["admin"]
    before = admin.get("/api/v1/agencies/nav")
    resp = admin.patch(
        "/api/v1/agencies/nav",
        json={"code": "other", "kind": "police", "name": "Fake NAV Nyby"},
        headers={"If-Match": before.headers["ETag"]},
    )
    assert resp.status_code == 200, resp.json
    assert resp.json == {**before.json, "name": "Fake NAV Nyby"}
    assert admin.get("/api/v1/agencies/other").status_code == 404


@pytest.mark.parametrize(
    "body,field",
    [
        ({"municipalities": []}, "municipalities"),
        ({"municipalities": ["12345"]}, "municipalities.0"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
    ],
    ids=["no-municipality", "five-digits", "empty-name", "blank-name"],
)
def test_patch_refuses_bad_values(world, body, field):
    admin = world["admin"]
    before = admin.get("/api/v1/agencies/nav")
    resp = admin.patch("/api/v1/agencies/nav", json=body, headers={"If-Match": before.headers["ETag"]})
    field_problem(resp, field)
    assert admin.get("/api/v1/agencies/nav").json == before.json


def test_a_patch_of_an_unknown_agency_is_404(world):
    resp = world["admin"].patch("/api/v1/agencies/no-such", json={"name": "X"}, headers={"If-Match": "*"})
    assert resp.status_code == 404
    assert "agency" in assert_problem(resp, 404, "not-found")["detail"]
    assert_problem(world["admin"].get("/api/v1/agencies/no-such"), 404, "not-found")  # nor made by the patch


def test_removing_a_municipality_hides_its_cases_from_the_agencys_users_on_the_next_request(world):
    case = world.case()  # municipality 0301, lead police
    police, admin = world["police"], world["admin"]
    assert police.get(f"/api/v1/cases/{case['id']}").status_code == 200
    etag = admin.get("/api/v1/agencies/police").headers["ETag"]
    moved = admin.patch("/api/v1/agencies/police", json={"municipalities": ["4601"]}, headers={"If-Match": etag})
    assert moved.status_code == 200, moved.json
    # the same token, the very next request
    assert police.get(f"/api/v1/cases/{case['id']}").status_code == 404
    assert police.get("/api/v1/cases").json["items"] == []
    assert police.get("/api/v1/auth/me").json["municipalities"] == ["4601"]
    back = admin.patch(
        "/api/v1/agencies/police", json={"municipalities": ["0301"]}, headers={"If-Match": moved.headers["ETag"]}
    )
    assert back.status_code == 200
    assert police.get(f"/api/v1/cases/{case['id']}").status_code == 200


def test_agency_routes_leave_the_webhook_routes_alone(world):
    admin = world["admin"]
    put = admin.put(
        "/api/v1/agencies/nav/webhook", json={"url": "http://127.0.0.1:9/fake-hook", "secret": "fake-secret-0123456789"}
    )
    assert put.status_code == 201, put.json
    assert (put.json["agency"], put.json["url"], put.json["secret_set"]) == (
        "nav",
        "http://127.0.0.1:9/fake-hook",
        True,
    )
    assert "secret" not in put.json
    hook = admin.get("/api/v1/agencies/nav/webhook")
    assert hook.status_code == 200 and hook.json["url"] == "http://127.0.0.1:9/fake-hook"
    agency = admin.get("/api/v1/agencies/nav")
    assert agency.status_code == 200 and agency.json["code"] == "nav" and "url" not in agency.json
    assert (agency.json["kind"], agency.json["name"], agency.json["municipalities"]) == ("nav", "Test nav", ["0301"])


# --- users ---------------------------------------------------------------------------------------


def test_admin_creates_a_user_who_can_log_in_with_the_password(world, client, app):
    admin = world["admin"]
    resp = admin.post("/api/v1/users", json=new_user())
    assert resp.status_code == 201, resp.json
    user_id = resp.json["id"]
    assert resp.headers["Location"] == f"/api/v1/users/{user_id}"
    assert set(resp.json) == {"id", "username", "role", "agency", "active", "created_at"}
    assert resp.json["username"] == "fake.person" and resp.json["role"] == "nav"
    assert resp.json["agency"] == "nav" and resp.json["active"] is True
    assert FAKE_PASSWORD not in resp.get_data(as_text=True)
    fetched = admin.get(resp.headers["Location"])
    assert fetched.json == resp.json
    token = login(client, "fake.person", FAKE_PASSWORD)
    assert token.status_code == 200, token.json
    me = client.get("/api/v1/auth/me", headers=bearer(token.json["access_token"])).json
    assert me["subject"] == user_id and me["role"] == "nav" and me["agency"] == "nav"
    with app.app_context():  # stored as an argon2id hash only
        stored = db.session.scalar(select(User.password_hash).where(User.id == user_id))
        db.session.remove()
    assert stored.startswith("$argon2id$") and FAKE_PASSWORD not in stored


def test_admin_creates_admin_and_auditor_users_without_agency(world):
    admin = world["admin"]
    for role in ("admin", "auditor"):
        resp = admin.post("/api/v1/users", json=new_user(username=f"fake.{role}", role=role, agency=None))
        assert resp.status_code == 201, resp.json
        assert resp.json["role"] == role and resp.json["agency"] is None


@pytest.mark.parametrize(
    "fields,field",
    [
        ({"role": "wizard"}, "role"),
        ({"agency": None}, "agency"),  # a staff user needs an agency
        ({"role": "admin"}, "agency"),  # admin belongs to no agency
        ({"agency": "no-such-agency"}, "agency"),
        ({"agency": "police"}, "agency"),  # a nav user in a police agency
        ({"username": "fake person!"}, "username"),
        ({"username": "user.police"}, "username"),  # exists
        ({"password": "Xq7-fak"}, "password"),  # too short (7 characters)
        ({"password": None}, "password"),
    ],
    ids=[
        "unknown-role",
        "staff-without-agency",
        "admin-with-agency",
        "unknown-agency",
        "kind-mismatch",
        "bad-username",
        "duplicate-username",
        "short-password",
        "null-password",
    ],
)
def test_bad_user_input_is_422_on_the_field(world, fields, field):
    admin = world["admin"]
    resp = admin.post("/api/v1/users", json=new_user(**fields))
    message = field_problem(resp, field)
    assert "--" not in message + resp.json["detail"]
    assert "Xq7-fak" not in resp.get_data(as_text=True)  # a refused password is not echoed
    assert "fake.person" not in [u["username"] for u in admin.get("/api/v1/users?limit=200").json["items"]]


def test_an_unknown_user_is_404(world):
    admin = world["admin"]
    users_before = all_pages(admin, "/api/v1/users")
    assert admin.get("/api/v1/users/00000000-0000-4000-8000-000000000000").status_code == 404
    assert admin.post("/api/v1/users/not-an-id/disable").status_code == 404
    assert admin.post("/api/v1/users/not-an-id/enable").status_code == 404
    assert admin.post("/api/v1/users/not-an-id/password", json={"password": FAKE_PASSWORD}).status_code == 404
    assert admin.patch("/api/v1/users/not-an-id", json={"role": "nav"}, headers={"If-Match": "*"}).status_code == 404
    for resp in (
        admin.get("/api/v1/users/00000000-0000-4000-8000-000000000000"),
        admin.post("/api/v1/users/not-an-id/disable"),
        admin.post("/api/v1/users/not-an-id/enable"),
        admin.post("/api/v1/users/not-an-id/password", json={"password": FAKE_PASSWORD}),
        admin.patch("/api/v1/users/not-an-id", json={"role": "nav"}, headers={"If-Match": "*"}),
    ):
        assert "user" in assert_problem(resp, 404, "not-found")["detail"]
    assert all_pages(admin, "/api/v1/users") == users_before


# --- a password reset ------------------------------------------------------------------------------


def test_a_password_reset_ends_every_login_and_the_new_password_works_at_once(world, client):
    admin = world["admin"]
    user_id = world["nav"].user_id
    session = login(client, "user.nav").json  # every access token the service issues belongs to a login
    other = login(client, "user.nav").json
    resp = admin.post(f"/api/v1/users/{user_id}/password", json={"password": FAKE_PASSWORD})
    assert resp.status_code == 200, resp.json
    assert resp.json["id"] == user_id and resp.json["active"] is True
    assert FAKE_PASSWORD not in resp.get_data(as_text=True)
    for ended in (session, other):
        assert client.get("/api/v1/auth/me", headers=bearer(ended["access_token"])).status_code == 401
    assert refresh(client, session["refresh_token"]).json["error"] == "invalid_grant"
    old = login(client, "user.nav")
    assert old.status_code == 400 and old.json["error"] == "invalid_grant"
    new = login(client, "user.nav", FAKE_PASSWORD)
    assert new.status_code == 200, new.json
    assert client.get("/api/v1/auth/me", headers=bearer(new.json["access_token"])).status_code == 200


@pytest.mark.parametrize("body", [{"password": "Xq7-fak"}, {"password": None}, {}], ids=["short", "null", "missing"])
def test_a_bad_new_password_is_422_and_the_old_one_still_works(world, client, body):
    admin = world["admin"]
    resp = admin.post(f"/api/v1/users/{world['nav'].user_id}/password", json=body)
    field_problem(resp, "password")
    assert "Xq7-fak" not in resp.get_data(as_text=True)
    assert login(client, "user.nav").status_code == 200


def test_an_admin_cannot_reset_its_own_password_over_the_api(world, client):
    """A stolen access token must not be enough to take the account over: another admin resets
    it, or `casesvc users set-password` on the server."""
    admin = world["admin"]
    resp = admin.post(f"/api/v1/users/{admin.user_id}/password", json={"password": FAKE_PASSWORD})
    assert resp.status_code == 409 and resp.json["type"].endswith("/cannot-change-self")
    assert_problem(resp, 409, "cannot-change-self")
    assert login(client, "user.admin", FAKE_PASSWORD).status_code == 400
    assert_oauth_error(login(client, "user.admin", FAKE_PASSWORD), 400, "invalid_grant")
    assert login(client, "user.admin").status_code == 200
    assert_token_works(client, assert_token_granted(login(client, "user.admin"))["access_token"], "user.admin")
    assert admin.get("/api/v1/users").status_code == 200
    assert_token_works(client, admin.token, "user.admin", role="admin")  # the admin's own login stands


def test_another_admin_resets_an_admins_password(world, client):
    admin = world["admin"]
    other = admin.post("/api/v1/users", json=new_user(username="fake.admin2", role="admin", agency=None)).json
    reset = admin.post(f"/api/v1/users/{other['id']}/password", json={"password": FAKE_PASSWORD + "2"})
    assert reset.status_code == 200
    assert (reset.json["id"], reset.json["username"], reset.json["role"]) == (other["id"], "fake.admin2", "admin")
    assert "password" not in reset.json
    assert login(client, "fake.admin2", FAKE_PASSWORD + "2").status_code == 200
    token = assert_token_granted(login(client, "fake.admin2", FAKE_PASSWORD + "2"))["access_token"]
    assert_token_works(client, token, "fake.admin2", role="admin")
    assert_oauth_error(login(client, "fake.admin2", FAKE_PASSWORD), 400, "invalid_grant")  # the old one is gone


FEED = "/api/v1/reminders/feed"


def _calendar(client, url):
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


@pytest.mark.parametrize("ending", ["password", "move", "disable-then-enable"])
def test_what_ends_a_users_logins_ends_its_calendar_address_too(world, client, ending):
    admin = world["admin"]
    police = world["police"]
    address = police.post(FEED).json["url"]
    assert _calendar(client, address).status_code == 200
    assert _calendar(client, address).data.startswith(b"BEGIN:VCALENDAR")
    url = f"/api/v1/users/{police.user_id}"
    if ending == "password":
        changed = admin.post(f"{url}/password", json={"password": FAKE_PASSWORD})
        assert changed.status_code == 200
    elif ending == "move":
        changed = admin.patch(url, json={"agency": "police2"}, headers={"If-Match": _user_etag(admin, police.user_id)})
        assert changed.status_code == 200
        assert changed.json["agency"] == "police2"
    else:
        assert admin.post(f"{url}/disable").status_code == 200
        changed = admin.post(f"{url}/enable")
        assert changed.status_code == 200
    assert (changed.json["id"], changed.json["active"]) == (police.user_id, True)
    ended = _calendar(client, address)
    assert ended.status_code == 401 and ended.headers["WWW-Authenticate"].startswith("Bearer")
    assert_problem(ended, 401, "unauthorized")
    assert b"VCALENDAR" not in ended.data


# --- a new role or agency ------------------------------------------------------------------------


def _user_etag(admin, user_id):
    resp = admin.get(f"/api/v1/users/{user_id}")
    assert resp.status_code == 200
    return resp.headers["ETag"]


def test_moving_a_user_to_another_agency_ends_its_logins_and_it_works_there_after_logging_in(world, client):
    admin = world["admin"]
    police = world["police"]
    case = world.case()  # a case of the police agency, not of police2
    assert police.get(f"/api/v1/cases/{case['id']}").status_code == 200
    session = login(client, "user.police").json
    url = f"/api/v1/users/{police.user_id}"
    etag = _user_etag(admin, police.user_id)
    resp = admin.patch(url, json={"agency": "police2"}, headers={"If-Match": etag})
    assert resp.status_code == 200, resp.json
    assert (resp.json["role"], resp.json["agency"]) == ("police", "police2")
    assert resp.headers["ETag"] != etag
    assert police.get(f"/api/v1/cases/{case['id']}").status_code == 401  # its token names the old agency
    assert client.get("/api/v1/auth/me", headers=bearer(session["access_token"])).status_code == 401
    assert refresh(client, session["refresh_token"]).json["error"] == "invalid_grant"
    again = login(client, "user.police")
    assert again.status_code == 200
    moved = bearer(again.json["access_token"])
    assert client.get("/api/v1/auth/me", headers=moved).json["agency"] == "police2"
    assert client.get(f"/api/v1/cases/{case['id']}", headers=moved).status_code == 404


def test_a_user_becomes_an_auditor_without_an_agency(world, client):
    admin = world["admin"]
    user_id = world["nav"].user_id
    resp = admin.patch(
        f"/api/v1/users/{user_id}", json={"role": "auditor"}, headers={"If-Match": _user_etag(admin, user_id)}
    )
    assert resp.status_code == 200, resp.json
    assert (resp.json["role"], resp.json["agency"]) == ("auditor", None)
    token = login(client, "user.nav").json["access_token"]
    assert client.get("/api/v1/audit/verify", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize(
    "body,field",
    [
        ({"role": "wizard"}, "role"),
        ({"agency": "police"}, "agency"),  # a nav user in a police agency
        ({"role": "police"}, "agency"),  # a police user in the nav agency
        ({"agency": None}, "agency"),  # a staff user needs an agency
        ({"role": "admin", "agency": "nav"}, "agency"),
        ({"agency": "no-such-agency"}, "agency"),
        ({"password": FAKE_PASSWORD}, "password"),  # set with POST …/password, never by PATCH
    ],
    ids=[
        "unknown-role",
        "kind-mismatch",
        "role-mismatch",
        "staff-without-agency",
        "admin-with-agency",
        "unknown-agency",
        "password",
    ],
)
def test_a_change_that_does_not_fit_is_422_and_changes_nothing(world, client, body, field):
    admin = world["admin"]
    user_id = world["nav"].user_id
    etag = _user_etag(admin, user_id)
    field_problem(admin.patch(f"/api/v1/users/{user_id}", json=body, headers={"If-Match": etag}), field)
    assert _user_etag(admin, user_id) == etag
    assert world["nav"].get("/api/v1/auth/me").status_code == 200
    assert login(client, "user.nav", FAKE_PASSWORD).status_code == 400


def test_a_user_patch_needs_a_current_if_match(world):
    admin = world["admin"]
    url = f"/api/v1/users/{world['nav'].user_id}"
    assert admin.patch(url, json={"role": "auditor"}).status_code == 428
    stale = _user_etag(admin, world["nav"].user_id)
    assert admin.post(f"{url}/disable").status_code == 200
    assert admin.patch(url, json={"role": "auditor"}, headers={"If-Match": stale}).status_code == 412
    assert admin.get(url).json["role"] == "nav"


def test_a_patch_that_changes_nothing_keeps_the_users_logins(world):
    admin = world["admin"]
    user_id = world["nav"].user_id
    resp = admin.patch(
        f"/api/v1/users/{user_id}",
        json={"role": "nav", "agency": "nav", "username": "ignored"},
        headers={"If-Match": _user_etag(admin, user_id)},
    )
    assert resp.status_code == 200, resp.json
    assert resp.json["username"] == "user.nav"
    assert world["nav"].get("/api/v1/auth/me").status_code == 200


def test_a_user_of_the_identity_provider_keeps_its_password_role_and_agency_there(world, app, client):
    from casesvc.auth.oidc import EXTERNAL_PASSWORD_HASH

    admin = world["admin"]
    user = admin.post("/api/v1/users", json=new_user()).json
    with app.app_context():  # as the provider's first login provisions it
        db.session.get(User, user["id"]).password_hash = EXTERNAL_PASSWORD_HASH
        db.session.commit()
    url = f"/api/v1/users/{user['id']}"
    reset = admin.post(f"{url}/password", json={"password": FAKE_PASSWORD})
    assert reset.status_code == 409 and reset.json["type"].endswith("/external-user")
    moved = admin.patch(url, json={"role": "auditor"}, headers={"If-Match": _user_etag(admin, user["id"])})
    assert moved.status_code == 409 and moved.json["type"].endswith("/external-user")
    assert admin.get(url).json["role"] == "nav"
    assert login(client, "fake.person", FAKE_PASSWORD).status_code == 400


def test_an_admin_cannot_change_its_own_role(world):
    admin = world["admin"]
    resp = admin.patch(
        f"/api/v1/users/{admin.user_id}",
        json={"role": "auditor"},
        headers={"If-Match": _user_etag(admin, admin.user_id)},
    )
    assert resp.status_code == 409 and resp.json["type"].endswith("/cannot-change-self")
    assert admin.get(f"/api/v1/users/{admin.user_id}").json["role"] == "admin"


def test_users_list_filters_by_agency_role_and_active_and_paginates(world):
    admin = world["admin"]
    police2 = world["police2"].user_id
    assert admin.post(f"/api/v1/users/{police2}/disable").status_code == 200

    def usernames(query):
        resp = admin.get(f"/api/v1/users{query}")
        assert resp.status_code == 200, resp.json
        return [u["username"] for u in resp.json["items"]]

    assert usernames("?agency=nav") == ["user.nav"]
    assert usernames("?role=police") == ["user.west", "user.police2", "user.police"]
    assert usernames("?role=police&active=true") == ["user.west", "user.police"]
    assert usernames("?active=false") == ["user.police2"]
    assert usernames("?role=admin") == ["user.admin"]
    assert usernames("?agency=nav&role=police") == []
    assert admin.get("/api/v1/users?role=wizard").status_code == 422
    seen = [u["id"] for u in all_pages(admin, "/api/v1/users", limit=4)]
    assert len(seen) == len(set(seen)) == len(world.actors)
    assert all("password" not in json.dumps(u) for u in admin.get("/api/v1/users").json["items"])


def test_disabling_a_user_refuses_its_tokens_and_its_logins_at_once(world, client):
    admin = world["admin"]
    session = login(client, "user.nav").json
    minted = world["nav"]  # a token the user held before
    assert client.get("/api/v1/auth/me", headers=bearer(session["access_token"])).status_code == 200
    resp = admin.post(f"/api/v1/users/{world['nav'].user_id}/disable")
    assert resp.status_code == 200, resp.json
    assert resp.json["active"] is False
    live = client.get("/api/v1/auth/me", headers=bearer(session["access_token"]))
    assert live.status_code == 401 and live.headers["WWW-Authenticate"].startswith("Bearer")
    assert minted.get("/api/v1/cases").status_code == 401
    refreshed = refresh(client, session["refresh_token"])
    assert refreshed.status_code == 400 and refreshed.json["error"] == "invalid_grant"
    relogin = login(client, "user.nav")
    assert relogin.status_code == 400 and relogin.json["error"] == "invalid_grant"
    assert "access_token" not in relogin.json
    assert admin.get(f"/api/v1/users/{world['nav'].user_id}").json["active"] is False


def test_enabling_lets_the_user_log_in_again_but_the_logins_it_had_stay_ended(world, client):
    admin = world["admin"]
    user_id = world["nav"].user_id
    before = login(client, "user.nav").json
    disabled = admin.post(f"/api/v1/users/{user_id}/disable")
    assert disabled.status_code == 200
    assert (disabled.json["id"], disabled.json["active"]) == (user_id, False)
    again = admin.post(f"/api/v1/users/{user_id}/enable")
    assert again.status_code == 200 and again.json["active"] is True
    fresh = login(client, "user.nav")
    assert fresh.status_code == 200
    assert client.get("/api/v1/auth/me", headers=bearer(fresh.json["access_token"])).status_code == 200
    assert_token_works(client, fresh.json["access_token"], "user.nav", role="nav", agency="nav")
    # what was taken away by disabling is not given back
    assert client.get("/api/v1/auth/me", headers=bearer(before["access_token"])).status_code == 401
    assert_token_refused(client, before["access_token"])
    assert refresh(client, before["refresh_token"]).status_code == 400
    assert_oauth_error(refresh(client, before["refresh_token"]), 400, "invalid_grant")


def test_an_admin_cannot_disable_itself(world, client):
    admin = world["admin"]
    resp = admin.post(f"/api/v1/users/{admin.user_id}/disable")
    assert resp.status_code == 409
    assert resp.json["type"].endswith("/cannot-disable-self")
    assert "your own account" in resp.json["detail"]
    assert admin.get(f"/api/v1/users/{admin.user_id}").json["active"] is True
    assert login(client, "user.admin").status_code == 200


def test_an_admin_can_disable_another_admin(world, client):
    admin = world["admin"]
    other = admin.post("/api/v1/users", json=new_user(username="fake.admin2", role="admin", agency=None)).json
    assert login(client, "fake.admin2", FAKE_PASSWORD).status_code == 200
    token = assert_token_granted(login(client, "fake.admin2", FAKE_PASSWORD))["access_token"]
    assert_token_works(client, token, "fake.admin2", role="admin")
    disabled = admin.post(f"/api/v1/users/{other['id']}/disable")
    assert disabled.status_code == 200
    assert (disabled.json["id"], disabled.json["active"]) == (other["id"], False)
    assert login(client, "fake.admin2", FAKE_PASSWORD).status_code == 400
    assert_oauth_error(login(client, "fake.admin2", FAKE_PASSWORD), 400, "invalid_grant")
    assert_token_refused(client, token)  # and its login so far has ended
    assert admin.get(f"/api/v1/users/{other['id']}").json["active"] is False


# --- Idempotency-Key -----------------------------------------------------------------------------


def test_creating_posts_honour_idempotency_key(world):
    admin = world["admin"]
    first = admin.post("/api/v1/agencies", json=new_agency(), headers={"Idempotency-Key": "fake-key-1"})
    replay = admin.post("/api/v1/agencies", json=new_agency(), headers={"Idempotency-Key": "fake-key-1"})
    assert first.status_code == replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json == first.json
    other = admin.post(
        "/api/v1/agencies", json=new_agency(name="Fake Other"), headers={"Idempotency-Key": "fake-key-1"}
    )
    assert other.status_code == 422
    user = admin.post("/api/v1/users", json=new_user(), headers={"Idempotency-Key": "fake-key-2"})
    user_replay = admin.post("/api/v1/users", json=new_user(), headers={"Idempotency-Key": "fake-key-2"})
    assert user.status_code == user_replay.status_code == 201
    assert user_replay.headers["Idempotent-Replayed"] == "true" and user_replay.json["id"] == user.json["id"]
    assert len(admin.get("/api/v1/users?agency=nav").json["items"]) == 2


def test_a_replay_with_another_password_is_refused_and_the_password_is_not_stored(world, app):
    admin = world["admin"]
    body = new_user()
    assert admin.post("/api/v1/users", json=body, headers={"Idempotency-Key": "fake-key-3"}).status_code == 201
    changed = admin.post(
        "/api/v1/users", json=new_user(password="another fake password"), headers={"Idempotency-Key": "fake-key-3"}
    )
    assert changed.status_code == 422
    with app.app_context():
        stored = db.session.scalars(select(IdempotencyKey)).all()
        rows = [(s.fingerprint, s.body, s.headers) for s in stored]
        db.session.remove()
    assert len(rows) == 1
    fingerprint, stored_body, stored_headers = rows[0]
    assert FAKE_PASSWORD not in stored_body + stored_headers
    # the fingerprint is no plain (fast, unsalted) hash of a body holding the password
    plain = hashlib.sha256(
        b"POST /api/v1/users\n" + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    assert fingerprint != plain


# --- audit: ids and codes only -------------------------------------------------------------------


def test_admin_writes_are_audited_with_ids_only(world, app, caplog):
    caplog.set_level(logging.DEBUG)
    admin = world["admin"]
    since = head_seq(app)
    agency = admin.post("/api/v1/agencies", json=new_agency())
    etag = agency.headers["ETag"]
    assert (
        admin.patch("/api/v1/agencies/fake-nav", json={"name": "Fake NAV Nyby"}, headers={"If-Match": etag}).status_code
        == 200
    )
    user = admin.post("/api/v1/users", json=new_user(agency="fake-nav")).json
    assert admin.post(f"/api/v1/users/{user['id']}/disable").status_code == 200
    assert admin.post(f"/api/v1/users/{user['id']}/enable").status_code == 200
    reset = admin.post(f"/api/v1/users/{user['id']}/password", json={"password": FAKE_PASSWORD + "2"})
    assert reset.status_code == 200
    etag = reset.headers["ETag"]
    assert (
        admin.patch(f"/api/v1/users/{user['id']}", json={"role": "auditor"}, headers={"If-Match": etag}).status_code
        == 200
    )
    assert admin.post("/api/v1/users", json=new_user(username="fake.short", password="Xq7-fak")).status_code == 422
    recorded = events(app, since)
    summary = [(e["action"], e["resource_type"], e["resource_id"], e["outcome"], e["actor"]) for e in recorded]
    assert summary == [
        ("agencies.create_agency", "agency", "fake-nav", "allowed", admin.user_id),
        ("agencies.patch_agency", "agency", "fake-nav", "allowed", admin.user_id),
        ("users.create_user", "user", user["id"], "allowed", admin.user_id),
        ("users.disable_user", "user", user["id"], "allowed", admin.user_id),
        ("users.enable_user", "user", user["id"], "allowed", admin.user_id),
        ("users.set_password", "user", user["id"], "allowed", admin.user_id),
        ("users.patch_user", "user", user["id"], "allowed", admin.user_id),
        ("users.create_user", "user", None, "error", admin.user_id),
    ]
    dumped = json.dumps(recorded)
    for secret_or_name in (FAKE_PASSWORD, FAKE_PASSWORD + "2", "Xq7-fak", "fake.person", "fake.short", "Fake NAV"):
        assert secret_or_name not in dumped
    assert FAKE_PASSWORD not in caplog.text and "Xq7-fak" not in caplog.text


def test_admin_reads_are_audited_with_the_ids_they_returned(world, app):
    admin = world["admin"]
    since = head_seq(app)
    listed = admin.get("/api/v1/users?agency=nav").json
    assert admin.get("/api/v1/agencies?kind=nav").status_code == 200
    assert world["police"].get(f"/api/v1/users/{world['nav'].user_id}").status_code == 403
    recorded = events(app, since)
    assert [(e["action"], e["ids"], e["outcome"]) for e in recorded] == [
        ("users.list_users", [listed["items"][0]["id"]], "allowed"),
        ("agencies.list_agencies", ["nav"], "allowed"),
        ("users.get_user", None, "denied"),
    ]


@pytest.mark.parametrize("password", ["a new password", None, 12345678])
def test_a_user_patch_refuses_any_password_and_the_document_offers_none(world, client, password):
    """A password is set through its own endpoint; PATCH refuses one whatever its value, and the
    document does not list it among the fields a PATCH may carry."""
    admin = world["admin"]
    user_id = world["nav"].user_id
    etag = _user_etag(admin, user_id)
    body = assert_field_error(
        admin.patch(f"/api/v1/users/{user_id}", json={"role": "nav", "password": password}, headers={"If-Match": etag}),
        "password",
    )
    assert "POST /api/v1/users/{id}/password" in body["errors"]["password"][0]
    assert _user_etag(admin, user_id) == etag
    spec = client.get("/api/v1/openapi.json").json
    patch = spec["paths"]["/api/v1/users/{user_id}"]["patch"]["requestBody"]["content"]["application/json"]
    ref = patch["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "password" not in spec["components"]["schemas"][ref]["properties"]
