"""The notifier as a process (``python -m services.notifier``) against the real broker and
PostgreSQL, delivering to a local webhook receiver: duplicates and restarts, retries seen in
the metrics, a kill -9 between sending and recording, poison records, and the API."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.notifier.openapi import openapi
from shared.cloudevents import from_kafka, to_kafka
from shared.events import Envelope, RecognitionFacts
from tests.conftest import AUTH, Running, start_service
from tests.notifier.conftest import SECRET, employee_event, recognition_event
from tests.notifier.peers import Answer, HttpPeer

pytestmark = pytest.mark.integration

ENV = {
    "NOTIFIER_WEBHOOK_SECRET": SECRET,
    "NOTIFIER_DISPATCH_INTERVAL_S": "0.2",
    "NOTIFIER_BACKOFF_BASE_S": "0.05",
    "NOTIFIER_BACKOFF_MAX_S": "0.2",
    "NOTIFIER_CLAIM_LEASE_S": "4",
    "NOTIFIER_ATTEMPT_DEADLINE_S": "3",
    "NOTIFIER_EMPLOYEE_RECHECK_S": "1",
    "NOTIFIER_REQUEST_TIMEOUT_S": "5",
    "KAFKA_SESSION_TIMEOUT_S": "6",
    "KAFKA_REBALANCE_TIMEOUT_S": "6",
}


@pytest.fixture(scope="module")
def notifier(
    broker: Running, notifier_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    running = start_service(
        "notifier", tmp_path_factory.mktemp("notifier"), broker, DATABASE_URL=notifier_db, **ENV
    )
    yield running
    running.stop()


async def publish(producer: AIOKafkaProducer, *events: Envelope) -> None:
    for event in events:
        key, value, headers = to_kafka(event)
        await producer.send_and_wait(event.topic.name, value, key=key, headers=headers)


async def ledger(notifier: Running, employee_id: str) -> dict[str, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=notifier.address, headers=AUTH, timeout=5) as client:
        response = await client.get("/v1/recognitions", params={"employee_id": employee_id})
    assert response.status_code == 200
    return {row["recognition_id"]: row for row in response.json()}


async def settled(
    notifier: Running, employee_id: str, recognition_id: str, timeout_s: float = 30
) -> dict[str, Any]:
    """The ledger row once it left `pending` (bounded wait)."""
    deadline = time.monotonic() + timeout_s
    row: dict[str, Any] = {}
    while time.monotonic() < deadline:
        row = (await ledger(notifier, employee_id)).get(recognition_id, {})
        if row.get("status") not in (None, "pending"):
            return row
        await asyncio.sleep(0.2)
    pytest.fail(f"{recognition_id} never settled: {row}")


async def metric(notifier: Running, name: str, **labels: str) -> float:
    async with httpx.AsyncClient(base_url=notifier.address, timeout=5) as client:
        text = (await client.get("/metrics")).text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def signed(request: Any) -> bool:
    expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    return bool(request.headers["x-ripples-signature"] == f"sha256={expected}")


async def restart(notifier: Running, kill: bool = False) -> None:
    if kill:
        pid = notifier.state.read_pid(notifier.component.name)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
    await asyncio.to_thread(notifier.stop)
    await asyncio.to_thread(notifier.start)


async def test_ten_duplicates_with_a_restart_deliver_once(
    notifier: Running, producer: AIOKafkaProducer, peer: HttpPeer
) -> None:
    await publish(producer, employee_event("svc-1", "webhook", f"{peer.url}/in", locale="da"))
    rid = "reach_milestone:svc-1:10000"
    await publish(producer, *(recognition_event(rid, "svc-1") for _ in range(5)))
    (first,) = await peer.wait_for(1)
    await restart(notifier)
    sentinel = "first_post:svc-1"
    await publish(producer, *(recognition_event(rid, "svc-1") for _ in range(5)))
    await publish(producer, recognition_event(sentinel, "svc-1", "first_post"))
    requests = await peer.wait_for(2)
    await settled(notifier, "svc-1", sentinel)
    # Everything before the sentinel on the partition was consumed: still one message for rid.
    assert [r.json()["recognition_id"] for r in requests] == [rid, sentinel]
    assert signed(first)
    body = first.json()
    assert body["locale"] == "da"
    assert "har nu været vist 10.000 gange" in body["text"]
    row = (await ledger(notifier, "svc-1"))[rid]
    assert row == {
        "recognition_id": rid,
        "kind": "reach_milestone",
        "employee_id": "svc-1",
        "status": "sent",
        "channel": "webhook",
        "attempts": 1,
        "sent_at": row["sent_at"],
        "due_at": "2026-06-01T09:00:00+00:00",
        "digest_id": None,
        "reason": None,
    }
    assert row["sent_at"] is not None
    # Addresses (webhook URLs are credentials) and message texts never reach the logs.
    log = notifier.state.log_file(notifier.component.name).read_text()
    assert peer.url not in log
    assert "Mette" not in log


async def test_503_three_times_then_200_shows_in_the_metrics(
    notifier: Running, producer: AIOKafkaProducer, peer: HttpPeer
) -> None:
    peer.script = [Answer(503), Answer(503), Answer(503)]
    attempts = await metric(notifier, "notifier_delivery_attempts_total", channel="webhook")
    sent = await metric(notifier, "notifier_deliveries_total", channel="webhook", outcome="sent")
    await publish(producer, employee_event("svc-2", "webhook", peer.url))
    await publish(producer, recognition_event("first_post:svc-2", "svc-2", "first_post"))
    row = await settled(notifier, "svc-2", "first_post:svc-2")
    assert (row["status"], row["attempts"]) == ("sent", 4)
    assert len(peer.requests) == 4
    assert all(signed(r) for r in peer.requests)
    assert await metric(notifier, "notifier_delivery_attempts_total", channel="webhook") == (
        attempts + 4
    )
    assert await metric(
        notifier, "notifier_deliveries_total", channel="webhook", outcome="sent"
    ) == (sent + 1)
    assert await metric(notifier, "notifier_queue_depth") >= 0


async def test_kill_between_send_and_record_repeats_once_with_the_same_key(
    notifier: Running, producer: AIOKafkaProducer, peer: HttpPeer, notifier_db: str
) -> None:
    # The receiver takes the first request and never answers: the notifier has sent, and has
    # not recorded the result, when it is killed.
    peer.script = [Answer(hang=True)]
    await publish(producer, employee_event("svc-3", "webhook", peer.url))
    rid = "hire:svc-3:applicant-1"
    await publish(producer, recognition_event(rid, "svc-3", "hire"))
    await peer.wait_for(1)
    await restart(notifier, kill=True)
    peer.release.set()
    requests = await peer.wait_for(2)
    row = await settled(notifier, "svc-3", rid)
    assert [r.headers["x-ripples-recognition-id"] for r in requests] == [rid, rid]
    assert requests[0].body == requests[1].body
    assert row["status"] == "sent"
    assert row["attempts"] == 2
    assert row["reason"] is None
    conn = await asyncpg.connect(notifier_db)
    try:
        detail = await conn.fetchval(
            "select last_error from notifier_deliveries where recognition_id = $1", rid
        )
    finally:
        await conn.close()
    assert detail == "interrupted: no result recorded for attempt 1"
    assert len(peer.requests) == 2


async def dead_letter(broker: Running, key: bytes) -> Any:
    """The first record with ``key`` on the dead-letter topic (bounded wait)."""
    consumer = AIOKafkaConsumer(
        "ripples.deadletter", bootstrap_servers=broker.address, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            while True:
                record = await consumer.getone()
                if record.key == key:
                    return record
    finally:
        await consumer.stop()


async def test_refused_delivery_fails_and_dead_letters_the_recognition(
    notifier: Running, producer: AIOKafkaProducer, peer: HttpPeer, broker: Running
) -> None:
    peer.default = Answer(400)
    employee = f"svc-{uuid.uuid4().hex[:6]}"
    await publish(producer, employee_event(employee, "webhook", peer.url))
    event = recognition_event(f"first_post:{employee}", employee, "first_post")
    await publish(producer, event)
    row = await settled(notifier, employee, f"first_post:{employee}")
    assert (row["status"], row["attempts"], row["reason"]) == ("failed", 1, "rejected")
    record = await dead_letter(broker, employee.encode())
    decoded = from_kafka(record.headers, record.value)
    assert decoded == event
    headers = dict(record.headers)
    assert headers["x-ripples-error"] == b"refused: http_400"
    assert headers["x-ripples-consumer"] == b"notifier"
    assert await metric(notifier, "notifier_dead_letters_total", reason="delivery_failed") >= 1


async def test_poison_record_is_dead_lettered(
    notifier: Running, producer: AIOKafkaProducer, broker: Running
) -> None:
    key = f"poison-{uuid.uuid4().hex[:8]}".encode()
    await producer.send_and_wait(
        "ripples.recognitions",
        b"not json",
        key=key,
        headers=[("ce_type", b"ripples.recognition.due.v1"), ("ce_id", b"x")],
    )
    record = await dead_letter(broker, key)
    headers = dict(record.headers)
    assert record.value == b"not json"
    assert headers["x-ripples-consumer"] == b"notifier"
    assert headers["x-ripples-topic"] == b"ripples.recognitions"
    assert headers["x-ripples-error"].startswith(b"invalid_event: ")


async def test_data_the_database_refuses_is_dead_lettered_and_the_rest_stored(
    notifier: Running, producer: AIOKafkaProducer, peer: HttpPeer, broker: Running
) -> None:
    employee = f"svc-{uuid.uuid4().hex[:6]}"
    await publish(producer, employee_event(employee, "webhook", peer.url))
    bad = recognition_event(
        f"inspired_colleague:{employee}:x",
        employee,
        "inspired_colleague",
        RecognitionFacts(colleague_id="nul \u0000 byte"),
    )
    good = recognition_event(f"first_post:{employee}", employee, "first_post")
    await publish(producer, bad, good)
    row = await settled(notifier, employee, f"first_post:{employee}")
    assert row["status"] == "sent"
    record = await dead_letter(broker, employee.encode())
    assert from_kafka(record.headers, record.value) == bad
    assert dict(record.headers)["x-ripples-error"].startswith(
        b"invalid_event: database refused it: "
    )
    assert list(await ledger(notifier, employee)) == [f"first_post:{employee}"]


async def test_api_surface(notifier: Running, producer: AIOKafkaProducer, peer: HttpPeer) -> None:
    for employee in ("api-1", "api-2"):
        await publish(producer, employee_event(employee, "webhook", peer.url))
        await publish(producer, recognition_event(f"first_post:{employee}", employee, "first_post"))
        await settled(notifier, employee, f"first_post:{employee}")
    async with httpx.AsyncClient(base_url=notifier.address, headers=AUTH, timeout=5) as client:
        everyone = await client.get("/v1/recognitions", params={"limit": "500"})
        assert everyone.status_code == 200
        ids = [row["recognition_id"] for row in everyone.json()]
        assert {"first_post:api-1", "first_post:api-2"} <= set(ids)
        assert len(ids) == len(set(ids))
        one = (await client.get("/v1/recognitions", params={"limit": "1"})).json()
        assert one == everyone.json()[:1]
        unknown = await client.get("/v1/recognitions", params={"employee_id": "nobody"})
        assert (unknown.status_code, unknown.json()) == (200, [])
        ready = await client.get("/readyz")
        assert ready.json() == {
            "status": "ready",
            "checks": {"database": "ok", "partitions": "ok"},
        }
        assert (await client.get("/livez")).status_code == 200
        assert (await client.get("/openapi.json")).json() == openapi()
        text = (await client.get("/metrics")).text
    for name in (
        "notifier_deliveries_total",
        "notifier_delivery_attempts_total",
        "notifier_delivery_latency_seconds",
        "notifier_queue_depth",
        "notifier_consumer_lag_messages",
        "notifier_dead_letters_total",
        "notifier_http_requests_total",
    ):
        assert name in text


REASONS = {"opted_out", "channel_none", "no_notify", "stale", "address_not_allowed", "rejected",
           "too_large", "server_error", "rate_limited", "timeout", "connection_error",
           "interrupted", "max_attempts"}  # fmt: skip
FIELDS = {"recognition_id", "kind", "employee_id", "status", "channel", "attempts", "sent_at",
          "due_at", "digest_id", "reason"}  # fmt: skip


async def test_recognitions_in_pages_with_closed_reasons(
    notifier: Running, producer: AIOKafkaProducer, peer: HttpPeer
) -> None:
    """Everyone's ledger a page at a time (limit ≤ 500, the next page in a Link header, the
    body still the contract's list); reasons from the closed set, no raw error text."""
    employee = f"page-{uuid.uuid4().hex[:6]}"
    opted = f"page-{uuid.uuid4().hex[:6]}"
    await publish(producer, employee_event(employee, "webhook", peer.url))
    await publish(producer, employee_event(opted, "webhook", peer.url, opt_out=True))
    mine = [f"hire:{employee}:ap-{n}" for n in range(7)]
    await publish(producer, *(recognition_event(rid, employee, "hire") for rid in mine))
    await publish(producer, recognition_event(f"first_post:{opted}", opted, "first_post"))
    for rid in mine:
        await settled(notifier, employee, rid)
    row = await settled(notifier, opted, f"first_post:{opted}")
    assert (row["status"], row["reason"]) == ("suppressed", "opted_out")
    async with httpx.AsyncClient(base_url=notifier.address, headers=AUTH, timeout=5) as client:
        # one employee's rows, three at a time
        pages, url = [], f"/v1/recognitions?employee_id={employee}&limit=3"
        while url:
            response = await client.get(url)
            assert response.status_code == 200, response.text
            pages.append([r["recognition_id"] for r in response.json()])
            link = response.headers.get("link")
            url = link.split(">", 1)[0].lstrip("<") if link else ""
            if link:
                assert link.endswith('>; rel="next"')
        assert [len(p) for p in pages] == [3, 3, 1]
        assert sorted(rid for page in pages for rid in page) == sorted(mine)
        # everyone's, two at a time: every row once, in the order of one big page
        whole = (await client.get("/v1/recognitions", params={"limit": "500"})).json()
        assert len(whole) <= 500
        seen: list[dict[str, Any]] = []
        url = "/v1/recognitions?limit=2"
        while url:
            response = await client.get(url)
            seen += response.json()
            link = response.headers.get("link")
            url = link.split(">", 1)[0].lstrip("<") if link else ""
        assert [r["recognition_id"] for r in seen] == [r["recognition_id"] for r in whole]
        assert all(set(r) == FIELDS for r in seen)
        assert {r["reason"] for r in seen} <= REASONS | {None}
        # bad parameters: 422 problem+json naming the parameter
        bad = [
            ("employee_id", ""), ("employee_id", "a\x00b"), ("employee_id", "a\nb"),
            ("employee_id", "x" * 257), ("limit", ""), ("limit", "0"), ("limit", "501"),
            ("limit", "ten"), ("limit", "1\x00"), ("limit", "١٠"), ("cursor", ""),
            ("cursor", "garbage"), ("cursor", "a\x00"), ("cursor", "WyJ4IiwieSJd"),
        ]  # fmt: skip
        for field, value in bad:
            refused = await client.get("/v1/recognitions", params={field: value})
            assert refused.status_code == 422, (field, value, refused.status_code)
            assert refused.headers["content-type"] == "application/problem+json"
            assert [e["field"] for e in refused.json()["errors"]] == [field], (field, value)


def test_committed_openapi_is_current() -> None:
    committed = json.loads(
        (Path(__file__).parents[2] / "services/notifier/openapi.json").read_text()
    )
    assert committed == openapi()
