"""Re-derive every derived table from the stored facts, after a settings change (ring window,
half-life, lookback, time-decay half-life): ``ripples recompute`` (issue 18, part 4).

The batches' incremental derivation trusts the stored rows; a changed setting makes all of
them stale at once, so they are rebuilt here with the whole-network derivation, into new
tables beside the old ones (``attribution.next_*``), then swapped in by one transaction: the
results API keeps answering from the old rows until that transaction commits, and from the new
ones after. Batches wait meanwhile (the writers' advisory lock is held throughout), so no fact
stored during the rebuild is missed. ``credit.assigned`` goes out for every payload that
changed, and recognitions the new settings make due (an inspired colleague, a first applicant,
a hire) are emitted once, as a batch would; recognitions already due stay (none is taken back).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from services.attribution import derive, store
from services.attribution.settings import AttributionSettings

log = logging.getLogger(__name__)

STAGED = ("placements", "inspirers", "touches", "credits", "conversions")
"""The derived tables rebuilt beside the live ones (first shares follow the posts, not the
settings; recognitions are a ledger, never rebuilt)."""

Progress = Callable[[str, int, int], None]
"""Called with (stage, done, total) as the rebuild advances."""


@dataclass
class Recomputed:
    employees: int  # placements derived
    applicants: int  # conversions derived
    events: int  # stored events the derivation read
    credits_assigned: int  # credit.assigned events sent for changed payloads
    recognitions: int  # new recognitions due
    seconds: float


def _quiet(stage: str, done: int, total: int) -> None:
    """The default progress callback: says nothing."""


async def recompute(
    conn: store.Conn,
    settings: AttributionSettings,
    progress: Progress = _quiet,
    chunk: int = 5000,
) -> Recomputed:
    """Rebuild every derived table with ``settings``; swap them in one transaction."""
    started = time.monotonic()
    await conn.execute("select pg_advisory_lock($1)", store._LOCK)
    try:
        return await _rebuild(conn, settings, progress, chunk, started)
    finally:
        await conn.execute("select pg_advisory_unlock($1)", store._LOCK)


async def _rebuild(
    conn: store.Conn, settings: AttributionSettings, progress: Progress, chunk: int, started: float
) -> Recomputed:
    for table in STAGED:  # without indexes: only ever read whole, by the swap
        await conn.execute(
            f"drop table if exists attribution.next_{table}; "
            f"create table attribution.next_{table} (like attribution.{table} including defaults)"
        )
    events = await conn.fetchval("select count(*) from attribution.events")
    progress("rings", 0, 1)
    placed = await derive.whole_network_placements(conn, settings)
    await conn.copy_records_to_table(
        "next_placements",
        schema_name="attribution",
        records=[(e, p.ring, p.first_shared_at) for e, p in sorted(placed.items())],
    )
    new_edges = {
        (e, i.employee_id): (i.weight, i.exposure, i.exposed_at)
        for e, p in placed.items()
        for i in p.inspirers
    }
    await conn.copy_records_to_table(
        "next_inspirers",
        schema_name="attribution",
        records=[(*k, *v) for k, v in sorted(new_edges.items())],
    )
    progress("rings", 1, 1)

    ring_of = {e: p.ring for e, p in placed.items()}
    stored_rings = {
        r["employee_id"]: r["ring"]
        for r in await conn.fetch("select employee_id, ring from attribution.placements")
    }
    moved = {
        e for e in stored_rings.keys() | ring_of.keys() if stored_rings.get(e) != ring_of.get(e)
    }
    applicants = [
        r["applicant_id"]
        for r in await conn.fetch(
            "select applicant_id from attribution.applications union "
            "select applicant_id from attribution.hires order by 1"
        )
    ]
    result = store.BatchResult()
    outbox: list[tuple[str, bytes]] = []
    changed_all: list[derive.Conversion] = []
    rewritten: list[str] = []  # applicants whose touch and credit rows are replaced
    progress("conversions", 0, len(applicants))
    for start in range(0, len(applicants), chunk):
        part = applicants[start : start + chunk]
        conversions = await derive.load_conversions(conn, part, settings)
        digests: dict[str, derive.Digests] = {
            r["applicant_id"]: (r["derived_digest"], r["applied_digest"], r["hired_digest"])
            for r in await conn.fetch(
                "select * from attribution.conversions where applicant_id = any($1::text[])",
                part,
            )
        }
        # A conversion whose touch and credit rows are as stored (the same derived digest)
        # and whose credited employees kept their rings has the payloads it had: nothing of
        # it is built, hashed or written again (a change of the ring settings alone leaves
        # every touch as it was). The others' rows go to the next_* tables, and replace
        # theirs at the swap.
        stale = [
            c
            for c in conversions
            if c.applicant_id not in digests
            or derive.derived_digest(c) != digests[c.applicant_id][0]
            or any(e in moved for es in c.credit.values() for e, _ in es if e is not None)
        ]
        changed, rewrite, rows = derive.conversion_outputs(stale, ring_of, digests, result, outbox)
        changed_all += changed
        rewritten += [c.applicant_id for c in rewrite]
        await derive.copy_touches_and_credits(conn, rewrite, prefix="next_")
        await conn.copy_records_to_table(
            "next_conversions", schema_name="attribution", records=rows
        )
        progress("conversions", start + len(part), len(applicants))

    progress("swap", 0, 1)
    async with conn.transaction():
        old_edges = await derive.stored_edges(conn)
        for table in ("placements", "inspirers"):  # whole (one row per employee or edge)
            await conn.execute(
                f"delete from attribution.{table}; "  # noqa: S608 - constant names
                f"insert into attribution.{table} select * from attribution.next_{table}"
            )
        # only the conversions that changed
        for table in ("touches", "credits"):
            await conn.execute(
                f"delete from attribution.{table} where applicant_id = any($1::text[])",  # noqa: S608
                rewritten,
            )
            await conn.execute(
                f"insert into attribution.{table} select * from attribution.next_{table}"  # noqa: S608
            )
        await conn.execute(
            "delete from attribution.conversions c using attribution.next_conversions n "
            "where c.applicant_id = n.applicant_id; "
            "insert into attribution.conversions select * from attribution.next_conversions"
        )
        ring_change = derive.RingChange(
            new_edges=[(u, e) for e, u in sorted(new_edges) if (e, u) not in old_edges]
        )
        candidates = await derive.recognitions(conn, (), (), ring_change, changed_all)
        await derive.emit_recognitions(conn, candidates, result, outbox)
        if outbox:
            await conn.copy_records_to_table(
                "outbox", schema_name="attribution", columns=("topic", "event"), records=outbox
            )
        for table in STAGED:
            await conn.execute(f"drop table attribution.next_{table}")
    progress("swap", 1, 1)
    return Recomputed(
        employees=len(placed),
        applicants=len(applicants),
        events=events,
        credits_assigned=result.credits_assigned,
        recognitions=sum(result.recognitions.values()),
        seconds=time.monotonic() - started,
    )


async def staging(conn: store.Conn) -> bool:
    """Whether a recompute is building its tables now, in this process or another."""
    found: bool = await conn.fetchval(
        "select exists(select from pg_tables where schemaname = 'attribution' "
        "and tablename like 'next\\_%')"
    )
    return found


@dataclass
class Job:
    """The admin route's recompute (``POST /v1/admin/recompute``): one at a time, in the
    service's event loop, its progress readable while it runs (``GET``)."""

    status: Literal["idle", "running", "done", "failed"] = "idle"
    stage: str | None = None
    done: int = 0
    total: int = 0
    result: Recomputed | None = None
    _task: asyncio.Task[None] | None = None

    def progress(self, stage: str, done: int, total: int) -> None:
        self.stage, self.done, self.total = stage, done, total

    def start(self, pool: asyncpg.Pool, settings: AttributionSettings) -> bool:
        """Start a recompute; False when one is running already."""
        if self.status == "running":
            return False
        self.status, self.stage, self.done, self.total, self.result = "running", None, 0, 0, None
        self._task = asyncio.create_task(self._run(pool, settings))
        return True

    async def _run(self, pool: asyncpg.Pool, settings: AttributionSettings) -> None:
        try:
            async with pool.acquire() as conn:
                self.result = await recompute(conn, settings, self.progress)
            self.status = "done"
            log.info("recompute done", extra={"seconds": round(self.result.seconds, 1)})
        except Exception:
            self.status = "failed"
            log.exception("recompute failed")

    async def wait(self) -> None:
        if self._task is not None:
            await self._task

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "stage": self.stage,
            "done": self.done,
            "total": self.total,
            "result": None if self.result is None else dataclasses.asdict(self.result),
        }
