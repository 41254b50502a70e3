"""PostgreSQL stopped under load: the attribution and notifier workers keep running, turn
``/readyz`` false while it is away, and once it is back every ``/v1`` answer equals the
hand-computed one, every event is stored once and every recognition has exactly one ledger
row — though the events were sent as a storm of duplicates, some during the outage.

(kill -9 restarts, shuffled and duplicated replays, broker outages and webhook failures have
their own tests: see docs/reliability.md.)"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared.cloudevents import to_kafka
from shared.kafka import ensure_topics
from shared.settings import KafkaSettings
from tests.attribution import scenario
from tests.attribution.conftest import envelopes
from tests.attribution.test_pipeline import FAST, eventually, poll
from tests.conftest import Running, new_database, start_service

pytestmark = pytest.mark.integration

COPIES = 10  # every event is sent this many times


async def _send(producer: AIOKafkaProducer, events: list[dict[str, Any]]) -> None:
    for event in envelopes(events):
        key, value, headers = to_kafka(event)
        await producer.send(event.topic.name, value, key=key, headers=headers)
    await producer.flush()


async def _ready(address: str) -> int | None:
    async with httpx.AsyncClient(timeout=5) as client:
        try:
            return (await client.get(f"{address}/readyz")).status_code
        except httpx.TransportError:
            return None


async def test_postgres_outage_under_load(
    own_broker: Running, own_postgres: Running, tmp_path: Path
) -> None:
    await ensure_topics(KafkaSettings(bootstrap_servers=own_broker.address))
    env = FAST | {"NOTIFIER_WEBHOOK_SECRET": "outage-webhook", "NOTIFIER_MAX_ATTEMPTS": "2"}
    attribution = start_service(
        "attribution",
        tmp_path / "attribution",
        own_broker,
        DATABASE_URL=await new_database(own_postgres, "outage_attribution"),
        **env,
    )
    notifier = start_service(
        "notifier",
        tmp_path / "notifier",
        own_broker,
        DATABASE_URL=await new_database(own_postgres, "outage_notifier"),
        **env,
    )
    producer = AIOKafkaProducer(bootstrap_servers=own_broker.address, linger_ms=5)
    await producer.start()
    try:
        storm = [e for e in scenario.EVENTS for _ in range(COPIES)]
        random.Random(9).shuffle(storm)  # duplicates and every order (the rules allow it)
        half = len(storm) // 2
        await _send(producer, storm[:half])
        stored = await poll(attribution.address, "/v1/summary?model=linear", lambda a: a)
        assert stored, "the first half was never stored"

        own_postgres.stop()
        await _send(producer, storm[half:])  # load keeps arriving while PostgreSQL is away
        for service in (attribution, notifier):
            status = await poll(service.address, "/readyz", lambda a: a == 503, timeout_s=30)
            assert status == 503, f"{service.address}/readyz stayed {status} without PostgreSQL"
        await asyncio.sleep(2)  # some retries against the absent database
        for service in (attribution, notifier):
            assert service.component.running(service.state), "a worker died with PostgreSQL"
        await asyncio.to_thread(own_postgres.start)  # Postgres.start runs its own loop

        for service in (attribution, notifier):
            assert await poll(service.address, "/readyz", lambda a: a != 503, timeout_s=30) != 503
        summary = "/v1/summary?model=linear"
        assert await eventually(attribution.address, summary, scenario.SUMMARY_ALL_LINEAR) == (
            scenario.SUMMARY_ALL_LINEAR
        )
        for path, expected in (
            ("/v1/sharers?model=linear", scenario.SHARERS_ALL_LINEAR),
            ("/v1/conversions/ap1", scenario.CONVERSION_AP1),
            ("/v1/conversions/ap2", scenario.CONVERSION_AP2),
            ("/v1/conversions/ap5", scenario.CONVERSION_AP5),
            ("/v1/ripples", scenario.RIPPLES),
        ):
            assert await eventually(attribution.address, path, expected, timeout_s=10) == expected

        conn = await asyncpg.connect(attribution.env["DATABASE_URL"])
        try:
            events = await conn.fetchval("select count(*) from attribution.events")
        finally:
            await conn.close()
        # each (source, id) stored once, whatever the copies (the scenario repeats one itself)
        assert events == len({(e["source"], e["id"]) for e in scenario.EVENTS})

        conn = await asyncpg.connect(notifier.env["DATABASE_URL"])
        try:
            for _ in range(60):  # the recognitions reach the ledger (bounded)
                ledger = await conn.fetch("select recognition_id from notifier_deliveries")
                if len(ledger) >= len(scenario.RECOGNITION_IDS):
                    break
                await asyncio.sleep(0.5)
        finally:
            await conn.close()
        ids = [row["recognition_id"] for row in ledger]
        assert sorted(ids) == sorted(scenario.RECOGNITION_IDS)  # none lost, none doubled
    finally:
        await producer.stop()
        notifier.stop()
        attribution.stop()
        if not own_postgres.component.running(own_postgres.state):
            await asyncio.to_thread(own_postgres.start)


async def test_undecodable_records_are_dead_lettered_not_fatal(
    own_broker: Running, own_postgres: Running, tmp_path: Path
) -> None:
    """Records with invalid UTF-8 (in a ce_* header, or inside a string of the value) raised
    UnicodeDecodeError out of ``from_kafka``, which the workers do not catch; now they are
    dead-lettered and the stream goes on."""
    await ensure_topics(KafkaSettings(bootstrap_servers=own_broker.address))
    attribution = start_service(
        "attribution",
        tmp_path / "attribution",
        own_broker,
        DATABASE_URL=await new_database(own_postgres, "poison_attribution"),
        **FAST,
    )
    producer = AIOKafkaProducer(bootstrap_servers=own_broker.address)
    await producer.start()
    try:
        click = scenario.click("L-zz", "visitor-1", "2026-06-11T00:00:00Z")
        key, value, headers = to_kafka(envelopes([click])[0])
        bad_header = [(k, b"\xff\xfe" if k == "ce_id" else v) for k, v in headers]
        bad_value = value.replace(b"visitor-1", b"visitor-\xc3\x28")
        await producer.send_and_wait("ripples.links", value, key=key, headers=bad_header)
        await producer.send_and_wait("ripples.links", bad_value, key=key, headers=headers)
        good = scenario.click("L-zz", "visitor-2", "2026-06-11T00:00:01Z") | {"id": "after"}
        await _send(producer, [good])

        async with httpx.AsyncClient(timeout=5) as client:
            metrics = ""
            for _ in range(60):
                metrics = (await client.get(f"{attribution.address}/metrics")).text
                if 'outcome="stored",type="ripples.link.clicked.v1"} 1.0' in metrics:
                    break
                await asyncio.sleep(0.5)
        assert 'attribution_dead_letters_total{reason="invalid_event"} 2.0' in metrics
        assert 'outcome="stored",type="ripples.link.clicked.v1"} 1.0' in metrics
        assert attribution.component.running(attribution.state)
    finally:
        await producer.stop()
        attribution.stop()
