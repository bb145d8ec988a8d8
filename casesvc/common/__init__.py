"""Pieces every domain package uses: column types, time, HTTP conventions."""
