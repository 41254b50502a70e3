"""``python -m services.notifier``: run the notifier worker (consumer, dispatcher, API)."""

from __future__ import annotations

import asyncio
import logging

from services.notifier import schedule
from services.notifier.api import KEYS_VARIABLE
from services.notifier.channels import standard_webhooks_key
from services.notifier.settings import NotifierSettings
from services.notifier.worker import build
from shared import logs, streaming
from shared.auth import check_keys
from shared.kafka import ensure_topics
from shared.settings import SettingsError, database_settings, kafka_settings, load


def main() -> None:
    try:
        settings = load(NotifierSettings, "NOTIFIER_")
        check_keys(settings.api_keys, KEYS_VARIABLE)
    except SettingsError as exc:
        raise SystemExit(f"notifier: {exc}") from None
    logs.configure("notifier", settings.log_level)
    # httpx logs every request URL at INFO; webhook URLs are credentials and personal data.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    kafka = kafka_settings()
    problem = refusal(settings)
    if problem is not None:
        logging.getLogger("services.notifier").error(problem)
        raise SystemExit(f"notifier: {problem}")
    if kafka.create_topics:
        asyncio.run(ensure_topics(kafka))
    streaming.run(build(settings, kafka, database_settings()), settings.log_level)


def refusal(settings: NotifierSettings) -> str | None:
    """Why the notifier must not start with these settings, or None."""
    if not settings.webhook_secret:
        return "NOTIFIER_WEBHOOK_SECRET is not set (webhooks would be signed with an empty key)"
    try:
        standard_webhooks_key(settings.webhook_secret)
    except ValueError as exc:
        return f"NOTIFIER_WEBHOOK_SECRET: {exc}"
    if not 0 < settings.attempt_deadline_s < settings.claim_lease_s:
        return (
            "NOTIFIER_ATTEMPT_DEADLINE_S must be above 0 and shorter than NOTIFIER_CLAIM_LEASE_S "
            "(a claim must outlast the attempt it covers)"
        )
    try:
        schedule.configured(settings)
    except schedule.ScheduleError as exc:
        return str(exc)
    return None


if __name__ == "__main__":
    main()
