"""The connector tests' fixtures, for the attacks on webhooks and links: an ingest with every
vendor secret and the link allow-list set, its own database, the local Lever API, a client."""

from tests.connectors.conftest import connectors, http, ingest_db, lever_api

__all__ = ["connectors", "http", "ingest_db", "lever_api"]
