"""The results dashboards' SQL panels run against a real PostgreSQL holding the demo pilot
(ripples/demo/scenario.py fed through the worker's own code), as Grafana's PostgreSQL role
(`ripples_grafana`, granted by the migrations), and give what `/v1/summary` and `/v1/sharers`
give for the same period and model — there is no Grafana server here, so the panels are
proved by their queries. Grafana's macros are expanded as its PostgreSQL data source documents
them (https://grafana.com/docs/grafana/latest/datasources/postgres/query-editor/#macros:
``$__timeFilter(c)`` → ``c BETWEEN '<from>' AND '<to>'``), for a time range of whole UTC days
(the picker's "to" one second before midnight)."""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from ripples.demo import scenario as pilot
from services.attribution import queries, weekly
from tests.attribution.conftest import SETTINGS, envelopes, feed, pool  # noqa: F401
from tests.conftest import Running
from tests.demo.test_screenshots import RUN, pilot_events
from tests.deploy.queries import dashboards, panels

pytestmark = pytest.mark.integration

DAY = timedelta(days=1)
MODELS = ("linear", "first_touch")


def as_grafana(sql: str, start: datetime, end: datetime, model: str = "last_touch") -> str:
    """A panel's SQL as Grafana runs it for the range [start, end) and the given variables."""
    first, last = start.isoformat(), (end - timedelta(seconds=1)).isoformat()
    sql = re.sub(r"\$__timeFilter\((\w+)\)", rf"\1 BETWEEN '{first}' AND '{last}'", sql)
    sql = sql.replace("$model", model).replace("$cpm", "220").replace("$cpc", "40")
    assert "$" not in sql, sql
    return sql


def panel_sql() -> dict[str, dict[str, str]]:
    """{dashboard file: {panel title / refId: SQL}} of the two results dashboards."""
    out: dict[str, dict[str, str]] = {}
    for name, dashboard in dashboards().items():
        if name.startswith("ripples-advocacy-results"):
            out[name] = {
                f"{p['title']} / {t['refId']}": t["rawSql"]
                for p in panels(dashboard)
                for t in p.get("targets", [])
            }
    return out


def one(name: str, needle: str) -> str:
    (sql,) = [s for s in panel_sql()[name].values() if needle in s]
    return sql


EN = "ripples-advocacy-results.json"


@pytest.fixture
async def grafana_role(postgres: Running) -> str:
    """Grafana's role, created before the migrations run (the documented order) so that they
    grant it what it reads."""
    admin = await asyncpg.connect(postgres.address)
    try:
        if not await admin.fetchval("select 1 from pg_roles where rolname = 'ripples_grafana'"):
            await admin.execute("create role ripples_grafana login")
    finally:
        await admin.close()
    return "ripples_grafana"


@pytest.fixture
async def fed(grafana_role: str, pool: asyncpg.Pool, database: str) -> AsyncIterator[Any]:  # noqa: F811
    scenario = pilot.generate(7, now=RUN)
    await feed(pool, envelopes(sorted(pilot_events(scenario), key=lambda e: e["time"])))
    scheme, rest = database.split("://", 1)
    conn = await asyncpg.connect(f"{scheme}://{grafana_role}@{rest.split('@', 1)[1]}")
    await conn.execute("set timezone = 'UTC'")  # the dashboards' days are UTC
    try:
        yield scenario, conn
    finally:
        await conn.close()


