"""GET /api/v1/statistics (README "Statistics"): a hand-built municipality whose every figure is checked,
who may ask for which municipalities, CSV, bad input and the audit event."""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import UTC, date, datetime

import pytest

from casesvc.cases.models import Case
from casesvc.extensions import db
from casesvc.followups.models import Event
from casesvc.reactions.models import Reaction
from casesvc.statistics.figures import MEASURES, dimensions
from casesvc.statistics.models import ReactionSpan
from casesvc.youths.models import Youth
from tests.conftest import youth_number

URL = "/api/v1/statistics"
YEAR = {"municipality": "0301", "from": "2027-01-01", "to": "2027-12-31", "period": "quarter"}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# label: (opened at, UTC; origin; birth date; closed at, UTC, or None; municipality)
CASES = {
    "c1": ("2026-12-31T23:30", "police", "2011-06-01", "2027-03-15T10:00", "0301"),  # Oslo 1 January 2027
    "c2": ("2027-01-15T10:00", "police", "2011-01-15", "2027-06-30T22:30", "0301"),  # 16 that day; closed 1 July
    "c3": ("2027-02-01T10:00", "police", "2011-05-01", None, "0301"),
    "c4": ("2027-02-10T10:00", "police", "2010-12-01", None, "0301"),
    "c5": ("2027-03-01T10:00", "police", "2010-11-01", None, "0301"),
    "c6": ("2027-03-10T10:00", "school", "2011-04-01", None, "0301"),
    "c7": ("2027-03-20T10:00", "school", "2010-10-01", None, "0301"),
    "c8": ("2027-03-31T22:30", "police", "2010-01-01", "2028-02-01T10:00", "0301"),  # Oslo 1 April (summer time)
    "c9": ("2027-04-10T10:00", "police", "2009-09-01", None, "0301"),
    "c10": ("2027-05-01T10:00", "police", "2009-09-01", None, "0301"),
    "c11": ("2027-05-20T10:00", "police", "2009-09-01", None, "0301"),
    "c12": ("2027-06-01T10:00", "police", "2009-09-01", None, "0301"),
    "c13": ("2027-06-15T10:00", "police", "2009-09-01", None, "0301"),
    "c14": ("2027-10-05T10:00", "health", "2009-01-01", None, "0301"),
    "c15": ("2027-11-05T10:00", "health", "2008-01-01", None, "0301"),
    "c16": ("2027-12-31T22:30", "health", "2009-06-01", None, "0301"),  # Oslo 23:30, still 2027
    "x1": ("2027-12-31T23:30", "police", "2011-01-01", None, "0301"),  # Oslo 1 January 2028: outside
    "x2": ("2026-12-31T22:30", "police", "2011-01-01", None, "0301"),  # Oslo 31 December 2026: outside
    "x3": ("2027-05-05T10:00", "police", "2011-01-01", None, "4601"),  # another municipality
}
# label: (case, type, legal basis, starts_on, made active?, ended on, ended as)
REACTIONS = [
    ("r1", "c1", "drug_contract", "conditional_waiver", "2027-01-10", True, "2027-03-15", "breached"),
    ("r2", "c2", "drug_contract", "conditional_waiver", "2027-01-20", True, "2027-11-01", "completed"),
    ("r3", "c3", "drug_contract", "conditional_waiver", "2027-02-15", True, None, None),
    ("r4", "c4", "youth_contract", "youth_follow_up", "2027-04-05", True, None, None),
    ("r5", "c5", "youth_contract", "youth_follow_up", "2027-04-06", True, "2027-11-02", "completed"),
    ("r6", "c8", "follow_up_plan", "consent", "2027-04-02", True, "2027-05-10", "cancelled"),
    ("r7", "c9", "follow_up_plan", "consent", "2027-04-20", True, None, None),
    ("r8", "c10", "concern_conversation", "consent", "2027-05-02", True, "2027-05-02", "completed"),
    ("r9", "c11", "concern_conversation", "consent", "2027-05-25", True, None, None),
    ("r10", "c12", "follow_up_plan", "consent", "2027-06-05", True, None, None),
    ("r11", "c13", "follow_up_plan", "consent", "2027-06-20", True, None, None),
    ("r12", "c6", "drug_contract", "conditional_waiver", "2027-03-15", False, None, None),  # a draft: not counted
    ("r13", "c7", "drug_contract", "conditional_waiver", "2028-01-10", True, None, None),  # starts after the window
    ("r14", "c14", "follow_up_plan", "consent", "2027-10-20", True, None, None),
    ("r15", "x3", "follow_up_plan", "consent", "2027-05-20", True, None, None),
]
# label: (case, kind, occurred at UTC, result, corrects)
EVENTS = [
    ("e1", "c1", "drug_test", "2027-02-01T09:00", "negative", None),
    ("e2", "c1", "drug_test", "2027-02-15T09:00", "negative", None),
    ("e3", "c1", "drug_test", "2027-03-01T09:00", "negative", None),
    ("e4", "c1", "drug_test", "2027-03-08T09:00", "negative", None),
    ("e5", "c1", "drug_test", "2027-03-15T09:00", "negative", None),
    ("e6", "c1", "drug_test", "2027-03-20T09:00", "negative", None),
    ("e7", "c1", "drug_test", "2027-03-02T09:00", "positive", "e3"),  # corrects e3: e3 is not counted
    ("e8", "c8", "drug_test", "2027-04-15T09:00", "missed", None),
    ("e9", "c8", "drug_test", "2027-05-15T09:00", "missed", None),
    ("e10", "c16", "drug_test", "2027-12-31T23:30", "invalid", None),  # Oslo 2028: outside, but a first event
    ("e11", "c2", "meeting", "2027-01-14T23:30", None, None),  # Oslo 15 January: 0 days
    ("e12", "c3", "meeting", "2027-01-25T10:00", None, None),  # before the opening: 0 days
    ("e13", "c9", "meeting", "2027-04-17T10:00", None, None),
]


