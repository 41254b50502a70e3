"""LinkedIn: the organization social-action webhook, and the statistics poller.

Webhook (``/v1/webhooks/linkedin``): LinkedIn validates the endpoint with
``GET ?challengeCode=…`` (a type-4 UUID; nothing else is answered, so the challenge is no
signing oracle) and expects ``challengeResponse`` = hex HMAC-SHA256 of the code keyed by the
app's client secret; each notification ``POST`` carries ``X-LI-Signature``, the hex
HMAC-SHA256 with the same secret "of the JSON-encoded string representation of the POST body
prefixed by hmacsha256=" (both readings are accepted: the prefix on the header value, or on
the signed message). Likes, comments and shares on the company
page's posts become ``post.engagement.v1`` (the actor mapped to an employee by member URN when
known: a LIKE by a known employee is an exposure, action ``reaction``); a share by a known
employee (or the page) also becomes ``post.published.v1`` with ``reshare_of``. Notifications
are deduplicated on ``notificationId``. The post is ``decoratedSourcePost.entity`` (the
``urn:li:share:``/``urn:li:ugcPost:`` the poller's statistics use), not ``sourcePost``, which
can be an ``urn:li:activity:``; each activity → post pair seen is remembered, so a later
notification naming only the activity joins the same post (Organization Social Action
Notifications, https://learn.microsoft.com/en-us/linkedin/marketing/community-management/
organizations/organization-social-action-notifications).

Subscriptions (same page, "Event Subscription API"): notifications reach the webhook only for
an admin subscribed with ``PUT /rest/eventSubscriptions/(developerApplication:…,user:…,
entity:…,eventType:ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS)`` and body ``{"webhook": url}``.
Each poll reads every admin's subscription (``GET`` on the same key) and creates it again when
LinkedIn dropped it (404) or it points elsewhere; ``ingest_linkedin_subscriptions{state}``
counts them (``active``, ``missing``: absent and not re-created, ``error``: not checkable), and
``ingest_linkedin_last_notification_timestamp_seconds`` beside
``ingest_linkedin_last_page_post_timestamp_seconds`` lets an alert see a page that posts while
no notification comes.

Poller: every ``INGEST_LINKEDIN_POLL_INTERVAL_S`` it reads, for each connected member (tokens
from ``INGEST_LINKEDIN_TOKENS_FILE``, never logged), the member's posts (``/posts?q=author``,
paginated) and each post's ``memberCreatorPostAnalytics``; and for the company page its posts
and ``organizationalEntityShareStatistics``. It emits one ``post.metrics.v1`` per post per poll
(``observed_at`` = poll time) and ``post.published.v1`` for posts it has not announced yet.
Rate limits (https://learn.microsoft.com/en-us/linkedin/shared/api-guide/concepts/rate-limits):
limits are per application and per member per day, "reset at midnight UTC every day", and a
limited request "will receive a 429 response". So a 429 pauses *that member* only (for
``Retry-After``, or an exponential backoff from ``INGEST_LINKEDIN_BACKOFF_S`` kept per member,
capped at ``INGEST_LINKEDIN_BACKOFF_MAX_S``) and the poll goes on with the others; two daily
request budgets are kept in PostgreSQL per UTC date (the application's,
``INGEST_LINKEDIN_DAILY_REQUEST_BUDGET``, which stops the poll, and each member's,
``INGEST_LINKEDIN_MEMBER_DAILY_REQUEST_BUDGET``, which skips that member until midnight UTC);
a 401 (expired token) skips that member. ``LinkedIn-Version`` is ``INGEST_LINKEDIN_VERSION``
(YYYYMM; LinkedIn supports a version for at least a year, so it is bumped yearly — see
services/ingest/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from prometheus_client import Counter, Gauge
from starlette.requests import Request
from starlette.responses import Response

from services.ingest import directory
from services.ingest.ats import DELIVERIES, Invalid, as_bytes, vendor_time
from services.ingest.connect import Connect
from services.ingest.database import Database, answering_503
from services.ingest.publisher import BrokerUnavailable, Publisher
from services.ingest.settings import IngestSettings
from shared.events import (
    Action,
    Envelope,
    PostEngagement,
    PostEngagementEvent,
    PostMetrics,
    PostMetricsEvent,
    PostPublished,
    PostPublishedEvent,
)
from shared.http import ProblemError, json_response, read_body
from shared.metrics import preinit

log = logging.getLogger(__name__)

POLL_OUTCOMES = ("completed", "rate_limited", "budget_exhausted", "failed", "skipped")
POLL_LOCK = 0x524C4950  # "RLIP": one poller at a time across replicas
REQUEST_OUTCOMES = ("ok", "unauthorized", "rate_limited", "error", "timeout")
POLLS = Counter("ingest_linkedin_polls_total", "LinkedIn polls, by outcome.", ["outcome"])
REQUESTS = Counter(
    "ingest_linkedin_requests_total", "Requests to the LinkedIn API, by outcome.", ["outcome"]
)
SKIPPED = Counter(
    "ingest_linkedin_members_skipped_total",
    "Members skipped in a poll, by reason (unauthorized: the token was refused; removed: the "
    "employee was removed).",
    ["reason"],
)
LAST_POLL = Gauge(
    "ingest_linkedin_last_poll_timestamp_seconds", "When the last LinkedIn poll completed."
)
preinit(POLLS, POLL_OUTCOMES)
preinit(REQUESTS, REQUEST_OUTCOMES)
SUBSCRIPTION_STATES = ("active", "missing", "error")
SUBSCRIPTIONS = Gauge(
    "ingest_linkedin_subscriptions",
    "LinkedIn webhook subscriptions of the organization admins at the last check, by state.",
    ["state"],
)
SUBSCRIPTION_WRITES = Counter(
    "ingest_linkedin_subscription_writes_total",
    "PUT /rest/eventSubscriptions by outcome (created: it was missing; failed: refused).",
    ["outcome"],
)
LAST_NOTIFICATION = Gauge(
    "ingest_linkedin_last_notification_timestamp_seconds",
    "When the last LinkedIn webhook notification was accepted (0: never).",
)
LAST_PAGE_POST = Gauge(
    "ingest_linkedin_last_page_post_timestamp_seconds",
    "When the company page last published a post, as the poller saw it (0: unknown).",
)
preinit(SUBSCRIPTIONS, SUBSCRIPTION_STATES)
preinit(SUBSCRIPTION_WRITES, ("created", "failed"))
preinit(SKIPPED, ("unauthorized", "error", "removed", "rate_limited", "budget_exhausted"))

WEBHOOK_SOURCE = "urn:ripples:ingest:linkedin-webhook"
POLLER_SOURCE = "urn:ripples:ingest:linkedin-poller"
ACTIONS: dict[str, Action] = {
    "LIKE": "reaction",
    "COMMENT": "comment",
    "ADMIN_COMMENT": "comment",
    "SHARE": "reshare",
}
MEMBER_METRICS = {
    "IMPRESSION": "impressions",
    "MEMBERS_REACHED": "members_reached",
    "REACTION": "reactions",
    "COMMENT": "comments",
    "RESHARE": "reshares",
}


# --- pure rules ----------------------------------------------------------------------------


CHALLENGE_CODE = re.compile(
    r"\A[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z", re.IGNORECASE
)
"""LinkedIn's ``challengeCode``: "Randomly generated type-4 UUID string" (RFC 4122 variant)."""
SIGNATURE_PREFIX = b"hmacsha256="


