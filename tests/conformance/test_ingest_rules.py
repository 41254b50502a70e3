"""What the webhooks branch (issue 13 parts 2, 4, 6) changed in ingest, against the committed
document: each answer below comes from a real ingest (every vendor secret set, real broker and
PostgreSQL) and must be one the document declares for its operation, with the declared media
type and a body that validates against the declared schema (`conforms`); each rule is also
stated in the document itself.

The vendors' formats are the ones their pages document (cited in tests/security/test_webhooks.py:
LinkedIn's webhook validation page, Greenhouse's webhook introduction, Lever's webhook
documentation, Teamtailor's company webhooks); CloudEvents 1.0 (core, HTTP binding §3.1.1,
§3.1.3.2, §3.3.2) for the event routes."""

from __future__ import annotations

import time
import uuid
from typing import Any

import asyncpg
import httpx
import jsonschema
import orjson
import pytest

from tests.conformance.conftest import document
from tests.connectors.conftest import AUTH, connectors, http, ingest_db, lever_api
from tests.connectors.test_ats import (
    greenhouse_application,
    lever_delivery,
    post_greenhouse,
    teamtailor_body,
)
from tests.security.test_webhooks import LINKEDIN, hex_hmac, lever_signed_at, linkedin_body

__all__ = ["connectors", "http", "ingest_db", "lever_api"]

pytestmark = pytest.mark.integration

SPEC: dict[str, Any] = orjson.loads(document("ingest").read_bytes())
VALIDATOR = jsonschema.Draft202012Validator


def operation(method: str, path: str) -> dict[str, Any]:
    op: dict[str, Any] = SPEC["paths"][path][method.lower()]
    return op


def conforms(method: str, path: str, response: httpx.Response) -> Any:
    """The answer is one the document declares for the operation: its status, media type and
    a body valid against the declared schema. Returns the body (JSON) or None."""
    responses = operation(method, path)["responses"]
    status = str(response.status_code)
    assert status in responses, (method, path, status, response.text[:300])
    content = responses[status].get("content")
    if not content:
        return None
    media = response.headers["content-type"].split(";", 1)[0].strip()
    assert media in content, (method, path, status, media, list(content))
    body = response.json()
    schema = {"allOf": [content[media]["schema"]], "components": SPEC["components"]}
    VALIDATOR(schema, format_checker=VALIDATOR.FORMAT_CHECKER).validate(body)
    return body


def fields(body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in body.get("errors", [])]


def described(method: str, path: str, status: str) -> str:
    text: str = operation(method, path)["responses"][status]["description"]
    return text


# --- LinkedIn ----------------------------------------------------------------------------------

UUID4 = "890e4665-4dfe-4ab1-b689-ed553bceeed0"  # the example on LinkedIn's page


@pytest.mark.parametrize(
    "code", ["", "not-a-uuid", "890e4665-4dfe-1ab1-b689-ed553bceeed0", UUID4 + "\n"]
)
async def test_linkedin_challenge_not_a_type_4_uuid_is_400_naming_it(
    http: httpx.AsyncClient, code: str
) -> None:
    (param,) = operation("GET", "/v1/webhooks/linkedin")["parameters"]
    assert param["schema"]["format"] == "uuid"
    assert param["schema"]["pattern"].startswith("^")
    response = await http.get("/v1/webhooks/linkedin", params={"challengeCode": code})
    assert response.status_code == 400, response.text
    assert fields(conforms("GET", "/v1/webhooks/linkedin", response)) == ["challengeCode"]


