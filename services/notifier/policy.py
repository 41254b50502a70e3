"""Delivery policy as plain functions: what an answer means, how long to wait before the
next attempt, how fast a channel may be used, and the per-employee daily cap.

No I/O here; the dispatcher applies these rules.
"""

from __future__ import annotations

import email.utils
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

Verdict = Literal["sent", "retry", "permanent"]

# The closed set of reasons the ledger records and GET /v1/recognitions shows (no raw text).
SUPPRESSION_REASONS = ("opted_out", "channel_none", "no_notify", "stale", "erased")
ATTEMPT_REASONS = ("address_not_allowed", "rejected", "too_large", "server_error",
                   "rate_limited", "timeout", "connection_error")  # fmt: skip
REASONS = (*SUPPRESSION_REASONS, *ATTEMPT_REASONS, "interrupted", "max_attempts")


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: ``code`` from the closed set (None when sent), ``reason``
    the operator's detail (kept in the ledger's ``last_error``, never in the API).
    ``retry_after_s`` is the peer's own wish (429/503)."""

    verdict: Verdict
    reason: str = ""
    retry_after_s: float | None = None
    code: str | None = None


SENT = Outcome("sent")


def classify_status(status: int, retry_after: str | None, now: datetime) -> Outcome:
    """An HTTP answer: 2xx sent; 429, 408 and 5xx retry (honouring ``Retry-After``); any other
    4xx (or 3xx, which webhooks must not answer) is permanent."""
    if 200 <= status < 300:
        return SENT
    if status in (408, 429) or status >= 500:
        code = {408: "timeout", 429: "rate_limited"}.get(status, "server_error")
        return Outcome("retry", f"http_{status}", parse_retry_after(retry_after, now), code)
    return Outcome("permanent", f"http_{status}", code="rejected")


def classify_smtp(code: int, reason: str) -> Outcome:
    """An SMTP reply: 4yz is transient (retry), 5yz permanent."""
    if 400 <= code < 500:
        return Outcome("retry", f"smtp_{code}", code="server_error")
    return Outcome("permanent", f"smtp_{code}: {reason[:200]}", code="rejected")


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds to wait: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
    Unparseable or absent → None; a date in the past → 0."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def backoff_s(
    attempt: int,
    base_s: float,
    max_s: float,
    retry_after_s: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds before attempt ``attempt + 1`` after ``attempt`` failed (attempt ≥ 1).

    Exponential with full jitter: uniform in [0, min(max, base·2^(attempt-1))]. A peer's
    ``Retry-After`` is a floor (never retry sooner than asked), capped at ``max_s`` so a peer
    cannot park a delivery forever.
    """
    ceiling = min(max_s, base_s * 2.0 ** (attempt - 1))
    delay = rand() * ceiling
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, max_s))
    return delay


class RateLimiter:
    """A token bucket: ``rate`` sends per second on average, bursts of up to ``burst``.

    ``reserve()`` takes a token and says how long to wait before using it (0 when one was
    free), so callers sleep outside the limiter; the clock is injectable.
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst ≥ 1")
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self.tokens = float(burst)
        self.updated = clock()

    def reserve(self) -> float:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def unreserve(self) -> None:
        """Give back a token reserved but not used (the send was put off)."""
        self.tokens = min(self.burst, self.tokens + 1.0)

    def pause(self, seconds: float) -> None:
        """The peer asked for a pause (429 ``Retry-After``): the next token is free only
        ``seconds`` from now (a pause already longer is kept)."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens = min(self.tokens, 1.0 - max(0.0, seconds) * self.rate)

    def idle(self) -> bool:
        """Whether the bucket is full again (forgetting it changes nothing)."""
        return self.tokens + (self.clock() - self.updated) * self.rate >= self.burst


def destination_key(channel: str, address: str) -> str:
    """The key a destination's rate limit is kept under: the channel and a digest of the
    address (a webhook URL is a secret, a channel id or an e-mail address personal), never
    the address itself; this is also all a log line may name. E-mail goes through one
    SMTP relay, so it has one key."""
    if channel == "email":
        return "email"
    return f"{channel}:{hashlib.sha256(address.encode()).hexdigest()[:16]}"


class Destinations:
    """One :class:`RateLimiter` per destination (per webhook URL, per Slack channel), made
    on first use with its channel's rate; the full, idle ones are forgotten when more than
    ``keep`` are held, so the table stays bounded."""

    def __init__(
        self,
        rates: dict[str, tuple[float, int]],
        clock: Callable[[], float],
        keep: int = 10_000,
    ) -> None:
        self.rates = rates
        self.clock = clock
        self.keep = keep
        self.limiters: dict[str, RateLimiter] = {}

    def limiter(self, channel: str, address: str) -> RateLimiter:
        key = destination_key(channel, address)
        found = self.limiters.get(key)
        if found is None:
            if len(self.limiters) >= self.keep:
                for old in [k for k, v in self.limiters.items() if v.idle()]:
                    del self.limiters[old]
            rate, burst = self.rates[channel]
            found = self.limiters[key] = RateLimiter(rate, burst, self.clock)
        return found


# --- stale recognitions (CONTRACT §6 v1.1) ---------------------------------------------


def is_stale(achieved_at: datetime, now: datetime, max_age_s: float) -> bool:
    """Whether an achievement is older than the maximum age (0 or less: never stale)."""
    return max_age_s > 0 and (now - achieved_at).total_seconds() > max_age_s


# --- daily cap and digest ---------------------------------------------------------------


def day_of(moment: datetime) -> date:
    """The UTC day a moment belongs to (the cap counts per UTC day)."""
    return moment.astimezone(UTC).date()


def start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def over_cap(messages_today: int, cap: int) -> bool:
    """Whether one more message today would exceed the cap; a cap of 0 means no cap."""
    return cap > 0 and messages_today >= cap


def digest_day(now: datetime) -> date:
    """The day an over-cap recognition goes out, folded into one digest: the next UTC day."""
    return day_of(now) + timedelta(days=1)


def digest_id(employee_id: str, day: date) -> str:
    """The idempotency key of an employee's digest of one day."""
    return f"digest:{employee_id}:{day.isoformat()}"
