"""``ripples recompute`` (issue 18, part 4): after a settings change, the derived tables
rebuilt from the stored facts equal a fresh replay of the same events under the new settings,
row for row; the results API answers throughout, from the old rows or the new, never a mix;
the admin route runs one with the key."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import orjson
import pytest

from ripples.bench.workload import events as bench_events
from services.attribution import queries
from services.attribution.api import create_api
from services.attribution.recompute import STAGED, recompute
from shared.db import migrate
from tests.attribution.conftest import MIGRATIONS, SETTINGS, envelopes
from tests.attribution.scenario import applied, engage, hired, person, post
from tests.attribution.test_incremental import _tables, feed_with
from tests.conftest import AUTH, Running, fresh_database

pytestmark = pytest.mark.integration

# every setting a recompute is for: ring window and half-life, lookback, time-decay half-life
CHANGED = dataclasses.replace(
    SETTINGS,
    ring_window_days=21.0,
    ring_half_life_days=3.0,
    lookback_days=45.0,
    decay_half_life_days=2.0,
)


CHAIN = datetime(2026, 7, 1, tzinfo=UTC)


def _rfc3339(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _world() -> list[dict[str, object]]:
    """The bench workload, and a chain of colleagues each exposed 18 days before sharing:
    independent sharers under the 14-day window, rings 1-4 under 21 days."""
    world: list[dict[str, object]] = list(bench_events(6_000, seed=5, prefix="z"))
    world += [person("c0", "c0", ambassador=True), *(person(f"c{i}", f"c{i}") for i in (1, 2, 3))]
    for rank in range(4):
        shared = CHAIN + timedelta(days=20 * rank)
        world.append(post(f"cp{rank}", f"c{rank}", _rfc3339(shared)))
        if rank:
            world.append(engage(f"cp{rank - 1}", f"c{rank}", _rfc3339(shared - timedelta(days=18))))
    return world


async def test_recompute_equals_a_fresh_replay_under_the_new_settings(
    pool: asyncpg.Pool, reference: asyncpg.Pool
) -> None:
    items = envelopes(_world())
    await feed_with(pool, items, SETTINGS)  # derived with the settings before the change
    before = await _tables(pool)
    await feed_with(reference, items, CHANGED)  # the fresh replay under the new ones

    async with pool.acquire() as conn:
        old_ripples = orjson.dumps(await queries.ripples(conn))
    seen: list[bytes] = []
    stages: list[tuple[str, int, int]] = []
    finished = asyncio.Event()

    async def read() -> None:  # the results API's reads, while the recompute runs
        while not finished.is_set():
            async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
                seen.append(orjson.dumps(await queries.ripples(conn)))
            await asyncio.sleep(0)

    reader = asyncio.create_task(read())
    async with pool.acquire() as conn:
        done = await recompute(conn, CHANGED, lambda *stage: stages.append(stage), chunk=200)
    finished.set()
    await reader

    after, expected = await _tables(pool), await _tables(reference)
    for table in STAGED:
        assert after[table] == expected[table], table
        if table != "conversions":  # (the chain and the longer lookback move every one)
            assert after[table] != before[table], f"{table}: the settings changed nothing"
    # recognitions: every one the fresh replay has is due here too (and none taken back)
    assert {r[0] for r in expected["recognitions"]} <= {r[0] for r in after["recognitions"]}
    assert {r[0] for r in before["recognitions"]} <= {r[0] for r in after["recognitions"]}
    assert done.credits_assigned > 0
    assert done.recognitions > 0

    async with pool.acquire() as conn:
        new_ripples = orjson.dumps(await queries.ripples(conn))
        leftovers = await conn.fetchval(
            "select count(*) from pg_tables where schemaname = 'attribution' "
            "and tablename like 'next\\_%'"
        )
    assert leftovers == 0
    assert old_ripples != new_ripples
    assert len(seen) >= 2
    assert set(seen) <= {old_ripples, new_ripples}
    assert [s for s, _, _ in stages].count("conversions") > 2  # the progress, chunk by chunk
    assert stages[-1] == ("swap", 1, 1)


async def test_a_ring_change_alone_rewrites_no_touch_and_a_second_recompute_nothing(
    pool: asyncpg.Pool, reference: asyncpg.Pool
) -> None:
    """Only the ring window changes: the touches and credit rows stay as they were (the
    recompute skips every conversion whose rows and credited rings did not move), and the
    tables still equal a fresh replay under the new window; recomputing again with the same
    settings changes nothing and sends nothing."""
    ring_only = dataclasses.replace(SETTINGS, ring_window_days=21.0)
    # an applicant referred by c3, whose ring the longer window moves: a payload that changes
    at = _rfc3339(CHAIN + timedelta(days=70))
    items = envelopes([*_world(), applied("ca", at, referrer_employee_id="c3"), hired("ca", at)])
    await feed_with(pool, items, SETTINGS)
    before = await _tables(pool)
    await feed_with(reference, items, ring_only)
    async with pool.acquire() as conn:
        done = await recompute(conn, ring_only, chunk=500)
    assert done.credits_assigned >= 2  # ca's application and hire, at least
    after, expected = await _tables(pool), await _tables(reference)
    for table in STAGED:
        assert after[table] == expected[table], table
    assert after["placements"] != before["placements"]
    assert after["touches"] == before["touches"]
    assert after["credits"] == before["credits"]
    async with pool.acquire() as conn:
        again = await recompute(conn, ring_only, chunk=500)
    assert (again.credits_assigned, again.recognitions) == (0, 0)
    assert await _tables(pool) == after


async def test_the_admin_route_recomputes_with_the_key(pool: asyncpg.Pool) -> None:
    """POST /v1/admin/recompute (key) starts one, a second while it runs is 409, GET shows its
    stage and then its result; without the key both are 401."""
    await feed_with(pool, envelopes(_world()), SETTINGS)

    async def get_pool() -> asyncpg.Pool:
        return pool

    async def ready() -> dict[str, bool]:
        return {"database": True, "partitions_assigned": True}

    app = create_api(get_pool, ready, CHANGED)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://attribution") as client:
        for method in ("POST", "GET"):
            refused = await client.request(method, "/v1/admin/recompute")
            assert refused.status_code == 401
            assert refused.headers["content-type"] == "application/problem+json"
        started = await client.post("/v1/admin/recompute", headers=AUTH)
        assert started.status_code == 202, started.text
        assert started.json()["status"] == "running"
        again = await client.post("/v1/admin/recompute", headers=AUTH)
        assert again.status_code == 409
        assert again.headers["content-type"] == "application/problem+json"
        states = []
        while (state := (await client.get("/v1/admin/recompute", headers=AUTH)).json())[
            "status"
        ] == "running":
            states.append(state["stage"])
            await asyncio.sleep(0.01)
    assert state["status"] == "done", state
    assert state["staging"] is False  # its next_* tables are gone
    assert state["result"]["applicants"] > 0
    assert state["result"]["events"] == len(_world())
    assert {"conversions"} <= set(states)
    async with pool.acquire() as conn:
        window = await conn.fetchval(
            "select count(*) from attribution.inspirers where employee_id like 'c%'"
        )
    assert window == 3  # the chain, linked under the new 21-day window


def test_ripples_recompute_command(postgres: Running) -> None:
    """``ripples recompute`` with the new ATTRIBUTION_* settings and DATABASE_URL: a progress
    bar, a line saying what it did, and the tables re-derived under the new settings."""

    async def run() -> tuple[int, str, int, int]:
        async with fresh_database(postgres, "recompute") as url:
            conn = await asyncpg.connect(url)
            await migrate(conn, "attribution", MIGRATIONS)
            pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
            assert pool is not None
            await feed_with(pool, envelopes(_world()), SETTINGS)
            await pool.close()
            before = await conn.fetchval("select count(*) from attribution.inspirers")
            env = os.environ | {"DATABASE_URL": url, "ATTRIBUTION_RING_WINDOW_DAYS": "21"}
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ripples", "recompute", env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            output, _ = await asyncio.wait_for(process.communicate(), 120)
            after = await conn.fetchval("select count(*) from attribution.inspirers")
            await conn.close()
            assert process.returncode is not None
            return process.returncode, output.decode(), before, after

    code, output, before, after = asyncio.run(run())
    assert code == 0, output
    assert "recomputed" in output
    assert "conversions" in output  # the progress bar's stage
    assert after == before + 3  # the chain, linked under the 21-day window
