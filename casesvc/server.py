"""`casesvc serve`: gunicorn with the already-created app."""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from multiprocessing.sharedctypes import RawArray

from gunicorn import util as gunicorn_util
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from casesvc.audit.sealing import stop_process
from casesvc.config import Settings
from casesvc.logging_setup import REQUEST_LOGGER
from casesvc.ops.metrics import mark_worker_dead


class _Server(BaseApplication):
    def __init__(self, app, options: dict):
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)
        if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 25.1
            # no gunicornc socket in $HOME: casesvc does not use it, and a second server of the
            # same user (another instance, the bench) would take it over and delete it on exit
            self.cfg.set("control_socket_disable", True)

    def load(self):
        return self.application


class _ConnectionTable:
    """How many connections each worker of this server holds, in memory the master shares with
    the workers it forks: a slot per live worker, written by that worker's main thread alone and
    read by its siblings without a lock (a stale figure misplaces one connection at worst). A
    slot that no worker accepting connections owns reads `IDLE_SLOT`. The master hands out the
    slots (a worker object is made in the master before the fork) and takes them back when a
    worker exits (gunicorn's `child_exit`)."""

    SLOTS = 256  # more live workers than this: the rest accept as gunicorn's gthread worker does
    IDLE_SLOT = sys.maxsize

    def __init__(self):
        self.counts = RawArray("q", [self.IDLE_SLOT] * self.SLOTS)
        self.taken: set[int] = set()

    def take(self) -> int | None:
        free = next((slot for slot in range(self.SLOTS) if slot not in self.taken), None)
        if free is not None:
            self.taken.add(free)
            self.counts[free] = self.IDLE_SLOT  # counted from when the worker starts accepting
        return free

    def give_back(self, slot: int | None) -> None:
        if slot is not None:
            self.counts[slot] = self.IDLE_SLOT
            self.taken.discard(slot)

    def fewest_elsewhere(self, slot: int) -> int:
        counts = self.counts[:]
        counts[slot] = self.IDLE_SLOT
        return min(counts)


_connections = _ConnectionTable()


class BalancedThreadWorker(ThreadWorker):
    """gunicorn's gthread worker that leaves a new connection, for up to `HOLD` seconds, to a
    sibling holding fewer connections than it does. gunicorn's own accepts whenever it can (its
    issues 908 and 3433): whichever worker wakes first takes the connection, and a kept-alive one
    stays there, so under 16 kept-alive connections one of two workers (one GIL) served 96-98 %
    of the requests in most bench loads while the other idled. Here, when the shared listening
    socket is readable, a worker that holds more connections than its least-loaded sibling stops
    watching it and looks again every `RECHECK` seconds: it takes the connection once it holds no
    more than any sibling, or once `HOLD` has passed (the sibling may be busy or stuck), so a new
    connection waits `HOLD` at most — a health probe is answered under any load (a worker that
    accepted only while a thread was free left new connections waiting behind kept-alive ones:
    tests/ops/faults/test_outage_under_load.py). Workers holding equal numbers accept at once, as
    gunicorn's do; a single worker never holds back. The workers still share the master's one
    socket, so what a killed worker would have taken stays queued for the others
    (tests/ops/faults/test_worker_killed.py)."""

    HOLD = 0.02
    RECHECK = 0.002

    def __init__(self, *args, **kwargs):
        self.slot = _connections.take()  # in the master, before the fork
        self._held_since: float | None = None  # when this worker stopped watching the listener
        super().__init__(*args, **kwargs)

    @property
    def nr_conns(self) -> int:
        return self._nr_conns

    @nr_conns.setter
    def nr_conns(self, value: int) -> None:
        # gunicorn's worker counts every connection it takes and closes here, on its main thread
        self._nr_conns = value
        self._publish()

    def _publish(self) -> None:
        # from the worker's first turn of its loop on (not in the master, not while it boots)
        if self.slot is not None and self.poller is not None:
            taking = self.alive and self._nr_conns < self.worker_connections
            _connections.counts[self.slot] = self._nr_conns if taking else _connections.IDLE_SLOT

    def _busier_than_a_sibling(self) -> bool:
        return self.slot is not None and self._nr_conns > _connections.fewest_elsewhere(self.slot)

    def accept(self, listener):
        if self._held_since is None and self._busier_than_a_sibling():
            self._held_since = time.monotonic()
            super().set_accept_enabled(False)
            return
        super().accept(listener)

    def set_accept_enabled(self, enabled):
        # gunicorn's loop asks for accepting while the worker holds fewer than
        # `worker_connections`: not while a connection is left to a sibling
        super().set_accept_enabled(enabled and self._held_since is None)

    def _end_hold(self) -> None:
        """Take what the sibling left (nothing: the accept finds the queue empty) and watch the
        listener again."""
        self._held_since = None
        if self.alive:
            for listener in self.sockets:
                super().accept(listener)
        self.set_accept_enabled(self.alive and self._nr_conns < self.worker_connections)

    def wait_for_and_dispatch_events(self, timeout):
        self._publish()  # `alive` may have changed (SIGTERM)
        if self._held_since is not None:
            held = time.monotonic() - self._held_since
            if held >= self.HOLD or not self._busier_than_a_sibling():
                self._end_hold()
            else:
                timeout = min(timeout, self.RECHECK, self.HOLD - held)
        super().wait_for_and_dispatch_events(timeout)


