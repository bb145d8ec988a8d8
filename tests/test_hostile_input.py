"""Hostile input is refused at the edge with a 4xx, never a 500: NUL in any text (PostgreSQL
cannot store it, so SQLite must not either), half of a surrogate pair, JSON nested too deeply to
parse, an integer longer than Python converts, a body over 1 MiB sent chunked, and values the
database cannot hold."""

from __future__ import annotations

import http.client
import io
import json

import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy import select
from sqlalchemy.exc import DataError

from casesvc.common.jsonio import SURROGATE_DETAIL, json_has_lone_surrogate
from casesvc.extensions import db
from tests.conftest import PASSWORD, assert_problem
from tests.ops.test_serve import served  # noqa: F401  (a real gunicorn for the chunked upload)
from tests.test_http_conventions import assert_no_leak

NUL_DETAIL = "Text may not contain the NUL character (\\u0000)."
MIB = 1024 * 1024
TOKEN_URL = "/api/v1/auth/token"


def notes_url(case) -> str:
    return f"/api/v1/cases/{case['id']}/notes"


def assert_nul_refused(resp) -> None:
    body = assert_problem(resp, 400)
    assert body["detail"] == NUL_DETAIL
    assert_no_leak(resp)


def assert_oauth_invalid_request(resp) -> dict:
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    assert resp.json["error"] == "invalid_request"
    assert resp.headers["Cache-Control"] == "no-store"
    return resp.json


def post_json(actor, url, text: str | bytes, **headers):
    return actor.post(url, data=text, headers={"Content-Type": "application/json", **headers})


def post_chunked(poster, url, body: bytes, content_type="application/json", **headers):
    """A body without Content-Length, as gunicorn hands it over (`wsgi.input_terminated`)."""
    return poster.post(
        url,
        input_stream=io.BytesIO(body),
        environ_overrides={"wsgi.input_terminated": True},
        headers={"Content-Type": content_type, "Transfer-Encoding": "chunked", **headers},
    )


# --- NUL ---------------------------------------------------------------------------------------


def test_nul_in_a_json_string_is_400_and_nothing_is_stored(world):
    case = world.case()
    resp = world["police"].post(notes_url(case), json={"body": "Test\u0000note"})
    assert_nul_refused(resp)
    assert world["police"].get(notes_url(case)).json["items"] == []


def test_nul_in_a_json_key_is_400(world):
    # an unknown field would be ignored, but not with NUL in its name
    case = world.case()
    resp = world["police"].post(notes_url(case), json={"body": "Test note", "vis\u0000ibility": "shared"})
    assert_nul_refused(resp)


def test_nul_deep_inside_a_json_body_is_400(world):
    case = world.case()
    resp = world["police"].post(
        f"/api/v1/cases/{case['id']}/reactions",
        json={
            "type": "follow_up_plan",
            "legal_basis": "consent",
            "starts_on": "2027-01-01",
            "conditions": [{"kind": "meeting", "responsible_agency": "police", "description": "Test\u0000meeting"}],
        },
    )
    assert_nul_refused(resp)


def test_a_raw_nul_byte_in_a_json_body_is_400(world):
    case = world.case()
    assert_nul_refused(post_json(world["police"], notes_url(case), b'{"body": "Test\x00note"}'))


def test_nul_in_a_merge_patch_is_400(world):
    case = world.case()
    resp = world["police"].patch(
        f"/api/v1/cases/{case['id']}",
        data=json.dumps({"summary": "Test\u0000case"}),
        headers={"Content-Type": "application/merge-patch+json", "If-Match": '"1"'},
    )
    assert_nul_refused(resp)
    assert world["police"].get(f"/api/v1/cases/{case['id']}").json["summary"] == "Test case"


@pytest.mark.parametrize("text", ["C:\\u0000 is no NUL", "\\\\u0000"])
def test_an_escaped_backslash_before_u0000_is_text_and_stored(world, text):
    # JSON `\\u0000` is a backslash and "u0000", not NUL
    case = world.case()
    encoded = json.dumps({"body": text})
    assert "\\\\u0000" in encoded
    resp = post_json(world["police"], notes_url(case), encoded)
    assert resp.status_code == 201, resp.json
    assert world["police"].get(f"{notes_url(case)}/{resp.json['id']}").json["body"] == text


@pytest.mark.parametrize("text", ["\\\u0000", "\\\\\\\u0000"])
def test_nul_after_escaped_backslashes_is_still_nul(world, text):
    # JSON `\\\u0000`: a backslash, then NUL
    case = world.case()
    assert_nul_refused(post_json(world["police"], notes_url(case), json.dumps({"body": text})))


def test_nul_in_a_query_argument_is_400(world, client):
    world.youth()
    assert_nul_refused(world["police"].get("/api/v1/youths?national_id=%00"))
    assert_nul_refused(world["police"].get("/api/v1/cases?status=open%00"))
    assert_nul_refused(world["police"].get("/api/v1/youths?cursor=%00%ff"))
    assert world["police"].get("/api/v1/youths?national_id=%2500").status_code == 200  # "%00", the text
    # authentication still comes first: without a token nothing about the request is judged
    assert_problem(client.get("/api/v1/youths?national_id=%00"), 401)


