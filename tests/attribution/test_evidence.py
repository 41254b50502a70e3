"""CONTRACT §10 through the storage and query layers the worker and the API use: the new
facts (a post's origin, an employee's followers, jobs) stored with the latest CloudEvent
`time` winning, duplicates changing nothing, and the same `/v1/summary` in both arrival
orders; older events without the fields still count as `own` / no followers."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from services.attribution import queries
from services.attribution.api import create_api
from tests.attribution.conftest import SETTINGS, envelopes, feed
from tests.conftest import AUTH

pytestmark = pytest.mark.integration

_ids = iter(range(100_000))


def ev(kind: str, time: str, data: dict[str, Any], source: str = "urn:t") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"x{next(_ids)}",
        "source": source,
        "type": f"ripples.{kind}.v1",
        "time": time,
        "data": data,
    }


def world() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(6):
        employee: dict[str, Any] = {
            "employee_id": f"e{i}",
            "display_name": f"E{i}",
            "ambassador": i < 2,
            "followers": 100 * (i + 1),
        }
        # a later record changes e0's followers; e5's older record without followers...
        out.append(ev("employee.upserted", "2026-06-01T00:00:00Z", employee))
    out.append(
        ev(
            "employee.upserted",
            "2026-06-02T00:00:00Z",
            {"employee_id": "e0", "display_name": "E0", "ambassador": True, "followers": 900},
        )
    )
    # ... and a newer record of e5 without followers: e5's followers are no longer known
    out.append(ev("employee.upserted", "2026-06-03T00:00:00Z",
                  {"employee_id": "e5", "display_name": "E5"}))  # fmt: skip
    posts = [
        # (post, author, origin, impressions); p2's origin is corrected by a later event
        ("c1", None, None, 1000),
        ("c2", None, None, 1400),
        ("p1", "e0", "own", 6000),
        ("p2", "e0", "template", 2000),
        ("p3", "e1", None, 5000),  # an older event without origin: own
        ("p4", "e2", "suggested", 1500),
        ("p5", "e3", "own", 4000),
        ("p6", "e4", "own", 3500),
        ("p7", "e5", "template", 1200),
        ("p8", "e1", "own", 7000),
    ]
    for n, (post_id, author, origin, impressions) in enumerate(posts):
        data: dict[str, Any] = {
            "post_id": post_id,
            "author_kind": "company" if author is None else "employee",
            "published_at": f"2026-06-{10 + n:02d}T08:00:00Z",
        }
        if author is not None:
            data["employee_id"] = author
        if origin is not None:
            data["origin"] = origin
        out.append(ev("post.published", data["published_at"], data))
        out.append(
            ev(
                "post.metrics",
                f"2026-06-{11 + n:02d}T08:00:00Z",
                {"post_id": post_id, "observed_at": f"2026-06-{11 + n:02d}T08:00:00Z",
                 "impressions": impressions},
            )
        )  # fmt: skip
    out.append(
        ev(
            "post.published",
            "2026-06-30T00:00:00Z",
            {"post_id": "p2", "author_kind": "employee", "employee_id": "e0",
             "published_at": "2026-06-11T08:00:00Z", "origin": "suggested"},
        )
    )  # fmt: skip
    # jobs: j1's family moves by a later event; an older event arriving late changes nothing
    out.append(ev("job.upserted", "2026-06-01T00:00:00Z",
                  {"job_id": "j1", "title": "Engineer", "family": "eng"}))  # fmt: skip
    out.append(ev("job.upserted", "2026-06-05T00:00:00Z",
                  {"job_id": "j1", "title": "Engineer", "family": "heating",
                   "hard_to_recruit": True}))  # fmt: skip
    out.append(ev("job.upserted", "2026-06-01T00:00:00Z", {"job_id": "j2", "family": "it"}))
    link = {"link_code": "k0", "target_url": "https://x.example/j", "employee_id": "e0"}
    out.append(ev("link.created", "2026-06-01T00:00:00Z", link))
    applications = [("a1", "j1", "k0"), ("a2", "j2", None), ("a3", "j2", "k0"), ("a4", "j9", None)]
    for applicant, job, code in applications:
        data = {"applicant_id": applicant, "job_id": job, "applied_at": "2026-06-20T00:00:00Z"}
        if code is not None:
            data["link_code"] = code
        out.append(ev("applicant.applied", data["applied_at"], data))
    return out


async def _reset(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        tables = await conn.fetch(
            "select tablename from pg_tables where schemaname = 'attribution'"
        )
        names = ", ".join(f"attribution.{r['tablename']}" for r in tables)
        await conn.execute(f"truncate {names} restart identity")


async def _summary(pool: asyncpg.Pool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return await queries.summary(conn, queries.Period(), "last_touch", SETTINGS)


async def test_new_facts_in_both_arrival_orders(pool: asyncpg.Pool) -> None:
    events = world()
    await feed(pool, envelopes(events))
    forward = await _summary(pool)
    async with pool.acquire() as conn:
        jobs = {r["job_id"]: tuple(r) for r in await conn.fetch(
            "select job_id, title, family, hard_to_recruit from attribution.jobs")}  # fmt: skip
        followers = dict(
            await conn.fetch("select employee_id, followers from attribution.employees")
        )
        origins = dict(await conn.fetch("select post_id, origin from attribution.posts"))
    assert jobs == {
        "j1": ("j1", "Engineer", "heating", True),
        "j2": ("j2", None, "it", False),
    }
    assert followers == {"e0": 900, "e1": 200, "e2": 300, "e3": 400, "e4": 500, "e5": None}
    assert origins["p2"] == "suggested"
    assert origins["p3"] == "own"

    await _reset(pool)
    reverse = list(reversed(events))
    await feed(pool, envelopes(reverse + reverse[:7]), batch=5)  # duplicates change nothing
    assert orjson.dumps(await _summary(pool)) == orjson.dumps(forward)

    origin = forward["content_origin"]
    assert origin["own"] == {"posts": 5, "impressions": 25500, "mean_impressions_per_post": 5100.0}
    assert origin["suggested"]["posts"] == 2
    assert origin["template"]["posts"] == 1
    assert origin["own_vs_prepared"] == pytest.approx(5100 / (4700 / 3))
    low, high = origin["interval"]
    assert low <= origin["own_vs_prepared"] <= high
    # six sharers; per-post means e0 4000, e1 6000, e2 1500, e3 4000, e4 3500, e5 1200;
    # posts 2, 2, 1, 1, 1, 1; followers known for e0-e4 only (five)
    assert forward["drivers"]["employees"] == 6
    assert forward["drivers"]["activity_spearman"] is not None
    assert forward["drivers"]["followers_spearman"] is not None
    jobs_answer = forward["applicants"]["jobs"]
    assert [(j["family"], j["hard_to_recruit"], j["applicants"], j["attributed"])
            for j in jobs_answer] == [("heating", True, 1, 1), ("it", False, 2, 1),
                                      (None, False, 1, 0)]  # fmt: skip
    assert jobs_answer[0]["credit"] == {"0": 0.0, "1": 1.0, "independent": 0.0}
    u = forward["uncertainty"]
    assert (u["method"], u["level"], u["samples"], u["seed"]) == (
        "bootstrap",
        0.95,
        SETTINGS.bootstrap_samples,
        SETTINGS.bootstrap_seed,
    )
    low, high = u["reach_ratio"]
    assert low <= forward["reach_ratio"] <= high
    # e0: 6000 + 2000 impressions, credit 2 (a1, a3 through k0); e1: 5000 + 7000, credit 0
    scale = forward["scale_up"]
    assert scale["ambassadors"] == 2
    assert scale["per_ambassador"]["impressions"] == 10000.0
    assert scale["per_ambassador"]["applicants"] == 1.0
    assert scale["targets"][0] == scale["targets"][0] | {"ambassadors": 25, "applicants": 25.0}


async def test_the_api_serves_the_evidence_twice_the_same(pool: asyncpg.Pool) -> None:
    await feed(pool, envelopes(world()))

    async def get_pool() -> asyncpg.Pool:
        return pool

    async def ready() -> dict[str, bool]:
        return {"database": True, "partitions_assigned": True}

    app = create_api(get_pool, ready, SETTINGS)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://attribution", headers=AUTH
    ) as client:
        first = await client.get("/v1/summary")
        second = await client.get("/v1/summary")
    assert first.status_code == 200
    assert first.content == second.content
    body = first.json()
    for key in ("uncertainty", "content_origin", "drivers"):
        assert key in body
    assert "jobs" in body["applicants"]
