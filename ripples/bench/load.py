"""Load generators for ``ripples bench``, one per process:
``python -m ripples.bench.load KIND [options]``; each prints one JSON line on standard
output: ``{"count": n, "seconds": s, "latencies_ms": [...], "errors": e}``.

Load always comes from these separate processes, never from inside the measured service.

KIND is one of:
  produce   raw aiokafka produce (acks=all) of the workload, binary mode: the ceiling
  batch     POST /v1/events:batch with BATCH events a request, CONCURRENCY clients
  single    POST /v1/events one event a request (optionally at a fixed RATE requests/s)
  get       GET a URL (the redirector) without following the redirect
  faust     a bare faust agent consuming COUNT records from the input topics
  consume   a raw aiokafka consumer reading COUNT records of the input topics (the ceiling)
  fill      the workload straight to the input topics, generated and sent in chunks
            (events START to STOP of a series of EVENTS, for the scale benchmark's millions)
  store     the same events straight into an attribution database with the worker's own
            store.apply_batch, in large transactions (the scale benchmark's unmeasured fill)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

import orjson

from ripples.bench.workload import events, iter_events

BATCH_TYPE = "application/cloudevents-batch+json"
SINGLE_TYPE = "application/cloudevents+json"


def _emit(
    count: int, seconds: float, latencies: list[float], errors: int = 0, started: float = 0.0
) -> None:
    """The result line. ``started`` (epoch seconds, with ``ended`` = started + seconds) lets the
    harness measure several processes over their common wall-clock window."""
    # A sample keeps the line small; percentiles are computed over the merged samples.
    step = max(1, len(latencies) // 5000)
    line: dict[str, Any] = {
        "count": count,
        "seconds": seconds,
        "latencies_ms": [round(x * 1000, 3) for x in latencies[::step]],
        "errors": errors,
    }
    if started:
        line |= {"started": started, "ended": started + seconds}
    sys.stdout.write(orjson.dumps(line).decode() + "\n")
    sys.stdout.flush()


async def _start_at(moment: float) -> None:
    """Wait until the epoch time ``moment`` (``--start-at``): the processes of one measurement
    start sending together, each once it has prepared its load."""
    delay = moment - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


# --- a lean HTTP/1.1 keep-alive client ----------------------------------------------------------
#
# One httpx process tops out around 600-800 requests/s on this kind of machine, so with httpx the
# single-event and redirector figures measured the client, not ingest. This client does the
# least a load generator must: requests are encoded once up front, each connection has one
# request in flight (keep-alive, no pipelining), and a response is read as its status line and
# Content-Length, nothing else.


class HttpError(Exception):
    pass


def request_bytes(
    method: str, url: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b""
) -> bytes:
    """The whole HTTP/1.1 request for ``url``: request line, Host, headers, Content-Length
    (when there is a body or the method sends one) and the body."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def parse_head(head: bytes) -> tuple[int, int, bool]:
    """Status, Content-Length (0 when absent) and whether the server closes the connection,
    from a response's status line and headers (without the blank line)."""
    if not head.startswith(b"HTTP/1.") or len(head) < 12:
        raise HttpError(f"not an HTTP/1.x response: {head[:40]!r}")
    status = int(head[9:12])
    length = 0
    close = head.startswith(b"HTTP/1.0")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            raise HttpError("chunked responses are not supported by the load client")
        elif name == b"connection":
            close = value.strip().lower() == b"close"
    return status, length, close


