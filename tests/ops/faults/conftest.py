"""The fault and load tests (`pytest -m faults`, or this folder): every test here carries the
`faults` mark, and the figures they measured are printed at the end of the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ops.faults.harness import FIGURES

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.faults)


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("figures under faults and load")
        for text in FIGURES:
            terminalreporter.write_line(text)
