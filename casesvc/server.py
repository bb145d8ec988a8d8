"""`casesvc serve`: gunicorn with the already-created app."""
from __future__ import annotations

from gunicorn.app.base import BaseApplication

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


# gunicorn's default line with the path but not the query string (`%(U)s`, not `%(r)s`): a query
# may hold a national id (`GET /youths?national_id=`), and that has no place in a log file
ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(f)s" "%(a)s"'


def gunicorn_options(settings, host: str, port: int, workers: int, threads: int = 1,
                     access_log: bool = True) -> dict:
    """`threads` > 1 runs gthread workers: a request waiting on the database (every request
    commits its audit event) does not hold up the others, and concurrent commits share a flush.
    `access_log=False` drops the per-request line on stdout (bench/run.py measures without it).
    On SIGTERM a worker finishes the requests it has for up to `CASESVC_GRACEFUL_TIMEOUT` seconds;
    an idle keep-alive connection is held `CASESVC_KEEPALIVE` seconds (keep it below the load
    balancer's idle timeout, so that the balancer never sends on a connection gunicorn closes)."""
    options = {"bind": f"{host}:{port}", "workers": workers, "accesslog": "-" if access_log else None,
               "access_log_format": ACCESS_LOG_FORMAT, "timeout": 30,
               "graceful_timeout": settings.serve_graceful_timeout, "keepalive": settings.serve_keepalive,
               "limit_request_line": 8190,
               "child_exit": lambda server, worker: mark_worker_dead(worker.pid)}
    if threads > 1:
        options.update(worker_class="gthread", threads=threads)
    return options


def run_gunicorn(app, host: str, port: int, workers: int, threads: int = 1, access_log: bool = True) -> None:
    _Server(app, gunicorn_options(app.config["CASESVC"], host, port, workers, threads, access_log)).run()
