"""Each service's route table, read from the app the service builds (nothing is started, no
request is served): the one discovery the access tests (tests/security/test_access.py) and the
document-completeness test (tests/conformance/test_routes.py) share, so a route added later is
checked by both without anyone remembering to list it."""

from __future__ import annotations

import asyncpg
from starlette.routing import Route

from services.attribution.api import create_api as attribution_api
from services.attribution.settings import AttributionSettings
from services.ingest.app import create_app as ingest_app
from services.ingest.settings import IngestSettings
from services.notifier.api import create_api as notifier_api
from shared.settings import DatabaseSettings, KafkaSettings
from tests.conftest import API_KEYS

SERVICES = ("ingest", "attribution", "notifier")


async def _no_pool() -> asyncpg.Pool:
    raise AssertionError("the route table is read, no request is served")


async def _ready() -> dict[str, bool]:
    return {}


def route_table(service: str) -> list[Route]:
    """The routes of ``service``'s app, built the way the service builds it (nothing started)."""
    if service == "ingest":
        settings = IngestSettings(api_keys=API_KEYS)
        return list(ingest_app(settings, KafkaSettings(), DatabaseSettings()).app.routes)
    if service == "attribution":
        settings = AttributionSettings(api_keys=API_KEYS)
        return list(attribution_api(_no_pool, _ready, settings).routes)
    return list(notifier_api(lambda: None, _ready, API_KEYS).routes)
