"""LinkedIn against the real service: the webhook's challenge and signed notifications, and
the poller against a local server that plays LinkedIn's REST API (pagination, 401 for an
expired token, 429 with Retry-After)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from shared.events import PostEngagementEvent, PostMetricsEvent, PostPublishedEvent
from tests.conftest import API_KEYS, Running, read_events, start_service
from tests.connectors.conftest import (
    AUTH,
    SECRETS,
    VendorServer,
    metric,
    seed_employee,
    topic_events,
    wait_for,
)

pytestmark = pytest.mark.integration

CLIENT_SECRET = SECRETS["INGEST_LINKEDIN_CLIENT_SECRET"]
ORG = "urn:li:organization:2414183"


def hex_hmac(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


# --- webhook -------------------------------------------------------------------------------


async def test_challenge_is_answered_with_the_hmac_of_the_code(http: httpx.AsyncClient) -> None:
    code = str(uuid.uuid4())
    response = await http.get("/v1/webhooks/linkedin", params={"challengeCode": code})
    assert response.status_code == 200
    assert response.json() == {
        "challengeCode": code,
        "challengeResponse": hex_hmac(CLIENT_SECRET, code.encode()),
    }
    assert (await http.get("/v1/webhooks/linkedin")).status_code == 400


def notification(action: str, actor: str, post: str, generated: dict[str, Any]) -> dict[str, Any]:
    """One entry of LinkedIn's documented organization social-action notification."""
    return {
        "sourcePost": post,
        "lastModifiedAt": 1780000000000,
        "organizationalEntity": ORG,
        "decoratedSourcePost": {"entity": post, "owner": ORG},
        "decoratedGeneratedActivity": generated,
        "action": action,
        "notificationId": uuid.uuid4().int % 10**12,
        "generatedActivity": next(iter(generated.values()))["entity"] if generated else None,
        **({"actor": actor} if action == "LIKE" else {}),
    }


async def post_signed(
    http: httpx.AsyncClient, body: bytes, signature: str | None
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-LI-Signature"] = signature
    return await http.post("/v1/webhooks/linkedin", content=body, headers=headers)


async def test_notifications_become_engagements_and_reshares(
    http: httpx.AsyncClient, broker: Running
) -> None:
    await seed_employee(http, "emp-commenter", None, "urn:li:person:commenter1")
    await seed_employee(http, "emp-sharer", None, "urn:li:person:sharer1")
    post = f"urn:li:share:{uuid.uuid4().int % 10**18}"
    reshare = f"urn:li:share:{uuid.uuid4().int % 10**18}"
    items = [
        notification(
            "COMMENT",
            "urn:li:person:commenter1",
            post,
            {
                "comment": {
                    "entity": "urn:li:comment:(urn:li:activity:1,2)",
                    "owner": "urn:li:person:commenter1",
                    "text": "Great work!",
                }
            },
        ),
        notification(
            "SHARE",
            "urn:li:person:sharer1",
            post,
            {"share": {"entity": reshare, "owner": "urn:li:person:sharer1", "text": "Look"}},
        ),
        notification("LIKE", "urn:li:person:stranger", post, {}),
    ]
    body = orjson.dumps(
        {"type": "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS", "notifications": items}
    )
    response = await post_signed(http, body, hex_hmac(CLIENT_SECRET, body))
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "accepted", "events": 4}

    ids = {f"li-notification:{n['notificationId']}" for n in items} | {f"li-post:{reshare}"}
    found = {e.id: e for _, e in (await read_events(broker.address, "ripples.posts", ids)).values()}
    comment, share, like = (found[f"li-notification:{n['notificationId']}"] for n in items)
    assert isinstance(comment, PostEngagementEvent)
    assert (comment.data.post_id, comment.data.action) == (post, "comment")
    assert comment.data.actor_employee_id == "emp-commenter"
    assert isinstance(share, PostEngagementEvent)
    assert (share.data.action, share.data.actor_employee_id) == ("reshare", "emp-sharer")
    assert isinstance(like, PostEngagementEvent)
    assert (like.data.action, like.data.actor_employee_id) == ("reaction", None)
    published = found[f"li-post:{reshare}"]
    assert isinstance(published, PostPublishedEvent)
    assert published.data.author_kind == "employee"
    assert published.data.employee_id == "emp-sharer"
    assert published.data.reshare_of == post

    # The same delivery again (LinkedIn retries) publishes nothing new.
    replay = await post_signed(http, body, "hmacsha256=" + hex_hmac(CLIENT_SECRET, body))
    assert replay.json() == {"status": "duplicate", "events": 0}
    # Sentinels on both keys (the post, the reshare), read up to: nothing was published twice.
    sentinels = [notification("LIKE", "urn:li:person:x", p, {}) for p in (post, reshare)]
    body = orjson.dumps(
        {"type": "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS", "notifications": sentinels}
    )
    assert (await post_signed(http, body, hex_hmac(CLIENT_SECRET, body))).status_code == 200
    until = frozenset(f"li-notification:{n['notificationId']}" for n in sentinels)
    events = await topic_events(broker.address, "ripples.posts", until=until)
    assert sum(1 for e in events if e.id in ids) == 4


