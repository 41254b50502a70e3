"""Each recognition event carries when its achievement happened (CONTRACT §6 v1.1, so the
notifier can leave old news unsent): the first post's time, the milestone's newest counted
impressions, the earliest credited application, the hire, the colleague's first share."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec
import pytest

from shared.events import RECOGNITIONS, RecognitionDueEvent
from tests.attribution import scenario
from tests.attribution.conftest import envelopes, feed

pytestmark = pytest.mark.integration


def t(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def achieved(pool: asyncpg.Pool) -> dict[str, datetime | None]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("select event from attribution.outbox where topic = $1",
                                RECOGNITIONS.name)  # fmt: skip
    decode = msgspec.json.Decoder(RecognitionDueEvent).decode
    events = [decode(r["event"]).data for r in rows]
    return {e.recognition_id: e.facts.achieved_at for e in events}


# From scenario.py by hand: the posts' published_at, the metrics' observed_at, applied_at
# and hired_at of the credited applications, the colleagues' first shares.
EXPECTED = {
    "first_post:amb1": "2026-06-01T10:00:00Z",
    "first_post:amb2": "2026-06-03T09:00:00Z",
    "first_post:c1": "2026-06-04T12:00:00Z",
    "first_post:d1": "2026-06-06T08:00:00Z",
    "first_post:g1": "2026-06-08T00:00:00Z",
    "first_post:solo": "2026-06-05T00:00:00Z",
    "reach_milestone:amb1:1000": "2026-06-05T00:00:00Z",
    "reach_milestone:amb2:1000": "2026-06-05T00:00:00Z",
    "first_applicant:amb1": "2026-06-06T00:00:00Z",  # ap1, the earliest of amb1's
    "first_applicant:amb2": "2026-06-11T00:00:00Z",
    "first_applicant:c1": "2026-06-06T00:00:00Z",
    "first_applicant:d1": "2026-06-10T00:00:00Z",
    "hire:amb1:ap1": "2026-06-20T00:00:00Z",
    "hire:c1:ap1": "2026-06-20T00:00:00Z",
    "inspired_colleague:amb1:c1": "2026-06-04T12:00:00Z",  # c1's first post
    "inspired_colleague:c1:d1": "2026-06-06T08:00:00Z",
    "inspired_colleague:amb2:g1": "2026-06-08T00:00:00Z",
    "inspired_colleague:c1:g1": "2026-06-08T00:00:00Z",
}


@pytest.mark.parametrize("batch", [1, 1000], ids=["event-by-event", "one-batch-back-fill"])
async def test_every_recognition_says_when_it_was_achieved(pool: asyncpg.Pool, batch: int) -> None:
    await feed(pool, envelopes(scenario.EVENTS), batch=batch)
    times = await achieved(pool)
    assert set(times) == scenario.RECOGNITION_IDS
    assert times == {k: t(v) for k, v in EXPECTED.items()}
