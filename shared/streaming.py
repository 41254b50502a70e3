"""faust-streaming pieces shared by the consuming services (attribution, notifier).

- :func:`faust_app` builds an app from the shared Kafka settings, with short consumer-group
  timeouts where the settings ask for them, raw bytes in and out (the records are CloudEvents
  in binary mode; :func:`shared.cloudevents.from_kafka` decodes them), and no faust web
  server: each service serves its own Starlette API through :class:`HttpServer`.
- :func:`dead_letter_headers` describes a record that could not be processed, for the
  dead-letter topic, so a poison event never stops a stream and is never silently lost;
  :func:`decode` turns *any* record (a tombstone, garbage bytes) into its event or
  :class:`~shared.cloudevents.InvalidEvent`, never another exception;
  :func:`compaction_tombstone` tells the tombstones of a compacted topic, which are skipped.
- :class:`BulkIntake` takes batches straight from the faust app's consumer, whole fetches
  at a time (attribution: no faust event per record), acknowledging a batch's offsets to
  faust only after the handler returned; :func:`decode_batch` decodes a batch in one pass.
- :func:`handle_batches` hands each batch of :func:`take_batches` to the service and
  tries the same batch again (backing off, :mod:`shared.failures`) if the handler raises,
  so a batch is acknowledged only once it was applied or dead-lettered.
- :func:`run` starts a faust worker that keeps the project's JSON logging.

Design rules (INFRA-NOTES): agent concurrency 1 per partition; at-least-once delivery with
idempotent effects in PostgreSQL; catch per-event errors and dead-letter them (an exception
inside an agent acks the event and it is never retried).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import faust
import mode
import uvicorn
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types.tuples import ack_lock
from starlette.types import ASGIApp

from shared import failures
from shared.cloudevents import FieldError, InvalidEvent, from_kafka
from shared.events import TOPICS, Envelope, Topic
from shared.settings import KafkaSettings

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # glibc mallopt parameters
_libc: Any = None


def _glibc() -> Any:
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL("libc.so.6")
            _libc.malloc_trim  # noqa: B018 - glibc only
        except (OSError, AttributeError):
            _libc = False
    return _libc


def bound_native_memory() -> None:
    """Keep a long-running worker's resident memory from ratcheting up (glibc only; call
    before any thread starts). Two allocator defaults made attribution's RSS grow with every
    backlog it worked through: an arena per thread (faust's consumer thread allocates the
    fetched record buffers, the event loop frees them), and an mmap threshold that rises
    after the first large free, so later fetch-sized buffers land in the arenas and stay.
    Two arenas and a fixed 128 KiB threshold, plus :func:`release_native_memory` once a
    second, keep what was freed returnable to the system."""
    libc = _glibc()
    if libc:
        libc.mallopt(_M_ARENA_MAX, 2)
        libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)


def release_native_memory() -> None:
    """Give freed heap memory back to the system (``malloc_trim``; glibc only)."""
    libc = _glibc()
    if libc:
        libc.malloc_trim(0)


def broker_urls(bootstrap_servers: str) -> list[str]:
    """``host1:9092,host2:9092`` → faust's ``kafka://`` URLs."""
    return [
        f"kafka://{server.strip()}" for server in bootstrap_servers.split(",") if server.strip()
    ]


