"""Incremental derivation equals the whole-network derivation (issue 18, part 1).

The same events, in the same batches, go into two databases: one whose batches derive the
rings incrementally (the worker's way, ``store.apply_batch``'s default), one whose batches
re-derive every employee (``derivation="whole_network"``, the reference). After every batch
every derived table — first shares, placements, inspirers, touches, credits, conversions,
recognitions and the outbox's events (their clock fields left out) — must be equal row for
row, and so must what each batch reports. At the end the whole-network derivation run again
over the incremental database, and the conversions of every applicant derived from scratch,
must change nothing.

Two sources of events: random networks in random orders and batch splits (hypothesis,
derandomised, so CI runs the same examples every time), and a replay of the bench workload
(``ripples.bench.workload``)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ripples.bench.workload import events as bench_events
from services.attribution import derive, rules, store
from shared.events import Envelope
from tests.attribution.conftest import SETTINGS, envelopes
from tests.attribution.scenario import engage as scenario_engage
from tests.attribution.scenario import person as scenario_person
from tests.attribution.scenario import post as scenario_post

pytestmark = pytest.mark.integration

T0 = datetime(2026, 6, 1, tzinfo=UTC)
EMPLOYEES = [f"e{i}" for i in range(8)]
APPLICANTS = [f"a{i}" for i in range(4)]
LINKS = ["k0", "k1", "kc"]

# every derived table (and first_shares, which the derivation keeps), in a stable order
DERIVED = {
    "first_shares": "employee_id",
    "placements": "employee_id",
    "inspirers": "employee_id, inspirer_id",
    "touches": "applicant_id, position",
    "credits": "applicant_id, model, employee_id nulls first, weight",
    "conversions": "applicant_id",
    "recognitions": "recognition_id",
    "author_totals": "employee_id",
}


def _t(half_days: int) -> str:
    return (T0 + timedelta(hours=12 * half_days)).isoformat().replace("+00:00", "Z")


# half days over 30 days: ties happen, and exposures fall inside and outside the 14-day window
moments = st.integers(0, 60)


@st.composite
def networks(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A random company: ambassadors and not, posts (some re-published under another author,
    at another time, or as the company's), reshares and engagements that chain colleagues
    into rings, links, clicks, applications and hires credited to them."""
    counter = iter(range(100_000))
    out: list[dict[str, Any]] = []

    def ev(kind: str, time: int, data: dict[str, Any]) -> None:
        out.append(
            {
                "specversion": "1.0",
                "id": f"g{next(counter)}",
                "source": draw(st.sampled_from(["urn:a", "urn:b"])),
                "type": f"ripples.{kind}.v1",
                "time": _t(time),
                "data": data,
            }
        )

    for employee in EMPLOYEES:
        for _ in range(draw(st.integers(0, 2)) + (draw(st.integers(0, 4)) > 0)):
            ambassador = (draw(st.integers(0, 4)) == 0) != (employee == "e0")
            ev(
                "employee.upserted",
                draw(moments),
                {"employee_id": employee, "display_name": employee, "ambassador": ambassador},
            )
        if draw(st.integers(0, 7)) == 0:
            ev("employee.removed", draw(moments), {"employee_id": employee})
    # each employee starts sharing at their own moment; colleagues who start later see the
    # posts of those who started earlier inside their window, so rings chain up
    order = ["e0", *draw(st.permutations(EMPLOYEES[1:]))]
    start = {e: 6 * rank + draw(st.integers(0, 5)) for rank, e in enumerate(order)}
    posts: list[tuple[str, int]] = []
    for n in range(draw(st.integers(1, 14))):
        post_id = f"p{n}"
        reshare = draw(st.sampled_from([None, *(p for p, _ in posts)])) if posts else None
        published = 0
        for _version in range(1 + (draw(st.integers(0, 3)) == 0)):
            # a second version re-publishes the post: another author, time or kind
            author = draw(st.sampled_from([None, *EMPLOYEES, *EMPLOYEES]))
            published = draw(moments) if author is None else start[author] + draw(st.integers(0, 6))
            data: dict[str, Any] = {
                "post_id": post_id,
                "author_kind": "company" if author is None else "employee",
                "published_at": _t(published),
            }
            if author is not None:
                data["employee_id"] = author
            if reshare is not None and draw(st.integers(0, 2)) > 0:
                data["reshare_of"] = reshare
            ev("post.published", draw(moments), data)
        posts.append((post_id, published))
        # metric snapshots, some before the post, some later and lower (a later reading
        # replaces an earlier one): totals rise and fall across the reach milestones
        for _snapshot in range(draw(st.integers(0, 3))):
            ev(
                "post.metrics",
                draw(moments),
                {"post_id": post_id, "observed_at": _t(draw(moments)),
                 "impressions": draw(st.sampled_from([0, 400, 999, 1000, 1500, 6000])),
                 "clicks": draw(st.integers(0, 9))},
            )  # fmt: skip
    by_author: dict[str, list[tuple[str, int]]] = {}
    for n, rank in enumerate(range(len(order)), len(posts)):
        # most employees share once they start; most engage first with a post of one of the
        # two colleagues who started just before them: chains of rings
        employee = order[rank]
        if draw(st.integers(0, 3)):
            published = start[employee] + draw(st.integers(0, 2))
            ev("post.published", draw(moments), {"post_id": f"p{n}", "author_kind": "employee",
               "employee_id": employee, "published_at": _t(published)})  # fmt: skip
            by_author.setdefault(employee, []).append((f"p{n}", published))
        earlier = [p for e in order[max(0, rank - 2) : rank] for p in by_author.get(e, [])]
        if earlier and draw(st.integers(0, 3)):
            target, published = draw(st.sampled_from(earlier))
            at = min(start[employee], published + 1 + draw(st.integers(0, 3)))
            ev("post.engagement", draw(moments), {"post_id": target, "at": _t(at),
               "action": "comment", "actor_employee_id": employee})  # fmt: skip
    for _ in range(draw(st.integers(0, 30))):
        actor = draw(st.sampled_from(EMPLOYEES))
        # mostly inside the 14 days (28 half days) before the actor starts, sometimes not,
        # and mostly on a post published shortly before it
        back = draw(st.integers(0, 6)) if draw(st.integers(0, 3)) else draw(st.integers(0, 32))
        at = max(0, start[actor] - back)
        before = [(p, t) for p, t in posts if at - 16 <= t < at]
        target = draw(st.sampled_from(before if before and draw(st.booleans()) else posts))
        ev(
            "post.engagement",
            draw(moments),
            {"post_id": target[0], "at": _t(at), "action": "reaction", "actor_employee_id": actor},
        )  # fmt: skip
    for code in LINKS:
        if draw(st.integers(0, 3)) > 0:
            data = {"link_code": code, "target_url": "https://x.example/j"}
            if code != "kc":
                data["employee_id"] = draw(st.sampled_from(EMPLOYEES))
            ev("link.created", 0, data)
    for _ in range(draw(st.integers(0, 6))):
        at = draw(moments)
        ev(
            "link.clicked",
            at,
            {"link_code": draw(st.sampled_from(LINKS)), "at": _t(at),
             "visitor_id": f"v{draw(st.integers(0, 2))}"},
        )  # fmt: skip
    for applicant in APPLICANTS:
        if draw(st.integers(0, 3)) > 0:
            at = draw(moments)
            data = {"applicant_id": applicant, "job_id": "J", "applied_at": _t(at)}
            if draw(st.booleans()):
                data["visitor_id"] = f"v{draw(st.integers(0, 2))}"
            if draw(st.booleans()):
                data["link_code"] = draw(st.sampled_from(LINKS))
            if draw(st.booleans()):
                data["referrer_employee_id"] = draw(st.sampled_from(EMPLOYEES))
            ev("applicant.applied", at, data)
        if draw(st.integers(0, 2)) == 0:
            at = draw(moments)
            ev("applicant.hired", at, {"applicant_id": applicant, "job_id": "J",
                                       "hired_at": _t(at)})  # fmt: skip
    return out


