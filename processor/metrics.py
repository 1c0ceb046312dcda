"""Prometheus metrics of one process, in a registry of their own so tests stay independent.

Services do not import this; the web layer and the workers count what their services return.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
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
        self.charges = Counter(
            "processor_charges_total",
            "Off-session charge outcomes.",
            ["outcome"],
            registry=self.registry,
        )

    def watch_queue(self, read_depths: Callable[[], dict[str, int]]) -> None:
        """Expose the outbox depth by status, read from the database at scrape time."""
        self.registry.register(_QueueDepthCollector(read_depths))


class _QueueDepthCollector(Collector):
    def __init__(self, read_depths: Callable[[], dict[str, int]]) -> None:
        self._read_depths = read_depths

    def collect(self) -> Iterable[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "processor_notification_queue_depth",
            "Notifications by status, as stored.",
            labels=["status"],
        )
        try:
            depths = self._read_depths()
        except Exception:  # a scrape must not fail because the database is down
            depths = {}
        for status, count in sorted(depths.items()):
            gauge.add_metric([status], count)
        yield gauge
