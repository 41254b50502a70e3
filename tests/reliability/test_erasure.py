"""Erasure everywhere (issue 14, part 5): the demo pilot through the real stack (ingest,
attribution and notifier as processes on a real broker and PostgreSQL), then removals of a
few employees and erasures of a few applicants sent through ingest, then

- a ``pg_dump`` of every service's database holds none of their display names, notify
  addresses, work e-mails (nor the keyed hash ingest keeps of one), LinkedIn member URNs, ATS
  candidate ids or applicant pseudonyms — after a late, older upsert of a removed employee
  and a replay of the erased applicants' events and of their recognitions, too;
- credit of the erased conversions stays, as anonymous counts with day-truncated times;
- a replayed ``hire`` recognition of an erased applicant is not sent again;
- the output topics (recognitions, credits) carry no names, and every topic is dumped and
  searched: the local broker keeps every record in memory and never compacts, but what it
  holds of the erased people is sealed under keys ingest has shredded (crypto-shredding,
  docs/security.md "Topics"), so no erased value is in the dump
  (``test_topics_hold_no_erased_values``; it failed before the sealing: the input events as
  sent, hire recognition ids and credit keys naming applicants).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from ripples import stack
from ripples.demo import scenario as pilot
from ripples.demo import truth
from ripples.demo.player import Player
from ripples.demo.sink import Sink, serving
from services.ingest.directory import email_hash
from shared import sealing
from shared.events import DEAD_LETTERS, EMPLOYEES, preference_keys
from tests import samples
from tests.conftest import API_KEYS, READER_KEY, Running, free_port, records_of
from tests.e2e.test_pipeline import SECRETS, Pipeline, _pseudonym, caught_up, pipeline

pytestmark = pytest.mark.integration
__all__ = ["pipeline"]

AUTH = {"Authorization": f"Bearer {API_KEYS[0]}"}
BATCH = AUTH | {"Content-Type": "application/cloudevents-batch+json"}


@dataclass
class Erased:
    """The pilot as played, who was erased, and the values that must be gone."""

    scenario: pilot.Scenario
    sink: Sink
    sink_url: str
    pseudonyms: dict[str, str]
    people: list[pilot.Person]
    candidates: list[str]
    hire_ids: set[str]  # contract ids of the erased applicants' hire recognitions
    summary: dict[str, object]  # /v1/summary before the erasures
    values: dict[str, str] = field(default_factory=dict)  # value -> what it is
    # their hire recognition records as on the topic before the erasure (sealed), to replay
    hire_records: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]] = field(
        default_factory=list
    )
    kids: set[str] = field(default_factory=set)  # the erased applicants' key ids


def _find(text: bytes, value: str) -> bool:
    """``value`` in ``text`` as a whole token (so cand-1 is not found inside cand-12)."""
    pattern = rb"(?<![\w-])" + re.escape(value.encode()) + rb"(?![\w-])"
    return re.search(pattern, text) is not None


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pg_dump(url: str) -> bytes:
    """The whole database as ``pg_dump`` writes it (schema and data)."""
    binary = stack._postgres_install(stack.POSTGRES_USER if os.geteuid() == 0 else None)
    done = subprocess.run(
        [str(binary / "bin" / "pg_dump"), "--no-owner", "--dbname", url],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def dumps(pipeline: Pipeline) -> dict[str, bytes]:
    return {
        name: pg_dump(service.env["DATABASE_URL"])
        for name, service in (
            ("ingest", pipeline.ingest),
            ("attribution", pipeline.attribution),
            ("notifier", pipeline.notifier),
        )
    }


async def dump_topics(bootstrap: str) -> dict[str, list[bytes]]:
    """Every record of every topic on the broker (internal ones included): key, value and
    headers, as one blob per record."""
    out: dict[str, list[bytes]] = {}
    for record in await records_of(bootstrap):
        blob = (record.key or b"") + b"\n" + (record.value or b"")
        for name, value in record.headers:
            blob += b"\n" + name.encode() + b"=" + (value or b"")
        out.setdefault(record.topic, []).append(blob)
    return out


def found_in(blobs: dict[str, bytes], values: dict[str, str]) -> list[str]:
    return sorted(
        f"{values[v]} in {where}" for where, blob in blobs.items() for v in values if _find(blob, v)
    )


async def post_batch(ingest: Running, events: list[dict[str, object]]) -> None:
    async with httpx.AsyncClient(base_url=ingest.address, timeout=30) as client:
        response = await client.post(
            "/v1/events:batch", content=orjson.dumps(events), headers=BATCH
        )
    assert response.status_code == 202, response.text


@pytest.fixture(scope="module")
async def sink_server() -> AsyncIterator[tuple[Sink, str]]:
    """The employees' inbox, listening for the whole module (replays are checked on it)."""
    sink = Sink(SECRETS["NOTIFIER_WEBHOOK_SECRET"])
    async with serving(sink, free_port()) as url:
        yield sink, url


