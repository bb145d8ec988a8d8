"""Statements sent on the driver's cursor (`casesvc.common.direct`) give what `Session.execute`
gives, on SQLite and PostgreSQL alike, are seen by the engine's listeners, and fail as
SQLAlchemy's errors."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, event, literal_column, select, text, update
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from casesvc.agencies.models import Agency
from casesvc.audit.models import AuditInbox
from casesvc.audit.service import EVENT_KEYS
from casesvc.auth.models import User
from casesvc.common.connection import (
    close_for_read,
    commit_request,
    open_for_write,
    request_connection,
    rollback_request,
)
from casesvc.common.db import in_list
from casesvc.common.direct import DirectStatement, change_now, insert_now, send_last
from casesvc.extensions import db

INBOX = AuditInbox.__table__
INSERT = DirectStatement(INBOX.insert(), column_keys=EVENT_KEYS)
SELECT = DirectStatement(select(*(INBOX.c[name] for name in EVENT_KEYS)).where(INBOX.c.id == bindparam("id")))


def _event(**changes) -> dict:
    event = dict.fromkeys(EVENT_KEYS)
    event.update(
        id="00000000-0000-4000-8000-000000000001",
        at=datetime(2026, 12, 3, 9, 30, 15, 123456, tzinfo=UTC),
        action="tests.direct",
        outcome="allowed",
        ids=["a", "b"],
        status=200,
    )
    event.update(changes)
    return event


def test_an_inserted_row_reads_back_as_the_orm_and_the_engine_give_it(app):
    with app.app_context():
        INSERT.run(db.session.connection(), _event())
        db.session.commit()
        [direct] = SELECT.rows(db.session.connection(), {"id": _event()["id"]})
        engine_row = db.session.execute(SELECT.statement, {"id": _event()["id"]}).one()
        stored = db.session.scalars(select(AuditInbox)).one()
        assert direct == tuple(engine_row)
        assert direct[EVENT_KEYS.index("at")] == datetime(2026, 12, 3, 9, 30, 15, 123456, tzinfo=UTC)  # aware, UTC
        assert stored.ids == ["a", "b"] and stored.status == 200 and stored.actor is None
        db.session.remove()


def test_a_json_column_and_a_list_of_text_come_back_as_python_values(app):
    with app.app_context():
        db.session.add(Agency(code="direct-test", name="Test agency", kind="police", municipalities=["3001", "3002"]))
        db.session.commit()
        statement = DirectStatement(
            select(Agency.__table__.c.municipalities, Agency.__table__.c.code).where(
                Agency.__table__.c.code == bindparam("code")
            )
        )
        assert statement.rows(db.session.connection(), {"code": "direct-test"}) == [(["3001", "3002"], "direct-test")]
        assert statement.rows(db.session.connection(), {"code": "no-such-agency"}) == []
        db.session.remove()


def test_the_engine_listeners_see_each_statement(app):
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            SELECT.rows(db.session.connection(), {"id": "none"})
            INSERT.run(db.session.connection(), _event())
        finally:
            event.remove(engine, "before_cursor_execute", record)
            db.session.rollback()
            db.session.remove()
    assert len(seen) == 2
    assert seen[0].lstrip().upper().startswith("SELECT") and seen[1].lstrip().upper().startswith("INSERT")


def test_a_driver_error_is_sqlalchemys_and_names_no_value(app):
    with app.app_context():
        INSERT.run(db.session.connection(), _event())
        with pytest.raises(DBAPIError) as raised:  # the same id twice: the unique key refuses it
            INSERT.run(db.session.connection(), _event(action="secret-value"))
        assert "secret-value" not in str(raised.value)
        db.session.rollback()
        missing = DirectStatement(text("SELECT id FROM no_such_table WHERE id = :id"))
        with pytest.raises((ProgrammingError, OperationalError)):  # PostgreSQL's and SQLite's names for it
            missing.rows(db.session.connection(), {"id": "x"})
        db.session.rollback()
        db.session.remove()


@pytest.fixture
def cursors_seen(app):
    """The DBAPI cursor each statement of the app's engine runs on, in order."""
    seen: list = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(cursor)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_a_statement_run_again_on_its_connection_takes_the_same_cursor(app, cursors_seen):
    """The cursor (and the driver's adapters it holds) is kept per connection and statement; each
    run still answers its own parameters."""
    with app.app_context():
        conn = db.session.connection()
        INSERT.run(conn, _event())
        assert SELECT.rows(conn, {"id": _event()["id"]})[0][EVENT_KEYS.index("action")] == "tests.direct"
        assert SELECT.rows(conn, {"id": "00000000-0000-4000-8000-00000000ffff"}) == []
        INSERT.run(conn, _event(id="00000000-0000-4000-8000-000000000002", action="tests.again"))
        assert SELECT.rows(conn, {"id": "00000000-0000-4000-8000-000000000002"})[0][EVENT_KEYS.index("action")] == (
            "tests.again"
        )
        db.session.rollback()
        db.session.remove()
    inserts, selects = cursors_seen[0::3], [c for i, c in enumerate(cursors_seen) if i % 3]
    assert inserts[0] is inserts[1] and len({id(c) for c in selects}) == 1
    assert inserts[0] is not selects[0]


