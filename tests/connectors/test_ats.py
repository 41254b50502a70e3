"""ATS webhooks against the real service: each vendor's documented sample payload, signed the
way the vendor signs it, becomes the contract event on Kafka; tampered or unsigned deliveries
get 401; a replayed delivery publishes nothing new; no applicant name, e-mail or phone leaves
ingest."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import orjson
import pytest

from services.ingest.ats import pseudonym
from shared.events import ApplicantAppliedEvent, ApplicantHiredEvent, Envelope
from tests.conftest import Running, read_events
from tests.connectors.conftest import (
    AUTH,
    SECRETS,
    VendorServer,
    seed_employee,
    state_dir,
    topic_events,
)

pytestmark = pytest.mark.integration

APPLICANT_SECRET = SECRETS["INGEST_APPLICANT_ID_SECRET"]
PERSONAL = ("John", "Locke", "john.locke@example.com", "555-0100", "Shane", "shane@example.com")


def hex_hmac(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def no_personal_data(events: list[Envelope]) -> None:
    for event in events:
        text = msgspec.json.encode(event).decode()
        for value in PERSONAL:
            assert value not in text


def count(events: list[Envelope], event_id: str) -> int:
    return sum(1 for e in events if e.id == event_id)


# --- Greenhouse ----------------------------------------------------------------------------


def greenhouse_application(candidate_id: int) -> dict[str, Any]:
    """Greenhouse's documented `new_candidate_application` sample, trimmed."""
    return {
        "action": "new_candidate_application",
        "payload": {
            "application": {
                "id": 71980812,
                "rejected_at": None,
                "prospect": False,
                "status": "active",
                "applied_at": "2026-06-05T12:56:05.244Z",
                "last_activity_at": "2026-06-05T12:56:05.244Z",
                "source": {"id": 2, "public_name": "Jobs page on your website"},
                "credited_to": {
                    "id": 4080,
                    "first_name": "Kate",
                    "last_name": "Austen",
                    "name": "Kate Austen",
                    "employee_id": None,
                    "email": "Kate.Austen@Example.com",
                },
                "current_stage": {"id": 767358, "name": "Application Review"},
                "jobs": [{"id": 107761, "name": "UX Designer - Boston", "status": "open"}],
                "candidate": {
                    "id": candidate_id,
                    "first_name": "John",
                    "last_name": "Locke",
                    "email_addresses": [{"value": "john.locke@example.com", "type": "personal"}],
                    "phone_numbers": [{"value": "555-0100", "type": "home"}],
                },
                "custom_fields": {
                    "ripples_ref": {
                        "name": "Ripples ref",
                        "type": "short_text",
                        "value": "GhRef0000001",
                    },
                    "ripples_vid": {
                        "name": "Ripples visitor",
                        "type": "short_text",
                        "value": "vid-greenhouse-0001",
                    },
                },
            }
        },
    }


def greenhouse_hire(candidate_id: int) -> dict[str, Any]:
    """Greenhouse's documented hire sample (`payload.application` + `payload.candidate`)."""
    return {
        "action": "hire_candidate",
        "payload": {
            "application": {
                "id": 71980812,
                "candidate_id": candidate_id,
                "applied_at": "2026-06-05T12:56:05.244Z",
                "last_activity_at": "2026-07-01T09:00:00Z",
                "status": "hired",
                "jobs": [{"id": 107761, "name": "UX Designer - Boston"}],
                "current_stage": {"id": 767358, "name": "Hired"},
            },
            "candidate": {"id": candidate_id, "first_name": "John", "last_name": "Locke"},
        },
    }


async def post_greenhouse(
    http: httpx.AsyncClient, document: dict[str, Any], event_id: str, signature: str | None = ""
) -> httpx.Response:
    body = orjson.dumps(document)
    headers = {"Content-Type": "application/json", "Greenhouse-Event-ID": event_id}
    if signature == "":
        signature = "sha256 " + hex_hmac(SECRETS["INGEST_GREENHOUSE_SECRET_KEY"], body)
    if signature is not None:
        headers["Signature"] = signature
    return await http.post("/v1/webhooks/greenhouse", content=body, headers=headers)


