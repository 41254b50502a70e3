"""Property: any permutation and any duplication of the same events, in any batch sizes,
gives byte-identical `/v1` answers (summary, sharers, one sharer, conversions, ripples).

Runs through the storage and query layers the worker and the API use (no broker, to stay
fast); the pipeline test covers the broker and a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from services.attribution import queries
from tests.attribution.conftest import answers, envelopes, feed

pytestmark = pytest.mark.integration

T0 = datetime(2026, 6, 1, tzinfo=UTC)
EMPLOYEES = [f"e{i}" for i in range(6)]
APPLICANTS = [f"a{i}" for i in range(4)]
LINKS = ["k0", "k1", "k2", "kc"]


def _t(hours: int) -> str:
    return (T0 + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


# hours on a coarse grid (half days) over 20 days, so that ties happen often and exposures
# fall inside the 14-day ring window
hours = st.integers(0, 40).map(lambda h: h * 12)


@st.composite
def worlds(draw: st.DrawFn) -> list[dict[str, Any]]:
    counter = iter(range(10_000))
    out: list[dict[str, Any]] = []

    def ev(kind: str, time: str, data: dict[str, Any]) -> None:
        out.append(
            {
                "specversion": "1.0",
                "id": f"g{next(counter)}",
                "source": draw(st.sampled_from(["urn:a", "urn:b"])),
                "type": f"ripples.{kind}.v1",
                "time": time,
                "data": data,
            }
        )

    for employee in EMPLOYEES:
        for _ in range(draw(st.integers(0, 2)) + (draw(st.integers(0, 3)) > 0)):
            ev(
                "employee.upserted",
                _t(draw(hours)),
                # e0 and e1 are mostly ambassadors, the others mostly not
                {"employee_id": employee, "display_name": f"N{draw(st.integers(0, 9))}",
                 "ambassador": (draw(st.integers(0, 4)) == 0) != (employee in ("e0", "e1"))},
            )  # fmt: skip
        if draw(st.integers(0, 5)) == 0:
            ev("employee.removed", _t(draw(hours)), {"employee_id": employee})
    posts: list[str] = []
    published: dict[str, int] = {}
    for n in range(draw(st.integers(1, 12))):
        post_id = f"p{n}"
        author = draw(st.sampled_from([None, *EMPLOYEES]))
        # later posts tend to be published later, so reshares and exposures chain up
        published[post_id] = 12 * min(40, 3 * n + draw(st.integers(0, 4)))
        data: dict[str, Any] = {
            "post_id": post_id,
            "author_kind": "company" if author is None else "employee",
            "published_at": _t(published[post_id]),
        }
        if author is not None:
            data["employee_id"] = author
        if posts and draw(st.integers(0, 3)) > 0:
            data["reshare_of"] = draw(st.sampled_from(posts))
        ev("post.published", data["published_at"], data)
        posts.append(post_id)
        for _ in range(draw(st.integers(0, 2)) + (draw(st.integers(0, 3)) > 0)):
            observed = _t(draw(hours))
            ev(
                "post.metrics",
                observed,
                {"post_id": post_id, "observed_at": observed,
                 "impressions": draw(st.integers(0, 3000)), "clicks": draw(st.integers(0, 50)),
                 "reactions": draw(st.integers(0, 5))},
            )  # fmt: skip
    for _ in range(draw(st.integers(0, 16))):
        target = draw(st.sampled_from(posts))
        at = _t(published[target] + 12 * draw(st.integers(-1, 6)))
        ev(
            "post.engagement",
            at,
            {"post_id": target, "at": at,
             "action": draw(st.sampled_from(["reaction", "comment", "reshare"])),
             "actor_employee_id": draw(st.sampled_from(EMPLOYEES))},
        )  # fmt: skip
    for code in LINKS:
        if draw(st.integers(0, 3)) > 0:
            data = {"link_code": code, "target_url": "https://x.example/j"}
            if code != "kc":
                data["employee_id"] = draw(st.sampled_from(EMPLOYEES))
            ev("link.created", _t(0), data)
    for _ in range(draw(st.integers(0, 10))):
        at = _t(draw(hours))
        ev(
            "link.clicked",
            at,
            {"link_code": draw(st.sampled_from(LINKS)), "at": at,
             "visitor_id": f"v{draw(st.integers(0, 3))}"},
        )  # fmt: skip
    for applicant in APPLICANTS:
        if draw(st.integers(0, 3)) > 0:
            at = _t(draw(hours))
            data = {"applicant_id": applicant, "job_id": "J", "applied_at": at}
            if draw(st.booleans()):
                data["visitor_id"] = f"v{draw(st.integers(0, 3))}"
            if draw(st.booleans()):
                data["link_code"] = draw(st.sampled_from(LINKS))
            if draw(st.booleans()):
                data["referrer_employee_id"] = draw(st.sampled_from(EMPLOYEES))
            ev("applicant.applied", at, data)
        if draw(st.integers(0, 2)) == 0:
            at = _t(draw(hours))
            ev("applicant.hired", at, {"applicant_id": applicant, "job_id": "J", "hired_at": at})
    return out


PERIODS = (
    queries.Period(),
    queries.Period(T0 + timedelta(days=10), T0 + timedelta(days=25)),
)


async def _reset(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        tables = await conn.fetch(
            "select tablename from pg_tables where schemaname = 'attribution'"
        )
        names = ", ".join(f"attribution.{r['tablename']}" for r in tables)
        await conn.execute(f"truncate {names} restart identity")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=worlds(), data=st.data())
async def test_permutations_and_duplicates_give_identical_answers(
    pool: asyncpg.Pool, events: list[dict[str, Any]], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(events))
    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=10)) if events else []
    positions = [data.draw(st.integers(0, len(shuffled))) for _ in duplicates]
    for position, duplicate in zip(positions, duplicates, strict=True):
        shuffled.insert(position, duplicate)
    batch = data.draw(st.integers(1, 40))

    await _reset(pool)
    await feed(pool, envelopes(events), batch=10_000)
    expected = await answers(pool, APPLICANTS, EMPLOYEES[:2], PERIODS)
    async with pool.acquire() as conn:
        deepest = await conn.fetchval("select max(ring) from attribution.placements")
        credited = await conn.fetchval(
            "select count(distinct applicant_id) from attribution.credits"
        )
    event(f"deepest ring: {deepest}")  # coverage, shown by --hypothesis-show-statistics
    event(f"credited applicants: {credited}")
    await _reset(pool)
    await feed(pool, envelopes(shuffled), batch=batch)
    got = await answers(pool, APPLICANTS, EMPLOYEES[:2], PERIODS)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key].decode() == value.decode(), key
