"""The whole pipeline: events POSTed to the real ingest service, through the real broker,
consumed by the real attribution worker into a real PostgreSQL, read back from its API.

The hand-written scenario is fed in two halves with the worker killed (SIGKILL, no clean
shutdown) in between; after the restart every `/v1` answer equals the values computed by hand,
every recognition id was emitted, and a poison record went to the dead-letter topic without
stopping the stream."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from aiokafka import AIOKafkaProducer

from ripples import stack
from shared.events import RecognitionDueEvent
from tests.attribution import scenario
from tests.conftest import API_KEYS, Running, read_events, start_service

pytestmark = pytest.mark.integration

FAST = {
    "KAFKA_SESSION_TIMEOUT_S": "6",
    "KAFKA_REBALANCE_TIMEOUT_S": "6",
    "KAFKA_HEARTBEAT_INTERVAL_S": "1",
    "ATTRIBUTION_BATCH_WITHIN_S": "0.1",
}


async def post_events(ingest: Running, events: list[dict[str, Any]], chunk: int = 7) -> None:
    headers = {
        "Authorization": f"Bearer {API_KEYS[0]}",
        "Content-Type": "application/cloudevents-batch+json",
    }
    async with httpx.AsyncClient(base_url=ingest.address, headers=headers, timeout=15) as client:
        for start in range(0, len(events), chunk):
            response = await client.post("/v1/events:batch", json=events[start : start + chunk])
            assert response.status_code == 202, response.text


async def poll(address: str, path: str, done: Callable[[Any], bool], timeout_s: float = 60) -> Any:
    """GET ``path`` until ``done(answer)`` (bounded); return the last answer (the JSON body,
    or the status code when it is not 200)."""
    last: Any = None
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=address, timeout=10) as client:
        while True:
            try:
                response = await client.get(path)
                last = response.json() if response.status_code == 200 else response.status_code
            except httpx.TransportError:
                last = None
            if done(last) or time.monotonic() > deadline:
                return last
            await asyncio.sleep(0.3)


async def eventually(address: str, path: str, expected: Any, timeout_s: float = 60) -> Any:
    return await poll(address, path, lambda answer: answer == expected, timeout_s)


def kill(service: Running) -> None:
    pid = service.state.read_pid(service.component.name)
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    stack.stop_pid(pid, service.component.marker)


async def test_scenario_through_the_pipeline_with_a_restart(
    broker: Running, ingest: Running, database: str, tmp_path: Path
) -> None:
    worker = start_service("attribution", tmp_path, broker, DATABASE_URL=database, **FAST)
    try:
        half = len(scenario.EVENTS) // 2
        await post_events(ingest, scenario.EVENTS[:half])
        # wait until the first half is stored (A1 is in it), then kill the worker
        first_half = await poll(worker.address, "/v1/sharers/amb1", lambda a: a != 404)
        assert isinstance(first_half, dict), first_half
        kill(worker)

        await post_events(ingest, scenario.EVENTS[half:])
        producer = AIOKafkaProducer(bootstrap_servers=broker.address)
        await producer.start()
        try:
            await producer.send_and_wait(
                "ripples.links",
                b"{not json",
                key=b"poison",
                headers=[("ce_type", b"ripples.link.clicked.v1"), ("ce_id", b"p1")],
            )
        finally:
            await producer.stop()
        worker.start()

        summary = "/v1/summary?model=linear"
        assert await eventually(worker.address, summary, scenario.SUMMARY_ALL_LINEAR) == (
            scenario.SUMMARY_ALL_LINEAR
        )
        period = f"/v1/summary?from={scenario.PERIOD[0]}&to={scenario.PERIOD[1]}&model=first_touch"
        assert await eventually(worker.address, period, scenario.SUMMARY_PERIOD_FIRST_TOUCH) == (
            scenario.SUMMARY_PERIOD_FIRST_TOUCH
        )
        for path, expected in (
            ("/v1/sharers?model=linear", scenario.SHARERS_ALL_LINEAR),
            ("/v1/sharers/c1?model=linear", scenario.SHARERS_ALL_LINEAR[2]),
            ("/v1/conversions/ap1", scenario.CONVERSION_AP1),
            ("/v1/conversions/ap2", scenario.CONVERSION_AP2),
            ("/v1/conversions/ap5", scenario.CONVERSION_AP5),
            ("/v1/ripples", scenario.RIPPLES),
            ("/v1/conversions/nobody", 404),
            ("/v1/sharers/nobody", 404),
        ):
            assert await eventually(worker.address, path, expected, timeout_s=10) == expected

        found = await read_events(broker.address, "ripples.recognitions", scenario.RECOGNITION_IDS)
        for key, event in found.values():
            assert isinstance(event, RecognitionDueEvent)
            assert key == event.data.employee_id.encode()
            assert event.id == event.data.recognition_id
            assert "ap" not in msgspec.json.encode(event.data.facts).decode()
        async with httpx.AsyncClient(base_url=worker.address) as client:
            metrics = (await client.get("/metrics")).text
            problem = await client.get("/v1/summary?model=nope")
        assert problem.status_code == 422
        assert problem.headers["content-type"] == "application/problem+json"
        assert 'attribution_dead_letters_total{reason="invalid_event"} 1.0' in metrics
        stored = (
            'attribution_events_processed_total{outcome="stored",type="ripples.link.clicked.v1"}'
        )
        assert stored in metrics
    finally:
        worker.stop()
