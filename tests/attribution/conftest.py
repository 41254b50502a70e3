"""Fixtures of the attribution tests: a migrated database, and helpers that feed events
through the same code the worker runs and read the `/v1` answers the API serves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from services.attribution import queries, store
from services.attribution.settings import AttributionSettings
from shared.cloudevents import parse_structured
from shared.db import migrate
from shared.events import MODELS, Envelope
from tests.conftest import API_KEYS, Running, fresh_database, start_broker

MIGRATIONS = Path(__file__).parents[2] / "services" / "attribution" / "migrations"
SETTINGS = AttributionSettings(api_keys=API_KEYS)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """This folder's own broker: the pipeline test writes a poison record and output events
    that the other tests, reading the shared broker's topics from the start, must not see."""
    running = start_broker(tmp_path_factory.mktemp("attribution-broker"))
    yield running
    running.stop()


@pytest.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(database)
    await migrate(conn, "attribution", MIGRATIONS)
    await conn.close()
    created = await asyncpg.create_pool(database, min_size=1, max_size=4)
    assert created is not None
    yield created
    try:
        await asyncio.wait_for(created.close(), 10)
    except TimeoutError:
        created.terminate()


@pytest.fixture
async def reference(postgres: Running) -> AsyncIterator[asyncpg.Pool]:
    """A second migrated database, to derive the same events another way and compare."""
    async with fresh_database(postgres, "reference") as url:
        conn = await asyncpg.connect(url)
        await migrate(conn, "attribution", MIGRATIONS)
        await conn.close()
        created = await asyncpg.create_pool(url, min_size=1, max_size=2)
        assert created is not None
        yield created
        await created.close()


def envelopes(events: Sequence[dict[str, Any]]) -> list[Envelope]:
    return [parse_structured(orjson.dumps(e)) for e in events]


async def feed(
    pool: asyncpg.Pool, events: Sequence[Envelope], batch: int = 1000
) -> list[store.BatchResult]:
    """Apply events in batches, one transaction each, as the worker does."""
    results = []
    for start in range(0, len(events), batch):
        async with pool.acquire() as conn, conn.transaction():
            results.append(await store.apply_batch(conn, events[start : start + batch], SETTINGS))
    return results


async def answers(
    pool: asyncpg.Pool,
    applicants: Sequence[str],
    employees: Sequence[str] = (),
    periods: Sequence[queries.Period] = (queries.Period(),),
) -> dict[str, bytes]:
    """Every `/v1` answer for these ids, as the bytes the API sends."""
    out: dict[str, bytes] = {}
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        for period in periods:
            for model in MODELS:
                key = f"{period.as_dict()}:{model}"
                out[f"summary:{key}"] = orjson.dumps(
                    await queries.summary(conn, period, model, SETTINGS)
                )
                out[f"sharers:{key}"] = orjson.dumps(await queries.sharers(conn, period, model))
                for employee in employees:
                    out[f"sharer:{employee}:{key}"] = orjson.dumps(
                        await queries.sharers(conn, period, model, only=employee)
                    )
        for applicant in applicants:
            out[f"conversion:{applicant}"] = orjson.dumps(await queries.conversion(conn, applicant))
        out["ripples"] = orjson.dumps(await queries.ripples(conn))
    return out