def test_a_raw_nul_in_the_query_string_is_400(world):
    resp = world["police"].get("/api/v1/youths", environ_overrides={"QUERY_STRING": "national_id=\x00"})
    assert_nul_refused(resp)


def test_nul_in_a_path_id_is_400(world):
    case = world.case()
    assert_nul_refused(world["police"].get("/api/v1/cases/ab%00cd"))
    assert_nul_refused(world["police"].get(f"/api/v1/cases/{case['id']}/notes/%00"))


@pytest.mark.parametrize("as_json", [False, True], ids=["form", "json"])
def test_nul_at_the_token_endpoint_is_invalid_request(world, client, as_json):
    params = {"grant_type": "password", "username": "user.po\u0000lice", "password": PASSWORD}
    resp = client.post(TOKEN_URL, json=params) if as_json else client.post(TOKEN_URL, data=params)
    assert assert_oauth_invalid_request(resp)["error_description"] == NUL_DETAIL
    assert "access_token" not in resp.json


def test_nul_in_a_token_to_revoke_is_invalid_request(client):
    assert_oauth_invalid_request(client.post("/api/v1/auth/revoke", data={"token": "abc\u0000def"}))


# --- values the database cannot hold -----------------------------------------------------------


def test_an_audit_cursor_beyond_a_64_bit_sequence_is_422_like_any_bad_cursor(world):
    admin = world["admin"]
    for cursor in ("99999999999999999999", str(2**63), "0", "-5"):
        body = assert_problem(admin.get("/api/v1/audit/events", query_string={"cursor": cursor}), 422)
        assert list(body["errors"]) == ["cursor"], cursor
    assert admin.get("/api/v1/audit/events", query_string={"cursor": str(2**63 - 1)}).status_code == 200


@pytest.mark.parametrize(
    "refusal",
    [
        DataError(
            "SELECT cases.id FROM cases WHERE cases.version = %(v)s", {"v": 2**70}, Exception("integer out of range")
        ),
        OverflowError("Python int too large to convert to SQLite INTEGER"),
    ],
)
def test_a_value_the_database_cannot_hold_is_400_without_sql(world, monkeypatch, refusal):
    """The last line behind validation: the database's (PostgreSQL) or its driver's (SQLite)
    refusal of a value becomes a 400 that names no SQL, and the session is usable again."""
    from casesvc.cases import service

    case = world.case()

    def refuse(*_args):
        db.session.execute(select(1))  # the request's transaction has begun when the database refuses
        raise refusal

    monkeypatch.setattr(service, "get_case", refuse)
    resp = world["police"].get(f"/api/v1/cases/{case['id']}")
    body = assert_problem(resp, 400)
    assert body["type"] == "/problems/bad-request"
    assert_no_leak(resp)
    text = resp.get_data(as_text=True)
    assert not any(word in text for word in ("SELECT", "integer out of range", "too large to convert"))
    monkeypatch.undo()
    assert world["police"].get(f"/api/v1/cases/{case['id']}").status_code == 200


# --- JSON nested too deeply --------------------------------------------------------------------

# --- half a surrogate pair ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ['"Test \\ud800 note"', '"Test \\udfff"', '"\\ud83d Test"', '"Test \\ud83d\\\\ude00"'],
    ids=["high", "low", "high-then-text", "high-then-escaped-backslash"],
)
def test_half_a_surrogate_pair_is_400_and_nothing_is_stored(world, text):
    case = world.case()
    resp = post_json(world["police"], notes_url(case), '{"body": ' + text + "}")
    assert assert_problem(resp, 400)["detail"] == SURROGATE_DETAIL
    assert_no_leak(resp)
    assert world["police"].get(notes_url(case)).json["items"] == []


def test_half_a_surrogate_pair_in_a_key_or_a_youth_is_400(world):
    resp = post_json(world["police"], "/api/v1/youths", '{"given_name": "Test", "\\udc00": 1}')
    assert assert_problem(resp, 400)["detail"] == SURROGATE_DETAIL
    youth = world.youth()
    url = f"/api/v1/youths/{youth['id']}"
    resp = world["police"].patch(
        url,
        data='{"school": "\\ud800"}',
        headers={"Content-Type": "application/json", "If-Match": world["police"].get(url).headers["ETag"]},
    )
    assert assert_problem(resp, 400)["detail"] == SURROGATE_DETAIL
    assert world["police"].get(url).json["school"] == youth["school"]


def test_a_whole_surrogate_pair_and_an_escaped_backslash_are_text_like_any_other(world):
    case = world.case()
    resp = post_json(world["police"], notes_url(case), '{"body": "Test \\ud83d\\ude00 \\\\ud800 note"}')
    assert resp.status_code == 201, resp.json
    assert resp.json["body"] == "Test \U0001f600 \\ud800 note"


