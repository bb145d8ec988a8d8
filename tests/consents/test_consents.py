"""Consents through the API: who may give one at what age, dates, agencies, withdrawal, and
the `active` field."""

from __future__ import annotations

from datetime import timedelta

import pytest

from casesvc.common.timeutil import add_years, oslo_today
from tests.conftest import assert_problem


def consent_body(**fields) -> dict:
    today = oslo_today()
    return {
        "given_by": "both",
        "given_on": today.isoformat(),
        "expires_on": (today + timedelta(days=90)).isoformat(),
        "purpose": "Follow-up",
        "agencies": ["health"],
        "categories": ["general"],
        **fields,
    }


def give(world, case, by="police", **fields):
    return world[by].post(f"/api/v1/cases/{case['id']}/consents", json=consent_body(**fields))


def case_for_youth_born(world, born) -> dict:
    return world.case(youth=world.youth(born=born), participants=("health", "slt"))


def consents(world, case, by="police", **query):
    resp = world[by].get(f"/api/v1/cases/{case['id']}/consents", query_string=query)
    assert resp.status_code == 200, resp.json
    return resp.json["items"]


# --- creating --------------------------------------------------------------------------------


def test_a_consent_is_created_with_location(world):
    case = world.case()
    resp = give(world, case, agencies=["health", "slt"], categories=["general", "health"])
    assert resp.status_code == 201, resp.json
    consent = resp.json
    assert resp.headers["Location"].endswith(f"/api/v1/cases/{case['id']}/consents/{consent['id']}")
    assert consent["agencies"] == ["health", "slt"]
    assert sorted(consent["categories"]) == ["general", "health"]
    assert consent["withdrawn_at"] is None
    assert consent["active"] is True
    assert consent["recorded_by_agency"] == "police"
    assert world["police"].get(resp.headers["Location"]).json["id"] == consent["id"]


def test_a_youth_under_16_cannot_consent_alone(world):
    case = world.case()  # the default youth is 15
    problem = assert_problem(give(world, case, given_by="youth"), 422)
    assert "given_by" in problem["errors"]
    assert consents(world, case) == []


@pytest.mark.parametrize("given_by", ["guardian", "both"])
def test_a_guardian_may_consent_for_a_youth_under_16(world, given_by):
    case = world.case()
    resp = give(world, case, given_by=given_by)
    assert resp.status_code == 201, resp.json
    assert resp.json["given_by"] == given_by


def test_a_youth_who_turns_16_on_given_on_may_consent_alone(world):
    case = case_for_youth_born(world, add_years(oslo_today(), -16))
    resp = give(world, case, given_by="youth")
    assert resp.status_code == 201, resp.json
    assert (resp.json["given_by"], resp.json["active"]) == ("youth", True)
    assert [c["id"] for c in consents(world, case)] == [resp.json["id"]]


def test_a_youth_one_day_short_of_16_may_not(world):
    case = case_for_youth_born(world, add_years(oslo_today(), -16) + timedelta(days=1))
    assert "given_by" in assert_problem(give(world, case, given_by="youth"), 422)["errors"]


def test_age_is_judged_on_given_on_not_today(world):
    """16 today, but 15 on the day the consent was given: the youth alone could not give it."""
    today = oslo_today()
    case = case_for_youth_born(world, add_years(today - timedelta(days=5), -16))
    given_on = (today - timedelta(days=10)).isoformat()
    assert "given_by" in assert_problem(give(world, case, given_by="youth", given_on=given_on), 422)["errors"]
    assert give(world, case, given_by="youth").status_code == 201


def test_an_expiry_already_past_is_422(world):
    case = world.case()
    yesterday = (oslo_today() - timedelta(days=1)).isoformat()
    problem = assert_problem(
        give(world, case, given_on=(oslo_today() - timedelta(days=30)).isoformat(), expires_on=yesterday), 422
    )
    assert "expires_on" in problem["errors"]


def test_a_consent_expiring_today_is_accepted_and_active(world):
    case = world.case()
    resp = give(world, case, expires_on=oslo_today().isoformat())
    assert resp.status_code == 201, resp.json
    assert resp.json["active"] is True


def test_an_expiry_before_given_on_is_422(world):
    today = oslo_today()
    case = world.case()
    problem = assert_problem(
        give(
            world,
            case,
            given_on=(today + timedelta(days=10)).isoformat(),
            expires_on=(today + timedelta(days=5)).isoformat(),
        ),
        422,
    )
    assert "expires_on" in problem["errors"]


@pytest.mark.parametrize("agencies", [["nav"], ["health", "nav"], ["westhealth"], ["nosuchagency"]])
def test_an_agency_not_participating_is_422(world, agencies):
    case = world.case(participants=("health", "slt"))
    problem = assert_problem(give(world, case, agencies=agencies), 422)
    assert "agencies" in problem["errors"]
    assert consents(world, case) == []


def test_no_agencies_is_422(world):
    case = world.case()
    assert "agencies" in assert_problem(give(world, case, agencies=[]), 422)["errors"]


