"""A broker that goes away mid-run: ingest answers 503 with Retry-After (never 202 for an
event the broker did not acknowledge, never 500), and 202s resume by themselves when a broker
is back on the same address."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import orjson
import pytest

from tests import samples
from tests.conftest import API_KEYS, Running, read_events, start_broker, start_service

pytestmark = pytest.mark.integration

HEADERS = {"Content-Type": "application/cloudevents+json", "Authorization": f"Bearer {API_KEYS[0]}"}


async def _post(client: httpx.AsyncClient, event: dict[str, object]) -> httpx.Response:
    return await client.post("/v1/events", content=orjson.dumps(event), headers=HEADERS)


async def _until(condition: Callable[[], Awaitable[bool]], timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not await condition():
            await asyncio.sleep(0.1)


async def test_broker_outage_gives_503_then_recovers(
    fresh_broker: Running, postgres: Running, tmp_path: Path
) -> None:
    ingest = start_service(
        "ingest",
        tmp_path / "ingest",
        fresh_broker,
        DATABASE_URL=postgres.address,
        INGEST_PUBLISH_TIMEOUT_S="2",
        INGEST_RETRY_AFTER_S="3",
        KAFKA_REQUEST_TIMEOUT_S="2",
    )
    try:
        async with httpx.AsyncClient(base_url=ingest.address, timeout=30) as client:
            before = samples.event("ripples.applicant.applied.v1")
            assert (await _post(client, before)).status_code == 202

            fresh_broker.stop()

            # While it is away, events are refused with 503, never accepted, never a 500.
            async def refused() -> bool:
                return (
                    await _post(client, samples.event("ripples.applicant.hired.v1"))
                ).status_code == 503

            await _until(refused)
            statuses = []
            for _ in range(10):
                response = await _post(client, samples.event("ripples.applicant.hired.v1"))
                statuses.append(response.status_code)
                if response.status_code == 503:
                    assert response.headers["retry-after"] == "3"
                    assert response.headers["content-type"] == "application/problem+json"
            assert set(statuses) == {503}
            batch = [samples.event("ripples.applicant.hired.v1") for _ in range(5)]
            response = await client.post(
                "/v1/events:batch",
                content=orjson.dumps(batch),
                headers=HEADERS | {"Content-Type": "application/cloudevents-batch+json"},
            )
            assert response.status_code == 503
            assert (await client.get("/readyz")).status_code == 503
            assert (await client.get("/livez")).status_code == 200

            # A broker comes back on the same address (the local broker forgets its log).
            fresh_broker.start()

            async def ready() -> bool:
                return (await client.get("/readyz")).status_code == 200

            await _until(ready)
            after = [samples.event("ripples.applicant.applied.v1") for _ in range(5)]
            for event in after:
                assert (await _post(client, event)).status_code == 202
            found = await read_events(
                fresh_broker.address, "ripples.applicants", {str(e["id"]) for e in after}
            )
            assert len(found) == len(after)

            metrics = (await client.get("/metrics")).text
            assert (
                'ingest_events_rejected_total{reason="broker_unavailable",'
                'type="ripples.applicant.hired.v1"}'
            ) in metrics
    finally:
        ingest.stop()


async def test_ingest_starts_without_a_broker_and_connects_later(
    postgres: Running, tmp_path: Path
) -> None:
    absent = start_broker(tmp_path / "broker", start=False)
    ingest = start_service(
        "ingest", tmp_path / "ingest", absent, wait_ready=False, DATABASE_URL=postgres.address
    )
    try:
        async with httpx.AsyncClient(base_url=ingest.address, timeout=10) as client:
            # The service comes up (live) although no broker answers; it is not ready.
            async def live() -> bool:
                try:
                    return (await client.get("/livez")).status_code == 200
                except httpx.TransportError:
                    return False

            await _until(live)
            assert (await client.get("/readyz")).status_code == 503
            assert (
                await _post(client, samples.event("ripples.link.clicked.v1"))
            ).status_code == 503

            absent.start()

            async def ready() -> bool:
                return (await client.get("/readyz")).status_code == 200

            await _until(ready)
            event = samples.event("ripples.link.clicked.v1")
            assert (await _post(client, event)).status_code == 202
            await read_events(absent.address, "ripples.links", {str(event["id"])})
    finally:
        ingest.stop()
        absent.stop()
