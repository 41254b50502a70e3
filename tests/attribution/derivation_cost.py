"""PostgreSQL time per batch, incremental against whole-network derivation, as the stored
history grows: ``python -m tests.attribution.derivation_cost [TOTAL] [CHECKPOINTS…]``
(default 400,000 events, measured at 50,000 / 100,000 / 200,000 / 400,000 stored).

Starts PostgreSQL as the tests do (or uses ``DATABASE_URL``), and stores the bench workload
(``ripples.bench.workload``, a company of TOTAL/100 employees) through ``store.apply_batch``
in batches of 2,000 events, as the worker does (no broker: this measures the store). At each
checkpoint the next 6 batches are each applied three times on the same state: whole-network
and incremental, each in a transaction rolled back (their order alternating from batch to
batch), then incremental for real. For each it records the batch's wall time and the CPU time
of the PostgreSQL backend (utime + stime of its process, from ``/proc``), the same two for the
ring derivation alone, and the employees whose placement the batch derived; it prints the
medians, and how an incremental batch's time divides between its steps (wall ms, the facts
being the rest). At the end it times ``recompute`` over everything stored. Not part of
``make test``: it measures."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from ripples.bench.workload import events
from services.attribution import derive, store
from services.attribution.recompute import recompute
from shared.db import migrate
from tests.attribution.conftest import MIGRATIONS, SETTINGS, envelopes
from tests.conftest import start_postgres, stop_postgres

BATCH = 2000
MEASURED = 6


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_RINGS: list[float] = [0.0, 0.0]  # wall and backend CPU seconds of the last ring derivation
STEPS = (
    "previous_authors",
    "ring_seeds",
    "affected_applicants",
    "derive_conversions",
    "recognitions",
    "emit_recognitions",
)
_STEPS: dict[str, list[float]] = {name: [] for name in STEPS}  # wall seconds per batch


def _clocked(function: Any, pid: int) -> Any:
    """``function`` (a ring derivation), noting its wall and backend CPU time in _RINGS."""

    async def clocked(*args: Any) -> Any:
        cpu, clock = _cpu(pid), time.perf_counter()
        try:
            return await function(*args)
        finally:
            _RINGS[:] = [time.perf_counter() - clock, _cpu(pid) - cpu]

    return clocked


def _stepped(name: str, function: Any) -> Any:
    """``function`` (a step of ``apply_batch``), adding its wall time to _STEPS[name]."""

    async def stepped(*args: Any) -> Any:
        clock = time.perf_counter()
        try:
            return await function(*args)
        finally:
            if _STEPS[name]:  # only while a batch is measured
                _STEPS[name][-1] += time.perf_counter() - clock

    return stepped


async def _timed(
    conn: asyncpg.Connection, pid: int, batch: list[Any], how: derive.Derivation, keep: bool
) -> tuple[float, ...]:
    """(wall ms, backend CPU ms, ring derivation wall ms, its backend CPU ms, employees
    derived) of one batch."""
    cpu, clock = _cpu(pid), time.perf_counter()
    _RINGS[:] = [0.0, 0.0]
    tx = conn.transaction()
    await tx.start()
    result = await store.apply_batch(conn, batch, SETTINGS, how)
    if keep:
        await tx.commit()
    else:
        await tx.rollback()
    wall, backend = time.perf_counter() - clock, _cpu(pid) - cpu
    return wall * 1000, backend * 1000, _RINGS[0] * 1000, _RINGS[1] * 1000, result.rings_derived


async def run(url: str, total: int, checkpoints: list[int]) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(url)
    await migrate(conn, "attribution", MIGRATIONS)
    pid = await conn.fetchval("select pg_backend_pid()")
    derive.incremental_rings = _clocked(derive.incremental_rings, pid)  # type: ignore[method-assign]
    derive.whole_network_rings = _clocked(derive.whole_network_rings, pid)  # type: ignore[method-assign]
    for name in STEPS:
        setattr(derive, name, _stepped(name, getattr(derive, name)))
    raw = events(total + MEASURED * BATCH * len(checkpoints), seed=18, prefix="c")
    stored, rows = 0, []
    for checkpoint in checkpoints:
        while stored < checkpoint:
            batch = envelopes(raw[stored : stored + BATCH])
            async with conn.transaction():
                await store.apply_batch(conn, batch, SETTINGS)
            stored += len(batch)
        figures: dict[str, list[tuple[float, ...]]] = {
            "whole_network": [],
            "incremental": [],
        }
        for n in range(MEASURED):
            batch = envelopes(raw[stored : stored + BATCH])
            order: list[derive.Derivation] = ["whole_network", "incremental"]
            for how in order if n % 2 == 0 else order[::-1]:
                for name in STEPS:
                    _STEPS[name].append(0.0)
                figures[how].append(await _timed(conn, pid, batch, how, keep=False))
                if how == "whole_network":
                    for name in STEPS:
                        _STEPS[name].pop()
            await _timed(conn, pid, batch, "incremental", keep=True)
            stored += len(batch)
        employees = await conn.fetchval("select count(*) from attribution.employees")
        row = {"stored": checkpoint, "employees": employees}
        for how, values in figures.items():
            row[how] = tuple(statistics.median(v[i] for v in values) for i in range(5))
        rows.append(row)
        whole, incremental = row["whole_network"], row["incremental"]
        print(
            f"{checkpoint:>9,} stored, {employees:,} employees: batch wall ms "
            f"{whole[0]:.0f} → {incremental[0]:.0f}, PostgreSQL CPU ms {whole[1]:.0f} → "
            f"{incremental[1]:.0f}; rings alone: wall ms {whole[2]:.0f} → {incremental[2]:.0f},"
            f" PostgreSQL CPU ms {whole[3]:.0f} → {incremental[3]:.0f}; employees derived "
            f"{whole[4]:.0f} → {incremental[4]:.0f}",
            flush=True,
        )
        steps = {name: statistics.median(_STEPS[name]) * 1000 for name in STEPS}
        rest = statistics.median(
            wall - rings - 1000 * sum(_STEPS[name][i] for name in STEPS)
            for i, (wall, _, rings, _, _) in enumerate(figures["incremental"])
        )
        print(
            "    incremental batch steps (wall ms, median): "
            + ", ".join(f"{name} {ms:.0f}" for name, ms in steps.items())
            + f", rings {incremental[2]:.0f}, facts and the rest {rest:.0f}",
            flush=True,
        )
        for name in STEPS:
            _STEPS[name].clear()
    done = await recompute(conn, SETTINGS)
    print(
        f"recompute over {done.events:,} stored events: {done.seconds:.1f} s, "
        f"{done.events / done.seconds:,.0f} events/s ({done.employees:,} placements, "
        f"{done.applicants:,} conversions)",
        flush=True,
    )
    await conn.close()
    return rows


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 400_000
    checkpoints = [int(a) for a in sys.argv[2:]] or [50_000, 100_000, 200_000, 400_000]
    if os.environ.get("DATABASE_URL"):
        asyncio.run(run(os.environ["DATABASE_URL"], total, checkpoints))
        return
    tmp = Path(tempfile.mkdtemp(prefix="ripples-derivation-"))
    pg = start_postgres(tmp / "pg")
    try:
        asyncio.run(run(pg.address, total, checkpoints))
    finally:
        stop_postgres(pg)


if __name__ == "__main__":
    main()
