"""The attribution process itself writes the weekly intervals the dashboard's bands read
(services/attribution/weekly.py, scheduled by ``python -m services.attribution``): started as
the deployments start it, against a database holding the hand-written scenario, with
``ATTRIBUTION_EVIDENCE_REFRESH_S=1``, it fills ``attribution.weekly_evidence`` with the
`/v1/summary` intervals of each week; with 0 it writes nothing."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from services.attribution import queries, weekly
from tests.attribution import scenario
from tests.attribution.conftest import SETTINGS, envelopes, feed
from tests.conftest import Running, start_service

pytestmark = pytest.mark.integration

FAST = {
    "KAFKA_SESSION_TIMEOUT_S": "6",
    "KAFKA_REBALANCE_TIMEOUT_S": "6",
    "KAFKA_HEARTBEAT_INTERVAL_S": "1",
    # the scenario is June 2026: every week from then to today
    "ATTRIBUTION_EVIDENCE_WEEKS": "520",
}


async def rows_after(pool: asyncpg.Pool, seconds: float) -> list[asyncpg.Record]:
    deadline = time.monotonic() + seconds
    while True:
        async with pool.acquire() as conn:
            rows = list(
                await conn.fetch(
                    "select * from attribution.weekly_evidence order by week_start, statistic"
                )
            )
        if rows or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.5)


@pytest.mark.parametrize("refresh_s", ["1", "0"])
async def test_the_worker_writes_the_weekly_intervals(
    pool: asyncpg.Pool, database: str, broker: Running, tmp_path: Path, refresh_s: str
) -> None:
    await feed(pool, envelopes(scenario.EVENTS))
    service = start_service(
        "attribution",
        tmp_path,
        broker,
        DATABASE_URL=database,
        ATTRIBUTION_EVIDENCE_REFRESH_S=refresh_s,
        **FAST,
    )
    try:
        rows = await rows_after(pool, 45 if refresh_s != "0" else 8)
    finally:
        service.stop()
    if refresh_s == "0":
        assert rows == []
        return
    first = datetime(2026, 6, 1, 10, tzinfo=UTC)  # A1, the first employee post
    expected = weekly.weeks(first, rows[0]["refreshed_at"], 520)
    assert sorted({r["week_start"] for r in rows}) == expected
    assert len(rows) == len(expected) * len(weekly.STATISTICS)
    # the week of 06-01: A1, A2 and both company posts, as /v1/summary gives it
    async with pool.acquire() as conn:
        june = await queries.summary(
            conn, queries.Period(expected[0], expected[0] + weekly.WEEK), "last_touch", SETTINGS
        )
    ratio = next(
        r for r in rows if r["week_start"] == expected[0] and r["statistic"] == "reach_ratio"
    )
    assert june["reach_ratio"] == 5.0
    assert (ratio["value"], [ratio["low"], ratio["high"]]) == (
        june["reach_ratio"],
        june["uncertainty"]["reach_ratio"],
    )
    assert (ratio["level"], ratio["samples"], ratio["seed"]) == (0.95, 2000, 20240601)
