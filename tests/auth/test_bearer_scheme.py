"""RFC 9110 §11.1 / RFC 6750: the authentication scheme is case-insensitive, so `bearer`,
`BEARER` and `Bearer` all carry the token; any other scheme is no bearer token (401)."""

from __future__ import annotations

import pytest

from tests.conftest import assert_unauthorized

ME = "/api/v1/auth/me"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_accepted_in_any_case(world, client, scheme):
    police = world["police"]
    resp = client.get(ME, headers={"Authorization": f"{scheme} {police.token}"})
    assert resp.status_code == 200, resp.json
    assert resp.json["subject"] == police.user_id


def test_the_same_token_works_in_one_case_after_another(world, client):
    """A token verified (and cached) under one spelling of the scheme is the same token under
    another; and a case endpoint answers as it does with the usual spelling."""
    police = world["police"]
    case = world.case()
    for scheme in ("Bearer", "bearer", "BEARER", "Bearer"):
        resp = client.get(f"/api/v1/cases/{case['id']}", headers={"Authorization": f"{scheme} {police.token}"})
        assert resp.status_code == 200, (scheme, resp.json)
        assert resp.json["id"] == case["id"] and resp.json["youth_id"] == case["youth_id"], scheme


@pytest.mark.parametrize("header", ["Basic xyz", "Basic dXNlci5wb2xpY2U6cGFzc3dvcmQ=", "bearer", "Token abc"])
def test_another_scheme_or_no_token_is_401(world, client, header):
    resp = client.get(ME, headers={"Authorization": header})
    assert resp.status_code == 401
    assert resp.mimetype == "application/problem+json"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_another_scheme_with_a_valid_token_is_still_401(world, client):
    resp = client.get(ME, headers={"Authorization": f"Basic {world['police'].token}"})
    assert resp.status_code == 401
    assert "required" in assert_unauthorized(resp)["detail"]  # no bearer token at all, as without a header


def test_a_bad_token_under_a_lower_case_scheme_is_401(world, client):
    token = world["police"].token
    resp = client.get(ME, headers={"Authorization": f"bearer {token[:-4]}AAAA"})
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
