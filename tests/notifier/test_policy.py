"""Delivery policy rules, with hand-computed examples."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.notifier import policy

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [(200, "sent"), (202, "sent"), (204, "sent"), (500, "retry"), (502, "retry"),
     (503, "retry"), (429, "retry"), (408, "retry"), (400, "permanent"), (401, "permanent"),
     (403, "permanent"), (404, "permanent"), (410, "permanent"), (301, "permanent")],
)  # fmt: skip
def test_which_statuses_retry(status: int, verdict: str) -> None:
    assert policy.classify_status(status, None, NOW).verdict == verdict


def test_retry_after_seconds_and_date() -> None:
    assert policy.classify_status(429, "7", NOW).retry_after_s == 7.0
    assert policy.parse_retry_after("Mon, 01 Jun 2026 12:00:30 GMT", NOW) == 30.0
    assert policy.parse_retry_after("Mon, 01 Jun 2026 11:00:00 GMT", NOW) == 0.0
    assert policy.parse_retry_after("soon", NOW) is None
    assert policy.parse_retry_after(None, NOW) is None


def test_smtp_codes() -> None:
    assert policy.classify_smtp(421, "busy").verdict == "retry"
    assert policy.classify_smtp(451, "later").verdict == "retry"
    assert policy.classify_smtp(550, "no such user").verdict == "permanent"


def test_backoff_is_exponential_with_full_jitter() -> None:
    # ceiling = min(max, base * 2^(attempt-1)); delay = rand * ceiling
    assert policy.backoff_s(1, 2.0, 900.0, rand=lambda: 1.0) == 2.0
    assert policy.backoff_s(2, 2.0, 900.0, rand=lambda: 1.0) == 4.0
    assert policy.backoff_s(5, 2.0, 900.0, rand=lambda: 0.5) == 16.0
    assert policy.backoff_s(20, 2.0, 900.0, rand=lambda: 1.0) == 900.0
    assert policy.backoff_s(3, 2.0, 900.0, rand=lambda: 0.0) == 0.0


def test_retry_after_is_a_floor_capped_by_the_maximum() -> None:
    assert policy.backoff_s(1, 2.0, 900.0, retry_after_s=30.0, rand=lambda: 1.0) == 30.0
    assert policy.backoff_s(4, 2.0, 900.0, retry_after_s=3.0, rand=lambda: 1.0) == 16.0
    assert policy.backoff_s(1, 2.0, 900.0, retry_after_s=86400.0, rand=lambda: 0.0) == 900.0


def test_rate_limiter_token_bucket() -> None:
    now = [0.0]
    limiter = policy.RateLimiter(rate=2.0, burst=2, clock=lambda: now[0])
    assert limiter.reserve() == 0.0
    assert limiter.reserve() == 0.0
    assert limiter.reserve() == 0.5  # third send in the same instant waits one token (1/2 s)
    assert limiter.reserve() == 1.0
    now[0] = 10.0  # refilled, but never above the burst
    assert limiter.reserve() == 0.0
    assert limiter.reserve() == 0.0
    assert limiter.reserve() == 0.5


def test_daily_cap_rule() -> None:
    assert not policy.over_cap(100, 0)  # 0 = off
    assert not policy.over_cap(1, 2)
    assert policy.over_cap(2, 2)
    assert policy.digest_day(datetime(2026, 6, 1, 23, 59, tzinfo=UTC)) == date(2026, 6, 2)
    # The day is the UTC day: 00:30 in Copenhagen (UTC+2) is still the previous UTC day.
    local = datetime.fromisoformat("2026-06-02T00:30:00+02:00")
    assert policy.day_of(local) == date(2026, 6, 1)
    assert policy.digest_id("emp-1", date(2026, 6, 2)) == "digest:emp-1:2026-06-02"
    assert policy.start_of(date(2026, 6, 2)) == datetime(2026, 6, 2, tzinfo=UTC)