def test_a_statement_that_failed_leaves_its_cursor_closed_and_the_next_run_takes_a_new_one(app, cursors_seen):
    with app.app_context():
        conn = db.session.connection()
        INSERT.run(conn, _event())
        with pytest.raises(DBAPIError):  # the same id twice
            INSERT.run(conn, _event())
        db.session.rollback()
        INSERT.run(db.session.connection(), _event())
        db.session.rollback()
        db.session.remove()
    first, failed, after = cursors_seen
    assert first is failed and _closed(failed)
    assert after is not failed


def _closed(cursor) -> bool:
    """psycopg tells; sqlite3's cursor refuses a statement once closed."""
    if hasattr(cursor, "closed"):
        return bool(cursor.closed)
    try:
        cursor.execute("SELECT 1")
    except Exception:  # noqa: BLE001  (sqlite3.ProgrammingError: cannot operate on a closed cursor)
        return True
    return False


def test_a_list_expanded_at_execution_is_refused_when_compiled(app):
    statement = DirectStatement(select(INBOX.c.id).where(INBOX.c.id.in_(bindparam("ids", expanding=True))))
    with app.app_context(), pytest.raises(ValueError, match="expanded at execution"):
        statement.rows(db.session.connection(), {"ids": ["a"]})


def test_insert_now_writes_the_row_with_its_defaults_and_keeps_the_instance_in_the_session(app):
    from sqlalchemy import inspect

    with app.app_context():
        # pending, and the user refers to it: flushed before the user's row goes out
        db.session.add(Agency(code="direct-now", name="Test agency", kind="police", municipalities=["3001"]))
        user = User(username="direct.now", password_hash="x", role="police", agency_code="direct-now")
        insert_now(db.session, user)
        assert inspect(user).persistent and db.session.get(User, user.id) is user
        assert user.active is True and user.created_at is not None and len(user.id) == 36
        assert not db.session.new  # nothing left for a flush to insert again
        db.session.commit()
        user_id, created_at = user.id, user.created_at
        db.session.remove()
        stored = db.session.get(User, user_id)
        assert (stored.username, stored.agency_code, stored.active) == ("direct.now", "direct-now", True)
        assert stored.created_at == created_at
        db.session.remove()


def test_insert_now_refuses_a_value_only_the_database_can_make(app):
    with app.app_context():
        event = AuditInbox(**_event())  # `n` is the database's sequence
        with pytest.raises(ValueError, match=r"audit_inbox\.n: a value the database makes"):
            insert_now(db.session, event)
        db.session.remove()