def test_an_unknown_category_is_422(world):
    case = world.case()
    errors = assert_problem(give(world, case, categories=["finance"]), 422)["errors"]
    assert any(k.startswith("categories") for k in errors)


def test_several_errors_are_reported_together(world):
    case = world.case()
    problem = assert_problem(
        give(
            world,
            case,
            given_by="youth",
            agencies=["nav"],
            given_on=(oslo_today() - timedelta(days=30)).isoformat(),
            expires_on=(oslo_today() - timedelta(days=1)).isoformat(),
        ),
        422,
    )
    assert {"given_by", "agencies", "expires_on"} <= set(problem["errors"])


def test_only_the_lead_or_a_coordinator_records_a_consent(world):
    case = world.case(participants=("health", "slt"))
    world.consent(case, ["health", "slt"])
    assert_problem(give(world, case, by="health"), 403, "lead-agency-required")
    resp = give(world, case, by="slt")
    assert resp.status_code == 201, resp.json
    assert resp.json["recorded_by_agency"] == "slt"


# --- withdrawing -----------------------------------------------------------------------------


def test_withdraw_sets_withdrawn_at_and_the_consent_is_no_longer_active(world):
    case = world.case()
    consent = give(world, case).json
    resp = world["police"].post(f"/api/v1/cases/{case['id']}/consents/{consent['id']}/withdraw")
    assert resp.status_code == 200, resp.json
    assert resp.json["withdrawn_at"] is not None
    assert resp.json["withdrawn_at"].endswith("Z")
    assert resp.json["active"] is False
    stored = world["police"].get(f"/api/v1/cases/{case['id']}/consents/{consent['id']}").json
    assert stored["withdrawn_at"] == resp.json["withdrawn_at"]
    assert stored["active"] is False


def test_a_second_withdraw_is_409_and_keeps_the_first_time(world):
    case = world.case()
    consent = give(world, case).json
    first = world["police"].post(f"/api/v1/cases/{case['id']}/consents/{consent['id']}/withdraw").json
    assert_problem(world["police"].post(f"/api/v1/cases/{case['id']}/consents/{consent['id']}/withdraw"), 409)
    stored = world["police"].get(f"/api/v1/cases/{case['id']}/consents/{consent['id']}").json
    assert stored["withdrawn_at"] == first["withdrawn_at"]


def test_withdrawing_takes_access_away_at_once(world):
    case = world.case(participants=("health",))
    consent = give(world, case).json
    assert world["health"].get(f"/api/v1/cases/{case['id']}").status_code == 200
    world["police"].post(f"/api/v1/cases/{case['id']}/consents/{consent['id']}/withdraw")
    assert_problem(world["health"].get(f"/api/v1/cases/{case['id']}"), 403)
    assert world["health"].get(f"/api/v1/cases/{case['id']}").json["type"].endswith("consent-required")


def test_only_the_lead_or_a_coordinator_withdraws(world):
    case = world.case(participants=("health", "slt"))
    consent = give(world, case, agencies=["health", "slt"]).json
    url = f"/api/v1/cases/{case['id']}/consents/{consent['id']}/withdraw"
    assert_problem(world["health"].post(url), 403, "lead-agency-required")
    assert world["police"].get(f"/api/v1/cases/{case['id']}/consents/{consent['id']}").json["active"] is True
    assert world["slt"].post(url).status_code == 200


def test_a_consent_of_another_case_is_404(world):
    case = world.case()
    other = world.case()
    consent = give(world, other).json
    assert world["police"].get(f"/api/v1/cases/{case['id']}/consents/{consent['id']}").status_code == 404
    assert world["police"].post(f"/api/v1/cases/{case['id']}/consents/{consent['id']}/withdraw").status_code == 404
    assert world["police"].get(f"/api/v1/cases/{other['id']}/consents/{consent['id']}").json["active"] is True


# --- the active field ------------------------------------------------------------------------


def test_active_reflects_given_on_expiry_and_withdrawal(world):
    today = oslo_today()
    case = world.case()
    current = give(world, case).json
    future = give(world, case, given_on=(today + timedelta(days=3)).isoformat()).json
    withdrawn = give(world, case).json
    world["police"].post(f"/api/v1/cases/{case['id']}/consents/{withdrawn['id']}/withdraw")
    assert current["active"] is True
    assert future["active"] is False
    listed = {c["id"]: c["active"] for c in consents(world, case)}
    assert listed == {current["id"]: True, future["id"]: False, withdrawn["id"]: False}
    assert [c["id"] for c in consents(world, case, active="true")] == [current["id"]]
    assert {c["id"] for c in consents(world, case, active="false")} == {future["id"], withdrawn["id"]}


def test_a_consent_given_in_the_future_gives_no_access_yet(world):
    case = world.case(participants=("health",))
    give(world, case, given_on=(oslo_today() + timedelta(days=1)).isoformat())
    assert_problem(world["health"].get(f"/api/v1/cases/{case['id']}"), 403)
