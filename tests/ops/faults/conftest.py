"""The fault and load tests (`pytest -m faults`, or this folder): every test here carries the
`faults` mark (the figures they measured are printed at the end of the run: tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.faults)
