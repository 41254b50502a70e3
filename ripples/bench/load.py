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
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson

from ripples.bench.workload import events

BATCH_TYPE = "application/cloudevents-batch+json"
SINGLE_TYPE = "application/cloudevents+json"


def _emit(count: int, seconds: float, latencies: list[float], errors: int = 0) -> None:
    # A sample keeps the line small; percentiles are computed over the merged samples.
    step = max(1, len(latencies) // 5000)
    sys.stdout.write(
        orjson.dumps(
            {
                "count": count,
                "seconds": seconds,
                "latencies_ms": [round(x * 1000, 3) for x in latencies[::step]],
                "errors": errors,
            }
        ).decode()
        + "\n"
    )
    sys.stdout.flush()


async def _workers(
    concurrency: int, total: int, one: Callable[[httpx.AsyncClient, int], Awaitable[bool]]
) -> tuple[int, float, list[float], int]:
    """Run ``one(client, i)`` for i in 0..total-1 from ``concurrency`` tasks."""
    latencies: list[float] = []
    errors = 0
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:

        async def worker() -> None:
            nonlocal next_index, errors
            while next_index < total:
                i = next_index
                next_index += 1
                t = time.perf_counter()
                ok = await one(client, i)
                latencies.append(time.perf_counter() - t)
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return total, elapsed, latencies, errors


async def produce(args: argparse.Namespace) -> None:
    from aiokafka import AIOKafkaProducer

    from shared.cloudevents import parse_structured, to_kafka

    load = events(args.events, seed=args.seed, prefix=args.prefix)
    records = [to_kafka(parse_structured(orjson.dumps(raw))) for raw in load]
    topics = [parse_structured(orjson.dumps(raw)).topic.name for raw in load]
    producer = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap, linger_ms=5, acks="all", max_batch_size=262144
    )
    await producer.start()
    try:
        started = time.perf_counter()
        pending = []
        for topic, (key, value, headers) in zip(topics, records, strict=True):
            pending.append(await producer.send(topic, value, key=key, headers=headers))
        await asyncio.gather(*pending)
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    _emit(len(records), elapsed, [])


async def batch(args: argparse.Namespace) -> None:
    load = events(args.events, seed=args.seed, prefix=args.prefix)
    bodies = [orjson.dumps(load[i : i + args.batch]) for i in range(0, len(load), args.batch)]
    headers = {"Authorization": f"Bearer {args.key}", "Content-Type": BATCH_TYPE}

    async def one(client: httpx.AsyncClient, i: int) -> bool:
        response = await client.post(args.url, content=bodies[i], headers=headers)
        return response.status_code < 300

    _, elapsed, latencies, errors = await _workers(args.concurrency, len(bodies), one)
    _emit(len(load), elapsed, latencies, errors)


async def single(args: argparse.Namespace) -> None:
    load = events(args.events, seed=args.seed, prefix=args.prefix)
    bodies = [orjson.dumps(raw) for raw in load]
    headers = {"Authorization": f"Bearer {args.key}", "Content-Type": SINGLE_TYPE}
    started = time.perf_counter()
    interval = args.concurrency / args.rate if args.rate else 0.0

    async def one(client: httpx.AsyncClient, i: int) -> bool:
        if interval:  # a fixed offered load: each client sends on its own schedule
            due = started + (i // args.concurrency) * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        response = await client.post(args.url, content=bodies[i], headers=headers)
        return response.status_code < 300

    _, elapsed, latencies, errors = await _workers(args.concurrency, len(bodies), one)
    _emit(len(bodies), elapsed, latencies, errors)


async def get(args: argparse.Namespace) -> None:
    async def one(client: httpx.AsyncClient, _: int) -> bool:
        response = await client.get(args.url, follow_redirects=False)
        return response.status_code in (301, 302, 303, 307, 308)

    count, elapsed, latencies, errors = await _workers(args.concurrency, args.requests, one)
    _emit(count, elapsed, latencies, errors)


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
        else:
            k.add_argument("--url", required=True)
            k.add_argument("--key", required=True)
            k.add_argument("--concurrency", type=int, default=8)
        if name == "batch":
            k.add_argument("--batch", type=int, default=500)
        if name == "single":
            k.add_argument("--rate", type=float, default=0.0, help="requests/s, 0 = flat out")
    g = kinds.add_parser("get")
    g.add_argument("--url", required=True)
    g.add_argument("--requests", type=int, default=2000)
    g.add_argument("--concurrency", type=int, default=16)
    f = kinds.add_parser("faust")
    f.add_argument("--bootstrap", required=True)
    f.add_argument("--count", type=int, required=True)
    args = top.parse_args()
    if args.kind == "faust":
        faust_consume(args)
        return
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency of uvicorn[standard]
        pass
    runner = {"produce": produce, "batch": batch, "single": single, "get": get}[args.kind]
    asyncio.run(runner(args))


if __name__ == "__main__":
    main()
