"""The three services as real processes (real broker, real PostgreSQL), each with its own
database and the test key, for the conformance suite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import API_KEYS, Running, fresh_database, start_service

ROOT = Path(__file__).parents[2]
SERVICES = ("ingest", "attribution", "notifier")
AUTH = {"Authorization": f"Bearer {API_KEYS[0]}"}
KEYS = {f"{name.upper()}_API_KEYS": ",".join(API_KEYS) for name in SERVICES}
FAST = {
    "KAFKA_SESSION_TIMEOUT_S": "6",
    "KAFKA_REBALANCE_TIMEOUT_S": "6",
    "KAFKA_HEARTBEAT_INTERVAL_S": "1",
    "NOTIFIER_WEBHOOK_SECRET": "conformance-webhook-secret",
    "INGEST_LINK_ALLOWED_HOSTS": "careers.example.com",
    "ATTRIBUTION_REPORT_LINK_SECRET": "conformance-report-link-secret",
}


def document(service: str) -> Path:
    return ROOT / "services" / service / "openapi.json"


@pytest.fixture(scope="package")
async def databases(postgres: Running) -> AsyncIterator[dict[str, str]]:
    async with (
        fresh_database(postgres, "conf_ingest") as ingest,
        fresh_database(postgres, "conf_attribution") as attribution,
        fresh_database(postgres, "conf_notifier") as notifier,
    ):
        yield {"ingest": ingest, "attribution": attribution, "notifier": notifier}


@pytest.fixture(scope="package")
def services(
    broker: Running, databases: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Running]]:
    """{name: the running service}, all three started with the test keys."""
    running: dict[str, Running] = {}
    try:
        for name in SERVICES:
            running[name] = start_service(
                name,
                tmp_path_factory.mktemp(f"conformance-{name}"),
                broker,
                DATABASE_URL=databases[name],
                **KEYS,
                **FAST,
            )
        yield running
    finally:
        for service in running.values():
            service.stop()