def build_municipality(app, world) -> None:
    police, user = "police", world["police"].user_id
    with app.app_context():
        ids = {}
        for i, (label, (opened, origin, born, closed, municipality)) in enumerate(CASES.items()):
            birth = date.fromisoformat(born)
            youth = Youth(
                national_id=youth_number(birth, 500 + 7 * i),
                given_name="Test",
                family_name="Testesen",
                birth_date=birth,
                municipality=municipality,
                created_by_agency=police,
            )
            db.session.add(youth)
            db.session.flush()
            case = Case(
                youth_id=youth.id,
                municipality=municipality,
                origin=origin,
                lead_agency=police if municipality == "0301" else "west",
                status="completed" if closed else "active",
                opened_at=utc(opened),
                closed_at=utc(closed) if closed else None,
            )
            db.session.add(case)
            db.session.flush()
            ids[label] = case.id
        for _label, case, kind, basis, starts, active, ended_on, ended_as in REACTIONS:
            reaction = Reaction(
                case_id=ids[case],
                type=kind,
                legal_basis=basis,
                starts_on=date.fromisoformat(starts),
                status=ended_as or ("active" if active else "draft"),
                created_by_agency=police,
            )
            db.session.add(reaction)
            db.session.flush()
            if active:
                db.session.add(
                    ReactionSpan(
                        reaction_id=reaction.id,
                        activated_on=date.fromisoformat(starts),
                        ended_on=date.fromisoformat(ended_on) if ended_on else None,
                        ended_status=ended_as,
                    )
                )
        for label, case, kind, at, result, corrects in EVENTS:
            event = Event(
                case_id=ids[case],
                kind=kind,
                occurred_at=utc(at),
                result=result,
                author_agency=police,
                author_user=user,
                category="health" if kind == "drug_test" else "general",
                visibility="shared",
                corrects=ids.get(corrects),
            )
            db.session.add(event)
            db.session.flush()
            ids[label] = event.id
        db.session.commit()


