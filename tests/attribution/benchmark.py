"""Throughput of one attribution worker: ``python -m tests.attribution.benchmark [N]``.

Starts a broker and PostgreSQL as the tests do (or uses ``KAFKA_BOOTSTRAP_SERVERS`` and
``DATABASE_URL`` when both are set), produces N mixed contract events (employees, posts,
metric snapshots, engagements, links, clicks, applications, hires) to the input topics,
then starts one worker and reports how fast it stores them: events per second from its
first stored batch to the last event stored (every event in PostgreSQL, derivations
included, one transaction per batch), and the worker's CPU seconds (utime + stime from
``/proc/<pid>/stat``) per 10,000 events, a figure that survives a shared machine.
``BENCH_PYSPY=out.txt`` also records a py-spy profile of the worker (collapsed stacks;
py-spy is not a project dependency: ``pip install py-spy``). Not part of ``make test``: it
measures speed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaProducer

from ripples.bench.workload import events, produce
from ripples.stack import State
from shared.cloudevents import parse_structured, to_kafka
from tests.conftest import start_broker, start_postgres, start_service


def start_worker(tmp: Path, broker: Any, **env: str) -> tuple[Any, int]:
    """One attribution worker with quick group timeouts; (the running service, its pid)."""
    worker = start_service(
        "attribution",
        tmp / "worker",
        broker,
        KAFKA_SESSION_TIMEOUT_S="6",
        KAFKA_REBALANCE_TIMEOUT_S="6",
        LOG_LEVEL="WARNING",
        **env,
    )
    pid = State(tmp / "worker").read_pid("attribution")
    assert pid is not None
    return worker, pid


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    database: str, n: int, pid: int, timeout_s: float = 600
) -> tuple[float, float, float]:
    """(seconds from the first stored event to the last, events per second, the worker's
    CPU seconds over that time)."""
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
                started, cpu = time.monotonic(), cpu_seconds(pid)
            if count >= n:
                assert started is not None
                elapsed = time.monotonic() - started
                return elapsed, n / elapsed, cpu_seconds(pid) - cpu
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    raise TimeoutError(f"only some of {n} events were stored in {timeout_s} s")


def bare_faust(bootstrap: str, count: int) -> tuple[float, float]:
    """Run the bench's bare faust agent (a fresh group, from the earliest offset) over
    ``count`` records: (its records per second, the CPU seconds of the whole process)."""
    argv = ["-m", "ripples.bench.load", "faust", "--bootstrap", bootstrap, "--count", str(count)]
    proc = subprocess.Popen(
        [sys.executable, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0  # reaped above
    figures = json.loads(out[out.index("{") :])
    return figures["count"] / figures["seconds"], usage.ru_utime + usage.ru_stime


def delay_histogram(address: str) -> dict[str, float]:
    """The cumulative buckets, sum and count of ``attribution_processing_delay_seconds``."""
    out: dict[str, float] = {}
    for line in httpx.get(f"{address}/metrics").text.splitlines():
        if line.startswith("attribution_processing_delay_seconds"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


async def trickle(bootstrap: str, count: int, rate: float) -> None:
    """``count`` mixed events, one at a time at ``rate`` per second, each stamped with the
    time it is sent (so the worker's processing delay is its latency)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all")
    await producer.start()
    try:
        for raw in events(count, seed=11, prefix="low"):
            raw["time"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            event = parse_structured(orjson.dumps(raw))
            key, value, headers = to_kafka(event)
            await producer.send_and_wait(event.topic.name, value, key=key, headers=headers)
            await asyncio.sleep(1 / rate)
    finally:
        await producer.stop()


def low_load_latency(bootstrap: str, address: str, count: int = 200, rate: float = 20) -> None:
    """Latency at low load: mean and p99 (bucket upper bound) of the event time → stored
    delay over ``count`` events offered at ``rate`` per second."""
    before = delay_histogram(address)
    asyncio.run(trickle(bootstrap, count, rate))
    deadline = time.monotonic() + 30
    after = delay_histogram(address)
    key = "attribution_processing_delay_seconds_count"
    while after[key] - before[key] < count and time.monotonic() < deadline:
        time.sleep(0.2)
        after = delay_histogram(address)
    n = after[key] - before[key]
    mean = (
        after["attribution_processing_delay_seconds_sum"]
        - before["attribution_processing_delay_seconds_sum"]
    ) / n
    p99 = next(
        float(name.split('le="')[1].split('"')[0])
        for name in after
        if "_bucket" in name and after[name] - before[name] >= 0.99 * n
    )
    print(
        f"low load ({rate:.0f} events/s, {n:.0f} events): processing delay mean "
        f"{mean * 1000:.0f} ms, p99 <= {p99 * 1000:.0f} ms (histogram bucket)"
    )


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
        worker, pid = start_worker(
            tmp, broker_running, DATABASE_URL=database, KAFKA_BOOTSTRAP_SERVERS=bootstrap
        )
        started.append(worker)
        profile = os.environ.get("BENCH_PYSPY")
        spy = None
        if profile:
            spy = subprocess.Popen(
                ["py-spy", "record", "-p", str(pid), "-o", profile, "-f", "raw", "-r", "200"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        elapsed, rate, cpu = asyncio.run(measure(database, n, pid))
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        print(f"one worker stored {n} mixed events in {elapsed:.1f} s: {rate:,.0f} events/s")
        print(f"worker CPU: {cpu:.1f} s, {cpu * 10_000 / n:.2f} CPU s per 10,000 events")
        figures = {
            line.split()[0]: float(line.split()[1])
            for line in httpx.get(f"{worker.address}/metrics").text.splitlines()
            if line.startswith(
                (
                    "attribution_batch_size_events_",
                    "attribution_batch_duration_seconds_",
                    "attribution_credits_assigned_total",
                )
            )
            and "bucket" not in line
        }
        if os.environ.get("BENCH_BARE_FAUST"):
            _, cpu_small = bare_faust(bootstrap, n // 10)
            rate_all, cpu_all = bare_faust(bootstrap, n - 2000)
            per = (cpu_all - cpu_small) * 10_000 / (n - 2000 - n // 10)
            print(
                f"bare faust agent: {rate_all:,.0f} records/s; "
                f"{per:.2f} CPU s per 10,000 records (startup subtracted); "
                f"attribution / bare faust = {rate / rate_all:.2f}"
            )
        low_load_latency(bootstrap, worker.address)
        batches = figures["attribution_batch_size_events_count"]
        batched = figures["attribution_batch_size_events_sum"]
        print(
            f"{batches:.0f} batches of {batched / batches:.0f} "
            f"events on average; {figures['attribution_batch_duration_seconds_sum']:.1f} s "
            "inside batch processing (decode, transaction, outbox); "
            f"{figures['attribution_credits_assigned_total']:.0f} credit.assigned events"
        )
    finally:
        for item in reversed(started):
            item.stop()


if __name__ == "__main__":
    main()
