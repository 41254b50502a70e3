"""ATS webhooks against the real service: each vendor's documented sample payload, signed the
way the vendor signs it, becomes the contract event on Kafka; tampered or unsigned deliveries
get 401; a replayed delivery publishes nothing new; no applicant name, e-mail or phone leaves
ingest.

Vendor documents followed (see also tests/connectors/fixtures/README.md):
- Greenhouse webhooks: https://developers.greenhouse.io/webhooks.html (source:
  grnhse/greenhouse-api-docs, source/includes/webhooks/): `new_candidate_application`,
  `hire_candidate` ("application.offer.resolved_at: Date the offer was accepted"), the
  `Signature: sha256 <hex HMAC-SHA256 of the body>` header.
- Teamtailor company webhooks: https://partner.teamtailor.com/company_webhooks (payload
  `{"payload": {"event_name", "data": {"id", "type", "attributes"}}, "signature"}`, no
  relationships); Teamtailor API: https://docs.teamtailor.com/ (JSON:API,
  `Authorization: Token token=…`, `X-Api-Version`, `GET /v1/job-applications/{id}` with
  `include`).
- Lever: https://hire.lever.co/developer/documentation (Webhooks: `candidateHired`,
  `applicationCreated`, signature over `token + triggeredAt`; Opportunities: `applications[]
  .posting`, `archived.archivedAt`; Rate limits: "We recommend retrying using exponential
  backoff")."""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.ingest.ats import pseudonym
from shared import sealing
from shared.events import ApplicantAppliedEvent, ApplicantHiredEvent, Envelope
from tests.conftest import Running
from tests.connectors.conftest import (
    AUTH,
    LEVER_ARCHIVED,
    SECRETS,
    TEAMTAILOR_API_KEY,
    TEAMTAILOR_APPLICATIONS,
    VendorServer,
    read_events,
    seed_employee,
    state_dir,
    teamtailor_document,
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


FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


async def raw_records(bootstrap: str, topic: str, until: set[str]) -> list[bytes]:
    """Every record on ``topic`` as raw bytes (key, value, header names and values), read at
    least until the records whose ``ce_id`` header is in ``until`` were seen."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[bytes] = []
        seen: set[str] = set()
        async with asyncio.timeout(20):
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]] or (
                until - seen
            ):
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for record in records:
                        headers = b"".join(k.encode() + b"=" + v for k, v in record.headers)
                        found.append((record.key or b"") + (record.value or b"") + headers)
                        seen.update(v.decode() for k, v in record.headers if k == "ce_id")
        return found
    finally:
        await consumer.stop()


def assert_absent(records: list[bytes], values: tuple[str, ...]) -> None:
    for record in records:
        for value in values:
            assert value.encode() not in record, f"{value!r} was published"


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
    """Greenhouse's hire sample, trimmed: the hire time is `application.offer.resolved_at`
    ("Date the offer was accepted"), not `last_activity_at`."""
    return {
        "action": "hire_candidate",
        "payload": {
            "application": {
                "id": 71980812,
                "candidate_id": candidate_id,
                "applied_at": "2026-06-05T12:56:05.244Z",
                "last_activity_at": "2026-07-03T10:00:00Z",
                "status": "hired",
                "jobs": [{"id": 107761, "name": "UX Designer - Boston"}],
                "current_stage": {"id": 767358, "name": "Hired"},
                "offer": {"id": 506409, "resolved_at": "2026-07-01T09:00:00Z"},
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
    # on the topic the applicant is their kid (the record key); the pseudonym is sealed
    assert sealing.is_kid(key.decode())
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
    ((hire_key, hired),) = found.values()
    assert hire_key == key  # one applicant, one kid, one partition
    assert isinstance(hired, ApplicantHiredEvent)
    assert hired.data.applicant_id == applicant  # the same pseudonym for the same candidate
    assert hired.data.job_id == "107761"
    assert hired.data.hired_at == datetime(2026, 7, 1, 9, tzinfo=UTC)

    no_personal_data(await topic_events(broker.address, "ripples.applicants"))
    log = (state_dir(connectors) / "logs" / "ingest.log").read_text()
    for value in PERSONAL:
        assert value not in log


# The candidate's (and the crediting employee's) personal data in the documented examples.
GREENHOUSE_PERSONAL = (
    "Jane",
    "Johnny",
    "Smith",
    "person@work.com",
    "person@example.com",
    "personal@example.com",
    "work@example.com",
    "555-555-5555",
    "518-555-1212",
    "212-555-1212",
    "123 Test Street",
    "455 Broadway",
    "test123@example.com",
    "bob_johnson",
    "Greenhouse Admin",
)


async def test_greenhouse_documented_examples(
    http: httpx.AsyncClient, broker: Running, connectors: Running
) -> None:
    """Greenhouse's own `new_candidate_application` and `hire_candidate` examples (fixtures,
    verbatim apart from what makes the hire example JSON) become the right events, and none of
    the candidate's name, e-mail addresses or phone numbers is in any published record."""
    await seed_employee(http, "123ABC", None, None)  # credited_to.employee_id of the example
    applied_id, hired_id = str(uuid.uuid4()), str(uuid.uuid4())
    response = await post_greenhouse(
        http, fixture("greenhouse_new_candidate_application.json"), applied_id
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "accepted", "events": 1}
    response = await post_greenhouse(http, fixture("greenhouse_hire_candidate.json"), hired_id)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "accepted", "events": 1}

    found = await read_events(
        broker.address, "ripples.applicants", {f"{applied_id}:0", f"{hired_id}:0"}
    )
    _, applied = found[f"{applied_id}:0"]
    assert isinstance(applied, ApplicantAppliedEvent)
    assert applied.type == "ripples.applicant.applied.v1"
    assert applied.data.applicant_id == pseudonym(APPLICANT_SECRET, "greenhouse", "60304594")
    assert applied.data.job_id == "274075"
    assert applied.data.applied_at == datetime(2017, 10, 27, 14, 44, 43, tzinfo=UTC)
    assert applied.data.source == "LinkedIn (Prospecting)"  # application.source.name
    assert applied.data.referrer_employee_id == "123ABC"
    assert applied.data.link_code is None
    assert applied.data.visitor_id is None
    _, hired = found[f"{hired_id}:0"]
    assert isinstance(hired, ApplicantHiredEvent)
    assert hired.type == "ripples.applicant.hired.v1"
    assert hired.data.applicant_id == pseudonym(APPLICANT_SECRET, "greenhouse", "35897443")
    assert hired.data.job_id == "323753"
    # application.offer.resolved_at, "Date the offer was accepted"
    assert hired.data.hired_at == datetime(2014, 11, 20, 22, 49, 14, tzinfo=UTC)

    records = await raw_records(
        broker.address, "ripples.applicants", {f"{applied_id}:0", f"{hired_id}:0"}
    )
    assert_absent(records, GREENHOUSE_PERSONAL)
    log = (state_dir(connectors) / "logs" / "ingest.log").read_text()
    for value in GREENHOUSE_PERSONAL:
        assert value not in log