class Connection(asyncio.Protocol):
    """One keep-alive connection; :meth:`request` sends pre-encoded bytes and returns the
    status once the whole response (head and Content-Length bytes of body) has arrived."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[int] | None = None
        self._head: tuple[int, int, bool] | None = None
        self._head_end = 0
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(cls, host, port)
        return connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(HttpError(f"connection lost: {exc!r}"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            try:
                self._head = parse_head(bytes(self._buffer[:end]))
            except (HttpError, ValueError) as exc:
                if self._waiter is not None and not self._waiter.done():
                    self._waiter.set_exception(exc)
                return
            self._head_end = end + 4
        status, length, close = self._head
        if len(self._buffer) - self._head_end < length:
            return
        del self._buffer[: self._head_end + length]
        self._head = None
        if close:
            self.close()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(status)

    async def request(self, data: bytes) -> int:
        if self.closed or self._transport is None:
            raise HttpError("connection closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(data)
        return await self._waiter

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()


async def _workers(
    url: str,
    concurrency: int,
    total: int,
    request: Callable[[int], bytes],
    ok: Callable[[int], bool],
    rate: float = 0.0,
) -> tuple[int, float, list[float], int]:
    """Send ``request(i)`` for i in 0..total-1 over ``concurrency`` keep-alive connections,
    flat out or, with ``rate``, request i at ``i / rate`` seconds after the start (a fixed
    offered load). Latency is from writing the request to the last byte of its response."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: list[float] = []
    errors = 0
    next_index = 0
    connections = [await Connection.open(host, port) for _ in range(concurrency)]
    started = time.perf_counter()

    async def worker(connection: Connection) -> None:
        nonlocal next_index, errors
        while next_index < total:
            i = next_index
            next_index += 1
            if rate:
                delay = started + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            if connection.closed:
                connection = await Connection.open(host, port)
            t = time.perf_counter()
            try:
                status = await connection.request(request(i))
            except (HttpError, OSError, ValueError):
                connection.close()
                errors += 1
                continue
            latencies.append(time.perf_counter() - t)
            errors += not ok(status)
        connection.close()

    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - started
    return total, elapsed, latencies, errors


def _accepted(status: int) -> bool:
    return 200 <= status < 300


def _redirected(status: int) -> bool:
    return status in (301, 302, 303, 307, 308)


async def produce(args: argparse.Namespace) -> None:
    """The raw produce ceiling, with ingest's own producing technique and settings: the
    producer of ``shared.kafka.producer`` (acks=all, the same max batch size, linger 0) fed
    through the same :class:`shared.kafka.BatchSender` with ingest's default linger, in chunks of
    ``--batch`` events from ``--concurrency`` concurrent senders (as the batch endpoint's
    clients do), but without HTTP, validation or anything else of ingest."""
    from services.ingest.settings import IngestSettings
    from shared.cloudevents import parse_structured, to_kafka
    from shared.kafka import BatchSender, Record, producer
    from shared.settings import KafkaSettings

    load = events(args.events, seed=args.seed, prefix=args.prefix)
    records: list[Record] = []
    for raw in load:
        event = parse_structured(orjson.dumps(raw))
        key, value, headers = to_kafka(event)
        records.append((event.topic.name, key, value, headers))
    chunks = [records[i : i + args.batch] for i in range(0, len(records), args.batch)]
    kafka = producer(KafkaSettings(bootstrap_servers=args.bootstrap), linger_ms=0)
    await kafka.start()
    try:
        sender = BatchSender(kafka, linger_s=IngestSettings().linger_ms / 1000)
        for topic in {topic for topic, *_ in records}:
            await kafka.partitions_for(topic)  # metadata first, as a running ingest has it

        async def one_client() -> None:
            while chunks:
                await sender.send(chunks.pop(0))

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - started
        await sender.close()
    finally:
        await kafka.stop()
    _emit(len(records), elapsed, [])


async def batch(args: argparse.Namespace) -> None:
    load = events(args.events, seed=args.seed, prefix=args.prefix)
    headers = [("Authorization", f"Bearer {args.key}"), ("Content-Type", BATCH_TYPE)]
    requests = [
        request_bytes("POST", args.url, headers, orjson.dumps(load[i : i + args.batch]))
        for i in range(0, len(load), args.batch)
    ]
    await _start_at(args.start_at)
    _, elapsed, latencies, errors = await _workers(
        args.url, args.concurrency, len(requests), requests.__getitem__, _accepted
    )
    _emit(len(load), elapsed, latencies, errors, started=time.time() - elapsed)


async def single(args: argparse.Namespace) -> None:
    load = events(args.events, seed=args.seed, prefix=args.prefix)
    headers = [("Authorization", f"Bearer {args.key}"), ("Content-Type", SINGLE_TYPE)]
    requests = [request_bytes("POST", args.url, headers, orjson.dumps(raw)) for raw in load]
    _, elapsed, latencies, errors = await _workers(
        args.url, args.concurrency, len(requests), requests.__getitem__, _accepted, args.rate
    )
    _emit(len(requests), elapsed, latencies, errors)


async def get(args: argparse.Namespace) -> None:
    request = request_bytes("GET", args.url, [("User-Agent", "ripples-bench/1")])
    count, elapsed, latencies, errors = await _workers(
        args.url, args.concurrency, args.requests, lambda _: request, _redirected, args.rate
    )
    _emit(count, elapsed, latencies, errors)


