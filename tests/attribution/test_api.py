"""The results API over a real database: parameters validated as problem+json, 404s,
OpenAPI committed, erasure keeping totals, employee removal deleting personal fields."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from services.attribution.api import create_api
from services.attribution.openapi import openapi
from tests.attribution import scenario
from tests.attribution.conftest import SETTINGS, envelopes, feed
from tests.conftest import AUTH

pytestmark = pytest.mark.integration

COMMITTED = Path(__file__).parents[2] / "services" / "attribution" / "openapi.json"


@pytest.fixture
async def api(pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    async def get_pool() -> asyncpg.Pool:
        return pool

    async def ready() -> dict[str, bool]:
        return {"database": True, "partitions_assigned": True}

    app = create_api(get_pool, ready, SETTINGS)
    await feed(pool, envelopes(scenario.EVENTS))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://attribution", headers=AUTH
    ) as client:
        yield client


def test_committed_openapi_is_current() -> None:
    assert orjson.loads(COMMITTED.read_bytes()) == openapi(), "regenerate with: make openapi"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("model=nope", "model"),
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("from=2026-06-01T00:00:00", "from"),  # no offset
        ("from=2026-06-02T00:00:00Z&to=2026-06-01T00:00:00Z", "to"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/summary", "/v1/sharers", "/v1/sharers/c1"])
async def test_bad_parameters_are_422_problems(
    api: httpx.AsyncClient, path: str, query: str, field: str
) -> None:
    response = await api.get(f"{path}?{query}")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["errors"] == [{"field": field, "detail": body["errors"][0]["detail"]}]
    assert field in body["detail"]


async def test_answers_and_not_found(api: httpx.AsyncClient) -> None:
    default = await api.get("/v1/summary")
    assert default.json()["model"] == "last_touch"
    linear = await api.get("/v1/summary", params={"model": "linear"})
    assert linear.json() == scenario.SUMMARY_ALL_LINEAR
    one = await api.get("/v1/sharers/d1", params={"model": "linear"})
    assert one.json() == scenario.SHARERS_ALL_LINEAR[0]
    # known (an upserted employee) but no post or credit: an entry of zeros
    quiet = (await api.get("/v1/sharers/quiet")).json()
    assert (quiet["posts"], quiet["applicant_credit"], quiet["ring"]) == (0, 0.0, None)
    for path in ("/v1/sharers/nobody", "/v1/conversions/nobody"):
        response = await api.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
    assert (await api.get("/readyz")).json()["status"] == "ready"
    served = (await api.get("/openapi.json")).json()
    assert set(served["paths"]) >= {
        "/v1/summary",
        "/v1/sharers",
        "/v1/sharers/{employee_id}",
        "/v1/conversions/{applicant_id}",
        "/v1/ripples",
    }


def _erase(applicant: str, event_id: str) -> list[dict[str, Any]]:
    return [scenario.ev("applicant.erased", "2026-07-01T00:00:00Z", {"applicant_id": applicant},
                        event_id)]  # fmt: skip


async def test_applicant_erasure_keeps_the_totals(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    before = {m: (await api.get("/v1/summary", params={"model": m})).content for m in
              ("linear", "time_decay")}  # fmt: skip
    sharers_before = (await api.get("/v1/sharers", params={"model": "linear"})).content
    await feed(pool, envelopes(_erase("ap1", "erase-1") + _erase("ap4", "erase-2")))
    for model, body in before.items():
        assert (await api.get("/v1/summary", params={"model": model})).content == body
    assert (await api.get("/v1/sharers", params={"model": "linear"})).content == sharers_before
    assert (await api.get("/v1/conversions/ap1")).status_code == 404
    async with pool.acquire() as conn:
        for table in ("applications", "hires", "touches", "credits", "conversions"):
            rows = await conn.fetch(
                f"select 1 from attribution.{table} where applicant_id = any($1)",  # noqa: S608
                ["ap1", "ap4"],
            )
            assert rows == [], table
        visitors = await conn.fetch(
            "select 1 from attribution.clicks where visitor_id = any($1)", ["v1", "v4"]
        )
        assert visitors == []
    # a replay of the erased applicant's events changes nothing
    replay = [e for e in scenario.EVENTS if e["data"].get("applicant_id") == "ap1"]
    await feed(pool, envelopes([{**e, "id": e["id"] + "-replay"} for e in replay]))
    assert (await api.get("/v1/conversions/ap1")).status_code == 404
    assert (await api.get("/v1/summary", params={"model": "linear"})).content == before["linear"]


async def test_employee_removal_deletes_personal_fields(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    removed = scenario.ev("employee.removed", "2026-07-01T00:00:00Z", {"employee_id": "c1"})
    older = scenario.person("c1", "Carl again")  # an upsert older than the removal, late
    await feed(pool, envelopes([removed, {**older, "id": "late-upsert"}]))
    carl = (await api.get("/v1/sharers/c1", params={"model": "linear"})).json()
    assert carl == scenario.SHARERS_ALL_LINEAR[2] | {"display_name": None}
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "select display_name, notify, linkedin_member_urn from attribution.employees "
            "where employee_id = 'c1'"
        )
    assert dict(row) == {"display_name": None, "notify": None, "linkedin_member_urn": None}
    # a newer record (re-hired) brings the personal fields back
    rehired = scenario.ev(
        "employee.upserted",
        "2026-08-01T00:00:00Z",
        {"employee_id": "c1", "display_name": "Carl", "notify": {"channel": "none"}},
    )
    await feed(pool, envelopes([rehired]))
    assert (await api.get("/v1/sharers/c1")).json()["display_name"] == "Carl"
