"""Reminder and webhook figures for /metrics, read from the database when scraped: the worker
runs in another process (cron), so in-process counters would show nothing."""

from __future__ import annotations

import logging
from datetime import datetime

from flask import has_app_context
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func, select

from casesvc.common.timeutil import utcnow
from casesvc.extensions import db
from casesvc.reminders.models import Reminder, WebhookAttempt

log = logging.getLogger(__name__)


def metric_counts(now: datetime | None = None) -> dict:
    now = now or utcnow()
    pending = db.session.scalar(select(func.count()).select_from(Reminder).where(Reminder.status == "pending"))
    overdue = db.session.scalar(
        select(func.count()).select_from(Reminder).where(Reminder.status == "pending", Reminder.due_at <= now)
    )
    escalated = db.session.scalar(
        select(func.count()).select_from(Reminder).where(Reminder.kind == "escalation", Reminder.status == "pending")
    )
    outcomes = dict(
        db.session.execute(select(WebhookAttempt.outcome, func.count()).group_by(WebhookAttempt.outcome)).all()
    )
    return {"pending": pending, "overdue": overdue, "escalated": escalated, "attempts": outcomes}


def _families():
    return (
        GaugeMetricFamily("casesvc_reminders_pending", "Reminders pending (not acknowledged, done or dismissed)"),
        GaugeMetricFamily("casesvc_reminders_overdue", "Pending reminders whose due time has passed"),
        GaugeMetricFamily("casesvc_reminders_escalated", "Escalation reminders pending"),
        CounterMetricFamily("casesvc_webhook_deliveries", "Webhook delivery attempts by outcome", labels=["outcome"]),
    )


class ReminderCollector:
    def describe(self):
        return list(_families())

    def collect(self):
        if not has_app_context():
            return []
        try:
            counts = metric_counts()
        except Exception:  # a database without the tables yet, or unreachable: no figures
            db.session.rollback()
            log.warning("reminder metrics unavailable", exc_info=True)
            return []
        pending, overdue, escalated, deliveries = _families()
        pending.add_metric([], counts["pending"])
        overdue.add_metric([], counts["overdue"])
        escalated.add_metric([], counts["escalated"])
        for outcome in ("delivered", "retrying", "failed"):
            deliveries.add_metric([outcome], counts["attempts"].get(outcome, 0))
        return [pending, overdue, escalated, deliveries]
