"""Crypto-shredding, ingest's side (issue 14: no erased person's name, notify address, member
URN or applicant id in a dump of any topic): the real ingest on a real broker of this
module's own (so a dump holds only what these tests published) and a real PostgreSQL.

Employees and applicants go in through ``/v1/events:batch``; the topics are then dumped
record by record (key, value, headers) and grepped for every personal value, opened with the
key API (``POST /v1/keys:lookup``, :mod:`shared.sealing`), and erased with a grace of 0.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from aiokafka.structs import ConsumerRecord

from services.ingest.database import Database
from services.ingest.keys import KeyStore, applicant_subject
from services.ingest.tokens import TokenCipher
from shared import sealing
from shared.settings import DatabaseSettings
from tests.conftest import (
    API_KEYS,
    AUTH,
    Running,
    free_port,
    fresh_database,
    records_of,
    start_service,
)

READER_KEY = "test-key-reader"
READER = {"Authorization": f"Bearer {READER_KEY}"}
BATCH = {"Content-Type": "application/cloudevents-batch+json"}
SECRET = "sealing-test-applicant-secret"
TOKEN_KEYS = "kWJ9ypTeHBMf3GbbOb9v3AAtQ0JuMvv2k3qcDqoLL7s"
_ids = itertools.count(1)


@pytest.fixture(scope="module")
async def sealing_db(postgres: Running) -> AsyncIterator[str]:
    async with fresh_database(postgres, "sealing") as url:
        yield url


@pytest.fixture(scope="module")
def sealed_ingest(
    own_broker: Running, sealing_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    running = start_service(
        "ingest",
        tmp_path_factory.mktemp("sealed-ingest"),
        own_broker,
        DATABASE_URL=sealing_db,
        INGEST_KEY_READER_API_KEYS=READER_KEY,
        INGEST_SHRED_GRACE_S="0",
        INGEST_APPLICANT_ID_SECRET=SECRET,
        INGEST_TOKEN_KEYS=TOKEN_KEYS,
    )
    yield running
    running.stop()


def _event(event_type: str, data: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"seal-{next(_ids)}",
        "source": "urn:test:sealing",
        "type": event_type,
        "time": at.isoformat().replace("+00:00", "Z"),
        "data": data,
    }


def _upsert(employee: str, name: str, address: str, urn: str, at: datetime) -> dict[str, Any]:
    return _event(
        "ripples.employee.upserted.v1",
        {
            "employee_id": employee,
            "display_name": name,
            "ambassador": True,
            "department": "Water supply",
            "notify": {"channel": "email", "address": address},
            "linkedin_member_urn": urn,
        },
        at,
    )


def _applied(applicant: str, at: datetime) -> dict[str, Any]:
    return _event(
        "ripples.applicant.applied.v1",
        {"applicant_id": applicant, "job_id": "job-7", "applied_at": "2026-06-05T12:00:00Z"},
        at,
    )


async def _post(ingest: Running, events: list[dict[str, Any]], status: int = 202) -> None:
    async with httpx.AsyncClient(base_url=ingest.address, headers=AUTH, timeout=30) as client:
        response = await client.post(
            "/v1/events:batch", content=orjson.dumps(events), headers=BATCH
        )
    assert response.status_code == status, response.text


async def _lookup(ingest: Running, kids: list[str]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=ingest.address, headers=READER, timeout=30) as client:
        response = await client.post("/v1/keys:lookup", json={"kids": kids})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert sorted([*body["keys"], *body["shredded"]]) == sorted(set(kids))
    return body


def _blob(record: ConsumerRecord[Any, Any]) -> bytes:
    blob = (record.key or b"") + b"\n" + (record.value or b"")
    for name, value in record.headers:
        blob += b"\n" + name.encode() + b"=" + (value or b"")
    return blob


def _found(blob: bytes, values: list[str]) -> list[str]:
    return [
        v for v in values if re.search(rb"(?<![\w-])" + re.escape(v.encode()) + rb"(?![\w-])", blob)
    ]


def _by_id(records: list[ConsumerRecord[Any, Any]]) -> dict[str, ConsumerRecord[Any, Any]]:
    out = {}
    for record in records:
        ce_id = dict(record.headers).get("ce_id")
        if ce_id is not None and record.value is not None:
            out[ce_id.decode()] = record
    return out


TOPICS = ["ripples.employees", "ripples.applicants"]


async def test_a_topic_dump_holds_no_personal_value_and_the_key_api_opens_it(
    own_broker: Running, sealed_ingest: Running
) -> None:
    at = datetime(2026, 6, 1, 8, tzinfo=UTC)
    upserts = [
        _upsert("seal-e1", "Agnete Sealby", "agnete@example.com", "urn:li:person:sealA1", at),
        _upsert("seal-e2", "Bjarke Sealsen", "bjarke@example.com", "urn:li:person:sealB2", at),
    ]
    preference = _event(
        "ripples.employee.preferences.v1",
        {"employee_id": "seal-e1", "notify": {"channel": "email", "address": "a2@example.com"}},
        at + timedelta(minutes=1),
    )
    applied = _applied("cand-seal-1", at)
    hired = _event(
        "ripples.applicant.hired.v1",
        {"applicant_id": "cand-seal-1", "job_id": "job-7", "hired_at": "2026-07-01T09:00:00Z"},
        at,
    )
    other = _applied("cand-seal-2", at)
    await _post(sealed_ingest, [*upserts, preference, applied, hired, other])
    personal = [
        "Agnete Sealby",
        "agnete@example.com",
        "urn:li:person:sealA1",
        "Bjarke Sealsen",
        "bjarke@example.com",
        "urn:li:person:sealB2",
        "a2@example.com",
        "cand-seal-1",
        "cand-seal-2",
    ]

    records = await records_of(own_broker.address, TOPICS)
    left = [f"{v} in {r.topic}" for r in records for v in _found(_blob(r), personal)]
    assert not left, left

    by_id = _by_id(records)
    sent = [*upserts, preference, applied, hired, other]
    assert set(by_id) >= {e["id"] for e in sent}
    kids = {orjson.loads(by_id[e["id"]].value)["sealed"]["kid"] for e in sent}
    assert len(kids) == 4  # one key per person: two employees, two applicants
    opened = await _lookup(sealed_ingest, sorted(kids))
    assert opened["shredded"] == []
    for event in sent:
        record = by_id[event["id"]]
        data = orjson.loads(record.value)
        member = data.pop("sealed")
        if event["type"].startswith("ripples.applicant."):
            # on the topic the applicant is their kid, the record key too (one partition each)
            assert record.key == member["kid"].encode()
            assert data["applicant_id"] == member["kid"]
        key = base64.urlsafe_b64decode(opened["keys"][member["kid"]] + "=")
        restored = sealing.splice(data, sealing.open_sealed(key, member))
        if not event["type"].startswith("ripples.applicant."):
            assert record.key.startswith(event["data"]["employee_id"].encode()) or (
                record.key.startswith(b"prefs:")
            )
        for name, value in event["data"].items():
            assert restored[name] == value, (event["type"], name)
    # what stays in clear stays in clear
    upsert = orjson.loads(by_id[upserts[0]["id"]].value)
    assert upsert["employee_id"] == "seal-e1"
    assert upsert["department"] == "Water supply"
    assert upsert["notify"] == {"channel": "email"}
    assert "display_name" not in upsert
    assert "linkedin_member_urn" not in upsert


async def test_erasure_with_no_grace_shreds_and_a_later_event_gets_a_new_key(
    own_broker: Running, sealed_ingest: Running, sealing_db: str
) -> None:
    at = datetime(2026, 6, 2, 8, tzinfo=UTC)
    upsert = _upsert("seal-e3", "Cecilie Shred", "cecilie@example.com", "urn:li:person:c3", at)
    applied = _applied("cand-seal-3", at)
    await _post(sealed_ingest, [upsert, applied])
    removed = _event("ripples.employee.removed.v1", {"employee_id": "seal-e3"}, at + timedelta(1))
    erased = _event(
        "ripples.applicant.erased.v1", {"applicant_id": "cand-seal-3"}, at + timedelta(1)
    )
    await _post(sealed_ingest, [removed, erased])
    # back later: a new key each (the old one is shredded, the subject unlinked)
    again = _upsert("seal-e3", "Cecilie Shred", "cecilie@example.com", "urn:li:person:c3", at)
    again["time"] = (at + timedelta(2)).isoformat().replace("+00:00", "Z")
    reapplied = _applied("cand-seal-3", at + timedelta(2))
    await _post(sealed_ingest, [again, reapplied])

    by_id = _by_id(await records_of(own_broker.address, TOPICS))

    def kid(event: dict[str, Any]) -> str:
        value: str = orjson.loads(by_id[event["id"]].value)["sealed"]["kid"]
        return value

    assert kid(erased) == kid(applied)  # the erasure is sealed under the applicant's key
    assert orjson.loads(by_id[erased["id"]].value)["applicant_id"] == kid(applied)
    assert orjson.loads(by_id[removed["id"]].value) == {"employee_id": "seal-e3"}
    assert kid(again) != kid(upsert)
    assert kid(reapplied) != kid(applied)
    answer = await _lookup(sealed_ingest, [kid(upsert), kid(applied), kid(again), kid(reapplied)])
    assert answer["shredded"] == sorted([kid(upsert), kid(applied)])
    assert set(answer["keys"]) == {kid(again), kid(reapplied)}
    # grace 0: deleted in the erasure's transaction; no subject names the applicant id
    conn = await asyncpg.connect(sealing_db)
    try:
        rows = await conn.fetch("select kid, subject from ingest_keys")
    finally:
        await conn.close()
    assert {kid(upsert), kid(applied)}.isdisjoint(r["kid"] for r in rows)
    assert not [r for r in rows if r["subject"] and "cand-seal" in r["subject"]]
    assert applicant_subject(SECRET, "cand-seal-3") in {r["subject"] for r in rows}


async def test_an_erasure_then_an_event_in_one_batch_uses_the_new_key(
    own_broker: Running, sealed_ingest: Running
) -> None:
    at = datetime(2026, 6, 3, 8, tzinfo=UTC)
    first = _applied("cand-seal-4", at)
    erased = _event("ripples.applicant.erased.v1", {"applicant_id": "cand-seal-4"}, at)
    later = _applied("cand-seal-4", at + timedelta(hours=1))
    await _post(sealed_ingest, [first, erased, later])
    by_id = _by_id(await records_of(own_broker.address, ["ripples.applicants"]))
    kids = [orjson.loads(by_id[e["id"]].value)["sealed"]["kid"] for e in (first, erased, later)]
    assert kids[0] == kids[1] != kids[2]
    answer = await _lookup(sealed_ingest, kids[1:])
    assert answer["shredded"] == [kids[0]]
    assert list(answer["keys"]) == [kids[2]]


async def test_only_reader_keys_open_the_key_route(sealed_ingest: Running) -> None:
    """Before this change the route did not exist (404 for every key)."""
    kid = sealing.new_key()[0]
    async with httpx.AsyncClient(base_url=sealed_ingest.address, timeout=30) as client:
        route = "/v1/keys:lookup"
        refused = await client.post(route, json={"kids": [kid]}, headers=AUTH)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert "INGEST_KEY_READER_API_KEYS" in refused.json()["detail"]
        rotated = {"Authorization": f"Bearer {API_KEYS[1]}"}
        assert (await client.post(route, json={"kids": [kid]}, headers=rotated)).status_code == 403
        assert (await client.post(route, json={"kids": [kid]})).status_code == 401
        wrong = {"Authorization": "Bearer not-a-key"}
        assert (await client.post(route, json={"kids": [kid]}, headers=wrong)).status_code == 401
        # a reader key opens nothing else
        other = await client.post("/v1/links", json={}, headers=READER)
        assert other.status_code == 401
        served = await client.post(route, json={"kids": [kid]}, headers=READER)
        assert served.status_code == 200
        assert served.json() == {"keys": {}, "shredded": [kid]}  # unknown = shredded
        bad = await client.post(route, json={"kids": [kid, "k_nope"]}, headers=READER)
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "kids[1]"
        assert "k_nope" in bad.json()["detail"]
        for body in ({"kids": []}, {"kids": [kid] * 1001}, {"kid": [kid]}, [kid]):
            answer = await client.post(route, json=body, headers=READER)
            assert answer.status_code == 422, (body, answer.text)
        garbled = await client.post(route, content=b"{", headers=READER)
        assert garbled.status_code == 422


async def test_sealing_off_publishes_plaintext_and_still_serves_and_shreds_keys(
    own_broker: Running, sealed_ingest: Running, sealing_db: str, tmp_path: Path
) -> None:
    """INGEST_SEALING=off publishes the personal fields as they are; the keys made while it
    was on are still served, and an erasure still shreds its key (else a consumer would find
    every applicant of before "shredded", i.e. erased)."""
    at = datetime(2026, 6, 4, 8, tzinfo=UTC)
    before = _applied("cand-plain-8", at)
    await _post(sealed_ingest, [before])
    plain = start_service(
        "ingest",
        tmp_path,
        own_broker,
        DATABASE_URL=sealing_db,
        INGEST_SEALING="off",
        INGEST_KEY_READER_API_KEYS=READER_KEY,
        INGEST_SHRED_GRACE_S="0",
        INGEST_APPLICANT_ID_SECRET=SECRET,
        INGEST_TOKEN_KEYS=TOKEN_KEYS,
    )
    try:
        upsert = _upsert("seal-e9", "Dorte Plain", "dorte@example.com", "urn:li:person:d9", at)
        applied = _applied("cand-plain-9", at)
        await _post(plain, [upsert, applied])
        by_id = _by_id(await records_of(own_broker.address, TOPICS))
        kid = orjson.loads(by_id[before["id"]].value)["sealed"]["kid"]
        assert list((await _lookup(plain, [kid]))["keys"]) == [kid]
        erased = _event("ripples.applicant.erased.v1", {"applicant_id": "cand-plain-8"}, at)
        await _post(plain, [erased])
        assert (await _lookup(plain, [kid]))["shredded"] == [kid]
    finally:
        plain.stop()
    data = orjson.loads(by_id[upsert["id"]].value)
    assert data["display_name"] == "Dorte Plain"
    assert "sealed" not in data
    assert orjson.loads(by_id[applied["id"]].value)["applicant_id"] == "cand-plain-9"
    assert by_id[applied["id"]].key == b"cand-plain-9"


async def test_database_down_refuses_sealed_events_but_not_posts(
    own_broker: Running, tmp_path: Path
) -> None:
    """Applicant events need their key (503, as employee events already were); the posts
    and links never touch the database."""
    down = start_service(
        "ingest",
        tmp_path,
        own_broker,
        wait_ready=False,
        DATABASE_URL=f"postgresql://nobody@127.0.0.1:{free_port()}/none",
    )
    try:
        async with httpx.AsyncClient(base_url=down.address, headers=AUTH, timeout=30) as client:
            async with asyncio.timeout(30):
                while True:
                    with_broker = await _ready_broker(client)
                    if with_broker:
                        break
                    await asyncio.sleep(0.2)
            at = datetime(2026, 6, 5, 8, tzinfo=UTC)
            answer = await client.post(
                "/v1/events:batch",
                content=orjson.dumps([_applied("cand-down", at)]),
                headers=BATCH,
            )
            assert answer.status_code == 503, answer.text
            assert answer.json()["type"].endswith("/database-unavailable")
            post = _event(
                "ripples.post.published.v1",
                {
                    "post_id": "urn:li:share:seal-1",
                    "author_kind": "company",
                    "published_at": "2026-06-03T08:15:00Z",
                },
                at,
            )
            answer = await client.post(
                "/v1/events:batch", content=orjson.dumps([post]), headers=BATCH
            )
            assert answer.status_code == 202, answer.text
    finally:
        down.stop()


async def _ready_broker(client: httpx.AsyncClient) -> bool:
    try:
        answer = await client.get("/readyz")
    except httpx.TransportError:
        return False
    return bool(answer.json()["checks"]["broker"] == "ok")


async def test_keys_are_wrapped_at_rest_served_through_the_grace_then_swept(
    sealing_db: str,
) -> None:
    """The key store itself (with a grace of 1 s): a stored key is the key encrypted with
    INGEST_TOKEN_KEYS; an erased key is still served within the grace, then never again,
    and the sweep deletes its row."""
    database = Database(DatabaseSettings(url=sealing_db))
    await database.start()
    cipher = TokenCipher([b"\x07" * 32])
    store = KeyStore(database, cipher, SECRET, grace_s=1.0)
    try:
        subject = applicant_subject(SECRET, "cand-grace")
        found = await store.keys_for([subject, "employee:grace-e"])
        kid, key = found[subject]
        assert (await store.keys_for([subject]))[subject] == (kid, key)  # get, not a new one
        stored = await database.pool.fetchval("select key from ingest_keys where kid = $1", kid)
        assert key not in stored
        assert len(stored) > len(key)
        await store.erase([], [subject])
        served, shredded = await store.lookup([kid])
        assert served == {kid: key}
        assert shredded == []
        assert (await store.keys_for([subject]))[subject][0] != kid  # unlinked at once
        await asyncio.sleep(1.2)
        assert await store.lookup([kid]) == ({}, [kid])
        assert await store.sweep() == 1
        left = await database.pool.fetchval("select count(*) from ingest_keys where kid = $1", kid)
        assert left == 0
    finally:
        await database.stop()


async def test_a_removal_older_than_the_latest_upsert_shreds_nothing(
    own_broker: Running, sealed_ingest: Running
) -> None:
    """The latest CloudEvent `time` wins: a late removal older than the employee's latest
    upsert changes nothing (the directory keeps the person), so their key stays theirs."""
    at = datetime(2026, 6, 6, 8, tzinfo=UTC)
    upsert = _upsert("seal-e5", "Erik Stays", "erik@example.com", "urn:li:person:e5", at)
    await _post(sealed_ingest, [upsert])
    late = _event("ripples.employee.removed.v1", {"employee_id": "seal-e5"}, at - timedelta(1))
    await _post(sealed_ingest, [late])
    # ... nor does one older than an upsert of its own batch
    newer = _upsert("seal-e5", "Erik Stays", "erik@example.com", "urn:li:person:e5", at)
    newer["time"] = (at + timedelta(1)).isoformat().replace("+00:00", "Z")
    early = _event("ripples.employee.removed.v1", {"employee_id": "seal-e5"}, at)
    await _post(sealed_ingest, [early, newer])
    by_id = _by_id(await records_of(own_broker.address, ["ripples.employees"]))
    kid = orjson.loads(by_id[upsert["id"]].value)["sealed"]["kid"]
    assert orjson.loads(by_id[newer["id"]].value)["sealed"]["kid"] == kid
    assert list((await _lookup(sealed_ingest, [kid]))["keys"]) == [kid]
