"""``python -m services.notifier``: run the notifier worker (consumer, dispatcher, API)."""

from __future__ import annotations

import asyncio
import logging

from services.notifier.api import KEYS_VARIABLE
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
    if not settings.webhook_secret:
        logging.getLogger("services.notifier").warning(
            "NOTIFIER_WEBHOOK_SECRET is not set: webhook signatures use an empty key"
        )
    if kafka.create_topics:
        asyncio.run(ensure_topics(kafka))
    streaming.run(build(settings, kafka, database_settings()), settings.log_level)


if __name__ == "__main__":
    main()
