"""The committed openapi/openapi.yaml is the document the service serves."""
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