async def _reset(*pools: asyncpg.Pool) -> None:
    for pool in pools:
        async with pool.acquire() as conn:
            tables = await conn.fetch(
                "select tablename from pg_tables where schemaname = 'attribution'"
            )
            names = ", ".join(f"attribution.{r['tablename']}" for r in tables)
            await conn.execute(f"truncate {names} restart identity")


def _outbox_row(topic: str, body: bytes) -> tuple[str, Any]:
    """An output event without the fields that say when it was made."""
    value = orjson.loads(body)
    value.pop("time", None)
    value["data"].pop("due_at", None)
    return topic, value


async def _tables(pool: asyncpg.Pool) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        for table, order in DERIVED.items():
            columns = "recognition_id, kind, employee_id" if table == "recognitions" else "*"
            rows = await conn.fetch(
                f"select {columns} from attribution.{table} order by {order}"  # noqa: S608
            )
            out[table] = [tuple(r) for r in rows]
        out["outbox"] = [
            _outbox_row(r["topic"], r["event"])
            for r in await conn.fetch("select topic, event from attribution.outbox order by seq")
        ]
    return out


def _report(result: store.BatchResult) -> tuple[Any, ...]:
    return (result.outcomes, result.credits_assigned, result.recognitions, result.outbox)


async def feed_with(
    pool: asyncpg.Pool, items: Sequence[Envelope], settings: Any, batch: int = 1000
) -> None:
    """Apply events in batches with these settings, one transaction each."""
    for start in range(0, len(items), batch):
        async with pool.acquire() as conn, conn.transaction():
            await store.apply_batch(conn, items[start : start + batch], settings)


