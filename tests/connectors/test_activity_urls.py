"""An employee registers a post by the link LinkedIn's feed and share menu hand out — an
``urn:li:activity:`` (``/feed/update/urn:li:activity:…``, ``/posts/<slug>-activity-<id>-…``) —
and ingest resolves it to the post's ``urn:li:share:``/``urn:li:ugcPost:`` with LinkedIn's
Activities API (DMA), https://learn.microsoft.com/en-us/linkedin/dma/content/activities :
``GET /rest/dmaActivities?ids=List(urn%3Ali%3Aactivity%3A{id})`` with the member's token,
``Linkedin-Version`` and ``X-Restli-Protocol-Version: 2.0.0``, a Batch_Get that "returns each
activities' domain entity Urn"; "The DomainEntity field will be empty when the author is opted
out for sharing their data"; an unsupported activity type is "HTTP 403 with Activity's verb
type is not allowed from the ActivityFilter." (the local LinkedIn,
tests/connectors/linkedin_emulator.py, answers in that shape: ``results`` keyed by the URN).
The real ingest process and its real httpx code; the webhook's notification naming only the
activity joins the same post_id. Failed before: every activity URL was 422
``unsupported-post-url``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import orjson
import pytest

from shared.events import PostEngagementEvent
from tests.conftest import Running, fresh_database, read_events, start_service
from tests.connectors.conftest import SECRETS
from tests.connectors.linkedin_emulator import LinkedInEmulator
from tests.connectors.test_connect import (
    AUTH,
    CLIENT_ID,
    NEW_KEY,
    PUBLIC,
    authorize,
    employee,
    invite,
)
from tests.connectors.test_linkedin import hex_hmac

pytestmark = pytest.mark.integration

ORGANIZATION = "urn:li:organization:2414183"
CLIENT_SECRET = SECRETS["INGEST_LINKEDIN_CLIENT_SECRET"]


@pytest.fixture(scope="module")
def emulator() -> Iterator[LinkedInEmulator]:
    server = LinkedInEmulator(CLIENT_ID, CLIENT_SECRET)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def activity_db(postgres: Running) -> AsyncIterator[str]:
    async with fresh_database(postgres, "activityurls") as url:
        yield url


@pytest.fixture(scope="module")
def service(
    broker: Running,
    activity_db: str,
    emulator: LinkedInEmulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Running]:
    running = start_service(
        "ingest",
        tmp_path_factory.mktemp("activity-urls"),
        broker,
        DATABASE_URL=activity_db,
        INGEST_PUBLIC_BASE_URL=PUBLIC,
        INGEST_LINKEDIN_CLIENT_ID=CLIENT_ID,
        INGEST_LINKEDIN_OAUTH_BASE_URL=emulator.address + "/oauth/v2",
        INGEST_LINKEDIN_USERINFO_URL=emulator.address + "/v2/userinfo",
        INGEST_LINKEDIN_API_BASE_URL=emulator.address + "/rest",
        INGEST_CONNECT_SECRET="test-activity-connect-secret",
        INGEST_TOKEN_KEYS=NEW_KEY,
        INGEST_LINKEDIN_ORGANIZATION_URN=ORGANIZATION,
        **SECRETS,
    )
    yield running
    running.stop()


@pytest.fixture
async def http(service: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=service.address, timeout=15) as client:
        yield client


def ids() -> tuple[int, int]:
    """A fresh (activity id, post id) pair, LinkedIn-sized."""
    n = 7_000_000_000_000_000_000 + uuid.uuid4().int % 10**17
    return n, n + 1


async def connected(http: httpx.AsyncClient, emulator: LinkedInEmulator, posts: list[str]) -> str:
    """A new employee who connected LinkedIn; their member owns ``posts``."""
    sub = f"m{uuid.uuid4().hex[:10]}"
    emulator.member_sub, emulator.posts[f"urn:li:person:{sub}"] = sub, posts
    employee_id = await employee(http, "en")
    assert (
        await http.get(await authorize(http, await invite(http, employee_id)))
    ).status_code == 200
    return employee_id


async def register(http: httpx.AsyncClient, employee_id: str, url: str) -> httpx.Response:
    return await http.post(
        "/v1/linkedin/posts", json={"employee_id": employee_id, "url": url}, headers=AUTH
    )


def dma_calls(emulator: LinkedInEmulator) -> list[str]:
    return [c.raw_query for c in emulator.calls if c.path == "/rest/dmaActivities"]


async def notify(http: httpx.AsyncClient, item: dict[str, object]) -> None:
    body = orjson.dumps(
        {"type": "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS", "notifications": [item]}
    )
    response = await http.post(
        "/v1/webhooks/linkedin",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-LI-Signature": hex_hmac(CLIENT_SECRET, body),
        },
    )
    assert response.status_code == 200, response.text


async def test_both_activity_url_forms_register_the_share_or_ugcpost(
    http: httpx.AsyncClient, emulator: LinkedInEmulator, broker: Running
) -> None:
    a1, s1 = ids()
    a2, u2 = ids()
    share, ugc = f"urn:li:share:{s1}", f"urn:li:ugcPost:{u2}"
    emulator.activities |= {f"urn:li:activity:{a1}": share, f"urn:li:activity:{a2}": ugc}
    employee_id = await connected(http, emulator, [share, ugc])
    before = len(emulator.calls)

    feed = await register(
        http, employee_id, f"https://www.linkedin.com/feed/update/urn:li:activity:{a1}/"
    )
    assert feed.status_code == 202, feed.text
    assert feed.json() == {"post_id": share}
    slug = f"https://www.linkedin.com/posts/test-person_hiring-activity-{a2}-Ab1c?utm_source=share&utm_medium=member_desktop"
    copied = await register(http, employee_id, slug)
    assert copied.status_code == 202, copied.text
    assert copied.json() == {"post_id": ugc}

    # The request exactly as the Activities page documents it: the URN encoded inside List().
    asked = [c for c in emulator.calls[before:] if c.path == "/rest/dmaActivities"]
    assert [c.raw_query for c in asked] == [
        f"ids=List(urn%3Ali%3Aactivity%3A{a1})",
        f"ids=List(urn%3Ali%3Aactivity%3A{a2})",
    ]
    for call in asked:
        assert call.method == "GET"
        assert call.headers["x-restli-protocol-version"] == "2.0.0"
        assert len(call.headers["linkedin-version"]) == 6
        assert call.headers["authorization"] in {f"Bearer {t}" for t in emulator.exchanged}
    # Ownership is still checked on the resolved post (Member Post Statistics, ugc: tuple).
    analytics = [c.raw_query for c in emulator.calls[before:] if c.path.endswith("PostAnalytics")]
    assert any(f"(share:urn%3Ali%3Ashare%3A{s1})" in q for q in analytics)
    assert any(f"(ugc:urn%3Ali%3AugcPost%3A{u2})" in q for q in analytics)

    # The pair is remembered: the same link again does not ask LinkedIn.
    calls = len(dma_calls(emulator))
    again = await register(
        http, employee_id, f"https://linkedin.com/feed/update/urn%3Ali%3Aactivity%3A{a1}"
    )
    assert again.json() == {"post_id": share}
    assert len(dma_calls(emulator)) == calls

    # The page's webhook names only the activity of the same post: the same post_id.
    comment = {
        "subscriber": "urn:li:person:zLqTygBP8S",
        "lastModifiedAt": 1780000100000,
        "sourcePost": f"urn:li:activity:{a1}",
        "decoratedGeneratedActivity": {
            "comment": {
                "owner": "urn:li:person:stranger2",
                "text": "Congratulations",
                "entity": f"urn:li:comment:(urn:li:activity:{a1},{a1 + 7})",
                "object": f"urn:li:activity:{a1}",
            }
        },
        "action": "COMMENT",
        "organizationalEntity": ORGANIZATION,
        "notificationId": uuid.uuid4().int % 10**12,
    }
    await notify(http, comment)
    event_id = f"li-notification:{comment['notificationId']}"
    _, event = (await read_events(broker.address, "ripples.posts", {event_id}))[event_id]
    assert isinstance(event, PostEngagementEvent)
    assert (event.data.post_id, event.data.action) == (share, "comment")


async def test_a_pair_the_webhook_saw_resolves_without_asking_linkedin(
    http: httpx.AsyncClient, emulator: LinkedInEmulator
) -> None:
    activity, s = ids()
    share = f"urn:li:share:{s}"
    employee_id = await connected(http, emulator, [share])
    # A LIKE as LinkedIn sends it: sourcePost the activity, decoratedSourcePost.entity the share.
    await notify(
        http,
        {
            "subscriber": "urn:li:person:zLqTygBP8S",
            "lastModifiedAt": 1780000000000,
            "decoratedSourcePost": {
                "owner": ORGANIZATION,
                "mediaCategory": "NONE",
                "text": "Our post",
                "entity": share,
            },
            "sourcePost": f"urn:li:activity:{activity}",
            "action": "LIKE",
            "actor": "urn:li:person:liker1",
            "organizationalEntity": ORGANIZATION,
            "notificationId": uuid.uuid4().int % 10**12,
        },
    )
    emulator.dma = False  # the app has no DMA permission: LinkedIn is not needed for this one
    try:
        calls = len(dma_calls(emulator))
        response = await register(
            http, employee_id, f"https://www.linkedin.com/feed/update/urn:li:activity:{activity}"
        )
        assert response.status_code == 202, response.text
        assert response.json() == {"post_id": share}
        assert len(dma_calls(emulator)) == calls
    finally:
        emulator.dma = True


async def test_activities_linkedin_will_not_resolve_are_422_naming_url(
    http: httpx.AsyncClient, emulator: LinkedInEmulator
) -> None:
    reaction, opted_out, no_dma, others, down = (ids() for _ in range(5))
    theirs = f"urn:li:share:{others[1]}"
    emulator.activities |= {
        f"urn:li:activity:{reaction[0]}": None,  # 403: verb type not allowed
        f"urn:li:activity:{opted_out[0]}": "",  # domainEntity empty: the author opted out
        f"urn:li:activity:{no_dma[0]}": f"urn:li:share:{no_dma[1]}",
        f"urn:li:activity:{others[0]}": theirs,  # resolves, but not the employee's post
        f"urn:li:activity:{down[0]}": f"urn:li:share:{down[1]}",
    }
    employee_id = await connected(
        http, emulator, [f"urn:li:share:{no_dma[1]}", f"urn:li:share:{down[1]}"]
    )

    def url(pair: tuple[int, int]) -> str:
        return f"https://www.linkedin.com/feed/update/urn:li:activity:{pair[0]}/"

    async def refused(pair: tuple[int, int], kind: str) -> None:
        response = await register(http, employee_id, url(pair))
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"].endswith(kind), problem
        assert problem["errors"][0]["field"] == "url"
        if kind == "unresolvable-activity-url":
            assert "urn:li:share:" in problem["detail"]
            assert "urn:li:ugcPost:" in problem["detail"]

    await refused(reaction, "unresolvable-activity-url")
    await refused(opted_out, "unresolvable-activity-url")
    emulator.dma = False
    try:
        await refused(no_dma, "unresolvable-activity-url")
    finally:
        emulator.dma = True
    await refused(others, "not-own-post")

    # LinkedIn down: 503 with Retry-After, as for the other LinkedIn calls.
    emulator.activities_outage = 500
    try:
        response = await register(http, employee_id, url(down))
    finally:
        emulator.activities_outage = 0
    assert response.status_code == 503, response.text
    assert "retry-after" in response.headers
    # Neither refusal was remembered: with DMA granted the first one now registers.
    accepted = await register(http, employee_id, url(no_dma))
    assert accepted.status_code == 202, accepted.text
    assert accepted.json() == {"post_id": f"urn:li:share:{no_dma[1]}"}
