"""``python -m services.attribution``: apply migrations, make sure the topics exist, then run
the faust worker with the results API on ``ATTRIBUTION_PORT``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from services.attribution import weekly
from services.attribution.api import KEYS_VARIABLE
from services.attribution.settings import AttributionSettings
from services.attribution.worker import create_worker
from shared import db, logs, streaming
from shared.auth import check_keys
from shared.kafka import ensure_topics
from shared.settings import (
    DatabaseSettings,
    KafkaSettings,
    SettingsError,
    database_settings,
    kafka_settings,
    load,
)

MIGRATIONS = Path(__file__).parent / "migrations"


async def prepare(kafka: KafkaSettings, database: DatabaseSettings) -> None:
    conn = await asyncpg.connect(database.url)
    try:
        await db.prepare(conn, "attribution", MIGRATIONS, database)
    finally:
        await conn.close()
    if kafka.create_topics:
        await ensure_topics(kafka)


def main() -> None:
    streaming.bound_native_memory()
    try:
        settings = load(AttributionSettings, "ATTRIBUTION_")
        check_keys(settings.api_keys, KEYS_VARIABLE)
    except SettingsError as exc:
        raise SystemExit(f"attribution: {exc}") from None
    logs.configure("attribution", settings.log_level)
    kafka, database = kafka_settings(), database_settings()
    asyncio.run(prepare(kafka, database))
    app = create_worker(settings, kafka, database)
    weekly.schedule(app, settings, database)
    streaming.run(app, settings.log_level)


if __name__ == "__main__":
    main()
