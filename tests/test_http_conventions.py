"""README "The API at a glance": problem+json errors, body limits, media types, ETag/If-Match, Idempotency-Key and
cursor pagination."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from casesvc import create_app
from casesvc.common.jsonio import JSONText
from casesvc.common.timeutil import oslo_today
from casesvc.extensions import db
from casesvc.youths import service as youth_service
from casesvc.youths.models import Youth
from tests.conftest import assert_problem, youth_number

LEAKS = (
    "Traceback",
    "SELECT",
    "INSERT",
    "UPDATE ",
    "FROM youths",
    "INTO youths",
    "national_id",
    "UNIQUE",
    "constraint",
    "sqlalchemy",
    "psycopg",
    "sqlite",
    'File "',
)


def assert_no_leak(resp) -> None:
    text = resp.get_data(as_text=True)
    for word in LEAKS:
        assert word not in text, f"response leaks {word!r}: {text}"


def youth_body(world, born_year_offset: int = 15, start: int = 600) -> dict:
    born = date(oslo_today().year - born_year_offset, 2, 11)
    return {
        "given_name": "Test",
        "family_name": "Testesen",
        "birth_date": born.isoformat(),
        "national_id": youth_number(born, start),
        "municipality": "0301",
        "guardians": [{"name": "Test Forelder", "relation": "father"}],
    }


def all_items(actor, url: str) -> list[dict]:
    items, cursor = [], None
    while True:
        resp = actor.get(url + (f"{'&' if '?' in url else '?'}cursor={cursor}" if cursor else ""))
        assert resp.status_code == 200, resp.json
        items += resp.json["items"]
        cursor = resp.json["next_cursor"]
        if cursor is None:
            return items


# --- problem+json for every error ----------------------------------------------------------------


def test_malformed_json_is_400_problem_not_500(world):
    resp = world["police"].post(
        "/api/v1/youths", data='{"given_name": "Test",', headers={"Content-Type": "application/json"}
    )
    body = assert_problem(resp, 400)
    assert "JSON" in body["detail"]
    assert_no_leak(resp)


def test_body_over_one_mebibyte_is_413_problem(world):
    big = b'{"given_name": "' + b"x" * (1024 * 1024) + b'"}'
    resp = world["police"].post("/api/v1/youths", data=big, headers={"Content-Type": "application/json"})
    assert_problem(resp, 413)


def test_a_status_has_one_title_whoever_answers_it(world):
    """422 from the schemas and from the services, 413 from werkzeug: RFC 9110's names."""
    youth = world.youth()
    url = f"/api/v1/youths/{youth['id']}"
    etag = world["police"].get(url).headers["ETag"]
    from_schema = assert_problem(
        world["police"].patch(url, json={"national_id": None}, headers={"If-Match": etag}), 422
    )
    from_service = assert_problem(world["police"].patch(url, json={"national_id": ""}, headers={"If-Match": etag}), 422)
    from_policy_check = assert_problem(
        world["police"].post(
            "/api/v1/cases", json={"youth_id": youth["id"], "origin": "police", "municipality": "4601"}
        ),
        422,
    )
    assert {from_schema["title"], from_service["title"], from_policy_check["title"]} == {"Unprocessable Content"}
    for problem in (from_schema, from_service, from_policy_check):
        assert problem["detail"].startswith("The request has invalid fields: ") or problem["detail"].startswith(
            tuple(f"{field}: " for field in problem["errors"])
        ), problem
    big = b'{"given_name": "' + b"x" * (1024 * 1024) + b'"}'
    too_large = world["police"].post("/api/v1/youths", data=big, headers={"Content-Type": "application/json"})
    assert assert_problem(too_large, 413)["title"] == "Content Too Large"


def test_body_just_under_the_limit_is_read_normally(world):
    # the limit is on size only: a large but acceptable body reaches validation (422, not 413)
    body = b'{"given_name": "' + b"x" * (1024 * 1024 - 100) + b'"}'
    resp = world["police"].post("/api/v1/youths", data=body, headers={"Content-Type": "application/json"})
    assert_problem(resp, 422)


