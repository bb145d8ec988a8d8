"""The baseline of bench/run.py: a bare Flask app that answers the benchmarked URLs with the very
JSON bodies casesvc gave (so the same size), serialised per request with Flask's own `jsonify`
(through casesvc's JSON provider, as casesvc's are).
No authentication, no database, no schemas: what is left is Flask, JSON and gunicorn."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask, jsonify, request

from casesvc.common.jsonio import JSONProvider


def create_bare_app(bodies_path: str | Path) -> Flask:
    """`bodies_path` holds {"single": <GET /api/v1/cases/{id} body>, "list": <GET /api/v1/cases body>,
    "event": <POST /api/v1/cases/{id}/events body>, "patch": <PATCH /api/v1/cases/{id} body>}; the
    writes parse the request's JSON body, as any app must."""
    bodies = json.loads(Path(bodies_path).read_text())
    app = Flask(__name__)
    app.json = JSONProvider(app)  # casesvc's JSON: the same bytes, at the same cost per byte

    @app.get("/readyz")
    def readyz():
        return jsonify(status="ready")

    @app.get("/api/v1/cases/<case_id>")
    def get_case(case_id):
        return jsonify(bodies["single"])

    @app.get("/api/v1/cases")
    def list_cases():
        return jsonify(bodies["list"])

    @app.post("/api/v1/cases/<case_id>/events")
    def create_event(case_id):
        request.get_json()
        return jsonify(bodies["event"]), 201

    @app.patch("/api/v1/cases/<case_id>")
    def patch_case(case_id):
        request.get_json()
        return jsonify(bodies["patch"])

    return app
