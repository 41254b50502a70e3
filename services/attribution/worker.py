"""The faust worker: one agent (concurrency 1) over the four input topics, taking batches;
each batch is one PostgreSQL transaction (:func:`store.apply_batch`); output events are sent
from the outbox after the commit; poison records go to the dead-letter topic. The results
API is served from the same event loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import faust
import mode
import msgspec

from services.attribution import metrics, store
from services.attribution.api import create_api
from services.attribution.settings import AttributionSettings
from shared import streaming
from shared.cloudevents import InvalidEvent, from_kafka, to_kafka
from shared.db import create_pool, ping
from shared.events import (
    APPLICANTS,
    CREDITS,
    DEAD_LETTERS,
    EMPLOYEES,
    INBOUND,
    LINKS,
    POSTS,
    RECOGNITIONS,
    CreditAssignedEvent,
    Envelope,
    RecognitionDueEvent,
)
from shared.kafka import producer
from shared.settings import DatabaseSettings, KafkaSettings

log = logging.getLogger(__name__)

APP_ID = "ripples-attribution"
INPUTS = (EMPLOYEES, POSTS, LINKS, APPLICANTS)
_RETRY_S = 1.0
_TRANSIENT = (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError, TimeoutError)
_OUTPUT_TYPES: Mapping[str, type[Envelope]] = {
    CREDITS.name: CreditAssignedEvent,
    RECOGNITIONS.name: RecognitionDueEvent,
}


class OutputProducer(mode.Service):  # type: ignore[misc]  # mode is untyped here
    """The aiokafka producer of the output topics (acks=all), started and stopped with the
    worker. Cheaper per record than faust's topic.send for the outbox's bulk sends."""

    def __init__(self, kafka: KafkaSettings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kafka = kafka
        self._producer: Any = None

    @property
    def producer(self) -> Any:
        assert self._producer is not None, "the output producer has not started"
        return self._producer

    async def on_start(self) -> None:
        self._producer = producer(self.kafka, linger_ms=5)  # needs the running loop
        await self._producer.start()

    async def on_stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()


class Database:
    """The process's one pool, created in the worker's event loop on first use."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def pool(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is None:
                self._pool = await create_pool(self.settings)
            return self._pool

    async def ready(self) -> bool:
        try:
            pool = await asyncio.wait_for(self.pool(), 2)
        except (*_TRANSIENT, asyncpg.PostgresError):
            return False
        return await ping(pool)