def release_worker_slot(worker) -> None:
    """gunicorn's `child_exit`, in the master: the exited worker's slot is free for the next."""
    _connections.give_back(getattr(worker, "slot", None))


def _child_exit(server, worker) -> None:
    mark_worker_dead(worker.pid)
    release_worker_slot(worker)


def gunicorn_options(settings, host: str, port: int, workers: int, threads: int = 1) -> dict:
    """`threads` > 1 runs gthread workers: a request waiting on the database (every request
    commits its audit event) does not hold up the others, and concurrent commits share a flush.
    On SIGTERM a worker finishes the requests it has for up to `CASESVC_GRACEFUL_TIMEOUT` seconds;
    an idle keep-alive connection is held `CASESVC_KEEPALIVE` seconds (keep it below the load
    balancer's idle timeout, so that the balancer never sends on a connection gunicorn closes).
    No gunicorn access log: casesvc writes one line per request itself (README: Logs).

    The workers share one listening socket, the master's, and a busier worker leaves a new
    connection to a less busy one (`BalancedThreadWorker`). A socket per worker (`SO_REUSEPORT`)
    spreads kept-alive connections too, but a worker that dies then resets the connections queued
    on its own socket: a client's retry sent at once went unanswered
    (tests/ops/faults/test_worker_killed.py), so it is not used.

    Each worker switches threads every `CASESVC_SWITCH_INTERVAL_MS` (1 ms; Python's own is 5): a
    thread whose statement has returned waits for the interpreter until the running one gives it
    up, at most that long each time, several times a request. At 5 ms those waits were most of the
    difference between a read's p99 and its median under load (bench/README.md)."""
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "accesslog": None,
        "logger_class": "casesvc.logging_setup.GunicornLogger",
        "timeout": 30,
        "graceful_timeout": settings.serve_graceful_timeout,
        "keepalive": settings.serve_keepalive,
        "limit_request_line": 8190,
        "child_exit": _child_exit,
        "post_fork": _switching_threads_every(settings.serve_switch_interval_ms / 1000),
    }
    if threads > 1:
        options.update(worker_class="casesvc.server.BalancedThreadWorker", threads=threads)
    return options


def _switching_threads_every(seconds: float):
    """gunicorn's `post_fork` hook: the worker's thread switch interval."""

    def post_fork(server, worker) -> None:
        sys.setswitchinterval(seconds)

    return post_fork


def address_taken(host: str, port: int) -> str | None:
    """Why `host:port` cannot be listened on, or None: tried before gunicorn starts, so that a port
    in use stops `casesvc serve` at once with one line (gunicorn alone tries five times, a second
    apart, and logs each). The socket is the one gunicorn would open: IPv6 for an IPv6 literal,
    IPv4 for anything else, bound to `(host, port)`. Not tried when gunicorn is handed sockets it
    already holds (`GUNICORN_FD` on a USR2 upgrade, `LISTEN_FDS` under systemd): those are in use
    by design."""
    if os.environ.get("GUNICORN_FD") or os.environ.get("LISTEN_FDS"):
        return None
    family = socket.AF_INET6 if gunicorn_util.is_ipv6(host) else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT left behind is no conflict
            probe.bind((host, port))
    except OSError as exc:
        return f"{host}:{port}: {exc.strerror or exc}"
    return None


def run_gunicorn(app, host: str, port: int, workers: int, threads: int = 1, access_log: bool = True) -> None:
    """`access_log=False` drops casesvc's per-request log line (bench/run.py measures without it)."""
    logging.getLogger(REQUEST_LOGGER).disabled = not access_log
    # an app of casesvc carries its settings; another one (the bench's bare app) gets the defaults
    settings = app.config.get("CASESVC", Settings)
    options = gunicorn_options(settings, host, port, workers, threads)
    sealer = app.extensions.get("casesvc.audit_sealer")
    if sealer is not None:
        # the audit chain is sealed by a process of its own, forked by the master before the
        # workers (casesvc.audit.sealing._Sealer); it ends with the master
        started: list[int] = []

        def when_ready(server) -> None:
            started.append(sealer.start_process())
            server.log.info("audit sealer started (pid %s)", started[-1])

        def on_exit(server) -> None:
            for pid in started:
                stop_process(pid)

        options.update(when_ready=when_ready, on_exit=on_exit)
    _Server(app, options).run()
