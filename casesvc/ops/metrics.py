"""Prometheus metrics for /metrics.

Under `casesvc serve` each gunicorn worker is a process of its own, so its counters would show
one worker per scrape. With `PROMETHEUS_MULTIPROC_DIR` set — `casesvc serve` sets it to a fresh
directory (or `CASESVC_METRICS_DIR`) before the workers start — prometheus_client's multiprocess
mode keeps each worker's figures in a file there, a scrape adds them up, and a worker that exits
is marked dead (`mark_worker_dead`, gunicorn's `child_exit`). Without it (tests, one process),
the figures live in this process. The reminder figures are read from the database at scrape
time either way: the worker that makes reminders runs elsewhere (cron).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess, values

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


class _Metrics:
    """Made once per process, on first use: the value class (in-process, or a file per process)
    is chosen from the environment then, after `casesvc serve` has set it."""

    def __init__(self):
        values.ValueClass = values.get_value_class()
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "casesvc_http_requests_total",
            "HTTP requests by method, route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "casesvc_http_request_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            registry=self.registry,
            buckets=BUCKETS,
        )
        self.children: dict[tuple[str, str, int], tuple] = {}  # observe_request's
        self.source_failures = Counter(
            "casesvc_reminder_source_failures",
            "Reminder sources the worker could not compute, by rule",
            ["rule"],
            registry=self.registry,
        )


_metrics: _Metrics | None = None


def _get() -> _Metrics:
    global _metrics
    if _metrics is None:
        _metrics = _Metrics()
    return _metrics


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    metrics = _get()
    # the labelled children, found once per method, route and status: `labels()` checks and
    # converts its values and takes the metric's lock on every call
    key = (method, route, status)
    children = metrics.children.get(key)
    if children is None:
        children = metrics.children[key] = (
            metrics.requests.labels(method, route, str(status)),
            metrics.latency.labels(method, route),
        )
    count, latency = children
    count.inc()
    latency.observe(seconds)


def process_registry() -> CollectorRegistry:
    """This process's own figures (what a scrape adds up with the other workers')."""
    return _get().registry


def count_source_failure(rule: str) -> None:
    """A reminder source the worker skipped (reminders/isolation.py); a `casesvc reminders run`
    from cron also reports them in its output line (`failed`)."""
    _get().source_failures.labels(rule).inc()


def scrape_registry(reminders) -> CollectorRegistry:
    """What a scrape reads: every worker's figures (multiprocess) or this process's, and the
    reminder figures of `reminders` (a collector)."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_RegistryCollector(_get().registry))
    registry.register(reminders)
    return registry


class _RegistryCollector:
    """One registry's metrics inside another (the in-process figures beside the reminders)."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry

    def collect(self):
        return self.registry.collect()


def mark_worker_dead(pid: int) -> None:
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)


def prepare_multiprocess_dir(configured: str | None) -> str:
    """The directory the workers of one `casesvc serve` share: `configured`, emptied of an earlier
    run's files (figures of processes long gone would be added in), or a new temporary one."""
    if not configured:
        return tempfile.mkdtemp(prefix="casesvc-metrics-")
    path = Path(configured)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    return str(path)
