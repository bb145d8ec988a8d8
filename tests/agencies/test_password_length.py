"""A user's password is at least 8 characters (NIST SP 800-63B's minimum for a password the user
chooses), from the admin API and from `casesvc users create` alike."""

from __future__ import annotations

from tests.agencies.test_admin_api import field_problem, login
from tests.conftest import assert_token_granted, assert_token_works

EIGHT = "Xq7-fake"  # 8 characters: long enough
SEVEN = "Xq7-fak"  # 7 characters: too short


def new_user(**fields):
    return {"username": "fake.person", "role": "nav", "agency": "nav", **fields}


def test_the_admin_api_accepts_an_eight_character_password_that_then_logs_in(world, client):
    resp = world["admin"].post("/api/v1/users", json=new_user(password=EIGHT))
    assert resp.status_code == 201, resp.json
    assert (resp.json["username"], resp.json["role"], resp.json["agency"]) == ("fake.person", "nav", "nav")
    assert "password" not in resp.json
    assert world["admin"].get(f"/api/v1/users/{resp.json['id']}").json["username"] == "fake.person"
    assert login(client, "fake.person", EIGHT).status_code == 200
    token = assert_token_granted(login(client, "fake.person", EIGHT))["access_token"]
    assert_token_works(client, token, "fake.person", role="nav")


def test_the_admin_api_refuses_a_seven_character_password(world):
    resp = world["admin"].post("/api/v1/users", json=new_user(password=SEVEN))
    message = field_problem(resp, "password")
    assert "at least 8 characters" in message
    assert SEVEN not in resp.get_data(as_text=True)


def test_the_command_accepts_an_eight_character_password_that_then_logs_in(world, client, test_db_cli):
    code, out, err = test_db_cli(
        "users", "create", "fake.cli.person", "--role", "nav", "--agency", "nav", "--password-stdin", stdin=EIGHT + "\n"
    )
    assert code == 0, err
    assert EIGHT not in out + err
    assert login(client, "fake.cli.person", EIGHT).status_code == 200


def test_the_command_refuses_a_seven_character_password_in_one_line(world, test_db_cli):
    code, out, err = test_db_cli(
        "users", "create", "fake.cli.person", "--role", "nav", "--agency", "nav", "--password-stdin", stdin=SEVEN + "\n"
    )
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "at least 8 characters" in lines[0]
    assert SEVEN not in out + err