async def test_notifications_name_the_share_and_likes_by_employees_are_exposures(
    http: httpx.AsyncClient, broker: Running
) -> None:
    """Organization Social Action Notifications
    (https://learn.microsoft.com/en-us/linkedin/marketing/community-management/organizations/
    organization-social-action-notifications): ``sourcePost`` is the post's activity
    (``urn:li:activity:…``) while ``decoratedSourcePost.entity`` is its ``urn:li:share:…`` —
    the URN the statistics and the poller use; a LIKE carries no decorated activity, only its
    ``actor``. The shapes below are LinkedIn's, field for field (subscriber,
    decoratedSourcePost with owner/mediaCategory/text/entity, sourcePost, action,
    notificationId, organizationalEntity). Failed before: the like's post_id was the
    activity URN, which no poller snapshot ever names."""
    await seed_employee(http, "emp-liker", None, "urn:li:person:liker1")
    n = uuid.uuid4().int % 10**15
    share, activity = f"urn:li:share:{n}", f"urn:li:activity:{n + 1}"
    like = {
        "subscriber": "urn:li:person:zLqTygBP8S",
        "lastModifiedAt": 1780000000000,
        "decoratedSourcePost": {
            "owner": ORG,
            "mediaCategory": "NONE",
            "text": "This is our post",
            "entity": share,
        },
        "sourcePost": activity,
        "action": "LIKE",
        "actor": "urn:li:person:liker1",
        "organizationalEntity": ORG,
        "notificationId": uuid.uuid4().int % 10**12,
    }
    body = orjson.dumps(
        {"type": "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS", "notifications": [like]}
    )
    response = await post_signed(http, body, hex_hmac(CLIENT_SECRET, body))
    assert response.json() == {"status": "accepted", "events": 1}
    # Later, a comment whose notification names only the activity: the same post.
    comment = {
        "subscriber": "urn:li:person:zLqTygBP8S",
        "lastModifiedAt": 1780000100000,
        "sourcePost": activity,
        "decoratedGeneratedActivity": {
            "comment": {
                "owner": "urn:li:person:stranger2",
                "text": "Congratulations",
                "entity": f"urn:li:comment:({activity},{n + 2})",
                "object": activity,
            }
        },
        "action": "COMMENT",
        "organizationalEntity": ORG,
        "notificationId": uuid.uuid4().int % 10**12,
    }
    body = orjson.dumps(
        {"type": "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS", "notifications": [comment]}
    )
    assert (await post_signed(http, body, hex_hmac(CLIENT_SECRET, body))).status_code == 200
    ids = {f"li-notification:{item['notificationId']}" for item in (like, comment)}
    found = {e.id: e for _, e in (await read_events(broker.address, "ripples.posts", ids)).values()}
    liked = found[f"li-notification:{like['notificationId']}"]
    assert isinstance(liked, PostEngagementEvent)
    assert (liked.data.post_id, liked.data.action, liked.data.actor_employee_id) == (
        share,
        "reaction",
        "emp-liker",
    )
    commented = found[f"li-notification:{comment['notificationId']}"]
    assert isinstance(commented, PostEngagementEvent)
    assert (commented.data.post_id, commented.data.action) == (share, "comment")
    assert commented.data.actor_employee_id is None