@pytest.fixture(scope="module")
async def erased(pipeline: Pipeline, sink_server: tuple[Sink, str]) -> Erased:
    """Play the pilot, then remove two employees and erase two applicants."""
    sink, sink_url = sink_server
    scenario = pilot.generate(5, pilot.SMALL, sink_url=sink_url)
    player = Player(pipeline.ingest.address, API_KEYS[0], SECRETS, sink_url, seed=5)
    result = await player.play(scenario)
    await caught_up(pipeline, sink)
    facts = scenario.facts(result.click_times, result.applied_at)
    vendor = {
        a.candidate: a.vendor if a.vendor == "teamtailor" and a.referrer is None else "greenhouse"
        for a in scenario.applications
    }
    pseudonyms = {c: _pseudonym(vendor[c], c) for c in vendor}

    # Who: an ambassador with a member URN who inspired a colleague, and that colleague
    # (named in the ambassador's inspired_colleague recognition); a hired applicant whose
    # hire was credited to an employee, and another credited applicant.
    rings = truth.rings(facts)
    people = {p.id: p for p in scenario.people}
    names = [p.name for p in scenario.people]
    edge = next(
        e
        for e in sorted(rings.edges, key=lambda e: (e.inspirer, e.colleague))
        if people[e.inspirer].ambassador
        and people[e.inspirer].member_urn
        and people[e.inspirer].channel == "webhook"
        and names.count(people[e.inspirer].name) == 1
        and names.count(people[e.colleague].name) == 1
    )
    chosen = [people[edge.inspirer], people[edge.colleague]]
    due = truth.recognitions(facts)
    reachable = {p.id for p in scenario.people if p.channel == "webhook" and not p.opt_out}
    hired = sorted(
        rid.split(":")[2] for rid in due if rid.startswith("hire:") and due[rid] in reachable
    )
    credited = sorted(
        {rid.split(":")[2] for rid in due if rid.startswith("hire:")}
        | {a.candidate for a in scenario.applications if a.referrer or a.ref}
    )
    candidates = [hired[0], next(c for c in credited if c != hired[0])]
    hire_ids = {
        f"hire:{rid.split(':')[1]}:{pseudonyms[rid.split(':')[2]]}"
        for rid in due
        if rid.startswith("hire:") and rid.split(":")[2] in candidates
    }
    assert hire_ids, "no hire recognition to erase: the test would prove nothing"

    # A notify address of their own, so that it can be looked for after the removal.
    now = datetime.now(UTC)
    addresses = {p.id: f"{sink_url}?who={uuid.uuid4().hex}" for p in chosen}
    await post_batch(pipeline.ingest, [_upsert(p, addresses[p.id], now) for p in chosen])
    await caught_up(pipeline, sink)

    # The ambassador's own preferences (CONTRACT §11) with a notify address of their own, set
    # after the HR record and before the removal: on ripples.employees under a prefs: key.
    preference = f"{sink_url}?preference={uuid.uuid4().hex}"
    await post_batch(
        pipeline.ingest,
        [_preference(chosen[0].id, preference, now + timedelta(minutes=1), locale="da")],
    )
    await caught_up(pipeline, sink)

    values: dict[str, str] = {preference: f"preference address of {chosen[0].id}"}
    secret = SECRETS["INGEST_APPLICANT_ID_SECRET"]
    for p in chosen:
        values |= {
            p.name: f"display name of {p.id}",
            addresses[p.id]: f"notify address of {p.id}",
            p.email: f"work e-mail of {p.id}",
            email_hash(secret, p.email): f"work e-mail hash of {p.id}",
            p.member_urn: f"member URN of {p.id}",
        }
    for c in candidates:
        values |= {c: f"candidate id {c}", pseudonyms[c]: f"applicant pseudonym of {c}"}
    values.pop("", None)

    before = dumps(pipeline)
    stored = (chosen[0].name, chosen[1].name, chosen[0].member_urn, pseudonyms[candidates[0]])
    for name in (*stored, preference):
        assert any(_find(d, name) for d in before.values()), f"{values[name]} never stored"

    summary = await _summary(pipeline)
    hire_records, kids = await _hire_records(pipeline, hire_ids)
    later = now + timedelta(days=1)
    events = [
        samples.event("ripples.employee.removed.v1", {"employee_id": p.id}, time=_stamp(later))
        for p in chosen
    ] + [
        samples.event(
            "ripples.applicant.erased.v1", {"applicant_id": pseudonyms[c]}, time=_stamp(later)
        )
        for c in candidates
    ]
    await post_batch(pipeline.ingest, events)
    await caught_up(pipeline, sink)
    return Erased(
        scenario,
        sink,
        sink_url,
        pseudonyms,
        chosen,
        candidates,
        hire_ids,
        summary,
        values,
        hire_records,
        kids,
    )


