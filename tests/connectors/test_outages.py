"""Outages. A broker that goes away while visitors click: the redirects keep working, the
clicks wait in the bounded buffer and reach Kafka when the broker is back, and what the buffer
cannot hold is counted, never lost silently. A database that goes away: cached links still
redirect, everything else answers 503, never 500."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from shared.events import LinkClickedEvent
from tests.conftest import Running, start_service
from tests.connectors.conftest import ALLOWED_HOSTS, AUTH, metric, wait_for

pytestmark = pytest.mark.integration


async def test_clicks_survive_a_broker_outage(
    fresh_broker: Running, database: str, tmp_path: Path
) -> None:
    ingest = start_service(
        "ingest",
        tmp_path / "ingest",
        fresh_broker,
        DATABASE_URL=database,
        INGEST_LINK_ALLOWED_HOSTS=ALLOWED_HOSTS,
        INGEST_PUBLIC_BASE_URL="https://go.example.com",
        INGEST_CLICK_BUFFER_SIZE="3",
        INGEST_PUBLISH_TIMEOUT_S="2",
        KAFKA_REQUEST_TIMEOUT_S="2",
    )
    try:
        async with httpx.AsyncClient(base_url=ingest.address, timeout=30) as http:
            created = await http.post(
                "/v1/links", json={"target_url": "https://careers.example.com/"}, headers=AUTH
            )
            assert created.status_code == 201, created.text
            code = created.json()["link_code"]
            first = await http.get(f"/r/{code}")
            # An https public address makes the visitor cookie Secure.
            assert "secure" in first.headers["set-cookie"].lower()

            fresh_broker.stop()

            async def broker_down() -> bool:
                return (await http.get("/readyz")).json()["checks"]["broker"] == "failing"

            async with asyncio.timeout(30):
                while not await broker_down():
                    await asyncio.sleep(0.1)

            # Five visitors while the broker is away: every one is redirected.
            for _ in range(5):
                http.cookies.clear()
                response = await http.get(f"/r/{code}")
                assert response.status_code == 302
                assert response.headers["location"].startswith("https://careers.example.com/")
            text = (await http.get("/metrics")).text
            assert metric(text, "ingest_click_buffer_depth") == 3
            assert metric(text, "ingest_clicks_dropped_total", reason="buffer_full") == 2

            fresh_broker.start()
            # The three buffered clicks reach the (fresh, in-memory) broker once it is back.
            clicks = await wait_for(
                fresh_broker.address,
                "ripples.links",
                lambda e: isinstance(e, LinkClickedEvent) and e.data.link_code == code,
                count=3,
                timeout_s=60,
            )
            assert len(clicks) == 3
            assert len({c.data.visitor_id for c in clicks if isinstance(c, LinkClickedEvent)}) == 3
            text = (await http.get("/metrics")).text
            assert metric(text, "ingest_click_buffer_depth") == 0
    finally:
        ingest.stop()


async def test_cached_links_redirect_while_the_database_is_away(
    broker: Running, postgres: Running, tmp_path: Path
) -> None:
    name = f"dbout_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres.address)
    await admin.execute(f'create database "{name}"')
    url = postgres.address.rsplit("/", 1)[0] + f"/{name}"
    ingest = start_service(
        "ingest",
        tmp_path / "ingest",
        broker,
        DATABASE_URL=url,
        INGEST_LINK_ALLOWED_HOSTS=ALLOWED_HOSTS,
        INGEST_APPLICANT_ID_SECRET="s",
        INGEST_GREENHOUSE_SECRET_KEY="k",
    )
    try:
        async with httpx.AsyncClient(base_url=ingest.address, timeout=30) as http:
            created = await http.post(
                "/v1/links", json={"target_url": "https://careers.example.com/"}, headers=AUTH
            )
            cached = created.json()["link_code"]
            conn = await asyncpg.connect(url)
            await conn.execute(
                "insert into ingest_links (link_code, target_url) values ('NotCached001', $1)",
                "https://careers.example.com/",
            )
            await conn.close()

            await admin.execute(f'drop database "{name}" with (force)')

            # A link in memory still redirects; one that is not answers 503, never 500.
            assert (await http.get(f"/r/{cached}")).status_code == 302
            missing = await http.get("/r/NotCached001")
            assert missing.status_code == 503
            assert missing.headers["content-type"] == "application/problem+json"
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"] == "failing"
            created = await http.post(
                "/v1/links", json={"target_url": "https://careers.example.com/"}, headers=AUTH
            )
            assert created.status_code == 503
            body = b'{"action":"ping"}'
            signature = "sha256 " + hmac.new(b"k", body, hashlib.sha256).hexdigest()
            hook = await http.post(
                "/v1/webhooks/greenhouse", content=body, headers={"Signature": signature}
            )
            assert hook.status_code == 503
    finally:
        ingest.stop()
        await admin.close()