def _user(username: str) -> User:  # of the police agency `world` makes
    return User(username=username, password_hash="x", role="police", agency_code="police")


# a held change on a table that shares column names (`id`) with the audit insert it joins
DEACTIVATE = DirectStatement(
    update(User.__table__).where(User.__table__.c.username == bindparam("change_username")).values(active=False)
)


@contextmanager
def _a_write(app):
    """A POST's request context with its own connection (`open_for_write`): the connection."""
    with app.test_request_context("/api/v1/users", method="POST"):
        open_for_write()
        try:
            yield request_connection()
        finally:
            close_for_read()


@pytest.mark.parametrize("twice", [False, True])
def test_a_change_held_with_a_row_goes_with_the_audit_insert_and_changes_only_its_own_columns(app, world, twice):
    """`change_now` in a write: on PostgreSQL held, with the row `insert_now` holds, for the
    audit event's statement (`send_last`), one statement in all; the same change asked twice
    begins the transaction instead. On SQLite each goes at once, in the session's transaction."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement.split()[0].upper())

    with app.app_context():
        db.session.add_all([_user("change.target"), _user("change.other")])
        db.session.commit()
        before = {u.username: u.id for u in db.session.scalars(select(User).where(User.username.like("change.%")))}
        db.session.remove()
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        with _a_write(app) as conn:
            change_now(db.session, DEACTIVATE, {"change_username": "change.target"}, conn)
            if twice:
                change_now(db.session, DEACTIVATE, {"change_username": "change.target"}, conn)
            insert_now(db.session, _user("change.new"), conn)
            send_last(conn, INSERT, _event())
            db.session.commit()
            postgresql = conn.dialect.name == "postgresql"
    finally:
        event.remove(engine, "before_cursor_execute", record)
    if postgresql and not twice:
        assert seen == ["WITH"]
    else:
        assert seen.count("UPDATE") == (2 if twice else 1) and "WITH" not in seen
    with app.app_context():
        users = {u.username: u for u in db.session.scalars(select(User).where(User.username.like("change.%")))}
        assert {name: u.id for name, u in users.items() if name in before} == before  # ids untouched
        assert {name: u.active for name, u in users.items()} == {
            "change.target": False,
            "change.other": True,
            "change.new": True,
        }
        assert db.session.scalars(select(AuditInbox.id)).all() == [_event()["id"]]
        db.session.remove()


def test_a_change_after_a_held_row_of_its_table_sees_that_row(app, world):
    """On one snapshot an UPDATE would not see a row inserted beside it: a change of a table a
    held row goes to begins the transaction, the row first."""
    with _a_write(app) as conn:
        insert_now(db.session, _user("change.fresh"), conn)
        change_now(db.session, DEACTIVATE, {"change_username": "change.fresh"}, conn)
        send_last(conn, INSERT, _event())
        commit_request()
    with app.app_context():
        assert db.session.scalars(select(User.active).where(User.username == "change.fresh")).all() == [False]
        db.session.remove()


def test_a_held_change_may_not_take_a_name_of_the_audit_inserts_parameters(app, world):
    clashing = DirectStatement(
        update(User.__table__).where(User.__table__.c.id == bindparam("id")).values(active=False)
    )
    with _a_write(app) as conn:
        change_now(db.session, clashing, {"id": "no-such-user"}, conn)
        if conn.dialect.name != "postgresql":
            pytest.skip("on SQLite a change goes at once, never in a combined statement")
        with pytest.raises(ValueError, match=r"\['id'\] are the last statement's own"):
            send_last(conn, INSERT, _event())
        db.session.rollback()


def test_a_literal_percent_sign_is_sent_as_it_is(app):
    statement = DirectStatement(select(literal_column("'5%'"), text("'a%%b'")))
    with app.app_context():
        assert statement.rows(db.session.connection(), {}) == [("5%", "a%%b")]
        db.session.remove()


@pytest.mark.parametrize("sent", [True, False])
def test_a_write_commits_what_it_holds_and_skips_the_commit_when_one_statement_took_it_all(app, world, sent):
    """`commit_request`: a row `insert_now` still holds goes out, in a transaction, with the
    commit (the session's before_commit); on PostgreSQL a write whose row went with its audit
    event in one statement (`send_last`) has nothing left, and the session commits nothing."""
    from sqlalchemy.orm import Session

    commits: list[Session] = []

    def record(session):
        commits.append(session)

    event.listen(Session, "after_commit", record)
    try:
        with _a_write(app) as conn:
            postgresql = conn.dialect.name == "postgresql"
            insert_now(db.session, _user("commit.held"), conn)
            if sent:
                send_last(conn, INSERT, _event())
            commit_request()
    finally:
        event.remove(Session, "after_commit", record)
    assert len(commits) == (0 if postgresql and sent else 1)
    with app.app_context():
        assert db.session.scalars(select(User.username).where(User.username == "commit.held")).all() == ["commit.held"]
        assert db.session.scalars(select(AuditInbox.id)).all() == ([_event()["id"]] if sent else [])
        db.session.remove()


@pytest.mark.parametrize("codes", [[], ["in-list-b"], ["in-list-a", "in-list-c", "in-list-x"]])
def test_in_list_matches_the_strings_of_one_parameter_in_sql_compiled_once(app, codes):
    """`in_list` (casesvc/common/db.py): membership in a list given as one bind parameter, the
    same on both databases as `IN` over the list, whatever its length, sent directly."""
    agencies = Agency.__table__.c
    statement = DirectStatement(select(agencies.code).where(in_list(agencies.code, "codes")).order_by(agencies.code))
    with app.app_context():
        for code in ("in-list-a", "in-list-b", "in-list-c"):
            db.session.add(Agency(code=code, name="Test agency", kind="police", municipalities=["3001"]))
        db.session.commit()
        conn = db.session.connection()
        assert [code for (code,) in statement.rows(conn, {"codes": codes})] == sorted(set(codes) - {"in-list-x"})
        expected = db.session.scalars(select(agencies.code).where(agencies.code.in_(codes)).order_by(agencies.code))
        assert [code for (code,) in statement.rows(conn, {"codes": codes})] == list(expected)
        db.session.remove()


def test_a_write_that_holds_its_row_makes_no_session_and_a_rollback_drops_the_row(app, world):
    """A row held on a write's connection needs no ORM session (none is made); `rollback_request`
    drops it, so the error's audit event that follows goes alone."""
    with _a_write(app) as conn:
        insert_now(db.session, _user("held.dropped"), conn)
        if conn.dialect.name == "postgresql":
            assert not db.session.registry.has()
        rollback_request()
        send_last(request_connection(), INSERT, _event())  # on SQLite the rollback ended the session's connection
        commit_request()
    with app.app_context():
        assert db.session.scalars(select(User.id).where(User.username == "held.dropped")).all() == []
        assert db.session.scalars(select(AuditInbox.id)).all() == [_event()["id"]]
        db.session.remove()


def test_a_row_held_without_a_session_commits_with_the_transaction_a_later_statement_begins(app, world):
    """A statement that may read a held row's table begins the transaction with the row first:
    the session made for it then owns that transaction, and the request's commit commits both."""
    users = User.__table__
    count = DirectStatement(select(users.c.username).where(users.c.username == bindparam("name")))
    with _a_write(app) as conn:
        insert_now(db.session, _user("held.read"), conn)
        assert count.rows(conn, {"name": "held.read"}) == [("held.read",)]
        send_last(conn, INSERT, _event())
        commit_request()
    with app.app_context():
        assert db.session.scalars(select(User.id).where(User.username == "held.read")).all() != []
        assert db.session.scalars(select(AuditInbox.id)).all() == [_event()["id"]]
        db.session.remove()
