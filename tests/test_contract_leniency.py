"""What a client written from the contract alone may send and be served: extra and read-only
fields in a PATCH, a limit above 200, a national id whose individual number the official century
rule reads otherwise, any guardian relation, upper-case agency codes, a reaction without
starts_on, the cases of any agency's pending reminder, and instants at the edge of the range."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from casesvc.agencies.service import create_agency
from casesvc.common.timeutil import OSLO, oslo_today, rfc3339, utcnow
from casesvc.extensions import db
from casesvc.youths import national_id as nid
from tests.conftest import assert_problem


def _patch_back(actor, url, changes):
    """What a client does: GET, change some fields, PATCH the whole representation back."""
    read = actor.get(url)
    assert read.status_code == 200, read.json
    body = {**read.json, **changes, "unknown_field": "kept by the client, ignored by the service"}
    return read, actor.patch(url, json=body, headers={"If-Match": read.headers["ETag"]})


# --- 1. PATCH ignores unknown and read-only fields ----------------------------------------------


def test_a_case_read_and_patched_back_changes_only_its_writable_fields(world):
    case = world.case()
    url = f"/api/v1/cases/{case['id']}"
    read, resp = _patch_back(
        world["police"],
        url,
        {
            "summary": "Test summary, changed",
            "status": "active",
            "id": "not-this-id",
            "lead_agency": "health",
            "created_at": "2000-01-01T00:00:00Z",
            "version": 99,
            "outcome": "completed",
        },
    )
    assert resp.status_code == 200, resp.json
    after = world["police"].get(url).json
    assert after["summary"] == "Test summary, changed"
    unchanged = ("id", "status", "lead_agency", "created_at", "outcome", "opened_at", "participants")
    assert {k: after[k] for k in unchanged} == {k: read.json[k] for k in unchanged}
    assert after["status"] == "open"


def test_a_patch_with_a_bad_value_for_a_known_field_is_still_422(world):
    case = world.case()
    url = f"/api/v1/cases/{case['id']}"
    _, resp = _patch_back(world["police"], url, {"summary": "x" * 10001, "status": "active"})
    assert list(assert_problem(resp, 422)["errors"]) == ["summary"]
    assert world["police"].get(url).json["summary"] == case["summary"]


def test_a_youth_read_and_patched_back_keeps_its_read_only_fields(world):
    youth = world.youth()
    url = f"/api/v1/youths/{youth['id']}"
    read, resp = _patch_back(
        world["police"], url, {"school": "Test skole", "created_by_agency": "nav", "id": "not-an-id", "version": 99}
    )
    assert resp.status_code == 200, resp.json
    after = world["police"].get(url).json
    assert after["school"] == "Test skole"
    assert (after["id"], after["national_id"], after["birth_date"], after["created_by_agency"]) == (
        read.json["id"],
        read.json["national_id"],
        read.json["birth_date"],
        read.json["created_by_agency"],
    )


def test_a_reaction_patched_with_status_and_read_only_fields_keeps_them(world):
    case = world.case()
    base = f"/api/v1/cases/{case['id']}/reactions"
    reaction = (
        world["police"]
        .post(base, json={"type": "follow_up_plan", "legal_basis": "consent", "starts_on": "2027-01-04"})
        .json
    )
    url = f"{base}/{reaction['id']}"
    etag = world["police"].get(url).headers["ETag"]
    resp = world["police"].patch(
        url,
        headers={"If-Match": etag},
        json={
            "police_reference": "X-2",
            "status": "active",
            "type": "drug_contract",
            "legal_basis": "conditional_waiver",
            "signatures": [{"party": "youth", "signed_on": "2027-01-04"}],
            "created_by_agency": "nav",
            "extra": 1,
        },
    )
    assert resp.status_code == 200, resp.json
    after = world["police"].get(url).json
    assert after["police_reference"] == "X-2"
    assert (after["status"], after["type"], after["legal_basis"], after["signatures"], after["created_by_agency"]) == (
        "draft",
        "follow_up_plan",
        "consent",
        [],
        "police",
    )


def test_an_agency_read_and_patched_back_keeps_its_code_and_kind(world):
    read, resp = _patch_back(
        world["admin"], "/api/v1/agencies/nav", {"name": "Fake NAV Nyby", "code": "fake-other", "kind": "police"}
    )
    assert resp.status_code == 200, resp.json
    assert resp.json == {**read.json, "name": "Fake NAV Nyby"}


# --- 2. ?limit= above 200 is 200 -----------------------------------------------------------------


def test_a_limit_above_200_gives_pages_of_200(world, app):
    with app.app_context():
        for i in range(205):
            create_agency(f"fake-{i:03d}", "nav", f"Fake NAV {i}", ["0301"])
        db.session.commit()
    resp = world["admin"].get("/api/v1/agencies?limit=500")
    assert resp.status_code == 200, resp.json
    assert len(resp.json["items"]) == 200
    assert resp.json["next_cursor"] is not None
    rest = world["admin"].get(f"/api/v1/agencies?limit=500&cursor={resp.json['next_cursor']}").json
    assert len(rest["items"]) == 205 + len(world.AGENCIES) - 200 and rest["next_cursor"] is None


@pytest.mark.parametrize("url", ["/api/v1/audit/events?limit=500", "/api/v1/youths/{youth}/access-log?limit=500"])
def test_the_audit_lists_take_a_limit_above_200_too(world, url):
    youth = world.youth()
    resp = world["auditor"].get(url.format(youth=youth["id"]))
    assert resp.status_code == 200, resp.json
    assert_problem(world["auditor"].get(url.format(youth=youth["id"]).replace("500", "0")), 422)


# --- 3. national id: check digits and day/month/two-digit year, no century rule -----------------


def _youth(national_id: str, born: date, **fields) -> dict:
    return {
        "given_name": "Test",
        "family_name": "Testesen",
        "birth_date": born.isoformat(),
        "national_id": national_id,
        "municipality": "0301",
        **fields,
    }


def _number(born: date, individuals: range, **kw) -> str:
    return next(n for i in individuals if (n := nid.make(born, i, synthetic=True, **kw)))


@pytest.mark.parametrize("d_number", [False, True], ids=["fodselsnummer", "d-number"])
def test_a_2011_birth_date_with_an_individual_number_below_500_is_accepted(world, d_number):
    """The official century rule reads individual numbers 000-499 as 1900s: 2011 was refused
    although both check digits hold."""
    born = date(2011, 3, 4)
    number = _number(born, range(500), d_number=d_number)
    resp = world["police"].post("/api/v1/youths", json=_youth(number, born))
    assert resp.status_code == 201, resp.json
    assert (resp.json["birth_date"], resp.json["national_id"]) == ("2011-03-04", number)


@pytest.mark.parametrize("other", [date(2012, 3, 4), date(2011, 3, 5), date(2011, 4, 4)], ids=["year", "day", "month"])
def test_a_birth_date_with_another_day_month_or_two_digit_year_is_still_422(world, other):
    number = _number(date(2011, 3, 4), range(500))
    problem = assert_problem(world["police"].post("/api/v1/youths", json=_youth(number, other)), 422)
    assert list(problem["errors"]) == ["birth_date"]


def test_a_wrong_check_digit_is_still_422(world):
    born = date(2011, 3, 4)
    number = _number(born, range(500))
    bad = number[:10] + str((int(number[10]) + 1) % 10)
    problem = assert_problem(world["police"].post("/api/v1/youths", json=_youth(bad, born)), 422)
    assert list(problem["errors"]) == ["national_id"]


# --- 4. guardian relation: free text up to the column's 20 characters ---------------------------


def test_a_patch_may_give_a_guardian_a_relation_outside_the_suggested_codes(world):
    youth = world.youth()
    url = f"/api/v1/youths/{youth['id']}"
    etag = world["police"].get(url).headers["ETag"]
    resp = world["police"].patch(
        url, json={"guardians": [{"name": "Test Forelder", "relation": "parent"}]}, headers={"If-Match": etag}
    )
    assert resp.status_code == 200, resp.json
    assert world["police"].get(url).json["guardians"][0]["relation"] == "parent"


# --- 6. agency codes: upper-case letters too, one rule for the API and the CLI ------------------


def test_an_agency_code_with_upper_case_letters_is_accepted_and_case_sensitive(world):
    admin = world["admin"]
    resp = admin.post(
        "/api/v1/agencies",
        json={"code": "CLI-UPPER", "kind": "nav", "name": "Fake NAV Upper", "municipalities": ["0301"]},
    )
    assert resp.status_code == 201, resp.json
    assert admin.get("/api/v1/agencies/CLI-UPPER").json["code"] == "CLI-UPPER"
    assert admin.get("/api/v1/agencies/cli-upper").status_code == 404
    lower = admin.post(
        "/api/v1/agencies",
        json={"code": "cli-upper", "kind": "nav", "name": "Fake NAV Lower", "municipalities": ["0301"]},
    )
    assert lower.status_code == 201, lower.json
    user = admin.post(
        "/api/v1/users",
        json={"username": "fake.upper", "role": "nav", "agency": "CLI-UPPER", "password": "Xq7zkW-fake-password"},
    )
    assert user.status_code == 201, user.json
    assert user.json["agency"] == "CLI-UPPER"


@pytest.mark.parametrize("code", ["-upper", "U", "A" * 33, "UPPER CASE", "ÆØÅ-kontor", "upper\n"])
def test_an_agency_code_outside_the_character_set_is_still_422(world, code):
    resp = world["admin"].post(
        "/api/v1/agencies", json={"code": code, "kind": "nav", "name": "Fake NAV", "municipalities": ["0301"]}
    )
    assert list(assert_problem(resp, 422)["errors"]) == ["code"]


def test_the_cli_takes_an_upper_case_agency_code_as_the_api_does(world, test_db_cli):
    code, _out, err = test_db_cli(
        "agencies", "create", "CLI-UPPER", "--kind", "police", "--name", "Fake politi", "--municipality", "0301"
    )
    assert code == 0, err
    assert world["admin"].get("/api/v1/agencies/CLI-UPPER").status_code == 200
    code, _out, err = test_db_cli(
        "agencies", "create", "CLI UPPER!", "--kind", "police", "--name", "Fake politi", "--municipality", "0301"
    )
    assert code == 1 and "letters a-z or A-Z" in err


# --- 7. starts_on is optional --------------------------------------------------------------------


def _reaction(world, case, **fields):
    return world["police"].post(f"/api/v1/cases/{case['id']}/reactions", json={"legal_basis": "consent", **fields})


def test_a_concern_conversation_without_starts_on_starts_on_the_oslo_date_of_its_scheduled_at(world):
    case = world.case()
    # 23:30 UTC on 1 March is already 2 March in Oslo
    resp = _reaction(world, case, type="concern_conversation", scheduled_at="2027-03-01T23:30:00Z")
    assert resp.status_code == 201, resp.json
    assert resp.json["starts_on"] == "2027-03-02"


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "concern_conversation"},
        {"type": "follow_up_plan"},
        {"type": "youth_contract", "legal_basis": "conditional_waiver"},
    ],
    ids=["conversation-not-scheduled", "follow-up-plan", "youth-contract"],
)
def test_a_reaction_without_starts_on_starts_today_in_oslo(world, fields):
    case = world.case()
    if fields["type"] == "youth_contract":
        fields = {**fields, "ends_on": (oslo_today() + timedelta(days=180)).isoformat()}
    before = oslo_today()
    resp = _reaction(world, case, **fields)
    assert resp.status_code == 201, resp.json
    assert resp.json["starts_on"] in {before.isoformat(), oslo_today().isoformat()}


def test_a_given_starts_on_is_kept_even_with_a_scheduled_at(world):
    resp = _reaction(
        world, world.case(), type="concern_conversation", starts_on="2027-02-01", scheduled_at="2027-03-01T10:00:00Z"
    )
    assert resp.status_code == 201, resp.json
    assert resp.json["starts_on"] == "2027-02-01"


@pytest.mark.parametrize("kind", ["youth_contract", "drug_contract"])
def test_a_contract_without_ends_on_is_still_422(world, kind):
    problem = assert_problem(_reaction(world, world.case(), type=kind, legal_basis="conditional_waiver"), 422)
    assert list(problem["errors"]) == ["ends_on"]


# --- 8. cases?due_before= counts any pending reminder of the case -------------------------------


def test_cases_due_before_counts_a_reminder_assigned_to_another_participant(world):
    case = world.case(participants=("health",))
    quiet = world.case(participants=("health",))
    now = utcnow()
    resp = world["police"].post(
        f"/api/v1/cases/{case['id']}/reminders",
        json={"due_at": rfc3339(now + timedelta(days=1)), "assignee_agency": "health"},
    )
    assert resp.status_code == 201, resp.json
    found = world["police"].get("/api/v1/cases", query_string={"due_before": rfc3339(now + timedelta(days=2))})
    assert found.status_code == 200, found.json
    assert [c["id"] for c in found.json["items"]] == [case["id"]]
    assert quiet["id"] not in [c["id"] for c in found.json["items"]]
    # due later than asked: not counted
    assert world["police"].get("/api/v1/cases", query_string={"due_before": rfc3339(now)}).json["items"] == []


def test_cases_due_before_still_lists_only_cases_the_caller_may_see(world):
    case = world.case(participants=("health",))
    world["police"].post(
        f"/api/v1/cases/{case['id']}/reminders",
        json={"due_at": rfc3339(utcnow() + timedelta(days=1)), "assignee_agency": "health"},
    )
    when = {"due_before": rfc3339(utcnow() + timedelta(days=2))}
    assert world["nav"].get("/api/v1/cases", query_string=when).json["items"] == []  # not a participant
    assert world["health"].get("/api/v1/cases", query_string=when).json["items"] == []  # no consent yet
    world.consent(case, ["health"])
    assert [c["id"] for c in world["health"].get("/api/v1/cases", query_string=when).json["items"]] == [case["id"]]


# --- 9. instants at the edge of the range --------------------------------------------------------


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "9999-12-31T23:30:00Z"])
def test_an_event_at_an_instant_outside_the_range_is_422_on_the_field(world, when):
    case = world.case()
    resp = world["police"].post(f"/api/v1/cases/{case['id']}/events", json={"kind": "meeting", "occurred_at": when})
    assert list(assert_problem(resp, 422)["errors"]) == ["occurred_at"]


@pytest.mark.parametrize(
    "url",
    ["/api/v1/cases?due_before=0001-01-01T00:00:00%2B01:00", "/api/v1/reminders?due_before=9999-12-31T23:59:59-01:00"],
)
def test_a_due_before_outside_the_range_is_422_on_the_field(world, url):
    assert list(assert_problem(world["police"].get(url), 422)["errors"]) == ["due_before"]


def test_an_instant_with_an_offset_is_taken_as_the_same_moment_in_utc(world):
    case = world.case()
    resp = world["police"].post(
        f"/api/v1/cases/{case['id']}/events", json={"kind": "meeting", "occurred_at": "2027-01-01T00:00:00-01:00"}
    )
    assert resp.status_code == 201, resp.json
    assert resp.json["occurred_at"] == "2027-01-01T01:00:00Z"
    moment = datetime(2027, 1, 5, 8, tzinfo=UTC)
    resp = world["police"].post(
        f"/api/v1/cases/{case['id']}/events",
        json={"kind": "meeting", "occurred_at": moment.astimezone(OSLO).isoformat()},
    )
    assert resp.json["occurred_at"] == "2027-01-05T08:00:00Z"


def test_an_instant_is_written_in_utc_to_the_second_whatever_its_zone():
    assert rfc3339(datetime(2027, 1, 5, 8, 30, 15, 999999, tzinfo=UTC)) == "2027-01-05T08:30:15Z"
    assert rfc3339(datetime(2027, 7, 5, 10, 30, tzinfo=OSLO)) == "2027-07-05T08:30:00Z"  # summer time, +02:00
    assert rfc3339(datetime(1, 1, 1, 23, tzinfo=UTC)) == "0001-01-01T23:00:00Z"
    assert rfc3339(None) is None
