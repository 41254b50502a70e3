"""attribution.first_shares is kept by the post upsert for the batch's authors only: a post
re-published under another author moves both authors' first shares, an older event about
the post changes nothing, and the rings derived from it equal those of one fresh replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tests.attribution.conftest import envelopes, feed

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def _t(hours: int) -> str:
    return (T0 + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


def _ev(n: int, kind: str, time: int, data: dict[str, Any]) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"x{n}", "source": "urn:t", "type": f"ripples.{kind}.v1",
            "time": _t(time), "data": data}  # fmt: skip


def _post(n: int, time: int, post_id: str, author: str, published: int) -> dict[str, Any]:
    return _ev(n, "post.published", time, {"post_id": post_id, "author_kind": "employee",
               "employee_id": author, "published_at": _t(published)})  # fmt: skip


BATCHES = [
    [
        _ev(
            1,
            "employee.upserted",
            0,
            {"employee_id": "e1", "display_name": "E1", "ambassador": True},
        ),
        _ev(2, "employee.upserted", 0, {"employee_id": "e2", "display_name": "E2"}),
        _ev(3, "employee.upserted", 0, {"employee_id": "e3", "display_name": "E3"}),
        _post(4, 0, "p0", "e1", 0),
        _post(5, 10, "p1", "e2", 10),
    ],
    # p1 re-published by e3: e2 has no post left, e3's first share is p1's
    [_post(6, 20, "p1", "e3", 12)],
    # an older event about p1 loses: nothing moves
    [_post(7, 5, "p1", "e2", 3)],
    # an earlier post of e3, after e3 engaged with e1's post: e3 is inspired by e1
    [
        _ev(
            8,
            "post.engagement",
            1,
            {"post_id": "p0", "action": "reaction", "at": _t(1), "actor_employee_id": "e3"},
        ),
        _post(9, 2, "p2", "e3", 2),
    ],
]
EXPECTED = [
    {"e1": _t(0), "e2": _t(10)},
    {"e1": _t(0), "e3": _t(12)},
    {"e1": _t(0), "e3": _t(12)},
    {"e1": _t(0), "e3": _t(2)},
]


async def _state(pool: asyncpg.Pool) -> tuple[dict[str, str], list[tuple[Any, ...]]]:
    async with pool.acquire() as conn:
        first = {
            r["employee_id"]: r["first_shared_at"].isoformat().replace("+00:00", "Z")
            for r in await conn.fetch("select * from attribution.first_shares")
        }
        aggregate = {
            r["employee_id"]: r["s"].isoformat().replace("+00:00", "Z")
            for r in await conn.fetch(
                "select employee_id, min(published_at) as s from attribution.posts "
                "where author_kind = 'employee' group by employee_id"
            )
        }
        assert first == aggregate
        places = [
            tuple(r) for r in await conn.fetch("select * from attribution.placements order by 1")
        ] + [
            tuple(r) for r in await conn.fetch("select * from attribution.inspirers order by 1, 2")
        ]
    return first, places


async def test_first_shares_follow_reauthored_posts(pool: asyncpg.Pool) -> None:
    for batch, expected in zip(BATCHES, EXPECTED, strict=True):
        await feed(pool, envelopes(batch))
        first, places = await _state(pool)
        assert first == expected
    assert ("e3", 2, T0 + timedelta(hours=2)) in places
    async with pool.acquire() as conn:
        tables = await conn.fetch(
            "select tablename from pg_tables where schemaname = 'attribution'"
        )
        await conn.execute("truncate " + ", ".join(f"attribution.{r['tablename']}" for r in tables))
    await feed(pool, envelopes([e for batch in BATCHES for e in batch]))
    assert await _state(pool) == (first, places)
