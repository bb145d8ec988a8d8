"""README "Operations" and "The audit log", the `casesvc audit` commands: export by time range in JSONL or CSV to a
file, signed checkpoints, verification of the database or of an export file — every expected
error one line on stderr and a non-zero exit."""

from __future__ import annotations

import csv
import json

import pytest
from sqlalchemy import func, select

from casesvc.audit.copy_text import EXPORT_FIELDS
from casesvc.audit.models import AuditEvent, AuditInbox
from casesvc.extensions import db
from tests.conftest import sealed

SIGNING_KEY = "test-signing-key-kept-outside-the-database"


@pytest.fixture
def cli(test_db_cli):
    return test_db_cli


def one_line_error(code, out, err) -> str:
    assert code not in (0, None), (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("casesvc: ")
    return lines[0]


@pytest.fixture
def trail(world, app) -> list[dict]:
    case = world.case()
    for _ in range(4):
        world["police"].get(f"/api/v1/cases/{case['id']}")
        world["west"].get(f"/api/v1/cases/{case['id']}")
    return sealed(app)


# --- export --------------------------------------------------------------------------------------


def test_export_from_to_as_csv_to_a_file(cli, trail, tmp_path):
    low, high = trail[2], trail[-2]
    path = tmp_path / "audit.csv"
    code, out, err = cli(
        "audit", "export", "--from", low["at"], "--to", high["at"], "--format", "csv", "--output", str(path)
    )
    assert code == 0, err
    assert out == ""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == EXPORT_FIELDS
        rows = list(reader)
    assert [int(r["seq"]) for r in rows] == list(range(low["seq"], high["seq"]))
    by_seq = {e["seq"]: e for e in trail}
    for row in rows:
        event = by_seq[int(row["seq"])]
        assert (row["id"], row["hash"], row["prev_hash"], row["outcome"], row["at"]) == (
            event["id"],
            event["hash"],
            event["prev_hash"],
            event["outcome"],
            event["at"],
        )


def test_export_defaults_to_jsonl_on_stdout_with_every_event(cli, trail):
    code, out, err = cli("audit", "export")
    assert code == 0, err
    exported = [json.loads(line) for line in out.splitlines()]
    assert exported == trail


def test_export_accepts_instants_with_an_offset(cli, trail):
    code, out, _ = cli("audit", "export", "--from", "2000-01-01T01:00:00+01:00")
    assert code == 0
    assert len(out.splitlines()) == len(trail)
    code, out, _ = cli("audit", "export", "--to", "2000-01-01T00:00:00Z")
    assert (code, out) == (0, "")


def test_an_export_is_recorded_in_the_audit_log(cli, app, trail, tmp_path):
    assert cli("audit", "export", "--output", str(tmp_path / "x.jsonl"))[0] == 0
    assert sealed(app)[-1]["action"] == "audit.export"


def test_an_exported_file_verifies(cli, trail, tmp_path):
    for fmt in ("jsonl", "csv"):
        path = tmp_path / f"audit.{fmt}"
        assert cli("audit", "export", "--format", fmt, "--output", str(path))[0] == 0
        code, out, err = cli("audit", "verify", "--file", str(path))
        assert code == 0, err
        assert json.loads(out)["checked"] >= len(trail)  # and the export events recorded since


@pytest.mark.parametrize("args", [("--from", "yesterday"), ("--to", "2027-01-05T08:00:00"), ("--format", "xml")])
def test_export_with_bad_options_is_a_one_line_error(cli, trail, args):
    line = one_line_error(*cli("audit", "export", *args))
    assert args[0] in line


# --- checkpoint -------------------------------------------------------------------------------------


def test_checkpoint_without_a_signing_key_is_a_one_line_error(cli, app, trail):
    line = one_line_error(*cli("audit", "checkpoint"))
    assert "CASESVC_AUDIT_SIGNING_KEY" in line


def test_checkpoint_prints_the_signed_head(cli, app, trail, monkeypatch):
    monkeypatch.setenv("CASESVC_AUDIT_SIGNING_KEY", SIGNING_KEY)
    code, out, err = cli("audit", "checkpoint")
    assert code == 0, err
    saved = json.loads(out)
    assert (saved["seq"], saved["hash"]) == (trail[-1]["seq"], trail[-1]["hash"])
    assert len(saved["signature"]) == 64 and saved["algorithm"] == "HMAC-SHA256"
    assert SIGNING_KEY not in out


def test_checkpoint_seals_pending_events_first(cli, app, world, trail, monkeypatch):
    world["police"].get("/api/v1/cases")  # recorded, not yet sealed
    monkeypatch.setenv("CASESVC_AUDIT_SIGNING_KEY", SIGNING_KEY)
    _code, out, _ = cli("audit", "checkpoint")
    assert json.loads(out)["seq"] == trail[-1]["seq"] + 1


def test_verify_with_a_checkpoint_but_no_key_is_a_one_line_error(cli, trail, tmp_path, monkeypatch):
    monkeypatch.setenv("CASESVC_AUDIT_SIGNING_KEY", SIGNING_KEY)
    path = tmp_path / "cp.json"
    assert cli("audit", "checkpoint", "--output", str(path))[0] == 0
    monkeypatch.delenv("CASESVC_AUDIT_SIGNING_KEY")
    line = one_line_error(*cli("audit", "verify", "--checkpoint", str(path)))
    assert "CASESVC_AUDIT_SIGNING_KEY" in line


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"seq": "x"}'])
def test_verify_with_a_checkpoint_that_is_not_one_is_a_one_line_error(cli, trail, tmp_path, monkeypatch, content):
    monkeypatch.setenv("CASESVC_AUDIT_SIGNING_KEY", SIGNING_KEY)
    path = tmp_path / "cp.json"
    path.write_text(content)
    one_line_error(*cli("audit", "verify", "--checkpoint", str(path)))


