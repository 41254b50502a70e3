"""Everyday faults while the shuffled demo pilot goes through attribution (issue 14).

The pilot (``ripples.demo``: 45 people, six weeks, links, clicks through the redirector,
signed Greenhouse and Teamtailor webhooks, batches delivered twice, a fifth of the events
held back to the end) is played once through the real ingest by the demo's own
:class:`~ripples.demo.player.Player`; the CloudEvents ingest published are read off the four
input topics. Each case below replays exactly those events (``ripples.bench.workload``'s
producer, as the kill test does) into its own broker and database and runs real attribution
workers while one fault happens:

- ``postgres_restart``: a batch is held inside its transaction (the test holds the batch
  lock), PostgreSQL is stopped with a fast shutdown (the batch gets ``AdminShutdownError``,
  57P01) and started again (``CannotConnectNowError`` 57P03 / refused while it starts);
- ``too_many_connections``: every connection slot is taken by other clients and the worker's
  own connections are terminated, so it reconnects into ``TooManyConnectionsError`` (53300)
  for a while;
- ``statement_timeout``: ``alter database … set statement_timeout = '2s'`` while a batch
  waits 5 s for its lock: its statement is cancelled (``QueryCanceledError``, 57014);
- ``two_workers``: two attribution workers in one consumer group on one database (a
  rolling deploy, a KEDA scale-out): partitions move between them mid-stream and both flush
  the one outbox;
- ``poison``: before any offset is committed, the first records of every partition of every
  input topic are a tombstone (null value), garbage bytes without headers and a CloudEvent
  whose value is garbage (a tombstone on the compacted ``ripples.employees`` is compaction's
  delete marker, skipped: not dead-lettered); one valid CloudEvent the database refuses (a
  U+0000 in a text field, SQLSTATE class 22); and three outbox rows that can never be sent
  (not JSON, too large for the broker, an unknown topic);
- ``broker_restart``: half the pilot is processed; a batch is held in its transaction, the
  broker is stopped, the batch commits (its outbox cannot be flushed: the producer's
  requests time out), and the broker is started again on the same address. Tansu keeps its
  log in memory, so a restart loses it, which a real Kafka would not: the test restores what
  a real Kafka would have kept by creating the topics again and producing every pilot event
  again, in the same order and partitions (the consumer group's committed offsets are lost
  too, which a real Kafka would keep; the worker then reads from its own position or from
  the start, both idempotent). Recognitions emitted before the restart are read off the topic
  before it is stopped and counted with those emitted after.

Each run must end with: every pilot event stored once, nothing dead-lettered but the injected
poison, the outbox empty, every ``/v1`` answer byte-identical to the unfaulted run's, every
recognition due in the final state emitted, and no recognition emitted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ripples.bench import workload
from ripples.demo import scenario as pilot
from ripples.demo.player import Player
from services.attribution import store
from shared.cloudevents import from_kafka, parse_structured, to_kafka, to_structured
from shared.events import APPLICANTS, DEAD_LETTERS, EMPLOYEES, LINKS, POSTS, RECOGNITIONS
from shared.kafka import ensure_topics
from shared.settings import KafkaSettings
from tests.conftest import (
    API_KEYS,
    Running,
    fresh_database,
    start_broker,
    start_service,
)
from tests.notifier.conftest import employee_event, recognition_event
from tests.reliability.conftest import SECRETS
from tests.reliability.test_attribution_kill import (
    ENV,
    caught_up,
    distinct,
    final_recognitions,
    paths,
    records_on_topic,
    scrape,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

INPUTS = (EMPLOYEES, POSTS, LINKS, APPLICANTS)
SINK = "https://hooks.example.com/ripples"  # the employees' webhook address (never called)
AUTH = {"Authorization": f"Bearer {API_KEYS[0]}"}
# a producer request the broker does not answer fails after 3 s instead of 40 (broker_restart)
CASE_ENV = ENV | {"KAFKA_REQUEST_TIMEOUT_S": "3", "ATTRIBUTION_BATCH_SIZE": "500"}


@dataclass
class Run:
    answers: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    recognitions: list[str] = field(default_factory=list)
    dead_letters: list[str] = field(default_factory=list)  # x-ripples-error of each
    events_stored: int = 0
    transient: float = 0.0  # attribution_transient_failures_total, summed over workers
    workers_alive: bool = True
    seconds: float = 0.0
    outbox_while_away: int | None = None


@dataclass
class Case:
    """What a fault does around the replay of the pilot."""

    postgres: Running
    broker: Running
    database: str
    events: list[dict[str, Any]]
    workers: list[Running] = field(default_factory=list)
    injected: int = 0  # poison records this case sent on purpose
    recognitions_before: list[str] = field(default_factory=list)  # broker_restart
    outbox_while_away: int | None = None  # broker_restart: rows unsent while it was away

    async def produce(self, events: list[dict[str, Any]] | None = None) -> None:
        await workload.produce(self.broker.address, self.events if events is None else events)


Fault = Callable[[Case, Callable[[], Awaitable[None]]], Awaitable[None]]
"""Runs the fault; the second argument starts the workers (each fault chooses when)."""


@pytest.fixture(scope="module")
async def pilot_events(
    postgres: Running, tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    """The shuffled demo pilot, played once through the real ingest; the events it published
    on the input topics, in their order (structured CloudEvents, as the kill test uses)."""
    tmp = tmp_path_factory.mktemp("faults-pilot")
    broker = start_broker(tmp / "broker")
    try:
        async with fresh_database(postgres, "faults_ingest") as database:
            ingest = start_service(
                "ingest",
                tmp / "ingest",
                broker,
                DATABASE_URL=database,
                INGEST_LINK_ALLOWED_HOSTS="careers.example.com",
                # replayed to workers without an ingest: plaintext (docs/security.md "Topics")
                INGEST_SEALING="off",
                **SECRETS,
            )
            try:
                scenario = pilot.generate(5, pilot.SMALL, sink_url=SINK)
                await Player(ingest.address, API_KEYS[0], SECRETS, SINK, seed=5).play(scenario)
            finally:
                ingest.stop()
        return await _published(broker.address)
    finally:
        broker.stop()


async def _published(bootstrap: str) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    out: list[tuple[int, str, int, int, dict[str, Any]]] = []
    try:
        tps = [
            TopicPartition(spec.name, p)
            for spec in INPUTS
            for p in sorted(await _partitions(consumer, spec.name))
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        async with asyncio.timeout(60):
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for record in records:
                        event = orjson.loads(
                            to_structured(from_kafka(record.headers, record.value))
                        )
                        out.append(
                            (record.timestamp, record.topic, record.partition, record.offset, event)
                        )
    finally:
        await consumer.stop()
    out.sort(key=lambda row: row[:4])  # the order ingest published them in
    return [row[4] for row in out]


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    async with asyncio.timeout(20):
        while not (partitions := consumer.partitions_for_topic(topic)):
            await consumer._client.force_metadata_update()
            await asyncio.sleep(0.1)
    return partitions


# --- the faults ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def batch_lock(case: Case) -> AsyncIterator[asyncpg.Connection]:
    """Hold the lock every batch takes first (``store._LOCK``): the next batch waits for it
    inside its transaction, as a long derivation would."""
    conn = await asyncpg.connect(case.database)
    try:
        await conn.execute("select pg_advisory_lock($1)", store._LOCK)
        yield conn
    finally:
        with contextlib.suppress(Exception):
            await conn.close()


async def batch_waiting(case: Case, timeout_s: float = 60) -> None:
    """Until a worker's batch waits for the lock inside its transaction."""
    name = case.database.rsplit("/", 1)[1]
    conn = await asyncpg.connect(case.database)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            waiting = await conn.fetchval(
                "select count(*) from pg_stat_activity where datname = $1 "
                "and wait_event_type = 'Lock' and wait_event = 'advisory'",
                name,
            )
            if waiting:
                return
            await asyncio.sleep(0.05)
        pytest.fail("no batch ever waited for the lock")
    finally:
        await conn.close()