def challenge_response(client_secret: str, challenge_code: str) -> str:
    return hmac.new(client_secret.encode(), challenge_code.encode(), hashlib.sha256).hexdigest()


def verify_signature(client_secret: str, body: bytes, header: str | None) -> bool:
    """``X-LI-Signature``: the hex HMAC-SHA256 "of the JSON-encoded string representation of
    the POST body prefixed by hmacsha256=". Read either way: ``hmacsha256=<HMAC(body)>`` or
    ``<HMAC("hmacsha256=" + body)>`` (with or without the prefix on the header). Compared on
    bytes, both every time, so the time taken tells nothing."""
    if not client_secret or header is None:
        return False
    presented = as_bytes(header).removeprefix(SIGNATURE_PREFIX).lower()
    key = client_secret.encode()
    plain = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
    prefixed = hmac.new(key, SIGNATURE_PREFIX + body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(presented, plain) | hmac.compare_digest(presented, prefixed)


def _millis(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return datetime.fromtimestamp(value / 1000, UTC)
    return None


POST_URN = re.compile(r"\Aurn:li:(share|ugcPost):\d{1,30}\Z")
ACTIVITY_URN = re.compile(r"\Aurn:li:activity:\d{1,30}\Z")
EVENT_TYPE = "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS"


def subscription_key(application: str, admin: str, organization: str) -> str:
    """The Rest.li 2.0 key of an event subscription, its URNs URL-encoded in the tuple."""
    parts = [
        ("developerApplication", application),
        ("user", admin),
        ("entity", organization),
    ]
    inner = ",".join(f"{name}:{quote(urn, safe='')}" for name, urn in parts)
    return f"({inner},eventType:{EVENT_TYPE})"


@dataclass(frozen=True)
class Notification:
    notification_id: str
    post_id: str  # the share/ugcPost URN when LinkedIn named one, else what sourcePost says
    action: Action
    at: datetime
    actor_urn: str | None
    share_id: str | None  # the new post of a SHARE
    activity: str | None = None  # the urn:li:activity: of sourcePost, when it was one


def notifications(document: Any) -> list[Notification]:
    """The notifications of an organization social-action delivery that Ripples uses."""
    found: list[Notification] = []
    items = document.get("notifications") if isinstance(document, dict) else None
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        action = ACTIONS.get(str(item.get("action")))
        source = item.get("sourcePost")
        decorated = item.get("decoratedSourcePost")
        entity = decorated.get("entity") if isinstance(decorated, dict) else None
        # decoratedSourcePost.entity is the share/ugcPost the statistics name; sourcePost may
        # be the activity of the same post.
        post = entity if isinstance(entity, str) and POST_URN.match(entity) else source
        via = source if isinstance(source, str) and ACTIVITY_URN.match(source) else None
        modified = item.get("lastModifiedAt")
        at = vendor_time(modified, "lastModifiedAt") if modified is not None else None
        notification_id = item.get("notificationId")
        if action is None or not isinstance(post, str) or at is None or notification_id is None:
            continue
        generated = item.get("decoratedGeneratedActivity")
        activity = next(iter(generated.values()), None) if isinstance(generated, dict) else None
        actor = item.get("actor")
        if not isinstance(actor, str) and isinstance(activity, dict):
            actor = activity.get("owner")
        share = activity.get("entity") if isinstance(activity, dict) else None
        found.append(
            Notification(
                str(notification_id),
                post,
                action,
                at,
                actor if isinstance(actor, str) else None,
                share if action == "reshare" and isinstance(share, str) else None,
                via,
            )
        )
    return found


def metrics_from_member_analytics(kind: str, document: Any) -> dict[str, int]:
    """One ``memberCreatorPostAnalytics`` answer (``aggregation=TOTAL``) → {field: count}."""
    elements = document.get("elements") if isinstance(document, dict) else None
    total = sum(
        int(e["count"])
        for e in elements or []
        if isinstance(e, dict) and isinstance(e.get("count"), int)
    )
    return {MEMBER_METRICS[kind]: total}


def metrics_from_share_statistics(document: Any) -> dict[str, dict[str, int]]:
    """``organizationalEntityShareStatistics`` → {post_id: {field: count}}."""
    out: dict[str, dict[str, int]] = {}
    for element in (document.get("elements") if isinstance(document, dict) else None) or []:
        post = element.get("share") or element.get("ugcPost")
        stats = element.get("totalShareStatistics") or {}
        if not isinstance(post, str) or not isinstance(stats, dict):
            continue
        pairs = {
            "impressions": stats.get("impressionCount"),
            "members_reached": stats.get("uniqueImpressionsCount"),
            "reactions": stats.get("likeCount"),
            "comments": stats.get("commentCount"),
            "reshares": stats.get("shareCount"),
            "clicks": stats.get("clickCount"),
        }
        out[post] = {k: int(v) for k, v in pairs.items() if isinstance(v, int) and v >= 0}
    return out


# --- the API client ------------------------------------------------------------------------


class RateLimited(Exception):
    def __init__(self, retry_after_s: float | None) -> None:
        super().__init__(f"rate limited for {retry_after_s}s")
        self.retry_after_s = retry_after_s  # None: no (usable) Retry-After


@dataclass
class Backoff:
    """One member's pause after 429s: until when (monotonic), and how many in a row."""

    until: float = 0.0
    strikes: int = 0


class Unauthorized(Exception):
    pass


class BudgetExhausted(Exception):
    """The application's daily budget: nothing more today."""


class MemberBudgetExhausted(Exception):
    """One member's daily budget: that member waits for midnight UTC, the others go on."""


class ApiError(Exception):
    pass


@dataclass
class Poll:
    observed_at: datetime
    events: list[Envelope] = field(default_factory=list)
    discovered: list[str] = field(default_factory=list)


# --- the service part ----------------------------------------------------------------------


class LinkedIn:
    def __init__(
        self,
        settings: IngestSettings,
        database: Database,
        publisher: Publisher,
        http: httpx.AsyncClient,
        connect: Connect | None = None,
    ) -> None:
        self.connect = connect
        self.settings = settings
        self.database = database
        self.publisher = publisher
        self.http = http
        self._task: asyncio.Task[None] | None = None
        # Per member (keyed by its budget scope, never the URN): the 429 pauses.
        self._backoff: dict[str, Backoff] = {}

    # webhook

    async def challenge(self, request: Request) -> Response:
        code = request.query_params.get("challengeCode")
        if not self.settings.linkedin_client_secret:
            raise ProblemError(
                503, "not-configured", "Not configured", "INGEST_LINKEDIN_CLIENT_SECRET is not set"
            )
        if not code:
            raise ProblemError(
                400,
                "bad-request",
                "Bad request",
                "challengeCode is required",
                errors=[{"field": "challengeCode", "detail": "required"}],
            )
        if not CHALLENGE_CODE.match(code):
            # Only what LinkedIn sends is answered: an HMAC of any text would let anyone
            # have a notification body signed with the client secret.
            raise ProblemError(
                400,
                "bad-request",
                "Bad request",
                "challengeCode must be a type-4 UUID, as LinkedIn sends it",
                errors=[{"field": "challengeCode", "detail": "not a type-4 UUID"}],
            )
        return json_response(
            {
                "challengeCode": code,
                "challengeResponse": challenge_response(self.settings.linkedin_client_secret, code),
            }
        )

    async def notification(self, request: Request) -> Response:
        body = await read_body(request, self.settings.max_body_bytes)
        if not verify_signature(
            self.settings.linkedin_client_secret, body, request.headers.get("x-li-signature")
        ):
            DELIVERIES.labels("linkedin", "unauthorized").inc()
            raise ProblemError(
                401, "bad-signature", "Bad signature", "X-LI-Signature does not match the body"
            )
        try:
            found = notifications(orjson.loads(body))
        except orjson.JSONDecodeError:
            DELIVERIES.labels("linkedin", "invalid").inc()
            raise ProblemError(422, "invalid-delivery", "Invalid delivery", "not JSON") from None
        except Invalid as exc:
            DELIVERIES.labels("linkedin", "invalid").inc()
            raise ProblemError(422, "invalid-delivery", "Invalid delivery", str(exc)) from None
        with answering_503():
            return await self._notify(found)

    async def _notify(self, found: list[Notification]) -> Response:
        pool = self.database.pool
        seen = {
            row["delivery_id"]
            for row in await pool.fetch(
                "select delivery_id from ingest_deliveries"
                " where vendor = 'linkedin' and delivery_id = any($1::text[])",
                [n.notification_id for n in found],
            )
        }
        fresh = [n for n in found if n.notification_id not in seen]
        if not fresh:
            outcome = "duplicate" if found else "ignored"
            DELIVERIES.labels("linkedin", outcome).inc()
            return json_response({"status": outcome, "events": 0})
        organization = self.settings.linkedin_organization_urn
        now = datetime.now(UTC)
        events: list[Envelope] = []
        learnt = [(n.activity, n.post_id) for n in fresh if n.activity and n.activity != n.post_id]
        if learnt:
            await pool.executemany(
                "insert into ingest_linkedin_activities (activity_urn, post_id) values ($1, $2)"
                " on conflict (activity_urn) do nothing",
                learnt,
            )
        for n in fresh:
            employee = await directory.by_member_urn(pool, n.actor_urn) if n.actor_urn else None
            post_id = n.post_id
            if ACTIVITY_URN.match(post_id):
                # Only the activity was named: the post it was seen with before, if any.
                post_id = (
                    await pool.fetchval(
                        "select post_id from ingest_linkedin_activities where activity_urn = $1",
                        post_id,
                    )
                    or post_id
                )
            events.append(
                PostEngagementEvent(
                    specversion="1.0",
                    id=f"li-notification:{n.notification_id}",
                    source=WEBHOOK_SOURCE,
                    time=now,
                    data=PostEngagement(
                        post_id=post_id, action=n.action, at=n.at, actor_employee_id=employee
                    ),
                )
            )
            company = bool(organization) and n.actor_urn == organization
            if n.share_id and (employee or company):
                events.append(
                    PostPublishedEvent(
                        specversion="1.0",
                        id=f"li-post:{n.share_id}",
                        source=WEBHOOK_SOURCE,
                        time=now,
                        data=PostPublished(
                            post_id=n.share_id,
                            author_kind="employee" if employee else "company",
                            employee_id=employee,
                            published_at=n.at,
                            reshare_of=post_id,
                        ),
                    )
                )
        try:
            await self.publisher.publish(events)
        except BrokerUnavailable:
            DELIVERIES.labels("linkedin", "unavailable").inc()
            raise ProblemError(
                503,
                "broker-unavailable",
                "Broker unavailable",
                "the notifications were not published; redeliver later",
                headers={"Retry-After": str(self.settings.retry_after_s)},
            ) from None
        await pool.executemany(
            "insert into ingest_deliveries (vendor, delivery_id) values ('linkedin', $1)"
            " on conflict do nothing",
            [(n.notification_id,) for n in fresh],
        )
        DELIVERIES.labels("linkedin", "accepted").inc()
        LAST_NOTIFICATION.set(time.time())
        return json_response({"status": "accepted", "events": len(events)})

    # poller

    def start(self) -> None:
        if self.settings.linkedin_poll_enabled:
            self._task = asyncio.create_task(self._loop(), name="linkedin-poller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                outcome = await self.poll_once()
            except asyncio.CancelledError:
                raise
            except ProblemError:  # the database is not there yet
                outcome = "failed"
            except Exception:
                log.exception("linkedin poll failed")
                outcome = "failed"
            POLLS.labels(outcome).inc()
            if outcome == "completed":
                LAST_POLL.set(time.time())
            await asyncio.sleep(self.settings.linkedin_poll_interval_s)

    def _tokens(self) -> dict[str, str]:
        path = self.settings.linkedin_tokens_file
        if not path:
            return {}
        try:
            tokens = orjson.loads(Path(path).read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            log.error("linkedin tokens file unreadable", extra={"reason": type(exc).__name__})
            return {}
        return {k: v for k, v in tokens.items() if isinstance(k, str) and isinstance(v, str)}

    async def _members(self) -> list[tuple[str, str, str | None]]:
        """(member URN, token, employee id when connected through the connect flow): the
        connected employees' tokens (refreshed when due), then the tokens file's others."""
        connected = await self.connect.tokens() if self.connect is not None else []
        seen = {member for member, _, _ in connected}
        filed = [(m, t, None) for m, t in self._tokens().items() if m not in seen]
        if self.connect is not None:
            await self.connect.store.measure(self.database.pool)
            await self.connect.remind()  # expiring, expired or refused: told once per expiry
        return [*connected, *filed]

    async def poll_once(self) -> str:
        """One poll, unless another replica is polling right now; returns the outcome."""
        pool = self.database.pool
        async with pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("select pg_try_advisory_xact_lock($1)", POLL_LOCK):
                # Another replica polls; this one's gauge still follows the table, so an
                # alert on the connections never reads an old value from it.
                if self.connect is not None:
                    await self.connect.store.measure(pool)
                return "skipped"
            return await self._poll()

    async def _poll(self) -> str:
        """One poll of every member and the company page; returns the poll outcome."""
        pool = self.database.pool
        poll = Poll(observed_at=datetime.now(UTC))
        outcome = "completed"
        try:
            for member, token, connected in await self._members():
                secret = self.settings.applicant_id_secret
                if await directory.member_removed(pool, secret, member):
                    # Erased: not polled, and its URN is not written again (token or not).
                    SKIPPED.labels("removed").inc()
                    continue
                # Logs name the employee, never the member URN (a personal field).
                employee = connected or await directory.by_member_urn(pool, member)
                who = {"employee_id": employee or "unknown"}
                scope = self._scope(member)
                if self._paused(scope):
                    SKIPPED.labels("rate_limited").inc()
                    continue
                try:
                    await self._poll_member(poll, member, token, employee)
                except RateLimited as exc:
                    # This member only: the others are polled on in this same poll.
                    seconds = self._pause(scope, exc.retry_after_s)
                    SKIPPED.labels("rate_limited").inc()
                    log.warning(
                        "linkedin rate limit for a member; that member backs off",
                        extra={**who, "seconds": seconds},
                    )
                    outcome = "rate_limited"
                    continue
                except MemberBudgetExhausted:
                    SKIPPED.labels("budget_exhausted").inc()
                    log.warning("linkedin member's daily request budget exhausted", extra=who)
                    continue
                except Unauthorized:
                    SKIPPED.labels("unauthorized").inc()
                    log.warning("linkedin token refused; member skipped", extra=who)
                    await self._member_status(member, "unauthorized")
                    if connected and self.connect is not None:
                        await self.connect.refused(connected)
                    continue
                except ApiError as exc:
                    SKIPPED.labels("error").inc()
                    log.warning("linkedin member poll failed", extra={**who, "reason": str(exc)})
                    continue
                self._backoff.pop(scope, None)
                await self._member_status(member, "ok")
            org, org_token = (
                self.settings.linkedin_organization_urn,
                self.settings.linkedin_organization_token,
            )
            admins = list(self.settings.linkedin_organization_admins)
            # The page's token as its admin connected it wins over the operator's setting;
            # that admin's subscription is kept too.
            page = await self.connect.page_token() if self.connect is not None else None
            if page is not None:
                org_token = page[0]
                admins += [page[1]] if page[1] not in admins else []
            if org and org_token and not self._paused(self._scope(org)):
                try:
                    await self._poll_organization(poll, org, org_token)
                    self._backoff.pop(self._scope(org), None)
                except RateLimited as exc:
                    seconds = self._pause(self._scope(org), exc.retry_after_s)
                    log.warning(
                        "linkedin rate limit for the organization; it backs off",
                        extra={"seconds": seconds},
                    )
                    outcome = "rate_limited"
                except MemberBudgetExhausted:
                    log.warning("linkedin organization's daily request budget exhausted")
                except (Unauthorized, ApiError) as exc:
                    SKIPPED.labels(
                        "unauthorized" if isinstance(exc, Unauthorized) else "error"
                    ).inc()
                    log.warning("linkedin organization poll failed", extra={"reason": repr(exc)})
                    if isinstance(exc, Unauthorized) and page is not None and self.connect:
                        await self.connect.page_refused()
                await self._subscriptions(org, org_token, tuple(admins))
            last = await pool.fetchval(
                "select extract(epoch from max(received_at))::float8 from ingest_deliveries"
                " where vendor = 'linkedin'"
            )
            LAST_NOTIFICATION.set(last or 0)
        except BudgetExhausted:
            log.warning("linkedin daily request budget exhausted")
            outcome = "budget_exhausted"
        if poll.events:
            try:
                await self.publisher.publish(poll.events)
            except BrokerUnavailable:
                log.warning("linkedin poll not published", extra={"events": len(poll.events)})
                return "failed"
            await pool.executemany(
                "insert into ingest_linkedin_posts (post_id) values ($1) on conflict do nothing",
                [(post_id,) for post_id in poll.discovered],
            )
        return outcome

    async def _member_status(self, member: str, status: str) -> None:
        # Not for a member removed meanwhile (during this poll): its URN stays erased.
        await self.database.pool.execute(
            "insert into ingest_linkedin_members (member_urn, status)"
            " select $1, $2 where not exists"
            " (select from ingest_removed_members where member_hash = $3)"
            " on conflict (member_urn) do update set status = $2, checked_at = now()",
            member,
            status,
            directory.member_hash(self.settings.applicant_id_secret, member),
        )

    def _scope(self, member: str) -> str:
        """The budget and backoff key of a member (or the organization): its keyed hash."""
        return "member:" + directory.member_hash(self.settings.applicant_id_secret, member)

    def _paused(self, scope: str) -> bool:
        backoff = self._backoff.get(scope)
        return backoff is not None and backoff.until > time.monotonic()

    def _pause(self, scope: str, retry_after_s: float | None) -> float:
        """Pause one member: ``Retry-After`` when LinkedIn gave it, else an exponential backoff
        (base · 2^(429s in a row − 1)), capped. Returns the pause in seconds."""
        backoff = self._backoff.setdefault(scope, Backoff())
        backoff.strikes += 1
        if retry_after_s is None:
            retry_after_s = self.settings.linkedin_backoff_s * 2 ** min(backoff.strikes - 1, 30)
        seconds = min(max(retry_after_s, 0.0), self.settings.linkedin_backoff_max_s)
        backoff.until = time.monotonic() + seconds
        return seconds

    async def _spend(self, scope: str) -> None:
        """Count one request against today's budgets — today in UTC, where LinkedIn's limits
        reset, whatever the database's ``timezone`` says."""
        rows = await self.database.pool.fetch(
            "insert into ingest_linkedin_budget (day, scope, requests)"
            " values ($1, 'application', 1), ($1, $2, 1)"
            " on conflict (day, scope) do update"
            " set requests = ingest_linkedin_budget.requests + 1"
            " returning scope, requests",
            datetime.now(UTC).date(),
            scope,
        )
        used = {row["scope"]: row["requests"] for row in rows}
        if used.get("application", 0) > self.settings.linkedin_daily_request_budget:
            raise BudgetExhausted
        if used.get(scope, 0) > self.settings.linkedin_member_daily_request_budget:
            raise MemberBudgetExhausted

    async def _get(
        self,
        path: str,
        token: str,
        query: str,
        member: str,
        method: str = "GET",
        body: Any = None,
        absent: bool = False,
    ) -> Any:
        """One call to LinkedIn's REST API, counted against the budgets. ``absent``: a 404 is
        an answer (None), not an error."""
        await self._spend(self._scope(member))
        url = f"{self.settings.linkedin_api_base_url.rstrip('/')}/{path}"
        if query:
            url += f"?{query}"
        headers = {
            "Authorization": f"Bearer {token}",
            "LinkedIn-Version": self.settings.linkedin_version,
            "X-Restli-Protocol-Version": "2.0.0",
        }
        try:
            response = await self.http.request(
                method,
                url,
                headers=headers,
                timeout=self.settings.vendor_timeout_s,
                **({"json": body} if body is not None else {}),
            )
        except httpx.TimeoutException:
            REQUESTS.labels("timeout").inc()
            raise ApiError(f"{path}: timeout") from None
        except httpx.HTTPError as exc:
            REQUESTS.labels("error").inc()
            raise ApiError(f"{path}: {type(exc).__name__}") from None
        if response.status_code == 401:
            REQUESTS.labels("unauthorized").inc()
            raise Unauthorized
        if response.status_code == 429:
            REQUESTS.labels("rate_limited").inc()
            try:
                retry: float | None = float(response.headers.get("retry-after", ""))
            except ValueError:
                retry = None
            raise RateLimited(retry)
        if absent and response.status_code == 404:
            REQUESTS.labels("ok").inc()
            return None
        if response.status_code not in (200, 201, 204):
            REQUESTS.labels("error").inc()
            raise ApiError(f"{path.split('/', 1)[0]}: HTTP {response.status_code}")
        REQUESTS.labels("ok").inc()
        if not response.content:
            return {}
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise ApiError(f"{path}: not JSON") from None

    async def _posts(self, author: str, token: str) -> list[dict[str, Any]]:
        """Every post of ``author``, following ``paging`` (start/count/total)."""
        posts: list[dict[str, Any]] = []
        start, count = 0, self.settings.linkedin_page_size
        while True:
            page = await self._get(
                "posts",
                token,
                f"q=author&author={quote(author, safe='')}&start={start}&count={count}",
                author,
            )
            elements = [e for e in page.get("elements") or [] if isinstance(e, dict)]
            posts.extend(e for e in elements if isinstance(e.get("id"), str))
            total = (page.get("paging") or {}).get("total")
            start += len(elements)
            if not elements or (isinstance(total, int) and start >= total):
                return posts

    async def _announce(self, poll: Poll, post: dict[str, Any], employee: str | None) -> None:
        post_id = post["id"]
        known = await self.database.pool.fetchval(
            "select 1 from ingest_linkedin_posts where post_id = $1", post_id
        )
        published_at = _millis(post.get("publishedAt")) or _millis(post.get("createdAt"))
        if known or published_at is None:
            return
        parent = (post.get("reshareContext") or {}).get("parent")
        poll.events.append(
            PostPublishedEvent(
                specversion="1.0",
                id=f"li-post:{post_id}",
                source=POLLER_SOURCE,
                time=poll.observed_at,
                data=PostPublished(
                    post_id=post_id,
                    author_kind="employee" if employee else "company",
                    employee_id=employee,
                    published_at=published_at,
                    reshare_of=parent if isinstance(parent, str) else None,
                ),
            )
        )
        poll.discovered.append(post_id)

    def _snapshot(self, poll: Poll, post_id: str, counts: dict[str, int]) -> None:
        stamp = int(poll.observed_at.timestamp() * 1000)
        poll.events.append(
            PostMetricsEvent(
                specversion="1.0",
                id=f"li-metrics:{post_id}:{stamp}",
                source=POLLER_SOURCE,
                time=poll.observed_at,
                data=PostMetrics(post_id=post_id, observed_at=poll.observed_at, **counts),
            )
        )

    async def _poll_member(self, poll: Poll, member: str, token: str, employee: str | None) -> None:
        # Listing needs r_member_social: without it, the posts registered or linked.
        if employee and self.connect is not None and not self.connect.may_list(employee):
            posts = await self.connect.registered_posts(employee)
        else:
            posts = await self._posts(member, token)
        # Member Post Statistics cover the last 12 months: older posts are not asked for.
        window = poll.observed_at - timedelta(days=365)
        for post in posts:
            published = _millis(post.get("publishedAt")) or _millis(post.get("createdAt"))
            if published is not None and published < window:
                continue
            if employee:
                await self._announce(poll, post, employee)
            kind = "ugc" if post["id"].startswith("urn:li:ugcPost:") else "share"
            # Rest.li 2.0: the URN is URL-encoded inside the tuple (Member Post Statistics).
            entity = f"({kind}:{quote(post['id'], safe='')})"
            counts: dict[str, int] = {}
            for metric in MEMBER_METRICS:
                answer = await self._get(
                    "memberCreatorPostAnalytics",
                    token,
                    f"q=entity&entity={entity}&queryType={metric}&aggregation=TOTAL",
                    member,
                )
                counts.update(metrics_from_member_analytics(metric, answer))
            self._snapshot(poll, post["id"], counts)

    async def _subscriptions(self, organization: str, token: str, admins: tuple[str, ...]) -> None:
        """Every organization admin's webhook subscription: read, and created again when
        LinkedIn no longer has it (or it points elsewhere)."""
        application = self.settings.linkedin_application_urn
        webhook = self.settings.linkedin_webhook_url
        if not (application and webhook and admins):
            return
        states = dict.fromkeys(SUBSCRIPTION_STATES, 0)
        for admin in admins:
            key = subscription_key(application, admin, organization)
            path = f"eventSubscriptions/{key}"
            try:
                found = await self._get(path, token, "", organization, absent=True)
                if isinstance(found, dict) and found.get("webhook") == webhook:
                    states["active"] += 1
                    continue
                try:
                    await self._get(
                        path, token, "", organization, method="PUT", body={"webhook": webhook}
                    )
                except (ApiError, Unauthorized):
                    SUBSCRIPTION_WRITES.labels("failed").inc()
                    states["missing"] += 1
                    log.warning("linkedin webhook subscription could not be created")
                    continue
                SUBSCRIPTION_WRITES.labels("created").inc()
                log.info("linkedin webhook subscription created")
                states["active"] += 1
            except (ApiError, Unauthorized, RateLimited, MemberBudgetExhausted) as exc:
                if isinstance(exc, RateLimited):  # the page's token pauses, as in its poll
                    self._pause(self._scope(organization), exc.retry_after_s)
                states["error"] += 1
                log.warning("linkedin subscription check failed", extra={"reason": repr(exc)})
        for state, count in states.items():
            SUBSCRIPTIONS.labels(state).set(count)

    async def _poll_organization(self, poll: Poll, organization: str, token: str) -> None:
        posts = await self._posts(organization, token)
        newest = max(
            (
                stamp.timestamp()
                for p in posts
                if (stamp := _millis(p.get("publishedAt")) or _millis(p.get("createdAt")))
            ),
            default=0.0,
        )
        if newest:
            LAST_PAGE_POST.set(newest)
        for post in posts:
            await self._announce(poll, post, None)
        ids = [p["id"] for p in posts]
        for i in range(0, len(ids), 20):
            chunk = ids[i : i + 20]
            shares = [quote(p, safe="") for p in chunk if not p.startswith("urn:li:ugcPost:")]
            ugc = [quote(p, safe="") for p in chunk if p.startswith("urn:li:ugcPost:")]
            query = f"q=organizationalEntity&organizationalEntity={quote(organization, safe='')}"
            if shares:
                query += f"&shares=List({','.join(shares)})"
            if ugc:
                query += f"&ugcPosts=List({','.join(ugc)})"
            answer = await self._get(
                "organizationalEntityShareStatistics", token, query, organization
            )
            for post_id, counts in metrics_from_share_statistics(answer).items():
                self._snapshot(poll, post_id, counts)
