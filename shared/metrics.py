"""Prometheus helpers.

Names follow ``<service>_<what>_<unit>`` with base units; counters end in ``_total``. Labels
are small closed sets and are pre-initialised to 0 so that rates exist from the first scrape;
never put ids, e-mail addresses or URLs in a label.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase

# Latency buckets in seconds, from sub-millisecond HTTP to multi-second pipeline delays.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


def preinit(metric: MetricWrapperBase, *label_values: Sequence[str]) -> None:
    """Create every combination of the given label values, so each series starts at 0."""
    for combination in itertools.product(*label_values):
        metric.labels(*combination)


def exposition(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The body and content type of a ``/metrics`` answer."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


def label_values(values: Iterable[str], allowed: Iterable[str], other: str = "other") -> list[str]:
    """Map values outside a closed set to ``other`` (metric labels stay bounded)."""
    known = set(allowed)
    return [value if value in known else other for value in values]
