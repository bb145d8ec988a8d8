"""Sealing the audit inbox into the hash chain: `seal()` moves inbox rows into `audit_events` in
batches, one sealer at a time, and the sealing process of `casesvc serve` (`_Sealer`) runs it
beside the workers. What it seals is recorded by `casesvc.audit.service`."""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC

from flask import Flask
from sqlalchemy import delete, select, text

from casesvc.audit import chain
from casesvc.audit.models import AuditEvent, AuditInbox
from casesvc.extensions import db

log = logging.getLogger(__name__)

SEAL_LOCK_KEY = 0x6361736573766331  # pg advisory lock id ("casesvc1")
SEAL_BATCH = 5000
# how much lower the sealing process runs than the workers (os.nice: 0 to 19)
SEALER_NICENESS = 10


def _head(conn) -> tuple[int, str]:
    row = conn.execute(select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).first()
    return (row.seq, row.hash) if row else (0, chain.GENESIS)


_INBOX_COLUMNS = [c for c in AuditInbox.__table__.columns if c.name != "n"]
_INBOX_NAMES = tuple(c.name for c in _INBOX_COLUMNS)
_EVENTS_INSERT = AuditEvent.__table__.insert()  # Core executemany: batched VALUES, no ORM bulk path
_INBOX_PROBE = select(AuditInbox.n).limit(1)


def seal(batch: int = SEAL_BATCH, until_empty: bool = True, wait: bool = False) -> int:
    """Move inbox rows into the chain. Returns how many were sealed. Safe to run anywhere and
    concurrently: on PostgreSQL one sealer works at a time (a try-lock, others return at once;
    with `wait`, as a reader of the chain asks, it waits for the one at work to commit, within
    the statement timeout, so that what that one was sealing is in the chain it reads); on any
    database the primary key on `seq` refuses a second sealer's fork of the chain."""
    total = 0
    while True:
        sealed = _seal_batch(batch, wait)
        total += sealed
        if sealed < batch or not until_empty:
            return total


_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(:k)")
_LOCK = text("SELECT true FROM pg_advisory_xact_lock(:k)")  # true once it is held


def _seal_batch(batch: int, wait: bool = False) -> int:
    from sqlalchemy.exc import IntegrityError, OperationalError

    engine = db.engine
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                if not conn.scalar(_LOCK if wait else _TRY_LOCK, {"k": SEAL_LOCK_KEY}):
                    return 0
            elif conn.dialect.name == "sqlite":
                # One writer at a time: the sealer takes the write lock before it reads the chain's
                # head, so a second sealer (another worker process) waits for the first to commit
                # (busy_timeout), then reads the new head and what the first left in the inbox.
                # Neither forks the chain. The probe, outside the lock (pysqlite begins nothing for
                # a read), keeps a sealer with nothing to do from taking the lock every round.
                if conn.scalar(_INBOX_PROBE) is None:
                    return 0
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            rows = conn.execute(select(AuditInbox.n, *_INBOX_COLUMNS).order_by(AuditInbox.n).limit(batch)).all()
            if not rows:
                return 0
            seq, prev = _head(conn)
            sealed = []
            for row in rows:
                seq += 1
                fields = dict(zip(_INBOX_NAMES, row[1:], strict=True))  # row = (n, *_INBOX_COLUMNS)
                event = chain.link(_chain_view(fields), seq, prev)
                prev = event["hash"]
                sealed.append({**fields, "seq": seq, "prev_hash": event["prev_hash"], "hash": event["hash"]})
            _move(conn, rows, sealed)
            return len(rows)
    except (IntegrityError, OperationalError) as exc:
        # PostgreSQL's lock and SQLite's write lock keep sealers from racing; what is left is a
        # database busy beyond its timeout, unreachable, or not migrated yet (a command run
        # first): the events wait in the inbox and the next round seals them
        log.debug("audit seal skipped: %s", exc.__class__.__name__)
        return 0


# PostgreSQL moves a batch in one statement: the inbox rows are deleted and inserted into the
# chain as they are stored, with the links worked out here (arrays of one value per row), instead
# of every field going back to the database as a parameter of its own.
_NAMES = ", ".join(_INBOX_NAMES)
_MOVE = text(
    f"WITH moved AS (DELETE FROM audit_inbox WHERE n = ANY(CAST(:n AS BIGINT[])) RETURNING n, {_NAMES}) "  # noqa: S608 (column names)
    f"INSERT INTO audit_events ({_NAMES}, seq, prev_hash, hash) "
    f"SELECT {', '.join('moved.' + name for name in _INBOX_NAMES)}, link.seq, link.prev_hash, link.hash "
    "FROM moved JOIN unnest(CAST(:n AS BIGINT[]), CAST(:seq AS BIGINT[]), CAST(:prev_hash AS TEXT[]), "
    "CAST(:hash AS TEXT[])) AS link (n, seq, prev_hash, hash) ON link.n = moved.n"
)