async def _lockstep(
    incremental: asyncpg.Pool,
    reference: asyncpg.Pool,
    batches: Sequence[Sequence[Envelope]],
    compare_every: int = 1,
) -> list[store.BatchResult]:
    """Each batch into both databases, one transaction each; the derived tables compared
    after every ``compare_every``-th batch and after the last."""
    results = []
    for n, batch in enumerate(batches, 1):
        async with incremental.acquire() as conn, conn.transaction():
            got = await store.apply_batch(conn, batch, SETTINGS)
        async with reference.acquire() as conn, conn.transaction():
            expected = await store.apply_batch(conn, batch, SETTINGS, "whole_network")
        assert _report(got) == _report(expected), f"batch {n}"
        if n % compare_every == 0 or n == len(batches):
            got_tables, expected_tables = await _tables(incremental), await _tables(reference)
            for table, rows in expected_tables.items():
                assert got_tables[table] == rows, f"{table} after batch {n} of {len(batches)}"
        results.append(got)
    return results


async def _assert_whole_derivation_changes_nothing(pool: asyncpg.Pool) -> None:
    """Over the incremental database's final facts, the whole-network ring derivation and
    every applicant's conversion derived from scratch find nothing to change, and the running
    totals per author equal their sums over every post."""
    before = await _tables(pool)
    async with pool.acquire() as conn, conn.transaction():
        rings = await derive.whole_network_rings(conn, SETTINGS)
        assert rings.changed == set()
        assert rings.new_edges == []
        applicants = [
            r["applicant_id"]
            for r in await conn.fetch(
                "select applicant_id from attribution.applications union "
                "select applicant_id from attribution.hires"
            )
        ]
        outbox: list[tuple[str, bytes]] = []
        changed = await derive.derive_conversions(
            conn, set(applicants), SETTINGS, store.BatchResult(), outbox
        )
        assert changed == []
        assert outbox == []
        summed = await conn.fetch(
            "select p.employee_id, count(*), coalesce(sum(m.impressions), 0)::bigint, "
            "min(p.published_at), max(coalesce(m.impressions_at, p.published_at)) "
            "from attribution.posts p "
            "left join attribution.post_metrics m on m.post_id = p.post_id "
            "where p.author_kind = 'employee' and p.employee_id is not null "
            "group by p.employee_id order by 1"
        )
        assert [tuple(r) for r in summed] == before["author_totals"]
    assert await _tables(pool) == before


