"""End to end: a smaller version of the demo pilot through the whole pipeline — ingest,
attribution and notifier as real processes on a real broker and PostgreSQL, the recognitions
landing in a webhook sink — compared with the ground truth the scenario generator computes
from its own knowledge of what it generated (``ripples.demo.truth``, which shares no code
with the attribution service)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest

from ripples.demo import run, truth
from ripples.demo import scenario as pilot
from ripples.demo.player import Player
from ripples.demo.sink import Sink, serving
from tests.conftest import (
    API_KEYS,
    AUTH,
    Running,
    free_port,
    fresh_database,
    start_service,
)

pytestmark = pytest.mark.integration

SECRETS = {
    "INGEST_APPLICANT_ID_SECRET": "e2e-applicant-secret",
    "INGEST_GREENHOUSE_SECRET_KEY": "e2e-greenhouse",
    "INGEST_TEAMTAILOR_SIGNATURE_KEY": "e2e-teamtailor",
    "INGEST_LEVER_SIGNATURE_TOKEN": "e2e-lever",
    "INGEST_LINKEDIN_CLIENT_SECRET": "e2e-linkedin",
    "NOTIFIER_WEBHOOK_SECRET": "e2e-webhook",
}


@dataclass
class Pipeline:
    ingest: Running
    attribution: Running
    notifier: Running


@pytest.fixture(scope="module")
async def pipeline(
    own_broker: Running, postgres: Running, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Pipeline]:
    env = SECRETS | {"INGEST_LINK_ALLOWED_HOSTS": "careers.example.com"} | run.DEMO_ENV
    started: list[Running] = []
    async with contextlib.AsyncExitStack() as databases:
        try:
            for name in ("ingest", "attribution", "notifier"):
                database = await databases.enter_async_context(fresh_database(postgres, name))
                started.append(
                    start_service(
                        name,
                        tmp_path_factory.mktemp(name),
                        own_broker,
                        DATABASE_URL=database,
                        **env,
                    )
                )
            yield Pipeline(*started)
        finally:
            for service in started:
                service.stop()


@dataclass
class Outcome:
    facts: truth.Facts
    scenario: pilot.Scenario
    sink: Sink
    pseudonyms: dict[str, str]


async def caught_up(pipeline: Pipeline, sink: Sink) -> None:
    """Wait until attribution and the notifier have processed everything and the sink has
    every message due."""
    caught = await run.wait_caught_up(
        pipeline.attribution.address,
        pipeline.notifier.address,
        sink,
        timeout_s=120,
        api_key=API_KEYS[0],
    )
    assert caught.stable, "the pipeline did not settle"


@pytest.fixture(scope="module")
async def played(pipeline: Pipeline) -> Outcome:
    sink = Sink(SECRETS["NOTIFIER_WEBHOOK_SECRET"])
    async with serving(sink, free_port()) as sink_url:
        scenario = pilot.generate(5, pilot.SMALL, sink_url=sink_url)
        player = Player(pipeline.ingest.address, API_KEYS[0], SECRETS, sink_url, seed=5)
        result = await player.play(scenario)
        await caught_up(pipeline, sink)
    facts = scenario.facts(result.click_times, result.applied_at)
    vendor = {
        a.candidate: a.vendor if a.vendor == "teamtailor" and a.referrer is None else "greenhouse"
        for a in scenario.applications
    }
    pseudonyms = {c: _pseudonym(vendor[c], c) for c in vendor}
    return Outcome(facts, scenario, sink, pseudonyms)


def _pseudonym(vendor: str, candidate: str) -> str:
    """The applicant id ingest derives at the edge (documented in services/ingest)."""
    key = SECRETS["INGEST_APPLICANT_ID_SECRET"].encode()
    return "apl_" + hmac.new(key, f"{vendor}:{candidate}".encode(), hashlib.sha256).hexdigest()[:32]


def _close(got: Any, want: Any, path: str = "$") -> None:
    """Equal, as ``truth.differences`` defines it."""
    found = truth.differences(got, want, path)
    assert not found, "\n".join(found[:20])


def _api(value: Any) -> Any:
    """What the value looks like in an API answer (JSON, times in UTC with ``Z``)."""
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_UTC_Z))


@pytest.mark.parametrize("model", truth.MODELS)
async def test_summary_equals_the_truth(pipeline: Pipeline, played: Outcome, model: str) -> None:
    async with httpx.AsyncClient(base_url=pipeline.attribution.address, headers=AUTH) as client:
        got = (await client.get("/v1/summary", params={"model": model})).json()
    want = _api(truth.summary(played.facts, model))
    _close(got, want)
    assert len(got["ripples"]["rings"]) >= 3


async def test_summary_evidence_equals_the_truth_and_is_reproducible(
    pipeline: Pipeline, played: Outcome
) -> None:
    """CONTRACT §10: content origin, drivers and job families equal the truth's own reading
    (above, with every other key); each bootstrap interval contains the truth's point value,
    is null exactly when the point is, and comes back the same on a second call (same data,
    same seed). The contract does not fix the resampling itself, so the truth does not
    recompute the bounds."""
    auth = {"Authorization": f"Bearer {API_KEYS[0]}"}
    async with httpx.AsyncClient(base_url=pipeline.attribution.address, headers=auth) as client:
        first = await client.get("/v1/summary", params={"model": "linear"})
        second = await client.get("/v1/summary", params={"model": "linear"})
    assert first.status_code == 200
    assert first.content == second.content
    got = first.json()
    want = _api(truth.summary(played.facts, "linear"))
    assert truth.interval_problems(got, want) == []
    assert got["uncertainty"]["reach_ratio"] is not None
    assert got["content_origin"]["interval"] is not None
    assert got["drivers"]["followers_spearman"] is not None
    assert [j["family"] for j in got["applicants"]["jobs"]][-1] is None
    assert got["applicants"]["jobs"][0]["hard_to_recruit"]
    assert got["scale_up"]["estimate"] is True
    assert got["scale_up"]["ambassadors"] == sum(p.ambassador for p in played.scenario.people)


async def test_summary_of_a_period_equals_the_truth(pipeline: Pipeline, played: Outcome) -> None:
    start = played.scenario.start + (played.scenario.end - played.scenario.start) / 3
    end = played.scenario.end - (played.scenario.end - played.scenario.start) / 4
    params = {"from": start.isoformat(), "to": end.isoformat(), "model": "linear"}
    async with httpx.AsyncClient(base_url=pipeline.attribution.address, headers=AUTH) as client:
        got = (await client.get("/v1/summary", params=params)).json()
    want = _api(truth.summary(played.facts, "linear", start, end))
    want.pop("period")
    _close(got, want)
    assert truth.interval_problems(got, want) == []


@pytest.mark.parametrize("model", truth.MODELS)
async def test_sharers_equal_the_truth(pipeline: Pipeline, played: Outcome, model: str) -> None:
    async with httpx.AsyncClient(base_url=pipeline.attribution.address, headers=AUTH) as client:
        got = (await client.get("/v1/sharers", params={"model": model})).json()
    want = _api(truth.sharers(played.facts, model))
    assert {row["employee_id"] for row in got} == {row["employee_id"] for row in want}
    by_id = {row["employee_id"]: row for row in got}
    for row in want:
        mine = dict(by_id[row["employee_id"]])
        mine["inspired"] = sorted(mine["inspired"])
        _close(mine, row, f"$[{row['employee_id']}]")
    # The order: applicant credit, then impressions (both descending), then employee id.
    keys = [(-round(r["applicant_credit"], 9), -r["impressions"], r["employee_id"]) for r in got]
    assert keys == sorted(keys)


async def test_ripples_graph_equals_the_truth(pipeline: Pipeline, played: Outcome) -> None:
    async with httpx.AsyncClient(base_url=pipeline.attribution.address, headers=AUTH) as client:
        got = (await client.get("/v1/ripples")).json()
    want = _api(truth.ripples_graph(played.facts))
    _close(truth.in_order(got), truth.in_order(want))


async def test_recognitions_reach_the_sink_once(pipeline: Pipeline, played: Outcome) -> None:
    due = truth.recognitions(played.facts)
    people = {p.id: p for p in played.scenario.people}
    reachable = {p.id for p in people.values() if p.channel == "webhook" and not p.opt_out}

    def contract_id(recognition_id: str) -> str:
        kind, *rest = recognition_id.split(":")
        if kind == "hire":
            return f"hire:{rest[0]}:{played.pseudonyms[rest[1]]}"
        return recognition_id

    expected = {contract_id(rid) for rid, employee in due.items() if employee in reachable}
    received = [r.body.get("recognition_id") for r in played.sink.received]
    assert played.sink.recognition_ids() == expected
    assert len(received) == len(set(received)), "a recognition arrived twice"
    assert all(r.signature_ok for r in played.sink.received)
    for item in played.sink.received:
        person = people[item.body["employee_id"]]
        assert item.body["locale"] == person.locale
        assert item.body["text"]
        assert "cand-" not in item.body["text"]
        assert "apl_" not in item.body["text"]

    async with httpx.AsyncClient(base_url=pipeline.notifier.address, headers=AUTH) as client:
        ledger, url = [], "/v1/recognitions?limit=500"
        while url:  # every page (the next one in the Link header)
            response = await client.get(url)
            ledger += response.json()
            url = response.links.get("next", {}).get("url", "")
    statuses = {row["recognition_id"]: row["status"] for row in ledger}
    suppressed = {contract_id(rid) for rid, e in due.items() if e not in reachable}
    assert {rid for rid, status in statuses.items() if status == "suppressed"} == suppressed
    assert {rid for rid, status in statuses.items() if status == "sent"} == expected


def test_scenario_exercises_every_rule(played: Outcome) -> None:
    """So that changing any one rule changes some answer above."""
    facts = played.facts
    r = truth.rings(facts)
    assert {e.exposure for e in r.edges} == {"reshare", "engagement"}
    assert any(len([x for x in r.edges if x.colleague == c]) > 1 for c in r.first_share)
    # inspirers of different rings (1 + the smallest), and an exposure outside the window
    assert any(
        len({r.ring[x.inspirer] for x in r.edges if x.colleague == c}) > 1 for c in r.first_share
    )
    assert any(
        g.actor in r.first_share
        and r.ring[g.actor] is None
        and facts.posts[g.post_id].author is not None
        and r.first_share[g.actor] - g.at > timedelta(days=14)
        for g in facts.engagements
    )
    # a like timed before its post was published, and a colleague following an independent
    assert any(
        g.actor in r.first_share and g.at < facts.posts[g.post_id].published_at
        for g in facts.engagements
    )
    independents = {e for e in r.first_share if r.ring[e] is None}
    assert any(
        g.actor in r.first_share and facts.posts[g.post_id].author in independents
        for g in facts.engagements
    )
    touches = [truth.touches(facts, a) for a in facts.applications.values()]
    assert any(len(t) >= 3 for t in touches), "position_based needs three touches"
    assert {t.kind for ts in touches for t in ts} == {"click", "link_code", "referral"}
    assert any(t.employee is None for ts in touches for t in ts), "a company link touch"
    assert any(ring is None for e, ring in r.ring.items() if e in r.first_share)
    # Clicks on both sides of the lookback, and a click after its application: no touches.
    pairs = [
        (c, a)
        for a in facts.applications.values()
        for c in facts.clicks
        if a.visitor is not None and c.visitor == a.visitor
    ]
    assert any(c.at < a.applied_at - timedelta(days=30) for c, a in pairs)
    assert any(a.applied_at - timedelta(days=30) <= c.at <= a.applied_at for c, a in pairs)
    assert any(c.at > a.applied_at for c, a in pairs)
    # §10: own words travel further than prepared text; every origin, a job family that is
    # hard to recruit only through one of its jobs, a job moved to another family, one never
    # filed; some employees' network size unknown
    summary = truth.summary(facts)
    assert summary["content_origin"]["own_vs_prepared"] > 1.2
    assert all(summary["content_origin"][o]["posts"] for o in ("own", "suggested", "template"))
    families = {j.job_id: j for j in truth.latest_jobs(facts).values()}
    assert families["job-data"].family == "IT"
    trades = [j for j in families.values() if j.family == "skilled trades"]
    assert {j.hard_to_recruit for j in trades} == {True, False}
    assert any(a.job not in families for a in facts.applications.values())
    assert any(e.followers is None for e in facts.employees.values())