def test_an_export_file_verifies_against_a_checkpoint(cli, trail, tmp_path, monkeypatch):
    monkeypatch.setenv("CASESVC_AUDIT_SIGNING_KEY", SIGNING_KEY)
    checkpoint, export = tmp_path / "cp.json", tmp_path / "audit.jsonl"
    assert cli("audit", "checkpoint", "--output", str(checkpoint))[0] == 0
    assert cli("audit", "export", "--output", str(export))[0] == 0
    code, _out, err = cli("audit", "verify", "--file", str(export), "--checkpoint", str(checkpoint))
    assert code == 0, err
    # the same export, cut short before the checkpoint's seq, no longer reaches it
    lines = export.read_text().splitlines(keepends=True)
    short = tmp_path / "short.jsonl"
    short.write_text("".join(lines[: len(trail) - 2]))
    code, _out, err = cli("audit", "verify", "--file", str(short), "--checkpoint", str(checkpoint))
    assert code == 1 and len(err.strip().splitlines()) == 1


# --- verify --file on what is not an export ----------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        "just some text\n",
        "just some text\nand another line\n",
        '{"hello": "world"}\n',
        '{"seq": 1,\n "hash": "x"}\n',
        "a,b,c\n1,2,3\n",
        ",".join(EXPORT_FIELDS) + "\nnot,enough\n",
    ],
)
def test_verify_file_on_a_non_export_is_a_one_line_error(cli, tmp_path, content):
    path = tmp_path / "notes.txt"
    path.write_text(content)
    line = one_line_error(*cli("audit", "verify", "--file", str(path)))
    assert "not an audit export" in line or "no seq" in line


def test_verify_file_on_a_binary_file_is_a_one_line_error(cli, tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 4)
    line = one_line_error(*cli("audit", "verify", "--file", str(path)))
    assert "not an audit export" in line


def test_verify_file_that_does_not_exist_is_a_one_line_error(cli, tmp_path):
    one_line_error(*cli("audit", "verify", "--file", str(tmp_path / "missing.jsonl")))


def test_verify_of_the_database_is_recorded(cli, app, trail):
    assert cli("audit", "verify")[0] == 0
    assert sealed(app)[-1]["action"] == "audit.verify"


def test_seal_moves_every_recorded_event_into_the_chain(cli, app, world):
    world.case()
    with app.app_context():
        pending = db.session.scalar(select(func.count()).select_from(AuditInbox))
        db.session.remove()
    assert pending >= 2
    code, out, err = cli("audit", "seal")
    assert code == 0, err
    assert f"sealed {pending}" in out
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditInbox)) == 0
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == pending
        db.session.remove()