async def test_linkedin_challenge_without_a_code_is_400_naming_it(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get("/v1/webhooks/linkedin")
    assert response.status_code == 400, response.text
    assert fields(conforms("GET", "/v1/webhooks/linkedin", response)) == ["challengeCode"]


async def test_linkedin_challenge_of_a_type_4_uuid_is_answered(http: httpx.AsyncClient) -> None:
    (param,) = operation("GET", "/v1/webhooks/linkedin")["parameters"]
    assert VALIDATOR(param["schema"]).is_valid(UUID4)
    response = await http.get("/v1/webhooks/linkedin", params={"challengeCode": UUID4})
    assert response.status_code == 200, response.text
    body = conforms("GET", "/v1/webhooks/linkedin", response)
    assert body["challengeResponse"] == hex_hmac(LINKEDIN, UUID4.encode())


@pytest.mark.parametrize("reading", ["prefix on the header", "prefix on the signed message"])
async def test_linkedin_signature_in_both_readings(http: httpx.AsyncClient, reading: str) -> None:
    assert "both readings" in operation("POST", "/v1/webhooks/linkedin")["description"]
    body = linkedin_body(f"urn:li:share:{uuid.uuid4().int % 10**12}")
    signature = (
        "hmacsha256=" + hex_hmac(LINKEDIN, body)
        if reading == "prefix on the header"
        else hex_hmac(LINKEDIN, b"hmacsha256=" + body)
    )
    response = await http.post(
        "/v1/webhooks/linkedin", content=body, headers={"X-LI-Signature": signature}
    )
    assert response.status_code == 200, response.text
    assert conforms("POST", "/v1/webhooks/linkedin", response)["status"] == "accepted"
    again = await http.post(
        "/v1/webhooks/linkedin", content=body, headers={"X-LI-Signature": signature}
    )
    assert conforms("POST", "/v1/webhooks/linkedin", again) == {"status": "duplicate", "events": 0}


async def test_linkedin_absurd_last_modified_at_is_422(http: httpx.AsyncClient) -> None:
    assert "lastModifiedAt" in described("POST", "/v1/webhooks/linkedin", "422")
    body = linkedin_body(f"urn:li:share:{uuid.uuid4().int % 10**12}", at=10**18)
    response = await http.post(
        "/v1/webhooks/linkedin", content=body, headers={"X-LI-Signature": hex_hmac(LINKEDIN, body)}
    )
    assert response.status_code == 422, response.text
    conforms("POST", "/v1/webhooks/linkedin", response)


# --- Lever -------------------------------------------------------------------------------------


@pytest.mark.parametrize("age_s", [86400 + 3600, -(300 + 600)])
async def test_lever_triggered_at_outside_the_window_is_401(
    http: httpx.AsyncClient, age_s: int
) -> None:
    text = described("POST", "/v1/webhooks/lever", "401")
    assert "INGEST_LEVER_REPLAY_WINDOW_S" in text
    assert "86400" in text
    assert "INGEST_WEBHOOK_CLOCK_SKEW_S" in text
    assert "300" in text
    delivery = lever_signed_at(int((time.time() - age_s) * 1000))
    response = await http.post("/v1/webhooks/lever", json=delivery)
    assert response.status_code == 401, response.text
    assert "triggeredAt" in conforms("POST", "/v1/webhooks/lever", response)["detail"]


async def test_lever_triggered_at_not_epoch_milliseconds_is_422(http: httpx.AsyncClient) -> None:
    assert "epoch milliseconds" in described("POST", "/v1/webhooks/lever", "422")
    response = await http.post("/v1/webhooks/lever", json=lever_signed_at(10**18))  # year 31 M
    assert response.status_code == 422, response.text
    conforms("POST", "/v1/webhooks/lever", response)


# --- all four webhooks -------------------------------------------------------------------------


def _greenhouse(signature: bytes) -> tuple[str, bytes, dict[str, Any]]:
    body = orjson.dumps(greenhouse_application(1))
    return "/v1/webhooks/greenhouse", body, {"Signature": signature, "Greenhouse-Event-ID": "1"}


def _linkedin(signature: bytes) -> tuple[str, bytes, dict[str, Any]]:
    return "/v1/webhooks/linkedin", linkedin_body("urn:li:share:1"), {"X-LI-Signature": signature}


def _teamtailor(signature: bytes) -> tuple[str, bytes, dict[str, Any]]:
    body = orjson.loads(teamtailor_body({"event_name": "job_application.create"}))
    body["signature"] = signature.decode("latin-1")
    return "/v1/webhooks/teamtailor", orjson.dumps(body), {}


def _lever(signature: bytes) -> tuple[str, bytes, dict[str, Any]]:
    delivery = {
        **lever_delivery("candidateHired", "opp-x"),
        "signature": signature.decode("latin-1"),
    }
    return "/v1/webhooks/lever", orjson.dumps(delivery), {}


SIGNATURES = {
    "non-ASCII": b"sha256 " + "é".encode("latin-1") * 64,
    "malformed": b"sha256 not-hex-at-all",
    "empty": b"",
}


@pytest.mark.parametrize("vendor", [_greenhouse, _linkedin, _teamtailor, _lever])
@pytest.mark.parametrize("kind", SIGNATURES)
async def test_bad_signature_is_401(http: httpx.AsyncClient, vendor: Any, kind: str) -> None:
    path, body, headers = vendor(SIGNATURES[kind])
    assert "non-ASCII" in described("POST", path, "401")
    response = await http.post(
        path, content=body, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 401, (path, kind, response.text)
    conforms("POST", path, response)


async def _absurd_greenhouse(http: httpx.AsyncClient) -> tuple[str, httpx.Response]:
    document_ = greenhouse_application(uuid.uuid4().int % 10**9)
    document_["payload"]["application"]["applied_at"] = "0001-01-01T00:00:00+01:00"
    return "/v1/webhooks/greenhouse", await post_greenhouse(http, document_, str(uuid.uuid4()))


async def _absurd_teamtailor(http: httpx.AsyncClient) -> tuple[str, httpx.Response]:
    payload = {
        "event_name": "job_application.create",
        "data": {
            "id": "1",
            "type": "job-applications",
            "attributes": {"created-at": "9999-12-31T23:59:59-01:00"},
            "relationships": {
                "candidate": {"data": {"id": "c1", "type": "candidates"}},
                "job": {"data": {"id": "j1", "type": "jobs"}},
            },
        },
    }
    path = "/v1/webhooks/teamtailor"
    return path, await http.post(path, content=teamtailor_body(payload))


async def _absurd_linkedin(http: httpx.AsyncClient) -> tuple[str, httpx.Response]:
    body = linkedin_body(f"urn:li:share:{uuid.uuid4().int % 10**12}", at=-1)
    path = "/v1/webhooks/linkedin"
    return path, await http.post(
        path, content=body, headers={"X-LI-Signature": hex_hmac(LINKEDIN, body)}
    )


async def _absurd_lever(http: httpx.AsyncClient) -> tuple[str, httpx.Response]:
    delivery = lever_signed_at(2**63 - 1)
    return "/v1/webhooks/lever", await http.post("/v1/webhooks/lever", json=delivery)


@pytest.mark.parametrize(
    "send", [_absurd_greenhouse, _absurd_teamtailor, _absurd_linkedin, _absurd_lever]
)
async def test_absurd_body_timestamp_is_422(http: httpx.AsyncClient, send: Any) -> None:
    path, response = await send(http)
    assert "1970-8999" in described("POST", path, "422")
    assert response.status_code == 422, (path, response.text)
    conforms("POST", path, response)


async def test_greenhouse_replay_under_a_new_event_id_is_a_duplicate(
    http: httpx.AsyncClient,
) -> None:
    path = "/v1/webhooks/greenhouse"
    assert "new unsigned id" in described("POST", path, "200")
    document_ = greenhouse_application(uuid.uuid4().int % 10**9)
    first = await post_greenhouse(http, document_, str(uuid.uuid4()))
    assert conforms("POST", path, first)["status"] == "accepted"
    replay = await post_greenhouse(http, document_, str(uuid.uuid4()))
    assert conforms("POST", path, replay) == {"status": "duplicate", "events": 0}


async def test_lever_replay_under_a_new_id_is_a_duplicate(http: httpx.AsyncClient) -> None:
    path = "/v1/webhooks/lever"
    hired = lever_delivery("candidateHired", f"opp-{uuid.uuid4().hex[:8]}")
    assert conforms("POST", path, await http.post(path, json=hired))["status"] == "accepted"
    replay = await http.post(path, json={**hired, "id": str(uuid.uuid4())})
    assert conforms("POST", path, replay) == {"status": "duplicate", "events": 0}


async def test_teamtailor_replay_is_a_duplicate(http: httpx.AsyncClient) -> None:
    path = "/v1/webhooks/teamtailor"
    payload = {
        "event_name": "job_application.create",
        "data": {
            "id": uuid.uuid4().hex,
            "type": "job-applications",
            "attributes": {"created-at": "2026-06-06T10:10:13.611+02:00"},
            "relationships": {
                "candidate": {"data": {"id": uuid.uuid4().hex, "type": "candidates"}},
                "job": {"data": {"id": "j1", "type": "jobs"}},
            },
        },
    }
    body = teamtailor_body(payload)
    assert conforms("POST", path, await http.post(path, content=body))["status"] == "accepted"
    replay = await http.post(path, content=body)
    assert conforms("POST", path, replay) == {"status": "duplicate", "events": 0}


# --- links -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{}", "target_url"),
        (b'{"target_url": 5}', "target_url"),
        (b'{"target_url": "https://careers.example.com/", "job_id": 7}', "job_id"),
        (b"[]", "$"),
        (b"not json", "$"),
        (b'{"target_url": "https://evil.example.net/"}', "target_url"),
        (b'{"target_url": "https://evil.com\\\\.careers.example.com/"}', "target_url"),
        (b'{"target_url": "https://x@careers.example.com/"}', "target_url"),
    ],
)
async def test_every_link_422_names_the_field(
    http: httpx.AsyncClient, body: bytes, field: str
) -> None:
    response = await http.post(
        "/v1/links", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert fields(conforms("POST", "/v1/links", response)) == [field]


async def test_a_stored_link_with_a_refused_target_is_404(
    http: httpx.AsyncClient, ingest_db: str
) -> None:
    assert "refuse" in described("GET", "/r/{link_code}", "404")
    code = "ConfRefused1"
    conn = await asyncpg.connect(ingest_db)
    try:
        await conn.execute(
            "insert into ingest_links (link_code, target_url) values ($1, $2)"
            " on conflict (link_code) do nothing",
            code,
            "https://careers.example.com@evil.com/",
        )
    finally:
        await conn.close()
    response = await http.get(f"/r/{code}")
    assert response.status_code == 404, response.text
    assert "location" not in response.headers
    conforms("GET", "/r/{link_code}", response)


# --- events ------------------------------------------------------------------------------------

DATA = {"post_id": "urn:li:share:7001", "observed_at": "2026-06-04T08:00:00Z", "impressions": 1}


def _binary(**extra: str) -> dict[str, str]:
    return {
        **AUTH,
        "ce-specversion": "1.0",
        "ce-id": f"conf-{uuid.uuid4()}",
        "ce-source": "urn:test:conformance",
        "ce-type": "ripples.post.metrics.v1",
        "ce-time": "2026-06-04T08:00:00Z",
        **extra,
    }


def _structured(**extra: Any) -> bytes:
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"conf-{uuid.uuid4()}",
            "source": "urn:test:conformance",
            "type": "ripples.post.metrics.v1",
            "time": "2026-06-04T08:00:00Z",
            "data": DATA,
            **extra,
        }
    )