H = None  # hidden
Q = ("2027-Q1", "2027-Q2", "2027-Q3", "2027-Q4", "all")
# period -> measure -> the cells that are not 0 (every other count must be 0), worked out by hand
EXPECTED = {
    "2027-Q1": {
        # 7 opened: police 5, school 2 (hidden, so police goes too); ages 15: 3, 16: 4 (hidden)
        "cases_opened": {"total": 7, "origin=police": H, "origin=school": H, "age=15": H, "age=16": H},
        "reactions_started": {"total": H, "type=drug_contract": H, "legal_basis=conditional_waiver": H},
        "reactions_ended": {"total": H, "type=drug_contract;status=breached": H},
        # e3 is corrected by e7: 5 negative, 1 positive
        "drug_tests": {"total": H, "result=negative": H, "result=positive": H},
        "cases_open_at_end": {"total": 6},
        # c1 9, c2 5, c3 14, c4 54, c5 36, c7 296 days: nearest rank 3 and 6
        "days_to_first_reaction": {"n": H, "median": 14, "p90": 296},
        "days_to_first_event": {"n": H, "median": H, "p90": H},  # c1 31, c2 0, c3 0
    },
    "2027-Q2": {
        "cases_opened": {"total": H, "origin=police": 6, "age=17": 6},
        "reactions_started": {
            "total": H,
            "type=youth_contract": H,
            "type=follow_up_plan": H,
            "type=concern_conversation": H,
            "legal_basis=youth_follow_up": H,
            "legal_basis=consent": H,
        },
        "reactions_ended": {
            "total": H,
            "type=follow_up_plan;status=cancelled": H,
            "type=concern_conversation;status=completed": H,
        },
        "drug_tests": {"total": H, "result=missed": H},
        "cases_open_at_end": {"total": 12},
        # c8 1, c9 10, c10 1, c11 5, c12 4, c13 5
        "days_to_first_reaction": {"n": 6, "median": 4, "p90": 10},
        "days_to_first_event": {"n": H, "median": H, "p90": H},  # c8 14, c9 7
    },
    "2027-Q3": {
        "cases_open_at_end": {"total": 11},
        "days_to_first_reaction": {"n": 0, "median": None, "p90": None},
        "days_to_first_event": {"n": 0, "median": None, "p90": None},
    },
    "2027-Q4": {
        "cases_opened": {"total": H, "origin=health": H, "age=18_plus": H},
        "reactions_started": {"total": H, "type=follow_up_plan": H, "legal_basis=consent": H},
        "reactions_ended": {
            "total": H,
            "type=drug_contract;status=completed": H,
            "type=youth_contract;status=completed": H,
        },
        "cases_open_at_end": {"total": 14},
        "days_to_first_reaction": {"n": H, "median": H, "p90": H},  # c14 15
        "days_to_first_event": {"n": H, "median": H, "p90": H},  # c16 1
    },
    "all": {
        "cases_opened": {
            "total": 16,
            "origin=police": 11,
            "origin=school": H,
            "origin=health": H,
            "age=15": H,
            "age=16": H,
            "age=17": 6,
            "age=18_plus": H,
        },
        "reactions_started": {
            "total": 12,
            "type=drug_contract": H,
            "type=youth_contract": H,
            "type=follow_up_plan": 5,
            "type=concern_conversation": H,
            "legal_basis=conditional_waiver": H,
            "legal_basis=youth_follow_up": H,
            "legal_basis=consent": 7,
        },
        "reactions_ended": {
            "total": 5,
            "type=drug_contract;status=breached": H,
            "type=drug_contract;status=completed": H,
            "type=youth_contract;status=completed": H,
            "type=follow_up_plan;status=cancelled": H,
            "type=concern_conversation;status=completed": H,
        },
        "drug_tests": {"total": 8, "result=negative": H, "result=positive": H, "result=missed": H},
        "cases_open_at_end": {"total": 14},
        # 1 1 4 5 5 5 9 10 14 15 36 54 296: ranks 7 and 12
        "days_to_first_reaction": {"n": 13, "median": 9, "p90": 54},
        # 0 0 1 7 14 31: ranks 3 and 6
        "days_to_first_event": {"n": 6, "median": 1, "p90": 31},
    },
}


def expected_measures(period: str) -> dict:
    given = EXPECTED[period]
    return {m: {d: given.get(m, {}).get(d, 0) for d in dimensions(m)} for m in MEASURES}


@pytest.fixture
def municipality(app, world):
    build_municipality(app, world)
    return world


def test_every_figure_of_a_hand_built_municipality(municipality):
    resp = municipality["slt"].get(URL, query_string=YEAR)
    assert resp.status_code == 200, resp.json
    body = resp.json
    assert (body["municipalities"], body["from"], body["to"], body["period"], body["min_cell"]) == (
        ["0301"],
        "2027-01-01",
        "2027-12-31",
        "quarter",
        5,
    )
    assert [(p["period"], p["from"], p["to"]) for p in body["periods"]] == [
        ("2027-Q1", "2027-01-01", "2027-03-31"),
        ("2027-Q2", "2027-04-01", "2027-06-30"),
        ("2027-Q3", "2027-07-01", "2027-09-30"),
        ("2027-Q4", "2027-10-01", "2027-12-31"),
        ("all", "2027-01-01", "2027-12-31"),
    ]
    for period in body["periods"]:
        assert period["measures"] == expected_measures(period["period"]), period["period"]
    # the answer names every hidden figure, and only those
    hidden = {
        (p["period"], m, d)
        for p in body["periods"]
        for m, dims in p["measures"].items()
        for d, v in dims.items()
        if v is None and not (d in ("median", "p90") and dims["n"] == 0)
    }
    assert {(s["period"], s["measure"], s["dimension"]) for s in body["suppressed"]} == hidden
    reasons = {(s["period"], s["measure"], s["dimension"]): s["reason"] for s in body["suppressed"]}
    assert reasons[("2027-Q1", "cases_opened", "origin=school")] == "small"
    assert reasons[("2027-Q1", "cases_opened", "origin=police")] == "complementary"
    assert reasons[("2027-Q2", "cases_opened", "total")] == "complementary"  # else all − Q1 − Q2 tells Q4
    assert reasons[("2027-Q4", "days_to_first_reaction", "median")] == "small_n"


