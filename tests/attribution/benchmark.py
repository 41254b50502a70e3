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
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from ripples.bench.workload import events, produce
from tests.conftest import start_broker, start_postgres, start_service


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
            pg = start_postgres(tmp / "pg")
            started.append(pg)
            database = pg.address
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
            item.stop()


if __name__ == "__main__":
    main()
