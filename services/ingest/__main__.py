"""``python -m services.ingest``: run the ingest API."""

from __future__ import annotations

import uvicorn

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared import logs
from shared.settings import SettingsError, database_settings, kafka_settings, load


def main() -> None:
    try:
        settings = load(IngestSettings, "INGEST_")
        logs.configure("ingest", settings.log_level)
        app = create_app(settings, kafka_settings(), database_settings())
    except SettingsError as exc:
        raise SystemExit(f"ingest: {exc}") from None
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