def day_of(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def close(a: float | None, b: float | None, digits: int = 6) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(float(a), float(b), rel_tol=10**-digits, abs_tol=10**-digits)


async def test_panels_give_what_the_api_gives(fed: Any, pool: asyncpg.Pool) -> None:  # noqa: F811
    scenario, grafana = fed
    # the whole pilot, and its second half (so the range really filters)
    ranges = [
        (day_of(scenario.start), day_of(scenario.end) + DAY),
        (day_of(scenario.start + (scenario.end - scenario.start) / 2), day_of(scenario.end) + DAY),
    ]
    for start, end in ranges:
        period = queries.Period(start, end)
        async with pool.acquire() as conn:
            summary = await queries.summary(conn, period, "linear", SETTINGS)
        assert summary["ambassadors"]["posts"] > 0

        async def run(
            needle: str, model: str = "linear", start: datetime = start, end: datetime = end
        ) -> list[asyncpg.Record]:
            return list(await grafana.fetch(as_grafana(one(EN, needle), start, end, model)))

        (ratio,) = await run("as reach_ratio")
        assert close(ratio["reach_ratio"], summary["reach_ratio"])
        (emv,) = await run("as emv")
        assert close(emv["emv"], summary["emv"]["value"])
        groups = {r["group"]: r for r in await run('as "group"')}
        for group in ("company", "ambassadors", "spillover", "independent"):
            got = groups.get(group)
            want = summary[group]
            assert (got["posts"] if got else 0) == want["posts"], group
            assert (got["impressions"] if got else 0) == want["impressions"], group

        origin = {r["origin"]: r for r in await run("array_position")}
        for name in ("own", "suggested", "template"):
            want = summary["content_origin"][name]
            assert (origin[name]["posts"] if name in origin else 0) == want["posts"], name
            assert (origin[name]["impressions"] if name in origin else 0) == want["impressions"]
        (own,) = await run("as own_vs_prepared")
        assert close(own["own_vs_prepared"], summary["content_origin"]["own_vs_prepared"])
        assert summary["content_origin"]["own_vs_prepared"] is not None

        (drivers,) = await run("activity_spearman")
        assert drivers["employees"] == summary["drivers"]["employees"]
        for name in ("followers_spearman", "activity_spearman"):
            assert close(drivers[name], summary["drivers"][name], 3), name
        assert summary["drivers"]["followers_spearman"] is not None

        for model in MODELS:
            async with pool.acquire() as conn:
                by_model = await queries.summary(conn, period, model, SETTINGS)  # type: ignore[arg-type]
                sharers = await queries.sharers(conn, period, model)  # type: ignore[arg-type]
            credit = {r["ring"]: r["applicants"] for r in await run("'applied'", model)}
            want_credit = by_model["applicants"]["credit_by_ring"]
            for ring, value in want_credit.items():
                label = "company" if ring == "0" else ring
                assert close(credit.get(label, 0.0), value), (model, ring)
            hires = {r["ring"]: r["hires"] for r in await run("'hired'", model)}
            for ring, value in by_model["hires"]["credit_by_ring"].items():
                assert close(hires.get("company" if ring == "0" else ring, 0.0), value)

            families = await run("applicants_per_family_per_day", model)
            jobs = by_model["applicants"]["jobs"]
            assert [r["family"] for r in families] == [j["family"] or "—" for j in jobs]
            assert any(j["hard_to_recruit"] for j in jobs)
            for row, job in zip(families, jobs, strict=True):
                assert row["hard_to_recruit"] is job["hard_to_recruit"]
                assert (row["applicants"], row["attributed"]) == (
                    job["applicants"],
                    job["attributed"],
                )
                spill = sum(
                    v for k, v in job["credit"].items() if k not in {"0", "1", "independent"}
                )
                for column, value in (
                    ("company", job["credit"]["0"]),
                    ("ambassadors", job["credit"]["1"]),
                    ("spillover", spill),
                    ("independent", job["credit"]["independent"]),
                ):
                    assert close(row[column], value, 2), (job["family"], column)

            top = await run("sharer_figures_per_day", model)
            assert len(top) == min(20, len(sharers)) > 5
            for row, sharer in zip(top, sharers, strict=False):
                assert row["sharer"] == sharer["display_name"], model
                ring = sharer["ring"]
                assert row["ring"] == ("independent" if ring is None else str(ring))
                for column in ("posts", "impressions", "clicks"):
                    assert row[column] == sharer[column], (sharer["employee_id"], column)
                assert row["inspired"] == len(sharer["inspired"])
                assert close(row["applicant_credit"], sharer["applicant_credit"], 9)
                assert close(row["hire_credit"], sharer["hire_credit"], 9)


async def test_interval_bands_are_the_summary_intervals_per_week(
    fed: Any,
    pool: asyncpg.Pool,  # noqa: F811
) -> None:
    scenario, grafana = fed
    async with pool.acquire() as conn:
        written = await weekly.refresh(conn, SETTINGS, RUN)
    first = min(p.published_at for p in scenario.posts if p.author is not None)
    assert written == len(weekly.weeks(first, RUN, SETTINGS.evidence_weeks)) > 4
    start, end = day_of(scenario.start), day_of(RUN) + DAY
    bands = {}
    for statistic in weekly.STATISTICS:
        bands[statistic] = list(await grafana.fetch(
            as_grafana(one(EN, f"statistic = '{statistic}'"), start, end)))  # fmt: skip
    weeks = [r["time"] for r in bands["reach_ratio"]]
    assert weeks == sorted(weeks)
    assert len(weeks) > 4
    shown = 0
    async with pool.acquire() as conn:
        for k, week in enumerate(weeks):
            summary = await queries.summary(
                conn, queries.Period(week, week + weekly.WEEK), "last_touch", SETTINGS
            )
            u = summary["uncertainty"]
            for statistic, point, interval in (
                ("reach_ratio", summary["reach_ratio"], u["reach_ratio"]),
                ("lift", summary["ripples"]["lift"], u["lift"]),
                ("baseline_adjusted", summary["ripples"]["baseline_adjusted"],
                 u["baseline_adjusted"]),
                ("own_vs_prepared", summary["content_origin"]["own_vs_prepared"],
                 summary["content_origin"]["interval"]),
            ):  # fmt: skip
                row = bands[statistic][k]
                assert row["time"] == week
                assert (row["value"], row["low"], row["high"]) == (
                    point,
                    *(interval or (None, None)),
                ), (week, statistic)
                if interval is not None:
                    assert interval[0] <= point <= interval[1]
                    shown += 1
    assert shown > 4, "some weeks have bands to draw"
    async with pool.acquire() as conn:
        again = await weekly.refresh(conn, SETTINGS, RUN)
        rows = await conn.fetchval("select count(*) from attribution.weekly_evidence")
    assert again == written
    assert rows == written * len(weekly.STATISTICS), "a refresh replaces, never adds"


async def test_ripple_network_and_every_panel_run_as_grafana(fed: Any) -> None:
    scenario, grafana = fed
    names = {p.name for p in scenario.people}
    for dashboard, queries_ in panel_sql().items():
        nodes = edges = None
        for title, sql in queries_.items():
            rows = await grafana.fetch(as_grafana(sql, day_of(scenario.start), day_of(RUN) + DAY))
            if title.endswith("/ nodes"):
                nodes = rows
            if title.endswith("/ edges"):
                edges = rows
        assert nodes is not None
        assert edges is not None
        ids = {n["id"] for n in nodes}
        assert len(ids) == len(nodes)
        assert {n["title"] for n in nodes} <= names
        assert {n["subtitle"] for n in nodes} >= {"ring 1", "ring 2", "ring 3"}
        independent = "uafhængig" if dashboard.endswith("-da.json") else "independent"
        assert {n["subtitle"] for n in nodes} <= {f"ring {k}" for k in range(1, 9)} | {independent}
        assert edges
        for edge in edges:
            assert {edge["source"], edge["target"]} <= ids
            assert edge["secondarystat"] in {"reshare", "engagement"}
            assert 0 < edge["mainstat"] <= 1


async def test_grafana_reads_no_facts(fed: Any) -> None:
    """The role reads the dashboard views and the interval table, not the facts behind them."""
    _, grafana = fed
    for table in ("attribution.employees", "attribution.posts", "attribution.applications"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await grafana.fetch(f"select * from {table} limit 1")  # noqa: S608 (names above)