async def test_greenhouse_application_and_hire(
    http: httpx.AsyncClient, broker: Running, connectors: Running
) -> None:
    await seed_employee(http, "emp-kate", "kate.austen@example.com", None)
    candidate = 60304001
    event_id = str(uuid.uuid4())
    response = await post_greenhouse(http, greenhouse_application(candidate), event_id)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "accepted", "events": 1}

    found = await read_events(broker.address, "ripples.applicants", {f"{event_id}:0"})
    ((key, applied),) = found.values()
    assert isinstance(applied, ApplicantAppliedEvent)
    applicant = pseudonym(APPLICANT_SECRET, "greenhouse", str(candidate))
    assert key == applicant.encode()
    assert applied.source == "urn:ripples:ingest:greenhouse"
    assert applied.data.applicant_id == applicant
    assert applied.data.job_id == "107761"
    assert applied.data.applied_at == datetime(2026, 6, 5, 12, 56, 5, 244000, tzinfo=UTC)
    assert applied.data.referrer_employee_id == "emp-kate"  # by e-mail, case-insensitive
    assert applied.data.source == "Jobs page on your website"
    assert applied.data.link_code == "GhRef0000001"
    assert applied.data.visitor_id == "vid-greenhouse-0001"

    hire_id = str(uuid.uuid4())
    response = await post_greenhouse(http, greenhouse_hire(candidate), hire_id)
    assert response.status_code == 200, response.text
    found = await read_events(broker.address, "ripples.applicants", {f"{hire_id}:0"})
    ((_, hired),) = found.values()
    assert isinstance(hired, ApplicantHiredEvent)
    assert hired.data.applicant_id == applicant  # the same pseudonym for the same candidate
    assert hired.data.job_id == "107761"
    assert hired.data.hired_at == datetime(2026, 7, 1, 9, tzinfo=UTC)

    no_personal_data(await topic_events(broker.address, "ripples.applicants"))
    log = (state_dir(connectors) / "logs" / "ingest.log").read_text()
    for value in PERSONAL:
        assert value not in log


async def test_greenhouse_replay_publishes_nothing_new(
    http: httpx.AsyncClient, broker: Running
) -> None:
    event_id = str(uuid.uuid4())
    document = greenhouse_application(60304002)
    assert (await post_greenhouse(http, document, event_id)).status_code == 200
    await read_events(broker.address, "ripples.applicants", {f"{event_id}:0"})

    replay = await post_greenhouse(http, document, event_id)
    assert replay.status_code == 200
    assert replay.json() == {"status": "duplicate", "events": 0}
    # A sentinel for the same applicant (same partition) after the replay: read up to it.
    sentinel = str(uuid.uuid4())
    assert (await post_greenhouse(http, greenhouse_hire(60304002), sentinel)).status_code == 200
    events = await topic_events(
        broker.address, "ripples.applicants", until=frozenset({f"{sentinel}:0"})
    )
    assert count(events, f"{event_id}:0") == 1


@pytest.mark.parametrize(
    "signature",
    [None, "sha256 " + "0" * 64, "sha1 abc", "sha256", "garbage"],
)
async def test_greenhouse_bad_signatures_are_refused(
    http: httpx.AsyncClient, broker: Running, signature: str | None
) -> None:
    event_id = str(uuid.uuid4())
    response = await post_greenhouse(http, greenhouse_application(1), event_id, signature)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    sentinel = str(uuid.uuid4())
    hire = greenhouse_hire(1)  # the same applicant (partition); a new body, so not a replay
    hire["payload"]["application"]["id"] = uuid.uuid4().int % 10**9
    assert (await post_greenhouse(http, hire, sentinel)).json()["status"] == "accepted"
    events = await topic_events(
        broker.address, "ripples.applicants", until=frozenset({f"{sentinel}:0"})
    )
    assert count(events, f"{event_id}:0") == 0


async def test_greenhouse_tampered_body_is_refused(http: httpx.AsyncClient) -> None:
    document = greenhouse_application(2)
    body = orjson.dumps(document)
    signature = "sha256 " + hex_hmac(SECRETS["INGEST_GREENHOUSE_SECRET_KEY"], body)
    tampered = body.replace(b"107761", b"999999")
    response = await http.post(
        "/v1/webhooks/greenhouse",
        content=tampered,
        headers={"Signature": signature, "Content-Type": "application/json"},
    )
    assert response.status_code == 401


async def test_greenhouse_ping_and_other_actions_are_ignored(http: httpx.AsyncClient) -> None:
    response = await post_greenhouse(http, {"action": "ping"}, str(uuid.uuid4()))
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"