def _move(conn, rows, sealed: list[dict]) -> None:
    """The inbox's `rows` out of the inbox and, as `sealed`, into the chain, in the caller's
    transaction."""
    numbers = [row.n for row in rows]
    if conn.dialect.name == "postgresql":
        moved = conn.execute(
            _MOVE,
            {
                "n": numbers,
                "seq": [event["seq"] for event in sealed],
                "prev_hash": [event["prev_hash"] for event in sealed],
                "hash": [event["hash"] for event in sealed],
            },
        )
        if moved.rowcount != len(numbers):  # every row read is moved, or the batch is not sealed
            raise RuntimeError(f"audit seal moved {moved.rowcount} of {len(numbers)} events")
        return
    conn.execute(_EVENTS_INSERT, sealed)
    for start in range(0, len(numbers), 1000):
        conn.execute(delete(AuditInbox).where(AuditInbox.n.in_(numbers[start : start + 1000])))


def _chain_view(fields: dict) -> dict:
    """The event as the chain sees it: instants as RFC 3339 with microseconds."""
    view = dict(fields)
    view["at"] = chain_time(fields["at"])
    return view


def chain_time(at) -> str | None:
    """Instants in the chain: UTC, microseconds, `Z` — exact on SQLite and PostgreSQL."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if at else None


def event_dict(row) -> dict:
    """A sealed event as the API, the export and the verifier see it."""
    fields = {name: getattr(row, name) for name in chain.EVENT_FIELDS}
    fields["at"] = chain_time(row.at)
    fields["hash"] = row.hash
    return fields


class _Sealer:
    """One background thread per process seals the inbox every `interval` seconds: the unsealed
    tail stays short without a separate process, and no request waits for the chain.

    Under `casesvc serve` a process of its own seals instead (`start_process`, from gunicorn's
    master): a batch of a few hundred events is some milliseconds of Python, which in a worker
    holds up every request thread waiting for the same GIL (a read's p99 was four times its
    median, bench/README.md). The workers' threads then seal every `FALLBACK_FACTOR` intervals
    only, so events are still sealed if that process is gone; sealers never fork the chain,
    however many run (`seal`)."""

    FALLBACK_FACTOR = 20

    def __init__(self, app: Flask, interval: float):
        self.app = app
        self.interval = interval
        self.pid: int | None = None
        self.lock = threading.Lock()

    def ensure_running(self) -> None:
        pid = os.getpid()
        if self.pid == pid:  # started in this process (a forked worker starts its own)
            return
        with self.lock:
            if self.pid != pid:
                self.pid = pid
                threading.Thread(target=self._run, name="casesvc-audit-sealer", daemon=True).start()

    def _run(self, alive=lambda: True) -> None:
        while alive():
            time.sleep(self.interval)
            with self.app.app_context():
                try:
                    seal()
                except Exception:  # the next round tries again; the events wait safely in the inbox
                    log.exception("audit seal failed")
                finally:
                    db.session.remove()

    def start_process(self) -> int:
        """Fork the sealing process (from gunicorn's master, before the workers, as gunicorn
        forks them); the workers then seal as a fallback only. Returns its pid: the master ends
        it on exit (`stop_process`), and it ends itself when the master is gone."""
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the sealing process: it never returns into the master's code
            code = 0
            try:
                self._run_process(parent)
            except BaseException:  # whatever ends it, it ends here, not in gunicorn
                log.exception("audit sealer process failed")
                code = 1
            finally:
                os._exit(code)
        self.interval *= self.FALLBACK_FACTOR  # the workers, forked after this, inherit it
        return pid

    def _run_process(self, parent: int) -> None:
        import signal

        # the master's signal handlers are not this process's: SIGTERM and SIGINT end it
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGCHLD):
            signal.signal(number, signal.SIG_DFL)
        for number in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTTIN, signal.SIGTTOU, signal.SIGWINCH):
            signal.signal(number, signal.SIG_IGN)
        with self.app.app_context():
            db.engine.dispose(close=False)  # the master's pooled connections stay the master's
        # background work: a batch is a burst of Python that, at the workers' priority, takes a core
        # from the requests in flight (their tail latency); niced, it runs when they leave a core
        # free, and under a load that leaves none it still gets a share, so the inbox is sealed
        os.nice(SEALER_NICENESS)
        self.pid = os.getpid()
        self._run(alive=lambda: os.getppid() == parent)  # a master gone (killed) ends it too


def stop_process(pid: int) -> None:
    """End the sealing process (`_Sealer.start_process`) and wait for it; an event it was sealing
    stays in the inbox (its transaction rolls back) for the next sealer."""
    import signal

    try:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return  # it ended on its own (and is reaped now)
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        # already reaped, by gunicorn's master (which reaps every child): its pid may be another
        # process's by now, so it is not signalled
        pass


def register_audit_hooks(app: Flask) -> None:
    interval = app.config["CASESVC"].audit_seal_interval
    if interval <= 0 or interval >= 1e8:  # sealing only on demand (tests, tools)
        return
    sealer = _Sealer(app, interval)
    app.before_request(sealer.ensure_running)
    app.extensions["casesvc.audit_sealer"] = sealer