@settings(
    max_examples=35,
    derandomize=True,  # the same examples in every run: CI is reproducible
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=networks(), data=st.data())
async def test_incremental_equals_whole_network_on_random_networks(
    pool: asyncpg.Pool, reference: asyncpg.Pool, world: list[dict[str, Any]], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(world))
    if data.draw(st.booleans()):
        # HR records after the posts (a back-fill): a late ambassador moves whole chains
        shuffled.sort(key=lambda e: e["type"] == "ripples.employee.upserted.v1")
    for duplicate in data.draw(st.lists(st.sampled_from(world), max_size=6)):
        shuffled.insert(data.draw(st.integers(0, len(shuffled))), duplicate)
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(shuffled) - 1)), max_size=16)))
    bounds = [0, *cuts, len(shuffled)]
    items = envelopes(shuffled)
    batches = [items[a:b] for a, b in itertools.pairwise(bounds) if b > a]

    await _reset(pool, reference)
    results = await _lockstep(pool, reference, batches)
    await _assert_whole_derivation_changes_nothing(pool)
    async with pool.acquire() as conn:
        deepest = await conn.fetchval("select max(ring) from attribution.placements")
    event(f"deepest ring: {deepest}")  # coverage, shown by --hypothesis-show-statistics
    event(f"walk steps (max per batch): {max(r.ring_steps for r in results)}")


async def test_bench_workload_replay_equals_whole_network(
    pool: asyncpg.Pool, reference: asyncpg.Pool
) -> None:
    """The bench workload (120 employees, 12,000 events) in batches of 200-2,000 events in
    the order the generator makes them (times at random over 60 days, so first shares move
    and exposures arrive late), as the worker would take them."""
    items = envelopes(bench_events(12_000, seed=18, prefix="r"))
    rng = random.Random(18)  # a reproducible split
    batches: list[list[Envelope]] = []
    while items:
        size = rng.randrange(200, 2001)
        batches.append(items[:size])
        items = items[size:]
    await _lockstep(pool, reference, batches, compare_every=3)
    await _assert_whole_derivation_changes_nothing(pool)
    async with pool.acquire() as conn:
        deepest = await conn.fetchval("select max(ring) from attribution.placements")
        edges = await conn.fetchval("select count(*) from attribution.inspirers")
    # rings beyond the ambassadors (this workload's colleague network is sparse: its
    # engagements fall at random over 60 days, rarely in the window before a first share)
    assert deepest >= 2
    assert edges > 0


async def test_a_late_ambassador_moves_a_chain_by_the_walk(
    pool: asyncpg.Pool, reference: asyncpg.Pool
) -> None:
    """e1 engaged with e0's post, e2 with e1's, e3 with e2's, each before sharing; e0's
    ambassador record comes last, alone: only the walk can reach e1-e3 (the batch names
    none of them), and it takes one step per ring."""
    world = [scenario_person(e, e) for e in ("e1", "e2", "e3")]
    for rank, employee in enumerate(("e0", "e1", "e2", "e3")):
        world.append(scenario_post(f"q{rank}", employee, _t(4 * rank + 1)))
        if rank:
            world.append(scenario_engage(f"q{rank - 1}", employee, _t(4 * rank)))
    late = envelopes([scenario_person("e0", "e0", ambassador=True)])
    results = await _lockstep(pool, reference, [envelopes(world), late])
    assert results[1].ring_steps == 4
    assert results[1].rings_derived == 4
    async with pool.acquire() as conn:
        rings = await conn.fetch("select employee_id, ring from attribution.placements")
    assert {r["employee_id"]: r["ring"] for r in rings} == {"e0": 1, "e1": 2, "e2": 3, "e3": 4}


touch_lists = st.lists(
    st.builds(
        rules.Touch,
        st.integers(0, 60).map(lambda h: T0 + timedelta(hours=12 * h)),
        st.sampled_from(["click", "link_code", "referral"]),
        st.sampled_from([None, *EMPLOYEES[:3]]),
        st.sampled_from([None, *LINKS]),
    ),
    max_size=4,
)


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(found=touch_lists, half_life_days=st.sampled_from([0.5, 2.0, 7.0]))
def test_the_credit_shortcut_equals_the_rules(
    found: list[rules.Touch], half_life_days: float
) -> None:
    """derive.all_credit (no passes for no touch or one) gives exactly rules.all_credit."""
    found = sorted(found, key=rules.Touch.sort_key)
    applied_at, half_life = T0 + timedelta(days=31), timedelta(days=half_life_days)
    assert derive.all_credit(found, applied_at, half_life) == rules.all_credit(
        found, applied_at, half_life
    )