async def _hire_records(
    pipeline: Pipeline, hire_ids: set[str]
) -> tuple[list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]], set[str]]:
    """The records of ``hire_ids`` on ripples.recognitions (sealed: the id on the topic names
    the applicant's kid) and those kids, opened with ingest's key API while the keys live."""
    bootstrap = pipeline.ingest.env["KAFKA_BOOTSTRAP_SERVERS"]
    records = await records_of(bootstrap, "ripples.recognitions")
    client = sealing.KeyClient(pipeline.ingest.address, READER_KEY)
    try:
        openings = await sealing.open_records(records, client)
    finally:
        await client.aclose()
    found = []
    kids = set()
    for index, opening in openings.items():
        if opening.fields.get("recognition_id") in hire_ids and opening.kid:
            record = records[index]
            found.append((record.key, record.value, list(record.headers)))
            kids.add(opening.kid)
    assert found, "no sealed hire recognition of the erased applicants on the topic"
    return found, kids


async def _summary(pipeline: Pipeline) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=pipeline.attribution.address, headers=AUTH) as client:
        response = await client.get("/v1/summary", params={"model": "linear"})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _preference(
    employee_id: str, address: str, at: datetime, **fields: object
) -> dict[str, object]:
    """The employee's own preference (CONTRACT §11): a webhook address, and ``fields``."""
    data = {"employee_id": employee_id, "notify": {"channel": "webhook", "address": address}}
    return samples.event("ripples.employee.preferences.v1", data | fields, time=_stamp(at))


def _upsert(person: pilot.Person, address: str, at: datetime) -> dict[str, object]:
    return samples.event(
        "ripples.employee.upserted.v1",
        {
            "employee_id": person.id,
            "display_name": person.name,
            "ambassador": person.ambassador,
            "locale": person.locale,
            "notify": {"channel": "webhook", "address": address},
            "linkedin_member_urn": person.member_urn or None,
            "work_email": person.email,
        },
        time=_stamp(at),
    )


async def _until_clean(pipeline: Pipeline, values: dict[str, str]) -> list[str]:
    left: list[str] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(30):
            while left := found_in(dumps(pipeline), values):
                await asyncio.sleep(1)
    return left


async def test_no_table_of_any_service_holds_an_erased_value(
    pipeline: Pipeline, erased: Erased
) -> None:
    left = await _until_clean(pipeline, erased.values)
    assert not left, "\n".join(left)