async def test_greenhouse_hire_without_an_offer_is_hired_when_received(
    http: httpx.AsyncClient, broker: Running
) -> None:
    """Without `application.offer.resolved_at` the receipt time is the best there is."""
    document = fixture("greenhouse_hire_candidate.json")
    del document["payload"]["application"]["offer"]
    document["payload"]["application"]["id"] = 46194063  # not the body of another test
    event_id = str(uuid.uuid4())
    before = datetime.now(UTC)
    assert (await post_greenhouse(http, document, event_id)).status_code == 200
    after = datetime.now(UTC)
    ((_, hired),) = (
        await read_events(broker.address, "ripples.applicants", {f"{event_id}:0"})
    ).values()
    assert isinstance(hired, ApplicantHiredEvent)
    assert before <= hired.data.hired_at <= after


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


# --- Teamtailor: the documented webhook carries no relationships; the API completes it ------

TEAMTAILOR_PERSONAL = ("Ingrid", "Teamtailorsen", "ingrid@example.com", "+45 12 34 56 78")


def teamtailor_documented(event: str, application_id: str) -> dict[str, Any]:
    """A job-application webhook in the shape of Teamtailor's documented example (fixture
    `teamtailor_company_webhook.json`): `event_name` and `data` with `id`, `type` and
    `attributes` only, no `relationships` and no `included`."""
    payload: dict[str, Any] = fixture("teamtailor_company_webhook.json")["payload"]
    payload["event_name"] = event
    payload["data"] = {
        "id": application_id,
        "type": "job-applications",
        "attributes": {
            "created-at": "2026-06-06T10:10:13.611+02:00",
            "updated-at": "2026-06-06T10:10:13.611+02:00",
            "sourced": False,
        },
    }
    return payload


def register_teamtailor(application_id: str, candidate_id: str, hired: bool) -> None:
    stage = ("15", "Hired", "hired") if hired else ("11", "Inbox", "inbox")
    TEAMTAILOR_APPLICATIONS[application_id] = teamtailor_document(
        application_id,
        candidate_id,
        "42",
        stage,
        {
            "cover-letter": None,
            "created-at": "2026-06-06T10:10:13.611+02:00",
            "updated-at": "2026-07-02T08:00:00.000+02:00",
            "changed-stage-at": "2026-07-02T08:00:00.000+02:00",
            "referring-site": "careers.example.com",
            "referring-url": "https://careers.example.com/jobs/42?ripples_ref=TtRef0000042"
            "&ripples_vid=vid-teamtailor-0042",
            "rejected-at": None,
            "sourced": False,
        },
    )


