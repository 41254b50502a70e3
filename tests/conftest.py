"""Fixtures: a real Tansu broker, a real PostgreSQL and the real services, as processes.

They are started with the same code ``ripples up`` uses (``ripples.stack``), on free ports,
with their state in a temporary folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from ripples import stack
from shared.cloudevents import InvalidEvent, from_kafka
from shared.events import Envelope


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Running:
    """A component started for the tests, and how to reach it."""

    component: stack.Component
    state: stack.State
    env: dict[str, str]

    @property
    def address(self) -> str:
        return self.component.address

    def start(self, wait_ready: bool = True) -> None:
        self.component.start(self.state, self.env)
        if wait_ready:
            self.component.wait_ready(60)
        if self.component.name == "ingest" and "KAFKA_BOOTSTRAP_SERVERS" in self.env:
            _INGESTS[self.env["KAFKA_BOOTSTRAP_SERVERS"]] = self.address

    def stop(self) -> None:
        self.component.stop(self.state)
        broker = self.env.get("KAFKA_BOOTSTRAP_SERVERS", "")
        if self.component.name == "ingest" and _INGESTS.get(broker) == self.address:
            del _INGESTS[broker]


def _state(tmp: Path) -> stack.State:
    state = stack.State(tmp)
    state.prepare()
    return state


def start_broker(tmp: Path, start: bool = True) -> Running:
    port = free_port()
    broker = stack.Broker("broker", f"127.0.0.1:{port}", marker="tansu", port=port)
    running = Running(broker, _state(tmp), dict(os.environ))
    if start:
        running.start()
    return running


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start_broker(tmp_path_factory.mktemp("broker"))
    yield running
    running.stop()


def start_postgres(tmp: Path) -> Running:
    """A real PostgreSQL (the local stack's embedded one) on a free port, data under ``tmp``;
    ``stop_postgres`` also removes the data folder it may link to outside ``tmp``."""
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    tmp.chmod(0o755)
    url = f"postgresql://{stack.POSTGRES_USER}@127.0.0.1:{port}/{stack.POSTGRES_DB}"
    component = stack.Postgres(
        "postgres",
        url,
        marker="postgres",
        port=port,
        system_user=stack.POSTGRES_USER if os.geteuid() == 0 else None,
    )
    running = Running(component, _state(tmp), dict(os.environ))
    running.start()
    return running


def stop_postgres(running: Running) -> None:
    running.stop()
    stack.remove_state(running.state)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start_postgres(tmp_path_factory.mktemp("postgres"))
    yield running
    stop_postgres(running)


@contextlib.asynccontextmanager
async def fresh_database(postgres: Running, prefix: str = "test") -> AsyncIterator[str]:
    """A new, empty database on the shared server while the block runs; its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres.address)
    await admin.execute(f'create database "{name}"')
    await admin.close()
    try:
        yield postgres.address.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin = await asyncpg.connect(postgres.address)
        await admin.execute(f'drop database "{name}" with (force)')
        await admin.close()


@pytest.fixture
def fresh_broker(tmp_path: Path) -> Iterator[Running]:
    """A broker of this one test's own (its topics and consumer groups empty): for a test
    that stops it, restarts a consumer group on it or counts what is on it."""
    running = start_broker(tmp_path / "broker")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A broker of the test module's own, for the module's tests: one that stops, fills or
    inspects every record of it disturbs no other module."""
    running = start_broker(tmp_path_factory.mktemp("own-broker"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A PostgreSQL server of the test module's own: one that stops it or fills its
    connections disturbs no other test."""
    running = start_postgres(tmp_path_factory.mktemp("own-postgres"))
    yield running
    stop_postgres(running)


async def new_database(postgres: Running, name: str) -> str:
    """A new database ``name`` on ``postgres`` (left there: for a module's own server); its
    URL."""
    admin = await asyncpg.connect(postgres.address)
    try:
        await admin.execute(f'create database "{name}"')
    finally:
        await admin.close()
    return postgres.address.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
async def database(postgres: Running) -> AsyncIterator[str]:
    """A fresh, empty database on the shared server; its URL."""
    async with fresh_database(postgres) as url:
        yield url


FAST_GROUP = {
    "KAFKA_SESSION_TIMEOUT_S": "6",
    "KAFKA_REBALANCE_TIMEOUT_S": "6",
    "KAFKA_HEARTBEAT_INTERVAL_S": "1",
}
"""Consumer-group timeouts for a service a test starts: joins settle in ~5 s instead of ~32 s
on the local broker (INFRA-NOTES)."""

API_KEYS = ("test-key-primary", "test-key-rotated")
"""Valid on every service :func:`start_service` starts (CONTRACT §7 "Access")."""
KEY_VARIABLES = ("INGEST_API_KEYS", "ATTRIBUTION_API_KEYS", "NOTIFIER_API_KEYS")
AUTH = {"Authorization": f"Bearer {API_KEYS[0]}"}
"""The header every test sends to the ``/v1/*`` routes of every service."""
_INGESTS: dict[str, str] = {}
"""The address of the ingest running on each broker (the last started): the consumers
:func:`start_service` starts after it on the same broker ask it for the keys of sealed
records, unless the test says otherwise."""
READER_KEY = "test-key-reader"
"""Ingest's reader key of its key API (``INGEST_KEY_READER_API_KEYS``), which the consumers
:func:`start_service` starts ask for keys with (``*_INGEST_API_KEY``)."""