# --- Teamtailor ----------------------------------------------------------------------------


def teamtailor_body(payload: dict[str, Any], key: str | None = None) -> bytes:
    """Teamtailor's company-webhook body: `payload` and its Base64 hex-HMAC `signature`."""
    raw = orjson.dumps(payload)
    digest = hex_hmac(key or SECRETS["INGEST_TEAMTAILOR_SIGNATURE_KEY"], raw)
    signature = base64.b64encode(digest.encode()).decode()
    return b'{"payload":' + raw + b',"signature":"' + signature.encode() + b'"}'


def teamtailor_application(application_id: str, candidate_id: str) -> dict[str, Any]:
    return {
        "event_name": "job_application.create",
        "data": {
            "id": application_id,
            "type": "job-applications",
            "attributes": {
                "cover-letter": "Dear John Locke …",
                "created-at": "2026-06-06T10:10:13.611+02:00",
                "referring-site": "careers.example.com",
                "referring-url": "https://careers.example.com/jobs/7?ripples_ref=TtRef0000001"
                "&ripples_vid=vid-teamtailor-0001&utm_source=linkedin",
                "sourced": False,
                "updated-at": "2026-06-06T10:10:13.611+02:00",
            },
            "relationships": {
                "candidate": {"data": {"id": candidate_id, "type": "candidates"}},
                "job": {"data": {"id": "2", "type": "jobs"}},
                "stage": {"data": {"id": "11", "type": "stages"}},
            },
        },
    }


def teamtailor_hired(application_id: str, candidate_id: str) -> dict[str, Any]:
    payload = teamtailor_application(application_id, candidate_id)
    payload["event_name"] = "job_application.update"
    payload["data"]["attributes"]["changed-stage-at"] = "2026-07-02T08:00:00+02:00"
    payload["data"]["relationships"]["stage"] = {"data": {"id": "15", "type": "stages"}}
    payload["included"] = [
        {"id": "15", "type": "stages", "attributes": {"name": "Hired", "stage-type": "hired"}}
    ]
    return payload


