"""Throughput of one attribution worker: ``python -m tests.attribution.benchmark [N]``.

Starts a broker and PostgreSQL as the tests do (or uses ``KAFKA_BOOTSTRAP_SERVERS`` and
``DATABASE_URL`` when both are set), produces N mixed contract events (employees, posts,
metric snapshots, engagements, links, clicks, applications, hires) to the input topics,
then starts one worker and reports how fast it stores them: events per second from its
first stored batch to the last event stored (every event in PostgreSQL, derivations
included, one transaction per batch). Not part of ``make test``: it measures speed."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaProducer

from ripples import stack
from shared.cloudevents import parse_structured, to_kafka
from shared.kafka import ensure_topics
from shared.settings import KafkaSettings
from tests.conftest import free_port, start_broker, start_service

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def _t(rng: random.Random, days: float = 60) -> str:
    moment = T0 + timedelta(seconds=rng.randrange(int(days * 86400)))
    return moment.isoformat().replace("+00:00", "Z")


def events(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """N events in a realistic mix for a company of n/100 employees."""
    rng = random.Random(seed)
    employees = [f"e{i}" for i in range(max(10, n // 100))]
    out: list[dict[str, Any]] = []

    def ev(kind: str, data: dict[str, Any], time: str) -> None:
        out.append(
            {
                "specversion": "1.0",
                "id": f"b{len(out)}",
                "source": "urn:bench",
                "type": f"ripples.{kind}.v1",
                "time": time,
                "data": data,
            }
        )

    for e in employees:
        ev(
            "employee.upserted",
            {"employee_id": e, "display_name": e, "ambassador": rng.random() < 0.05},
            _t(rng, 1),
        )
    posts: list[str] = []
    links: list[str] = []
    while len(out) < n:
        roll = rng.random()
        if roll < 0.12 or not posts:
            post_id = f"p{len(posts)}"
            author = rng.choice(employees)
            data: dict[str, Any] = {
                "post_id": post_id,
                "author_kind": "employee",
                "employee_id": author,
                "published_at": _t(rng),
            }
            if posts and rng.random() < 0.3:
                data["reshare_of"] = rng.choice(posts)
            ev("post.published", data, data["published_at"])
            posts.append(post_id)
        elif roll < 0.42:
            at = _t(rng)
            ev(
                "post.metrics",
                {
                    "post_id": rng.choice(posts),
                    "observed_at": at,
                    "impressions": rng.randrange(5000),
                    "clicks": rng.randrange(50),
                    "reactions": rng.randrange(40),
                },
                at,
            )
        elif roll < 0.62:
            at = _t(rng)
            ev(
                "post.engagement",
                {
                    "post_id": rng.choice(posts),
                    "action": "reaction",
                    "at": at,
                    "actor_employee_id": rng.choice(employees),
                },
                at,
            )
        elif roll < 0.67 or not links:
            code = f"k{len(links)}"
            ev(
                "link.created",
                {
                    "link_code": code,
                    "target_url": "https://x.example/j",
                    "employee_id": rng.choice(employees),
                },
                _t(rng, 1),
            )
            links.append(code)
        elif roll < 0.87:
            at = _t(rng)
            ev(
                "link.clicked",
                {
                    "link_code": rng.choice(links),
                    "at": at,
                    "visitor_id": f"v{rng.randrange(n // 10)}",
                },
                at,
            )
        elif roll < 0.97:
            at = _t(rng)
            ev(
                "applicant.applied",
                {
                    "applicant_id": f"a{len(out)}",
                    "job_id": "J",
                    "applied_at": at,
                    "visitor_id": f"v{rng.randrange(n // 10)}",
                    "referrer_employee_id": rng.choice(employees),
                },
                at,
            )
        else:
            at = _t(rng)
            ev(
                "applicant.hired",
                {"applicant_id": f"a{rng.randrange(len(out))}", "job_id": "J", "hired_at": at},
                at,
            )
    return out[:n]


async def produce(bootstrap: str, batch: list[dict[str, Any]]) -> None:
    await ensure_topics(KafkaSettings(bootstrap_servers=bootstrap))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        for raw in batch:
            event = parse_structured(orjson.dumps(raw))
            key, value, headers = to_kafka(event)
            await producer.send(event.topic.name, value, key=key, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


async def measure(database: str, n: int, timeout_s: float = 600) -> tuple[float, float]:
    """(seconds from the first stored event to the last, events per second)."""
    conn = await asyncpg.connect(database)
    try:
        started: float | None = None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                count = await conn.fetchval("select count(*) from attribution.events")
            except asyncpg.UndefinedTableError:
                count = 0
            if count and started is None:
                started = time.monotonic()
            if count >= n:
                assert started is not None
                elapsed = time.monotonic() - started
                return elapsed, n / elapsed
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    raise TimeoutError(f"only some of {n} events were stored in {timeout_s} s")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    tmp = Path(tempfile.mkdtemp(prefix="ripples-bench-"))
    tmp.chmod(0o755)
    started: list[Any] = []
    try:
        bootstrap, database = (
            os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
            os.environ.get("DATABASE_URL"),
        )
        if not (bootstrap and database):
            broker = start_broker(tmp / "broker")
            started.append(broker)
            port = free_port()
            database = f"postgresql://{stack.POSTGRES_USER}@127.0.0.1:{port}/{stack.POSTGRES_DB}"
            pg = stack.Postgres(
                "postgres",
                database,
                marker="postgres",
                port=port,
                system_user=stack.POSTGRES_USER if os.geteuid() == 0 else None,
            )
            state = stack.State(tmp / "pg")
            state.prepare()
            pg.start(state, dict(os.environ))
            pg.wait_ready(60)
            started.append((pg, state))
            bootstrap = broker.address
        load = events(n)
        t = time.monotonic()
        asyncio.run(produce(bootstrap, load))
        print(f"produced {n} events in {time.monotonic() - t:.1f} s")
        broker_running = started[0] if started else None
        worker = start_service(
            "attribution",
            tmp / "worker",
            broker_running,  # type: ignore[arg-type]
            DATABASE_URL=database,
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            KAFKA_SESSION_TIMEOUT_S="6",
            KAFKA_REBALANCE_TIMEOUT_S="6",
            LOG_LEVEL="WARNING",
        )
        started.append(worker)
        elapsed, rate = asyncio.run(measure(database, n))
        print(f"one worker stored {n} mixed events in {elapsed:.1f} s: {rate:,.0f} events/s")
        figures = {
            line.split()[0]: float(line.split()[1])
            for line in httpx.get(f"{worker.address}/metrics").text.splitlines()
            if line.startswith(
                (
                    "attribution_batch_size_",
                    "attribution_batch_duration_seconds_",
                    "attribution_credits_assigned_total",
                )
            )
            and "bucket" not in line
        }
        batches = figures["attribution_batch_size_count"]
        print(
            f"{batches:.0f} batches of {figures['attribution_batch_size_sum'] / batches:.0f} "
            f"events on average; {figures['attribution_batch_duration_seconds_sum']:.1f} s "
            "inside batch processing (decode, transaction, outbox); "
            f"{figures['attribution_credits_assigned_total']:.0f} credit.assigned events"
        )
    finally:
        for item in reversed(started):
            if isinstance(item, tuple):
                item[0].stop(item[1])
            else:
                item.stop()


if __name__ == "__main__":
    main()