def test_a_smaller_min_cell_shows_more(app, municipality):
    app.config["CASESVC"] = dataclasses.replace(app.config["CASESVC"], statistics_min_cell=1)
    try:
        body = municipality["slt"].get(URL, query_string=YEAR).json
    finally:
        app.config["CASESVC"] = dataclasses.replace(app.config["CASESVC"], statistics_min_cell=5)
    q1 = body["periods"][0]["measures"]
    assert q1["cases_opened"]["origin=school"] == 2 and q1["drug_tests"]["result=positive"] == 1
    assert body["suppressed"] == []
    assert body["periods"][4]["measures"]["days_to_first_event"] == {"n": 6, "median": 1, "p90": 31}


def test_the_csv_holds_the_same_figures_in_long_form(municipality):
    json_body = municipality["slt"].get(URL, query_string=YEAR).json
    for resp in (
        municipality["slt"].get(URL, query_string={**YEAR, "format": "csv"}),
        municipality["slt"].get(URL, query_string=YEAR, headers={"Accept": "text/csv"}),
    ):
        assert resp.status_code == 200
        assert resp.mimetype == "text/csv"
        text = resp.get_data(as_text=True)
        assert text.startswith("period,measure,dimension,value\r\n")
        rows = list(csv.reader(io.StringIO(text)))[1:]
        from_json = [
            [p["period"], m, d, "" if v is None else str(v)]
            for p in json_body["periods"]
            for m, dims in p["measures"].items()
            for d, v in dims.items()
        ]
        assert rows == from_json
        assert ["all", "cases_opened", "origin=police", "11"] in rows
        assert ["2027-Q1", "cases_opened", "origin=school", ""] in rows
        assert not [cell for row in rows for cell in row if cell[:1] in ("=", "+", "-", "@")]
        # text cells are quoted: a spreadsheet reads them as text
        assert '"2027-Q1","cases_opened","origin=school",\r\n' in text


def test_a_month_answer_takes_no_more_statements_than_a_year(municipality, app):
    from sqlalchemy import event

    counts = []

    def count(*_):
        counts[-1] += 1

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        for period in ("year", "month"):
            counts.append(0)
            resp = municipality["slt"].get(URL, query_string={**YEAR, "period": period})
            assert resp.status_code == 200
        assert len(resp.json["periods"]) == 13
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert counts[0] == counts[1]


def test_admin_sees_every_municipality_and_a_coordinator_only_its_own(municipality):
    admin = municipality["admin"].get(URL, query_string={k: v for k, v in YEAR.items() if k != "municipality"})
    assert admin.status_code == 200
    assert admin.json["municipalities"] is None
    assert admin.json["periods"][-1]["measures"]["cases_opened"]["total"] == 17  # with 4601's case
    both = municipality["admin"].get(URL, query_string={**YEAR, "municipality": ["0301", "4601"]})
    assert both.json["municipalities"] == ["0301", "4601"]
    assert both.json["periods"][-1]["measures"]["cases_opened"]["total"] == 17
    own = municipality["slt"].get(URL, query_string={k: v for k, v in YEAR.items() if k != "municipality"})
    assert own.json["municipalities"] == ["0301"]
    assert own.json["periods"][-1]["measures"]["cases_opened"]["total"] == 16
    other = municipality["slt"].get(URL, query_string={**YEAR, "municipality": ["0301", "4601"]})
    assert other.status_code == 403
    assert other.json["type"].endswith("municipality-forbidden")


@pytest.mark.parametrize("code", ["police", "health", "nav", "cw", "auditor"])
def test_no_other_role_reads_statistics(municipality, code):
    resp = municipality[code].get(URL, query_string=YEAR)
    assert resp.status_code == 403
    assert resp.json["type"].endswith("statistics-readers-only")
    assert "periods" not in resp.json


