"""README "The audit log": the audit table is append-only in the database itself,
and someone who lifts the triggers (as anyone with database rights can) and alters, deletes,
inserts or reorders rows is found by `GET /api/v1/audit/verify` and `casesvc audit verify`,
at the first seq that no longer holds; a full rewrite is found against a signed checkpoint."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from casesvc.audit import chain, sealing, service
from casesvc.audit.models import AuditEvent, AuditInbox
from casesvc.extensions import db
from tests.conftest import audit_triggers_off, sealed

EVENTS = AuditEvent.__table__
SIGNING_KEY = "test-signing-key-kept-outside-the-database"


# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def trail(world, app) -> list[dict]:
    """A sealed chain of a few dozen events, among them denied ones."""
    case = world.case()
    police = world["police"]
    for _ in range(3):
        police.get(f"/api/v1/cases/{case['id']}")
        world["west"].get(f"/api/v1/cases/{case['id']}")  # denied: 404
        police.get("/api/v1/cases")
    return sealed(app)


def raw_rows(app, *seqs) -> list[dict]:
    with app.app_context():
        with db.engine.connect() as conn:
            return [
                dict(r)
                for r in conn.execute(select(EVENTS).where(EVENTS.c.seq.in_(seqs)).order_by(EVENTS.c.seq)).mappings()
            ]


def tamper(app, *statements):
    """Run statements with the append-only triggers lifted, as a database administrator could."""
    with app.app_context():
        with db.engine.begin() as conn, audit_triggers_off(conn):
            for stmt in statements:
                conn.execute(stmt)


def verify_api(world) -> dict:
    resp = world["auditor"].get("/api/v1/audit/verify")
    assert resp.status_code == 200, resp.json
    return resp.json


@pytest.fixture
def cli(test_db_cli):
    return test_db_cli


def assert_broken_at(world, cli, seq: int):
    verdict = verify_api(world)
    assert (verdict["valid"], verdict["first_invalid_seq"]) == (False, seq), verdict
    assert verdict["checked"] == seq - 1
    code, out, err = cli("audit", "verify")
    assert code == 1, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"seq {seq}" in lines[0], err
    assert json.loads(out)["first_invalid_seq"] == seq


def a_denied(trail) -> dict:
    return next(e for e in trail[2:-2] if e["outcome"] == "denied")


# --- append-only in the database ------------------------------------------------------------------


def _refused(app, sql: str):
    with app.app_context():
        with pytest.raises(DBAPIError) as caught:
            with db.engine.begin() as conn:
                conn.execute(text(sql))
        assert "append-only" in str(caught.value.orig)


def test_an_update_on_the_audit_table_fails_in_the_database(app, trail):
    before = raw_rows(app, 1, 2)
    _refused(app, "UPDATE audit_events SET outcome = 'allowed' WHERE seq = 2")
    _refused(app, "UPDATE audit_events SET actor = NULL")
    assert raw_rows(app, 1, 2) == before


def test_a_delete_on_the_audit_table_fails_in_the_database(app, trail):
    _refused(app, "DELETE FROM audit_events WHERE seq = 1")
    _refused(app, "DELETE FROM audit_events")
    assert len(sealed(app)) == len(trail)


def test_truncate_on_the_audit_table_fails_in_postgresql(app, trail):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("TRUNCATE is PostgreSQL's (SQLite has none)")
    _refused(app, "TRUNCATE audit_events")
    assert len(sealed(app)) == len(trail)


def test_the_orm_cannot_change_a_sealed_event_either(app, trail):
    with app.app_context():
        event = db.session.get(AuditEvent, 1)
        event.outcome = "denied" if event.outcome == "allowed" else "allowed"
        with pytest.raises(DBAPIError):
            db.session.commit()
        db.session.rollback()
        db.session.remove()
    assert sealed(app)[0] == trail[0]


def test_appending_still_works_and_the_inbox_is_emptied_by_sealing(world, app, trail):
    world["police"].get("/api/v1/cases")
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(AuditInbox)) == 1
        db.session.remove()
    after = sealed(app)
    assert len(after) == len(trail) + 1 and after[:-1] == trail
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(AuditInbox)) == 0
        db.session.remove()


# --- tampering is found -----------------------------------------------------------------------------


def test_an_intact_chain_verifies(world, cli, trail):
    verdict = verify_api(world)
    assert (verdict["valid"], verdict["first_invalid_seq"]) == (True, None)
    assert verdict["checked"] >= len(trail)
    code, out, err = cli("audit", "verify")
    assert code == 0, err
    assert json.loads(out)["valid"] is True


@pytest.mark.parametrize(
    "column,change",
    [
        ("outcome", lambda e: "allowed"),
        ("actor", lambda e: "someone-else"),
        ("actor_agency", lambda e: None),
        ("case_id", lambda e: None),
        ("status", lambda e: 200),
        ("ids", lambda e: ["forged-id"]),
        ("at", lambda e: None),  # replaced below: one microsecond later
        ("hash", lambda e: "f" * 64),
        ("prev_hash", lambda e: "0" * 64),
    ],
)
def test_an_altered_row_is_found_at_its_seq(world, app, cli, trail, column, change):
    target = a_denied(trail)
    seq = target["seq"]
    value = raw_rows(app, seq)[0]["at"] + timedelta(microseconds=1) if column == "at" else change(target)
    tamper(app, update(EVENTS).where(EVENTS.c.seq == seq).values({column: value}))
    assert raw_rows(app, seq)[0][column] == value
    assert_broken_at(world, cli, seq)


def test_a_denied_read_rewritten_as_allowed_is_found(world, app, cli, trail):
    target = a_denied(trail)
    tamper(app, update(EVENTS).where(EVENTS.c.seq == target["seq"]).values(outcome="allowed", status=200))
    assert_broken_at(world, cli, target["seq"])


def test_a_deleted_row_is_found_at_its_seq(world, app, cli, trail):
    seq = a_denied(trail)["seq"]
    tamper(app, delete(EVENTS).where(EVENTS.c.seq == seq))
    assert_broken_at(world, cli, seq)


def test_a_deleted_row_is_found_when_later_seqs_are_closed_up(world, app, cli, trail):
    seq = a_denied(trail)["seq"]
    tamper(
        app,
        delete(EVENTS).where(EVENTS.c.seq == seq),
        # two steps, so that no two rows share a seq on the way
        update(EVENTS).where(EVENTS.c.seq > seq).values(seq=-EVENTS.c.seq),
        update(EVENTS).where(EVENTS.c.seq < 0).values(seq=-EVENTS.c.seq - 1),
    )
    assert_broken_at(world, cli, seq)


def _instant(view_at: str) -> datetime:
    return datetime.strptime(view_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _forged(trail, seq: int) -> dict:
    """A plausible row, correctly hashed and linked to the event before `seq`."""
    fields = {**trail[seq - 1], "id": "00000000-0000-4000-8000-00000000f0f0", "actor": "forger", "outcome": "allowed"}
    linked = chain.link(fields, seq, trail[seq - 2]["hash"])
    return {**linked, "at": _instant(linked["at"])}


def test_a_forged_row_inserted_with_later_seqs_shifted_is_found(world, app, cli, trail):
    """The forged row itself links correctly to its predecessor; the row after it does not."""
    seq = a_denied(trail)["seq"]
    tamper(
        app,
        update(EVENTS).where(EVENTS.c.seq >= seq).values(seq=-EVENTS.c.seq),
        update(EVENTS).where(EVENTS.c.seq < 0).values(seq=-EVENTS.c.seq + 1),
        insert(EVENTS).values(_forged(trail, seq)),
    )
    assert_broken_at(world, cli, seq + 1)


def test_a_forged_row_inserted_in_place_of_a_deleted_one_is_found(world, app, cli, trail):
    seq = a_denied(trail)["seq"]
    tamper(app, delete(EVENTS).where(EVENTS.c.seq == seq), insert(EVENTS).values(_forged(trail, seq)))
    assert_broken_at(world, cli, seq + 1)


def test_a_forged_row_appended_past_the_head_without_its_link_is_found(world, app, cli, trail):
    last = trail[-1]
    forged = _forged(trail, last["seq"])
    forged.update(seq=last["seq"] + 1, prev_hash="a" * 64)
    forged["hash"] = chain.event_hash({**forged, "at": last["at"]})
    tamper(app, insert(EVENTS).values(forged))
    assert_broken_at(world, cli, last["seq"] + 1)


def test_two_rows_swapped_are_found_at_the_first_of_them(world, app, cli, trail):
    first = a_denied(trail)["seq"]
    second = first + 2
    a, b = raw_rows(app, first, second)
    tamper(
        app,
        delete(EVENTS).where(EVENTS.c.seq.in_([first, second])),
        insert(EVENTS).values({**b, "seq": first}),
        insert(EVENTS).values({**a, "seq": second}),
    )
    assert raw_rows(app, first)[0]["id"] == b["id"]
    assert_broken_at(world, cli, first)


def test_two_rows_swapped_with_their_seqs_are_found(world, app, cli, trail):
    """Reordering by exchanging seq numbers only (each row keeps its own content and hash)."""
    first = a_denied(trail)["seq"]
    second = first + 1
    tamper(
        app,
        update(EVENTS).where(EVENTS.c.seq == first).values(seq=-1),
        update(EVENTS).where(EVENTS.c.seq == second).values(seq=first),
        update(EVENTS).where(EVENTS.c.seq == -1).values(seq=second),
    )
    assert_broken_at(world, cli, first)


# --- rewrites and signed checkpoints ----------------------------------------------------------------


def rewrite_from(app, seq: int, **changes):
    """What someone with database rights and the source code can do: change a row and recompute
    every later hash, so that the chain is consistent again."""
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.seq >= seq).order_by(AuditEvent.seq)).all()
        views = [sealing.event_dict(row) for row in rows]
        db.session.remove()
        prev = views[0]["prev_hash"]
        statements = []
        for i, view in enumerate(views):
            relinked = chain.link({**view, **(changes if i == 0 else {})}, view["seq"], prev)
            prev = relinked["hash"]
            statements.append(
                update(EVENTS)
                .where(EVENTS.c.seq == view["seq"])
                .values(**(changes if i == 0 else {}), prev_hash=relinked["prev_hash"], hash=relinked["hash"])
            )
    tamper(app, *statements)


def checkpoint(cli, tmp_path, monkeypatch, name="checkpoint.json"):
    monkeypatch.setenv("CASESVC_AUDIT_SIGNING_KEY", SIGNING_KEY)
    path = tmp_path / name
    code, _out, err = cli("audit", "checkpoint", "--output", str(path))
    assert code == 0, err
    saved = json.loads(path.read_text())
    assert {"seq", "hash", "signature"} <= set(saved)
    return path, saved


def test_a_checkpoint_is_the_signed_head(world, app, cli, trail, tmp_path, monkeypatch):
    path, saved = checkpoint(cli, tmp_path, monkeypatch)
    head = world["auditor"].get("/api/v1/audit/head").json
    assert saved["seq"] <= head["seq"]
    assert saved["hash"] == next(e for e in sealed(app) if e["seq"] == saved["seq"])["hash"]
    monkeypatch.setenv("CASESVC_AUDIT_SIGNING_KEY", SIGNING_KEY)
    world["police"].get("/api/v1/cases")  # the chain grows on after the checkpoint
    code, out, err = cli("audit", "verify", "--checkpoint", str(path))
    assert code == 0, err
    assert json.loads(out)["checkpoint_problem"] is None


def test_a_rewritten_chain_passes_plain_verify_but_not_against_a_checkpoint(
    world, app, cli, trail, tmp_path, monkeypatch
):
    path, _saved = checkpoint(cli, tmp_path, monkeypatch)
    target = a_denied(trail)
    rewrite_from(app, target["seq"], outcome="allowed")
    assert raw_rows(app, target["seq"])[0]["outcome"] == "allowed"

    monkeypatch.delenv("CASESVC_AUDIT_SIGNING_KEY")
    assert verify_api(world)["valid"] is True  # consistent again: the chain alone cannot tell
    code, _, err = cli("audit", "verify")
    assert code == 0, err

    monkeypatch.setenv("CASESVC_AUDIT_SIGNING_KEY", SIGNING_KEY)
    code, out, err = cli("audit", "verify", "--checkpoint", str(path))
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "rewritten" in err
    assert json.loads(out)["checkpoint_problem"]


def test_a_truncated_chain_is_found_against_a_checkpoint(world, app, cli, trail, tmp_path, monkeypatch):
    path, saved = checkpoint(cli, tmp_path, monkeypatch)
    tamper(app, delete(EVENTS).where(EVENTS.c.seq >= saved["seq"] - 3))
    monkeypatch.delenv("CASESVC_AUDIT_SIGNING_KEY")
    assert cli("audit", "verify")[0] == 0  # a shorter chain is consistent...
    monkeypatch.setenv("CASESVC_AUDIT_SIGNING_KEY", SIGNING_KEY)
    code, _out, err = cli("audit", "verify", "--checkpoint", str(path))
    assert code == 1 and f"seq {saved['seq']}" in err  # ...but no longer reaches the signed head


def test_a_checkpoint_with_a_wrong_signature_is_refused(world, app, cli, trail, tmp_path, monkeypatch):
    path, saved = checkpoint(cli, tmp_path, monkeypatch)
    path.write_text(json.dumps({**saved, "signature": "0" * 64}))
    code, _out, err = cli("audit", "verify", "--checkpoint", str(path))
    assert code == 1 and "signature" in err and len(err.strip().splitlines()) == 1


def test_a_checkpoint_moved_to_a_rewritten_head_is_refused(world, app, cli, trail, tmp_path, monkeypatch):
    """The rewriter edits the checkpoint file to match the new chain: without the key the
    signature no longer fits."""
    path, saved = checkpoint(cli, tmp_path, monkeypatch)
    rewrite_from(app, a_denied(trail)["seq"], outcome="allowed")
    new_hash = raw_rows(app, saved["seq"])[0]["hash"]
    assert new_hash != saved["hash"]
    path.write_text(json.dumps({**saved, "hash": new_hash}))
    code, _out, err = cli("audit", "verify", "--checkpoint", str(path))
    assert code == 1 and "signature" in err


def test_a_checkpoint_signed_with_another_key_is_refused(world, app, cli, trail, tmp_path, monkeypatch):
    path, _ = checkpoint(cli, tmp_path, monkeypatch)
    monkeypatch.setenv("CASESVC_AUDIT_SIGNING_KEY", "another key entirely, also outside the db")
    code, _out, err = cli("audit", "verify", "--checkpoint", str(path))
    assert code == 1 and "signature" in err


@pytest.mark.parametrize("seq", [0, -1])
def test_a_forged_row_below_the_first_seq_is_found(world, app, cli, trail, seq):
    """A row slipped in before the chain's start would show in searches and access logs."""
    forged = _forged(trail, 2)
    forged.update(seq=seq, prev_hash=chain.GENESIS)
    forged["hash"] = chain.event_hash({**forged, "at": trail[1]["at"]})
    tamper(app, insert(EVENTS).values(forged))
    listed = world["auditor"].get("/api/v1/audit/events", query_string={"actor": "forger"}).json["items"]
    assert [e["seq"] for e in listed] == [seq]  # visible to readers of the log...
    assert_broken_at(world, cli, 1)  # ...so verification must not skip it