async def test_late_events_and_replays_bring_nothing_back_and_send_nothing_twice(
    pipeline: Pipeline, own_broker: Running, erased: Erased
) -> None:
    sent_before = erased.sink.recognition_ids()
    assert erased.hire_ids & sent_before, "the erased hire was never sent: nothing to replay"
    deliveries_before = len(erased.sink.received)

    # A late, older upsert of each removed employee (after their last upsert, before the
    # removal) with every personal field, and the erased applicants' events again.
    older = datetime.now(UTC) + timedelta(hours=1)
    late = [_upsert(p, f"{erased.sink_url}?late=1", older) for p in erased.people]
    late += [
        samples.event(
            "ripples.applicant.applied.v1",
            {
                "applicant_id": erased.pseudonyms[c],
                "job_id": "job-data",
                "applied_at": _stamp(older),
            },
        )
        for c in erased.candidates
    ]
    await post_batch(pipeline.ingest, late)

    # The erased applicants' recognition records, produced again as they were (a replay).
    topics = erased.hire_records
    producer = AIOKafkaProducer(bootstrap_servers=own_broker.address)
    await producer.start()
    try:
        for key, value, headers in topics:
            await producer.send_and_wait("ripples.recognitions", value, key=key, headers=headers)
    finally:
        await producer.stop()
    await caught_up(pipeline, erased.sink)

    left = await _until_clean(pipeline, erased.values)
    assert not left, "\n".join(left)
    again = [
        r.body.get("recognition_id")
        for r in erased.sink.received[deliveries_before:]
        if r.body.get("recognition_id") in sent_before
    ]
    assert again == [], "a recognition was sent twice"


async def test_a_removed_employees_preferences_leave_every_table_and_the_topic(
    pipeline: Pipeline, own_broker: Running, erased: Erased
) -> None:
    """Both orders: a preference with an address published before the removal (the
    fixture) and one older than the removal arriving after it (a late delivery). Neither
    address is in any table; each preference key of the removed employees has a tombstone
    (no value) as its latest record on ``ripples.employees``, so compaction drops the
    preferences on Apache Kafka; no consumer dead-letters a tombstone (a no-op). Failed
    before ingest wrote them: no tombstone on the topic."""
    late = f"{erased.sink_url}?late-preference={uuid.uuid4().hex}"
    before_removal = datetime.now(UTC) + timedelta(hours=2)  # the removal is a day ahead
    person = erased.people[0]
    await post_batch(pipeline.ingest, [_preference(person.id, late, before_removal)])
    await caught_up(pipeline, erased.sink)

    values = erased.values | {late: f"late preference address of {person.id}"}
    left = await _until_clean(pipeline, values)
    assert not left, "\n".join(left)

    latest = await _latest_by_key(own_broker.address, EMPLOYEES.name)
    published = {k for k in latest if k.startswith(f"prefs:{person.id}:".encode())}
    assert f"prefs:{person.id}:locale,notify".encode() in published, "no preference published"
    for p in erased.people:
        for key in preference_keys(p.id):
            assert key.encode() in latest, f"no tombstone of {key}"
            assert latest[key.encode()] is None, f"{key}: a value after the removal"

    dead = await records_of(own_broker.address, DEAD_LETTERS.name)
    from_employees = [
        r for r in dead if dict(r.headers).get("x-ripples-topic") == b"ripples.employees"
    ]
    assert from_employees == [], "a tombstone on ripples.employees was dead-lettered"


async def _latest_by_key(bootstrap: str, topic: str) -> dict[bytes, bytes | None]:
    """{key: value of its latest record} (what compaction keeps; None: a tombstone)."""
    latest: dict[bytes, bytes | None] = {}
    for record in sorted(await records_of(bootstrap, topic), key=lambda r: r.offset):
        if record.key is not None:
            latest[record.key] = record.value
    return latest