async def post_teamtailor(http: httpx.AsyncClient, payload: dict[str, Any]) -> httpx.Response:
    return await http.post(
        "/v1/webhooks/teamtailor",
        content=teamtailor_body(payload),
        headers={"Content-Type": "application/json"},
    )


def teamtailor_event_id(payload: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(payload)).hexdigest() + ":0"


async def test_teamtailor_documented_example_is_verified_and_ignored(
    http: httpx.AsyncClient,
) -> None:
    """The documented example itself (a `job.update`), re-signed with the test key."""
    response = await post_teamtailor(http, fixture("teamtailor_company_webhook.json")["payload"])
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ignored", "events": 0}


async def test_teamtailor_without_relationships_reads_the_api(
    http: httpx.AsyncClient, broker: Running, connectors: Running, teamtailor_api: VendorServer
) -> None:
    application, candidate = str(uuid.uuid4().int % 10**8), f"tt-{uuid.uuid4().hex[:8]}"
    register_teamtailor(application, candidate, hired=False)
    created = teamtailor_documented("job_application.create", application)
    response = await post_teamtailor(http, created)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "accepted", "events": 1}
    seen = teamtailor_api.requests[-1]
    assert seen.path == f"/v1/job-applications/{application}"
    assert seen.query == {"include": ["candidate,job,stage"]}
    assert seen.headers["authorization"] == f"Token token={TEAMTAILOR_API_KEY}"
    assert seen.headers["x-api-version"] == "20240404"

    register_teamtailor(application, candidate, hired=True)  # moved to the hired stage
    updated = teamtailor_documented("job_application.update", application)
    updated["data"]["attributes"]["updated-at"] = "2026-07-02T08:00:00.000+02:00"
    response = await post_teamtailor(http, updated)
    assert response.json() == {"status": "accepted", "events": 1}
    calls = len(teamtailor_api.requests)
    replay = await post_teamtailor(http, updated)
    assert replay.json() == {"status": "duplicate", "events": 0}
    assert len(teamtailor_api.requests) == calls  # a redelivery does not ask Teamtailor again

    ids = {teamtailor_event_id(created), teamtailor_event_id(updated)}
    found = await read_events(broker.address, "ripples.applicants", ids)
    _, applied = found[teamtailor_event_id(created)]
    assert isinstance(applied, ApplicantAppliedEvent)
    applicant = pseudonym(APPLICANT_SECRET, "teamtailor", candidate)
    assert applied.data.applicant_id == applicant
    assert applied.data.job_id == "42"
    assert applied.data.applied_at == datetime(2026, 6, 6, 8, 10, 13, 611000, tzinfo=UTC)
    assert applied.data.source == "careers.example.com"
    assert applied.data.link_code == "TtRef0000042"
    assert applied.data.visitor_id == "vid-teamtailor-0042"
    _, hired = found[teamtailor_event_id(updated)]
    assert isinstance(hired, ApplicantHiredEvent)
    assert hired.data.applicant_id == applicant
    assert hired.data.job_id == "42"
    assert hired.data.hired_at == datetime(2026, 7, 2, 6, tzinfo=UTC)
    assert_absent(await raw_records(broker.address, "ripples.applicants", ids), TEAMTAILOR_PERSONAL)
    log = (state_dir(connectors) / "logs" / "ingest.log").read_text()
    for value in (*TEAMTAILOR_PERSONAL, TEAMTAILOR_API_KEY):
        assert value not in log


async def test_teamtailor_api_down_answers_503_and_publishes_nothing(
    http: httpx.AsyncClient, broker: Running, teamtailor_api: VendorServer
) -> None:
    """Every attempt fails: 503 with Retry-After (Teamtailor redelivers), never a 500, nothing
    published or remembered; the redelivery after the API is back publishes exactly once."""
    application, candidate = str(uuid.uuid4().int % 10**8), f"tt-{uuid.uuid4().hex[:8]}"
    register_teamtailor(application, candidate, hired=False)
    payload = teamtailor_documented("job_application.create", application)
    calls = len(teamtailor_api.requests)
    teamtailor_api.script[:] = [(500, {}, {"errors": [{"status": "500"}]})] * 3
    try:
        response = await post_teamtailor(http, payload)
    finally:
        teamtailor_api.script.clear()
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert len(teamtailor_api.requests) - calls == 3  # INGEST_VENDOR_ATTEMPTS, bounded

    redelivery = await post_teamtailor(http, payload)
    assert redelivery.json() == {"status": "accepted", "events": 1}
    event_id = teamtailor_event_id(payload)
    sentinel = teamtailor_documented("job_application.create", application)
    sentinel["data"]["attributes"]["updated-at"] = "2026-06-07T00:00:00Z"
    assert (await post_teamtailor(http, sentinel)).json()["status"] == "accepted"
    events = await topic_events(
        broker.address, "ripples.applicants", until=frozenset({teamtailor_event_id(sentinel)})
    )
    assert count(events, event_id) == 1


