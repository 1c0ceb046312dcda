"""Prometheus metrics of one process, in a registry of their own so tests stay independent.

With several web workers (PROMETHEUS_MULTIPROC_DIR set before prometheus-client is imported),
each process writes its counts to files in that directory and a scrape of any worker sums them
with prometheus-client's multiprocess collector. Services do not import this; the web layer
and the workers count what their services return.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector


class Metrics:
    """The counters and histograms `/metrics` exposes."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.webhook_deliveries = Counter(
            "processor_webhook_deliveries_total",
            "Verified webhook deliveries by event type and outcome.",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.webhook_rejections = Counter(
            "processor_webhook_rejections_total",
            "Webhook requests refused before storage, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.webhook_latency = Histogram(
            "processor_webhook_processing_seconds",
            "Time from reading a webhook body to answering it.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.notifications = Counter(
            "processor_notifications_total",
            "Notification delivery outcomes (sent, retry, dead, skipped).",
            ["outcome"],
            registry=self.registry,
        )
        self.retries = Counter(
            "processor_retry_outcomes",
            "Automatic retries of declined charges by outcome (recovered, declined, stopped, ...).",
            ["outcome"],
            registry=self.registry,
        )

    def scrape_registry(
        self,
        read_counts: Callable[[], dict[str, dict[str, int]]],
        multiprocess_directory: str | None = None,
    ) -> CollectorRegistry:
        """The registry `/metrics` exposes: this process's counters, or with
        `multiprocess_directory` every worker's summed, plus row counts read at scrape time.

        Charges are made by `processor charge` processes and emails by separate notifier
        workers, so the database, not any one process's counters, knows the totals.
        `read_counts` returns {"notifications": {status: n}, "charges": {status: n}, "retries": …}.
        """
        if multiprocess_directory is None:
            registry = self.registry
        else:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=multiprocess_directory)
        registry.register(_StoredCountsCollector(read_counts))
        return registry


_STORED_FAMILIES = {
    "notifications": ("processor_notification_queue_depth", "Notifications by status, as stored."),
    "charges": ("processor_charges", "Off-session charges by outcome (status), as stored."),
    "retries": ("processor_charge_retries", "Automatic retries of declines by status, as stored."),
}


class _StoredCountsCollector(Collector):
    def __init__(self, read_counts: Callable[[], dict[str, dict[str, int]]]) -> None:
        self._read_counts = read_counts

    def collect(self) -> Iterable[GaugeMetricFamily]:
        try:
            counts = self._read_counts()
        except Exception:  # a scrape must not fail because the database is down
            counts = {}
        for table, (name, documentation) in _STORED_FAMILIES.items():
            gauge = GaugeMetricFamily(name, documentation, labels=["status"])
            for status, count in sorted(counts.get(table, {}).items()):
                gauge.add_metric([status], count)
            yield gauge
