"""Stale recognitions (CONTRACT §6 v1.1): a recognition whose achievement is older than the
notifier's maximum age when it becomes due is recorded ``suppressed`` with reason ``stale``
and never sent, in either arrival order of the recognition and the employee record; a fresh
one is sent; a recognition already sent or on its way is never taken back."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from shared.events import RecognitionFacts
from tests.notifier.conftest import Harness, employee_event, recognition_event
from tests.notifier.peers import Answer, HttpPeer

pytestmark = pytest.mark.integration

MONTH = 30 * 86400.0


def facts(harness: Harness, days_ago: float) -> RecognitionFacts:
    return RecognitionFacts(
        threshold=10_000, impressions=10_400, achieved_at=harness.now - timedelta(days=days_ago)
    )


def back_fill(harness: Harness, employee: str) -> list:  # type: ignore[type-arg]
    """A connected account's history: three old achievements and one of yesterday."""
    return [
        recognition_event(f"first_post:{employee}", employee, "first_post", facts(harness, 300)),
        recognition_event(f"reach_milestone:{employee}:1000", employee, facts=facts(harness, 200)),
        recognition_event(f"hire:{employee}:a-old", employee, "hire", facts(harness, 31)),
        recognition_event(f"reach_milestone:{employee}:10000", employee, facts=facts(harness, 1)),
    ]


def stale_count() -> float:
    return REGISTRY.get_sample_value("notifier_suppressed_total", {"reason": "stale"}) or 0.0


def outcome(ledger: dict) -> dict[str, tuple[str, str | None]]:  # type: ignore[type-arg]
    return {rid: (row["status"], row["reason"]) for rid, row in ledger.items()}


EXPECTED = {
    "first_post:e1": ("suppressed", "stale"),
    "reach_milestone:e1:1000": ("suppressed", "stale"),
    "hire:e1:a-old": ("suppressed", "stale"),
    "reach_milestone:e1:10000": ("sent", None),
}


async def test_back_fill_after_the_employee_record(harness: Harness, peer: HttpPeer) -> None:
    # failed before: all four sent (4 requests at the peer, the employee flooded with old news)
    harness.configure(max_age_s=MONTH)
    before = stale_count()
    await harness.employee(employee_event("e1", "webhook", f"{peer.url}/hook"))
    await harness.recognize(*back_fill(harness, "e1"))
    await harness.dispatch()
    assert outcome(await harness.ledger("e1")) == EXPECTED
    assert [r.json()["recognition_id"] for r in peer.requests] == ["reach_milestone:e1:10000"]
    assert stale_count() - before == 3


async def test_back_fill_before_the_employee_record(harness: Harness, peer: HttpPeer) -> None:
    harness.configure(max_age_s=MONTH)
    await harness.recognize(*back_fill(harness, "e1"))
    await harness.dispatch()
    # old news is settled at once, without waiting for the record; the fresh one waits
    ledger = outcome(await harness.ledger("e1"))
    assert ledger == EXPECTED | {"reach_milestone:e1:10000": ("pending", None)}
    assert peer.requests == []
    harness.advance(5)
    await harness.employee(employee_event("e1", "webhook", f"{peer.url}/hook"))
    await harness.dispatch()
    assert outcome(await harness.ledger("e1")) == EXPECTED
    assert len(peer.requests) == 1


async def test_an_event_without_achieved_at_is_judged_by_due_at(
    harness: Harness, peer: HttpPeer
) -> None:
    harness.configure(max_age_s=MONTH)
    await harness.employee(employee_event("e1", "webhook", f"{peer.url}/hook"))
    old = harness.now - timedelta(days=40)
    await harness.recognize(
        recognition_event("first_post:e1", "e1", "first_post", RecognitionFacts(), due_at=old),
        recognition_event("reach_milestone:e1:1000", "e1", due_at=harness.now),
    )
    await harness.dispatch()
    assert outcome(await harness.ledger("e1")) == {
        "first_post:e1": ("suppressed", "stale"),
        "reach_milestone:e1:1000": ("sent", None),
    }


async def test_sent_or_on_its_way_is_never_taken_back(harness: Harness, peer: HttpPeer) -> None:
    harness.configure(max_age_s=MONTH)
    await harness.employee(employee_event("e1", "webhook", f"{peer.url}/hook"))
    peer.script = [Answer(200), Answer(503)]
    await harness.recognize(
        recognition_event("first_post:e1", "e1", "first_post", facts(harness, 29.99)),
        recognition_event("reach_milestone:e1:1000", "e1", facts=facts(harness, 29.99)),
    )
    await harness.dispatch()
    ledger = outcome(await harness.ledger("e1"))
    assert ledger == {
        "first_post:e1": ("sent", None),
        "reach_milestone:e1:1000": ("pending", "server_error"),
    }
    # a day later both achievements are past the maximum age: the retry still goes out,
    # the sent one stays sent, and a replay of it changes nothing
    harness.advance(86400)
    await harness.recognize(
        recognition_event("first_post:e1", "e1", "first_post", facts(harness, 400))
    )
    await harness.dispatch()
    assert outcome(await harness.ledger("e1")) == {
        "first_post:e1": ("sent", None),
        "reach_milestone:e1:1000": ("sent", None),
    }
    assert len(peer.requests) == 3


async def test_off_sends_old_news(harness: Harness, peer: HttpPeer) -> None:
    await harness.employee(employee_event("e1", "webhook", f"{peer.url}/hook"))
    await harness.recognize(*back_fill(harness, "e1"))
    await harness.dispatch()
    assert {s for s, _ in outcome(await harness.ledger("e1")).values()} == {"sent"}


async def test_a_large_back_fill_drains_without_pacing(harness: Harness, peer: HttpPeer) -> None:
    """Issue 16: ~3,300 recognitions for 1,200 employees took ~11 min to drain at 5/s.
    With stale on, the old ones are settled without a send and without any wait."""
    harness.configure(max_age_s=MONTH, channel_rate_per_s=5.0, channel_burst=10)
    employees = [f"e{i}" for i in range(1200)]
    await harness.employee(*(employee_event(e, "webhook", f"{peer.url}/hook") for e in employees))
    events = []
    for i, employee in enumerate(employees):
        events.append(
            recognition_event(f"first_post:{employee}", employee, "first_post", facts(harness, 200))
        )
        events.append(
            recognition_event(
                f"reach_milestone:{employee}:1000", employee, facts=facts(harness, 90)
            )
        )
        if i % 4:  # 900 more: three in four of them with a third recognition
            events.append(recognition_event(f"hire:{employee}:a{i}", employee, "hire",
                                            facts(harness, 60)))  # fmt: skip
    fresh = [recognition_event(f"reach_milestone:{e}:10000", e, facts=facts(harness, 2))
             for e in employees[:10]]  # fmt: skip
    await harness.recognize(*events, *fresh)
    total = len(events) + len(fresh)
    assert total == 3310
    started = time.monotonic()
    while await harness.dispatch():
        pass
    drained_s = time.monotonic() - started
    async with harness.pool.acquire() as conn:
        counts = dict(
            await conn.fetch(
                "select coalesce(reason, status), count(*) from notifier_deliveries group by 1"
            )
        )
    assert counts == {"stale": 3300, "sent": 10}
    assert len(peer.requests) == 10
    assert sum(harness.slept) == 0.0  # ten fresh ones fit the burst: nothing was paced
    print(f"\nback-fill of {total} recognitions drained in {drained_s:.1f} s")
    assert drained_s < 120
