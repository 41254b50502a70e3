"""Attacks on the vendor webhooks, against the real ingest (real broker, real PostgreSQL).

Each vendor's scheme as its own page states it:
- LinkedIn, https://learn.microsoft.com/en-us/linkedin/shared/api-guide/webhook-validation:
  the validation ``GET ?challengeCode=…`` carries a "Randomly generated type-4 UUID string
  created by LinkedIn" and expects ``challengeResponse`` = hex HMAC-SHA256 of it keyed with
  the client secret; every notification carries ``X-LI-Signature``, the HMAC-SHA256 keyed
  with the client secret "of the JSON-encoded string representation of the POST body prefixed
  by hmacsha256=". That sentence reads two ways (the prefix on the header value, or on the
  signed message); both are accepted, each has a test here.
- Greenhouse, grnhse/greenhouse-api-docs source/includes/webhooks/_introduction.md:
  ``Signature: sha256 <hex HMAC-SHA256 of the body>``; ``Greenhouse-Event-ID`` is a header
  outside the signature.
- Lever, https://hire.lever.co/developer/documentation#webhooks: the body carries ``token``,
  ``triggeredAt`` (epoch milliseconds) and ``signature`` = hex HMAC-SHA256 of
  ``token + triggeredAt`` keyed with the webhook's signature token; ``id`` is not signed.
- Teamtailor: ``signature`` = Base64 of the hex HMAC-SHA256 of the ``payload`` member.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import Running
from tests.connectors.conftest import SECRETS, topic_events
from tests.connectors.test_ats import (
    count,
    greenhouse_application,
    greenhouse_hire,
    lever_delivery,
    post_greenhouse,
    teamtailor_body,
)

pytestmark = pytest.mark.integration

LINKEDIN = SECRETS["INGEST_LINKEDIN_CLIENT_SECRET"]
ORG = "urn:li:organization:2414183"


def hex_hmac(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def is_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


def linkedin_body(post: str, at: int = 1780000000000) -> bytes:
    """LinkedIn's documented organization social-action notification, one LIKE."""
    return orjson.dumps(
        {
            "type": "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS",
            "notifications": [
                {
                    "sourcePost": post,
                    "lastModifiedAt": at,
                    "organizationalEntity": ORG,
                    "action": "LIKE",
                    "actor": "urn:li:person:someone",
                    "notificationId": uuid.uuid4().int % 10**12,
                }
            ],
        }
    )


# --- LinkedIn: the challenge is no signing oracle ------------------------------------------


async def test_challenge_is_not_a_signing_oracle(http: httpx.AsyncClient) -> None:
    """Before: ``GET ?challengeCode=<any text>`` answered the HMAC of that text, so anyone could
    have a notification body signed (under the reading "HMAC of the body") and post it."""
    body = linkedin_body(f"urn:li:share:{uuid.uuid4().int % 10**12}")
    response = await http.get("/v1/webhooks/linkedin", params={"challengeCode": body.decode()})
    is_problem(response, 400)
    assert "challengeResponse" not in response.text
    # And so the forged notification it would have signed is refused.
    forged = await http.post(
        "/v1/webhooks/linkedin",
        content=body,
        headers={"X-LI-Signature": hex_hmac("not-the-secret", body)},
    )
    is_problem(forged, 401)


@pytest.mark.parametrize(
    "code",
    [
        "not-a-uuid",
        "hmacsha256=" + "0" * 64,
        "890e4665-4dfe-1ab1-b689-ed553bceeed0",  # a UUID, but version 1
        "890e4665-4dfe-4ab1-7689-ed553bceeed0",  # version 4, but not the RFC 4122 variant
        "890e4665-4dfe-4ab1-b689-ed553bceeed0\n",
        " 890e4665-4dfe-4ab1-b689-ed553bceeed0",
    ],
)
async def test_challenge_answers_only_a_type_4_uuid(http: httpx.AsyncClient, code: str) -> None:
    is_problem(await http.get("/v1/webhooks/linkedin", params={"challengeCode": code}), 400)


async def test_challenge_answers_linkedins_documented_example(http: httpx.AsyncClient) -> None:
    code = "890e4665-4dfe-4ab1-b689-ed553bceeed0"  # the example on LinkedIn's page
    response = await http.get("/v1/webhooks/linkedin", params={"challengeCode": code})
    assert response.status_code == 200
    assert response.json()["challengeResponse"] == hex_hmac(LINKEDIN, code.encode())


