"""`casesvc serve`: gunicorn with the already-created app."""

from __future__ import annotations

import logging
import os
import socket

from gunicorn import util as gunicorn_util
from gunicorn.app.base import BaseApplication

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


def gunicorn_options(settings, host: str, port: int, workers: int, threads: int = 1) -> dict:
    """`threads` > 1 runs gthread workers: a request waiting on the database (every request
    commits its audit event) does not hold up the others, and concurrent commits share a flush.
    On SIGTERM a worker finishes the requests it has for up to `CASESVC_GRACEFUL_TIMEOUT` seconds;
    an idle keep-alive connection is held `CASESVC_KEEPALIVE` seconds (keep it below the load
    balancer's idle timeout, so that the balancer never sends on a connection gunicorn closes).
    No gunicorn access log: casesvc writes one line per request itself (README: Logs).

    The workers share one listening socket, the master's. A socket per worker (`SO_REUSEPORT`)
    spreads kept-alive connections more evenly, but a worker that dies then resets the
    connections queued on its own socket: a client's retry sent at once went unanswered
    (tests/ops/faults/test_worker_killed.py), so it is not used."""
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "accesslog": None,
        "logger_class": "casesvc.logging_setup.GunicornLogger",
        "timeout": 30,
        "graceful_timeout": settings.serve_graceful_timeout,
        "keepalive": settings.serve_keepalive,
        "limit_request_line": 8190,
        "child_exit": lambda server, worker: mark_worker_dead(worker.pid),
    }
    if threads > 1:
        options.update(worker_class="gthread", threads=threads)
    return options


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
    _Server(app, gunicorn_options(settings, host, port, workers, threads)).run()