def test_post_with_text_plain_body_is_415_problem(world):
    resp = world["police"].post("/api/v1/youths", data="given_name=Test", headers={"Content-Type": "text/plain"})
    body = assert_problem(resp, 415)
    assert body["type"] == "/problems/unsupported-media-type"
    assert world["police"].get("/api/v1/youths").json["items"] == []


def test_patch_with_form_body_is_415_problem(world):
    youth = world.youth()
    resp = world["police"].patch(f"/api/v1/youths/{youth['id']}", data={"school": "X"}, headers={"If-Match": '"1"'})
    assert_problem(resp, 415)


def test_validation_error_is_422_with_errors_by_field(world):
    body = youth_body(world)
    body["given_name"] = ""
    del body["municipality"]
    body["guardians"] = [{"name": "Test Forelder", "relation": ""}]
    resp = world["police"].post("/api/v1/youths", json=body)
    problem = assert_problem(resp, 422)
    errors = problem["errors"]
    assert isinstance(errors, dict)
    assert set(errors) >= {"given_name", "municipality", "guardians.0.relation"}
    for field, messages in errors.items():
        assert isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages), field


def test_unknown_route_is_404_problem(world, client):
    assert_problem(world["police"].get("/api/v1/no-such-thing"), 404)
    assert_problem(client.get("/no-such-thing"), 404)


def test_wrong_method_is_405_problem(world, client):
    assert_problem(world["police"].delete("/api/v1/youths"), 405)
    assert_problem(client.post("/healthz"), 405)


def test_missing_token_is_401_problem_with_bearer_challenge(client):
    resp = client.get("/api/v1/youths")
    assert_problem(resp, 401)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_unexpected_exception_in_a_view_is_500_problem_without_details(world, monkeypatch):
    def explode(principal, args):
        raise RuntimeError("SELECT national_id FROM youths WHERE secret = 'x'")

    monkeypatch.setattr(youth_service, "list_youths", explode)
    resp = world["police"].get("/api/v1/youths")
    body = assert_problem(resp, 500)
    assert body["type"] == "/problems/internal-error"
    assert_no_leak(resp)
    assert "RuntimeError" not in resp.get_data(as_text=True)


def test_unexpected_exception_on_any_route_is_500_problem(tmp_path):
    other = create_app({"env": "test", "database_url": f"sqlite:///{tmp_path / 'x.sqlite3'}"}, instance_path=tmp_path)

    @other.route("/boom")
    def boom():
        raise KeyError("INSERT INTO youths (national_id) VALUES ('01010150000')")

    resp = other.test_client().get("/boom")
    assert_problem(resp, 500)
    assert_no_leak(resp)
    assert "KeyError" not in resp.get_data(as_text=True)


def test_integrity_error_from_the_database_is_409_without_sql(world, monkeypatch):
    first = world.youth()
    with world.app.app_context():
        number = db.session.scalar(select(Youth.national_id).where(Youth.id == first["id"]))

    def duplicate(principal, data):
        # skips the service's own duplicate check, so the database's unique index answers
        youth = Youth(
            national_id=number,
            given_name="Test",
            family_name="Dobbel",
            birth_date=data["birth_date"],
            municipality="0301",
            created_by_agency=principal.agency,
        )
        db.session.add(youth)
        db.session.flush()
        return youth

    monkeypatch.setattr(youth_service, "register_youth", duplicate)
    resp = world["police"].post("/api/v1/youths", json=youth_body(world))
    assert_problem(resp, 409)
    assert_no_leak(resp)
    monkeypatch.undo()
    # nothing of the failed request was stored, and the service still works
    items = world["police"].get("/api/v1/youths").json["items"]
    assert [y["id"] for y in items] == [first["id"]]


# --- ETag / If-Match -----------------------------------------------------------------------------


def test_get_carries_etag_and_patch_without_if_match_is_428(world):
    youth = world.youth()
    got = world["police"].get(f"/api/v1/youths/{youth['id']}")
    assert got.headers["ETag"]
    resp = world["police"].patch(f"/api/v1/youths/{youth['id']}", json={"school": "Other school"})
    body = assert_problem(resp, 428)
    assert body["type"] == "/problems/precondition-required"
    assert world["police"].get(f"/api/v1/youths/{youth['id']}").json["school"] is None