async def test_linkedin_signature_prefix_on_the_header(http: httpx.AsyncClient) -> None:
    """Reading 1: ``X-LI-Signature: hmacsha256=<hex HMAC of the body>``."""
    body = linkedin_body(f"urn:li:share:{uuid.uuid4().int % 10**12}")
    signature = "hmacsha256=" + hex_hmac(LINKEDIN, body)
    response = await http.post(
        "/v1/webhooks/linkedin", content=body, headers={"X-LI-Signature": signature}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "accepted"


async def test_linkedin_signature_prefix_on_the_signed_message(http: httpx.AsyncClient) -> None:
    """Reading 2: ``X-LI-Signature: <hex HMAC of "hmacsha256=" + body>``."""
    body = linkedin_body(f"urn:li:share:{uuid.uuid4().int % 10**12}")
    signature = hex_hmac(LINKEDIN, b"hmacsha256=" + body)
    response = await http.post(
        "/v1/webhooks/linkedin", content=body, headers={"X-LI-Signature": signature}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "accepted"


# --- replays --------------------------------------------------------------------------------


async def test_greenhouse_replay_with_a_new_event_id_is_a_duplicate(
    http: httpx.AsyncClient, broker: Running
) -> None:
    """Before: deduplicated on the unsigned ``Greenhouse-Event-ID`` header only, so one
    captured delivery replayed under a fresh header published the application again."""
    candidate = uuid.uuid4().int % 10**9
    document = greenhouse_application(candidate)
    first = str(uuid.uuid4())
    assert (await post_greenhouse(http, document, first)).json()["status"] == "accepted"
    replay_id = str(uuid.uuid4())
    replay = await post_greenhouse(http, document, replay_id)  # same body, same signature
    assert replay.status_code == 200, replay.text
    assert replay.json() == {"status": "duplicate", "events": 0}
    sentinel = str(uuid.uuid4())
    assert (await post_greenhouse(http, greenhouse_hire(candidate), sentinel)).status_code == 200
    events = await topic_events(
        broker.address, "ripples.applicants", until=frozenset({f"{sentinel}:0"})
    )
    assert count(events, f"{first}:0") == 1
    assert count(events, f"{replay_id}:0") == 0


async def test_lever_replay_with_a_new_id_is_a_duplicate(
    http: httpx.AsyncClient, broker: Running
) -> None:
    """Before: deduplicated on the unsigned body ``id``, so the same signed token replayed
    under a new ``id`` published the hire again."""
    opportunity = f"opp-{uuid.uuid4().hex[:8]}"
    hired = lever_delivery("candidateHired", opportunity)
    assert (await http.post("/v1/webhooks/lever", json=hired)).json()["status"] == "accepted"
    replay = {**hired, "id": str(uuid.uuid4())}  # token, triggeredAt, signature unchanged
    response = await http.post("/v1/webhooks/lever", json=replay)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "duplicate", "events": 0}
    sentinel = lever_delivery("candidateHired", opportunity)
    assert (await http.post("/v1/webhooks/lever", json=sentinel)).json()["status"] == "accepted"
    events = await topic_events(
        broker.address, "ripples.applicants", until=frozenset({f"{sentinel['id']}:0"})
    )
    assert count(events, f"{hired['id']}:0") == 1
    assert count(events, f"{replay['id']}:0") == 0


def lever_signed_at(triggered_at: int) -> dict[str, Any]:
    delivery = lever_delivery("candidateHired", f"opp-{uuid.uuid4().hex[:8]}")
    key = SECRETS["INGEST_LEVER_SIGNATURE_TOKEN"]
    delivery["triggeredAt"] = triggered_at
    delivery["signature"] = hex_hmac(key, f"{delivery['token']}{triggered_at}".encode())
    return delivery


@pytest.mark.parametrize(
    "age_s",
    [
        25 * 3600,  # older than the 24 h window: a captured delivery replayed a day later
        -3600,  # an hour in the future
    ],
)
async def test_lever_delivery_outside_the_window_is_refused(
    http: httpx.AsyncClient, age_s: int
) -> None:
    triggered_at = int((time.time() - age_s) * 1000)
    response = await http.post("/v1/webhooks/lever", json=lever_signed_at(triggered_at))
    is_problem(response, 401)
    assert "triggeredAt" in response.json()["detail"]


# --- non-ASCII and malformed signature headers ------------------------------------------------

NON_ASCII = "sha256 " + "é" * 64


async def test_non_ascii_greenhouse_signature_is_401(http: httpx.AsyncClient) -> None:
    """Before: ``hmac.compare_digest(str, str)`` raised TypeError → an unauthenticated 500."""
    body = orjson.dumps(greenhouse_application(1))
    response = await http.post(
        "/v1/webhooks/greenhouse",
        content=body,
        headers={"Signature": NON_ASCII.encode("latin-1"), "Content-Type": "application/json"},
    )
    is_problem(response, 401)


async def test_non_ascii_linkedin_signature_is_401(http: httpx.AsyncClient) -> None:
    body = linkedin_body("urn:li:share:1")
    response = await http.post(
        "/v1/webhooks/linkedin",
        content=body,
        headers={"X-LI-Signature": ("hmacsha256=" + "ÿ" * 64).encode("latin-1")},
    )
    is_problem(response, 401)


async def test_non_ascii_teamtailor_signature_is_401(http: httpx.AsyncClient) -> None:
    body = orjson.loads(teamtailor_body({"event_name": "job_application.create"}))
    body["signature"] = "ø" * 88
    response = await http.post("/v1/webhooks/teamtailor", content=orjson.dumps(body))
    is_problem(response, 401)


async def test_non_ascii_lever_signature_is_401(http: httpx.AsyncClient) -> None:
    delivery = lever_delivery("candidateHired", "opp-x")
    delivery["signature"] = "æ" * 64
    is_problem(await http.post("/v1/webhooks/lever", json=delivery), 401)


@pytest.mark.parametrize("escaped", [b"\\ud800", b"\\u00e9"])
async def test_non_ascii_lever_token_is_401(http: httpx.AsyncClient, escaped: bytes) -> None:
    """A lone surrogate or a non-ASCII character in the signed ``token``."""
    delivery = {**lever_delivery("candidateHired", "opp-x"), "token": "TOKEN"}
    body = orjson.dumps(delivery).replace(b"TOKEN", escaped)
    is_problem(await http.post("/v1/webhooks/lever", content=body), 401)


# --- absurd timestamps in signed bodies --------------------------------------------------------


@pytest.mark.parametrize(
    "applied_at",
    ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", 10**18, -(10**18), -1],
)
async def test_greenhouse_absurd_timestamp_is_422(
    http: httpx.AsyncClient, applied_at: object
) -> None:
    """Before: the year-1 time with an offset (no UTC equivalent) and epoch values out of
    range raised in the handler → 500."""
    document = greenhouse_application(uuid.uuid4().int % 10**9)
    document["payload"]["application"]["applied_at"] = applied_at
    response = await post_greenhouse(http, document, str(uuid.uuid4()))
    is_problem(response, 422)
    assert "applied_at" in response.json()["detail"]


@pytest.mark.parametrize("at", [10**18, 2**63 - 1, -1])
async def test_linkedin_absurd_timestamp_is_422(http: httpx.AsyncClient, at: int) -> None:
    body = linkedin_body(f"urn:li:share:{uuid.uuid4().int % 10**12}", at=at)
    response = await http.post(
        "/v1/webhooks/linkedin", content=body, headers={"X-LI-Signature": hex_hmac(LINKEDIN, body)}
    )
    is_problem(response, 422)
    assert "lastModifiedAt" in response.json()["detail"]


@pytest.mark.parametrize("triggered_at", [10**18, "0001-01-01T00:00:00+01:00", "soon"])
async def test_lever_absurd_triggered_at_is_refused(
    http: httpx.AsyncClient, triggered_at: object
) -> None:
    delivery = lever_delivery("candidateHired", "opp-x")
    key = SECRETS["INGEST_LEVER_SIGNATURE_TOKEN"]
    delivery["triggeredAt"] = triggered_at
    delivery["signature"] = hex_hmac(key, f"{delivery['token']}{triggered_at}".encode())
    response = await http.post("/v1/webhooks/lever", json=delivery)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_teamtailor_absurd_timestamp_is_422(http: httpx.AsyncClient) -> None:
    payload = {
        "event_name": "job_application.create",
        "data": {
            "id": "1",
            "type": "job-applications",
            "attributes": {"created-at": "0001-01-01T00:00:00+01:00"},
            "relationships": {
                "candidate": {"data": {"id": "c1", "type": "candidates"}},
                "job": {"data": {"id": "j1", "type": "jobs"}},
            },
        },
    }
    response = await http.post("/v1/webhooks/teamtailor", content=teamtailor_body(payload))
    is_problem(response, 422)


async def test_concurrent_replays_publish_once(http: httpx.AsyncClient, broker: Running) -> None:
    """The same signed Greenhouse body sent five times at once under five event ids: one is
    published, the others are duplicates (none may pass the dedup check before the first is
    recorded)."""
    candidate = uuid.uuid4().int % 10**9
    document = greenhouse_application(candidate)
    ids = [str(uuid.uuid4()) for _ in range(5)]
    answers = await asyncio.gather(*(post_greenhouse(http, document, i) for i in ids))
    statuses = sorted(a.json()["status"] for a in answers)
    assert statuses == ["accepted", "duplicate", "duplicate", "duplicate", "duplicate"], statuses
    sentinel = str(uuid.uuid4())
    assert (await post_greenhouse(http, greenhouse_hire(candidate), sentinel)).status_code == 200
    events = await topic_events(
        broker.address, "ripples.applicants", until=frozenset({f"{sentinel}:0"})
    )
    assert sum(count(events, f"{i}:0") for i in ids) == 1