FETCH_MAX_WAIT_MS = 100
"""How long the broker may hold a fetch that found no new records. faust hard-codes 1500 ms;
a broker that holds every fetch close to that (Tansu does: 1500 ms gave a median 340 ms from
produce to consume, 100 ms gave 30 ms) adds it to every event's latency at low load. At high
load fetches return full before the wait, so throughput does not change."""


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):  # type: ignore[misc]
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads it when the consumer starts (its fetcher is created then)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class _Consumer(faust_aiokafka.Consumer):  # type: ignore[misc]
    """faust's aiokafka consumer, with the fetch wait set and, when the app has a
    :class:`BulkIntake`, whole fetches handed to it instead of one record at a time through
    faust's conductor, channels and streams (see :class:`BulkIntake`)."""

    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - run by faust
        intake: BulkIntake | None = getattr(self.app, "bulk_intake", None)
        if intake is None:
            await super()._drain_messages(fetcher)
            return
        try:
            await self._drain_in_bulk(fetcher, intake)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    async def _drain_in_bulk(self, fetcher: Any, intake: BulkIntake) -> None:
        """faust's ``_drain_messages`` a fetch at a time: the same flow control
        (``_wait_next_records``), the same filters (active partitions, the read offset, the
        consumer generation) and gap bookkeeping, but no faust message, event or task per
        record: the fetched aiokafka records go to the intake as they are."""
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        while not (self._stopped.is_set() or fetcher._stopped.is_set()):
            records, active = await self._wait_next_records(1.0)
            await asyncio.sleep(0)
            if not self.flow_active:  # as faust's getmany: back to the committed offsets
                try:
                    await self.perform_seek()
                except Exception as exc:
                    log.warning("seek after flow stopped failed", extra={"error": repr(exc)})
                continue
            if not records or self.should_stop:
                continue
            generation = self.app.consumer_generation_id
            parts: list[tuple[Any, list[Any], int]] = []
            for tp, fetched in records.items():
                if active is not None and tp not in active and tp not in self._buffered_partitions:
                    continue
                last = read_offset[tp]
                if last is not None and fetched and fetched[0].offset < last:
                    fetched = [r for r in fetched if r.offset >= last]
                if not fetched:
                    continue
                if last and fetched[0].offset - last > 1 and acks_enabled_for(tp.topic):
                    await self._add_gap(tp, last + 1, fetched[0].offset)
                read_offset[tp] = fetched[-1].offset
                parts.append((tp, fetched, fetched[-1].offset + 1))
            if parts:
                await self.wait_first(
                    intake.put(Chunk(generation, parts)), self.suspend_flow.wait()
                )

    def ack_ranges(self, ranges: Mapping[Any, tuple[int, int]]) -> int:
        """Acknowledge every offset from ``first`` to ``last`` of each partition (faust's
        ``ack`` for a message, for a whole range at once); faust commits them with its
        commit timer, on a rebalance and at stop, as it commits acknowledged messages.
        Offsets in a range that had no record (compaction, transaction markers) are
        acknowledged too: the range was fetched whole."""
        count = 0
        with ack_lock:
            for tp, (first, last) in ranges.items():
                committed = self._committed_offset[tp]
                if committed is not None:
                    first = max(first, committed)
                index = self._acked_index[tp]
                new = [o for o in range(first, last + 1) if o not in index]
                index.update(new)
                self._acked[tp].extend(new)
                count += len(new)
            self._n_acked += count
        return count

    async def wait_empty(self) -> None:
        """faust waits here for what its streams have started (a rebalance, a stop); the
        intake's batch in progress is waited for too, so its offsets are committed before
        its partitions move."""
        intake: BulkIntake | None = getattr(self.app, "bulk_intake", None)
        if intake is not None:
            await intake.wait_idle(lambda: bool(self.should_stop))
        await super().wait_empty()


class _Transport(faust_aiokafka.Transport):  # type: ignore[misc]
    Consumer = _Consumer


class _App(faust.App):  # type: ignore[misc]
    """faust's app with the consumer's fetch wait set (:data:`FETCH_MAX_WAIT_MS`) and, when
    :meth:`BulkIntake.attach` gave it one, a :class:`BulkIntake` its consumer hands whole
    fetches to."""

    bulk_intake: BulkIntake | None = None

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)


def faust_app(app_id: str, kafka: KafkaSettings, **overrides: Any) -> faust.App:
    """A faust app for one service; ``app_id`` is also its consumer group id. Its consumer
    asks the broker to answer a fetch within :data:`FETCH_MAX_WAIT_MS`."""
    options: dict[str, Any] = {
        "broker": broker_urls(kafka.bootstrap_servers),
        "broker_client_id": f"{kafka.client_id}-{app_id}",
        "broker_session_timeout": kafka.session_timeout_s,
        "broker_heartbeat_interval": kafka.heartbeat_interval_s,
        "broker_rebalance_timeout": kafka.rebalance_timeout_s,
        "broker_request_timeout": max(kafka.request_timeout_s, kafka.session_timeout_s + 5),
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "key_serializer": "raw",
        "value_serializer": "raw",
        "topic_allow_declare": False,  # topics are created with explicit partition counts
        "topic_disable_leader": True,
        "store": "memory://",
        "web_enabled": False,
        # what the consumer prefetches per partition (faust's default is 1 MiB): with 36
        # input partitions and a backlog that was up to 36 MiB of fetched records held
        "consumer_max_fetch_size": 256 * 1024,
    }
    if kafka.security_protocol != "PLAINTEXT":
        options["broker_credentials"] = _credentials(kafka)
    return _App(app_id, **(options | overrides))


