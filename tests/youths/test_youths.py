"""Youth records through the API: registration with a validated national id, duplicates,
lookup by exact number, and PATCH under If-Match."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from casesvc.youths import national_id as nid
from tests.conftest import assert_problem, youth_number

BORN = date(2010, 5, 17)


def body(**fields) -> dict:
    return {
        "given_name": "Test",
        "family_name": "Testesen",
        "birth_date": BORN.isoformat(),
        "national_id": youth_number(BORN),
        "municipality": "0301",
        "guardians": [{"name": "Test Forelder", "relation": "mother", "phone": "+47 99999999"}],
        **fields,
    }


# --- create ----------------------------------------------------------------------------------


def test_create_returns_201_with_location_and_etag(world):
    resp = world["police"].post("/api/v1/youths", json=body())
    assert resp.status_code == 201, resp.json
    youth = resp.json
    assert resp.headers["Location"].endswith(f"/api/v1/youths/{youth['id']}")
    assert resp.headers["ETag"] == '"1"'
    assert youth["national_id"] == youth_number(BORN)
    assert youth["birth_date"] == BORN.isoformat()
    assert youth["created_by_agency"] == "police"
    assert [(g["name"], g["relation"], g["phone"]) for g in youth["guardians"]] == [
        ("Test Forelder", "mother", "+47 99999999")
    ]
    follow = world["police"].get(resp.headers["Location"])
    assert follow.status_code == 200
    assert follow.json["id"] == youth["id"]
    assert follow.headers["ETag"] == resp.headers["ETag"]


def test_a_d_number_is_accepted(world):
    number = next(n for i in range(500, 1000) if (n := nid.make(BORN, i, d_number=True, synthetic=True)))
    resp = world["police"].post("/api/v1/youths", json=body(national_id=number))
    assert resp.status_code == 201, resp.json
    assert resp.json["national_id"] == number


@pytest.mark.parametrize(
    "bad",
    [
        "1234567890",  # too short
        "123456789012",  # too long
        "1705108050a",  # not digits
        "",
    ],
)
def test_a_malformed_national_id_is_422_naming_the_field(world, bad):
    problem = assert_problem(world["police"].post("/api/v1/youths", json=body(national_id=bad)), 422)
    assert "national_id" in problem["errors"]


def test_a_wrong_check_digit_is_422_naming_national_id(world):
    number = youth_number(BORN)
    for bad in (
        number[:9] + str((int(number[9]) + 1) % 10) + number[10],
        number[:10] + str((int(number[10]) + 1) % 10),
    ):
        problem = assert_problem(
            world["police"].post("/api/v1/youths", json=body(national_id=bad)), 422, "validation-error"
        )
        assert list(problem["errors"]) == ["national_id"]
    assert world["police"].get("/api/v1/youths").json["items"] == []


def test_synthetic_numbers_are_refused_when_the_setting_forbids_them(world, app, monkeypatch):
    monkeypatch.setitem(app.config, "CASESVC", dataclasses.replace(app.config["CASESVC"], allow_synthetic_ids=False))
    problem = assert_problem(world["police"].post("/api/v1/youths", json=body()), 422)
    assert "national_id" in problem["errors"]
    assert "synthetic" in problem["errors"]["national_id"][0]


def test_a_birth_date_that_does_not_match_the_national_id_is_422(world):
    problem = assert_problem(
        world["police"].post("/api/v1/youths", json=body(birth_date=date(2010, 5, 18).isoformat())), 422
    )
    assert "birth_date" in problem["errors"]
    assert "national_id" not in problem["errors"]


def test_a_duplicate_national_id_is_409_with_the_existing_id(world):
    first = world["police"].post("/api/v1/youths", json=body()).json
    problem = assert_problem(world["police"].post("/api/v1/youths", json=body(given_name="Other")), 409)
    assert problem["existing_id"] == problem["id"] == first["id"]
    assert len(world["police"].get("/api/v1/youths").json["items"]) == 1


def test_a_duplicate_registered_by_another_agency_is_409_too_without_its_id(world):
    """The other agency may not see the youth (no case of theirs): the number is known, the
    youth is not named (README: Security, hardening)."""
    first = world["police"].post("/api/v1/youths", json=body()).json
    problem = assert_problem(world["health"].post("/api/v1/youths", json=body()), 409)
    assert "existing_id" not in problem and first["id"] not in str(problem)


def test_missing_fields_are_422_each_named(world):
    problem = assert_problem(world["police"].post("/api/v1/youths", json={"given_name": "Test"}), 422)
    for name in ("family_name", "birth_date", "national_id", "municipality"):
        assert name in problem["errors"], problem["errors"]


def test_a_municipality_that_is_not_four_digits_is_422(world):
    problem = assert_problem(world["police"].post("/api/v1/youths", json=body(municipality="301")), 422)
    assert "municipality" in problem["errors"]


@pytest.mark.parametrize("relation", ["", "   ", "x" * 21], ids=["empty", "blank", "longer-than-20"])
def test_a_guardian_with_a_blank_or_overlong_relation_is_422_with_a_nested_field_name(world, relation):
    problem = assert_problem(
        world["police"].post("/api/v1/youths", json=body(guardians=[{"name": "Test Forelder", "relation": relation}])),
        422,
    )
    assert list(problem["errors"]) == ["guardians.0.relation"]


@pytest.mark.parametrize("relation", ["parent", "Bestemor", "x" * 20])
def test_a_guardian_relation_outside_the_suggested_codes_is_kept_as_given(world, relation):
    """The contract names the field, not its values: the vocabulary's codes are suggestions."""
    resp = world["police"].post(
        "/api/v1/youths", json=body(guardians=[{"name": "Test Forelder", "relation": relation}])
    )
    assert resp.status_code == 201, resp.json
    assert resp.json["guardians"][0]["relation"] == relation
    assert world["police"].get(f"/api/v1/youths/{resp.json['id']}").json["guardians"][0]["relation"] == relation


