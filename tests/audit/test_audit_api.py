"""README "The audit log", the audit API: head, verify, search with every filter and cursor pagination,
streamed JSONL and CSV exports that verify offline — for admin and auditor with `audit:read`
only."""

from __future__ import annotations

import csv
import io
import json

import pytest

from casesvc.audit.chain import CHAINED_FIELDS, GENESIS, event_hash
from casesvc.audit.copy_text import EXPORT_FIELDS
from tests.audit.test_audit_recording import events, head_seq
from tests.conftest import PROBLEM, all_pages, assert_field_error, assert_problem, assert_unauthorized, sealed

ENDPOINTS = ["/api/v1/audit/head", "/api/v1/audit/verify", "/api/v1/audit/events", "/api/v1/audit/export"]
CHAIN_FIELDS = [*CHAINED_FIELDS, "hash"]


@pytest.fixture
def story(world, app) -> dict:
    """Two cases of two youths, reads allowed and denied, a validation error: a varied chain."""
    youth_a, youth_b = world.youth(), world.youth(by="cw")
    case_a = world.case(youth=youth_a)
    case_b = world.case(youth=youth_b, by="cw", participants=("police",))
    police, cw = world["police"], world["cw"]
    for _ in range(2):
        police.get(f"/api/v1/cases/{case_a['id']}")
        cw.get(f"/api/v1/cases/{case_b['id']}")
        world["west"].get(f"/api/v1/cases/{case_a['id']}")  # denied
        police.post("/api/v1/cases", json={"origin": "nowhere"})  # error
    police.get("/api/v1/cases")
    return {"youth_a": youth_a, "youth_b": youth_b, "case_a": case_a, "case_b": case_b, "events": sealed(app)}


# --- head and verify ----------------------------------------------------------------------------


def test_the_head_of_an_empty_chain_is_genesis(world):
    resp = world["auditor"].get("/api/v1/audit/head")
    assert resp.status_code == 200
    assert (resp.json["seq"], resp.json["hash"], resp.json["at"]) == (0, GENESIS, None)


def test_the_head_is_the_newest_sealed_event(world, app, story):
    resp = world["auditor"].get("/api/v1/audit/head")
    last = story["events"][-1]
    assert (resp.json["seq"], resp.json["hash"], resp.json["at"]) == (last["seq"], last["hash"], last["at"])
    assert resp.json["unsealed"] == 0
    # the head request itself is recorded and becomes the next head
    again = world["admin"].get("/api/v1/audit/head").json
    assert again["seq"] == last["seq"] + 1
    assert again["hash"] == sealed(app)[last["seq"]]["hash"]


def test_verify_answers_valid_with_the_number_checked(world, story):
    resp = world["auditor"].get("/api/v1/audit/verify")
    assert resp.status_code == 200
    body = resp.json
    assert {k: body[k] for k in ("valid", "checked", "first_invalid_seq")} == {
        "valid": True,
        "checked": len(story["events"]),
        "first_invalid_seq": None,
    }
    assert body["head"]["seq"] == len(story["events"])


def test_verifying_and_exporting_are_recorded_themselves(world, app, story):
    auditor = world["auditor"]
    auditor.get("/api/v1/audit/verify")
    auditor.get("/api/v1/audit/export").get_data()
    tail = sealed(app)[len(story["events"]) :]
    assert [(e["action"], e["actor"], e["outcome"]) for e in tail] == [
        ("audit.verify", auditor.user_id, "allowed"),
        ("audit.export", auditor.user_id, "allowed"),
    ]


# --- search -----------------------------------------------------------------------------------------


def test_events_are_listed_newest_first_with_the_chain_fields(world, story):
    items = all_pages(world["auditor"], "/api/v1/audit/events", limit=200)
    expected = list(reversed(story["events"]))
    assert [e["seq"] for e in items] == [e["seq"] for e in expected]
    assert items[0] == expected[0]
    assert set(CHAIN_FIELDS) <= set(items[0])


