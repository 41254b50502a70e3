"""The hand-written scenario through the storage and query layers (the code the worker and
the API run), against the values computed by hand in scenario.py."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import orjson
import pytest

from services.attribution import queries
from tests.attribution import scenario
from tests.attribution.conftest import SETTINGS, envelopes, feed

pytestmark = pytest.mark.integration


def _period() -> queries.Period:
    start, end = (datetime.fromisoformat(t) for t in scenario.PERIOD)
    return queries.Period(start, end)


async def test_scenario_by_hand(pool: asyncpg.Pool) -> None:
    # one event per batch: every late event must re-derive what it affects
    await feed(pool, envelopes(scenario.EVENTS), batch=1)
    async with pool.acquire() as conn:
        summary = await queries.summary(conn, queries.Period(), "linear", SETTINGS)
        assert summary == scenario.SUMMARY_ALL_LINEAR
        summary = await queries.summary(conn, _period(), "first_touch", SETTINGS)
        assert summary == scenario.SUMMARY_PERIOD_FIRST_TOUCH
        sharers = await queries.sharers(conn, queries.Period(), "linear")
        assert sharers == scenario.SHARERS_ALL_LINEAR
        assert await queries.conversion(conn, "ap1") == scenario.CONVERSION_AP1
        assert await queries.conversion(conn, "ap2") == scenario.CONVERSION_AP2
        assert await queries.conversion(conn, "ap5") == scenario.CONVERSION_AP5
        assert await queries.conversion(conn, "nobody") is None
        assert await queries.ripples(conn) == scenario.RIPPLES
        recognitions = {r["recognition_id"] for r in await conn.fetch(
            "select recognition_id from attribution.recognitions")}  # fmt: skip
        assert recognitions == scenario.RECOGNITION_IDS


async def test_scenario_in_one_batch_gives_the_same_bytes(pool: asyncpg.Pool) -> None:
    await feed(pool, envelopes(scenario.EVENTS), batch=10_000)
    async with pool.acquire() as conn:
        summary = await queries.summary(conn, queries.Period(), "linear", SETTINGS)
        assert orjson.dumps(summary) == orjson.dumps(scenario.SUMMARY_ALL_LINEAR)
        assert await queries.ripples(conn) == scenario.RIPPLES