async def fill(args: argparse.Namespace) -> None:
    """Events ``--start`` to ``--stop`` of the workload of ``--events`` events (and
    ``--employees`` employees) to the input topics, with ingest's producing technique (as
    ``produce``), generated and encoded a chunk at a time so that millions fit in memory."""
    import itertools

    from services.ingest.settings import IngestSettings
    from shared.cloudevents import parse_structured, to_kafka
    from shared.kafka import BatchSender, Record, ensure_topics, producer
    from shared.settings import KafkaSettings

    settings = KafkaSettings(bootstrap_servers=args.bootstrap)
    await ensure_topics(settings)
    stream = itertools.islice(
        iter_events(args.events, seed=args.seed, prefix=args.prefix, employees=args.employees),
        args.start,
        args.stop,
    )
    kafka = producer(settings, linger_ms=0)
    await kafka.start()
    sent = 0
    started = time.perf_counter()
    try:
        sender = BatchSender(kafka, linger_s=IngestSettings().linger_ms / 1000)
        pending: set[asyncio.Task[None]] = set()
        while True:
            chunk: list[Record] = []
            for raw in itertools.islice(stream, args.batch):
                event = parse_structured(orjson.dumps(raw))
                key, value, headers = to_kafka(event)
                chunk.append((event.topic.name, key, value, headers))
            if not chunk:
                break
            if len(pending) >= args.concurrency:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            pending.add(asyncio.ensure_future(sender.send(chunk)))
            sent += len(chunk)
        for task in pending:
            await task
        await sender.close()
    finally:
        await kafka.stop()
    _emit(sent, time.perf_counter() - started, [])


async def store(args: argparse.Namespace) -> None:
    """Events ``--start`` to ``--stop`` of the workload into the attribution database at
    ``--database``, ``--batch`` events a transaction, with ``store.apply_batch`` (the
    worker's code: facts, dedupe, derivation), migrations applied first. The stored facts
    and derived tables do not depend on where batches fall (the kill test replays the same
    events with other batch boundaries and compares every answer), so this fills a
    database as the worker would, only without the broker. The output events the batches
    leave in the outbox are dropped (nothing reads them here)."""
    import itertools
    from pathlib import Path

    import asyncpg

    from services.attribution import store as attribution
    from services.attribution.settings import AttributionSettings
    from shared.cloudevents import parse_structured
    from shared.db import migrate

    settings = AttributionSettings()
    conn = await asyncpg.connect(args.database)
    stored = 0
    started = time.perf_counter()
    try:
        folder = Path(attribution.__file__).parent / "migrations"
        await migrate(conn, "attribution", folder)
        stream = itertools.islice(
            iter_events(args.events, seed=args.seed, prefix=args.prefix, employees=args.employees),
            args.start,
            args.stop,
        )
        while batch := [
            parse_structured(orjson.dumps(raw)) for raw in itertools.islice(stream, args.batch)
        ]:
            async with conn.transaction():
                await attribution.apply_batch(conn, batch, settings)
                await conn.execute("delete from attribution.outbox")
            stored += len(batch)
    finally:
        await conn.close()
    _emit(stored, time.perf_counter() - started, [])


