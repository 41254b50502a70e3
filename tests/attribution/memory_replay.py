"""Resident memory of one attribution worker over a long replay:
``python -m tests.attribution.memory_replay [QUARTERS] [EVENTS_PER_QUARTER]`` (default 4 ×
250,000 = one million events).

Starts a broker and PostgreSQL as the tests do, and one worker; then, quarter by quarter,
produces the events of a fresh workload (its own id prefix, so every quarter brings new
employees, posts, links and visitors) straight to the input topics, waits until the worker has
stored them all, and prints the worker's RSS (``VmRSS``), its peak so far (``VmHWM``) and its
CPU seconds per 10,000 events. Not part of ``make test``: it measures."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from ripples.bench.workload import events, produce
from tests.attribution.benchmark import cpu_seconds, start_worker
from tests.conftest import start_broker, start_postgres


def status_kb(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    raise KeyError(name)


async def stored(database: str) -> int:
    conn = await asyncpg.connect(database)
    try:
        count: int = await conn.fetchval("select count(*) from attribution.events")
        return count
    finally:
        await conn.close()


def main() -> None:
    quarters = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 250_000
    tmp = Path(tempfile.mkdtemp(prefix="ripples-memory-"))
    tmp.chmod(0o755)
    started: list[Any] = []
    try:
        broker = start_broker(tmp / "broker")
        started.append(broker)
        pg = start_postgres(tmp / "pg")
        started.append(pg)
        worker, pid = start_worker(tmp, broker, DATABASE_URL=pg.address)
        started.append(worker)
        rss: list[float] = []
        for q in range(quarters):
            asyncio.run(produce(broker.address, events(n, seed=q, prefix=f"q{q}_")))
            cpu, clock = cpu_seconds(pid), time.monotonic()
            deadline = clock + 3600
            while asyncio.run(stored(pg.address)) < n * (q + 1):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"quarter {q + 1} was not stored within an hour")
                time.sleep(0.5)
            time.sleep(2)  # the outbox sent, the housekeeping timer run
            rss.append(status_kb(pid, "VmRSS") / 1024)
            used = cpu_seconds(pid) - cpu
            print(
                f"quarter {q + 1}: {n * (q + 1):,} events stored; RSS {rss[-1]:.1f} MB, "
                f"peak {status_kb(pid, 'VmHWM') / 1024:.1f} MB; "
                f"{used * 10_000 / n:.2f} CPU s per 10,000 events; "
                f"{time.monotonic() - clock:.0f} s",
                flush=True,
            )
        print(f"growth first → last quarter: {rss[-1] - rss[0]:+.1f} MB")
    finally:
        for item in reversed(started):
            item.stop()


if __name__ == "__main__":
    main()
