"""Sealed records into attribution (issue 14, crypto-shredding; docs/security.md "Topics"):
the real ingest seals an employee's personal fields and an applicant's id; attribution asks
it for the keys (``shared.sealing.KeyClient``) before decoding a batch.

- ingest away (stopped, its port closed) is transient: the batch is retried, nothing is
  stored, nothing acknowledged, nothing dead-lettered; once ingest is back the same records
  are opened and stored as sent;
- a sealed member that does not open (tampered) is poison: that one record is dead-lettered
  with the reason and the rest go on;
- a plaintext record beside them is decoded as before.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from shared import sealing
from tests import samples
from tests.conftest import AUTH, READER_KEY, Running, fresh_database, records_of, start_service

pytestmark = pytest.mark.integration

BATCH = AUTH | {"Content-Type": "application/cloudevents-batch+json"}
FAST = {"ATTRIBUTION_BATCH_WITHIN_S": "0.05", "ATTRIBUTION_EVIDENCE_REFRESH_S": "0"}


@contextlib.asynccontextmanager
async def databases(postgres: Running) -> AsyncIterator[tuple[str, str]]:
    async with (
        fresh_database(postgres, "sealed_ingest") as ingest,
        fresh_database(postgres, "sealed_attribution") as attribution,
    ):
        yield ingest, attribution


async def _post(ingest: Running, events: list[dict[str, Any]]) -> None:
    async with httpx.AsyncClient(base_url=ingest.address, timeout=30) as client:
        response = await client.post(
            "/v1/events:batch", content=orjson.dumps(events), headers=BATCH
        )
    assert response.status_code == 202, response.text


async def _employee(url: str, employee_id: str) -> asyncpg.Record | None:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchrow(
            "select display_name, notify, linkedin_member_urn, ambassador "
            "from attribution.employees where employee_id = $1",
            employee_id,
        )
    finally:
        await conn.close()


async def _until(check: Any, timeout_s: float = 60) -> Any:
    async with asyncio.timeout(timeout_s):
        while not (found := await check()):
            await asyncio.sleep(0.3)
    return found


def _upsert(employee_id: str, name: str) -> dict[str, Any]:
    return samples.event(
        "ripples.employee.upserted.v1",
        {
            "employee_id": employee_id,
            "display_name": name,
            "ambassador": True,
            "notify": {"channel": "webhook", "address": f"https://hooks.example.com/{name}"},
            "linkedin_member_urn": f"urn:li:person:{employee_id}",
        },
        time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    )


async def test_ingest_away_is_retried_and_a_tampered_seal_is_dead_lettered(
    own_broker: Running, postgres: Running, tmp_path: Path
) -> None:
    async with databases(postgres) as (ingest_db, attribution_db):
        ingest = start_service("ingest", tmp_path / "ingest", own_broker, DATABASE_URL=ingest_db)
        try:
            await _post(ingest, [_upsert("seal-emp-1", "Astrid Sealed")])
            sealed = [
                r
                for r in await records_of(own_broker.address, "ripples.employees")
                if r.value and b'"sealed"' in r.value
            ]
            assert sealed, "ingest published nothing sealed"
            ingest.stop()  # its port closed: the key API unreachable

            # the tampered copy of the sealed record (another employee, the same sealed
            # member with one bit of its ciphertext flipped) and a plaintext upsert
            data = orjson.loads(sealed[0].value)
            ct = data["sealed"]["ct"]
            data["sealed"]["ct"] = ("B" if ct[0] != "B" else "C") + ct[1:]
            data["employee_id"] = "seal-emp-tampered"
            headers = [(k, v) for k, v in sealed[0].headers if k != "ce_id"]
            headers.append(("ce_id", b"tampered-1"))
            plain = _upsert("seal-emp-plain", "Bo Plain")
            producer = AIOKafkaProducer(bootstrap_servers=own_broker.address)
            await producer.start()
            try:
                await producer.send_and_wait(
                    "ripples.employees",
                    orjson.dumps(data),
                    key=b"seal-emp-tampered",
                    headers=headers,
                )
                value = orjson.dumps({k: v for k, v in plain.items() if k == "data"}["data"])
                await producer.send_and_wait(
                    "ripples.employees",
                    value,
                    key=b"seal-emp-plain",
                    headers=[
                        ("ce_specversion", b"1.0"),
                        ("ce_id", plain["id"].encode()),
                        ("ce_source", plain["source"].encode()),
                        ("ce_type", b"ripples.employee.upserted.v1"),
                        ("ce_time", plain["time"].encode()),
                        ("content-type", b"application/json"),
                    ],
                )
            finally:
                await producer.stop()

            worker = start_service(
                "attribution",
                tmp_path / "attribution",
                own_broker,
                DATABASE_URL=attribution_db,
                ATTRIBUTION_INGEST_URL=ingest.address,
                ATTRIBUTION_INGEST_API_KEY=READER_KEY,
                **FAST,
            )
            try:
                await asyncio.sleep(8)  # batches tried while ingest is away
                assert await _employee(attribution_db, "seal-emp-1") is None
                assert await _employee(attribution_db, "seal-emp-plain") is None, (
                    "a batch was applied in part while its keys could not be had"
                )
                dead = await records_of(own_broker.address, "ripples.deadletter")
                assert dead == [], "a record was dead-lettered while ingest was away"

                ingest.start()  # the same port: the key API is back
                row = await _until(lambda: _employee(attribution_db, "seal-emp-1"))
                assert row["display_name"] == "Astrid Sealed"
                assert orjson.loads(row["notify"])["address"].endswith("/Astrid Sealed")
                assert row["linkedin_member_urn"] == "urn:li:person:seal-emp-1"
                plain_row = await _until(lambda: _employee(attribution_db, "seal-emp-plain"))
                assert plain_row["display_name"] == "Bo Plain"
                assert await _employee(attribution_db, "seal-emp-tampered") is None
                dead = await _until(lambda: _dead_letters(own_broker.address), timeout_s=30)
                assert [dict(r.headers)["x-ripples-error"] for r in dead] == [
                    b"sealed: sealed does not open with the key of its kid"
                ]
            finally:
                worker.stop()
        finally:
            ingest.stop()


async def _dead_letters(bootstrap: str) -> list[Any]:
    return await records_of(bootstrap, "ripples.deadletter")


def test_without_a_key_service_a_sealed_record_is_poison() -> None:
    """No ingest URL configured: a sealed record cannot be opened and is dead-lettered with
    that reason (the stream goes on); a record without ``"sealed"`` is not even parsed."""

    class Record:
        def __init__(self, value: bytes) -> None:
            self.value = value
            self.headers = [("ce_type", b"ripples.employee.upserted.v1")]

    kid, key = sealing.new_key()
    sealed = {"employee_id": "e1", "sealed": sealing.seal(kid, key, {"display_name": "X"})}
    records = [Record(b'{"employee_id":"e2","display_name":"Y"}'), Record(orjson.dumps(sealed))]
    openings = asyncio.run(sealing.open_records(records, None))
    assert list(openings) == [1]
    assert openings[1].poison == "no key service configured"
    assert openings[1].kid == kid


async def test_a_hire_recognition_dead_lettered_by_the_notifier_stays_sealed(
    own_broker: Running, postgres: Running, tmp_path: Path
) -> None:
    """A sealed hire recognition (as attribution sends it: the applicant's kid in the id, the
    contract's id sealed) whose delivery fails goes to the dead-letter topic as it came:
    sealed, no applicant id in its value or headers. Failed before: the notifier
    dead-lettered it with the contract's id (``hire:{employee}:{applicant}``) in the clear."""
    real_applicant = "apl-sealed-dead-letter"
    async with (
        fresh_database(postgres, "sealed_dl_ingest") as ingest_db,
        fresh_database(postgres, "sealed_dl_notifier") as notifier_db,
    ):
        ingest = start_service("ingest", tmp_path / "ingest", own_broker, DATABASE_URL=ingest_db)
        try:
            applied = samples.event(
                "ripples.applicant.applied.v1",
                {"applicant_id": real_applicant, "job_id": "job-1", "applied_at": _now()},
            )
            await _post(ingest, [applied])
            client = sealing.KeyClient(ingest.address, READER_KEY)
            try:
                records = await records_of(own_broker.address, "ripples.applicants")
                openings = await sealing.open_records(records, client)
                (kid,) = {o.kid for o in openings.values() if o.kid}
                key = (await client.keys([kid]))[kid]
            finally:
                await client.aclose()
            assert key is not None

            employee = "emp-sealed-dl"
            contract_id = f"hire:{employee}:{real_applicant}"
            on_topic = f"hire:{employee}:{kid}"
            value = orjson.dumps(
                {
                    "recognition_id": on_topic,
                    "kind": "hire",
                    "employee_id": employee,
                    "due_at": _now(),
                    "facts": {"job_id": "job-1"},
                    "sealed": sealing.seal(kid, key, {"recognition_id": contract_id}),
                }
            )
            upsert = _upsert(employee, "Dora Deadletter")
            upsert["data"]["notify"]["address"] = "http://127.0.0.1:9/refused"
            producer = AIOKafkaProducer(bootstrap_servers=own_broker.address)
            await producer.start()
            try:
                await producer.send_and_wait(
                    "ripples.employees",
                    orjson.dumps(upsert["data"]),
                    key=employee.encode(),
                    headers=_headers(upsert),
                )
                await producer.send_and_wait(
                    "ripples.recognitions",
                    value,
                    key=employee.encode(),
                    headers=_headers(
                        {
                            "id": on_topic,
                            "source": "urn:ripples:attribution",
                            "type": "ripples.recognition.due.v1",
                            "time": _now(),
                        }
                    ),
                )
            finally:
                await producer.stop()
            notifier = start_service(
                "notifier",
                tmp_path / "notifier",
                own_broker,
                DATABASE_URL=notifier_db,
                NOTIFIER_MAX_ATTEMPTS="1",
                NOTIFIER_DISPATCH_INTERVAL_S="0.2",
            )
            try:
                dead = await _until(lambda: _recognition_dead_letters(own_broker.address))
            finally:
                notifier.stop()
        finally:
            ingest.stop()
    (record,) = dead
    blob = (record.value or b"") + b"".join(v for _, v in record.headers)
    assert real_applicant.encode() not in blob, "the applicant id is on the dead-letter topic"
    assert dict(record.headers)["ce_id"] == on_topic.encode()
    data = orjson.loads(record.value)
    assert data["recognition_id"] == on_topic
    assert sealing.open_sealed(key, data["sealed"]) == {"recognition_id": contract_id}


async def _recognition_dead_letters(bootstrap: str) -> list[Any]:
    return [
        r
        for r in await _dead_letters(bootstrap)
        if dict(r.headers).get("ce_type") == b"ripples.recognition.due.v1"
    ]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _headers(event: dict[str, Any]) -> list[tuple[str, bytes]]:
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", event["id"].encode()),
        ("ce_source", event["source"].encode()),
        ("ce_type", event["type"].encode()),
        ("ce_time", event["time"].encode()),
        ("content-type", b"application/json"),
    ]