# --- lookup ----------------------------------------------------------------------------------


def test_get_by_national_id_finds_the_exact_number_only(world):
    a = world["police"].post("/api/v1/youths", json=body()).json
    other_born = date(2011, 1, 2)
    b = (
        world["police"]
        .post("/api/v1/youths", json=body(birth_date=other_born.isoformat(), national_id=youth_number(other_born)))
        .json
    )
    found = world["police"].get("/api/v1/youths", query_string={"national_id": a["national_id"]})
    assert found.status_code == 200
    assert [y["id"] for y in found.json["items"]] == [a["id"]]
    assert found.json["next_cursor"] is None
    prefix = world["police"].get("/api/v1/youths", query_string={"national_id": a["national_id"][:6]})
    assert prefix.json["items"] == []
    everyone = world["police"].get("/api/v1/youths")
    assert {y["id"] for y in everyone.json["items"]} == {a["id"], b["id"]}


def test_get_by_national_id_finds_nothing_the_caller_may_not_see(world):
    youth = world["police"].post("/api/v1/youths", json=body()).json
    found = world["nav"].get("/api/v1/youths", query_string={"national_id": youth["national_id"]})
    assert found.status_code == 200
    assert found.json["items"] == []


# --- PATCH -----------------------------------------------------------------------------------


def test_patch_without_if_match_is_428(world):
    youth = world.youth()
    problem = assert_problem(
        world["police"].patch(f"/api/v1/youths/{youth['id']}", json={"school": "Testskolen"}),
        428,
        "precondition-required",
    )
    assert problem["status"] == 428
    assert world["police"].get(f"/api/v1/youths/{youth['id']}").json["school"] is None


def test_patch_with_a_stale_etag_is_412_and_changes_nothing(world):
    youth = world.youth()
    url = f"/api/v1/youths/{youth['id']}"
    first = world["police"].patch(url, json={"school": "Testskolen"}, headers={"If-Match": '"1"'})
    assert first.status_code == 200
    assert_problem(
        world["police"].patch(url, json={"school": "Annen skole"}, headers={"If-Match": '"1"'}),
        412,
        "precondition-failed",
    )
    assert world["police"].get(url).json["school"] == "Testskolen"


def test_patch_with_the_current_etag_is_200_with_a_new_etag(world):
    youth = world.youth()
    url = f"/api/v1/youths/{youth['id']}"
    etag = world["police"].get(url).headers["ETag"]
    resp = world["police"].patch(url, json={"given_name": "Ny", "school": "Testskolen"}, headers={"If-Match": etag})
    assert resp.status_code == 200, resp.json
    assert resp.json["given_name"] == "Ny"
    assert resp.json["school"] == "Testskolen"
    assert resp.headers["ETag"] != etag
    again = world["police"].get(url)
    assert again.headers["ETag"] == resp.headers["ETag"]
    assert again.json["given_name"] == "Ny"
    # the old ETag is now stale
    assert world["police"].patch(url, json={"school": "X"}, headers={"If-Match": etag}).status_code == 412