def _credentials(kafka: KafkaSettings) -> Any:
    from shared.kafka import ssl_context

    context = ssl_context(kafka)
    if kafka.sasl_mechanism:
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password,
            mechanism=kafka.sasl_mechanism,
            ssl_context=context,
        )
    return faust.SSLCredentials(context)


def topic(app: faust.App, spec: Topic) -> faust.TopicT:
    """A contract topic as raw bytes (CloudEvents binary mode)."""
    return app.topic(
        spec.name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=spec.partitions,
    )


async def take_batches(
    stream: Any, max_: int, within: float, idle: float = 0.01, idle_under_load: float = 0.1
) -> AsyncIterator[list[Any]]:
    """Batches of a faust stream's events, as ``stream.take_events(max_, within)`` gives them,
    except that a batch is handed over as soon as the stream has nothing more buffered and no
    new event came for ``idle`` seconds, instead of always waiting for ``within``.

    At low load an event waits about ``idle`` seconds instead of up to ``within``. Under load
    (the previous batch was full) the pause that counts is ``idle_under_load``, longer than a
    fetch from the broker takes, so batches stay full while a backlog is read and the
    per-batch cost of the caller is paid once per ``max_`` events. ``within`` bounds how long
    a batch keeps collecting. Each batch's events are acknowledged when the caller asks for
    the next batch, after it processed them, and not when the caller stops in the middle of
    one (at-least-once; take_events acknowledges in that case too). Built the
    way faust builds take_events (a processor fills the buffer, the stream is drained
    passively in the background)."""
    buffer: list[Any] = []
    buffer_full = asyncio.Event()
    buffer_consumed = asyncio.Event()
    buffer_started = asyncio.Event()
    consuming: asyncio.Future[None] | None = None
    channel_it = aiter(stream.channel)
    queue = getattr(channel_it, "queue", None)  # what the stream has not taken yet

    loop = asyncio.get_running_loop()
    last_added = [loop.time()]

    def pending() -> bool:
        return queue is None or not queue.empty()

    async def add_to_buffer(value: Any) -> Any:
        nonlocal consuming
        if consuming is not None:
            try:
                await consuming
            finally:
                consuming = None
        event = stream.current_event
        if event is None:
            raise RuntimeError("take_batches found current_event is None")
        buffer.append(event)
        last_added[0] = loop.time()
        buffer_started.set()
        if len(buffer) >= max_:
            buffer_full.set()
            buffer_consumed.clear()
            await stream.wait(buffer_consumed)
        return value

    enable_acks = stream.enable_acks
    stream.enable_acks = False  # acknowledged below, after the caller processed them
    stream.add_processor(add_to_buffer)
    stream._enable_passive(channel_it)
    loaded = False  # the previous batch was full
    try:
        while not stream.should_stop:
            if not buffer:
                await stream.wait_for_stopped(buffer_started, timeout=within)
            deadline = loop.time() + within
            pause = idle_under_load if loaded else idle
            while buffer and not buffer_full.is_set() and loop.time() < deadline:
                if not pending() and loop.time() - last_added[0] >= pause:
                    break  # nothing buffered and nothing new for a while: hand it over
                await stream.wait_for_stopped(buffer_full, timeout=min(pause, 0.005))
            if buffer:
                loaded = len(buffer) >= max_
                consuming = loop.create_future()
                done = False
                try:
                    yield list(buffer)
                    done = True
                finally:
                    events = list(buffer)
                    buffer.clear()
                    buffer_started.clear()
                    # a batch the caller did not finish (stopped, cancelled, crashed) stays
                    # unacknowledged, so it is delivered again
                    for event in events if done else ():
                        await stream.ack(event)
                    if not consuming.done():
                        consuming.set_result(None)
                    buffer_full.clear()
                    buffer_consumed.set()
    finally:
        stream.enable_acks = enable_acks
        stream._processors.remove(add_to_buffer)