async def test_binary_mode_without_content_type_is_202(http: httpx.AsyncClient) -> None:
    request = http.build_request(
        "POST", "/v1/events", content=orjson.dumps(DATA), headers=_binary()
    )
    request.headers.pop("content-type", None)  # httpx sets none for bytes; make sure
    response = await http.send(request)
    assert response.status_code == 202, response.text
    conforms("POST", "/v1/events", response)


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "application/vnd.example+json", "Application/JSON"],
)
async def test_binary_json_media_types_are_202(http: httpx.AsyncClient, content_type: str) -> None:
    response = await http.post(
        "/v1/events",
        content=orjson.dumps(DATA),
        headers=_binary(**{"content-type": content_type, "ce-traceparent": "00-ab-cd-01"}),
    )
    assert response.status_code == 202, response.text
    conforms("POST", "/v1/events", response)


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"ce-datacontenttype": "application/json"}, "ce-datacontenttype"),
        ({"ce-trace_id": "x"}, "ce-trace_id"),
        ({"ce-traceparent": ""}, "ce-traceparent"),
        ({"ce-subject": "a%00b"}, "ce-subject"),
    ],
)
async def test_bad_binary_attribute_is_422_naming_it(
    http: httpx.AsyncClient, headers: dict[str, str], field: str
) -> None:
    response = await http.post(
        "/v1/events",
        content=orjson.dumps(DATA),
        headers=_binary(**{"content-type": "application/json", **headers}),
    )
    assert response.status_code == 422, response.text
    assert field in fields(conforms("POST", "/v1/events", response))