def test_cursor_pagination_walks_every_event_once(world, story):
    pages = []
    cursor = None
    while True:
        resp = world["auditor"].get(
            "/api/v1/audit/events", query_string={"limit": 4, **({"cursor": cursor} if cursor else {})}
        )
        assert len(resp.json["items"]) <= 4
        pages.append([e["seq"] for e in resp.json["items"]])
        cursor = resp.json["next_cursor"]
        if cursor is None:
            break
    seqs = [s for page in pages for s in page]
    assert seqs == sorted({e["seq"] for e in story["events"]}, reverse=True)
    assert len(pages) == -(-len(story["events"]) // 4)


def test_a_bad_cursor_is_422(world, story):
    resp = world["auditor"].get("/api/v1/audit/events", query_string={"cursor": "nonsense"})
    assert resp.status_code == 422 and resp.mimetype == PROBLEM
    assert_field_error(resp, "cursor")


@pytest.mark.parametrize("name", ["actor", "case_id", "youth_id", "action", "outcome"])
def test_each_filter_returns_exactly_the_matching_events(world, story, name):
    values = {e[name] for e in story["events"] if e[name] is not None}
    assert len(values) >= 2, f"the story needs two values of {name}"
    value = next(
        e[name]
        for e in story["events"]
        if e[name] is not None and e["action"] == "cases.get_case" and e["outcome"] == "denied"
    )
    items = all_pages(world["auditor"], "/api/v1/audit/events", limit=3, **{name: value})
    expected = [e["seq"] for e in reversed(story["events"]) if e[name] == value]
    assert [e["seq"] for e in items] == expected
    assert 0 < len(expected) < len(story["events"])


def test_filters_combine(world, story):
    items = all_pages(world["auditor"], "/api/v1/audit/events", youth_id=story["youth_a"]["id"], outcome="denied")
    expected = [
        e["seq"]
        for e in reversed(story["events"])
        if e["youth_id"] == story["youth_a"]["id"] and e["outcome"] == "denied"
    ]
    assert [e["seq"] for e in items] == expected and len(expected) == 2


def test_from_and_to_select_a_half_open_time_range(world, story):
    events = story["events"]
    low, high = events[3], events[-4]
    assert low["at"] < high["at"]
    items = all_pages(world["auditor"], "/api/v1/audit/events", limit=5, **{"from": low["at"], "to": high["at"]})
    expected = [e["seq"] for e in reversed(events) if low["at"] <= e["at"] < high["at"]]
    assert [e["seq"] for e in items] == expected
    assert expected[-1] == low["seq"] and high["seq"] not in expected
    only_from = all_pages(world["auditor"], "/api/v1/audit/events", **{"from": high["at"]})
    assert [e["seq"] for e in only_from][-1] == high["seq"]
    only_to = all_pages(world["auditor"], "/api/v1/audit/events", to=low["at"])
    assert [e["seq"] for e in only_to] == [e["seq"] for e in reversed(events[:3])]


@pytest.mark.parametrize("query", [{"outcome": "maybe"}, {"from": "yesterday"}, {"limit": 0}, {"limit": "many"}])
def test_bad_filters_are_422(world, query):
    resp = world["auditor"].get("/api/v1/audit/events", query_string=query)
    assert resp.status_code == 422 and resp.mimetype == PROBLEM
    assert_field_error(resp, next(iter(query)))


# --- export -----------------------------------------------------------------------------------------


def test_the_jsonl_export_streams_every_event_with_its_chain_fields(world, story):
    resp = world["auditor"].get("/api/v1/audit/export", query_string={"format": "jsonl"})
    assert resp.status_code == 200
    assert resp.mimetype == "application/x-ndjson"
    assert resp.is_streamed
    lines = resp.get_data(as_text=True).splitlines()
    exported = [json.loads(line) for line in lines]
    # everything up to the export, and the export's own event, recorded before the body streams
    assert exported[:-1] == story["events"]
    assert (exported[-1]["action"], exported[-1]["actor"]) == ("audit.export", world["auditor"].user_id)
    assert all(set(CHAIN_FIELDS) <= set(e) and e["hash"] == event_hash(e) for e in exported)


def test_jsonl_is_the_default_export_format(world, story):
    resp = world["admin"].get("/api/v1/audit/export")
    assert resp.mimetype == "application/x-ndjson"
    assert len(resp.get_data(as_text=True).splitlines()) == len(story["events"]) + 1


def test_the_csv_export_has_a_header_and_one_row_per_event(world, story):
    resp = world["auditor"].get("/api/v1/audit/export", query_string={"format": "csv"})
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert len(rows) == len(story["events"]) + 1  # and the export's own event
    assert set(CHAIN_FIELDS) <= set(rows[0])
    for row, event in zip(rows, story["events"], strict=False):  # the export's own event comes last
        assert (int(row["seq"]), row["hash"], row["prev_hash"], row["id"]) == (
            event["seq"],
            event["hash"],
            event["prev_hash"],
            event["id"],
        )
        assert (json.loads(row["ids"]) if row["ids"] else None) == event["ids"]


def test_an_export_between_two_instants_is_the_stretch_of_the_chain_between_them(world, story):
    events = story["events"]
    low, high = events[2], events[-3]
    resp = world["auditor"].get("/api/v1/audit/export", query_string={"from": low["at"], "to": high["at"]})
    seqs = [json.loads(line)["seq"] for line in resp.get_data(as_text=True).splitlines()]
    assert seqs == list(range(low["seq"], high["seq"]))


def test_an_export_of_an_empty_range_is_empty(world, story):
    resp = world["auditor"].get(
        "/api/v1/audit/export", query_string={"from": "2001-01-01T00:00:00Z", "to": "2001-01-02T00:00:00Z"}
    )
    assert resp.status_code == 200 and resp.get_data() == b""
    csv_resp = world["auditor"].get(
        "/api/v1/audit/export",
        query_string={"from": "2001-01-01T00:00:00Z", "to": "2001-01-02T00:00:00Z", "format": "csv"},
    )
    assert csv_resp.get_data(as_text=True).strip().split(",")[0] == CHAIN_FIELDS[0]


@pytest.mark.parametrize("query", [{"format": "xml"}, {"to": "not a time"}])
def test_bad_export_parameters_are_422(world, query):
    resp = world["auditor"].get("/api/v1/audit/export", query_string=query)
    assert resp.status_code == 422 and resp.mimetype == PROBLEM
    assert_field_error(resp, next(iter(query)))


@pytest.fixture
def verify_file(test_db_cli):
    """`casesvc audit verify --file PATH`, against the test database."""
    return lambda path: test_db_cli("audit", "verify", "--file", str(path))


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_export_verifies_offline(world, story, tmp_path, verify_file, fmt):
    path = tmp_path / f"export.{fmt}"
    path.write_bytes(world["auditor"].get("/api/v1/audit/export", query_string={"format": fmt}).get_data())
    code, out, err = verify_file(path)
    assert code == 0, err
    assert json.loads(out)["checked"] == len(story["events"]) + 1


def test_an_export_that_starts_mid_chain_verifies_offline(world, story, tmp_path, verify_file):
    events = story["events"]
    path = tmp_path / "part.jsonl"
    path.write_bytes(world["auditor"].get("/api/v1/audit/export", query_string={"from": events[5]["at"]}).get_data())
    code, out, err = verify_file(path)
    assert code == 0, err
    assert json.loads(out)["checked"] == len(events) - 5 + 1


def _tampered_export(world, tmp_path, change) -> tuple:
    path = tmp_path / "export.jsonl"
    lines = world["auditor"].get("/api/v1/audit/export").get_data(as_text=True).splitlines()
    events = [json.loads(line) for line in lines]
    target = next(e for e in events[3:] if e["outcome"] == "denied")
    events = change(events, events.index(target))
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path, target["seq"]


@pytest.mark.parametrize("how", ["alter", "delete", "swap"])
def test_a_tampered_export_file_is_found_at_the_first_bad_seq(world, story, tmp_path, verify_file, how):
    def change(events, i):
        if how == "alter":
            events[i]["outcome"] = "allowed"
        elif how == "delete":
            del events[i]
        else:
            events[i], events[i + 1] = events[i + 1], events[i]
        return events

    path, seq = _tampered_export(world, tmp_path, change)
    code, _out, err = verify_file(path)
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and f"seq {seq}" in err


# --- who may read the audit log ----------------------------------------------------------------------


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("who", ["admin", "auditor"])
def test_admin_and_auditor_may_read_the_audit_log(world, app, url, who):
    since = head_seq(app)
    resp = world[who].get(url)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    if url.endswith("/export"):
        lines = resp.get_data(as_text=True).splitlines()
        assert resp.mimetype == "application/x-ndjson" and lines
        assert all(set(json.loads(line)) == set(EXPORT_FIELDS) for line in lines)  # the chain fields and `basis`
    else:
        body = resp.json
        assert {"/head": {"seq", "hash"}, "/verify": {"valid", "checked"}, "/events": {"items", "next_cursor"}}[
            url[url.rindex("/") :]
        ] <= set(body), body
        assert body.get("valid", True) is True
    recorded = [(e["action"].split(".")[0], e["actor"], e["outcome"]) for e in events(app, since)]
    assert recorded == [("audit", world[who].user_id, "allowed")]


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("who", ["police", "health", "nav", "cw", "slt"])
def test_staff_roles_get_403_on_the_audit_log(world, url, who):
    resp = world[who].get(url)
    assert resp.status_code == 403 and resp.mimetype == PROBLEM
    assert resp.json["type"] == "/problems/audit-readers-only"


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("who,scopes", [("auditor", []), ("admin", ["admin"])])
def test_a_token_without_audit_read_gets_403(world, app, url, who, scopes):
    reader = world[who]
    narrowed = world.as_user(reader.user_id, who, None, f"user.{who}", scopes=scopes)
    since = head_seq(app)
    resp = narrowed.get(url)
    assert resp.status_code == 403 and resp.json["type"] == "/problems/insufficient-scope"
    assert_problem(resp, 403, "insufficient-scope")
    recorded = [(e["actor"], e["outcome"], e["status"]) for e in events(app, since)]
    assert recorded == [(reader.user_id, "denied", 403)]


@pytest.mark.parametrize("url", ENDPOINTS)
def test_the_audit_log_needs_a_token(client, world, app, url):
    since = head_seq(app)
    resp = client.get(url)
    assert resp.status_code == 401
    assert_unauthorized(resp)
    recorded = [(e["actor"], e["outcome"], e["status"]) for e in events(app, since)]
    assert recorded == [(None, "denied", 401)]


def test_a_refused_audit_read_is_itself_recorded_as_denied(world, app):
    world["police"].get("/api/v1/audit/events")
    events = sealed(app)
    assert [(e["action"], e["outcome"], e["actor"]) for e in events] == [
        ("audit.events", "denied", world["police"].user_id)
    ]