async def test_unsigned_or_tampered_notifications_are_refused(http: httpx.AsyncClient) -> None:
    body = orjson.dumps({"type": "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS", "notifications": []})
    for signature in (
        None,
        "",
        hex_hmac("wrong-secret", body),
        hex_hmac(CLIENT_SECRET, body + b" "),
    ):
        response = await post_signed(http, body, signature)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"


# --- poller --------------------------------------------------------------------------------

GOOD, EXPIRED = "urn:li:person:goodmember", "urn:li:person:expiredmember"
BUSY = "urn:li:person:busymember"
# BUSY first: the members after it must be polled in the same poll as its 429.
TOKENS = {BUSY: "tok-busy", GOOD: "tok-good", EXPIRED: "tok-expired"}
MEMBER_POSTS = [f"urn:li:share:70000000000000000{i}" for i in range(3)]
ORG_POSTS = ["urn:li:share:800000000000000001", "urn:li:ugcPost:800000000000000002"]
EXPIRED_POSTS = ["urn:li:share:900000000000000001"]
APPLICATION = "urn:li:developerApplication:123456"
ADMIN = "urn:li:person:pageadmin1"
WEBHOOK_URL = "https://ripples.example.com/v1/webhooks/linkedin"
SUBSCRIPTION_KEY = (
    "(developerApplication:urn%3Ali%3AdeveloperApplication%3A123456,"
    "user:urn%3Ali%3Aperson%3Apageadmin1,entity:urn%3Ali%3Aorganization%3A2414183,"
    "eventType:ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS)"
)
METRIC_TYPE = "com.linkedin.adsexternalapi.memberanalytics.v1.CreatorPostAnalyticsMetricTypeV1"
METRICS = {"IMPRESSION": 1500, "MEMBERS_REACHED": 900, "REACTION": 40, "COMMENT": 6, "RESHARE": 3}


