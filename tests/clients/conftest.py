"""A live server for the generated clients: the test app behind a real HTTP socket (werkzeug,
threaded, a free port), on the test database (SQLite, or PostgreSQL when
CASESVC_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server


@pytest.fixture
def live_url(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
