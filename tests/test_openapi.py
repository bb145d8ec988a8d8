"""The committed openapi/openapi.yaml is the document the service serves."""

import re
from pathlib import Path

import yaml

from casesvc.openapi_doc import spec_yaml

COMMITTED = Path(__file__).resolve().parent.parent / "openapi" / "openapi.yaml"


def test_committed_openapi_matches_the_generated_document(app):
    with app.app_context():
        generated = spec_yaml()
    assert COMMITTED.read_text() == generated, "openapi/openapi.yaml is stale: run `make openapi`"


def test_served_openapi_is_3_1_and_equals_the_committed_file(client):
    served = client.get("/api/v1/openapi.json").json
    assert served["openapi"].startswith("3.1")
    assert served == yaml.safe_load(COMMITTED.read_text())


def test_every_operation_documents_problem_errors(client):
    spec = client.get("/api/v1/openapi.json").json
    problem = spec["components"]["responses"]["DEFAULT_ERROR"]["content"]
    assert list(problem) == ["application/problem+json"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method in ("get", "post", "patch", "put", "delete"):
                assert "default" in op["responses"], f"{method} {path}"


def test_every_patch_documents_if_match_and_its_412_and_428(client):
    """Every PATCH needs If-Match (428 without it, 412 when stale): the document says so."""
    spec = client.get("/api/v1/openapi.json").json
    patches = [(path, ops["patch"]) for path, ops in spec["paths"].items() if "patch" in ops]
    assert len(patches) >= 5
    for path, op in patches:
        headers = [p for p in op.get("parameters", []) if p["in"] == "header" and p["name"] == "If-Match"]
        assert headers and headers[0]["required"] is True, path
        assert {"412", "428"} <= set(op["responses"]), path
        assert op["responses"]["428"]["$ref"].endswith("/PRECONDITION_REQUIRED"), path


OPERATION_METHODS = ("get", "post", "put", "patch", "delete")


def _operations(spec):
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method in OPERATION_METHODS:
                yield path, method, op


def _committed():
    return yaml.safe_load(COMMITTED.read_text())


def test_every_operation_has_a_unique_camel_case_operation_id():
    """A generated client names its functions by operationId (README, "The API at a glance")."""
    ids = [(op.get("operationId"), f"{method} {path}") for path, method, op in _operations(_committed())]
    assert len(ids) >= 70
    missing = [where for op_id, where in ids if not op_id]
    assert not missing, missing
    for op_id, where in ids:
        assert re.fullmatch(r"[a-z][a-zA-Z0-9]{2,40}", op_id), (op_id, where)
    names = [op_id for op_id, _ in ids]
    assert len(set(names)) == len(names), sorted(n for n in names if names.count(n) > 1)
    by_path = {(path, method): op["operationId"] for path, method, op in _operations(_committed())}
    assert by_path[("/api/v1/cases", "post")] == "createCase"
    assert by_path[("/api/v1/cases", "get")] == "listCases"
    assert by_path[("/api/v1/cases/{case_id}/reactions/{reaction_id}/transitions", "post")] == "transitionReaction"
    assert by_path[("/api/v1/auth/token", "post")] == "issueToken"


def test_operation_ids_follow_the_view_functions(app):
    """The rule: the view function's name in camelCase, or the view's own name for it."""
    from casesvc.openapi_doc import OPERATION_IDS, operation_id

    assert operation_id("transition_reaction") == "transitionReaction"
    spec = _committed()
    documented = {op["operationId"] for _, _, op in _operations(spec)}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] in ("api-docs", "swagger_ui", "static", "docs"):
            continue
        assert (OPERATION_IDS.get(rule.endpoint) or operation_id(rule.endpoint.rpartition(".")[2])) in documented, (
            rule.endpoint
        )


def test_problem_allows_extension_members_and_names_the_service_s_own():
    problem = _committed()["components"]["schemas"]["Problem"]
    assert problem["additionalProperties"] is True
    assert {"errors", "allowed", "current", "to", "missing", "existing_id"} <= set(problem["properties"])
    assert set(problem["required"]) == {"type", "title", "status", "detail", "instance"}


def test_responses_list_what_the_service_always_sends_as_required():
    schemas = _committed()["components"]["schemas"]
    case = schemas["Case"]
    assert {"id", "status", "version", "created_at", "closed_at", "participants"} <= set(case["required"])
    assert case["properties"]["closed_at"]["type"] == ["string", "null"]
    assert "required" in schemas["CasePage"] and schemas["CasePage"]["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/Case"
    }
    # what a client sends has its own schema, without the service's fields as obligations
    assert set(schemas["CaseInput"]["required"]) == {"youth_id", "origin"}
    # a password is sent, never answered
    assert "password" in schemas["UserInput"]["properties"]
    assert "password" not in schemas["User"]["properties"]
    assert schemas["Youth"]["properties"]["guardians"]["items"] == {"$ref": "#/components/schemas/Guardian"}
    assert "name" in schemas["Guardian"]["required"]