async def postgres_restart(case: Case, start: Callable[[], Awaitable[None]]) -> None:
    await start()
    async with batch_lock(case):
        await case.produce()
        await batch_waiting(case)
        await asyncio.to_thread(case.postgres.stop)  # fast shutdown: the batch is aborted
    await asyncio.sleep(2)  # the worker retries against a stopped server meanwhile
    await asyncio.to_thread(case.postgres.start)


async def too_many_connections(case: Case, start: Callable[[], Awaitable[None]]) -> None:
    await start()  # its pool connected
    admin = case.postgres.address.rsplit("/", 1)[0] + "/postgres"
    name = case.database.rsplit("/", 1)[1]
    hogs: list[asyncpg.Connection] = []

    async def fill() -> None:
        while True:
            try:
                hogs.append(await asyncpg.connect(admin))
            except asyncpg.TooManyConnectionsError:
                return

    try:
        await fill()
        # the worker's own connections go, and their slots are taken before it reconnects
        # (its outbox timer reconnects within a second)
        while await hogs[-1].fetchval(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity where datname = $1",
            name,
        ):
            await fill()
        await case.produce()
        await asyncio.sleep(5)  # the worker meets "sorry, too many clients already"
    finally:
        for conn in hogs:
            await conn.close()


async def statement_timeout(case: Case, start: Callable[[], Awaitable[None]]) -> None:
    name = case.database.rsplit("/", 1)[1]
    conn = await asyncpg.connect(case.database)
    try:
        await conn.execute(f"alter database \"{name}\" set statement_timeout = '2s'")
        await start()  # its connections take the setting
        async with batch_lock(case):
            await case.produce()
            await batch_waiting(case)
            await asyncio.sleep(5)  # the waiting batch is cancelled twice or more
        await conn.execute(f'alter database "{name}" reset statement_timeout')
    finally:
        await conn.close()


