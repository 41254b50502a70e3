"""Fixtures of the notifier tests: a migrated ledger database, local vendor peers, and a
dispatcher driven by a clock the test moves."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from services.notifier import egress, store
from services.notifier.channels import Channels
from services.notifier.dispatcher import Dispatcher
from services.notifier.messages import Templates
from services.notifier.settings import NotifierSettings
from shared import db
from shared.cloudevents import to_kafka
from shared.events import (
    EmployeeUpserted,
    EmployeeUpsertedEvent,
    Envelope,
    Notify,
    RecognitionDue,
    RecognitionDueEvent,
    RecognitionFacts,
)
from tests.conftest import Running, fresh_database
from tests.notifier.peers import HttpPeer

START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
SECRET = "test-webhook-secret"
_ids = itertools.count(1)


@pytest.fixture(scope="module")
async def notifier_db(postgres: Running) -> AsyncIterator[str]:
    """An empty database of the test module's own, for a notifier process it starts."""
    async with fresh_database(postgres, "notifier") as url:
        yield url


@pytest.fixture(scope="module")
async def producer(broker: Running) -> AsyncIterator[AIOKafkaProducer]:
    client = AIOKafkaProducer(bootstrap_servers=broker.address)
    await client.start()
    yield client
    await client.stop()


async def produce(broker: Running, events: Sequence[Envelope]) -> None:
    """Produce ``events`` (binary-mode CloudEvents, keyed as the contract says) and wait
    until the broker has them all."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.address, linger_ms=5)
    await producer.start()
    try:
        for event in events:
            key, value, headers = to_kafka(event)
            await producer.send(event.topic.name, value, key=key, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


def recognition_event(
    recognition_id: str,
    employee_id: str,
    kind: str = "reach_milestone",
    facts: RecognitionFacts | None = None,
    due_at: datetime = START,
) -> RecognitionDueEvent:
    return RecognitionDueEvent(
        specversion="1.0",
        id=f"rec-{next(_ids)}",
        source="urn:ripples:attribution",
        time=due_at,
        data=RecognitionDue(
            recognition_id=recognition_id,
            kind=kind,  # type: ignore[arg-type]
            employee_id=employee_id,
            due_at=due_at,
            facts=facts or RecognitionFacts(threshold=10_000, impressions=10_400),
        ),
    )


def employee_event(
    employee_id: str,
    channel: str,
    address: str | None,
    locale: str = "en",
    opt_out: bool = False,
    time: datetime = START,
    name: str = "Mette Holm",
) -> EmployeeUpsertedEvent:
    return EmployeeUpsertedEvent(
        specversion="1.0",
        id=f"hr-{next(_ids)}",
        source="urn:example:hr",
        time=time,
        data=EmployeeUpserted(
            employee_id=employee_id,
            display_name=name,
            locale=locale,  # type: ignore[arg-type]
            notify=Notify(channel=channel, address=address),  # type: ignore[arg-type]
            recognition_opt_out=opt_out,
        ),
    )


class Harness:
    """The real dispatcher, ledger and channels; time moves only when the test says so."""

    def __init__(self, pool: asyncpg.Pool, settings: NotifierSettings) -> None:
        self.pool = pool
        self.now = START
        self.dead: list[tuple[bytes, bytes, dict[str, bytes]]] = []
        self.client = egress.client(settings.allow_loopback, settings.request_timeout_s)
        self.settings = settings
        self.slept: list[float] = []
        self.dispatcher = self._dispatcher(settings)

    def _dispatcher(self, settings: NotifierSettings) -> Dispatcher:
        async def dead_letter(key: bytes, value: bytes, headers: dict[str, bytes]) -> None:
            self.dead.append((key, value, headers))

        async def sleep(seconds: float) -> None:
            self.slept.append(seconds)

        return Dispatcher(
            settings,
            self.pool,
            Channels(settings, self.client),
            Templates.load(Path(settings.templates_dir))
            if settings.templates_dir
            else Templates.load(),
            dead_letter,
            lambda: self.now,
            rand=lambda: 1.0,
            monotonic=lambda: self.now.timestamp(),
            sleep=sleep,
        )

    def configure(self, **changes: Any) -> None:
        self.settings = dataclasses.replace(self.settings, **changes)
        self.dispatcher = self._dispatcher(self.settings)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    async def employee(self, *events: Any) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await store.record_employees(conn, list(events), self.now)

    async def recognize(self, *events: RecognitionDueEvent) -> None:
        received = [store.Received(e, 0, offset) for offset, e in enumerate(events)]
        async with self.pool.acquire() as conn, conn.transaction():
            await store.record_recognitions(conn, received, self.now)

    async def dispatch(self) -> int:
        return await self.dispatcher.dispatch_once()

    async def ledger(self, employee_id: str) -> dict[str, dict[str, Any]]:
        """Every ledger column of the employee's rows (the API shows fewer)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "select * from notifier_deliveries where employee_id = $1 order by due_at",
                employee_id,
            )
        return {row["recognition_id"]: dict(row) for row in rows}


@pytest.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(database)
    await db.migrate(conn, store.COMPONENT, store.MIGRATIONS)
    await conn.close()
    created = await asyncpg.create_pool(database, min_size=1, max_size=4)
    assert created is not None
    yield created
    await created.close()


@pytest.fixture
async def harness(pool: asyncpg.Pool) -> AsyncIterator[Harness]:
    settings = NotifierSettings(
        webhook_secret=SECRET,
        max_attempts=4,
        backoff_base_s=2.0,
        backoff_max_s=60.0,
        request_timeout_s=5.0,
        attempt_deadline_s=8.0,
        channel_rate_per_s=1000.0,
        channel_burst=1000,
        max_age_s=0.0,  # stale recognitions: off unless a test turns it on
        # the peers listen on 127.0.0.1 over plain http (tests/security covers the refusals)
        allow_loopback=True,
        allow_http=True,
        slack_allowed_hosts=(),
        teams_allowed_hosts=(),
    )
    harness = Harness(pool, settings)
    yield harness
    await harness.client.aclose()


@pytest.fixture
async def peer() -> AsyncIterator[HttpPeer]:
    server = HttpPeer()
    await server.start()
    yield server
    await server.stop()