async def test_erased_credit_stays_as_anonymous_day_counts(
    pipeline: Pipeline, erased: Erased
) -> None:
    conn = await asyncpg.connect(pipeline.attribution.env["DATABASE_URL"])
    try:
        rows = await conn.fetch("select * from attribution.erased_conversions")
        credits = await conn.fetchval("select count(*) from attribution.erased_credits")
    finally:
        await conn.close()
    assert len(rows) >= len(erased.candidates)
    assert credits > 0, "the erased applicants' credit was lost"
    for row in rows:
        for column in ("applied_at", "hired_at"):
            at = row[column]
            if at is not None:
                assert at == at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    summary = await _summary(pipeline)
    for part in ("applicants", "hires"):  # the counts and credit of every conversion stay
        assert _rounded(summary[part]) == _rounded(erased.summary[part]), part


def _rounded(value: object) -> object:
    """``value`` with its floats rounded (sums over other rows in another order)."""
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return round(value, 9) if isinstance(value, float) else value


async def test_output_topics_carry_no_names(own_broker: Running, erased: Erased) -> None:
    topics = await dump_topics(own_broker.address)
    assert topics.get("ripples.recognitions"), "no recognitions on the topic: nothing searched"
    names = {
        v: what for v, what in erased.values.items() if "pseudonym" not in what and "id" not in what
    }
    outputs = {
        t: b"\n".join(topics.get(t, []))
        for t in ("ripples.recognitions", "ripples.credits", "ripples.deadletter")
    }
    left = found_in(outputs, names)
    assert not left, "\n".join(left)


async def test_topics_hold_no_erased_values(
    pipeline: Pipeline, own_broker: Running, erased: Erased
) -> None:
    """Every record of every topic, after the removals, erasures, late events and replays:
    none of the erased values anywhere (keys, values, headers). The people's records are on
    the topics (the broker forgets nothing) sealed, under keys ingest has shredded: the key
    API serves none of them any more."""
    topics = await dump_topics(own_broker.address)
    left = found_in({t: b"\n".join(r) for t, r in topics.items()}, erased.values)
    assert not left, "\n".join(left)
    for topic in ("ripples.employees", "ripples.applicants", "ripples.recognitions"):
        assert any(b'"sealed"' in r for r in topics.get(topic, [])), f"nothing sealed on {topic}"
    applicants = b"\n".join(topics["ripples.applicants"])
    assert all(_find(applicants, kid) for kid in erased.kids), "the erased kids never published"
    client = sealing.KeyClient(pipeline.ingest.address, READER_KEY)
    try:
        keys = await client.keys(erased.kids)
    finally:
        await client.aclose()
    assert keys == dict.fromkeys(erased.kids), "a key of an erased applicant is still served"


async def test_topics_holding_personal_data_are_compacted_or_bounded(
    own_broker: Running, erased: Erased
) -> None:
    """On the real broker, as the services created them: ``ripples.employees`` compacted
    (the removal is each key's latest record) within 7 days, the dead-letter topic kept 7
    days and the topics naming applicants 30 days (the defaults of
    ``KAFKA_EMPLOYEE_COMPACTION_LAG_S``, ``KAFKA_DEAD_LETTER_RETENTION_S`` and
    ``KAFKA_APPLICANT_RETENTION_S``)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=own_broker.address)
    await admin.start()
    try:
        names = ("ripples.employees", "ripples.deadletter", "ripples.applicants",
                 "ripples.credits", "ripples.recognitions")  # fmt: skip
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
    finally:
        await admin.close()
    # min.insync.replicas, which every topic is also created with, is not about erasure.
    configs = {
        resource[3]: {e[0]: e[1] for e in resource[4] if e[0] != "min.insync.replicas"}
        for response in responses
        for resource in response.resources
    }
    week, month = str(7 * 24 * 3600 * 1000), str(30 * 24 * 3600 * 1000)
    assert configs["ripples.employees"] == {
        "cleanup.policy": "compact",
        "max.compaction.lag.ms": week,
    }
    assert configs["ripples.deadletter"] == {"retention.ms": week}
    for name in ("ripples.applicants", "ripples.credits", "ripples.recognitions"):
        assert configs[name] == {"retention.ms": month}, name