class FakeLinkedIn:
    """LinkedIn's REST API as documented, for four tokens; every call with ``tok-busy`` is
    answered 429 with Retry-After: 1 — that member's own limit ("Member — the total number of
    calls that a single member per application can make in a day … Rate limited requests will
    receive a 429 response", Rate Limits,
    https://learn.microsoft.com/en-us/linkedin/shared/api-guide/concepts/rate-limits)."""

    def __init__(self) -> None:
        self.limited = False  # True: tok-busy is not limited either
        self.subscriptions: dict[str, Any] = {}
        self.server: VendorServer | None = None

    def __call__(
        self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        token = headers.get("authorization", "").removeprefix("Bearer ")
        if token == "tok-expired":
            return (
                401,
                {},
                {"status": 401, "serviceErrorCode": 65601, "code": "EXPIRED_ACCESS_TOKEN"},
            )
        if token == "tok-busy" and not self.limited:
            return 429, {"Retry-After": "1"}, {"status": 429, "message": "Too Many Requests"}
        if (
            token not in ("tok-good", "tok-org")
            or headers.get("x-restli-protocol-version") != "2.0.0"
        ):
            return 403, {}, {"status": 403}
        if path.startswith("/rest/eventSubscriptions/"):
            # Event Subscription API (Organization Social Action Notifications): the key is
            # (developerApplication:…,user:…,entity:…,eventType:…) with URNs encoded;
            # PUT {"webhook": url} creates it, GET reads it, 404 when there is none.
            key = path.removeprefix("/rest/eventSubscriptions/")
            if method == "PUT":
                assert self.server is not None
                self.subscriptions[key] = orjson.loads(self.server.requests[-1].body)
                return 201, {}, None
            if key in self.subscriptions:
                return 200, {}, {**self.subscriptions[key], "expiresAt": 1790000000000}
            return 404, {}, {"status": 404, "message": "Not Found"}
        if path == "/rest/posts":
            author = query["author"][0]
            posts = (
                MEMBER_POSTS if author == GOOD else ORG_POSTS if author == ORG else EXPIRED_POSTS
            )
            start, count = int(query["start"][0]), int(query["count"][0])
            page = [
                {
                    "id": p,
                    "author": author,
                    "publishedAt": 1780000000000 + i,
                    "lifecycleState": "PUBLISHED",
                    **(
                        {"reshareContext": {"parent": ORG_POSTS[0], "root": ORG_POSTS[0]}}
                        if i == 2
                        else {}
                    ),
                }
                for i, p in enumerate(posts)
            ][start : start + count]
            return (
                200,
                {},
                {"elements": page, "paging": {"start": start, "count": count, "total": len(posts)}},
            )
        if path == "/rest/memberCreatorPostAnalytics":
            kind = query["queryType"][0]
            entity = query["entity"][0]
            return (
                200,
                {},
                {
                    "elements": [
                        {
                            "count": METRICS[kind],
                            "metricType": {METRIC_TYPE: kind},
                            "targetEntity": {"share": entity.strip("()").split(":", 1)[1]},
                        }
                    ],
                    "paging": {"start": 0, "count": 10, "links": []},
                },
            )
        if path == "/rest/organizationalEntityShareStatistics":
            shares = [s for key in ("shares", "ugcPosts") for s in query.get(key, [])]
            urns = [u for s in shares for u in s.removeprefix("List(").removesuffix(")").split(",")]
            return (
                200,
                {},
                {
                    "elements": [
                        {
                            "organizationalEntity": ORG,
                            ("ugcPost" if "ugcPost" in urn else "share"): urn,
                            "totalShareStatistics": {
                                "uniqueImpressionsCount": 300,
                                "shareCount": 2,
                                "engagement": 0.05,
                                "clickCount": 12,
                                "likeCount": 9,
                                "impressionCount": 500,
                                "commentCount": 1,
                            },
                        }
                        for urn in urns
                    ],
                    "paging": {"start": 0, "count": 10},
                },
            )
        return 404, {}, {"status": 404}


@pytest.fixture(scope="module")
def linkedin_api() -> Iterator[VendorServer]:
    fake = FakeLinkedIn()
    server = VendorServer(fake)
    fake.server = server
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def poller(
    broker: Running,
    postgres: Running,
    linkedin_api: VendorServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Running, str]]:
    tmp = tmp_path_factory.mktemp("poller")
    tokens = Path(tmp) / "tokens.json"
    tokens.write_bytes(orjson.dumps(TOKENS))
    name = f"poller_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        admin = await asyncpg.connect(postgres.address)
        await admin.execute(f'create database "{name}"')
        await admin.close()

    asyncio.run(create())
    url = postgres.address.rsplit("/", 1)[0] + f"/{name}"
    running = start_service(
        "ingest",
        tmp / "ingest",
        broker,
        DATABASE_URL=url,
        INGEST_LINKEDIN_POLL_ENABLED="true",
        INGEST_LINKEDIN_POLL_INTERVAL_S="0.3",
        INGEST_LINKEDIN_API_BASE_URL=linkedin_api.address + "/rest",
        INGEST_LINKEDIN_TOKENS_FILE=str(tokens),
        INGEST_LINKEDIN_ORGANIZATION_URN=ORG,
        INGEST_LINKEDIN_ORGANIZATION_TOKEN="tok-org",
        INGEST_LINKEDIN_PAGE_SIZE="2",
        INGEST_LINKEDIN_APPLICATION_URN=APPLICATION,
        INGEST_LINKEDIN_WEBHOOK_URL=WEBHOOK_URL,
        INGEST_LINKEDIN_ORGANIZATION_ADMINS=ADMIN,
        **SECRETS,
    )
    yield running, url
    running.stop()


