"""Facts written with COPY (a statement of at least ``store.COPY_ROWS`` rows: the events,
engagements and clicks of a large batch) are the rows the `unnest` statements write: the
same workload, with the scenario's duplicates, stored in large batches and in small ones
gives the same fact tables and the same `/v1` answers; a repeat of a large batch stores
nothing again."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from ripples.bench import workload
from services.attribution import store
from tests.attribution import scenario
from tests.attribution.conftest import MIGRATIONS, answers, envelopes, feed
from tests.conftest import Running, fresh_database

pytestmark = pytest.mark.integration

EVENTS = envelopes([*workload.events(12_000, seed=21, prefix="c"), *scenario.EVENTS])
FACTS = ("events", "engagements", "clicks", "posts", "post_metrics", "links", "applications")


@pytest.fixture
async def pools(postgres: Running) -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool]]:
    async with fresh_database(postgres, "copy") as one, fresh_database(postgres, "arr") as two:
        pools = []
        for url in (one, two):
            conn = await asyncpg.connect(url)
            await store_schema(conn)
            await conn.close()
            pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
            assert pool is not None
            pools.append(pool)
        try:
            yield pools[0], pools[1]
        finally:
            for pool in pools:
                await pool.close()


async def store_schema(conn: asyncpg.Connection) -> None:
    from shared.db import migrate

    await migrate(conn, "attribution", MIGRATIONS)


async def table(pool: asyncpg.Pool, name: str) -> list[tuple[object, ...]]:
    rows = await pool.fetch(f"select * from attribution.{name}")  # noqa: S608 - fixed names
    return sorted((tuple(r) for r in rows), key=repr)


async def test_copied_facts_equal_the_unnest_ones(
    pools: tuple[asyncpg.Pool, asyncpg.Pool],
) -> None:
    copied, arrays = pools
    large = 2 * store.COPY_ROWS  # every batch's events, and its clicks and engagements
    assert sum(e.type.endswith("clicked.v1") for e in EVENTS[:large]) >= store.COPY_ROWS // 5
    await feed(copied, EVENTS, batch=large)
    results = await feed(arrays, EVENTS, batch=store.COPY_ROWS // 5)
    assert sum(r.outcomes[k] for r in results for k in r.outcomes if k[1] == "stored") == len(
        {(e.source, e.id) for e in EVENTS}
    )
    for name in FACTS:
        assert await table(copied, name) == await table(arrays, name), name
    applicants = sorted({e.data.applicant_id for e in EVENTS if hasattr(e.data, "applicant_id")})
    assert await answers(copied, applicants[::25]) == await answers(arrays, applicants[::25])
    # the same large batch again: every event a duplicate, nothing written twice
    again = await feed(copied, EVENTS[:large], batch=large)
    assert {k[1] for k in again[0].outcomes} == {"duplicate"}
    assert len(await table(copied, "events")) == len({(e.source, e.id) for e in EVENTS})