async def two_workers(case: Case, start: Callable[[], Awaitable[None]]) -> None:
    await start()
    await case.produce()


async def poison(case: Case, start: Callable[[], Awaitable[None]]) -> None:
    await start()
    producer = AIOKafkaProducer(bootstrap_servers=case.broker.address)
    await producer.start()
    try:
        good = parse_structured(orjson.dumps(case.events[0]))
        _, _value, headers = to_kafka(good)
        for spec in INPUTS:
            for partition in sorted(await producer.partitions_for(spec.name)):
                for poisoned, poisoned_headers in (
                    (None, []),  # a tombstone
                    (None, list(headers)),  # a tombstone with CloudEvent headers
                    (b"\x00\xff garbage \xfe", []),  # no headers at all
                    (b"{not json", list(headers)),  # CloudEvent headers, garbage value
                ):
                    await producer.send_and_wait(
                        spec.name,
                        poisoned,
                        key=b"poison",
                        partition=partition,
                        headers=poisoned_headers,
                    )
                    # on the compacted ripples.employees a tombstone is compaction's delete
                    # marker (a removed employee's preference keys), skipped, not poison
                    if poisoned is not None or spec is not EMPLOYEES:
                        case.injected += 1
        # a valid CloudEvent the database refuses: U+0000 in a text column (SQLSTATE 22)
        click = next(e for e in case.events if e["type"] == "ripples.link.clicked.v1")
        refused = click | {"id": "poison-nul", "data": click["data"] | {"visitor_id": "v\x00"}}
        await workload.produce(case.broker.address, [refused])
        case.injected += 1
    finally:
        await producer.stop()
    # three outbox rows the broker can never take
    conn = await asyncpg.connect(case.database)
    try:
        huge = orjson.dumps({"padding": "x" * 2_000_000})
        await conn.executemany(
            "insert into attribution.outbox (topic, event) values ($1, $2)",
            [
                (RECOGNITIONS.name, b"not json"),
                (RECOGNITIONS.name, huge),
                ("ripples.nowhere", b"{}"),
            ],
        )
        case.injected += 3
    finally:
        await conn.close()
    # the poison first (the partitions have no committed offset yet), then the pilot
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        metrics = await scrape(case.workers[0])
        if _metric(metrics, "attribution_dead_letters_total") >= case.injected:
            break
        await asyncio.sleep(0.2)
    await case.produce()


async def broker_restart(case: Case, start: Callable[[], Awaitable[None]]) -> None:
    await start()
    half = len(case.events) // 2
    await case.produce(case.events[:half])
    await caught_up(case.workers[0], case.database, distinct(case.events[:half]))
    case.recognitions_before = await _recognitions(case.broker.address)
    async with batch_lock(case):
        await case.produce(case.events[half:])
        await batch_waiting(case)
        await asyncio.to_thread(case.broker.stop)
    await asyncio.sleep(8)  # the batch commits; its outbox meets a broker that is away
    # Tansu quirk: a record produced to a topic that does not exist yet breaks that
    # partition for good once the topic is created (UnknownError). So the outbox is held
    # (its rows locked; the sender skips locked rows) until the topics are back.
    hold = await asyncpg.connect(case.database)
    held = hold.transaction()
    await held.start()
    try:
        case.outbox_while_away = len(
            await hold.fetch("select seq from attribution.outbox for update")
        )
        # what a real Kafka would have kept: the topics and every record, in the same
        # order and partitions
        case.broker.start(wait_ready=False)
        settings = KafkaSettings(bootstrap_servers=case.broker.address)
        async with asyncio.timeout(30):
            while True:
                with contextlib.suppress(Exception):
                    await ensure_topics(settings, timeout_s=1)
                    break
                await asyncio.sleep(0.01)
    finally:
        await held.rollback()
        await hold.close()
    await case.produce()


# --- a run -----------------------------------------------------------------------------------


