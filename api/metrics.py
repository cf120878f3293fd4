"""Prometheus ``/metrics``: queue depth, deliveries by outcome, lateness (core.insights.metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from core.insights.metrics import OperatorFigures


class _Figures(Collector):
    def __init__(self, figures: OperatorFigures) -> None:
        self.figures = figures

    def collect(self):  # type: ignore[no-untyped-def]
        f = self.figures
        queue = GaugeMetricFamily("vestnik_queue_depth", "Work waiting to be done", labels=["what"])
        queue.add_metric(["jobs_due"], f.jobs_due)
        queue.add_metric(["jobs_claimed"], f.jobs_claimed)
        for status, n in sorted(f.deliveries_waiting.items()):
            queue.add_metric([f"deliveries_{status}"], n)
        yield queue
        total = CounterMetricFamily(
            "vestnik_deliveries",
            "Deliveries by channel and their status now (sent, failed, unreachable…)",
            labels=["channel", "status"],
        )
        for (channel, status), n in sorted(f.deliveries_total.items()):
            total.add_metric([channel, status], n)
        yield total
        yield GaugeMetricFamily(
            "vestnik_oldest_due_job_seconds",
            "How long the oldest due, unclaimed job has waited",
            value=f.oldest_due_seconds,
        )
        lateness = SummaryMetricFamily(
            "vestnik_job_lateness_seconds",
            "From a job's due time to its last message sent, jobs due in the last hour",
            count_value=f.lateness_count,
            sum_value=f.lateness_sum,
        )
        yield lateness
        quantiles = GaugeMetricFamily(
            "vestnik_job_lateness_quantile_seconds",
            "Quantiles of job lateness over the last hour",
            labels=["quantile"],
        )
        for q, v in sorted(f.lateness_quantiles.items()):
            quantiles.add_metric([str(q)], v)
        yield quantiles


def exposition(figures: OperatorFigures) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Figures(figures))
    return generate_latest(registry), CONTENT_TYPE_LATEST
