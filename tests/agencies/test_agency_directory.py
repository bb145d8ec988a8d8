"""The agency directory (README: The agency directory): staff see the code, kind, name and
municipalities of the agencies serving one of their own agency's municipalities, nothing about
users or webhooks; admin and auditor see every agency; paginated and audited like every list."""

from __future__ import annotations

import pytest

from casesvc.agencies.service import create_agency
from casesvc.extensions import db
from tests.audit.test_audit_recording import head_seq, one_event
from tests.conftest import all_pages

URL = "/api/v1/agencies/directory"
OSLO = {"police", "health", "nav", "cw", "slt", "police2"}
BERGEN = {"west", "westhealth"}


@pytest.fixture
def bridged(world, app):
    """One more agency, serving both municipalities of the world."""
    with app.app_context():
        create_agency("bridge", "child_welfare", "Test bridge", ["4601", "0301"])
        db.session.commit()
    return world


def codes(resp) -> set[str]:
    assert resp.status_code == 200, resp.json
    return {item["code"] for item in resp.json["items"]}


def test_staff_see_the_agencies_of_their_municipalities_and_nothing_of_their_users(bridged):
    resp = bridged["health"].get(URL)
    assert codes(resp) == OSLO | {"bridge"}
    for item in resp.json["items"]:
        assert set(item) == {"code", "kind", "name", "municipalities"}
    bridge = next(item for item in resp.json["items"] if item["code"] == "bridge")
    assert bridge == {
        "code": "bridge",
        "kind": "child_welfare",
        "name": "Test bridge",
        "municipalities": ["0301", "4601"],
    }
    assert "user." not in resp.get_data(as_text=True)  # no usernames
    assert codes(bridged["west"].get(URL)) == BERGEN | {"bridge"}


def test_any_scope_of_the_role_is_enough_and_none_is_refused(world):
    police = world["police"]
    for scope in ("notes:read", "reminders:write", "consents:write"):
        narrow = world.as_user(police.user_id, "police", "police", "user.police", scopes=[scope])
        assert codes(narrow.get(URL)) == OSLO
    scopeless = world.as_user(police.user_id, "police", "police", "user.police", scopes=[])
    resp = scopeless.get(URL)
    assert resp.status_code == 403 and resp.json["type"].endswith("/insufficient-scope")


def test_admin_and_auditor_see_every_agency(bridged):
    everything = OSLO | BERGEN | {"bridge"}
    assert codes(bridged["admin"].get(URL)) == everything
    assert codes(bridged["auditor"].get(URL)) == everything
    admin = bridged["admin"]
    audit_only = bridged.as_user(admin.user_id, "admin", None, "user.admin", scopes=["audit:read"])
    assert codes(audit_only.get(URL)) == everything


def test_no_token_is_401(client):
    resp = client.get(URL)
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_pages_walk_the_whole_directory_newest_first(bridged):
    listed = all_pages(bridged["slt"], URL, limit=2)
    assert [item["code"] for item in listed] == [item["code"] for item in bridged["slt"].get(URL).json["items"]]
    assert {item["code"] for item in listed} == OSLO | {"bridge"}
    assert len(listed) == len(OSLO) + 1
    assert listed[0]["code"] == "bridge"  # created last
    too_small = bridged["slt"].get(URL, query_string={"limit": 0})
    assert too_small.status_code == 422 and "limit" in too_small.json["errors"]
    bad_cursor = bridged["slt"].get(URL, query_string={"cursor": "nonsense"})
    assert bad_cursor.status_code == 422 and "cursor" in bad_cursor.json["errors"]


def test_kind_filters(world):
    assert codes(world["nav"].get(URL, query_string={"kind": "police"})) == {"police", "police2"}
    resp = world["nav"].get(URL, query_string={"kind": "sheriff"})
    assert resp.status_code == 422 and "kind" in resp.json["errors"]


def test_new_municipalities_count_from_the_next_request(world):
    admin, nav = world["admin"], world["nav"]
    etag = admin.get("/api/v1/agencies/nav").headers["ETag"]
    moved = admin.patch("/api/v1/agencies/nav", json={"municipalities": ["4601"]}, headers={"If-Match": etag})
    assert moved.status_code == 200
    assert codes(nav.get(URL)) == BERGEN | {"nav"}


def test_a_read_of_the_directory_is_audited_with_the_codes_it_showed(world, app):
    since = head_seq(app)
    assert codes(world["west"].get(URL)) == BERGEN
    event = one_event(app, since)
    assert (event["actor"], event["actor_agency"], event["outcome"], event["status"]) == (
        world["west"].user_id,
        "west",
        "allowed",
        200,
    )
    assert event["resource_type"] == "agency" and sorted(event["ids"]) == sorted(BERGEN)
    since = head_seq(app)
    scopeless = world.as_user(world["west"].user_id, "police", "west", "user.west", scopes=[])
    assert scopeless.get(URL).status_code == 403
    assert one_event(app, since)["outcome"] == "denied"


def test_the_code_directory_is_reserved_for_the_directory(world):
    resp = world["admin"].post(
        "/api/v1/agencies", json={"code": "directory", "kind": "nav", "name": "Test", "municipalities": ["0301"]}
    )
    assert resp.status_code == 422 and "code" in resp.json["errors"]
    assert "directory" not in codes(world["admin"].get(URL))