async def _recognitions(bootstrap: str) -> list[str]:
    records = await records_on_topic(bootstrap, RECOGNITIONS.name)
    return [dict(r.headers)["ce_id"].decode() for r in records]


def _metric(metrics: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith((f"{name}{{", f"{name} "))
    )


async def replay(
    own_postgres: Running, tmp: Path, events: list[dict[str, Any]], fault: Fault | None
) -> Run:
    run = Run()
    started = time.monotonic()
    broker = start_broker(tmp / "broker")
    name = f"faults_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(own_postgres.address)
    await admin.execute(f'create database "{name}"')
    await admin.close()
    case = Case(own_postgres, broker, own_postgres.address.rsplit("/", 1)[0] + f"/{name}", events)
    count = 2 if fault is two_workers else 1

    async def start() -> None:
        await ensure_topics(KafkaSettings(bootstrap_servers=broker.address))
        for i in range(count):
            worker = await asyncio.to_thread(
                start_service,
                "attribution",
                tmp / f"worker{i}",
                broker,
                wait_ready=False,
                DATABASE_URL=case.database,
                **CASE_ENV,
            )
            case.workers.append(worker)
        for worker in case.workers:
            await asyncio.to_thread(worker.component.wait_ready, 60)

    try:
        await (fault(case, start) if fault is not None else _plain(case, start))
        for worker in case.workers:
            await caught_up(worker, case.database, distinct(events), timeout_s=120)
        async with httpx.AsyncClient(
            base_url=case.workers[0].address, headers=AUTH, timeout=30
        ) as client:
            for path in paths(events):
                response = await client.get(path)
                run.answers[path] = (response.status_code, response.content)
        conn = await asyncpg.connect(case.database)
        try:
            run.events_stored = await conn.fetchval("select count(*) from attribution.events")
        finally:
            await conn.close()
        run.recognitions = case.recognitions_before + await _recognitions(broker.address)
        run.dead_letters = [
            dict(r.headers).get("x-ripples-error", b"").decode()
            for r in await records_on_topic(broker.address, DEAD_LETTERS.name)
        ]
        for worker in case.workers:
            run.transient += _metric(await scrape(worker), "attribution_transient_failures_total")
            run.workers_alive &= worker.component.running(worker.state)
    finally:
        for worker in case.workers:
            worker.stop()
        broker.stop()
        if not own_postgres.component.running(own_postgres.state):
            await asyncio.to_thread(own_postgres.start)
        admin = await asyncpg.connect(own_postgres.address)
        await admin.execute(f'drop database "{name}" with (force)')
        await admin.close()
    run.seconds = time.monotonic() - started
    run.outbox_while_away = case.outbox_while_away
    expected_dead = case.injected
    assert len(run.dead_letters) == expected_dead, Counter(
        d.split(":", 1)[0] for d in run.dead_letters
    )
    return run


async def _plain(case: Case, start: Callable[[], Awaitable[None]]) -> None:
    await start()
    await case.produce()


@pytest.fixture(scope="module")
async def reference(
    own_postgres: Running, pilot_events: list[dict[str, Any]], tmp_path_factory: Any
) -> Run:
    return await replay(own_postgres, tmp_path_factory.mktemp("reference"), pilot_events, None)


FAULTS: dict[str, Fault] = {
    "postgres_restart": postgres_restart,
    "too_many_connections": too_many_connections,
    "statement_timeout": statement_timeout,
    "two_workers": two_workers,
    "poison": poison,
    "broker_restart": broker_restart,
}


@pytest.mark.parametrize("name", FAULTS)
async def test_fault_loses_nothing_and_changes_no_answer(
    name: str,
    own_postgres: Running,
    pilot_events: list[dict[str, Any]],
    reference: Run,
    tmp_path: Path,
) -> None:
    events = pilot_events
    faulty = await replay(own_postgres, tmp_path, events, FAULTS[name])

    assert reference.events_stored == distinct(events)
    assert reference.dead_letters == []
    due = final_recognitions(reference.answers)
    assert due, "the pilot makes recognitions due"
    assert len(reference.recognitions) == len(set(reference.recognitions))

    different = [p for p in reference.answers if reference.answers[p] != faulty.answers[p]]
    repeats = len(faulty.recognitions) - len(set(faulty.recognitions))
    missing = due - set(faulty.recognitions)
    print(
        f"\nfault {name}: {len(events)} pilot events ({distinct(events)} distinct), "
        f"{faulty.events_stored} stored; {len(faulty.dead_letters)} dead-lettered "
        f"({dict(Counter(d.split(':', 1)[0] for d in faulty.dead_letters))}); "
        f"{faulty.transient:.0f} transient failures retried; {len(different)} of "
        f"{len(reference.answers)} /v1 answers different; {len(due)} recognitions due, "
        f"{len(missing)} missing, {len(set(faulty.recognitions))} distinct emitted, "
        f"{repeats} repeated; {faulty.seconds:.1f} s (reference {reference.seconds:.1f} s)"
        + (
            f"; {faulty.outbox_while_away} outbox rows unsent while the broker was away"
            if faulty.outbox_while_away is not None
            else ""
        )
    )
    assert faulty.workers_alive, "a worker died"
    assert faulty.events_stored == distinct(events)
    assert not different, different[:5]
    assert not missing, sorted(missing)[:5]
    assert repeats == 0, Counter(faulty.recognitions).most_common(3)
    if name == "poison":
        assert faulty.dead_letters
    if name in {"postgres_restart", "too_many_connections", "statement_timeout"}:
        assert faulty.transient > 0, "the fault never reached the worker"
    if name == "broker_restart":
        assert faulty.outbox_while_away, "the outbox never met the broker away"