def test_patch_with_stale_etag_is_412_and_changes_nothing(world):
    youth = world.youth()
    url = f"/api/v1/youths/{youth['id']}"
    etag = world["police"].get(url).headers["ETag"]
    ok = world["police"].patch(url, json={"school": "First school"}, headers={"If-Match": etag})
    assert ok.status_code == 200, ok.json
    assert ok.headers["ETag"] != etag
    stale = world["police"].patch(url, json={"school": "Lost update"}, headers={"If-Match": etag})
    assert_problem(stale, 412)
    assert world["police"].get(url).json["school"] == "First school"
    fresh = world["police"].patch(url, json={"school": "Second school"}, headers={"If-Match": ok.headers["ETag"]})
    assert fresh.status_code == 200
    assert fresh.json["school"] == "Second school"


def test_patch_with_if_match_star_is_accepted(world):
    youth = world.youth()
    url = f"/api/v1/youths/{youth['id']}"
    resp = world["police"].patch(url, json={"school": "Any school"}, headers={"If-Match": "*"})
    assert resp.status_code == 200, resp.json
    assert world["police"].get(url).json["school"] == "Any school"


# --- Idempotency-Key -----------------------------------------------------------------------------


def test_same_idempotency_key_and_body_replays_the_original_response(world):
    body = youth_body(world)
    headers = {"Idempotency-Key": "create-youth-1"}
    first = world["police"].post("/api/v1/youths", json=body, headers=headers)
    assert first.status_code == 201, first.json
    again = world["police"].post("/api/v1/youths", json=body, headers=headers)
    assert again.status_code == 201
    assert again.json == first.json
    assert again.headers["Location"] == first.headers["Location"]
    items = all_items(world["police"], "/api/v1/youths")
    assert [y["id"] for y in items] == [first.json["id"]]


def test_same_idempotency_key_with_another_body_is_422(world):
    headers = {"Idempotency-Key": "create-youth-2"}
    first = world["police"].post("/api/v1/youths", json=youth_body(world), headers=headers)
    assert first.status_code == 201
    other = world["police"].post("/api/v1/youths", json=youth_body(world, start=700), headers=headers)
    problem = assert_problem(other, 422)
    assert "Idempotency-Key" in problem["errors"]
    assert len(all_items(world["police"], "/api/v1/youths")) == 1


def test_without_idempotency_key_a_repeat_is_a_new_request(world):
    body = youth_body(world)
    first = world["police"].post("/api/v1/youths", json=body)
    assert first.status_code == 201
    # the second attempt is processed afresh: the national id is taken now
    again = world["police"].post("/api/v1/youths", json=body)
    assert again.status_code == 409
    assert_problem(again, 409, "youth-exists")
    assert [y["id"] for y in all_items(world["police"], "/api/v1/youths")] == [first.json["id"]]


def test_idempotency_key_belongs_to_the_user_who_sent_it(world):
    youth = world.youth()
    colleague = world.actor("police", "police", "user.police.colleague")
    body = {"youth_id": youth["id"], "origin": "police", "summary": "Test case", "participants": ["health"]}
    headers = {"Idempotency-Key": "shared-key"}
    mine = world["police"].post("/api/v1/cases", json=body, headers=headers)
    theirs = colleague.post("/api/v1/cases", json=body, headers=headers)
    assert mine.status_code == theirs.status_code == 201
    assert mine.json["id"] != theirs.json["id"]
    ids = {c["id"] for c in all_items(world["police"], "/api/v1/cases")}
    assert ids == {mine.json["id"], theirs.json["id"]}


def test_failed_request_does_not_burn_the_idempotency_key(world):
    headers = {"Idempotency-Key": "retry-after-fix"}
    bad = youth_body(world)
    bad["municipality"] = "oslo"
    refused = world["police"].post("/api/v1/youths", json=bad, headers=headers)
    assert refused.status_code == 422
    assert "municipality" in assert_problem(refused, 422, "validation-error")["errors"]
    assert all_items(world["police"], "/api/v1/youths") == []
    good = world["police"].post("/api/v1/youths", json=youth_body(world), headers=headers)
    assert good.status_code == 201, good.json
    assert (good.json["national_id"], good.json["municipality"]) == (youth_body(world)["national_id"], "0301")
    assert [y["id"] for y in all_items(world["police"], "/api/v1/youths")] == [good.json["id"]]


