"""Reproducible installs (README: Development): the lock files in requirements/ pin every
package with hashes, cover what pyproject.toml asks for, and are what `make install`, the
image and CI install."""

from __future__ import annotations

import re
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
MAIN_LOCK = ROOT / "requirements" / "main.txt"
TEST_LOCK = ROOT / "requirements" / "test.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(;[^\\]*)?\\?$")


def pins(lock: Path) -> dict[str, tuple[str, str | None, int]]:
    """name -> (version, environment marker, number of hashes) of every pin in a lock file."""
    found: dict[str, tuple[str, str | None, int]] = {}
    current = None
    for line in lock.read_text().splitlines():
        match = PIN.match(line)
        if match:
            name, version, marker = match.groups()
            current = canonicalize_name(name)
            found[current] = (version, marker.lstrip(";").strip() if marker else None, 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, marker, count = found[current]
            found[current] = (version, marker, count + 1)
        elif not line.startswith(" "):
            current = None
    return found


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_every_pin_is_exact_and_hashed():
    for lock in (MAIN_LOCK, TEST_LOCK):
        locked = pins(lock)
        assert locked, lock
        lines = [line for line in lock.read_text().splitlines() if line and not line.startswith((" ", "#"))]
        assert len(lines) == len(locked), f"{lock.name}: a requirement that is not an exact pin"
        unhashed = [name for name, (_, _, hashes) in locked.items() if hashes == 0]
        assert not unhashed, f"{lock.name}: pins without a hash: {unhashed}"


@pytest.mark.parametrize("lock,extras", [(MAIN_LOCK, ()), (TEST_LOCK, ("test",))], ids=["main", "test"])
def test_the_lock_satisfies_pyproject(lock, extras):
    """A dependency added to pyproject.toml without `make lock` fails here, as does a range
    the pinned version no longer meets."""
    locked = pins(lock)
    wanted = list(project()["dependencies"])
    for extra in extras:
        wanted += project()["optional-dependencies"][extra]
    for spec in wanted:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{spec} is not in {lock.name}: run `make lock`"
        assert requirement.specifier.contains(locked[name][0], prereleases=True), (
            f"{lock.name} pins {name}=={locked[name][0]}, outside {spec}: run `make lock`"
        )
    build_requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    for spec in build_requires:  # `pip install --no-build-isolation -e .` builds with the locked ones
        assert canonicalize_name(Requirement(spec).name) in locked


def test_the_test_lock_keeps_the_runtime_pins():
    main, test = pins(MAIN_LOCK), pins(TEST_LOCK)
    assert {name: pin[0] for name, pin in test.items() if name in main} == {name: pin[0] for name, pin in main.items()}
    assert {"pytest", "pytest-flask", "hypothesis"} <= set(test) - set(main)


def test_the_installed_packages_are_the_locked_ones():
    """The environment the suite runs in was installed from the test lock (`make test`)."""
    wrong = {}
    for name, (version, marker, _) in pins(TEST_LOCK).items():
        if marker and not Requirement(f"{name}; {marker}").marker.evaluate():
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"installed versions differ from requirements/test.txt (locked, installed): {wrong}"


def _make_dry_run(*what_if: str) -> str:
    args = ["make", "--dry-run", "--directory", str(ROOT)] + [f"--what-if={path}" for path in what_if] + ["install"]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("changed", ["requirements/test.txt", "pyproject.toml"])
def test_make_reinstalls_from_the_lock_when_it_or_pyproject_changes(changed):
    commands = _make_dry_run(changed)
    assert "rm -rf .venv" in commands  # nothing left over from the old lock
    assert "pip install --quiet --require-hashes -r requirements/test.txt" in commands
    assert "pip install --quiet --no-deps --no-build-isolation -e ." in commands


def test_the_image_installs_the_runtime_lock_with_hashes():
    steps = " ".join((ROOT / "Dockerfile").read_text().replace("\\\n", " ").split())
    assert "pip install --no-cache-dir --require-hashes -r requirements/main.txt" in steps
    assert "pip install --no-cache-dir --no-deps --no-build-isolation ." in steps
    assert "requirements/test.txt" not in steps  # no test tools in production