def test_standard_answers_and_headers_are_declared_per_operation():
    spec = _committed()
    for path, method, op in _operations(spec):
        responses = op["responses"]
        if "security" not in op:
            assert {"401", "403"} <= set(responses), (method, path)
        if "{" in path:
            assert "404" in responses, (method, path)
        if path not in ("/healthz", "/api/v1/vocabulary"):
            assert "503" in responses, (method, path)
        for status, answer in responses.items():
            if status.startswith("2") and "$ref" not in answer:
                assert "X-Request-Id" in answer["headers"], (method, path, status)
    post_case = spec["paths"]["/api/v1/cases"]["post"]
    assert {"ETag", "Location", "Idempotent-Replayed"} <= set(post_case["responses"]["201"]["headers"])
    key = [p for p in post_case["parameters"] if p["in"] == "header" and p["name"] == "Idempotency-Key"]
    assert key and key[0]["required"] is False
    assert "Retry-After" in post_case["responses"]["409"]["headers"]
    unavailable = spec["components"]["responses"]["DatabaseUnavailable"]
    assert unavailable["headers"]["Retry-After"] == {"$ref": "#/components/headers/Retry-After"}
    assert spec["components"]["headers"]["ETag"]["required"] is True
    get_case = spec["paths"]["/api/v1/cases/{case_id}"]["get"]["responses"]["200"]
    assert "ETag" in get_case["headers"]


def test_the_409s_are_documented_where_they_occur():
    paths = _committed()["paths"]
    for path, method in [
        ("/api/v1/cases/{case_id}/transitions", "post"),
        ("/api/v1/cases/{case_id}/reactions/{reaction_id}/transitions", "post"),
        ("/api/v1/youths", "post"),
        ("/api/v1/users", "post"),
        ("/api/v1/users/{user_id}", "patch"),
        ("/api/v1/users/{user_id}/disable", "post"),
        ("/api/v1/reminders/{reminder_id}/ack", "post"),
        ("/api/v1/cases/{case_id}/notes", "post"),
    ]:
        assert "409" in paths[path][method]["responses"], (method, path)


def test_media_types_of_the_non_json_answers():
    paths = _committed()["paths"]
    export = paths["/api/v1/audit/export"]["get"]["responses"]["200"]["content"]
    assert set(export) == {"application/x-ndjson", "text/csv"}
    metrics = paths["/metrics"]["get"]
    assert set(metrics["responses"]["200"]["content"]) == {"text/plain"}
    assert {} in metrics["security"]  # open unless CASESVC_METRICS_TOKEN is set
    assert "401" in metrics["responses"]
    ready = paths["/readyz"]["get"]["responses"]["503"]
    assert "Retry-After" in ready["headers"] and "application/problem+json" in ready["content"]
    calendar = paths["/api/v1/reminders.ics"]["get"]
    assert set(calendar["responses"]["200"]["content"]) == {"text/calendar"}
    assert {"calendarFeed": []} in calendar["security"]
    statistics = paths["/api/v1/statistics"]["get"]["responses"]["200"]["content"]
    assert set(statistics) == {"application/json", "text/csv"}


def test_token_and_revoke_are_form_encoded_as_rfc_6749_defines():
    paths = _committed()["paths"]
    for path in ("/api/v1/auth/token", "/api/v1/auth/revoke"):
        content = paths[path]["post"]["requestBody"]["content"]
        assert list(content) == ["application/x-www-form-urlencoded"], path


def test_servers_are_relative_in_the_committed_document_and_the_public_url_when_set(client):
    from casesvc.openapi_doc import servers

    assert _committed()["servers"][0]["url"] == "/"
    assert client.get("/api/v1/openapi.json").json["servers"][0]["url"] == "/"  # CASESVC_PUBLIC_URL unset
    assert servers("https://casesvc.kommune.example")[0]["url"] == "https://casesvc.kommune.example"


def test_constraints_are_in_the_schemas_not_only_in_prose():
    schemas = _committed()["components"]["schemas"]
    agency = schemas["AgencyInput"]["properties"]
    assert agency["code"]["pattern"] == "^[A-Za-z0-9][A-Za-z0-9_-]{1,31}$"
    assert agency["municipalities"]["items"]["pattern"] == "^[0-9]{4}$"
    assert agency["municipalities"]["maxItems"] == 400
    assert schemas["UserInput"]["properties"]["password"]["minLength"] == 8
    assert schemas["PasswordInput"]["properties"]["password"]["minLength"] == 8
    assert schemas["UserInput"]["properties"]["username"]["pattern"] == "^[A-Za-z0-9._@-]{2,150}$"
    assert "pattern" not in schemas["User"]["properties"]["username"]  # a provider's users are `oidc:…`
    assert schemas["YouthInput"]["properties"]["national_id"]["pattern"] == "^[0-9]{11}$"
    assert schemas["YouthPatch"]["properties"]["national_id"]["pattern"] == "^[0-9]{11}$"
    assert schemas["YouthInput"]["properties"]["guardians"]["maxItems"] == 10
    assert "100 years ago" in schemas["YouthInput"]["properties"]["birth_date"]["description"]
    webhook = schemas["WebhookInput"]["properties"]
    assert (webhook["url"]["maxLength"], webhook["secret"]["minLength"], webhook["secret"]["maxLength"]) == (
        2000,
        1,
        255,
    )
    token_request = schemas["TokenRequest"]["description"]
    assert "password" in token_request and "refresh_token" in token_request
    assert schemas["TokenRequest"]["properties"]["grant_type"]["enum"] == [
        "password",
        "refresh_token",
        "client_credentials",
    ]