def test_a_token_with_only_statistics_read_works_and_opens_no_case_content(municipality, world):
    slt = world.as_user(world["slt"].user_id, "coordinator", "slt", "user.slt", scopes=["statistics:read"])
    assert slt.get(URL, query_string=YEAR).json["periods"][-1]["measures"]["cases_opened"]["total"] == 16
    assert slt.get("/api/v1/cases").status_code == 403
    admin = world.as_user(world["admin"].user_id, "admin", None, "user.admin", scopes=["statistics:read"])
    assert admin.get(URL, query_string=YEAR).status_code == 200
    assert admin.get("/api/v1/cases").status_code == 403
    assert admin.get("/api/v1/audit/events").status_code == 403
    without = world.as_user(world["slt"].user_id, "coordinator", "slt", "user.slt", scopes=["cases:read"])
    resp = without.get(URL, query_string=YEAR)
    assert resp.status_code == 403 and resp.json["type"].endswith("insufficient-scope")


@pytest.mark.parametrize(
    "query,field",
    [
        ({"from": "2027-12-31", "to": "2027-01-01"}, "to"),
        ({"from": "2010-01-01", "to": "2027-01-01"}, "from"),
        ({"from": "2027-02-30"}, "from"),
        ({"to": "9999-12-31"}, "to"),
        ({"period": "week"}, "period"),
        ({"municipality": "30"}, "municipality"),  # named municipality.0: the first one given
        ({"format": "xlsx"}, "format"),
    ],
)
def test_bad_parameters_are_422_on_the_field(world, query, field):
    resp = world["slt"].get(URL, query_string=query)
    assert resp.status_code == 422
    assert resp.mimetype == "application/problem+json"
    assert [k for k in resp.json["errors"] if k == field or k.startswith(field + ".")], resp.json


def test_the_audit_event_names_the_parameters_and_no_figure(municipality, app):
    from casesvc.audit.sealing import seal

    municipality["slt"].get(URL, query_string={**YEAR, "format": "csv"})
    municipality["police"].get(URL, query_string=YEAR)
    with app.app_context():
        seal()
    events = municipality["admin"].get("/api/v1/audit/events", query_string={"action": "statistics.get_statistics"})
    items = events.json["items"]
    assert [(e["actor"], e["outcome"]) for e in items] == [
        (municipality["police"].user_id, "denied"),
        (municipality["slt"].user_id, "allowed"),
    ]
    assert items[1]["ids"] == ["municipality=0301", "from=2027-01-01", "to=2027-12-31", "period=quarter", "format=csv"]
    assert items[1]["resource_type"] == "statistics" and items[1]["case_id"] is None


def test_reactions_made_active_and_ended_through_the_api_are_counted(world):
    from casesvc.common.timeutil import oslo_today

    case = world.case(by="police", participants=("health", "slt"))
    base = f"/api/v1/cases/{case['id']}"
    assert world["police"].post(f"{base}/transitions", json={"to": "active"}).status_code == 200
    today = oslo_today()
    ids = []
    for _ in range(6):
        resp = world["police"].post(
            f"{base}/reactions",
            json={"type": "follow_up_plan", "legal_basis": "consent", "starts_on": today.isoformat()},
        )
        assert resp.status_code == 201, resp.json
        ids.append(resp.json["id"])
    for rid in ids[:5]:
        assert world["police"].post(f"{base}/reactions/{rid}/transitions", json={"to": "active"}).status_code == 200
    reason = {"reason": "Done"}
    assert (
        world["police"].post(f"{base}/reactions/{ids[5]}/transitions", json={"to": "cancelled", **reason}).status_code
        == 200
    )  # a draft: never active
    for rid in ids[:4]:
        world["police"].post(f"{base}/reactions/{rid}/transitions", json={"to": "completed", **reason})
    # closing the case ends the last active one as the case ended
    world["police"].post(f"{base}/transitions", json={"to": "completed", "reason": "Done"})
    resp = world["slt"].get(URL, query_string={"from": today.isoformat(), "to": today.isoformat()})
    whole = resp.json["periods"][-1]["measures"]
    assert whole["reactions_started"]["total"] == 5
    assert whole["reactions_ended"]["type=follow_up_plan;status=completed"] == 5
    assert whole["reactions_ended"]["type=follow_up_plan;status=cancelled"] == 0


def test_the_document_offers_the_answer_as_json_and_as_csv(client):
    """A client reading the document sees both forms of the answer, the JSON one with its schema."""
    content = client.get("/api/v1/openapi.json").json["paths"]["/api/v1/statistics"]["get"]["responses"]["200"]
    assert set(content["content"]) == {"application/json", "text/csv"}
    assert content["content"]["application/json"]["schema"]["$ref"].endswith("/Statistics")
