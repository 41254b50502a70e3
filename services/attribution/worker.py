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

from services.attribution import kids, metrics, store
from services.attribution.api import create_api
from services.attribution.settings import AttributionSettings
from shared import failures, sealing, streaming
from shared.cloudevents import InvalidEvent
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
SEALED_TOPICS = frozenset({EMPLOYEES.name, APPLICANTS.name})
"""The input topics ingest publishes sealed records to (docs/security.md "Topics"): the
records of the others (posts, links: most of the volume) are not even searched."""
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


class KeyService(mode.Service):  # type: ignore[misc]  # mode is untyped here
    """The client of ingest's key API (``shared.sealing.KeyClient``), when the settings name
    it; made at once (httpx connects on first use, in the worker's loop), so no batch can
    come before it, and closed at stop."""

    def __init__(self, settings: AttributionSettings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client: sealing.KeyClient | None = None
        if settings.ingest_url and settings.ingest_api_key:
            self.client = sealing.KeyClient(
                settings.ingest_url, settings.ingest_api_key.split(",")[0].strip()
            )
        else:  # said at start, so an operator who left them out sees why records dead-letter
            log.warning(
                "no key service: ATTRIBUTION_INGEST_URL and ATTRIBUTION_INGEST_API_KEY(_FILE) "
                "are not both set, so every sealed record is dead-lettered"
            )

    async def on_stop(self) -> None:
        if self.client is not None:
            await self.client.aclose()


Item = tuple[Any, Envelope, sealing.Opening | None]
"""A record of a batch, its event and, when it was sealed, its opening."""


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
    keys = KeyService(settings)
    app.service(keys)
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

    async def send_outbox(conn: Any, rows: Sequence[Any]) -> tuple[list[int], BaseException | None]:
        """Send the rows; the seqs done with (acknowledged by the broker, or dead-lettered as
        never sendable) and the first transient failure, if any (those rows stay)."""
        pending: list[tuple[Any, bytes | None, Any]] = []
        refused: list[tuple[Any, bytes | None, BaseException]] = []
        first_transient: BaseException | None = None
        done: list[int] = []
        decoded: list[tuple[Any, Envelope]] = []
        for row in rows:
            try:
                event = msgspec.json.decode(row["event"], type=_OUTPUT_TYPES[row["topic"]])
            except Exception as exc:
                refused.append((row, None, exc))
                continue
            decoded.append((row, event))
        # sealed under the applicant's key when it has a kid (kids.seal_outputs); a
        # transient failure (ingest away) leaves every row for the next flush
        records = await kids.seal_outputs(conn, keys.client, [e for _, e in decoded])
        for (row, event), record in zip(decoded, records, strict=True):
            if record is None:  # its applicant was erased: never sent
                metrics.EVENTS.labels(event.type, "erased").inc()
                done.append(row["seq"])
                continue
            key, body, headers = record
            try:
                sent = await outputs.producer.send(row["topic"], body, key=key, headers=headers)
            except Exception as exc:
                if failures.classify(exc) is failures.Failure.TRANSIENT:
                    first_transient = exc
                    break
                refused.append((row, body, exc))
                continue
            pending.append((row, body, sent))
        outcomes = await asyncio.gather(*(f for _, _, f in pending), return_exceptions=True)
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
                    done, error = await send_outbox(conn, rows)
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

    async def commit(items: Sequence[Item]) -> store.BatchResult:
        """One transaction: the applicant kids resolved (kids.resolve), the batch applied,
        the erased applicants' kids recorded (their keys then leave the cache)."""
        pool = await db.pool()
        async with pool.acquire() as conn, conn.transaction():
            resolved = await kids.resolve(conn, items)
            events = [e for _, e in resolved.events]
            result = await store.apply_batch(conn, events, settings)
            forgotten = await kids.finish(conn, events, resolved.erased_kids)
        for event_type, count in resolved.dropped.items():
            result.outcomes[(event_type, "erased")] += count
        if keys.client is not None:
            keys.client.forget(forgotten)
        return result

    async def process(records: Sequence[Any]) -> None:
        started = time.perf_counter()
        # sealed records opened first (one key lookup for the batch's kids not cached;
        # ingest away raises, and the intake hands the same batch over again)
        openings = await sealing.open_records(records, keys.client, topics=SEALED_TOPICS)
        plain = not openings
        decoded = streaming.decode_batch(
            records if plain else [openings.get(i, r) for i, r in enumerate(records)]
        )
        events: list[Item] = []
        for index, (record, event) in enumerate(zip(records, decoded, strict=True)):
            if streaming.compaction_tombstone(record):
                continue  # a removed employee's preference key: nothing to apply
            opening = None if plain else openings.get(index)
            if opening is not None and opening.poison is not None:
                label = event.type if not isinstance(event, InvalidEvent) else "unknown"
                await dead_letter(record, "sealed", opening.poison, label)
                continue
            if isinstance(event, InvalidEvent):
                label = event.event_types[0] if event.event_types else "unknown"
                await dead_letter(record, "invalid_event", str(event), label)
                continue
            if not isinstance(event, INBOUND):
                await dead_letter(record, "unexpected_type", event.type, "unknown")
                continue
            if opening is not None and opening.shredded:
                event = sealing.without_shredded(event)
            events.append((record, event, opening))
        try:
            result = await failures.retry_transient(
                lambda: commit(events), on_retry=transient("database")
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
        for _, event, _ in events:
            metrics.DELAY.observe(max(0.0, now - event.time.timestamp()))
        metrics.CREDITS.inc(result.credits_assigned)
        for kind, count in result.recognitions.items():
            metrics.RECOGNITIONS.labels(kind).inc(count)
        metrics.BATCH_SIZE.observe(len(records))
        metrics.BATCH_DURATION.observe(time.perf_counter() - started)
        metrics.LAST_PROCESSED.set(now)
        if result.outbox:
            outbox_waiting.set()  # sent by `sender`, off the batch path

    async def one_by_one(events: Sequence[Item]) -> store.BatchResult:
        total = store.BatchResult()
        for item in events:
            record, event, _ = item
            try:
                result = await failures.retry_transient(
                    lambda: commit([item]),  # noqa: B023 - awaited before the next event
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