# --- cursor pagination ---------------------------------------------------------------------------


def test_list_limit_defaults_to_50(world):
    for _ in range(51):
        world.youth()
    page = world["police"].get("/api/v1/youths")
    assert page.status_code == 200
    assert len(page.json["items"]) == 50
    assert page.json["next_cursor"]
    rest = world["police"].get(f"/api/v1/youths?cursor={page.json['next_cursor']}")
    assert len(rest.json["items"]) == 1
    assert rest.json["next_cursor"] is None


@pytest.mark.parametrize("limit", [0, -1, "ten", "1.5"])
def test_limit_below_1_or_not_a_number_is_422(world, limit):
    problem = assert_problem(world["police"].get(f"/api/v1/youths?limit={limit}"), 422)
    assert "limit" in problem["errors"]


@pytest.mark.parametrize("limit", [201, 500, 10**30])
def test_limit_above_200_is_taken_as_200(world, limit):
    """README "The API at a glance": "default 50, max 200" — a larger limit is capped, not refused."""
    resp = world["police"].get(f"/api/v1/youths?limit={limit}")
    assert resp.status_code == 200, resp.json
    assert resp.json == {"items": [], "next_cursor": None}


def test_limit_200_is_accepted(world):
    resp = world["police"].get("/api/v1/youths?limit=200")
    assert resp.status_code == 200
    assert resp.json == {"items": [], "next_cursor": None}


def test_walking_the_pages_gives_every_item_once_newest_first(world):
    created = [world.youth()["id"] for _ in range(7)]
    seen, pages, cursor = [], [], None
    while True:
        url = "/api/v1/youths?limit=3" + (f"&cursor={cursor}" if cursor else "")
        resp = world["police"].get(url)
        assert resp.status_code == 200
        pages.append(len(resp.json["items"]))
        seen += [y["id"] for y in resp.json["items"]]
        cursor = resp.json["next_cursor"]
        if cursor is None:
            break
    assert pages == [3, 3, 1]
    assert seen == list(reversed(created))


def test_cursor_is_stable_when_new_items_arrive(world):
    created = [world.youth()["id"] for _ in range(4)]
    first = world["police"].get("/api/v1/youths?limit=2").json
    world.youth()  # newer than everything: it belongs before page one, not in page two
    second = world["police"].get(f"/api/v1/youths?limit=2&cursor={first['next_cursor']}").json
    assert [y["id"] for y in first["items"] + second["items"]] == list(reversed(created))


# (a cursor with NUL in it is refused before it is read: tests/test_hostile_input.py)
@pytest.mark.parametrize("cursor", ["garbage", "WyJ4IiwgMV0", "bnVsbA", "WzEsMl0", "%ff%fe"])
def test_garbage_cursor_is_422(world, cursor):
    world.youth()
    problem = assert_problem(world["police"].get(f"/api/v1/youths?cursor={cursor}"), 422)
    assert "cursor" in problem["errors"]


# --- every single resource carries an ETag ----------------------------------------------------------


def _etag_of(resp) -> str:
    assert resp.status_code in (200, 201), resp.json
    assert re.fullmatch(r'"[^"]+"', resp.headers.get("ETag", "")), resp.headers
    return resp.headers["ETag"]


def test_events_and_notes_carry_an_etag_that_never_changes(world):
    case = world.case()
    base = f"/api/v1/cases/{case['id']}"
    event = world["police"].post(
        f"{base}/events", json={"kind": "meeting", "summary": "Met at school", "occurred_at": "2026-01-05T08:00:00Z"}
    )
    note = world["police"].post(f"{base}/notes", json={"body": "Spoke with the school."})
    for created, url in ((event, f"{base}/events/{event.json['id']}"), (note, f"{base}/notes/{note.json['id']}")):
        assert _etag_of(created) == _etag_of(world["police"].get(url)) == _etag_of(world["police"].get(url))


