"""Two attribution workers in one consumer group on one database give the same ``/v1``
answers as one (issue 18 part 5).

A seeded workload (``ripples.bench.workload``: employees with ambassadors, posts and
reshares, metric snapshots, engagements, links, clicks, applications, hires) with the
hand-written scenario of ``tests/attribution/scenario.py`` spread through it is written to
the input topics (6 and 12 partitions each) of a broker of its own, twice:

- the reference: one worker;
- the pair: two worker processes in the ``ripples-attribution`` group, both started and
  holding partitions before the first event arrives, so the group splits every input topic
  between them and both store batches into the one database at the same time (their
  batches serialise on the store's transaction-level advisory lock, ``store._LOCK``:
  docs/performance.md, "More workers, same answers").

Once both have caught up (every event stored once, lag 0, outbox empty), every ``/v1``
answer — asked of each of the two workers — must equal the reference's byte for byte (and
the scenario's conversions their hand-computed values), each worker must have stored a
share of the events, and the recognitions on ``ripples.recognitions`` must be the ones due,
none sent twice (the outbox rows are taken with ``for update skip locked``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from ripples.bench import workload
from shared.kafka import ensure_topics
from shared.settings import KafkaSettings
from tests.attribution import scenario
from tests.conftest import AUTH, Running, fresh_database, start_broker, start_service
from tests.reliability.test_attribution_kill import (
    ENV,
    caught_up,
    distinct,
    final_recognitions,
    paths,
    processed,
    recognitions_on_topic,
    scrape,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

N = 12_000
SEED = 13
# small batches: each worker commits many transactions while the other does too
WORKER_ENV = ENV | {"ATTRIBUTION_BATCH_SIZE": "300"}


@dataclass
class Run:
    answers: list[dict[str, tuple[int, bytes]]] = field(default_factory=list)  # per worker
    stored_by: list[float] = field(default_factory=list)  # events each worker stored
    recognitions: list[str] = field(default_factory=list)
    events_stored: int = 0


def seeded() -> list[dict[str, Any]]:
    noise = workload.events(N - len(scenario.EVENTS), seed=SEED, prefix="w")
    step = len(noise) // len(scenario.EVENTS)
    out: list[dict[str, Any]] = []
    for i, event in enumerate(scenario.EVENTS):
        out += [*noise[i * step : (i + 1) * step], event]
    return out + noise[len(scenario.EVENTS) * step :]


async def replay(postgres: Running, tmp: Path, events: list[dict[str, Any]], workers: int) -> Run:
    run = Run()
    broker = start_broker(tmp / "broker")
    started: list[Running] = []
    try:
        async with fresh_database(postgres, "two_workers") as database:
            await ensure_topics(KafkaSettings(bootstrap_servers=broker.address))
            for i in range(workers):
                started.append(
                    await asyncio.to_thread(
                        start_service,
                        "attribution",
                        tmp / f"worker{i}",
                        broker,
                        wait_ready=False,
                        DATABASE_URL=database,
                        **WORKER_ENV,
                    )
                )
            for worker in started:  # ready = partitions assigned, after the group settled
                await asyncio.to_thread(worker.component.wait_ready, 90)
            await asyncio.sleep(2)  # the last join's rebalance has finished on every member
            await workload.produce(broker.address, events)
            for worker in started:
                await caught_up(worker, database, distinct(events))
            for worker in started:
                metrics = await scrape(worker)
                run.stored_by.append(processed(metrics, "stored"))
                async with httpx.AsyncClient(
                    base_url=worker.address, headers=AUTH, timeout=30
                ) as client:
                    answers = {}
                    for path in paths(events):
                        response = await client.get(path)
                        answers[path] = (response.status_code, response.content)
                    run.answers.append(answers)
            conn = await asyncpg.connect(database)
            try:
                run.events_stored = await conn.fetchval("select count(*) from attribution.events")
            finally:
                await conn.close()
            run.recognitions = await recognitions_on_topic(broker.address)
    finally:
        for worker in started:
            worker.stop()
        broker.stop()
    return run


async def test_two_workers_in_one_group_give_the_answers_of_one(
    postgres: Running, tmp_path: Path
) -> None:
    events = seeded()
    one = await replay(postgres, tmp_path / "one", events, workers=1)
    two = await replay(postgres, tmp_path / "two", events, workers=2)

    # the reference is the scenario's hand-computed truth where there is one
    reference = one.answers[0]
    for applicant, expected in (
        ("ap1", scenario.CONVERSION_AP1),
        ("ap2", scenario.CONVERSION_AP2),
        ("ap5", scenario.CONVERSION_AP5),
    ):
        status, body = reference[f"/v1/conversions/{applicant}"]
        assert (status, orjson.loads(body)) == (200, expected)
    summary = orjson.loads(reference["/v1/summary?model=linear"][1])
    assert summary["applicants"]["attributed"] > 0
    assert len(summary["ripples"]["rings"]) >= 3, summary["ripples"]

    # both workers took part: the group split the partitions and each stored a share
    assert len(two.stored_by) == 2
    assert all(n > 0 for n in two.stored_by), two.stored_by
    assert sum(two.stored_by) >= distinct(events), two.stored_by
    assert one.events_stored == two.events_stored == distinct(events)

    # every /v1 answer, from either worker, is the single worker's
    for i, answers in enumerate(two.answers):
        different = [p for p in reference if reference[p] != answers[p]]
        assert not different, (i, different[:5])

    # the recognitions due are on the topic, none twice (one outbox, rows locked per sender)
    due = final_recognitions(reference)
    assert due <= set(two.recognitions), sorted(due - set(two.recognitions))[:5]
    assert len(two.recognitions) == len(set(two.recognitions))
    print(
        f"\ntwo workers: {len(events)} events ({distinct(events)} distinct), stored "
        f"{two.stored_by[0]:.0f} + {two.stored_by[1]:.0f} by the two workers; "
        f"{len(reference)} /v1 answers each identical to one worker's; {len(due)} recognitions "
        f"due, {len(set(two.recognitions))} distinct emitted by the pair "
        f"({len(set(one.recognitions))} by one worker)"
    )