_TEXT = st.text(
    alphabet=st.characters(codec=None, min_codepoint=0x20, max_codepoint=0xE000)
    | st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff", "\\", "\U0001f600", "u"]),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        _TEXT, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3), max_leaves=6
    ),
    st.booleans(),
)
def test_the_surrogate_check_agrees_with_what_a_database_could_store(value, ascii_only):
    """Without parsing, the check finds exactly the bodies whose parsed text has a surrogate
    that is not part of a character, which UTF-8 (and so either database) cannot hold."""
    body = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    if not ascii_only and any(0xD800 <= ord(c) <= 0xDFFF for c in json.dumps(value, ensure_ascii=False)):
        return  # raw surrogates are not valid UTF-8: such a body is refused before parsing (bad UTF-8)

    def texts(item):
        if isinstance(item, str):
            yield item
        elif isinstance(item, list):
            for element in item:
                yield from texts(element)
        elif isinstance(item, dict):
            for key, element in item.items():
                yield key
                yield from texts(element)

    def storable(text):
        try:
            text.encode("utf-8")
            return True
        except UnicodeEncodeError:
            return False

    assert json_has_lone_surrogate(body) == (not all(storable(t) for t in texts(json.loads(body))))


# --- an integer of more digits than Python converts ----------------------------------------------


@pytest.mark.parametrize("digits", [4301, 50_000])
def test_an_integer_too_long_to_convert_is_400_malformed(world, digits):
    case = world.case()
    for url, body in (
        ("/api/v1/youths", '{"given_name": %s}' % ("9" * digits)),
        (notes_url(case), '{"body": "Test note", "extra": [%s]}' % ("9" * digits)),
    ):
        resp = post_json(world["police"], url, body)
        assert assert_problem(resp, 400)["detail"] == "The request body is not valid JSON.", url
        assert_no_leak(resp)
    assert world["police"].get(notes_url(case)).json["items"] == []


def test_an_integer_python_still_converts_is_judged_by_the_schema(world):
    resp = post_json(world["police"], "/api/v1/youths", '{"given_name": %s}' % ("9" * 4300))
    assert resp.status_code == 422 and "given_name" in resp.json["errors"]
    assert_problem(resp, 422, "validation-error")
    assert world["police"].get("/api/v1/youths").json["items"] == []


def nested(opener: str, depth: int) -> str:
    if opener == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("opener", ["[", "{"])
def test_json_nested_too_deeply_is_400_malformed(world, opener):
    body = nested(opener, 150_000)
    assert len(body) < MIB
    resp = post_json(world["police"], "/api/v1/cases", body)
    problem = assert_problem(resp, 400)
    assert problem["detail"] == "The request body is not valid JSON."
    assert_no_leak(resp)


def test_json_nested_too_deeply_inside_a_field_is_400_with_an_idempotency_key(world):
    case = world.case()
    body = '{"body": "Test note", "corrects": ' + nested("[", 100_000) + "}"
    resp = post_json(world["police"], notes_url(case), body, **{"Idempotency-Key": "deep-1"})
    assert_problem(resp, 400)
    assert world["police"].get(notes_url(case)).json["items"] == []


@pytest.mark.parametrize("opener", ["[", "{"])
def test_json_nested_too_deeply_at_the_token_endpoint_is_invalid_request(client, opener):
    assert_oauth_invalid_request(post_json(client, TOKEN_URL, nested(opener, 150_000)))


# --- bodies over 1 MiB without Content-Length --------------------------------------------------


def test_a_chunked_body_over_one_mebibyte_is_413(world):
    body = b'{"summary": "' + b"x" * MIB + b'"}'
    resp = post_chunked(world["police"], "/api/v1/cases", body)
    assert_problem(resp, 413)


def test_a_chunked_body_over_one_mebibyte_at_the_token_endpoint_is_413(client):
    body = b'{"grant_type": "password", "username": "' + b"x" * MIB + b'"}'
    assert_problem(post_chunked(client, TOKEN_URL, body), 413)


def test_a_chunked_body_within_the_limit_is_read_whole(world):
    case = world.case()
    resp = post_chunked(world["police"], notes_url(case), json.dumps({"body": "Test note"}).encode())
    assert resp.status_code == 201, resp.json
    # exactly 1 MiB is not over it: the body reaches validation
    prefix, suffix = b'{"summary": "', b'"}'
    body = prefix + b"x" * (MIB - len(prefix) - len(suffix)) + suffix
    assert len(body) == MIB
    assert_problem(post_chunked(world["police"], "/api/v1/cases", body), 422)


def test_a_chunked_body_over_one_mebibyte_is_413_from_the_real_server(served):  # noqa: F811
    base, _, _ = served
    host, port = base.removeprefix("http://").split(":")
    body = b'{"grant_type": "password", "username": "' + b"x" * MIB + b'"}'
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(
            "POST",
            TOKEN_URL,
            body=iter([body[i : i + 65536] for i in range(0, len(body), 65536)]),
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        resp = conn.getresponse()
        assert resp.status == 413
        assert resp.getheader("Content-Type") == "application/problem+json"
        assert json.loads(resp.read())["status"] == 413
    finally:
        conn.close()