def start_service(
    name: str,
    tmp: Path,
    broker: Running,
    wait_ready: bool = True,
    port: int | None = None,
    **env: str,
) -> Running:
    """``name`` started on ``broker`` (on ``port``, default a free one) with the tests'
    settings and ``env``."""
    spec = next(s for s in stack.ALL_SERVICES if s.name == name)
    port = port or free_port()
    service = stack.Service(
        name, f"http://127.0.0.1:{port}", marker=spec.module, spec=spec, port=port
    )
    environment = (
        dict(os.environ)
        | {
            spec.port_variable: str(port),
            "KAFKA_BOOTSTRAP_SERVERS": broker.address,
            "INGEST_HEALTH_INTERVAL_S": "0.2",
            # the tests' receivers listen on 127.0.0.1 over plain http (tests/security/
            # test_egress.py runs the notifier in deployment mode too); a secret is required
            "NOTIFIER_ALLOW_LOOPBACK": "true",
            "NOTIFIER_ALLOW_HTTP": "true",
            "NOTIFIER_WEBHOOK_SECRET": "test-webhook-secret",
            "NOTIFIER_MAX_AGE_S": "0",  # stale recognitions: off unless a test turns it on
            "PYTHONUNBUFFERED": "1",
        }
        | {  # the test keys, unless the test sets the variable or its _FILE form itself
            variable: ",".join(API_KEYS)
            for variable in KEY_VARIABLES
            if variable not in env and f"{variable}_FILE" not in env
        }
        | _key_service(name, broker)
        | env
    )
    running = Running(service, _state(tmp), environment)
    running.start(wait_ready)
    return running


def _key_service(name: str, broker: Running) -> dict[str, str]:
    """Crypto-shredding (docs/security.md "Topics"): ingest takes :data:`READER_KEY` on its
    key API and shreds a key in the erasure's own transaction, as in the local stack
    (ripples/stack.py ``key_settings``); a consumer asks the ingest running on its broker."""
    if name == "ingest":
        return {"INGEST_KEY_READER_API_KEYS": READER_KEY, "INGEST_SHRED_GRACE_S": "0"}
    prefix = name.upper()
    ingest = _INGESTS.get(broker.address)
    if ingest is None:
        return {}
    return {f"{prefix}_INGEST_URL": ingest, f"{prefix}_INGEST_API_KEY": READER_KEY}


@pytest.fixture(scope="module")
def ingest(
    broker: Running, postgres: Running, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    running = start_service(
        "ingest", tmp_path_factory.mktemp("ingest"), broker, DATABASE_URL=postgres.address
    )
    yield running
    running.stop()


@pytest.fixture
async def client(ingest: Running) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {API_KEYS[0]}"}
    async with httpx.AsyncClient(base_url=ingest.address, headers=headers, timeout=15) as c:
        yield c


async def read_events(
    bootstrap: str,
    topic: str,
    ids: set[str],
    timeout_s: float = 20.0,
    opener: Callable[[list[Any]], Awaitable[list[tuple[Any, Any, Any]]]] | None = None,
) -> dict[str, tuple[bytes | None, Envelope]]:
    """Read ``topic`` from the start until every CloudEvent id in ``ids`` was seen (records
    that are not CloudEvents, written by other tests on the shared broker, are passed over).
    ``opener``: (key, value, headers) of each fetched record, e.g. with ingest's sealed
    values opened (:func:`tests.sealed.read_events`); else the records as they are.

    Returns {id: (kafka key, decoded event)}; fails if any id is missing after the timeout.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: dict[str, tuple[bytes | None, Envelope]] = {}
    try:
        async with asyncio.timeout(timeout_s):
            while not ids <= found.keys():
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    triples = (
                        await opener(records)
                        if opener is not None
                        else [(r.key, r.value, r.headers) for r in records]
                    )
                    for key, value, headers in triples:
                        try:
                            event = from_kafka(headers, value)
                        except InvalidEvent:  # another test's poison record on a shared topic
                            continue
                        if event.id in ids:
                            found[event.id] = (key, event)
    except TimeoutError:
        pytest.fail(f"events never reached {topic}: {sorted(ids - found.keys())}")
    finally:
        await consumer.stop()
    return found


async def records_of(
    bootstrap: str, topics: str | Sequence[str] | None = None
) -> list[ConsumerRecord[Any, Any]]:
    """Every record of ``topics`` (one name, several, or every topic when None), each
    partition in offset order, from the start until nothing more comes (not to the end
    offsets: the local broker under-reports them for multi-record batches, see
    tests/connectors/conftest.py)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    out: list[ConsumerRecord[Any, Any]] = []
    try:
        names = (
            sorted(await consumer.topics())
            if topics is None
            else [topics]
            if isinstance(topics, str)
            else list(topics)
        )
        await consumer.topics()
        partitions = [
            TopicPartition(t, p) for t in names for p in consumer.partitions_for_topic(t) or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        quiet = 0
        async with asyncio.timeout(90):
            while quiet < 2:
                batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
                quiet = 0 if batches else quiet + 1
                for records in batches.values():
                    out.extend(records)
    finally:
        await consumer.stop()
    return out


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample (by its labels, in any order) in a Prometheus exposition."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + ("{" if labels else " ")):
            series, value = line.rsplit(" ", 1)
            found = series[len(name) :].strip("{}")
            if ",".join(sorted(found.split(","))) == wanted or (not labels and not found):
                return float(value)
    raise AssertionError(f"no sample {name}{{{wanted}}}")
