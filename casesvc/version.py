"""The version of casesvc: one source, the installed package's metadata (`version` in
pyproject.toml). `casesvc --version`, `GET /healthz` and the OpenAPI document's `info.version`
all read it here."""

from __future__ import annotations

from importlib import metadata


def package_version() -> str:
    try:
        return metadata.version("casesvc")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


__version__ = package_version()