async def consume(args: argparse.Namespace) -> None:
    """The raw consume ceiling: a plain aiokafka consumer (no group; every partition of the
    attribution worker's input topics assigned, from the beginning) reading ``--count``
    records (or all there are, if fewer) with ``getmany``, doing nothing with them. The
    clock starts once the partitions are assigned and sought to the beginning, so the first
    fetch's wait counts (the figure is, if anything, low)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from services.attribution.worker import INPUTS

    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    await consumer.start()
    try:
        tps = []
        for spec in INPUTS:
            for _ in range(100):
                partitions = consumer.partitions_for_topic(spec.name)
                if partitions:
                    break
                await consumer._client.force_metadata_update()
                await asyncio.sleep(0.05)
            tps += [TopicPartition(spec.name, p) for p in sorted(partitions or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        left = {tp for tp in tps if ends[tp] > 0}
        count, first = 0, time.perf_counter()
        while count < args.count and left:  # or everything there is, if that is less
            batch = await consumer.getmany(timeout_ms=1000)
            count += sum(len(records) for records in batch.values())
            for tp, records in batch.items():
                if records and records[-1].offset + 1 >= ends[tp]:
                    left.discard(tp)
        _emit(count, time.perf_counter() - first, [])
    finally:
        await consumer.stop()


def faust_consume(args: argparse.Namespace) -> None:
    """A bare faust agent built like attribution's (one agent on the same input topics,
    ``take_events`` batches) but doing nothing with the records: it counts ``args.count``
    of them from the earliest offset in a fresh group, prints the rate and exits. The
    consume ceiling for attribution."""
    import os

    from services.attribution.settings import AttributionSettings
    from services.attribution.worker import INPUTS
    from shared.settings import KafkaSettings
    from shared.streaming import faust_app, run

    app = faust_app(
        f"ripples-bench-{uuid.uuid4().hex[:8]}", KafkaSettings(bootstrap_servers=args.bootstrap)
    )
    inputs = app.topic(
        *[t.name for t in INPUTS],
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    seen = {"n": 0, "first": 0.0}
    same = AttributionSettings()

    @app.agent(inputs, concurrency=1)  # type: ignore[untyped-decorator]
    async def count(stream: Any) -> None:
        async for records in stream.take_events(same.batch_size, within=same.batch_within_s):
            # The clock starts when the first batch is in hand, so that batch does not count:
            # the rate is of the records taken after it.
            if not seen["first"]:
                seen["first"] = time.perf_counter()
            else:
                seen["n"] += len(records)
            if seen["n"] >= args.count:
                _emit(int(seen["n"]), time.perf_counter() - seen["first"], [])
                os._exit(0)  # a throw-away group: no need to leave it politely

    sys.argv = [sys.argv[0], "worker"]
    run(app, log_level="WARNING")


def main() -> None:
    top = argparse.ArgumentParser(prog="python -m ripples.bench.load")
    kinds = top.add_subparsers(dest="kind", required=True)
    for name in ("produce", "batch", "single"):
        k = kinds.add_parser(name)
        k.add_argument("--events", type=int, default=10_000)
        k.add_argument("--seed", type=int, default=7)
        k.add_argument("--prefix", default="bench")
        if name == "produce":
            k.add_argument("--bootstrap", required=True)
            k.add_argument("--batch", type=int, default=500)
            k.add_argument("--concurrency", type=int, default=8)
        else:
            k.add_argument("--url", required=True)
            k.add_argument("--key", required=True)
            k.add_argument("--concurrency", type=int, default=8)
        if name == "batch":
            k.add_argument("--batch", type=int, default=500)
            k.add_argument(
                "--start-at",
                type=float,
                default=0.0,
                help="epoch seconds to start sending at, once prepared (0 = at once)",
            )
        if name == "single":
            k.add_argument("--rate", type=float, default=0.0, help="requests/s, 0 = flat out")
    g = kinds.add_parser("get")
    g.add_argument("--url", required=True)
    g.add_argument("--requests", type=int, default=2000)
    g.add_argument("--concurrency", type=int, default=16)
    g.add_argument("--rate", type=float, default=0.0, help="requests/s, 0 = flat out")
    for name in ("faust", "consume"):
        f = kinds.add_parser(name)
        f.add_argument("--bootstrap", required=True)
        f.add_argument("--count", type=int, required=True)
    st = kinds.add_parser("store")
    st.add_argument("--database", required=True)
    for option, default in (("--seed", 7), ("--batch", 50_000)):
        st.add_argument(option, type=int, default=default)
    st.add_argument("--events", type=int, required=True, help="events in the whole series")
    st.add_argument("--employees", type=int, help="employees (default events / 100)")
    st.add_argument("--start", type=int, default=0)
    st.add_argument("--stop", type=int, help="default: --events")
    st.add_argument("--prefix", default="scale")
    fl = kinds.add_parser("fill")
    fl.add_argument("--bootstrap", required=True)
    fl.add_argument("--events", type=int, required=True, help="events in the whole series")
    fl.add_argument("--employees", type=int, help="employees (default events / 100)")
    fl.add_argument("--start", type=int, default=0)
    fl.add_argument("--stop", type=int, help="default: --events")
    fl.add_argument("--seed", type=int, default=7)
    fl.add_argument("--prefix", default="scale")
    fl.add_argument("--batch", type=int, default=500)
    fl.add_argument("--concurrency", type=int, default=8)
    args = top.parse_args()
    if args.kind == "faust":
        faust_consume(args)
        return
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency of uvicorn[standard]
        pass
    runner = {
        "produce": produce,
        "batch": batch,
        "single": single,
        "get": get,
        "fill": fill,
        "consume": consume,
        "store": store,
    }[args.kind]
    asyncio.run(runner(args))


if __name__ == "__main__":
    main()
