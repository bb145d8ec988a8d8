"""`casesvc serve`: gunicorn with the already-created app."""
from __future__ import annotations

import logging

from gunicorn.app.base import BaseApplication

from casesvc.logging_setup import REQUEST_LOGGER


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


def run_gunicorn(app, host: str, port: int, workers: int, threads: int = 1, access_log: bool = True) -> None:
    """`threads` > 1 runs gthread workers: a request waiting on the database (every request
    commits its audit event) does not hold up the others, and concurrent commits share a flush.
    `access_log=False` drops casesvc's per-request log line (bench/run.py measures without it)."""
    # no gunicorn access log: casesvc writes one line per request itself (README: Logs)
    options = {"bind": f"{host}:{port}", "workers": workers, "accesslog": None,
               "logger_class": "casesvc.logging_setup.GunicornLogger", "timeout": 30, "graceful_timeout": 10,
               "limit_request_line": 8190}
    logging.getLogger(REQUEST_LOGGER).disabled = not access_log
    if threads > 1:
        options.update(worker_class="gthread", threads=threads)
    _Server(app, options).run()