def test_patch_replaces_the_guardians(world):
    youth = world.youth(
        guardians=[{"name": "Test Mor", "relation": "mother"}, {"name": "Test Far", "relation": "father"}]
    )
    url = f"/api/v1/youths/{youth['id']}"
    etag = world["police"].get(url).headers["ETag"]
    resp = world["police"].patch(
        url,
        json={"guardians": [{"name": "Test Verge", "relation": "guardian", "email": "verge@example.org"}]},
        headers={"If-Match": etag},
    )
    assert resp.status_code == 200, resp.json
    assert [(g["name"], g["relation"], g["email"]) for g in resp.json["guardians"]] == [
        ("Test Verge", "guardian", "verge@example.org")
    ]
    stored = world["police"].get(url)
    assert [g["name"] for g in stored.json["guardians"]] == ["Test Verge"]


def test_changing_only_the_guardians_moves_the_etag_on(world):
    youth = world.youth()
    url = f"/api/v1/youths/{youth['id']}"
    etag = world["police"].get(url).headers["ETag"]
    resp = world["police"].patch(url, json={"guardians": []}, headers={"If-Match": etag})
    assert resp.status_code == 200, resp.json
    assert resp.json["guardians"] == []
    assert resp.headers["ETag"] != etag
    stale = world["police"].patch(
        url, json={"guardians": [{"name": "Test Mor", "relation": "mother"}]}, headers={"If-Match": etag}
    )
    assert stale.status_code == 412


def test_patch_corrects_the_national_id_and_birth_date_together(world):
    """A D-number replaced by a fødselsnummer, or a typing error at registration."""
    youth = world.youth()
    url = f"/api/v1/youths/{youth['id']}"
    etag = world["police"].get(url).headers["ETag"]
    born = date(2011, 1, 2)
    resp = world["police"].patch(
        url,
        json={"national_id": youth_number(born), "birth_date": born.isoformat(), "school": "Test skole"},
        headers={"If-Match": etag},
    )
    assert resp.status_code == 200, resp.json
    assert resp.headers["ETag"] != etag
    after = world["police"].get(url).json
    assert (after["national_id"], after["birth_date"], after["school"]) == (
        youth_number(born),
        born.isoformat(),
        "Test skole",
    )
    found = world["police"].get("/api/v1/youths", query_string={"national_id": youth_number(born)}).json["items"]
    assert [y["id"] for y in found] == [youth["id"]]
    assert world["police"].get("/api/v1/youths", query_string={"national_id": youth["national_id"]}).json["items"] == []


def test_a_changed_national_id_or_birth_date_must_still_agree(world):
    youth = world.youth()
    url = f"/api/v1/youths/{youth['id']}"
    etag = world["police"].get(url).headers["ETag"]
    other = date(2011, 1, 2)
    for change, field in (
        ({"birth_date": other.isoformat()}, "birth_date"),
        ({"national_id": youth_number(other)}, "national_id"),  # the field the client changed
        ({"national_id": youth_number(other), "birth_date": youth["birth_date"]}, "birth_date"),
        ({"national_id": youth["national_id"][:-1] + str((int(youth["national_id"][-1]) + 1) % 10)}, "national_id"),
    ):
        problem = assert_problem(world["police"].patch(url, json=change, headers={"If-Match": etag}), 422)
        assert list(problem["errors"]) == [field], change
    after = world["police"].get(url)
    assert after.headers["ETag"] == etag
    assert (after.json["national_id"], after.json["birth_date"]) == (youth["national_id"], youth["birth_date"])


def test_a_national_id_another_youth_holds_is_409_with_its_id(world):
    born = date(2011, 1, 2)
    first = (
        world["police"]
        .post("/api/v1/youths", json=body(birth_date=born.isoformat(), national_id=youth_number(born)))
        .json
    )
    second = world.youth()
    url = f"/api/v1/youths/{second['id']}"
    etag = world["police"].get(url).headers["ETag"]
    problem = assert_problem(
        world["police"].patch(
            url, json={"national_id": first["national_id"], "birth_date": born.isoformat()}, headers={"If-Match": etag}
        ),
        409,
        "youth-exists",
    )
    assert problem["existing_id"] == first["id"]
    assert world["police"].get(url).json["national_id"] == second["national_id"]


def test_patch_validates_fields(world):
    youth = world.youth()
    url = f"/api/v1/youths/{youth['id']}"
    etag = world["police"].get(url).headers["ETag"]
    problem = assert_problem(
        world["police"].patch(url, json={"given_name": "", "municipality": "abcd"}, headers={"If-Match": etag}), 422
    )
    assert {"given_name", "municipality"} <= set(problem["errors"])
