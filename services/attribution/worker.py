"""The faust worker: the four input topics read in bulk from the faust app's consumer
(:class:`shared.streaming.BulkIntake`: whole fetches, no faust event per record), in
batches; each batch is decoded in one pass (:func:`shared.streaming.decode_batch`) and is
one PostgreSQL transaction (:func:`store.apply_batch`); its offsets are acknowledged to
faust only after that transaction committed. Output events are sent from the outbox after
the commit; poison records go to the dead-letter topic. The results API is served from the
same event loop.

Failures are classified once (:mod:`shared.failures`): a transient one (database restarting,
too many connections, a cancelled statement, a serialization failure, a broker away) backs
off and retries the same batch, nothing acknowledged and nothing dead-lettered; only an
event the database can never store, or a record that is not a contract event, is
dead-lettered, alone, with its reason. An outbox row the broker can never take (too large,
refused, not decodable) is dead-lettered and counted; the rest are sent."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import asyncpg
import faust
import mode
import msgspec
from aiokafka import errors as kafka_errors

from services.attribution import metrics, store
from services.attribution.api import create_api
from services.attribution.settings import AttributionSettings
from shared import failures, streaming
from shared.cloudevents import InvalidEvent, to_kafka
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
        except Exception:  # a probe: whatever the failure, not ready
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
    flushing = asyncio.Lock()
    outbox_waiting = asyncio.Event()

    async def dead_letter(record: Any, reason: str, detail: str, event_type: str) -> None:
        """Copy a poison record (an aiokafka record) to the dead-letter topic and wait for
        the broker's ack (the batch is acknowledged after this); a broker away is waited
        for, never skipped."""
        headers = streaming.dead_letter_headers(
            "attribution",
            f"{reason}: {detail}",
            record.topic,
            record.partition,
            record.offset,
            dict(record.headers or ()),
        )

        async def send() -> None:
            sent = await dead_letters.send(key=record.key, value=record.value, headers=headers)
            await sent

        await failures.retry_transient(send, on_retry=transient("broker"))
        metrics.DEAD_LETTERS.labels(reason).inc()
        metrics.EVENTS.labels(event_type, "dead_lettered").inc()

    def transient(dependency: str) -> Callable[[BaseException, float], None]:
        def note(exc: BaseException, delay: float) -> None:
            metrics.TRANSIENT_FAILURES.labels(dependency).inc()
            log.warning(
                f"{dependency} unavailable; trying again",
                extra={"error": failures.reason(exc), "retry_in_s": round(delay, 2)},
            )

        return note

    async def send_outbox(rows: Sequence[Any]) -> tuple[list[int], BaseException | None]:
        """Send the rows; the seqs done with (acknowledged by the broker, or dead-lettered as
        never sendable) and the first transient failure, if any (those rows stay)."""
        pending: list[tuple[Any, bytes | None, Any]] = []
        refused: list[tuple[Any, bytes | None, BaseException]] = []
        first_transient: BaseException | None = None
        for row in rows:
            value: bytes | None = None
            try:
                event = msgspec.json.decode(row["event"], type=_OUTPUT_TYPES[row["topic"]])
                key, value, headers = to_kafka(event)
                sent = await outputs.producer.send(row["topic"], value, key=key, headers=headers)
            except Exception as exc:
                if failures.classify(exc) is failures.Failure.TRANSIENT:
                    first_transient = exc
                    break
                refused.append((row, value, exc))
                continue
            pending.append((row, value, sent))
        outcomes = await asyncio.gather(*(f for _, _, f in pending), return_exceptions=True)
        done: list[int] = []
        for (row, value, _), outcome in zip(pending, outcomes, strict=True):
            if not isinstance(outcome, BaseException):  # acknowledged (acks=all)
                done.append(row["seq"])
            elif failures.classify(outcome) is failures.Failure.TRANSIENT:
                first_transient = first_transient or outcome
            else:
                refused.append((row, value, outcome))
        for row, value, failure in refused:
            try:
                await dead_letter_outbox(row, value, failure)
            except Exception as error:  # the dead-letter topic away too: the row stays
                first_transient = first_transient or error
                continue
            done.append(row["seq"])
        return done, first_transient

    async def dead_letter_outbox(row: Any, value: bytes | None, exc: BaseException) -> None:
        """A row the broker can never take, to the dead-letter topic with its reason; its
        event's bytes only while they fit (a row too large for the topic goes without)."""
        headers = streaming.dead_letter_headers(
            "attribution",
            f"unsendable: {failures.reason(exc)}",
            "attribution.outbox",
            0,
            int(row["seq"]),
            {"x-ripples-output-topic": str(row["topic"]).encode()[:200]},
        )
        raw = value if value is not None else bytes(row["event"])
        try:
            await outputs.producer.send_and_wait(
                DEAD_LETTERS.name, raw, headers=list(headers.items())
            )
        except Exception as error:
            if failures.classify(error) is failures.Failure.TRANSIENT:
                raise
            headers["x-ripples-value-dropped"] = failures.reason(error).encode()
            await outputs.producer.send_and_wait(
                DEAD_LETTERS.name, b"", headers=list(headers.items())
            )
        metrics.DEAD_LETTERS.labels("unsendable").inc()
        log.error("outbox row dead-lettered", extra={"error": failures.reason(exc)})

    async def flush_outbox() -> None:
        """Send the outbox, oldest first, a locked chunk at a time (another worker on the
        same database takes other rows); a transient failure ends the flush after deleting
        what was sent, and is raised for the caller to back off."""
        async with flushing:
            pool = await db.pool()
            while True:
                async with pool.acquire() as conn, conn.transaction():
                    rows = await store.pending_outbox(conn)
                    if not rows:
                        return
                    done, error = await send_outbox(rows)
                    await store.delete_outbox(conn, done)
                if error is not None:
                    raise error

    async def keep_flushing() -> None:
        """Flush until the outbox is empty, backing off while the broker or the database is
        away; never raises (a defect is logged and tried again later)."""
        backoff = failures.Backoff()
        while True:
            try:
                await flush_outbox()
                return
            except Exception as exc:
                delay = backoff.next_delay()
                if failures.classify(exc) is failures.Failure.TRANSIENT:
                    kafka = isinstance(exc, kafka_errors.KafkaError)
                    transient("broker" if kafka else "database")(exc, delay)
                else:
                    log.error("outbox not flushed", extra={"error": failures.reason(exc)})
                await asyncio.sleep(delay)

    async def commit(events: Sequence[Envelope]) -> store.BatchResult:
        pool = await db.pool()
        async with pool.acquire() as conn, conn.transaction():
            return await store.apply_batch(conn, events, settings)

    async def process(records: Sequence[Any]) -> None:
        started = time.perf_counter()
        events: list[tuple[Any, Envelope]] = []
        for record, event in zip(records, streaming.decode_batch(records), strict=True):
            if streaming.compaction_tombstone(record):
                continue  # a removed employee's preference key: nothing to apply
            if isinstance(event, InvalidEvent):
                label = event.event_types[0] if event.event_types else "unknown"
                await dead_letter(record, "invalid_event", str(event), label)
                continue
            if not isinstance(event, INBOUND):
                await dead_letter(record, "unexpected_type", event.type, "unknown")
                continue
            events.append((record, event))
        try:
            result = await failures.retry_transient(
                lambda: commit([e for _, e in events]), on_retry=transient("database")
            )
        except Exception as exc:
            # an event the database refuses: store the rest one by one, dead-letter it.
            # Only the error class is logged: messages may quote values.
            log.error(
                "batch refused; storing its events one by one",
                extra={"error": failures.reason(exc)},
            )
            result = await one_by_one(events)
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
        if result.outbox:
            outbox_waiting.set()  # sent by `sender`, off the batch path

    async def one_by_one(events: Sequence[tuple[Any, Envelope]]) -> store.BatchResult:
        total = store.BatchResult()
        for record, event in events:
            try:
                result = await failures.retry_transient(
                    lambda: commit([event]),  # noqa: B023 - awaited before the next event
                    on_retry=transient("database"),
                )
            except Exception as exc:  # data (or a defect) of this one event
                detail = f"{failures.classify(exc).value}: {failures.reason(exc)}"
                await dead_letter(record, "processing_error", detail, event.type)
                continue
            total.outcomes.update(result.outcomes)
            total.credits_assigned += result.credits_assigned
            total.recognitions.update(result.recognitions)
            total.outbox += result.outbox
        return total

    intake = streaming.BulkIntake(settings.batch_size, settings.batch_within_s, process)
    intake.attach(app, inputs)
    processed = intake.positions  # the next offset to process per partition

    @app.task  # type: ignore[untyped-decorator]
    async def sender() -> None:
        """Send the outbox as soon as a batch wrote to it (the timer below is the fallback)."""
        while True:
            await outbox_waiting.wait()
            outbox_waiting.clear()
            await keep_flushing()

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
        outbox_waiting.set()  # the fallback: `sender` flushes (and backs off) alone

    async def ready() -> dict[str, bool]:
        return {
            "database": await db.ready(),
            "partitions_assigned": bool(app.consumer.assignment()),
        }

    app.service(
        streaming.HttpServer(create_api(db.pool, ready, settings), settings.host, settings.port)
    )
    return app
