"""``kill -9`` of the notifier while a hundred deliveries are in flight.

A local webhook receiver answers the first deliveries at once and then holds every request
without answering, so that when the notifier is SIGKILLed about a hundred requests are open
at the receiver (httpx's pool allows 100 connections) and more attempts are recorded as
begun in the ledger with no result. The notifier is restarted with the same database and
consumer group; the receiver answers 200 from then on.

Every recognition must be delivered; a recognition delivered twice was one in flight at the
kill, and both requests carry the same idempotency key (``X-Ripples-Recognition-Id``) and
the same signed body; the ledger holds one row per recognition, ``sent``, and records the
interrupted attempt. Every recognition event is also published twice (the attribution
outbox is at-least-once): the ledger still has one row each."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shared.kafka import ensure_topics
from shared.settings import KafkaSettings
from tests.attribution.test_pipeline import kill
from tests.conftest import FAST_GROUP, Running, fresh_database, start_service
from tests.notifier.conftest import SECRET, employee_event, produce, recognition_event
from tests.notifier.peers import Answer, HttpPeer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

EMPLOYEES = 150
PER_EMPLOYEE = 2  # recognitions per employee: one employee's deliveries go one at a time
ANSWERED_FIRST = 40  # requests answered before the receiver starts holding them
ENV = {
    "NOTIFIER_WEBHOOK_SECRET": SECRET,
    "NOTIFIER_DISPATCH_INTERVAL_S": "0.2",
    "NOTIFIER_DISPATCH_BATCH": "1000",
    # the attempt deadline (shorter than the lease) must let the held requests stay open
    # until the kill; after the restart the claims come back when their lease runs out
    "NOTIFIER_CLAIM_LEASE_S": "40",
    "NOTIFIER_ATTEMPT_DEADLINE_S": "35",
    "NOTIFIER_EMPLOYEE_RECHECK_S": "120",  # only the employee records wake the deliveries
    "NOTIFIER_BATCH_SIZE": "2000",
    "NOTIFIER_BATCH_WITHIN_S": "1",
    "NOTIFIER_REQUEST_TIMEOUT_S": "60",
    "NOTIFIER_CHANNEL_CONCURRENCY": "1000",
    "NOTIFIER_CHANNEL_RATE_PER_S": "10000",
    "NOTIFIER_CHANNEL_BURST": "10000",
    "LOG_LEVEL": "WARNING",
} | FAST_GROUP


@pytest.fixture
async def receiver() -> AsyncIterator[HttpPeer]:
    peer = HttpPeer()
    await peer.start()
    yield peer
    for gate in peer.gates:
        gate.set()
    await peer.stop()


async def ledger(database: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database)
    try:
        return list(
            await conn.fetch(
                "select recognition_id, status, attempts, last_error, in_flight "
                "from notifier_deliveries"
            )
        )
    finally:
        await conn.close()


async def test_kill_9_with_a_hundred_deliveries_in_flight(
    postgres: Running, fresh_broker: Running, receiver: HttpPeer, tmp_path: Path
) -> None:
    await ensure_topics(KafkaSettings(bootstrap_servers=fresh_broker.address))
    receiver.script = [Answer() for _ in range(ANSWERED_FIRST)]
    receiver.default = Answer(hold=True)
    people = [f"kill-{i:03d}" for i in range(EMPLOYEES)]
    recognitions = [
        recognition_event(
            f"first_post:{p}" if k == 0 else f"hire:{p}:ap-{k}",
            p,
            "first_post" if k == 0 else "hire",
        )
        for p in people
        for k in range(PER_EMPLOYEE)
    ]
    ids = {r.data.recognition_id for r in recognitions}
    async with fresh_database(postgres, "notifier_kill") as database:
        notifier = start_service(
            "notifier", tmp_path / "notifier", fresh_broker, DATABASE_URL=database, **ENV
        )
        try:
            # the recognitions first (each twice, as an at-least-once outbox may send them):
            # they wait for their employees' records, which then wake them all at once
            await produce(fresh_broker, [*recognitions, *recognitions])
            deadline = time.monotonic() + 60
            while len(await ledger(database)) < len(ids) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert len(await ledger(database)) == len(ids)
            await produce(
                fresh_broker,
                [employee_event(p, "webhook", f"{receiver.url}/hooks/{p}") for p in people],
            )

            # wait until a hundred requests are open at the receiver, then kill -9. The
            # dispatcher waits for what it claimed before it claims more: if the employee
            # records came in two batches, its first claim may hold fewer than a hundred, so
            # when the requests stop coming, those are answered and the rest is claimed.
            released = 0
            seen, grown = 0, time.monotonic()
            deadline = time.monotonic() + 60
            while receiver.in_flight < 100 and time.monotonic() < deadline:
                if len(receiver.requests) != seen:
                    seen, grown = len(receiver.requests), time.monotonic()
                elif time.monotonic() - grown > 3:
                    for gate in receiver.gates[released:]:
                        gate.set()
                    released, grown = len(receiver.gates), time.monotonic()
                await asyncio.sleep(0.05)
            state = Counter((r["status"], r["in_flight"]) for r in await ledger(database))
            assert receiver.in_flight >= 100, (len(receiver.requests), receiver.in_flight, state)
            open_at_kill = receiver.in_flight
            kill(notifier)
            # the held requests are those after the first answered ones (the gates follow
            # them in arrival order), less any answered above
            held = {
                r.json()["recognition_id"] for r in receiver.requests[ANSWERED_FIRST + released :]
            }
            before_kill = {r.json()["recognition_id"] for r in receiver.requests}
            at_kill = await ledger(database)
            begun = sum(1 for row in at_kill if row["in_flight"])
            recorded = {row["recognition_id"] for row in at_kill if row["status"] == "sent"}
            receiver.default = Answer()
            for gate in receiver.gates:
                gate.set()  # the killed process's connections are gone: nobody reads these
            await asyncio.to_thread(notifier.start)  # same database, same consumer group

            deadline = time.monotonic() + 90
            rows = await ledger(database)
            while time.monotonic() < deadline:
                rows = await ledger(database)
                if len(rows) == len(ids) and all(r["status"] == "sent" for r in rows):
                    break
                await asyncio.sleep(0.5)
        finally:
            notifier.stop()

    # one ledger row per recognition, every one sent: none lost, none doubled
    assert sorted(r["recognition_id"] for r in rows) == sorted(ids)
    assert Counter(r["status"] for r in rows) == {"sent": len(ids)}
    # every recognition reached the receiver; every request carries its key and is signed
    sent: dict[str, list[Any]] = defaultdict(list)
    for request in receiver.requests:
        body = request.json()
        assert request.headers["x-ripples-recognition-id"] == body["recognition_id"]
        expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        assert request.headers["x-ripples-signature"] == f"sha256={expected}"
        sent[body["recognition_id"]].append(request)
    assert set(sent) == ids
    # a repeat only for a delivery sent before the kill whose result was not recorded (every
    # one held open at the receiver, and any answered but not yet recorded), never for one
    # recorded as sent; once, with the same key and body
    repeated = {rid for rid, requests in sent.items() if len(requests) > 1}
    assert held <= repeated
    assert repeated <= before_kill - recorded
    assert all(len(sent[rid]) == 2 for rid in repeated)
    assert all(sent[rid][0].body == sent[rid][1].body for rid in repeated)
    # the ledger records each interrupted attempt
    interrupted = {
        r["recognition_id"]
        for r in rows
        if r["last_error"] == f"interrupted: no result recorded for attempt {r['attempts'] - 1}"
    }
    assert repeated <= interrupted
    assert all(r["attempts"] == 1 + (r["recognition_id"] in interrupted) for r in rows)
    print(
        f"\nnotifier kill -9 figures: {len(ids)} recognitions (each published twice), "
        f"{open_at_kill} requests open at the receiver and {begun} attempts begun without a "
        f"result at the kill ({len(recorded)} recorded as sent before it), "
        f"{len(repeated)} delivered twice with the same key "
        f"({len(repeated - held)} of them answered but not yet recorded at the kill), "
        f"{len(interrupted)} interrupted attempts in the ledger, {len(rows)} ledger rows, "
        f"{len(ids - set(sent))} lost ({released} held requests answered early to let the "
        "dispatcher claim more)"
    )