# --- every value is read back exactly: the awkward values of tests/audit/test_copy_text.py, ------
# --- recorded, sealed, verified and exported through the real database ---------------------------

from casesvc.audit import verify as audit_verify  # noqa: E402
from tests.audit.test_copy_text import AWKWARD, IDS_LAYOUTS  # noqa: E402


def _record_awkward(app) -> int:
    with app.app_context():
        for i, text in enumerate(AWKWARD):
            service.record(
                "test.awkward",
                "allowed",
                actor=text,
                actor_agency=text[:32],
                request_id=text,
                resource_id=text,
                ip=text[:45],
                ids=[text, "plain-id"],
                status=i,
            )
        service.record("test.awkward", "denied", ids=[])
        count = sealing.seal()
        db.session.remove()
    return count


def _insert_ids_layouts(app, trail):
    """Rows whose `ids` JSON another writer stored in its own layout, correctly chained."""
    prev, seq = trail[-1]["hash"], trail[-1]["seq"]
    with app.app_context():
        with db.engine.begin() as conn:
            cast = "CAST(:ids AS json)" if conn.dialect.name == "postgresql" else ":ids"
            for layout in IDS_LAYOUTS:
                seq += 1
                fields = {**trail[0], "id": f"00000000-0000-4000-8000-{seq:012d}", "ids": json.loads(layout)}
                linked = chain.link(fields, seq, prev)
                prev = linked["hash"]
                row = {**linked, "at": _instant(linked["at"]), "ids": layout}
                columns = list(row)
                conn.execute(
                    text(
                        f"INSERT INTO audit_events ({', '.join(columns)}) VALUES "  # noqa: S608 (test's own)
                        f"({', '.join(cast if c == 'ids' else ':' + c for c in columns)})"
                    ),
                    row,
                )