@dataclass
class Chunk:
    """One fetch of the app's consumer (or the part of one a batch did not take): per
    partition its records in offset order and the offset after them (the next record's, so
    that a batch ending in the middle of a fetch acknowledges up to where the next begins),
    and the consumer generation they were fetched in."""

    generation: int
    parts: list[tuple[Any, list[Any], int]]

    @property
    def count(self) -> int:
        return sum(len(records) for _, records, _ in self.parts)

    def split(self, n: int) -> tuple[Chunk, Chunk]:
        """The first ``n`` records and the rest."""
        head: list[tuple[Any, list[Any], int]] = []
        tail: list[tuple[Any, list[Any], int]] = []
        for tp, records, end in self.parts:
            if n <= 0:
                tail.append((tp, records, end))
            elif len(records) <= n:
                head.append((tp, records, end))
                n -= len(records)
            else:
                head.append((tp, records[:n], records[n].offset))
                tail.append((tp, records[n:], end))
                n = 0
        return Chunk(self.generation, head), Chunk(self.generation, tail)


class BulkIntake(mode.Service):  # type: ignore[misc]  # mode is untyped here
    """Batches straight from the faust app's consumer: the records of whole fetches (raw
    aiokafka ``ConsumerRecord``s) go to ``handler`` a list at a time, without faust's
    per-record path (a message, an event, a queue put and two tasks per record: ~65 % of
    the attribution worker's time before). faust stays the framework: its app, consumer
    group, rebalances, offset bookkeeping and commits, lifecycle.

    - A batch collects up to ``max_`` records (a fetch may be split between batches) and is
      handed over as :func:`take_batches` hands them over: at once when nothing more came
      for ``idle`` s (``idle_under_load`` after a full batch), at the latest after
      ``within`` s.
    - Its offsets are acknowledged to faust's consumer only once ``handler`` returned (the
      caller's transaction committed); a handler that raises gets the same batch again
      after a back-off (:func:`handle_batches`' rule), never skipped.
    - A rebalance waits for the batch in progress (the consumer's ``wait_empty``), so its
      offsets are committed before its partitions move; fetched records not yet started
      are dropped when the generation changes or the flow stops (faust seeks every
      partition back to its committed offset after a rebalance, so they come again).
    - ``positions`` holds the next offset to process per partition (for the lag gauge).
    """

    def __init__(
        self,
        max_: int,
        within: float,
        handler: Callable[[list[Any]], Awaitable[None]],
        *,
        idle: float = 0.01,
        idle_under_load: float = 0.1,
        backoff: failures.Backoff | None = None,
        buffered: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.app: Any = None
        self.max = max_
        self.within = within
        self.handler = handler
        self.idle = idle
        self.idle_under_load = idle_under_load
        self.backoff = backoff or failures.Backoff()
        self.buffered_max = buffered if buffered is not None else 2 * max_
        self.positions: dict[Any, int] = {}
        self._chunks: list[Chunk] = []
        self._buffered = 0
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._last_put = 0.0

    def attach(self, app: Any, topics: Any) -> None:
        """Subscribe ``app``'s consumer to ``topics`` (faust's conductor) and become the
        place its fetches go."""
        self.app = app
        app.topics.add(topics)
        app.bulk_intake = self
        app.service(self)

    async def put(self, chunk: Chunk) -> None:
        """From the consumer's fetcher: waits while ``buffered`` records are waiting."""
        while not self._room.is_set():
            await self._room.wait()
        self._chunks.append(chunk)
        self._buffered += chunk.count
        self._last_put = time.monotonic()
        if self._buffered >= self.buffered_max:
            self._room.clear()
        self._arrived.set()

    def _take(self, limit: int) -> list[Chunk]:
        taken: list[Chunk] = []
        count = 0
        while self._chunks and count < limit:
            chunk = self._chunks.pop(0)
            if count + chunk.count > limit:
                chunk, rest = chunk.split(limit - count)
                self._chunks.insert(0, rest)
            taken.append(chunk)
            count += chunk.count
        self._buffered -= count
        if not self._chunks:
            self._arrived.clear()
        if self._buffered < self.buffered_max:
            self._room.set()
        return taken

    async def wait_idle(self, stopping: Callable[[], bool]) -> None:
        """Until no batch is in progress (or ``stopping()``)."""
        while not self._idle.is_set() and not stopping():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), 1.0)

    def _stale(self, chunk: Chunk) -> bool:
        consumer = self.app.consumer
        return bool(not consumer.flow_active or chunk.generation != self.app.consumer_generation_id)

    async def _collect(self, loaded: bool) -> list[Chunk]:
        if not self._chunks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), self.within)
        taken = self._take(self.max)
        if not taken:
            return taken
        count = sum(c.count for c in taken)
        deadline = time.monotonic() + self.within
        pause = self.idle_under_load if loaded else self.idle
        while count < self.max and time.monotonic() < deadline:
            if not self._chunks:
                if time.monotonic() - self._last_put >= pause:
                    break  # nothing buffered and nothing new for a while: hand it over
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), min(pause, 0.005))
                continue
            more = self._take(self.max - count)
            taken += more
            count += sum(c.count for c in more)
        return taken

    @mode.Service.task  # type: ignore[untyped-decorator]
    async def _batches(self) -> None:
        loaded = False
        while not self.should_stop:
            chunks = await self._collect(loaded)
            fresh = [c for c in chunks if not self._stale(c)]
            if len(fresh) < len(chunks):
                log.info("fetched records dropped after a rebalance; they are read again")
            if not fresh:
                continue
            records = [r for c in fresh for _, part, _ in c.parts for r in part]
            loaded = len(records) >= self.max
            self._idle.clear()
            try:
                if not await self._handle(records):
                    return  # stopping: not acknowledged, so delivered again
                ranges: dict[Any, tuple[int, int]] = {}
                for chunk in fresh:
                    for tp, part, end in chunk.parts:
                        first = ranges[tp][0] if tp in ranges else part[0].offset
                        ranges[tp] = (first, end - 1)
                        self.positions[tp] = part[-1].offset + 1
                self.app.consumer.ack_ranges(ranges)
                inbound = self.app.monitor.stream_inbound_time
                now = time.monotonic()
                for tp in ranges:
                    inbound[tp] = now  # faust's livelock check: this partition is processed
            finally:
                self._idle.set()

    async def _handle(self, records: list[Any]) -> bool:
        """``handler(records)`` until it returns (True) or the service stops (False)."""
        while not self.should_stop:
            try:
                await self.handler(records)
            except Exception as exc:
                kind = failures.classify(exc)
                log.log(
                    logging.WARNING if kind is failures.Failure.TRANSIENT else logging.ERROR,
                    "batch not finished; handing it over again",
                    extra={"error": failures.reason(exc), "failure": kind.value},
                )
                await self.backoff.wait()
                continue
            self.backoff.reset()
            return True
        return False


