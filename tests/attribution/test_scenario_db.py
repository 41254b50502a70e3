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
        assert summary == scenario.SUMMARY_ALL_LINEAR
        assert await queries.ripples(conn) == scenario.RIPPLES
        tables = [r["tablename"] for r in await conn.fetch(
            "select tablename from pg_tables where schemaname = 'attribution'")]  # fmt: skip
        await conn.execute(f"truncate {', '.join('attribution.' + t for t in tables)}")
    # one event per batch: the same bytes, bootstrap intervals included (same seed)
    await feed(pool, envelopes(scenario.EVENTS), batch=1)
    async with pool.acquire() as conn:
        again = await queries.summary(conn, queries.Period(), "linear", SETTINGS)
    assert orjson.dumps(again) == orjson.dumps(summary)


async def test_dashboard_views(pool: asyncpg.Pool) -> None:
    await feed(pool, envelopes(scenario.EVENTS))
    async with pool.acquire() as conn:
        reach = {
            (r["ring"], r["posts"], r["impressions"])
            for r in await conn.fetch(
                "select ring, sum(posts)::int as posts, sum(impressions)::int as impressions "
                "from attribution.reach_per_ring_per_day group by ring"
            )
        }
        # company 2 posts 600; ring 1: A1 + A2; ring 2: C1 600 + G1 100; ring 3: D1
        assert reach == {
            ("company", 2, 600),
            ("1", 2, 3000),
            ("2", 2, 700),
            ("3", 1, 300),
            ("independent", 1, 50),
        }
        credit = {
            (r["conversion"], r["ring"]): round(r["credit"], 12)
            for r in await conn.fetch(
                "select conversion, ring, sum(credit) as credit "
                "from attribution.credit_per_ring_per_day where model = 'linear' group by 1, 2"
            )
        }
        assert credit == {
            ("applied", "company"): scenario.THIRD,
            ("applied", "1"): 1.0,
            ("applied", "2"): scenario.TWO_THIRDS,
            ("applied", "3"): 1.0,
            ("hired", "company"): scenario.THIRD,
            ("hired", "1"): scenario.THIRD,
            ("hired", "2"): scenario.THIRD,
        }
        top = await conn.fetch(
            "select employee_id, applicant_credit, inspired from attribution.top_sharers "
            "order by applicant_credit desc, impressions desc, employee_id"
        )
        assert [r["employee_id"] for r in top] == [s["employee_id"] for s in
                                                    scenario.SHARERS_ALL_LINEAR]  # fmt: skip
        assert {r["employee_id"]: r["inspired"] for r in top}["c1"] == 2
        edges = await conn.fetch(
            "select source, target, source_ring, target_ring from attribution.ripple_edges "
            "order by target, source"
        )
        assert [tuple(r) for r in edges] == [
            ("amb1", "c1", 1, 2),
            ("c1", "d1", 2, 3),
            ("amb2", "g1", 1, 2),
            ("c1", "g1", 2, 2),
        ]
        nodes = await conn.fetch(
            "select employee_id, ring, first_shared_at, inspired from attribution.ripple_nodes "
            "order by employee_id"
        )
        assert [
            {"employee_id": r["employee_id"], "ring": r["ring"],
             "first_shared_at": r["first_shared_at"].isoformat().replace("+00:00", "Z")}
            for r in nodes
        ] == scenario.RIPPLES["nodes"]  # fmt: skip
        assert {r["employee_id"]: r["inspired"] for r in nodes} == {
            "amb1": 1, "amb2": 1, "c1": 2, "d1": 0, "g1": 0, "solo": 0,
        }  # fmt: skip
        names = {s["employee_id"]: s["display_name"] for s in scenario.SHARERS_ALL_LINEAR}
        assert {r["employee_id"]: r["display_name"] for r in await conn.fetch(
            "select employee_id, display_name from attribution.ripple_nodes")} == names  # fmt: skip