def test_awkward_values_verify_and_export_exactly(world, app, cli, trail):
    recorded = _record_awkward(app)
    assert recorded == len(AWKWARD) + 1
    _insert_ids_layouts(app, sealed(app))
    events = sealed(app)
    assert any(e["actor"] == 'say "hi"' for e in events) and any(e["ids"] == [] for e in events)

    verdict = verify_api(world)
    assert (verdict["valid"], verdict["checked"]) == (True, len(events)), verdict
    assert cli("audit", "verify")[0] == 0

    exported = world["auditor"].get("/api/v1/audit/export").get_data(as_text=True)
    lines = exported.split("\n")  # not splitlines(): JSON keeps U+2028 and friends as they are
    # one line per event, whichever path the row took, with exactly its values
    assert [json.loads(line) for line in lines[: len(events)]] == events
    csv_export = world["auditor"].get("/api/v1/audit/export", query_string={"format": "csv"}).get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(csv_export, newline="")))
    for row, event in zip(rows, events, strict=False):  # the exports' own events come after
        assert (row["actor"] or None, row["request_id"] or None) == (
            event["actor"] or None,
            event["request_id"] or None,
        )
        assert (json.loads(row["ids"]) if row["ids"] else None) == event["ids"]

    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            read = list(audit_verify._pg_verification_events())
            assert [r["canonical"] for r in read[: len(events)]] == [chain.canonical(e) for e in events]
        db.session.remove()