async def handle_batches(
    stream: Any,
    max_: int,
    within: float,
    handler: Callable[[list[Any]], Awaitable[None]],
    backoff: failures.Backoff | None = None,
) -> None:
    """``handler(batch)`` for every batch of :func:`take_batches`; if it raises, the same
    batch is handed over again after a back-off, never skipped: an exception escaping an
    agent would restart it without redelivering the batch, and faust would later commit the
    next batches' offsets past it. The handler dead-letters what can never be applied, so
    only a transient failure (or a defect, logged as an error) brings a batch back."""
    backoff = backoff or failures.Backoff()
    async for batch in take_batches(stream, max_, within=within):
        while True:
            try:
                await handler(batch)
            except Exception as exc:
                kind = failures.classify(exc)
                log.log(
                    logging.WARNING if kind is failures.Failure.TRANSIENT else logging.ERROR,
                    "batch not finished; handing it over again",
                    extra={"error": failures.reason(exc), "failure": kind.value},
                )
                await backoff.wait()
                continue
            backoff.reset()
            break


COMPACTED = frozenset(t.name for t in TOPICS if ("cleanup.policy", "compact") in t.configs)
"""The topics where a record with no value is compaction's delete marker of its key."""


def compaction_tombstone(record: Any) -> bool:
    """Whether a record (a faust event, or a raw aiokafka ``ConsumerRecord`` of
    :class:`BulkIntake`) is a tombstone (no value) on a compacted topic
    (``ripples.employees``): the marker that lets compaction drop its key's earlier records
    (ingest writes one for each preference key of a removed employee), not an event. A
    consumer skips it, neither applying nor dead-lettering it; a tombstone on any other
    topic stays poison (:func:`decode`)."""
    if record.value is not None:
        return False
    message = getattr(record, "message", None)  # a faust event; a ConsumerRecord has .topic
    return (message.topic if message is not None else record.topic) in COMPACTED


