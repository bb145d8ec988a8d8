"""`casesvc reminders run|work`: the worker that creates due reminders and delivers webhooks."""

from __future__ import annotations

import json
import logging
import signal
import time

import click
from sqlalchemy.exc import OperationalError

from casesvc.commands import DomainGroup, instant
from casesvc.extensions import db
from casesvc.reminders.worker import run

reminders = DomainGroup(
    "reminders", help="Reminders: the worker that creates due reminders and delivers their webhooks."
)
log = logging.getLogger("casesvc.reminders")


@reminders.command("run")
@click.option("--now", help="RFC 3339 instant to run at (default: now)")
def reminders_run(now):
    """One pass: create due reminders, escalate overdue ones, deliver due webhooks. Idempotent;
    safe from cron and from several processes at once."""
    click.echo(json.dumps(run(instant(now, "--now"))))


class _Stop(Exception):
    """Raised by the SIGTERM handler between passes: ends the wait at once."""


@reminders.command("work")
@click.option("--interval", default=60, show_default=True, type=click.IntRange(1, 86400), help="Seconds between passes")
def reminders_work(interval):
    """Run a pass every --interval seconds until interrupted (SIGINT or SIGTERM). SIGTERM during a
    pass lets the pass finish; between passes it stops the wait at once. The handler takes no
    lock: setting a `threading.Event` from it could deadlock on the lock the interrupted wait
    held, and the worker then never stopped."""
    state = {"in_pass": False, "stop": False}

    def on_term(*_):
        if state["in_pass"]:
            state["stop"] = True  # the pass finishes, then the loop ends
        else:
            raise _Stop

    signal.signal(signal.SIGTERM, on_term)
    try:
        while not state["stop"]:
            state["in_pass"] = True
            try:
                result = run()
                click.echo(json.dumps(result))
                log.info(
                    "reminders pass done",
                    extra={"reminders_created": result["created"], "deliveries": result["deliveries"]},
                )
            except OperationalError as exc:  # the database is away for a moment: try again next pass
                db.session.rollback()
                log.warning("reminders pass failed: %s", exc.orig.__class__.__name__)
            finally:
                db.session.remove()
                state["in_pass"] = False
            if state["stop"]:
                break
            try:
                time.sleep(interval)
            except KeyboardInterrupt:
                break
    except _Stop:
        pass
