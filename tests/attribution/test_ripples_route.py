"""The employee's own figures, `GET /v1/employees/{employee_id}/ripples` (TEAM.md "My ripples
figures", CONTRACT §11 v1.1), over a real database fed the hand-written scenario of
scenario.py (rings 1 to 3): the figures equal the ones worked out by hand from the contract
below, the period and the model follow the parameters, bad parameters are 422 problems naming
the parameter, an unknown employee is a 404, and the body never holds another person's id or
name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from ripples.demo import scenario as pilot
from ripples.demo import truth
from services.attribution.api import create_api
from tests.attribution import scenario
from tests.attribution.conftest import SETTINGS, envelopes, feed
from tests.conftest import AUTH
from tests.demo.test_screenshots import RUN, pilot_events

pytestmark = pytest.mark.integration

JUNE = {"from": "2026-05-01T00:00:00Z", "to": "2026-07-01T00:00:00Z"}
NAMES = {"amb1": "Anna", "amb2": "Bo", "c1": "Carl", "d1": "Dina", "g1": "Gry", "solo": "Sif",
         "quiet": "Ole", "watcher": "Vera"}  # fmt: skip


async def client(pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    async def get_pool() -> asyncpg.Pool:
        return pool

    async def ready() -> dict[str, bool]:
        return {"database": True, "partitions_assigned": True}

    transport = httpx.ASGITransport(app=create_api(get_pool, ready, SETTINGS))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://attribution", headers=AUTH
    ) as out:
        yield out


@pytest.fixture
async def api(pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    """The API over the hand-written scenario."""
    await feed(pool, envelopes(scenario.EVENTS))
    async for out in client(pool):
        yield out


@pytest.fixture
async def empty_api(pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    """The API over an empty database: parameters are checked before it is asked."""
    async for out in client(pool):
        yield out


def post(post_id: str, at: str, impressions: int, reactions: int = 0, comments: int = 0,
         reshares: int = 0) -> dict[str, Any]:  # fmt: skip
    return {"post_id": post_id, "published_at": at, "origin": "own", "impressions": impressions,
            "reactions": reactions, "comments": comments, "reshares": reshares}  # fmt: skip


def figures(
    employee_id: str,
    posts: list[dict[str, Any]],
    by_ring: dict[str, int],
    applicants: tuple[int, float],
    hires: tuple[int, float],
    emv: float,
    period: dict[str, str] = JUNE,
) -> dict[str, Any]:
    return {
        "employee_id": employee_id,
        **period,
        "posts": posts,
        "inspired": {"total": sum(by_ring.values()), "by_ring": by_ring},
        "applicants": {"attributed": applicants[0], "credit": applicants[1]},
        "hires": {"attributed": hires[0], "credit": hires[1]},
        "reach": {"impressions": sum(p["impressions"] for p in posts), "emv": emv},
    }


# Worked out by hand from CONTRACT §2-§4 on scenario.py, linear credit, all of June:
# - amb1 (ring 1): A1 2000 impressions (the latest snapshot), 20 clicks -> EMV 2000/1000 x 220
#   + 20 x 40 = 1240. Inspired c1 (distance 1); c1 inspired d1 and g1 (distance 2). Linear
#   credit: ap1 a third (click on L-amb1), ap4 a third (click on L-amb1); ap1 hired: a third.
# - c1 (ring 2): C1 600, 6 clicks -> 132 + 240. Inspired d1 and g1 directly. ap1 (its link
#   code) and ap4 (a click) a third each; ap1's hire a third.
# - amb2 (ring 1): A2 1000, 10 clicks -> 220 + 400. Inspired g1 (together with c1); ap4 (the
#   referral) a third; no hire.
# - d1 (ring 3): D1 300, 3 clicks -> 66 + 120; inspired no one; ap2 (its referral) fully.
# - quiet: never shared, never credited: an employee known to the service with zeros.
BY_HAND = {
    "amb1": figures(
        "amb1",
        [post("A1", "2026-06-01T10:00:00Z", 2000, reactions=30, comments=5, reshares=2)],
        {"1": 1, "2": 2},
        (2, scenario.TWO_THIRDS),
        (1, scenario.THIRD),
        1240.0,
    ),
    "c1": figures(
        "c1",
        [post("C1", "2026-06-04T12:00:00Z", 600, reactions=8)],
        {"1": 2},
        (2, scenario.TWO_THIRDS),
        (1, scenario.THIRD),
        372.0,
    ),
    "amb2": figures(
        "amb2",
        [post("A2", "2026-06-03T09:00:00Z", 1000, reactions=12, comments=3)],
        {"1": 1},
        (1, scenario.THIRD),
        (0, 0.0),
        620.0,
    ),
    "d1": figures(
        "d1", [post("D1", "2026-06-06T08:00:00Z", 300)], {"1": 0}, (1, 1.0), (0, 0.0), 186.0
    ),
    "quiet": figures("quiet", [], {"1": 0}, (0, 0.0), (0, 0.0), 0.0),
}


@pytest.mark.parametrize("employee_id", sorted(BY_HAND))
async def test_figures_equal_the_hand_worked_scenario(
    api: httpx.AsyncClient, employee_id: str
) -> None:
    response = await api.get(f"/v1/employees/{employee_id}/ripples", params=JUNE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == BY_HAND[employee_id]
    explicit = await api.get(
        f"/v1/employees/{employee_id}/ripples", params=JUNE | {"model": "linear"}
    )
    assert explicit.content == response.content, "credit is linear unless model= says otherwise"


async def test_the_period_and_the_model_follow_the_parameters(api: httpx.AsyncClient) -> None:
    # [06-05, 06-10): A1 (06-01) is outside; c1's first share (06-04) too, d1's (06-06) and
    # g1's (06-08) inside, so amb1's ripple reached 0 colleagues at distance 1 and 2 at 2.
    # ap1 (06-06) is the period's only application: its first touch is the company link's
    # click, its last touch c1's link code.
    period = {"from": scenario.PERIOD[0], "to": scenario.PERIOD[1]}
    first = await api.get("/v1/employees/amb1/ripples", params=period | {"model": "first_touch"})
    assert first.json() == figures("amb1", [], {"1": 0, "2": 2}, (0, 0.0), (0, 0.0), 0.0, period)
    last = await api.get("/v1/employees/c1/ripples", params=period | {"model": "last_touch"})
    assert last.json() == figures("c1", [], {"1": 2}, (1, 1.0), (0, 0.0), 0.0, period)


async def test_the_default_period_is_the_last_90_days(api: httpx.AsyncClient) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    body = (await api.get("/v1/employees/amb1/ripples")).json()
    after = datetime.now(UTC)
    end = datetime.fromisoformat(body["to"])
    assert before <= end <= after
    assert datetime.fromisoformat(body["from"]) == end - timedelta(days=90)
    # the scenario is June 2026, before the last 90 days (the session runs in December)
    assert body["posts"] == []
    assert body["inspired"] == {"total": 0, "by_ring": {"1": 0}}
    only_to = (await api.get("/v1/employees/amb1/ripples", params={"to": JUNE["to"]})).json()
    assert (only_to["from"], only_to["to"]) == ("2026-04-02T00:00:00Z", JUNE["to"])
    assert only_to["posts"] == BY_HAND["amb1"]["posts"]


async def test_no_other_persons_id_or_name_in_the_body(api: httpx.AsyncClient) -> None:
    for employee_id in BY_HAND:
        body = (await api.get(f"/v1/employees/{employee_id}/ripples", params=JUNE)).content
        others = {e for e in NAMES if e != employee_id}
        strings = set(_strings(orjson.loads(body)))
        assert not strings & others, f"{employee_id}: another person's id in {body!r}"
        for other in others:
            assert NAMES[other] not in body.decode(), f"{employee_id}: {NAMES[other]}'s name"
            assert f'"{other}"' not in body.decode()
        assert NAMES[employee_id] not in body.decode(), "not even the employee's own name"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


async def test_unknown_employee_is_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/employees/nobody/ripples")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


async def test_a_key_is_needed(empty_api: httpx.AsyncClient) -> None:
    response = await empty_api.get("/v1/employees/amb1/ripples", headers={"Authorization": ""})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert "posts" not in response.json()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("model=nope", "model"),
        ("model=", "model"),
        ("from=yesterday", "from"),
        ("from=", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("from=2026-06-01T00:00:00", "from"),  # no offset
        ("from=2026-06-02T00:00:00Z&to=2026-06-01T00:00:00Z", "to"),
        ("from=2026-06-01T00:00:00Z&to=2026-06-01T00:00:00Z", "to"),
        ("from=9999-01-01T00:00:00Z", "from"),  # after now, `to` absent
        ("to=0001-01-02T00:00:00Z", "to"),  # no day 90 days before it
        ("from=0001-01-01T00:00:00%2B01:00", "from"),  # no UTC equivalent
    ],
)
async def test_bad_parameters_are_422_problems(
    empty_api: httpx.AsyncClient, query: str, field: str
) -> None:
    response = await empty_api.get(f"/v1/employees/amb1/ripples?{query}")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["errors"] == [{"field": field, "detail": body["errors"][0]["detail"]}]
    assert field in body["detail"]


@pytest.mark.parametrize("employee_id", ["a%01b", "x" * 257])
async def test_bad_employee_id_is_a_422_problem(
    empty_api: httpx.AsyncClient, employee_id: str
) -> None:
    response = await empty_api.get(f"/v1/employees/{employee_id}/ripples")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "employee_id"


async def test_erased_applicants_still_count(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    """An erased applicant's credit stays as an anonymous number (CONTRACT §1): the figures
    are read from the erased conversions then (ap1 and ap4 hold all of amb1's credit)."""
    erase = [
        scenario.ev("applicant.erased", "2026-07-01T00:00:00Z", {"applicant_id": a}, f"erase-{a}")
        for a in ("ap1", "ap4")
    ]
    await feed(pool, envelopes(erase))
    assert (await api.get("/v1/conversions/ap1")).status_code == 404
    for employee_id in ("amb1", "c1", "amb2"):
        response = await api.get(f"/v1/employees/{employee_id}/ripples", params=JUNE)
        assert response.json() == BY_HAND[employee_id]


# --- against the independent ground truth of the demo pilot ----------------------------------


def oracle(
    facts: truth.Facts, employee_id: str, start: datetime, end: datetime, model: str
) -> dict[str, Any]:
    """The figures as ripples/demo/truth.py reads the contract (its rings and credit, which
    share no code with the service), with the route's definitions on top."""
    r = truth.rings(facts)

    def within(t: datetime | None) -> bool:
        return t is not None and start <= t < end

    posts = sorted(
        (p for p in facts.posts.values() if p.author == employee_id and within(p.published_at)),
        key=lambda p: (p.published_at, p.id),
    )
    children: dict[str, list[str]] = {}
    for edge in r.edges:
        children.setdefault(edge.inspirer, []).append(edge.colleague)
    depth: dict[str, int] = {}
    frontier, k = [employee_id], 0
    while frontier:
        k += 1
        frontier = [c for u in frontier for c in children.get(u, []) if c not in depth]
        depth.update({c: k for c in frontier})
    reached: dict[int, int] = {}
    for colleague, d in depth.items():
        if within(r.first_share.get(colleague)):
            reached[d] = reached.get(d, 0) + 1
    applied = [
        w
        for a in facts.applications.values()
        if within(a.applied_at) and (w := truth.credit(facts, a, model).get(employee_id, 0)) > 0
    ]
    hired = [
        w
        for h in facts.hires.values()
        if within(h.hired_at)
        and (a := facts.applications.get(h.applicant)) is not None
        and (w := truth.credit(facts, a, model).get(employee_id, 0)) > 0
    ]
    impressions = sum(p.impressions for p in posts)
    return {
        "employee_id": employee_id,
        "from": start.isoformat().replace("+00:00", "Z"),
        "to": end.isoformat().replace("+00:00", "Z"),
        "posts": [
            {
                "post_id": p.id,
                "published_at": p.published_at.isoformat().replace("+00:00", "Z"),
                "origin": p.origin,
                "impressions": p.impressions,
                "reactions": p.reactions,
                "comments": p.comments,
                "reshares": p.reshares,
            }
            for p in posts
        ],
        "inspired": {
            "total": sum(reached.values()),
            "by_ring": {str(d): reached.get(d, 0) for d in range(1, max([1, *reached]) + 1)},
        },
        "applicants": {"attributed": len(applied), "credit": sum(applied)},
        "hires": {"attributed": len(hired), "credit": sum(hired)},
        "reach": {
            "impressions": impressions,
            "emv": round(impressions / 1000 * 220 + sum(p.clicks for p in posts) * 40, 2),
        },
    }


async def test_figures_equal_the_demo_pilots_ground_truth(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    scenario_ = pilot.generate(7, now=RUN)
    await feed(pool, envelopes(sorted(pilot_events(scenario_), key=lambda e: e["time"])))
    facts = scenario_.facts(
        {i: RUN - timedelta(minutes=30) for i in range(len(scenario_.clicks))},
        {a.candidate: RUN for a in scenario_.applications if a.applied_at is None},
    )
    halfway = scenario_.start + (scenario_.end - scenario_.start) / 2
    periods = [(scenario_.start - timedelta(days=1), RUN + timedelta(hours=1)), (halfway, RUN)]
    deepest = credited = 0
    for start, end in periods:
        for model in ("linear", "time_decay"):
            for person in scenario_.people:
                response = await api.get(
                    f"/v1/employees/{person.id}/ripples",
                    params={"from": start.isoformat(), "to": end.isoformat(), "model": model},
                )
                got, want = response.json(), oracle(facts, person.id, start, end, model)
                assert truth.differences(got, want) == [], person.id
                deepest = max(deepest, len(got["inspired"]["by_ring"]))
                credited += got["applicants"]["attributed"]
    assert deepest >= 3, "the pilot's ripples reach colleagues of colleagues of colleagues"
    assert credited > 0