def _event_schema() -> dict[str, Any]:
    schema: dict[str, Any] = SPEC["components"]["schemas"]["PostMetricsEvent"]
    return schema


@pytest.mark.parametrize(
    "extra",
    [
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        {"sampled": True, "priority": 7, "tracestate": "a=b"},
        {"datacontenttype": "application/json; charset=utf-8"},
        {"datacontenttype": "application/cloudevents+json"},
        {f"ext{i}": "v" for i in range(32)},
    ],
)
async def test_documented_extensions_and_media_types_are_202(
    http: httpx.AsyncClient, extra: dict[str, Any]
) -> None:
    body = _structured(**extra)
    schema = {"allOf": [_event_schema()], "components": SPEC["components"]}
    VALIDATOR(schema).validate(orjson.loads(body))  # the document says it is valid
    response = await http.post(
        "/v1/events",
        content=body,
        headers={**AUTH, "Content-Type": "application/cloudevents+json"},
    )
    assert response.status_code == 202, response.text
    conforms("POST", "/v1/events", response)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"traceParent": "x"}, "traceParent"),
        ({"trace_id": "x"}, "trace_id"),
        ({"big": 2**31}, "big"),
        ({"nested": {"a": 1}}, "nested"),
        ({"datacontenttype": "text/plain"}, "datacontenttype"),
    ],
)
async def test_undocumented_extensions_and_media_types_are_422_naming_them(
    http: httpx.AsyncClient, extra: dict[str, Any], field: str
) -> None:
    body = _structured(**extra)
    schema = {"allOf": [_event_schema()], "components": SPEC["components"]}
    assert not VALIDATOR(schema).is_valid(orjson.loads(body))  # nor does the document allow it
    response = await http.post(
        "/v1/events",
        content=body,
        headers={**AUTH, "Content-Type": "application/cloudevents+json"},
    )
    assert response.status_code == 422, response.text
    assert fields(conforms("POST", "/v1/events", response)) == [field]


async def test_more_than_32_extensions_are_422(http: httpx.AsyncClient) -> None:
    body = _structured(**{f"ext{i}": "v" for i in range(33)})
    assert "at most 32" in _event_schema()["additionalProperties"]["description"]
    response = await http.post(
        "/v1/events",
        content=body,
        headers={**AUTH, "Content-Type": "application/cloudevents+json"},
    )
    assert response.status_code == 422, response.text
    conforms("POST", "/v1/events", response)


async def test_an_empty_batch_is_202_accepted_0(http: httpx.AsyncClient) -> None:
    examples = operation("POST", "/v1/events:batch")["responses"]["202"]["content"]
    assert {"status": "accepted", "accepted": 0} in [
        e["value"] for e in examples["application/json"]["examples"].values()
    ]
    response = await http.post(
        "/v1/events:batch",
        content=b"[]",
        headers={**AUTH, "Content-Type": "application/cloudevents-batch+json"},
    )
    assert response.status_code == 202, response.text
    assert conforms("POST", "/v1/events:batch", response) == {"status": "accepted", "accepted": 0}
