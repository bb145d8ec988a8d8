"""Where the migrations live: inside the installed package, so every command finds them."""

from pathlib import Path


def migrations_directory() -> str:
    return str(Path(__file__).parent / "migrations")
