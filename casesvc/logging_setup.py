"""Logs (README: Logs): one line per record on standard error, JSON or text
(`CASESVC_LOG_FORMAT`), in the same shape from the server, the reminders worker and the other
commands; and one line per request.

A log line holds no personal data: the request line names the route template
(`/api/v1/youths/<youth_id>`), never the path's values or the query string, and the caller by
id; nothing logs bodies, names or free text. `tests/test_logging.py` runs a scenario full of
distinctive names and texts and searches every line for them.
"""

from __future__ import annotations

import logging
import sys
import time

from flask import Response, g, has_request_context, request
from gunicorn.glogging import Logger as GunicornBaseLogger
from pythonjsonlogger.json import JsonFormatter

from casesvc.config import LOG_FORMATS

REQUEST_LOGGER = "casesvc.request"
request_log = logging.getLogger(REQUEST_LOGGER)

_TEXT_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
_JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
_JSON_NAMES = {"asctime": "time", "levelname": "level", "name": "logger"}


def _utc(record: logging.LogRecord) -> str:
    """RFC 3339 in UTC with milliseconds, as the API writes instants."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class JsonLines(JsonFormatter):
    """`{"time", "level", "logger", "message", …the record's own fields}` on one line."""

    def __init__(self):
        super().__init__(_JSON_FIELDS, rename_fields=_JSON_NAMES, json_ensure_ascii=False)

    def formatTime(self, record, datefmt=None):  # logging's name
        return _utc(record)


class TextLines(logging.Formatter):
    """`time level [request id] logger: message`, for a person reading a terminal."""

    def __init__(self):
        super().__init__(_TEXT_FORMAT, defaults={"request_id": "-"})

    def formatTime(self, record, datefmt=None):  # logging's name
        return _utc(record)


class _RequestId(logging.Filter):
    """Every record made while a request is served carries the request's id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None and has_request_context():
            request_id = request.environ.get("casesvc.request_id")
            if request_id:
                record.request_id = request_id
        return True


class _Stderr(logging.StreamHandler):
    """Standard error as it is when a record is written, not as it was when logging was set
    up (the test runner and embedding programs replace `sys.stderr`)."""

    casesvc = True  # marks the handler configure_logging() set up, to replace it on a second call

    def __init__(self):
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr


def configure_logging(log_format: str) -> None:
    """Send every record to standard error in `log_format` ("json" or "text"). Called by
    create_app(); a second call replaces what the first set up."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "casesvc", False)]:
        root.removeHandler(handler)
    handler = _Stderr()
    handler.setFormatter(JsonLines() if log_format == "json" else TextLines())
    handler.addFilter(_RequestId())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("alembic").setLevel(logging.WARNING)


# the commands that run until stopped log what they do (a request, a pass) at INFO; the others
# say only what goes wrong, so that an error stays the one line the command prints
LONG_RUNNING_COMMANDS = frozenset({"casesvc serve", "casesvc reminders work"})


def set_command_level(command_path: str) -> None:
    logging.getLogger().setLevel(logging.INFO if command_path in LONG_RUNNING_COMMANDS else logging.WARNING)


def log_request(response: Response) -> Response:
    """The request's line: an `after_request` hook that runs after every other one, so the
    status is the one sent (an audit event that cannot be written turns it into a 500)."""
    status = response.status_code
    level = logging.ERROR if status >= 500 else logging.INFO
    if not request_log.isEnabledFor(level):  # turned off (`casesvc serve` without its access log)
        return response
    started = g.get("started")
    principal = request.environ.get("casesvc.principal")
    route = request.url_rule.rule if request.url_rule else None  # the template, never the path's values
    duration_ms = round((time.perf_counter() - started) * 1000, 1) if started is not None else None
    actor = principal.subject if principal is not None else None
    request_log.log(
        level,
        "%s %s %s %sms actor=%s",
        request.method,
        route or "-",
        status,
        duration_ms,
        actor or "-",
        extra={"method": request.method, "route": route, "status": status, "duration_ms": duration_ms, "actor": actor},
    )
    return response


class GunicornLogger(GunicornBaseLogger):
    """gunicorn's own messages (start, workers, timeouts) go through casesvc's handler, in its
    format; gunicorn's access log is off, since casesvc writes the request line itself."""

    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
            log.propagate = True