def create_worker(
    settings: AttributionSettings, kafka: KafkaSettings, database: DatabaseSettings
) -> faust.App:
    app = streaming.faust_app(APP_ID, kafka)
    inputs = app.topic(
        *[t.name for t in INPUTS],
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    dead_letters = streaming.topic(app, DEAD_LETTERS)
    outputs = OutputProducer(kafka)
    app.service(outputs)
    db = Database(database)
    metrics.initialise(INPUTS)
    processed: dict[Any, int] = {}
    flushing = asyncio.Lock()
    outbox_waiting = asyncio.Event()

    async def dead_letter(record: Any, reason: str, detail: str, event_type: str) -> None:
        message = record.message
        await dead_letters.send(
            key=record.key,
            value=record.value,
            headers=streaming.dead_letter_headers(
                "attribution",
                f"{reason}: {detail}",
                message.topic,
                message.partition,
                message.offset,
                dict(record.headers or {}),
            ),
        )
        metrics.DEAD_LETTERS.labels(reason).inc()
        metrics.EVENTS.labels(event_type, "dead_lettered").inc()

    async def flush_outbox() -> None:
        async with flushing:
            pool = await db.pool()
            while True:
                async with pool.acquire() as conn:
                    rows = await store.pending_outbox(conn)
                if not rows:
                    return
                pending = []
                for row in rows:
                    event = msgspec.json.decode(row["event"], type=_OUTPUT_TYPES[row["topic"]])
                    key, value, headers = to_kafka(event)
                    pending.append(
                        await outputs.producer.send(row["topic"], value, key=key, headers=headers)
                    )
                await asyncio.gather(*pending)  # every record acknowledged (acks=all)
                async with pool.acquire() as conn:
                    await store.delete_outbox(conn, [row["seq"] for row in rows])

    async def commit(events: Sequence[Envelope]) -> store.BatchResult:
        pool = await db.pool()
        async with pool.acquire() as conn, conn.transaction():
            return await store.apply_batch(conn, events, settings)

    async def process(records: Sequence[Any]) -> None:
        started = time.perf_counter()
        events: list[tuple[Any, Envelope]] = []
        for record in records:
            try:
                event = from_kafka(record.headers.items(), record.value)
            except InvalidEvent as exc:
                label = exc.event_types[0] if exc.event_types else "unknown"
                await dead_letter(record, "invalid_event", str(exc), label)
                continue
            if not isinstance(event, INBOUND):
                await dead_letter(record, "unexpected_type", event.type, "unknown")
                continue
            events.append((record, event))
        result = store.BatchResult()
        while True:
            try:
                result = await commit([e for _, e in events])
                break
            except _TRANSIENT as exc:
                log.warning("database unavailable; retrying the batch", extra={"error": str(exc)})
                await asyncio.sleep(_RETRY_S)
            except asyncpg.PostgresError as exc:
                # an event the database refuses: store the rest one by one, dead-letter it.
                # Only the error class is logged: messages may quote values.
                log.error(
                    "batch refused; storing its events one by one",
                    extra={"error": type(exc).__name__},
                )
                result = await one_by_one(events)
                break
        now = time.time()
        for (event_type, outcome), count in result.outcomes.items():
            metrics.EVENTS.labels(event_type, outcome).inc(count)
        for _, event in events:
            metrics.DELAY.observe(max(0.0, now - event.time.timestamp()))
        metrics.CREDITS.inc(result.credits_assigned)
        for kind, count in result.recognitions.items():
            metrics.RECOGNITIONS.labels(kind).inc(count)
        metrics.BATCH_SIZE.observe(len(records))
        metrics.BATCH_DURATION.observe(time.perf_counter() - started)
        metrics.LAST_PROCESSED.set(now)
        for record in records:
            processed[record.message.tp] = record.message.offset + 1
        if result.outbox:
            outbox_waiting.set()  # sent by `sender`, off the batch path

    async def one_by_one(events: Sequence[tuple[Any, Envelope]]) -> store.BatchResult:
        total = store.BatchResult()
        for record, event in events:
            try:
                result = await commit([event])
            except _TRANSIENT:
                raise
            except asyncpg.PostgresError as exc:
                await dead_letter(record, "processing_error", type(exc).__name__, event.type)
                continue
            total.outcomes.update(result.outcomes)
            total.credits_assigned += result.credits_assigned
            total.recognitions.update(result.recognitions)
            total.outbox += result.outbox
        return total

    @app.agent(inputs, concurrency=1)  # type: ignore[untyped-decorator]
    async def consume(stream: Any) -> None:
        async for records in streaming.take_batches(
            stream, settings.batch_size, within=settings.batch_within_s
        ):
            await process(records)

    @app.task  # type: ignore[untyped-decorator]
    async def sender() -> None:
        """Send the outbox as soon as a batch wrote to it (the timer below is the fallback)."""
        while True:
            await outbox_waiting.wait()
            outbox_waiting.clear()
            try:
                await flush_outbox()
            except (*_TRANSIENT, asyncpg.PostgresError) as exc:
                log.warning("outbox not flushed yet", extra={"error": str(exc)})

    @app.timer(interval=1.0)  # type: ignore[untyped-decorator]
    async def housekeeping() -> None:
        for spec in INPUTS:
            lag = 0
            for tp in app.consumer.assignment():
                if tp.topic != spec.name:
                    continue
                highwater = app.consumer.highwater(tp) or 0
                lag += max(0, highwater - processed.get(tp, highwater))
            metrics.LAG.labels(spec.name).set(lag)
        streaming.release_native_memory()
        try:
            await flush_outbox()
        except (*_TRANSIENT, asyncpg.PostgresError) as exc:
            log.warning("outbox not flushed yet", extra={"error": str(exc)})

    async def ready() -> dict[str, bool]:
        return {
            "database": await db.ready(),
            "partitions_assigned": bool(app.consumer.assignment()),
        }

    app.service(
        streaming.HttpServer(create_api(db.pool, ready, settings), settings.host, settings.port)
    )
    return app
