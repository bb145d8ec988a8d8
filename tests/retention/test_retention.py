"""Retention (README "Operations"): closed cases past CASESVC_RETENTION_DAYS go, with their entries and
orphaned youths; legal holds, open cases and the audit log stay."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from casesvc.audit.models import AuditEvent, AuditInbox
from casesvc.audit.sealing import seal
from casesvc.cli import main
from casesvc.common.timeutil import rfc3339, utcnow
from casesvc.extensions import db
from casesvc.followups.models import Note


@pytest.fixture
def cli(app, monkeypatch):
    monkeypatch.setenv("CASESVC_ENV", "test")
    monkeypatch.setenv("CASESVC_DATABASE_URL", app.config["SQLALCHEMY_DATABASE_URI"])

    def run(*args):
        return main(["retention", "run", *args])

    return run


def _close(world, case, by="police"):
    for to, reason in (("active", None), ("completed", "Contract fulfilled")):
        resp = world[by].post(f"/api/v1/cases/{case['id']}/transitions", json={"to": to, "reason": reason})
        assert resp.status_code == 200, resp.json


def _later(days=1826):
    return rfc3339(utcnow() + timedelta(days=days))


def test_a_closed_case_past_retention_goes_with_its_entries_and_its_youth(world, app, cli, capsys):
    case = world.case()
    world["police"].post(f"/api/v1/cases/{case['id']}/notes", json={"body": "Note text"})
    _close(world, case)
    assert cli("--now", _later()) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cases"] == [case["id"]] and out["youths"] == [case["youth_id"]]
    assert world["police"].get(f"/api/v1/cases/{case['id']}").status_code == 404
    assert world["police"].get(f"/api/v1/youths/{case['youth_id']}").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Note)) == 0


def test_a_case_not_yet_past_retention_stays(world, cli, capsys):
    case = world.case()
    _close(world, case)
    assert cli("--now", _later(days=1824)) == 0
    assert json.loads(capsys.readouterr().out)["cases"] == []
    assert world["police"].get(f"/api/v1/cases/{case['id']}").status_code == 200


def test_legal_hold_and_open_cases_stay(world, cli, capsys):
    held = world.case()
    _close(world, held)
    etag = world["police"].get(f"/api/v1/cases/{held['id']}").headers["ETag"]
    resp = world["police"].patch(f"/api/v1/cases/{held['id']}", json={"legal_hold": True}, headers={"If-Match": etag})
    assert resp.status_code == 200 and resp.json["legal_hold"] is True
    still_open = world.case()
    assert cli("--now", _later()) == 0
    assert json.loads(capsys.readouterr().out)["cases"] == []
    assert world["police"].get(f"/api/v1/cases/{held['id']}").status_code == 200
    assert world["police"].get(f"/api/v1/cases/{still_open['id']}").status_code == 200


def test_a_youth_with_another_case_stays(world, cli, capsys):
    youth = world.youth()
    old = world.case(youth=youth)
    world.case(youth=youth)
    _close(world, old)
    assert cli("--now", _later()) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cases"] == [old["id"]] and out["youths"] == []
    assert world["police"].get(f"/api/v1/youths/{youth['id']}").status_code == 200


def test_dry_run_lists_and_deletes_nothing(world, cli, capsys):
    case = world.case()
    _close(world, case)
    assert cli("--now", _later(), "--dry-run") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dry_run"] is True and out["cases"] == [case["id"]]
    assert world["police"].get(f"/api/v1/cases/{case['id']}").status_code == 200


def test_the_audit_log_keeps_the_deleted_cases_events_and_records_the_run(world, app, cli):
    case = world.case()
    world["police"].get(f"/api/v1/cases/{case['id']}")
    _close(world, case)
    assert cli("--now", _later()) == 0
    with app.app_context():
        seal()
        assert (
            db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.case_id == case["id"])) >= 3
        )
        run = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "retention.run")).one()
        assert run.ids == [case["id"]]
        assert db.session.scalar(select(func.count()).select_from(AuditInbox)) == 0


def test_a_bad_now_is_a_one_line_error(cli, capsys):
    assert cli("--now", "yesterday") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--now" in err