async def test_poller_emits_published_and_metrics(
    poller: tuple[Running, str], broker: Running, linkedin_api: VendorServer
) -> None:
    service, database = poller
    async with httpx.AsyncClient(
        base_url=service.address, timeout=15, headers={"Authorization": f"Bearer {API_KEYS[0]}"}
    ) as client:
        await seed_employee(client, "emp-good", None, GOOD)
        await seed_employee(client, "emp-expired", None, EXPIRED)

        # Every post of the connected member (three, over two pages) is announced once.
        published = await wait_for(
            broker.address,
            "ripples.posts",
            lambda e: isinstance(e, PostPublishedEvent) and e.data.post_id in MEMBER_POSTS,
            count=3,
        )
        by_post = {e.data.post_id: e for e in published if isinstance(e, PostPublishedEvent)}
        assert set(by_post) == set(MEMBER_POSTS)
        assert {e.data.employee_id for e in by_post.values()} == {"emp-good"}
        assert by_post[MEMBER_POSTS[2]].data.reshare_of == ORG_POSTS[0]

        # One snapshot per post per poll, with LinkedIn's figures; two polls' worth.
        snapshots = await wait_for(
            broker.address,
            "ripples.posts",
            lambda e: isinstance(e, PostMetricsEvent) and e.data.post_id == MEMBER_POSTS[0],
            count=2,
        )
        first = snapshots[0]
        assert isinstance(first, PostMetricsEvent)
        assert (
            first.data.impressions,
            first.data.members_reached,
            first.data.reactions,
            first.data.comments,
            first.data.reshares,
        ) == (1500, 900, 40, 6, 3)
        # (a third poll may have landed while the topic was read: the first two, in order)
        polls = {s.data.observed_at for s in snapshots[:2] if isinstance(s, PostMetricsEvent)}
        assert len(polls) == 2

        # The company page: its posts (author_kind company) and share statistics.
        org = await wait_for(
            broker.address,
            "ripples.posts",
            lambda e: isinstance(e, PostMetricsEvent) and e.data.post_id == ORG_POSTS[1],
        )
        assert isinstance(org[0], PostMetricsEvent)
        assert (org[0].data.impressions, org[0].data.members_reached, org[0].data.clicks) == (
            500,
            300,
            12,
        )
        events = await topic_events(broker.address, "ripples.posts")
        company = [
            e for e in events if isinstance(e, PostPublishedEvent) and e.data.post_id in ORG_POSTS
        ]
        assert {e.data.author_kind for e in company} == {"company"}

        # Announced once, however many polls ran.
        assert sum(1 for e in events if e.id == f"li-post:{MEMBER_POSTS[0]}") == 1

        # The expired token: that member is skipped, counted, and nothing of theirs published.
        assert not [e for e in events if getattr(e.data, "post_id", None) in EXPIRED_POSTS]
        text = (await client.get("/metrics")).text
        assert metric(text, "ingest_linkedin_members_skipped_total", reason="unauthorized") >= 1
        conn = await asyncpg.connect(database)
        status = await conn.fetchval(
            "select status from ingest_linkedin_members where member_urn = $1", EXPIRED
        )
        await conn.close()
        assert status == "unauthorized"

        # BUSY's 429 paused BUSY only: the members after it went on in that same poll (failed
        # before: the first 429 stopped the whole poll), and BUSY was asked again only after
        # its Retry-After (1 s) although a poll runs every 0.3 s.
        def token(r: Any) -> str:
            return str(r.headers.get("authorization", "")).removeprefix("Bearer ")

        requests = list(linkedin_api.requests)
        busy = [i for i, r in enumerate(requests) if token(r) == "tok-busy"]
        assert busy
        assert any(token(r) == "tok-good" for r in requests[busy[0] + 1 :][:3])
        gaps = [requests[b].at - requests[a].at for a, b in itertools.pairwise(busy)]
        assert all(gap >= 1.0 for gap in gaps)
        assert metric(text, "ingest_linkedin_polls_total", outcome="rate_limited") >= 1
        assert metric(text, "ingest_linkedin_members_skipped_total", reason="rate_limited") >= 1
        # Tokens travel only in the Authorization header, and never reach the log.
        log = (Path(service.state.root) / "logs" / "ingest.log").read_text()
        assert "tok-good" not in log
        assert "tok-expired" not in log
        # The skipped member is named by employee id, not by member URN (a personal field).
        assert '"employee_id":"emp-expired"' in log
        assert EXPIRED not in log


