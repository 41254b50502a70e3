"""The benchmark workload: a realistic mix of contract events (employees, posts, metric
snapshots, engagements, links, clicks, applications, hires), and a raw aiokafka producer
that writes them straight to the contract topics (acks=all, CloudEvents binary mode).

Shared by ``ripples bench`` and ``tests/attribution/benchmark.py``."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from shared.cloudevents import parse_structured, to_kafka
from shared.kafka import ensure_topics
from shared.settings import KafkaSettings

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def _t(rng: random.Random, days: float = 60) -> str:
    moment = T0 + timedelta(seconds=rng.randrange(int(days * 86400)))
    return moment.isoformat().replace("+00:00", "Z")


def events(
    n: int, seed: int = 7, prefix: str = "b", employees: int | None = None
) -> list[dict[str, Any]]:
    """N events in a realistic mix for a company of n/100 employees (or ``employees``); ids
    (events, employees, posts, links, applicants) start with ``prefix`` so rounds do not
    collide."""
    return list(iter_events(n, seed, prefix, employees))


def iter_events(
    n: int, seed: int = 7, prefix: str = "b", employees: int | None = None
) -> Iterator[dict[str, Any]]:
    """:func:`events` one at a time (the scale benchmark's millions do not fit in a list):
    the employees' upserts first, then posts, metric snapshots, engagements, links, clicks,
    applications and hires among them."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not a secret
    people = [f"{prefix}e{i}" for i in range(employees or max(10, n // 100))]
    count = 0

    def ev(kind: str, data: dict[str, Any], time: str) -> dict[str, Any]:
        nonlocal count
        count += 1
        return {
            "specversion": "1.0",
            "id": f"{prefix}{count - 1}",
            "source": "urn:bench",
            "type": f"ripples.{kind}.v1",
            "time": time,
            "data": data,
        }

    for e in people:
        if count >= n:
            return
        yield ev(
            "employee.upserted",
            {"employee_id": e, "display_name": e, "ambassador": rng.random() < 0.05},
            _t(rng, 1),
        )
    posts: list[str] = []
    links: list[str] = []
    while count < n:
        roll = rng.random()
        if roll < 0.12 or not posts:
            post_id = f"{prefix}p{len(posts)}"
            author = rng.choice(people)
            data: dict[str, Any] = {
                "post_id": post_id,
                "author_kind": "employee",
                "employee_id": author,
                "published_at": _t(rng),
            }
            if posts and rng.random() < 0.3:
                data["reshare_of"] = rng.choice(posts)
            yield ev("post.published", data, data["published_at"])
            posts.append(post_id)
        elif roll < 0.42:
            at = _t(rng)
            yield ev(
                "post.metrics",
                {
                    "post_id": rng.choice(posts),
                    "observed_at": at,
                    "impressions": rng.randrange(5000),
                    "clicks": rng.randrange(50),
                    "reactions": rng.randrange(40),
                },
                at,
            )
        elif roll < 0.62:
            at = _t(rng)
            yield ev(
                "post.engagement",
                {
                    "post_id": rng.choice(posts),
                    "action": "reaction",
                    "at": at,
                    "actor_employee_id": rng.choice(people),
                },
                at,
            )
        elif roll < 0.67 or not links:
            code = f"{prefix}k{len(links)}"
            yield ev(
                "link.created",
                {
                    "link_code": code,
                    "target_url": "https://x.example/j",
                    "employee_id": rng.choice(people),
                },
                _t(rng, 1),
            )
            links.append(code)
        elif roll < 0.87:
            at = _t(rng)
            yield ev(
                "link.clicked",
                {
                    "link_code": rng.choice(links),
                    "at": at,
                    "visitor_id": f"{prefix}v{rng.randrange(n // 10 + 1)}",
                },
                at,
            )
        elif roll < 0.97:
            at = _t(rng)
            yield ev(
                "applicant.applied",
                {
                    "applicant_id": f"{prefix}a{count}",
                    "job_id": "J",
                    "applied_at": at,
                    "visitor_id": f"{prefix}v{rng.randrange(n // 10 + 1)}",
                    "referrer_employee_id": rng.choice(people),
                },
                at,
            )
        else:
            at = _t(rng)
            yield ev(
                "applicant.hired",
                {
                    "applicant_id": f"{prefix}a{rng.randrange(count)}",
                    "job_id": "J",
                    "hired_at": at,
                },
                at,
            )


async def produce(bootstrap: str, batch: list[dict[str, Any]]) -> None:
    await ensure_topics(KafkaSettings(bootstrap_servers=bootstrap))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        for raw in batch:
            event = parse_structured(orjson.dumps(raw))
            key, value, headers = to_kafka(event)
            await producer.send(event.topic.name, value, key=key, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()
