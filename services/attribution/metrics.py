"""The attribution service's Prometheus metrics (names agreed across the team)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from shared.events import INBOUND_TYPES, RECOGNITION_KINDS, Topic
from shared.http import http_metrics
from shared.metrics import LATENCY_BUCKETS, preinit

OUTCOMES = ("stored", "duplicate", "dead_lettered")
DEAD_LETTER_REASONS = (
    "invalid_event",
    "unexpected_type",
    "processing_error",
    "unsendable",
    "sealed",
)
DEPENDENCIES = ("database", "broker")

HTTP = http_metrics("attribution")

EVENTS = Counter(
    "attribution_events_processed_total",
    "Events consumed, by type and outcome (stored, duplicate, dead_lettered, erased: a "
    "record of an erased applicant's key id, dropped).",
    ["type", "outcome"],
)
BATCH_SIZE = Histogram(
    "attribution_batch_size_events",
    "Events per processed batch.",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
BATCH_DURATION = Histogram(
    "attribution_batch_duration_seconds",
    "Time to store and derive one batch (one database transaction).",
    buckets=LATENCY_BUCKETS,
)
DELAY = Histogram(
    "attribution_processing_delay_seconds",
    "Event time (CloudEvent `time`) to stored.",
    buckets=(*LATENCY_BUCKETS, 30.0, 60.0, 300.0, 3600.0, 86400.0),
)
LAG = Gauge(
    "attribution_consumer_lag_messages",
    "Messages behind the partitions' high water mark.",
    ["topic"],
)
LAST_PROCESSED = Gauge(
    "attribution_last_processed_timestamp_seconds", "When the last batch was committed."
)
CREDITS = Counter(
    "attribution_credits_assigned_total", "credit.assigned events written (credit changed)."
)
RECOGNITIONS = Counter(
    "attribution_recognitions_emitted_total", "Recognitions first due, by kind.", ["kind"]
)
DEAD_LETTERS = Counter(
    "attribution_dead_letters_total", "Records sent to the dead-letter topic.", ["reason"]
)
TRANSIENT_FAILURES = Counter(
    "attribution_transient_failures_total",
    "Transient failures of a dependency (database, broker) that were backed off and retried "
    "(nothing acknowledged or dead-lettered meanwhile).",
    ["dependency"],
)


def initialise(inputs: tuple[Topic, ...]) -> None:
    preinit(EVENTS, (*INBOUND_TYPES, "unknown"), OUTCOMES)
    preinit(RECOGNITIONS, RECOGNITION_KINDS)
    preinit(DEAD_LETTERS, DEAD_LETTER_REASONS)
    preinit(TRANSIENT_FAILURES, DEPENDENCIES)
    preinit(LAG, [t.name for t in inputs])
