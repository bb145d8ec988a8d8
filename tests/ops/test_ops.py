"""README "Operations" and "The API at a glance": health, readiness, metrics, the vocabulary, the OpenAPI
document and /docs."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlparse

import pytest

from casesvc import create_app

UNREACHABLE_DB = "postgresql+psycopg://nobody@127.0.0.1:1/none"
METRICS_TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture
def fresh_app(tmp_path, monkeypatch):
    """A separate app (its own settings); the session app is left alone."""
    for name in ("CASESVC_METRICS_TOKEN", "CASESVC_DATABASE_URL", "CASESVC_ENV", "CASESVC_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)

    def make(database_url: str | None = None, **env):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        url = database_url or f"sqlite:///{tmp_path / 'ops.sqlite3'}"
        return create_app({"env": "test", "database_url": url}, instance_path=tmp_path)

    return make


# --- health and readiness ------------------------------------------------------------------------


def test_healthz_needs_no_token(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json["status"] == "ok" and resp.json["version"]


def test_readyz_is_200_when_the_database_answers(client):
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json["status"] == "ready"


def test_readyz_is_503_problem_when_the_database_is_unreachable(fresh_app):
    client = fresh_app(UNREACHABLE_DB).test_client()
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.mimetype == "application/problem+json"
    body = resp.json
    assert body["status"] == 503 and body["type"] and body["title"] and body["detail"]
    assert "127.0.0.1" not in resp.get_data(as_text=True)  # nothing of the connection error leaks
    assert "nobody" not in resp.get_data(as_text=True)
    # alive, though not ready
    assert client.get("/healthz").status_code == 200


# --- metrics -------------------------------------------------------------------------------------


def test_metrics_serve_prometheus_text(client):
    client.get("/healthz")
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.mimetype == "text/plain"
    # each parameter once: Prometheus refuses a media type with a repeated parameter
    params = [p.split("=")[0].strip() for p in resp.headers["Content-Type"].split(";")[1:]]
    assert sorted(params) == sorted(set(params)) and "charset" in params
    text = resp.get_data(as_text=True)
    assert "# TYPE casesvc_http_requests_total counter" in text
    assert re.search(r'casesvc_http_requests_total\{[^}]*route="/healthz"[^}]*\} \d', text)


def test_metrics_need_the_metrics_token_when_it_is_set(fresh_app):
    client = fresh_app(CASESVC_METRICS_TOKEN=METRICS_TOKEN).test_client()
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing.mimetype == "application/problem+json"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    prefix = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN[:-1]}"})
    assert prefix.status_code == 401
    right = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert right.status_code == 200
    assert "casesvc_http_requests_total" in right.get_data(as_text=True)
    # the scheme is case-insensitive (RFC 9110), the token is not
    assert client.get("/metrics", headers={"Authorization": f"bearer {METRICS_TOKEN}"}).status_code == 200
    assert client.get("/metrics", headers={"Authorization": f"Basic {METRICS_TOKEN}"}).status_code == 401


def test_metrics_token_does_not_guard_health(fresh_app):
    client = fresh_app(CASESVC_METRICS_TOKEN=METRICS_TOKEN).test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/healthz").json["status"] == "ok"


# --- vocabulary ----------------------------------------------------------------------------------

CONTRACT_CODES = {
    "agency_kind": {"police", "school_health", "nav", "child_welfare", "coordinator"},
    "case_origin": {"police", "school", "health", "nav", "child_welfare", "guardian", "self"},
    "case_status": {"open", "active", "completed", "breached", "withdrawn"},
    "reaction_type": {"follow_up_plan", "concern_conversation", "youth_contract", "drug_contract"},
    "legal_basis": {"consent", "conditional_waiver", "youth_follow_up"},
    "reaction_status": {"draft", "active", "completed", "breached", "cancelled"},
    "condition_kind": {"drug_test", "meeting", "school_attendance", "curfew", "activity", "treatment", "other"},
    "event_kind": {"meeting", "drug_test", "conversation", "phone_call", "home_visit", "school_report", "other"},
    "drug_test_result": {"negative", "positive", "missed", "invalid"},
    "category": {"general", "health"},
    "visibility": {"agency", "shared"},
    "consent_given_by": {"youth", "guardian", "both"},
    "scope": {
        "cases:read",
        "cases:write",
        "notes:read",
        "notes:write",
        "consents:write",
        "reminders:read",
        "reminders:write",
        "audit:read",
        "admin",
    },
    "role": {"police", "school_health", "nav", "child_welfare", "coordinator", "admin", "auditor"},
}


def test_vocabulary_needs_no_token_and_labels_every_code_in_both_languages(client):
    resp = client.get("/api/v1/vocabulary")
    assert resp.status_code == 200
    groups = resp.json["groups"]
    assert groups
    for group, labels in groups.items():
        assert labels, group
        codes = [label["code"] for label in labels]
        assert len(codes) == len(set(codes)), group
        for label in labels:
            assert isinstance(label["nb"], str) and label["nb"].strip(), (group, label)
            assert isinstance(label["en"], str) and label["en"].strip(), (group, label)


@pytest.mark.parametrize("group", sorted(CONTRACT_CODES))
def test_vocabulary_has_every_code_of_the_contract(client, group):
    groups = client.get("/api/v1/vocabulary").json["groups"]
    assert group in groups
    assert {label["code"] for label in groups[group]} >= CONTRACT_CODES[group]


def test_vocabulary_lists_exactly_the_reaction_types(client):
    groups = client.get("/api/v1/vocabulary").json["groups"]
    assert {label["code"] for label in groups["reaction_type"]} == CONTRACT_CODES["reaction_type"]


# --- OpenAPI and /docs ---------------------------------------------------------------------------


def test_openapi_json_is_openapi_3_1_and_public(client):
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    spec = resp.json
    assert re.fullmatch(r"3\.1\.\d+", spec["openapi"])
    assert spec["info"]["title"] and spec["info"]["version"]
    for path in ("/api/v1/auth/token", "/api/v1/youths", "/api/v1/cases", "/api/v1/vocabulary"):
        assert path in spec["paths"], path


def _asset_urls(html: str) -> list[str]:
    scripts = re.findall(r"<script[^>]*\bsrc=[\"']([^\"']+)", html, re.I)
    links = re.findall(r"<link[^>]*\bhref=[\"']([^\"']+)", html, re.I)
    return scripts + links


def test_docs_serve_html_with_local_assets_only(client):
    resp = client.get("/docs/", follow_redirects=True)
    assert resp.status_code == 200
    assert resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assets = _asset_urls(html)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        parsed = urlparse(asset)
        assert not parsed.scheme and not parsed.netloc, f"asset from another host: {asset}"
    assert "/api/v1/openapi.json" in html


def test_docs_assets_answer_200(client):
    html = client.get("/docs/", follow_redirects=True).get_data(as_text=True)
    assets = _asset_urls(html)
    assert assets
    for asset in assets:
        resp = client.get(urljoin("/docs/", asset))
        assert resp.status_code == 200, asset
        assert resp.data, asset


def test_docs_without_trailing_slash_is_the_page_itself_and_its_assets_resolve(client):
    """A client that does not follow redirects gets the page at /docs, and the page's asset
    addresses work from there too (a browser resolves them against /docs, not /docs/)."""
    resp = client.get("/docs")
    assert resp.status_code == 200
    assert resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert "swagger" in html.lower()
    assets = _asset_urls(html)
    assert assets
    for asset in assets:
        assert client.get(urljoin("/docs", asset)).status_code == 200, asset


def test_behind_a_trusted_proxy_the_client_address_comes_from_x_forwarded_for(tmp_path):
    from casesvc import create_app

    proxied = create_app(
        {"env": "test", "database_url": f"sqlite:///{tmp_path / 'p.sqlite3'}", "trusted_proxies": 1},
        instance_path=tmp_path,
    )

    @proxied.route("/_whoami")
    def _whoami():
        from flask import request

        return request.remote_addr or ""

    direct = create_app({"env": "test", "database_url": f"sqlite:///{tmp_path / 'd.sqlite3'}"}, instance_path=tmp_path)
    direct.add_url_rule("/_whoami", view_func=_whoami)
    headers = {"X-Forwarded-For": "203.0.113.7"}
    assert proxied.test_client().get("/_whoami", headers=headers).get_data(as_text=True) == "203.0.113.7"
    assert direct.test_client().get("/_whoami", headers=headers).get_data(as_text=True) != "203.0.113.7"
