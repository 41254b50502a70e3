"""Fixtures for the reliability tests: ingest with every connector configured (so the fuzz
reaches the signature checks), its own database, and the helpers the tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest

from tests.conftest import API_KEYS, Running, start_service

SECRETS = {
    "INGEST_APPLICANT_ID_SECRET": "reliability-applicant-secret",
    "INGEST_GREENHOUSE_SECRET_KEY": "reliability-greenhouse-secret",
    "INGEST_TEAMTAILOR_SIGNATURE_KEY": "reliability-teamtailor-key",
    "INGEST_LEVER_SIGNATURE_TOKEN": "reliability-lever-token",
    "INGEST_LEVER_API_KEY": "reliability-lever-api-key",
    "INGEST_LINKEDIN_CLIENT_SECRET": "reliability-linkedin-secret",
    # The LinkedIn connect flow (without it its routes answer 503 "not configured").
    "INGEST_LINKEDIN_CLIENT_ID": "reliability-linkedin-client",
    "INGEST_CONNECT_SECRET": "reliability-connect-secret",
    "INGEST_TOKEN_KEYS": "cmVsaWFiaWxpdHktdG9rZW4ta2V5LTMyLWJ5dGVzLTA",
    # The employee's page (without it page-links answers 503 "not configured").
    "INGEST_PAGE_LINK_SECRETS": "reliability-page-secret",
}
AUTH = {"Authorization": f"Bearer {API_KEYS[0]}"}


def problem(response: httpx.Response, status: int | None = None) -> dict[str, object]:
    """Assert ``response`` is a 4xx problem+json (of ``status`` when given); its body."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if status is not None:
        assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body: dict[str, object] = response.json()
    assert body["status"] == response.status_code
    assert {"type", "title", "detail"} <= body.keys()
    return body


@pytest.fixture(scope="module")
async def ingest_db(postgres: Running) -> AsyncIterator[str]:
    name = "reliability_ingest"
    admin = await asyncpg.connect(postgres.address)
    await admin.execute(f'drop database if exists "{name}" with (force)')
    await admin.execute(f'create database "{name}"')
    await admin.close()
    return postgres.address.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="module")
def armed_ingest(
    broker: Running, ingest_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """Ingest with every connector configured and links allowed to one host."""
    running = start_service(
        "ingest",
        tmp_path_factory.mktemp("ingest"),
        broker,
        DATABASE_URL=ingest_db,
        INGEST_LINK_ALLOWED_HOSTS="careers.example.com",
        # the company page too: without it a page invitation answers 503 "not configured"
        INGEST_LINKEDIN_ORGANIZATION_URN="urn:li:organization:2414183",
        **SECRETS,
    )
    yield running
    running.stop()
