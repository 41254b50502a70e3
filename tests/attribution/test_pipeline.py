"""The whole pipeline: events POSTed to the real ingest service, through the real broker,
consumed by the real attribution worker into a real PostgreSQL, read back from its API.

The hand-written scenario is fed in two halves with the worker killed (SIGKILL, no clean
shutdown) in between; after the restart every `/v1` answer equals the values computed by hand,
every recognition id was emitted, and a poison record went to the dead-letter topic without
stopping the stream."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ripples import stack
from services.attribution import queries
from shared import sealing
from shared.cloudevents import InvalidEvent, to_kafka
from shared.events import Envelope, RecognitionDueEvent
from shared.kafka import ensure_topics
from shared.settings import KafkaSettings
from shared.streaming import decode
from tests.attribution import scenario
from tests.attribution.conftest import answers, envelopes, feed
from tests.conftest import API_KEYS, AUTH, READER_KEY, Running, start_broker, start_service

pytestmark = pytest.mark.integration

PERIODS = (
    queries.Period(),
    queries.Period(*(datetime.fromisoformat(t) for t in scenario.PERIOD)),
)
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
    async with httpx.AsyncClient(base_url=address, headers=AUTH, timeout=10) as client:
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


async def recognitions(
    bootstrap: str, ingest: str, ids: set[str], timeout_s: float = 30
) -> dict[str, tuple[bytes | None, Envelope, str | None]]:
    """{recognition id: (kafka key, event, the applicant's kid when sealed)} of ``ids`` on
    ripples.recognitions, each sealed record opened with ``ingest``'s key API as the notifier
    opens it (docs/security.md "Topics"); fails if any is missing after ``timeout_s``."""
    consumer = AIOKafkaConsumer(
        "ripples.recognitions",
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    client = sealing.KeyClient(ingest, READER_KEY)
    await consumer.start()
    found: dict[str, tuple[bytes | None, Envelope, str | None]] = {}
    try:
        async with asyncio.timeout(timeout_s):
            while not ids <= found.keys():
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    openings = await sealing.open_records(records, client)
                    for index, record in enumerate(records):
                        opening = openings.get(index)
                        try:
                            event = decode(opening if opening is not None else record)
                        except InvalidEvent:  # another test's poison on the shared topic
                            continue
                        rid = getattr(event.data, "recognition_id", None)
                        if rid in ids:
                            found[rid] = (record.key, event, opening.kid if opening else None)
    except TimeoutError:
        pytest.fail(f"never on ripples.recognitions: {sorted(ids - found.keys())}")
    finally:
        await consumer.stop()
        await client.aclose()
    return found


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
            # valid for the contract, refused by PostgreSQL (text cannot hold NUL)
            nul = scenario.click("L-zz", "v\u0000", "2026-06-11T00:00:00Z")
            key, value, headers = to_kafka(envelopes([nul])[0])
            await producer.send_and_wait("ripples.links", value, key=key, headers=headers)
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

        found = await recognitions(broker.address, ingest.address, scenario.RECOGNITION_IDS)
        hires = [kid for rid, (_, _, kid) in found.items() if rid.startswith("hire:")]
        assert hires, "no hire recognition"
        assert all(hires), "a hire recognition was sent unsealed"
        for key, event, kid in found.values():
            assert isinstance(event, RecognitionDueEvent)
            assert key == event.data.employee_id.encode()
            # a hire of an applicant ingest sealed names its kid on the topic (the id sealed)
            on_topic = f"hire:{event.data.employee_id}:{kid}"
            assert event.id == (on_topic if kid else event.data.recognition_id)
            assert "ap" not in msgspec.json.encode(event.data.facts).decode()
        async with httpx.AsyncClient(base_url=worker.address, headers=AUTH) as client:
            metrics = (await client.get("/metrics")).text
            problem = await client.get("/v1/summary?model=nope")
        assert problem.status_code == 422
        assert problem.headers["content-type"] == "application/problem+json"
        assert 'attribution_dead_letters_total{reason="invalid_event"} 1.0' in metrics
        assert 'attribution_dead_letters_total{reason="processing_error"} 1.0' in metrics
        stored = (
            'attribution_events_processed_total{outcome="stored",type="ripples.link.clicked.v1"}'
        )
        assert stored in metrics
    finally:
        worker.stop()


async def test_shuffled_duplicated_events_into_a_fresh_stack_give_the_same_bytes(
    postgres: Running, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # the reference: the events in their written order, through the storage and query layers
    await feed(pool, envelopes(scenario.EVENTS))
    paths = [
        "/v1/summary?model=linear",
        f"/v1/summary?from={scenario.PERIOD[0]}&to={scenario.PERIOD[1]}&model=time_decay",
        "/v1/sharers?model=position_based",
        "/v1/sharers/amb1?model=first_touch",
        *(f"/v1/conversions/ap{i}" for i in range(1, 6)),
        "/v1/ripples",
    ]
    reference = await answers(pool, [f"ap{i}" for i in range(1, 6)], ["amb1"], PERIODS)

    # a fresh stack: its own broker and database; the same events shuffled, with duplicates
    rng = random.Random(4)
    shuffled = [*scenario.EVENTS, *rng.sample(scenario.EVENTS, 10)]
    rng.shuffle(shuffled)
    broker = start_broker(tmp_path / "broker")
    name = f"fresh_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres.address)
    await admin.execute(f'create database "{name}"')
    await admin.close()
    database = postgres.address.rsplit("/", 1)[0] + f"/{name}"
    worker = None
    try:
        await ensure_topics(KafkaSettings(bootstrap_servers=broker.address))
        producer = AIOKafkaProducer(bootstrap_servers=broker.address)
        await producer.start()
        try:
            for raw in envelopes(shuffled):
                key, value, headers = to_kafka(raw)
                await producer.send(raw.topic.name, value, key=key, headers=headers)
            await producer.flush()
        finally:
            await producer.stop()
        worker = start_service("attribution", tmp_path / "w", broker, DATABASE_URL=database,
                               **FAST)  # fmt: skip
        summary = await eventually(worker.address, paths[0], scenario.SUMMARY_ALL_LINEAR)
        assert summary == scenario.SUMMARY_ALL_LINEAR
        async with httpx.AsyncClient(base_url=worker.address, headers=AUTH) as client:
            got = {path: (await client.get(path)).content for path in paths}
    finally:
        if worker is not None:
            worker.stop()
        broker.stop()
    assert got[paths[0]] == reference["summary:{'from': None, 'to': None}:linear"]
    period = f"{{'from': '{scenario.PERIOD[0]}', 'to': '{scenario.PERIOD[1]}'}}"
    assert got[paths[1]] == reference[f"summary:{period}:time_decay"]
    assert got[paths[2]] == reference["sharers:{'from': None, 'to': None}:position_based"]
    one = orjson.loads(reference["sharer:amb1:{'from': None, 'to': None}:first_touch"])
    assert got[paths[3]] == orjson.dumps(one[0])
    for i in range(1, 6):
        assert got[f"/v1/conversions/ap{i}"] == reference[f"conversion:ap{i}"]
    assert got["/v1/ripples"] == reference["ripples"]
