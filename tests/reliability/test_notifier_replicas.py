"""Two notifier replicas on one database and a slow receiver: one send per recognition id
(issue 14 part 4, CONTRACT §6 "one message per id, ever").

Each employee's claimed deliveries are sent one after the other; the receiver takes
``SLOW_S`` to answer each, so the last of an employee's deliveries begins well after the
claim lease (``LEASE_S``) of the claim that took them all has run out — the other replica
sees them as free and claims them. Without a claim token checked by every later step both
replicas would send those. With it, the step whose claim was lost does nothing: every
recognition reaches the receiver exactly once, and every ledger row is ``sent``.

Both processes are the real notifier (``python -m services.notifier``) in one consumer group
on a broker of this test's own, with the real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from shared.kafka import ensure_topics
from shared.settings import KafkaSettings
from tests.conftest import FAST_GROUP, Running, fresh_database, start_service
from tests.notifier.conftest import SECRET, employee_event, produce, recognition_event
from tests.notifier.peers import Answer, HttpPeer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

EMPLOYEES = 8
PER_EMPLOYEE = 5
SLOW_S = 0.7  # the receiver's answer time
LEASE_S = 2.0  # < PER_EMPLOYEE x SLOW_S: an employee's later rows outlast their claim
ENV = {
    "NOTIFIER_WEBHOOK_SECRET": SECRET,
    "NOTIFIER_DISPATCH_INTERVAL_S": "0.1",
    "NOTIFIER_CLAIM_LEASE_S": str(LEASE_S),
    "NOTIFIER_ATTEMPT_DEADLINE_S": "1.5",
    "NOTIFIER_REQUEST_TIMEOUT_S": "5",
    "NOTIFIER_CHANNEL_CONCURRENCY": "100",
    "NOTIFIER_CHANNEL_RATE_PER_S": "1000",
    "NOTIFIER_CHANNEL_BURST": "1000",
    "NOTIFIER_BACKOFF_BASE_S": "0.1",
    "NOTIFIER_BACKOFF_MAX_S": "0.5",
    "LOG_LEVEL": "WARNING",
} | FAST_GROUP


@pytest.fixture
async def receiver() -> AsyncIterator[HttpPeer]:
    peer = HttpPeer()
    peer.default = Answer(delay_s=SLOW_S)
    await peer.start()
    yield peer
    await peer.stop()


async def ledger(database: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database)
    try:
        return list(await conn.fetch("select recognition_id, status from notifier_deliveries"))
    finally:
        await conn.close()


async def claims_lost(replica: Running) -> float:
    """``notifier_claims_lost_total`` of a replica (0 where the metric does not exist)."""
    async with httpx.AsyncClient(base_url=replica.address, timeout=5) as client:
        text = (await client.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith("notifier_claims_lost_total "):
            return float(line.split()[1])
    return 0.0


async def test_two_replicas_and_a_slow_receiver_send_each_recognition_once(
    postgres: Running, fresh_broker: Running, receiver: HttpPeer, tmp_path: Path
) -> None:
    await ensure_topics(KafkaSettings(bootstrap_servers=fresh_broker.address))
    people = [f"replica-{i}" for i in range(EMPLOYEES)]
    recognitions = [
        recognition_event(f"hire:{p}:ap-{k}", p, "hire")
        for p in people
        for k in range(PER_EMPLOYEE)
    ]
    ids = {r.data.recognition_id for r in recognitions}
    async with fresh_database(postgres, "notifier_replicas") as database:
        replicas = [
            start_service(
                "notifier", tmp_path / f"notifier-{n}", fresh_broker, DATABASE_URL=database, **ENV
            )
            for n in (1, 2)
        ]
        try:
            # the recognitions wait for their employees' records, which then wake them all
            await produce(fresh_broker, recognitions)
            deadline = time.monotonic() + 60
            while len(await ledger(database)) < len(ids) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert len(await ledger(database)) == len(ids)
            started = time.monotonic()
            await produce(
                fresh_broker, [employee_event(p, "webhook", f"{receiver.url}/{p}") for p in people]
            )
            deadline = time.monotonic() + 120
            rows = await ledger(database)
            while time.monotonic() < deadline:
                rows = await ledger(database)
                if all(r["status"] == "sent" for r in rows):
                    break
                await asyncio.sleep(0.3)
            elapsed = time.monotonic() - started
            # let any late second send arrive before counting
            await asyncio.sleep(LEASE_S + 1)
            lost = sum([await claims_lost(replica) for replica in replicas])
        finally:
            for replica in replicas:
                replica.stop()
    received = Counter(r.json()["recognition_id"] for r in receiver.requests)
    twice = sorted(rid for rid, n in received.items() if n > 1)
    print(
        f"\nnotifier replicas figures: {len(ids)} recognitions, 2 replicas, lease {LEASE_S} s, "
        f"receiver {SLOW_S} s per answer, {sum(received.values())} requests received, "
        f"{len(twice)} recognitions received more than once, all sent after {elapsed:.1f} s, "
        f"{lost:.0f} claims taken over by the other replica before the send (not sent twice)"
    )
    assert Counter(r["status"] for r in rows) == {"sent": len(ids)}
    assert twice == []
    assert set(received) == ids
    # the race happened: some claims ran out and were taken over
    assert lost > 0