def test_pilot_records_decode(pilot_events: list[dict[str, Any]]) -> None:
    """The captured pilot is what ingest published: contract events of every input topic."""
    kinds = Counter(e["type"] for e in pilot_events)
    assert {
        "ripples.employee.upserted.v1",
        "ripples.post.published.v1",
        "ripples.post.metrics.v1",
        "ripples.post.engagement.v1",
        "ripples.link.created.v1",
        "ripples.link.clicked.v1",
        "ripples.applicant.applied.v1",
        "ripples.applicant.hired.v1",
    } <= set(kinds), kinds


async def test_the_notifier_dead_letters_tombstones_and_garbage_and_goes_on(
    postgres: Running, tmp_path: Path
) -> None:
    """The notifier's two streams: a tombstone and garbage bytes first on every partition
    (no committed offset yet), then an employee and a recognition: both stored, the poison
    dead-lettered (a tombstone made ``from_kafka`` raise TypeError, which restarted the
    agent), except the tombstones on the compacted ``ripples.employees``, which are skipped
    (compaction's delete markers: ingest writes them for a removed employee's preferences)."""
    broker = start_broker(tmp_path / "broker")
    try:
        async with fresh_database(postgres, "faults_notifier") as database:
            await ensure_topics(KafkaSettings(bootstrap_servers=broker.address))
            producer = AIOKafkaProducer(bootstrap_servers=broker.address)
            await producer.start()
            notifier = start_service(
                "notifier",
                tmp_path / "notifier",
                broker,
                DATABASE_URL=database,
                NOTIFIER_WEBHOOK_SECRET="faults-webhook",
                **ENV,
            )
            injected = 0
            try:
                employee = "faults-emp"
                samples = {
                    RECOGNITIONS.name: recognition_event("first_post:x", "x", "first_post"),
                    EMPLOYEES.name: employee_event("x", "none", None),
                }
                for spec in (RECOGNITIONS, EMPLOYEES):
                    ce_headers = list(to_kafka(samples[spec.name])[2])
                    for partition in sorted(await producer.partitions_for(spec.name)):
                        for value, headers in (
                            (None, []),
                            (None, ce_headers),  # a tombstone of a CloudEvent
                            (b"\x00\xff garbage", []),
                        ):
                            await producer.send_and_wait(
                                spec.name, value, key=b"poison", partition=partition,
                                headers=headers,
                            )  # fmt: skip
                            # a tombstone on the compacted ripples.employees is skipped
                            injected += int(value is not None or spec is not EMPLOYEES)
                for event in (
                    employee_event(employee, "webhook", SINK),
                    recognition_event(f"first_post:{employee}", employee, "first_post"),
                ):
                    key, value, headers = to_kafka(event)
                    await producer.send_and_wait(event.topic.name, value, key=key, headers=headers)
                conn = await asyncpg.connect(database)
                try:
                    async with asyncio.timeout(60):
                        while not await conn.fetchval(
                            "select count(*) from notifier_deliveries where employee_id = $1",
                            employee,
                        ) or not await conn.fetchval(
                            "select count(*) from notifier_employees where employee_id = $1",
                            employee,
                        ):
                            await asyncio.sleep(0.2)
                finally:
                    await conn.close()
                dead = await records_on_topic(broker.address, DEAD_LETTERS.name)
                assert len(dead) == injected, (len(dead), injected)
                assert {dict(r.headers)["x-ripples-consumer"] for r in dead} == {b"notifier"}
                assert notifier.component.running(notifier.state)
            finally:
                await producer.stop()
                notifier.stop()
    finally:
        broker.stop()