@pytest.mark.parametrize("index", [0, 1, 6, 8, 11])
def test_tampering_with_an_awkward_value_is_found(world, app, cli, trail, index):
    _record_awkward(app)
    events = sealed(app)
    target = next(e for e in events if e["action"] == "test.awkward" and e["actor"] == AWKWARD[index])
    tamper(app, update(EVENTS).where(EVENTS.c.seq == target["seq"]).values(actor=AWKWARD[index] + " "))
    assert_broken_at(world, cli, target["seq"])


@pytest.mark.parametrize("layout", [{"separators": (",", ":")}, {"indent": 2}, {"separators": (" , ", ":")}])
def test_a_reformatted_ids_value_still_verifies_but_a_changed_one_does_not(world, app, cli, trail, layout):
    """The chain covers values, not their layout in the column: a reformatted list is the same
    list; a different list is not."""
    world.case()
    world["police"].get("/api/v1/cases")
    target = next(e for e in sealed(app) if e["ids"] and len(e["ids"]) == 2)
    with app.app_context():
        cast = "CAST(:ids AS json)" if db.engine.dialect.name == "postgresql" else ":ids"
    set_ids = f"UPDATE audit_events SET ids = {cast} WHERE seq = :seq"  # noqa: S608 (a fixed cast)
    tamper(app, text(set_ids).bindparams(ids=json.dumps(target["ids"], **layout), seq=target["seq"]))
    assert verify_api(world)["valid"] is True
    tamper(app, text(set_ids).bindparams(ids=json.dumps(target["ids"][:1]), seq=target["seq"]))
    assert_broken_at(world, cli, target["seq"])
