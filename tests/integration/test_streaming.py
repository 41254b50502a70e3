"""The shared faust pieces against the real broker: batches with CloudEvents headers, a
poison record dead-lettered with its reason, an API served from the worker's loop, and a
clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.cloudevents import parse_structured, to_kafka
from shared.kafka import ensure_topics
from shared.settings import KafkaSettings
from shared.streaming import broker_urls, dead_letter_headers
from tests import samples
from tests.conftest import Running, free_port

pytestmark = pytest.mark.integration


def test_broker_urls() -> None:
    assert broker_urls("a:1, b:2,") == ["kafka://a:1", "kafka://b:2"]


def test_dead_letter_headers_keep_the_event_and_say_why() -> None:
    headers = dead_letter_headers("attribution", "bad", "ripples.links", 3, 42, {"ce_id": b"e1"})
    assert headers == {
        "ce_id": b"e1",
        "x-ripples-error": b"bad",
        "x-ripples-consumer": b"attribution",
        "x-ripples-topic": b"ripples.links",
        "x-ripples-partition": b"3",
        "x-ripples-offset": b"42",
    }


async def test_worker_consumes_dead_letters_and_serves(broker: Running, tmp_path: Path) -> None:
    settings = KafkaSettings(bootstrap_servers=broker.address)
    await ensure_topics(settings)
    port = free_port()
    env = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": broker.address,
        "PROBE_PORT": str(port),
        "KAFKA_SESSION_TIMEOUT_S": "6",
        "KAFKA_REBALANCE_TIMEOUT_S": "6",
    }
    log = (tmp_path / "probe.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.faust_probe"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).parents[2],
    )
    try:
        events = [
            parse_structured(orjson.dumps(samples.event("ripples.link.clicked.v1")))
            for _ in range(50)
        ]
        producer = AIOKafkaProducer(bootstrap_servers=broker.address)
        await producer.start()
        try:
            for event in events:
                key, value, headers = to_kafka(event)
                await producer.send("ripples.links", value, key=key, headers=headers)
            await producer.send(
                "ripples.links",
                b"not json",
                key=b"poison",
                headers=[("ce_type", b"ripples.link.clicked.v1")],
            )
            await producer.flush()
        finally:
            await producer.stop()

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            state: dict[str, object] = {}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    state = (await client.get("/state")).json()
                except httpx.TransportError:
                    state = {}
                if {e.id for e in events} <= set(state.get("ids", [])) and state.get("dead"):
                    break
                await asyncio.sleep(0.3)
            assert {e.id for e in events} <= set(state["ids"])
            assert state["dead"] == 1
            assert state["assigned"] >= 1

        consumer = AIOKafkaConsumer(
            "ripples.deadletter", bootstrap_servers=broker.address, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 20)
        finally:
            await consumer.stop()
        assert record.key == b"poison"
        assert record.value == b"not json"
        headers = dict(record.headers)
        assert headers["x-ripples-consumer"] == b"probe"
        assert b"malformed" in headers["x-ripples-error"]
        assert headers["x-ripples-topic"] == b"ripples.links"

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        log.close()