def decode(record: Any) -> Envelope:
    """The CloudEvent of a faust event (binary mode), or :class:`InvalidEvent` for anything
    that is not one: a tombstone (no value), missing or garbage headers, garbage bytes.
    :func:`from_kafka` raises only InvalidEvent for content it parses, but a record's value
    may be None and its headers of any shape; nothing else may escape to the agent."""
    value = record.value
    if value is None:
        raise InvalidEvent(
            [FieldError("value", "a record with no value (a tombstone)", "tombstone")]
        )
    try:
        headers = record.headers or {}
        pairs = list(headers.items() if isinstance(headers, Mapping) else headers)
        return from_kafka(pairs, value)
    except InvalidEvent:
        raise
    except Exception as exc:
        raise InvalidEvent(
            [FieldError("$", f"not a CloudEvent record ({type(exc).__name__})", "malformed")]
        ) from None


def decode_batch(records: Sequence[Any]) -> list[Envelope | InvalidEvent]:
    """:func:`decode` for a whole batch in one pass: each record's event, or the
    :class:`InvalidEvent` saying why it is not one (a tombstone, garbage), in order."""
    out: list[Envelope | InvalidEvent] = []
    append = out.append
    for record in records:
        try:
            append(decode(record))
        except InvalidEvent as exc:
            append(exc)
    return out


def dead_letter_headers(
    consumer: str,
    reason: str,
    source_topic: str,
    partition: int,
    offset: int,
    headers: Mapping[str, bytes] | None = None,
) -> dict[str, bytes]:
    """Headers for the dead-letter copy of a record: its own headers (the CloudEvents
    attributes) plus why and where it failed. The value and key are copied unchanged."""
    out = dict(headers or {})
    out |= {
        "x-ripples-error": reason[:2000].encode(),
        "x-ripples-consumer": consumer.encode(),
        "x-ripples-topic": source_topic.encode(),
        "x-ripples-partition": str(partition).encode(),
        "x-ripples-offset": str(offset).encode(),
    }
    return out


class HttpServer(mode.Service):  # type: ignore[misc]  # mode is untyped here
    """Serves a Starlette (ASGI) app from inside the faust worker's event loop."""

    def __init__(self, asgi: ASGIApp, host: str, port: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._server = uvicorn.Server(
            uvicorn.Config(
                asgi,
                host=host,
                port=port,
                log_config=None,
                access_log=False,
                lifespan="off",
                loop="none",
                http="httptools",
            )
        )
        self._serving: asyncio.Task[None] | None = None

    async def on_start(self) -> None:
        self._serving = asyncio.ensure_future(self._server.serve())

    async def on_stop(self) -> None:
        self._server.should_exit = True
        if self._serving is not None:
            await asyncio.wait([self._serving], timeout=5)


def run(app: faust.App, log_level: str = "INFO") -> None:
    """Run a faust worker in this process until SIGTERM/SIGINT, with the JSON logs that
    :func:`shared.logs.configure` set up (faust's own console output is off)."""
    worker = faust.Worker(
        app, loglevel=log_level, quiet=True, override_logging=False, redirect_stdouts=False
    )
    worker.execute_from_commandline()