async def test_teamtailor_429_retry_after_is_waited_out(
    http: httpx.AsyncClient, teamtailor_api: VendorServer
) -> None:
    application = str(uuid.uuid4().int % 10**8)
    register_teamtailor(application, f"tt-{uuid.uuid4().hex[:8]}", hired=False)
    calls = len(teamtailor_api.requests)
    teamtailor_api.script[:] = [(429, {"Retry-After": "1"}, {"errors": [{"status": "429"}]})]
    try:
        response = await post_teamtailor(
            http, teamtailor_documented("job_application.create", application)
        )
    finally:
        teamtailor_api.script.clear()
    assert response.json() == {"status": "accepted", "events": 1}
    first, second = teamtailor_api.requests[calls:]
    assert second.at - first.at >= 0.95  # Retry-After: 1, not the 0.1 s backoff


async def test_teamtailor_long_retry_after_is_passed_on(
    http: httpx.AsyncClient, teamtailor_api: VendorServer
) -> None:
    """A Retry-After longer than INGEST_VENDOR_MAX_WAIT_S is not waited out in the request:
    the webhook answers 503 with that Retry-After, after one call."""
    application = str(uuid.uuid4().int % 10**8)
    register_teamtailor(application, f"tt-{uuid.uuid4().hex[:8]}", hired=False)
    calls = len(teamtailor_api.requests)
    teamtailor_api.script[:] = [(429, {"Retry-After": "120"}, {"errors": [{"status": "429"}]})]
    try:
        response = await post_teamtailor(
            http, teamtailor_documented("job_application.create", application)
        )
    finally:
        teamtailor_api.script.clear()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "120"
    assert len(teamtailor_api.requests) - calls == 1


async def test_teamtailor_application_gone_is_ignored(http: httpx.AsyncClient) -> None:
    """The API answers 404 (the application was deleted before it was read): nothing to
    count, and no retry storm."""
    payload = teamtailor_documented("job_application.create", "99999999999")
    response = await post_teamtailor(http, payload)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ignored", "events": 0}


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


async def test_lever_hire_time_is_when_the_opportunity_was_archived_as_hired(
    http: httpx.AsyncClient, broker: Running, lever_api: VendorServer
) -> None:
    opportunity = f"opp-{uuid.uuid4().hex[:8]}"
    LEVER_ARCHIVED[opportunity] = {"archivedAt": 1780500000000, "reason": "hired-reason"}
    hired = lever_delivery("candidateHired", opportunity)
    response = await http.post("/v1/webhooks/lever", json=hired)
    assert response.status_code == 200, response.text
    ((_, event),) = (
        await read_events(broker.address, "ripples.applicants", {f"{hired['id']}:0"})
    ).values()
    assert isinstance(event, ApplicantHiredEvent)
    assert event.data.job_id == "posting-lever-9"  # applications[].posting
    assert event.data.hired_at == datetime.fromtimestamp(1780500000, UTC)


async def test_lever_api_rate_limit_and_outage(
    http: httpx.AsyncClient, broker: Running, lever_api: VendorServer
) -> None:
    """A 429 is retried after its Retry-After; an API that keeps failing gets the webhook a
    503 with Retry-After after a bounded number of attempts, and nothing is published."""
    opportunity = f"opp-{uuid.uuid4().hex[:8]}"
    calls = len(lever_api.requests)
    lever_api.script[:] = [(429, {"Retry-After": "1"}, {"code": "TooManyRequests"})]
    try:
        response = await http.post(
            "/v1/webhooks/lever", json=lever_delivery("applicationCreated", opportunity)
        )
    finally:
        lever_api.script.clear()
    assert response.json() == {"status": "accepted", "events": 1}
    first, second = lever_api.requests[calls:]
    assert second.at - first.at >= 0.95

    failing = lever_delivery("candidateHired", opportunity)
    calls = len(lever_api.requests)
    lever_api.script[:] = [(503, {}, {"code": "ServiceUnavailable"})] * 3
    try:
        response = await http.post("/v1/webhooks/lever", json=failing)
    finally:
        lever_api.script.clear()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert len(lever_api.requests) - calls == 3
    sentinel = lever_delivery("applicationCreated", opportunity)
    assert (await http.post("/v1/webhooks/lever", json=sentinel)).status_code == 200
    events = await topic_events(
        broker.address, "ripples.applicants", until=frozenset({f"{sentinel['id']}:0"})
    )
    assert count(events, f"{failing['id']}:0") == 0


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