def test_a_consent_carries_an_etag_that_changes_when_it_is_withdrawn(world):
    case = world.case()
    url = f"/api/v1/cases/{case['id']}/consents"
    created = world["police"].post(
        url,
        json={
            "given_by": "both",
            "given_on": oslo_today().isoformat(),
            "expires_on": (oslo_today() + timedelta(days=30)).isoformat(),
            "purpose": "Follow-up",
            "agencies": ["health"],
            "categories": ["general"],
        },
    )
    read = world["police"].get(f"{url}/{created.json['id']}")
    assert _etag_of(created) == _etag_of(read)
    withdrawn = world["police"].post(f"{url}/{created.json['id']}/withdraw")
    assert _etag_of(withdrawn) != _etag_of(read)
    assert _etag_of(world["police"].get(f"{url}/{created.json['id']}")) == _etag_of(withdrawn)


def test_a_user_carries_an_etag_that_changes_when_the_user_is_disabled(world):
    url = f"/api/v1/users/{world['health'].user_id}"
    before = _etag_of(world["admin"].get(url))
    disabled = world["admin"].post(f"{url}/disable")
    assert _etag_of(disabled) != before
    assert _etag_of(world["admin"].get(url)) == _etag_of(disabled)
    created = world["admin"].post(
        "/api/v1/users",
        json={"username": "etag.user", "role": "nav", "agency": "nav", "password": "a-long-test-password"},
    )
    assert _etag_of(created) == _etag_of(world["admin"].get(f"/api/v1/users/{created.json['id']}"))


def test_a_webhook_carries_an_etag_that_changes_when_it_is_replaced(world):
    url = "/api/v1/agencies/health/webhook"
    body = {"url": "https://hooks.example.test/casesvc", "secret": "a-test-secret-of-some-length"}
    created = world["admin"].put(url, json=body)
    assert created.status_code == 201
    assert _etag_of(created) == _etag_of(world["admin"].get(url))
    replaced = world["admin"].put(url, json=body)
    assert replaced.status_code == 200
    assert _etag_of(replaced) != _etag_of(created)
    assert _etag_of(world["admin"].get(url)) == _etag_of(replaced)


def test_a_json_body_is_utf8_in_the_schemas_order(world):
    """Responses are written by orjson (casesvc.common.jsonio.JSONProvider): text as UTF-8, not
    `\\u` escapes, and the fields in the order the schema gives them, `id` first."""
    youth = world.youth(given_name="Bjørn-Test", family_name="Æsøy-Test")
    resp = world["police"].get(f"/api/v1/youths/{youth['id']}")
    assert resp.status_code == 200
    raw = resp.get_data()
    assert "Bjørn-Test".encode() in raw and b"\\u00f8" not in raw
    assert raw.startswith(b'{"id":') and raw.endswith(b"}\n")


def test_what_orjson_refuses_is_written_by_the_standard_library(app):
    """An integer beyond 64 bits and half a surrogate pair are valid JSON, written as before."""
    with app.app_context():
        assert app.json.loads(app.json.dumps({"n": 2**70})) == {"n": 2**70}
        assert app.json.response({"s": "\ud800", "n": 1}).get_data() == b'{"s":"\\ud800","n":1}\n'
        assert app.json.response({"æ": 1}).get_data() == '{"æ":1}\n'.encode()


def test_json_already_written_is_embedded_as_it_is(app):
    """JSON the database wrote (`JSONText`: a page of cases on PostgreSQL) goes into a response
    as it is, and is read back where the standard library writes (pretty-printing)."""
    written = JSONText('{"b":[1,"x"],"a":null}')
    with app.app_context():
        embedded = app.json.response({"items": [written], "n": 1}).get_data()
        assert embedded == b'{"items":[{"b":[1,"x"],"a":null}],"n":1}\n'
        pretty = app.json.dumps({"items": [written]}, indent=2)
        assert json.loads(pretty) == {"items": [{"b": [1, "x"], "a": None}]} and "\n  " in pretty