async def test_the_webhook_subscription_is_created_and_recreated_when_linkedin_drops_it(
    poller: tuple[Running, str], linkedin_api: VendorServer
) -> None:
    """``PUT /rest/eventSubscriptions/(developerApplication:…,user:…,entity:…,
    eventType:ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS)`` with ``{"webhook": url}`` for the
    page admin, read back on each poll and created again once LinkedIn no longer has it."""
    service, _ = poller
    fake = linkedin_api.handler
    assert isinstance(fake, FakeLinkedIn)
    async with asyncio.timeout(20):
        while SUBSCRIPTION_KEY not in fake.subscriptions:
            await asyncio.sleep(0.1)
    assert fake.subscriptions[SUBSCRIPTION_KEY] == {"webhook": WEBHOOK_URL}
    put = next(r for r in linkedin_api.requests if r.method == "PUT")
    assert put.path == f"/rest/eventSubscriptions/{SUBSCRIPTION_KEY}"
    assert put.headers["authorization"] == "Bearer tok-org"
    assert put.headers["linkedin-version"].isdigit()
    async with httpx.AsyncClient(base_url=service.address, timeout=15) as client:
        async with asyncio.timeout(20):
            while (
                metric(
                    (await client.get("/metrics")).text,
                    "ingest_linkedin_subscriptions",
                    state="active",
                )
                != 1
            ):
                await asyncio.sleep(0.1)
        # LinkedIn drops it silently: the next poll's check finds a 404 and creates it again.
        del fake.subscriptions[SUBSCRIPTION_KEY]
        async with asyncio.timeout(20):
            while SUBSCRIPTION_KEY not in fake.subscriptions:
                await asyncio.sleep(0.1)
        text = (await client.get("/metrics")).text
        assert metric(text, "ingest_linkedin_subscription_writes_total", outcome="created") >= 2
        assert metric(text, "ingest_linkedin_subscriptions", state="missing") == 0
        assert metric(text, "ingest_linkedin_last_page_post_timestamp_seconds") > 0
    # Between the two PUTs, polls only read it (GET), never wrote it again.
    puts = [r for r in linkedin_api.requests if r.method == "PUT"]
    assert len(puts) == 2


@pytest.fixture(scope="module")
def thrifty_linkedin() -> Iterator[VendorServer]:
    fake = FakeLinkedIn()
    fake.limited = True  # no 429 here
    server = VendorServer(fake)
    server.start()
    yield server
    server.stop()


