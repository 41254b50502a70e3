"""The notifier's Prometheus metrics (names agreed across the team)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.notifier.policy import SUPPRESSION_REASONS
from shared.events import EMPLOYEES, RECOGNITIONS
from shared.http import http_metrics
from shared.metrics import preinit

CHANNELS = ("slack", "teams", "email", "webhook", "none")
OUTCOMES = ("sent", "suppressed", "failed")
DEAD_LETTER_REASONS = ("delivery_failed", "invalid_event")

HTTP = http_metrics("notifier")

DELIVERIES = Counter(
    "notifier_deliveries_total",
    "Recognitions settled, by channel and outcome (sent, suppressed, failed).",
    ["channel", "outcome"],
)
ATTEMPTS = Counter(
    "notifier_delivery_attempts_total",
    "Delivery attempts made (first tries and retries), by channel.",
    ["channel"],
)
LATENCY = Histogram(
    "notifier_delivery_latency_seconds",
    "Time from the recognition (due_at) to the message being sent, by channel.",
    ["channel"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400, 172800),
)
QUEUE_DEPTH = Gauge("notifier_queue_depth", "Deliveries pending (not yet settled).")
CONSUMER_LAG = Gauge(
    "notifier_consumer_lag_messages", "Records not yet consumed, by topic (messages).", ["topic"]
)
WAKEUPS = Counter(
    "notifier_dispatch_wakeups_total",
    "Times the waiting dispatcher looked at the ledger again, by cause: recorded (new work "
    "was stored), finished (an employee's deliveries were done), due (a pending row's time "
    "came: retry, recheck, digest, lease) or interval (the fallback sweep).",
    ["cause"],
)
CLAIMS_LOST = Counter(
    "notifier_claims_lost_total",
    "Claimed deliveries whose claim was taken over by another replica before this one sent "
    "them (nothing was sent by this replica).",
)
DESTINATION_PAUSES = Counter(
    "notifier_destination_pauses_total",
    "Times one destination (a webhook URL, a Slack channel) answered 429 and was paused for "
    "its Retry-After while the channel's other destinations went on, by channel.",
    ["channel"],
)
SUPPRESSED = Counter(
    "notifier_suppressed_total",
    "Recognitions recorded suppressed (not sent), by closed reason (stale: old news).",
    ["reason"],
)
DEAD_LETTERS = Counter(
    "notifier_dead_letters_total", "Records sent to the dead-letter topic, by reason.", ["reason"]
)
DROPPED = Counter(
    "notifier_records_dropped_total",
    "Records neither applied nor dead-lettered, by reason (erased: a record of an erased "
    'applicant\'s key id, or one whose key is shredded; docs/security.md "Topics").',
    ["reason"],
)
# The scheduled period report (schedule.py, reports.py).
REPORT_FETCH_REASONS = ("connection_error", "timeout", "server_error", "rejected", "too_large")
REPORTS_SCHEDULED = Counter(
    "notifier_reports_scheduled_total",
    "Scheduled reports put on the ledger (one per closed period and recipient), by channel.",
    ["channel"],
)
REPORTS = Counter(
    "notifier_reports_total",
    "Scheduled reports settled, by channel and outcome (sent, suppressed: the recipient is "
    "no longer configured, failed).",
    ["channel", "outcome"],
)
REPORT_FETCH_FAILURES = Counter(
    "notifier_report_fetch_failures_total",
    "Times the PDF or share link of a due report could not be had from attribution (the "
    "report waits and is tried again), by reason.",
    ["reason"],
)
REPORT_PERIOD_END = Gauge(
    "notifier_report_period_end_timestamp_seconds",
    "End of the latest closed period whose reports are on the ledger (Unix time).",
)

preinit(DELIVERIES, CHANNELS, OUTCOMES)
preinit(ATTEMPTS, CHANNELS[:-1])
preinit(LATENCY, CHANNELS[:-1])
preinit(CONSUMER_LAG, (RECOGNITIONS.name, EMPLOYEES.name))
preinit(DEAD_LETTERS, DEAD_LETTER_REASONS)
preinit(DROPPED, ("erased",))
preinit(DESTINATION_PAUSES, CHANNELS[:-1])
preinit(SUPPRESSED, SUPPRESSION_REASONS)
preinit(WAKEUPS, ("recorded", "finished", "due", "interval"))
preinit(REPORTS_SCHEDULED, ("email", "slack", "teams"))
preinit(REPORTS, ("slack", "teams", "email", "none"), OUTCOMES)
preinit(REPORT_FETCH_FAILURES, REPORT_FETCH_REASONS)
