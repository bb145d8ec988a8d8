"""Prometheus metrics. Each gunicorn worker keeps its own counters (prometheus_client's
multiprocess mode needs a shared directory; see README)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter("casesvc_http_requests_total", "HTTP requests by method, route and status",
                   ["method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram("casesvc_http_request_seconds", "HTTP request latency by route", ["method", "route"],
                    registry=REGISTRY, buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))


def _register_reminder_metrics() -> None:
    from casesvc.reminders.metrics import ReminderCollector

    REGISTRY.register(ReminderCollector())


_register_reminder_metrics()


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)