async def test_poller_keeps_to_the_daily_budget(
    broker: Running, database: str, thrifty_linkedin: VendorServer, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_bytes(orjson.dumps({GOOD: "tok-good"}))
    service = start_service(
        "ingest",
        tmp_path / "ingest",
        broker,
        DATABASE_URL=database,
        INGEST_LINKEDIN_POLL_ENABLED="true",
        INGEST_LINKEDIN_POLL_INTERVAL_S="0.2",
        INGEST_LINKEDIN_API_BASE_URL=thrifty_linkedin.address + "/rest",
        INGEST_LINKEDIN_TOKENS_FILE=str(tokens),
        INGEST_LINKEDIN_PAGE_SIZE="2",
        INGEST_LINKEDIN_DAILY_REQUEST_BUDGET="4",
        **SECRETS,
    )
    try:
        async with httpx.AsyncClient(base_url=service.address, timeout=15) as client:

            async def exhausted_polls() -> float:
                text = (await client.get("/metrics")).text
                return metric(text, "ingest_linkedin_polls_total", outcome="budget_exhausted")

            async with asyncio.timeout(30):
                while await exhausted_polls() < 3:
                    await asyncio.sleep(0.1)
        # Two pages of posts and two analytics calls, then nothing more today.
        assert len(thrifty_linkedin.requests) == 4
        conn = await asyncpg.connect(database)
        spent = await conn.fetchval(
            "select requests from ingest_linkedin_budget where scope = 'application'"
        )
        await conn.close()
        assert spent >= 5  # the refused attempts are counted too
    finally:
        service.stop()


async def test_the_daily_budget_is_counted_in_utc_whatever_the_database_time_zone(
    broker: Running, database: str, thrifty_linkedin: VendorServer, tmp_path: Path
) -> None:
    """LinkedIn's daily limits "reset at midnight UTC every day" (Rate Limits,
    https://learn.microsoft.com/en-us/linkedin/shared/api-guide/concepts/rate-limits), for the
    application and for each member: the budget's day is the UTC date even when the database
    runs in a time zone whose date differs from UTC's right now (failed before: the row was
    dated with the database's current_date, a day off)."""
    now = datetime.now(UTC)
    # UTC-12 is yesterday before noon UTC, UTC+14 is tomorrow from 10:00 UTC on.
    zone = "Etc/GMT+12" if now.hour < 12 else "Pacific/Kiritimati"
    conn = await asyncpg.connect(database)
    name = await conn.fetchval("select current_database()")
    await conn.execute(f"alter database \"{name}\" set timezone = '{zone}'")
    await conn.close()
    tokens = tmp_path / "tokens.json"
    tokens.write_bytes(orjson.dumps({GOOD: "tok-good"}))
    service = start_service(
        "ingest",
        tmp_path / "ingest",
        broker,
        DATABASE_URL=database,
        INGEST_LINKEDIN_POLL_ENABLED="true",
        INGEST_LINKEDIN_POLL_INTERVAL_S="0.2",
        INGEST_LINKEDIN_API_BASE_URL=thrifty_linkedin.address + "/rest",
        INGEST_LINKEDIN_TOKENS_FILE=str(tokens),
        INGEST_LINKEDIN_PAGE_SIZE="2",
        **SECRETS,
    )
    try:
        conn = await asyncpg.connect(database)
        try:
            assert await conn.fetchval("show timezone") == zone
            local = await conn.fetchval("select current_date")
            assert local != now.date()  # the zone really is a day off
            async with asyncio.timeout(30):
                while not await conn.fetchval("select count(*) from ingest_linkedin_budget"):
                    await asyncio.sleep(0.1)
            days = {r["day"] for r in await conn.fetch("select day from ingest_linkedin_budget")}
        finally:
            await conn.close()
        assert days == {datetime.now(UTC).date()}
    finally:
        service.stop()


async def test_a_removed_member_is_not_polled_nor_brought_back(
    broker: Running, database: str, thrifty_linkedin: VendorServer, tmp_path: Path
) -> None:
    """Erasure (issue 14): after ``employee.removed`` the member's URN is in no table of
    ingest although its token is still in the tokens file (the poller used to write it back
    at the next poll), the member is not polled, and a late upsert older than the removal
    brings neither the URN nor the e-mail hash back, nor reaches the topic."""
    removed = "urn:li:person:erased-member-1"
    tokens = tmp_path / "tokens.json"
    tokens.write_bytes(orjson.dumps({removed: "tok-good"}))
    service = start_service(
        "ingest",
        tmp_path / "ingest",
        broker,
        DATABASE_URL=database,
        INGEST_LINKEDIN_POLL_ENABLED="true",
        INGEST_LINKEDIN_POLL_INTERVAL_S="0.2",
        INGEST_LINKEDIN_API_BASE_URL=thrifty_linkedin.address + "/rest",
        INGEST_LINKEDIN_TOKENS_FILE=str(tokens),
        **SECRETS,
    )
    headers = {**AUTH, "Content-Type": "application/cloudevents+json"}

    def hr(kind: str, at: str, data: dict[str, Any]) -> bytes:
        return orjson.dumps(
            {"specversion": "1.0", "id": f"hr-{uuid.uuid4()}", "source": "urn:test:hr",
             "type": f"ripples.employee.{kind}.v1", "time": at, "data": data}
        )  # fmt: skip

    person = {
        "employee_id": "emp-erased",
        "display_name": "Test Person",
        "linkedin_member_urn": removed,
        "work_email": "erased.person@example.com",
    }
    try:
        async with httpx.AsyncClient(base_url=service.address, timeout=15) as client:

            async def polls() -> float:
                text = (await client.get("/metrics")).text
                return metric(text, "ingest_linkedin_polls_total", outcome="completed")

            async def polled() -> int:
                return sum(
                    1 for r in thrifty_linkedin.requests if removed in r.query.get("author", [])
                )

            post = await client.post(
                "/v1/events", content=hr("upserted", "2026-06-01T08:00:00Z", person),
                headers=headers,
            )  # fmt: skip
            assert post.status_code == 202, post.text
            async with asyncio.timeout(20):
                while not await polled():
                    await asyncio.sleep(0.1)
            removal = hr("removed", "2026-06-02T08:00:00Z", {"employee_id": "emp-erased"})
            post = await client.post("/v1/events", content=removal, headers=headers)
            assert post.status_code == 202, post.text
            late = orjson.loads(hr("upserted", "2026-06-01T09:00:00Z", person))
            post = await client.post("/v1/events", content=orjson.dumps(late), headers=headers)
            assert post.status_code == 202, post.text
            sentinel = orjson.loads(removal)
            sentinel["id"] = f"sentinel-{uuid.uuid4()}"
            post = await client.post("/v1/events", content=orjson.dumps(sentinel), headers=headers)
            assert post.status_code == 202, post.text
            before = await polls()
            async with asyncio.timeout(20):
                while await polls() < before + 3:  # three more polls
                    await asyncio.sleep(0.1)
            asked = await polled()
            async with asyncio.timeout(20):
                while await polls() < before + 5:
                    await asyncio.sleep(0.1)
            assert await polled() == asked, "the removed member was polled again"
            text = (await client.get("/metrics")).text
            assert metric(text, "ingest_linkedin_members_skipped_total", reason="removed") >= 2
        conn = await asyncpg.connect(database)
        try:
            tables = await conn.fetch(
                "select table_name from information_schema.tables"
                " where table_schema = 'public' and table_type = 'BASE TABLE'"
            )
            rows = []
            for t in tables:
                rows += await conn.fetch(f'select t::text from "{t[0]}" t')  # noqa: S608
            text = "\n".join(r[0] for r in rows)
        finally:
            await conn.close()
        hashed = hex_hmac(SECRETS["INGEST_APPLICANT_ID_SECRET"], b"email:erased.person@example.com")
        assert removed not in text
        assert hashed not in text
        # The late upsert was accepted but not published: the removal stays the latest
        # record of the key on the compacted ripples.employees.
        events = await topic_events(
            broker.address, "ripples.employees", until=frozenset({sentinel["id"]})
        )
        assert late["id"] not in {e.id for e in events}
    finally:
        service.stop()