async def test_teamtailor_application_and_hire(http: httpx.AsyncClient, broker: Running) -> None:
    application = str(uuid.uuid4())
    body = teamtailor_body(teamtailor_application(application, "cand-77"))
    response = await http.post(
        "/v1/webhooks/teamtailor", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    (applied,) = [
        e
        for e in await topic_events(broker.address, "ripples.applicants")
        if e.source == "urn:ripples:ingest:teamtailor"
        and isinstance(e, ApplicantAppliedEvent)
        and e.id.startswith(hashlib.sha256(body[11 : body.rindex(b',"signature"')]).hexdigest())
    ]
    assert isinstance(applied, ApplicantAppliedEvent)
    assert applied.data.applicant_id == pseudonym(APPLICANT_SECRET, "teamtailor", "cand-77")
    assert applied.data.job_id == "2"
    assert applied.data.link_code == "TtRef0000001"
    assert applied.data.visitor_id == "vid-teamtailor-0001"
    assert applied.data.source == "careers.example.com"

    hired_body = teamtailor_body(teamtailor_hired(application, "cand-77"))
    response = await http.post(
        "/v1/webhooks/teamtailor", content=hired_body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "accepted", "events": 1}
    replay = await http.post(
        "/v1/webhooks/teamtailor", content=hired_body, headers={"Content-Type": "application/json"}
    )
    assert replay.json() == {"status": "duplicate", "events": 0}
    sentinel = teamtailor_application(str(uuid.uuid4()), "cand-77")
    response = await http.post("/v1/webhooks/teamtailor", content=teamtailor_body(sentinel))
    assert response.status_code == 200
    sentinel_id = hashlib.sha256(orjson.dumps(sentinel)).hexdigest() + ":0"
    hires = [
        e
        for e in await topic_events(
            broker.address, "ripples.applicants", until=frozenset({sentinel_id})
        )
        if isinstance(e, ApplicantHiredEvent)
        and e.data.applicant_id == pseudonym(APPLICANT_SECRET, "teamtailor", "cand-77")
    ]
    assert len(hires) == 1
    assert hires[0].data.hired_at == datetime(2026, 7, 2, 6, tzinfo=UTC)


async def test_teamtailor_replay_publishes_nothing_new(
    http: httpx.AsyncClient, broker: Running
) -> None:
    """Teamtailor retries a delivery with the same payload and signature: the second one is
    a duplicate (the delivery id is the payload's hash) and publishes nothing."""
    candidate = f"cand-{uuid.uuid4().hex[:8]}"
    payload = teamtailor_application(str(uuid.uuid4()), candidate)
    body = teamtailor_body(payload)
    event_id = hashlib.sha256(orjson.dumps(payload)).hexdigest() + ":0"
    response = await http.post("/v1/webhooks/teamtailor", content=body)
    assert response.json() == {"status": "accepted", "events": 1}
    await read_events(broker.address, "ripples.applicants", {event_id})

    replay = await http.post("/v1/webhooks/teamtailor", content=body)
    assert replay.status_code == 200
    assert replay.json() == {"status": "duplicate", "events": 0}
    # A sentinel for the same applicant (same partition) after the replay: read up to it.
    sentinel = teamtailor_application(str(uuid.uuid4()), candidate)
    assert (
        await http.post("/v1/webhooks/teamtailor", content=teamtailor_body(sentinel))
    ).json() == {"status": "accepted", "events": 1}
    sentinel_id = hashlib.sha256(orjson.dumps(sentinel)).hexdigest() + ":0"
    events = await topic_events(
        broker.address, "ripples.applicants", until=frozenset({sentinel_id})
    )
    assert count(events, event_id) == 1


async def test_teamtailor_stage_change_that_is_not_a_hire_is_ignored(
    http: httpx.AsyncClient,
) -> None:
    payload = teamtailor_hired(str(uuid.uuid4()), "cand-78")
    payload["included"][0]["attributes"]["stage-type"] = "interview"
    response = await http.post("/v1/webhooks/teamtailor", content=teamtailor_body(payload))
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"


async def test_teamtailor_bad_signatures_are_refused(http: httpx.AsyncClient) -> None:
    payload = teamtailor_application(str(uuid.uuid4()), "cand-79")
    wrong_key = teamtailor_body(payload, key="not-the-key")
    tampered = teamtailor_body(payload).replace(b"cand-79", b"cand-80")
    unsigned = b'{"payload":' + orjson.dumps(payload) + b"}"
    for body in (wrong_key, tampered, unsigned, b"not json"):
        response = await http.post("/v1/webhooks/teamtailor", content=body)
        assert response.status_code == 401, body[:40]


# --- Lever ---------------------------------------------------------------------------------


def lever_delivery(event: str, opportunity: str, token: str | None = None) -> dict[str, Any]:
    """Lever's documented webhook body, signed: HMAC-SHA256(token + triggeredAt), triggered
    now (ingest refuses a ``triggeredAt`` outside its replay window)."""
    triggered_at = int(time.time() * 1000)
    token = token or uuid.uuid4().hex
    data: dict[str, Any] = {
        "opportunityId": opportunity,
        "candidateId": opportunity,
        "contactId": "c-1",
    }
    if event == "applicationCreated":
        data["applicationId"] = "app-lever-1"
    else:
        data.update({"fromStageId": "offer", "toStageId": "hired"})
    return {
        "id": str(uuid.uuid4()),
        "event": event,
        "triggeredAt": triggered_at,
        "token": token,
        "signature": hex_hmac(
            SECRETS["INGEST_LEVER_SIGNATURE_TOKEN"], f"{token}{triggered_at}".encode()
        ),
        "data": data,
    }


async def test_lever_application_and_hire(
    http: httpx.AsyncClient, broker: Running, lever_api: VendorServer
) -> None:
    created = lever_delivery("applicationCreated", "opp-lever-1")
    response = await http.post("/v1/webhooks/lever", json=created)
    assert response.status_code == 200, response.text
    ((_, applied),) = (
        await read_events(broker.address, "ripples.applicants", {f"{created['id']}:0"})
    ).values()
    assert isinstance(applied, ApplicantAppliedEvent)
    assert applied.data.applicant_id == pseudonym(APPLICANT_SECRET, "lever", "opp-lever-1")
    assert applied.data.job_id == "posting-lever-9"
    assert applied.data.source == "Company website"
    assert applied.data.link_code == "LvRef0000001"
    assert applied.data.visitor_id == "vid-lever-0000000001"
    # The opportunity was read from the (local) Lever API with the API key.
    seen = lever_api.requests[-1]
    assert seen.path == "/v1/opportunities/opp-lever-1"
    assert seen.query == {"expand": ["applications"]}

    hired = lever_delivery("candidateHired", "opp-lever-1")
    response = await http.post("/v1/webhooks/lever", json=hired)
    assert response.status_code == 200, response.text
    ((_, event),) = (
        await read_events(broker.address, "ripples.applicants", {f"{hired['id']}:0"})
    ).values()
    assert isinstance(event, ApplicantHiredEvent)
    assert event.data.hired_at == datetime.fromtimestamp(hired["triggeredAt"] / 1000, UTC)

    calls = len(lever_api.requests)
    replay = await http.post("/v1/webhooks/lever", json=hired)
    assert replay.json() == {"status": "duplicate", "events": 0}
    assert len(lever_api.requests) == calls  # a redelivery does not ask Lever again
    sentinel = lever_delivery("applicationCreated", "opp-lever-1")
    assert (await http.post("/v1/webhooks/lever", json=sentinel)).status_code == 200
    events = await topic_events(
        broker.address, "ripples.applicants", until=frozenset({f"{sentinel['id']}:0"})
    )
    assert count(events, f"{hired['id']}:0") == 1
    no_personal_data(events)


async def test_lever_replay_publishes_nothing_new(
    http: httpx.AsyncClient, broker: Running, lever_api: VendorServer
) -> None:
    """Lever redelivers a webhook with the same id, token and signature: the second one is
    a duplicate, publishes nothing and does not ask Lever's API again."""
    opportunity = f"opp-{uuid.uuid4().hex[:8]}"
    created = lever_delivery("applicationCreated", opportunity)
    response = await http.post("/v1/webhooks/lever", json=created)
    assert response.json() == {"status": "accepted", "events": 1}
    await read_events(broker.address, "ripples.applicants", {f"{created['id']}:0"})

    calls = len(lever_api.requests)
    replay = await http.post("/v1/webhooks/lever", json=created)
    assert replay.status_code == 200
    assert replay.json() == {"status": "duplicate", "events": 0}
    assert len(lever_api.requests) == calls
    # A sentinel for the same opportunity (same partition) after the replay: read up to it.
    sentinel = lever_delivery("candidateHired", opportunity)
    assert (await http.post("/v1/webhooks/lever", json=sentinel)).json()["status"] == "accepted"
    events = await topic_events(
        broker.address, "ripples.applicants", until=frozenset({f"{sentinel['id']}:0"})
    )
    assert count(events, f"{created['id']}:0") == 1


async def test_lever_bad_signatures_are_refused(http: httpx.AsyncClient) -> None:
    good = lever_delivery("applicationCreated", "opp-lever-2")
    forged = copy.deepcopy(good)
    forged["signature"] = hex_hmac("someone-else", f"{good['token']}{good['triggeredAt']}".encode())
    replayed_token = copy.deepcopy(good)
    replayed_token["triggeredAt"] = good["triggeredAt"] + 1
    unsigned = {k: v for k, v in good.items() if k != "signature"}
    for body in (forged, replayed_token, unsigned):
        response = await http.post("/v1/webhooks/lever", json=body)
        assert response.status_code == 401


async def test_a_removed_employee_is_no_longer_a_referrer(
    http: httpx.AsyncClient, broker: Running
) -> None:
    await seed_employee(http, "emp-leaver", "leaver@example.com", None)
    removed = {
        "specversion": "1.0",
        "id": f"hr-{uuid.uuid4()}",
        "source": "urn:test:hr",
        "type": "ripples.employee.removed.v1",
        "time": "2026-06-02T08:00:00Z",
        "data": {"employee_id": "emp-leaver"},
    }
    response = await http.post(
        "/v1/events",
        content=orjson.dumps(removed),
        headers={**AUTH, "Content-Type": "application/cloudevents+json"},
    )
    assert response.status_code == 202
    document = greenhouse_application(60304009)
    document["payload"]["application"]["credited_to"]["email"] = "leaver@example.com"
    event_id = str(uuid.uuid4())
    assert (await post_greenhouse(http, document, event_id)).status_code == 200
    ((_, applied),) = (
        await read_events(broker.address, "ripples.applicants", {f"{event_id}:0"})
    ).values()
    assert isinstance(applied, ApplicantAppliedEvent)
    assert applied.data.referrer_employee_id is None
