"""Reminder and webhook figures for /metrics, read from the database when scraped: the worker
runs in another process (cron), so in-process counters would show nothing."""
from __future__ import annotations

import logging

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

log = logging.getLogger(__name__)


def _families():
    return (
        GaugeMetricFamily("casesvc_reminders_pending", "Reminders pending (not acknowledged, done or dismissed)"),
        GaugeMetricFamily("casesvc_reminders_overdue", "Pending reminders whose due time has passed"),
        GaugeMetricFamily("casesvc_reminders_escalated", "Escalation reminders pending"),
        CounterMetricFamily("casesvc_webhook_deliveries", "Webhook delivery attempts by outcome",
                            labels=["outcome"]),
    )


class ReminderCollector:
    def describe(self):
        return list(_families())

    def collect(self):
        from flask import has_app_context

        if not has_app_context():
            return []
        from casesvc.extensions import db
        from casesvc.reminders.service import metric_counts

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
