"""One version, from the package metadata (pyproject.toml): `casesvc --version`, `GET /healthz`
and the OpenAPI `info.version` say the same; CHANGELOG.md is kept in its format."""

from __future__ import annotations

import itertools
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT_VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_casesvc_version_prints_the_package_version(fresh_cli):
    for flag in ("--version", "-V"):
        code, out, err = fresh_cli(flag)
        assert (code, out, err) == (0, f"casesvc {PYPROJECT_VERSION}\n", "")


def test_healthz_and_openapi_carry_the_package_version(client):
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json == {"status": "ok", "version": PYPROJECT_VERSION}
    spec = client.get("/api/v1/openapi.json").json
    assert spec["info"]["version"] == PYPROJECT_VERSION
    assert spec["paths"]["/healthz"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Alive"
    }


SECTIONS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_changelog_opens_with_unreleased_and_keeps_the_format():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog\n")
    releases = re.findall(r"^## (.+)$", text, flags=re.M)
    assert releases and releases[0] == "[Unreleased]"
    for heading in releases[1:]:
        assert re.fullmatch(r"\[\d+\.\d+\.\d+\] - \d{4}-\d{2}-\d{2}", heading), heading
    kinds = re.findall(r"^### (.+)$", text, flags=re.M)
    assert kinds and set(kinds) <= SECTIONS, kinds
    released = [h.split("]")[0].lstrip("[") for h in releases[1:]]
    assert all(_newer(a, b) for a, b in itertools.pairwise(released)), "releases newest first"


def _newer(a: str, b: str) -> bool:
    return tuple(map(int, a.split("."))) > tuple(map(int, b.split(".")))
