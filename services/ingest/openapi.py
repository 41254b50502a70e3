"""The ingest service's OpenAPI 3.1 document, built from the same models that validate.

``python -m services.ingest.openapi`` prints it; the committed copy
(``services/ingest/openapi.json``) is checked against it by the tests.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import msgspec
import orjson

from shared.cloudevents import MAX_EXTENSIONS
from shared.events import INBOUND, InboundEvent
from shared.openapi import (
    BEARER,
    LICENSE,
    OPEN,
    RETRY_AFTER,
    components,
    json_body,
    operational_paths,
    problem,
    unauthorized,
)

_REF = "#/components/schemas/{name}"
# services/ingest/linkedin.py CHALLENGE_CODE: a type-4 UUID of the RFC 4122 variant.
_UUID4 = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"

_BAD_REQUEST = problem(
    400, "Malformed request (`Content-Length` not a number).", "bad-request", "Bad request",
    "Content-Length is not a number",
)  # fmt: skip
_TOO_LARGE = problem(
    413, "Body (or batch) too large (`INGEST_MAX_BODY_BYTES`, `INGEST_MAX_BATCH_EVENTS`).",
    "body-too-large", "Request body too large", "the body must not exceed 1048576 bytes",
)  # fmt: skip
_UNSUPPORTED = problem(
    415, "Content type not accepted here.", "unsupported-media-type", "Unsupported media type",
    "expected application/cloudevents+json",
)  # fmt: skip
_HEADERS_TOO_LARGE = problem(
    431, "Request line and headers too large (`INGEST_MAX_HEADER_BYTES`).",
    "request-header-fields-too-large", "Request header fields too large",
    "the request line and headers must not exceed 16384 bytes",
)  # fmt: skip
_INVALID_EVENT = problem(
    422, "Not a valid contract event; `errors` names each field (and, in a batch, each index).",
    "invalid-event", "Invalid event", "data.post_id: Object missing required field `post_id`",
    errors=[{"field": "data.post_id", "detail": "Object missing required field `post_id`"}],
)  # fmt: skip


# CloudEvents 1.0 as shared/cloudevents.py holds to it: attribute names of lower-case letters
# and digits, extension attributes (at most MAX_EXTENSIONS) of the spec's type system, a
# `datacontenttype` that is any JSON media type (parameters and `+json` suffixes allowed).
_TCHARS = "[!#$%&'*+.^_`|~0-9A-Za-z-]"
_JSON_MEDIA_TYPE = (
    "^[Aa][Pp][Pp][Ll][Ii][Cc][Aa][Tt][Ii][Oo][Nn]/(?:" + _TCHARS + r"*\+)?[Jj][Ss][Oo][Nn]"
    "(?:[ \\t]*;[ \\t]*" + _TCHARS + "+=(?:" + _TCHARS + '+|"[^"\\\\]*"))*[ \\t]*$'
)
_DATACONTENTTYPE = {
    "anyOf": [
        {
            "type": "string",
            "pattern": _JSON_MEDIA_TYPE,
            "description": "A JSON media type: `application/json` or a `+json` type, "
            "parameters allowed (`application/json; charset=utf-8`). The data is published "
            "re-encoded as UTF-8 JSON with `content-type: application/json`; another media "
            "type is a 422.",
            "examples": ["application/json", "application/json; charset=utf-8"],
        },
        {"type": "null"},
    ],
    "default": None,
}
_EXTENSION_VALUE = {
    "description": "An extension attribute (e.g. `traceparent`, `tracestate`): a non-empty "
    "String without control characters, an Integer of 32 bits or a Boolean (CloudEvents 1.0, "
    "Type System); null is taken as absent; at most 32 per event. Published as the Kafka "
    "header `ce_<name>`. A bad name or value, or a 33rd, is a 422 naming it.",
    "anyOf": [
        {"type": "string", "minLength": 1},
        {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
        {"type": "boolean"},
        {"type": "null"},
    ],
}
_EVENT_MEMBERS = {
    "propertyNames": {"pattern": "^[a-z0-9]+$"},
    "additionalProperties": _EXTENSION_VALUE,
    "maxProperties": 9 + MAX_EXTENSIONS,
}


def _with_extensions(schemas: dict[str, Any]) -> dict[str, Any]:
    """The msgspec event schemas with what the CloudEvents rules add: extension attributes
    (names `^[a-z0-9]+$`, at most MAX_EXTENSIONS) and `datacontenttype` as a JSON media type."""
    out = dict(schemas)
    for cls in INBOUND:
        name = cls.__name__
        schema = dict(out[name])
        schema["properties"] = {**schema["properties"], "datacontenttype": _DATACONTENTTYPE}
        out[name] = {**schema, **_EVENT_MEMBERS}
    return out


def _unavailable(description: str, kind: str, detail: str) -> dict[str, Any]:
    return problem(
        503, description, kind, "Service unavailable", detail,
        headers={"Retry-After": RETRY_AFTER},
    )  # fmt: skip


_BROKER_DOWN = _unavailable(
    "The broker did not acknowledge, or (employee and applicant events: their personal keys, "
    "the employee directory) the database is unavailable; "
    "retry after `Retry-After` seconds.",
    "broker-unavailable",
    "the events were not acknowledged by the broker; retry later",
)
_EVENT_ERRORS = {
    "400": _BAD_REQUEST,
    "401": unauthorized(),
    "413": _TOO_LARGE,
    "415": _UNSUPPORTED,
    "422": _INVALID_EVENT,
    "431": _HEADERS_TOO_LARGE,
    "503": _BROKER_DOWN,
}

_EVENT_EXAMPLE: dict[str, Any] = {
    "specversion": "1.0",
    "id": "hr-4711",
    "source": "urn:hr:example",
    "type": "ripples.employee.upserted.v1",
    "time": "2026-06-01T08:00:00Z",
    "subject": "emp-1",
    "data": {
        "employee_id": "emp-1",
        "display_name": "Mette Jensen",
        "ambassador": True,
        "locale": "da",
        "notify": {"channel": "slack", "address": "U024BE7LH"},
    },
}
_METRICS_EXAMPLE: dict[str, Any] = {
    "specversion": "1.0",
    "id": "li-poll-7001-1",
    "source": "urn:linkedin:poller",
    "type": "ripples.post.metrics.v1",
    "time": "2026-06-04T08:00:00Z",
    "data": {
        "post_id": "urn:li:share:7001",
        "observed_at": "2026-06-04T08:00:00Z",
        "impressions": 1234,
        "clicks": 19,
    },
}
_TRACED_EXAMPLE: dict[str, Any] = {
    **_METRICS_EXAMPLE,
    "id": "li-poll-7001-2",
    "datacontenttype": "application/json; charset=utf-8",
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
}
_ACCEPTED = {
    "type": "object",
    "required": ["status", "id", "source", "type"],
    "properties": {
        "status": {"const": "accepted"},
        "id": {"type": "string"},
        "source": {"type": "string"},
        "type": {"type": "string"},
    },
}
_BATCH_ACCEPTED = {
    "type": "object",
    "required": ["status", "accepted"],
    "properties": {
        "status": {"const": "accepted"},
        "accepted": {"type": "integer", "minimum": 0, "description": "events published"},
    },
}

_LINK_REQUEST = {
    "type": "object",
    "required": ["target_url"],
    "properties": {
        "target_url": {
            "type": "string",
            "format": "uri",
            "description": "http(s) URL on a host of INGEST_LINK_ALLOWED_HOSTS",
        },
        "employee_id": {"type": "string", "description": "absent: a company link"},
        "job_id": {"type": "string", "description": "becomes utm_campaign"},
        "post_id": {"type": "string"},
    },
}
_LINK = {
    "type": "object",
    "required": ["link_code", "url", "target_url"],
    "properties": {
        "link_code": {"type": "string", "pattern": "^[A-Za-z0-9]+$"},
        "url": {"type": "string", "format": "uri", "description": "the public /r/{code} URL"},
        "target_url": {"type": "string", "format": "uri"},
        "employee_id": {"type": ["string", "null"]},
        "job_id": {"type": ["string", "null"]},
        "post_id": {"type": ["string", "null"]},
    },
}
_DELIVERY_RESULT = {
    "type": "object",
    "required": ["status", "events"],
    "properties": {
        "status": {"enum": ["accepted", "duplicate", "ignored"]},
        "events": {"type": "integer", "description": "contract events published"},
    },
}
_WEBHOOK_EXAMPLES: dict[str, Any] = {
    "greenhouse": {
        "action": "new_candidate_application",
        "payload": {
            "application": {
                "id": 69306314,
                "applied_at": "2026-06-05T14:22:53.000Z",
                "candidate": {"id": 57683957},
                "jobs": [{"id": 4227442}],
                "source": {"public_name": "LinkedIn"},
                "custom_fields": {
                    "ripples_ref": {"name": "ripples_ref", "type": "short_text", "value": "aB3xY9"}
                },
            }
        },
    },
    "teamtailor": {
        "payload": '{"event_name":"job_application.create","data":{"id":"1","type":'
        '"job-applications","attributes":{"created-at":"2026-06-05T14:22:53Z",'
        '"referring-url":"https://careers.example.com/jobs/42?ripples_ref=aB3xY9"},'
        '"relationships":{"candidate":{"data":{"id":"77","type":"candidates"}},'
        '"job":{"data":{"id":"42","type":"jobs"}}}}}',
        "signature": "YmFzZTY0IG9mIHRoZSBoZXggSE1BQw==",
    },
    "lever": {
        "id": "4f1c2d7e-3b2a-4c56-9e8f-1a2b3c4d5e6f",
        "event": "applicationCreated",
        "triggeredAt": 1780669373000,
        "data": {
            "applicationId": "a1b2c3",
            "contactId": "c4d5e6",
            "opportunityId": "o7f8a9",
        },
        "token": "3f8e9c0d1a2b",
        "signature": "9b1d…hex HMAC-SHA256 of token + triggeredAt",
    },
    "linkedin": {
        "type": "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS",
        "notifications": [
            {
                "notificationId": 2004012,
                "action": "SHARE",
                "sourcePost": "urn:li:share:7001",
                "actor": "urn:li:person:abc123",
                "lastModifiedAt": 1780669373000,
                "decoratedGeneratedActivity": {
                    "share": {"entity": "urn:li:share:7002", "owner": "urn:li:person:abc123"}
                },
            }
        ],
    },
}


_ABSURD_TIME = (
    "a timestamp in it that is absurd (no UTC equivalent, such as "
    "`0001-01-01T00:00:00+01:00`, or outside the years 1970-8999)"
)


def _webhook(
    vendor: str,
    summary: str,
    description: str,
    signature: str,
    *,
    unauthorized: str = "",
    invalid: str = "",
) -> dict[str, Any]:
    header = [
        {
            "name": signature,
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "The vendor's signature (see the description); a missing, wrong, "
            "malformed or non-ASCII one is a 401.",
        }
    ]
    return {
        "post": {
            "operationId": f"{vendor}Webhook",
            "summary": summary,
            "description": description,
            "tags": ["webhooks"],
            "security": OPEN,
            "parameters": header if signature else [],
            "requestBody": {
                "required": True,
                "description": "The vendor's delivery, as its documentation describes it.",
                "content": json_body({"type": "object"}, _WEBHOOK_EXAMPLES[vendor]),
            },
            "responses": {
                "200": {
                    "description": "`accepted`: published. `duplicate` (`events: 0`, nothing "
                    "published): the vendor's id for the delivery, or what its signature "
                    "covers, was seen before, so a captured delivery replayed under a new "
                    "unsigned id is a duplicate too. `ignored`: an event Ripples does not use.",
                    "content": {
                        "application/json": {
                            "schema": _DELIVERY_RESULT,
                            "examples": {
                                "accepted": {"value": {"status": "accepted", "events": 1}},
                                "duplicate": {"value": {"status": "duplicate", "events": 0}},
                                "ignored": {"value": {"status": "ignored", "events": 0}},
                            },
                        }
                    },
                },
                "400": _BAD_REQUEST,
                "401": problem(
                    401,
                    "Missing, wrong, malformed or non-ASCII signature (compared on bytes, in "
                    "constant time)" + (f"; {unauthorized}" if unauthorized else "") + ".",
                    "bad-signature",
                    "Bad signature",
                    "the signature does not match the body",
                ),
                "413": _TOO_LARGE,
                "422": problem(
                    422,
                    "Signed, but not the vendor's documented shape, or "
                    + _ABSURD_TIME
                    + (f"; {invalid}" if invalid else "")
                    + ".",
                    "invalid-delivery",
                    "Invalid delivery",
                    "payload.application is missing",
                ),
                "431": _HEADERS_TOO_LARGE,
                "503": _unavailable(
                    "Not configured, or the broker, the database or the vendor's API is "
                    "unavailable; redeliver.",
                    "broker-unavailable",
                    "the events were not acknowledged by the broker; retry later",
                ),
            },
        }
    }


_KID = {"type": "string", "pattern": "^k_[0-9a-f]{32}$", "examples": ["k_" + "3f" * 16]}
_KEY_READER: list[dict[str, list[str]]] = [{"keyReaderAuth": []}]
_KEY_READER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "A key of `INGEST_KEY_READER_API_KEYS` (the consumers': attribution, the "
    "notifier). It opens everyone's personal fields, so only `POST /v1/keys:lookup` takes it, "
    "and the keys of `INGEST_API_KEYS` are refused there (403).",
}


def _key_paths() -> dict[str, Any]:
    """``POST /v1/keys:lookup`` (services/ingest/keys.py)."""
    kid = "k_" + "3f" * 16
    gone = "k_" + "a0" * 16
    return {
        "/v1/keys:lookup": {
            "post": {
                "operationId": "lookupKeys",
                "summary": "Look up the keys that open sealed personal fields",
                "description": "The consumers' half of crypto-shredding (docs/asyncapi.yaml "
                "'Sealed personal fields'): the key of each `sealed.kid` asked for, base64url "
                "of 32 bytes (AES-256-GCM), or the kid listed as `shredded` when its person "
                "was erased (past `INGEST_SHRED_GRACE_S`) or it was never made. Every kid asked "
                "is in exactly one of the two. Never cached (`Cache-Control: no-store`).",
                "tags": ["keys"],
                "security": _KEY_READER,
                "requestBody": {
                    "required": True,
                    "content": json_body(
                        {
                            "type": "object",
                            "required": ["kids"],
                            "additionalProperties": False,
                            "properties": {
                                "kids": {
                                    "type": "array",
                                    "minItems": 1,
                                    "maxItems": 1000,
                                    "items": _KID,
                                }
                            },
                        },
                        {"kids": [kid, gone]},
                    ),
                },
                "responses": {
                    "200": {
                        "description": "The keys still served, and the kids shredded.",
                        "headers": {
                            "Cache-Control": {
                                "description": "`no-store`: keys are never cached.",
                                "required": True,
                                "schema": {"type": "string", "const": "no-store"},
                            }
                        },
                        "content": json_body(
                            {
                                "type": "object",
                                "required": ["keys", "shredded"],
                                "additionalProperties": False,
                                "properties": {
                                    "keys": {
                                        "type": "object",
                                        "description": "{kid: base64url of the 32-byte key}",
                                        "propertyNames": {"pattern": _KID["pattern"]},
                                        "additionalProperties": {
                                            "type": "string",
                                            "pattern": "^[A-Za-z0-9_-]{43}$",
                                        },
                                    },
                                    "shredded": {"type": "array", "items": _KID},
                                },
                            },
                            {
                                "keys": {kid: "q1Jb0x8Qp9m6V2c0yTzq3u0bJ3y1bq4kZk2cXo8v1dA"},
                                "shredded": [gone],
                            },
                        ),
                    },
                    "400": _BAD_REQUEST,
                    "401": unauthorized(),
                    "403": problem(
                        403,
                        "A valid key of `INGEST_API_KEYS`, which cannot read keys.",
                        "forbidden",
                        "Forbidden",
                        "this key cannot read personal keys: send a key of "
                        "INGEST_KEY_READER_API_KEYS",
                    ),
                    "413": _TOO_LARGE,
                    "422": problem(
                        422,
                        'Not `{"kids": [1 to 1000 key ids]}`; `errors[].field` names what '
                        "is wrong (`kids[3]` for a malformed kid).",
                        "invalid-lookup",
                        "Invalid key lookup",
                        "kids[1]: 'k_nope' is not a key id (k_ and 32 hex digits)",
                        errors=[
                            {
                                "field": "kids[1]",
                                "detail": "'k_nope' is not a key id (k_ and 32 hex digits)",
                            }
                        ],
                        naming=True,
                    ),
                    "431": _HEADERS_TOO_LARGE,
                    "503": _unavailable(
                        "The database is unavailable (or a stored key does not unwrap with "
                        "`INGEST_TOKEN_KEYS`); retry.",
                        "database-unavailable",
                        "the database is not reachable; retry later",
                    ),
                },
            }
        }
    }


def _connector_paths() -> dict[str, Any]:
    return {
        "/v1/links": {
            "post": {
                "operationId": "createLink",
                "summary": "Create a tracked link",
                "description": "Answers 201 once `ripples.link.created.v1` was acknowledged.",
                "tags": ["links"],
                "security": BEARER,
                "requestBody": {
                    "required": True,
                    "content": json_body(
                        _LINK_REQUEST,
                        {
                            "target_url": "https://careers.example.com/jobs/42",
                            "employee_id": "emp-1",
                            "job_id": "job-42",
                        },
                    ),
                },
                "responses": {
                    "201": {
                        "description": "Created; `Location` is the public link.",
                        "headers": {
                            "Location": {
                                "description": "The public `/r/{link_code}` URL.",
                                "schema": {"type": "string", "format": "uri"},
                            }
                        },
                        "content": json_body(
                            _LINK,
                            {
                                "link_code": "aB3xY9",
                                "url": "http://127.0.0.1:8080/r/aB3xY9",
                                "target_url": "https://careers.example.com/jobs/42",
                                "employee_id": "emp-1",
                                "job_id": "job-42",
                                "post_id": None,
                            },
                        ),
                    },
                    "400": _BAD_REQUEST,
                    "401": unauthorized(),
                    "413": _TOO_LARGE,
                    "422": problem(
                        422,
                        "Invalid body, or a refused target; `errors[].field` names the field "
                        "(`target_url` for a refused target). A target is refused unless it "
                        "is http(s) on a host of `INGEST_LINK_ALLOWED_HOSTS`, compared as a "
                        "browser reads it (lower case, no trailing dot, an internationalised "
                        "name as its A-label); one with a backslash, userinfo, a space or a "
                        "control character, a bad port or an invalid host is refused too.",
                        "target-not-allowed",
                        "Target not allowed",
                        "target_url has a host that is not on the allow-list "
                        "(INGEST_LINK_ALLOWED_HOSTS)",
                        errors=[
                            {
                                "field": "target_url",
                                "detail": "has a host that is not on the allow-list "
                                "(INGEST_LINK_ALLOWED_HOSTS)",
                            }
                        ],
                        naming=True,
                    ),
                    "431": _HEADERS_TOO_LARGE,
                    "503": _unavailable(
                        "Broker or database unavailable; retry.",
                        "database-unavailable",
                        "the database is not reachable; retry later",
                    ),
                },
            }
        },
        "/r/{link_code}": {
            "get": {
                "operationId": "followLink",
                "summary": "Follow a tracked link",
                "description": "302 to the target with utm_source=linkedin, "
                "utm_medium=employee_advocacy, utm_campaign=<job_id>, utm_content=<code> and "
                "ripples_ref=<code>; sets the `ripples_vid` visitor cookie (HttpOnly, "
                "SameSite=Lax, one year) unless a valid one is sent; emits "
                "`ripples.link.clicked.v1` in the background.",
                "tags": ["links"],
                "security": OPEN,
                "parameters": [
                    {
                        "name": "link_code",
                        "in": "path",
                        "required": True,
                        "description": "The code of a tracked link; anything else is a 404.",
                        "schema": {"type": "string"},
                        "example": "aB3xY9",
                    }
                ],
                "responses": {
                    "302": {
                        "description": "Redirect to the tagged target.",
                        "headers": {
                            "Location": {
                                "description": "The target with the UTM parameters added.",
                                "required": True,
                                "schema": {"type": "string"},
                            },
                            "Set-Cookie": {
                                "description": "`ripples_vid`, when no valid one was sent.",
                                "schema": {"type": "string"},
                            },
                        },
                    },
                    "404": problem(
                        404,
                        "Unknown code, or a stored link whose target the allow-list or the "
                        "target rules now refuse (never a redirect then).",
                        "unknown-link",
                        "Unknown link",
                        "no tracked link has this code",
                    ),
                    "431": _HEADERS_TOO_LARGE,
                    "503": _unavailable(
                        "The link is not cached and the database is unavailable.",
                        "database-unavailable",
                        "the database is not reachable; retry later",
                    ),
                },
            }
        },
        "/v1/webhooks/greenhouse": _webhook(
            "greenhouse",
            "Greenhouse web hook",
            "`new_candidate_application` → applicant.applied.v1, `hire_candidate` → "
            "applicant.hired.v1. `Signature: sha256 <hex HMAC-SHA256 of the raw body>`; "
            "deduplicated on `Greenhouse-Event-ID` and on the body's SHA-256 (the header is not "
            "signed).",
            "Signature",
        ),
        "/v1/webhooks/teamtailor": _webhook(
            "teamtailor",
            "Teamtailor company webhook",
            "`job_application.create` → applicant.applied.v1, `job_application.update` to a "
            "stage of type `hired` → applicant.hired.v1. Body `{payload, signature}`, where "
            "`signature` is Base64 of the hex HMAC-SHA256 of the `payload` JSON; deduplicated "
            "on the payload's SHA-256.",
            "",
        ),
        "/v1/webhooks/lever": _webhook(
            "lever",
            "Lever webhook",
            "`applicationCreated` → applicant.applied.v1, `candidateHired` → "
            "applicant.hired.v1. `signature` = hex HMAC-SHA256 of `token + triggeredAt` with "
            "the signature token; deduplicated on `id` and on the signed `token`.",
            "",
            unauthorized="a `triggeredAt` older than the replay window "
            "(`INGEST_LEVER_REPLAY_WINDOW_S`, default 86400 s) or more than "
            "`INGEST_WEBHOOK_CLOCK_SKEW_S` (default 300 s) ahead",
            invalid="a `triggeredAt` that is not epoch milliseconds (years 1970-8999)",
        ),
        "/v1/webhooks/linkedin": {
            "get": {
                "operationId": "linkedinWebhookValidation",
                "summary": "LinkedIn webhook validation",
                "tags": ["webhooks"],
                "security": OPEN,
                "parameters": [
                    {
                        "name": "challengeCode",
                        "in": "query",
                        "required": True,
                        "description": 'The challenge LinkedIn sends ("Randomly generated '
                        'type-4 UUID string"); anything else is a 400 naming `challengeCode`, '
                        "so the challenge signs nothing but what LinkedIn sends.",
                        "schema": {"type": "string", "format": "uuid", "pattern": _UUID4},
                        "example": "890e4665-4dfe-4ab1-b689-ed553bceeed0",
                    }
                ],
                "responses": {
                    "200": {
                        "description": "`challengeResponse` = hex HMAC-SHA256 of the code "
                        "with the client secret.",
                        "content": json_body(
                            {
                                "type": "object",
                                "required": ["challengeCode", "challengeResponse"],
                                "properties": {
                                    "challengeCode": {"type": "string"},
                                    "challengeResponse": {"type": "string"},
                                },
                            },
                            {
                                "challengeCode": "890e4665-4dfe-4ab1-b689-ed553bceeed0",
                                "challengeResponse": "b4f1c7…64 hex digits",
                            },
                        ),
                    },
                    "400": problem(
                        400,
                        "No `challengeCode`, or not a type-4 UUID (`errors[].field` = "
                        "`challengeCode`).",
                        "bad-request",
                        "Bad request",
                        "challengeCode must be a type-4 UUID, as LinkedIn sends it",
                        errors=[{"field": "challengeCode", "detail": "not a type-4 UUID"}],
                        naming=True,
                    ),
                    "431": _HEADERS_TOO_LARGE,
                    "503": problem(
                        503,
                        "The LinkedIn client secret is not configured.",
                        "not-configured",
                        "Not configured",
                        "INGEST_LINKEDIN_CLIENT_SECRET is not set",
                    ),
                },
            },
            **_webhook(
                "linkedin",
                "LinkedIn organization social-action notifications",
                "LIKE/COMMENT/SHARE → post.engagement.v1; a SHARE by a known employee → "
                "post.published.v1 with reshare_of. `X-LI-Signature` = hex HMAC-SHA256 with "
                'the client secret "of the JSON-encoded string representation of the POST '
                'body prefixed by hmacsha256="; both readings are accepted: '
                '`hmacsha256=<hex HMAC of the body>` and `<hex HMAC of "hmacsha256=" + '
                "body>`. Deduplicated on `notificationId`.",
                "X-LI-Signature",
                invalid="an absurd `lastModifiedAt`",
            ),
        },
    }


def _import_path(kind: str, entity: str, columns: str, example: str) -> dict[str, Any]:
    """``POST /v1/{kind}:import`` (CONTRACT §11, services/ingest/imports.py)."""
    counts = {
        "type": "object",
        "required": ["rows", "published"],
        "properties": {
            "rows": {"type": "integer", "minimum": 0, "description": "Data rows of the file."},
            "published": {
                "type": "integer",
                "minimum": 0,
                "description": "Rows whose event was not accepted before (would be, on a dry run).",
            },
            "dry_run": {"type": "boolean"},
        },
    }
    return {
        "post": {
            "operationId": f"import{kind.capitalize()}",
            "summary": f"Import {kind} from a spreadsheet (CSV), all or nothing",
            "description": f"One `{entity}` per row (source `urn:ripples:import`, id "
            "`import:{sha256 of the row}`, time = the request's). UTF-8 with or without BOM, "
            "`;` or `,` (sniffed from the header row), quoted fields, CRLF. Header row: "
            f"{columns}. Booleans: true/false, ja/nej, yes/no, 1/0. Re-importing a row "
            "already accepted publishes nothing (`published` counts the new ones).",
            "tags": ["imports"],
            "security": BEARER,
            "parameters": [
                {
                    "name": "dry_run",
                    "in": "query",
                    "required": False,
                    "description": "true: validate only (200, nothing published).",
                    "schema": {"type": "boolean", "default": False},
                }
            ],
            "requestBody": {
                "required": True,
                "content": {"text/csv": {"schema": {"type": "string"}, "example": example}},
            },
            "responses": {
                "200": {
                    "description": "Dry run: valid.",
                    "content": json_body(counts, {"rows": 2, "published": 2, "dry_run": True}),
                },
                "202": {
                    "description": "Every new row acknowledged by the broker.",
                    "content": json_body(counts, {"rows": 2, "published": 2}),
                },
                "401": unauthorized(),
                "413": problem(
                    413,
                    "File too large (`INGEST_IMPORT_MAX_BYTES`, `INGEST_IMPORT_MAX_ROWS`).",
                    "too-many-rows",
                    "Too many rows",
                    "a file holds at most 20000 rows",
                ),
                "415": _UNSUPPORTED,
                "422": problem(
                    422,
                    "Invalid file; `errors` names each bad line (as a spreadsheet numbers them, "
                    "the header is 1) and column. Nothing was published.",
                    "invalid-import",
                    "Invalid file",
                    "1 line(s) are invalid (3); nothing was imported",
                    errors=[
                        {
                            "field": "lines.3.locale",
                            "line": 3,
                            "column": "locale",
                            "detail": "Expected `str` matching one of `da`, `en`",
                        }
                    ],
                ),
                "503": _unavailable(
                    "Broker or database unavailable; retry.",
                    "database-unavailable",
                    "the database is not reachable; retry later",
                ),
            },
        }
    }


def _page(description: str, title: str = "Ikke forbundet") -> dict[str, Any]:
    """A da/en HTML page of the connect flow (the employee's locale, else the browser's)."""
    example = (
        f'<!doctype html><html lang="da"><head><meta charset="utf-8"><title>{title}</title>'
        f"</head><body><main><h1>{title}</h1><p>…</p></main></body></html>"
    )
    return {
        "description": description,
        "content": {"text/html": {"schema": {"type": "string"}, "example": example}},
    }


_CONNECTION = {
    "type": "object",
    "required": ["employee_id", "status", "expires_at", "scopes"],
    "properties": {
        "employee_id": {"type": "string"},
        "status": {
            "type": "string",
            "enum": ["none", "connected", "expiring", "expired", "revoked"],
        },
        "expires_at": {"type": ["string", "null"], "format": "date-time"},
        "scopes": {"type": "array", "items": {"type": "string"}},
    },
}
_LINKEDIN_DOWN = _unavailable(
    "The database is unavailable, or the connect flow is not configured "
    "(`INGEST_LINKEDIN_CLIENT_ID`, `INGEST_CONNECT_SECRET`, `INGEST_TOKEN_KEYS`), or (with "
    "`send`) the broker did not take the message; retry.",
    "database-unavailable",
    "the database is not reachable; retry later",
)


def _linkedin_connect_paths() -> dict[str, Any]:
    """CONTRACT §8: an employee connects their own LinkedIn (services/ingest/connect.py)."""
    employee = {
        "name": "employee_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 256},
    }
    return {
        "/v1/linkedin/invitations": {
            "post": {
                "operationId": "createLinkedInInvitation",
                "summary": "An invitation link for an employee to connect LinkedIn",
                "description": "A signed, single-use link to `/connect/linkedin/{token}`, "
                "valid `INGEST_LINKEDIN_INVITATION_TTL_S` (7 days by default); HR hands it "
                'out, or with `"send": true` the notifier also sends it to the employee '
                "(a `ripples.linkedin.connection.v1` message, docs/asyncapi.yaml).",
                "tags": ["linkedin"],
                "security": BEARER,
                "requestBody": {
                    "required": True,
                    "content": json_body(
                        {
                            "type": "object",
                            "required": ["employee_id"],
                            "additionalProperties": False,
                            "properties": {
                                "employee_id": {"type": "string", "minLength": 1, "maxLength": 256},
                                "send": {
                                    "type": "boolean",
                                    "default": False,
                                    "description": "Also send the link to the employee, in "
                                    "their language, through the notifier.",
                                },
                                "page": {
                                    "type": "boolean",
                                    "default": False,
                                    "description": "The employee is the company page's admin "
                                    "and connects the page (`INGEST_LINKEDIN_ORGANIZATION_URN`) "
                                    "with `rw_organization_admin`; the callback checks the "
                                    "account is an APPROVED ADMINISTRATOR of the page.",
                                },
                            },
                        },
                        {"employee_id": "emp-1", "send": True},
                    ),
                },
                "responses": {
                    "201": {
                        "description": "Created.",
                        "content": json_body(
                            {
                                "type": "object",
                                "required": ["url", "expires_at"],
                                "properties": {
                                    "url": {"type": "string", "format": "uri"},
                                    "expires_at": {"type": "string", "format": "date-time"},
                                },
                            },
                            {
                                "url": "https://ripples.example.com/connect/linkedin/aBc.123.xYz",
                                "expires_at": "2026-06-08T08:00:00Z",
                            },
                        ),
                    },
                    "401": unauthorized(),
                    "404": problem(
                        404,
                        "No such employee is known.",
                        "not-found",
                        "Not found",
                        "no employee with this employee_id is known",
                    ),
                    "413": _TOO_LARGE,
                    "422": problem(
                        422,
                        "Invalid body; `errors` names `employee_id`, `send` or `page`.",
                        "invalid-invitation",
                        "Invalid invitation",
                        "employee_id must be 1-256 printable characters",
                        errors=[{"field": "employee_id", "detail": "1-256 printable characters"}],
                    ),
                    "503": _LINKEDIN_DOWN,
                },
            }
        },
        "/v1/linkedin/connections/{employee_id}": {
            "parameters": [employee],
            "get": {
                "operationId": "getLinkedInConnection",
                "summary": "An employee's LinkedIn connection status",
                "description": "`none`, `connected`, `expiring` (within "
                "`INGEST_LINKEDIN_EXPIRY_WARNING_S` of expiry and not renewable), `expired` "
                "or `revoked` (LinkedIn refused the token). Never the token.",
                "tags": ["linkedin"],
                "security": BEARER,
                "responses": {
                    "200": {
                        "description": "The status.",
                        "content": json_body(
                            _CONNECTION,
                            {
                                "employee_id": "emp-1",
                                "status": "connected",
                                "expires_at": "2026-08-01T08:00:00Z",
                                "scopes": ["openid", "profile", "r_member_postAnalytics"],
                            },
                        ),
                    },
                    "401": unauthorized(),
                    "503": _LINKEDIN_DOWN,
                },
            },
            "delete": {
                "operationId": "deleteLinkedInConnection",
                "summary": "Disconnect: the employee's tokens are deleted",
                "tags": ["linkedin"],
                "security": BEARER,
                "responses": {
                    "204": {"description": "Deleted (or there was none)."},
                    "401": unauthorized(),
                    "503": _LINKEDIN_DOWN,
                },
            },
        },
        "/v1/linkedin/posts": {
            "post": {
                "operationId": "registerLinkedInPost",
                "summary": "Register an employee's post by its public URL",
                "description": "Every public post URL form (`/feed/update/urn:li:activity:…`, "
                "`urn:li:share:…`, `urn:li:ugcPost:…`, `/posts/<slug>-activity-<id>-…`, with "
                "or without a query string); the post is fetched with the employee's token "
                "and must be theirs. The poller then reads its statistics. An activity URL is "
                "resolved to its share/ugcPost (the webhook's pairs, else LinkedIn's DMA "
                "Activities API) and answers that `post_id`.",
                "tags": ["linkedin"],
                "security": BEARER,
                "requestBody": {
                    "required": True,
                    "content": json_body(
                        {
                            "type": "object",
                            "required": ["employee_id", "url"],
                            "additionalProperties": False,
                            "properties": {
                                "employee_id": {"type": "string", "minLength": 1, "maxLength": 256},
                                "url": {"type": "string", "minLength": 1, "maxLength": 2048},
                            },
                        },
                        {
                            "employee_id": "emp-1",
                            "url": "https://www.linkedin.com/feed/update/urn:li:share:7094637247487995904/",
                        },
                    ),
                },
                "responses": {
                    "202": {
                        "description": "Registered; the post's URN.",
                        "content": json_body(
                            {
                                "type": "object",
                                "required": ["post_id"],
                                "properties": {"post_id": {"type": "string"}},
                            },
                            {"post_id": "urn:li:share:7094637247487995904"},
                        ),
                    },
                    "401": unauthorized(),
                    "409": problem(
                        409,
                        "The employee has no usable LinkedIn connection.",
                        "not-connected",
                        "Not connected",
                        "the employee has not connected LinkedIn",
                        errors=[{"field": "employee_id", "detail": "not connected"}],
                    ),
                    "422": problem(
                        422,
                        "Invalid body, not a LinkedIn post URL, not the employee's post, or an "
                        "activity LinkedIn would not resolve to its post "
                        "(`unresolvable-activity-url`: use the share/ugcPost link); `errors` "
                        "names `url` or `employee_id`.",
                        "invalid-post",
                        "Invalid post",
                        "not the address of a LinkedIn post",
                        errors=[{"field": "url", "detail": "not the address of a LinkedIn post"}],
                    ),
                    "503": _unavailable(
                        "The database or LinkedIn is unavailable; retry.",
                        "linkedin-unavailable",
                        "LinkedIn could not be reached; retry later",
                    ),
                },
            }
        },
        "/connect/linkedin/{token}": {
            "get": {
                "operationId": "openLinkedInInvitation",
                "summary": "Open an invitation: on to LinkedIn's authorization page",
                "description": "The signed browser route: 302 to `{INGEST_LINKEDIN_OAUTH_BASE_URL}"
                "/authorization` with a single-use `state` bound to the invitation.",
                "tags": ["linkedin"],
                "security": OPEN,
                "parameters": [
                    {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "302": {
                        "description": "To LinkedIn's authorization page.",
                        "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
                    },
                    "403": _page("The link is not a valid invitation (da/en page)."),
                    "410": _page("The invitation expired or was used (da/en page)."),
                    "503": _page("The connect flow is not configured (da/en page)."),
                },
            }
        },
        "/connect/linkedin/callback": {
            "get": {
                "operationId": "linkedInCallback",
                "summary": "LinkedIn's redirect back: the code is exchanged, the token stored",
                "description": "Tokens are stored encrypted (AES-GCM); the member is found with "
                "OpenID `userinfo`. Every outcome is a da/en page.",
                "tags": ["linkedin"],
                "security": OPEN,
                "parameters": [
                    {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
                    for name in ("code", "state", "error", "error_description")
                ],
                "responses": {
                    "200": _page("Connected.", "Forbundet"),
                    "400": _page("The member declined, or the `state` is unknown or used."),
                    "403": _page(
                        "A company page invitation (`page`) opened by an account that is not "
                        "an APPROVED ADMINISTRATOR of the page; nothing stored."
                    ),
                    "409": _page("Another LinkedIn account than the employee's registered one."),
                    "410": _page("The invitation was used meanwhile."),
                    "502": _page("LinkedIn's token endpoint could not be reached or refused."),
                    "503": _page("The connect flow is not configured."),
                },
            }
        },
    }


_SIGNED_LINK = {
    "type": "object",
    "required": ["url", "expires_at"],
    "properties": {
        "url": {"type": "string", "format": "uri"},
        "expires_at": {"type": "string", "format": "date-time"},
    },
}
_PAGE_NOT_CONFIGURED = _unavailable(
    "The database is unavailable, or `INGEST_PAGE_LINK_SECRETS` is not set; retry.",
    "database-unavailable",
    "the database is not reachable; retry later",
)
_PAGE_DOWN = _unavailable(
    "The database is unavailable; retry.",
    "database-unavailable",
    "the database is not reachable; retry later",
)
_TOKEN = {
    "name": "token",
    "in": "path",
    "required": True,
    "description": "A signed, expiring token (shared/signing); anything else is the 403 page.",
    "schema": {"type": "string"},
}


def _html(description: str, title: str) -> dict[str, Any]:
    """A da/en HTML page of the employee's page or the overview."""
    example = (
        f'<!doctype html><html lang="da"><head><meta charset="utf-8"><title>{title}</title>'
        f"</head><body><main><h1>{title}</h1><p>…</p></main></body></html>"
    )
    return {
        "description": description,
        "content": {"text/html": {"schema": {"type": "string"}, "example": example}},
    }


_BROWSER_DOWN = {
    **_html(
        "A peer (broker, LinkedIn) or the database is unavailable: the page again saying so, "
        "or a da/en page asking to try again in a moment (`Retry-After`).",
        "Siden er ikke tilgængelig lige nu",
    ),
    "headers": {"Retry-After": RETRY_AFTER},
}
_DENIED = _html(
    "The token is expired, tampered with, for another purpose, or its employee was removed "
    "(a da/en page in the employee's language, else the browser's).",
    "Linket virker ikke",
)
_FORM_FIELDS: dict[str, tuple[dict[str, Any], list[str], str]] = {
    "links": ({"job_id": {"type": "string"}}, ["job_id"], "Make my tracked link for a job"),
    "linkedin": ({}, [], "Connect LinkedIn: on to the invitation flow (CONTRACT §8)"),
    "posts": ({"url": {"type": "string"}}, ["url"], "Register one of my LinkedIn posts"),
    "preferences": (
        {
            "locale": {"enum": ["da", "en"]},
            "channel": {"enum": ["", "email", "slack", "teams", "webhook", "none"]},
            "address": {"type": "string"},
            "opt_out": {"const": "true"},
        },
        ["locale"],
        "Save my preferences (a `ripples.employee.preferences.v1`)",
    ),
}


_FORM_EXAMPLES: dict[str, dict[str, str]] = {
    "links": {"job_id": "job-42"},
    "linkedin": {},
    "posts": {"url": "https://www.linkedin.com/feed/update/urn:li:share:7094637247487995904/"},
    "preferences": {"locale": "da", "channel": "slack", "address": "U024BE7LH", "opt_out": "true"},
}


def _form_path(action: str) -> dict[str, Any]:
    fields, required, summary = _FORM_FIELDS[action]
    example = _FORM_EXAMPLES[action]
    return {
        "post": {
            "operationId": f"employeePage{action.capitalize()}",
            "summary": summary,
            "description": "A form of the employee's page (signed browser route, no key). "
            "`form_token` is the one the page carried (bound to the employee and the page "
            "token); a POST whose `Origin` is another site's, or whose `Sec-Fetch-Site` is "
            "`cross-site`/`same-site`, is refused. Done: 303 back to the page (or on to the "
            "LinkedIn invitation); otherwise the page again with the error by its field.",
            "tags": ["employee page"],
            "security": OPEN,
            "parameters": [_TOKEN],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "required": ["form_token", *required],
                            "properties": {"form_token": {"type": "string"}, **fields},
                        },
                        "example": {"form_token": "eyJwYWdlIjoiMWYyZSJ9.c2ln", **example},
                    }
                },
            },
            "responses": {
                "303": {
                    "description": "Done: back to the page with the result, or to the "
                    "invitation link.",
                    "headers": {"Location": {"schema": {"type": "string"}}},
                },
                "400": _html("The form could not be read (the page again).", "Mine ringe"),
                "403": _html(
                    "The page token or the form token is not valid, or the request came from "
                    "another site (the page again, or the refusal page).",
                    "Linket virker ikke",
                ),
                "409": _html("Register a post: LinkedIn is not connected.", "Mine ringe"),
                "415": _html("Not a form (`application/x-www-form-urlencoded`).", "Mine ringe"),
                "422": _html("A field is not valid; the page names it.", "Mine ringe"),
                "503": _BROWSER_DOWN,
            },
        }
    }


_SENT_OPENED = {
    "type": "object",
    "required": ["sent", "opened"],
    "properties": {
        "sent": {"type": "integer", "minimum": 0},
        "opened": {"type": "integer", "minimum": 0},
    },
}
_OVERVIEW_ROW = {
    "type": "object",
    "required": [
        "employee_id",
        "display_name",
        "ambassador",
        "linkedin",
        "invitations",
        "page_links",
        "preferences",
        "posts_this_month",
        "links",
    ],
    "properties": {
        "employee_id": {"type": "string"},
        "display_name": {"type": ["string", "null"]},
        "ambassador": {"type": "boolean"},
        "linkedin": {
            "type": "object",
            "required": ["status", "expires_at"],
            "properties": {
                "status": {"enum": ["none", "connected", "expiring", "expired", "revoked"]},
                "expires_at": {"type": ["string", "null"], "format": "date-time"},
            },
        },
        "invitations": _SENT_OPENED,
        "page_links": _SENT_OPENED,
        "preferences": {
            "type": "object",
            "description": "What the employee set on their page; null: the HR record's value.",
            "required": ["channel", "opt_out"],
            "properties": {
                "channel": {
                    "anyOf": [
                        {"enum": ["email", "slack", "teams", "webhook", "none"]},
                        {"type": "null"},
                    ]
                },
                "opt_out": {"type": ["boolean", "null"]},
            },
        },
        "posts_this_month": {"type": "integer", "minimum": 0},
        "links": {
            "type": "object",
            "required": ["total", "this_month"],
            "properties": {
                "total": {"type": "integer", "minimum": 0},
                "this_month": {"type": "integer", "minimum": 0},
            },
        },
    },
}
_OVERVIEW = {
    "type": "object",
    "required": ["generated_at", "month_start", "employees"],
    "properties": {
        "generated_at": {"type": "string", "format": "date-time"},
        "month_start": {"type": "string", "format": "date-time"},
        "employees": {"type": "array", "items": _OVERVIEW_ROW},
    },
}
_OVERVIEW_EXAMPLE = {
    "generated_at": "2026-12-01T10:00:00Z",
    "month_start": "2026-12-01T00:00:00Z",
    "employees": [
        {
            "employee_id": "emp-1",
            "display_name": "Mette Jensen",
            "ambassador": True,
            "linkedin": {"status": "expiring", "expires_at": "2026-12-05T08:00:00Z"},
            "invitations": {"sent": 1, "opened": 1},
            "page_links": {"sent": 2, "opened": 1},
            "preferences": {"channel": "slack", "opt_out": None},
            "posts_this_month": 3,
            "links": {"total": 4, "this_month": 1},
        }
    ],
}


def _self_service_paths() -> dict[str, Any]:
    """CONTRACT §11: the employee's page and the overview (services/ingest/page/)."""
    return {
        "/v1/employees/{employee_id}/page-links": {
            "post": {
                "operationId": "createPageLink",
                "summary": "A signed, expiring link to the employee's page",
                "description": "`{INGEST_PUBLIC_BASE_URL}/me/{token}` (shared/signing "
                "`page_token`, `INGEST_PAGE_LINK_SECRETS`), valid `INGEST_PAGE_LINK_TTL_S`.",
                "tags": ["employee page"],
                "security": BEARER,
                "parameters": [
                    {
                        "name": "employee_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "201": {
                        "description": "The link.",
                        "content": json_body(
                            _SIGNED_LINK,
                            {
                                "url": "http://127.0.0.1:8080/me/eyJlbXBsb3llZV9pZCI6ImVtcC0xIn0.c2ln",
                                "expires_at": "2026-12-31T10:00:00Z",
                            },
                        ),
                    },
                    "401": unauthorized(),
                    "404": problem(
                        404,
                        "No employee with this id is known (or they were removed).",
                        "not-found",
                        "Not found",
                        "no employee with this employee_id is known",
                    ),
                    "431": _HEADERS_TOO_LARGE,
                    "503": _PAGE_NOT_CONFIGURED,
                },
            }
        },
        "/me/{token}": {
            "get": {
                "operationId": "employeePage",
                "summary": "The employee's page (signed browser route, no key)",
                "description": "Server-rendered HTML in the employee's language (their "
                "preference, else the HR record's): their figures (attribution's my-ripples "
                "answer, or a note that they are unavailable), a form to make their tracked "
                "link for a job, their LinkedIn connection, a form to register a post and their "
                "preferences. No other person's data. `link` and `notice` are shown only when "
                "they are the employee's own link or a known notice.",
                "tags": ["employee page"],
                "security": OPEN,
                "parameters": [
                    _TOKEN,
                    {
                        "name": "link",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "notice",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": _html("The page.", "Mine ringe i vandet"),
                    "403": _DENIED,
                    "503": _BROWSER_DOWN,
                },
            }
        },
        **{f"/me/{{token}}/{action}": _form_path(action) for action in _FORM_FIELDS},
        "/v1/overview": {
            "get": {
                "operationId": "programmeOverview",
                "summary": "The communication team's overview of the programme",
                "description": "Who is in the programme, their LinkedIn connection and its "
                "expiry, LinkedIn invitations sent and opened (opened: used, or on its way "
                "through LinkedIn), page links sent and opened, posts registered this month, "
                "links made, and the channel and opt-out the employee set (never the address). "
                "JSON, or HTML when `Accept` prefers `text/html`.",
                "tags": ["employee page"],
                "security": BEARER,
                "parameters": [
                    {
                        "name": "locale",
                        "in": "query",
                        "required": False,
                        "description": "The HTML's language (default: `Accept-Language`).",
                        "schema": {"enum": ["da", "en"]},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The overview.",
                        "content": {
                            **json_body(_OVERVIEW, _OVERVIEW_EXAMPLE),
                            **_html("", "Programmets overblik")["content"],
                        },
                    },
                    "401": unauthorized(),
                    "422": problem(
                        422,
                        "`locale` is not da or en.",
                        "invalid-parameter",
                        "Invalid query parameter",
                        "`locale`: must be da or en",
                        errors=[{"field": "locale", "detail": "must be da or en"}],
                    ),
                    "431": _HEADERS_TOO_LARGE,
                    "503": _PAGE_DOWN,
                },
            }
        },
        "/v1/overview/links": {
            "post": {
                "operationId": "createOverviewLink",
                "summary": "A signed, expiring share link to the overview",
                "description": "`{INGEST_PUBLIC_BASE_URL}/overview/{token}` (purpose "
                "`programme-overview`), valid `INGEST_OVERVIEW_LINK_TTL_S`, for an adviser "
                "without a key.",
                "tags": ["employee page"],
                "security": BEARER,
                "requestBody": {
                    "required": False,
                    "content": json_body(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"locale": {"enum": ["da", "en"]}},
                        },
                        {"locale": "da"},
                    ),
                },
                "responses": {
                    "201": {
                        "description": "The link.",
                        "content": json_body(
                            _SIGNED_LINK,
                            {
                                "url": "http://127.0.0.1:8080/overview/eyJsb2NhbGUiOiJkYSJ9.c2ln",
                                "expires_at": "2026-12-08T10:00:00Z",
                            },
                        ),
                    },
                    "401": unauthorized(),
                    "413": _TOO_LARGE,
                    "422": problem(
                        422,
                        'The body is not empty nor `{"locale": "da"|"en"}`.',
                        "invalid-body",
                        "Invalid body",
                        "locale must be da or en",
                        errors=[{"field": "locale", "detail": "must be da or en"}],
                    ),
                    "431": _HEADERS_TOO_LARGE,
                    "503": _unavailable(
                        "`INGEST_PAGE_LINK_SECRETS` is not set.",
                        "not-configured",
                        "INGEST_PAGE_LINK_SECRETS must be set",
                    ),
                },
            }
        },
        "/overview/{token}": {
            "get": {
                "operationId": "sharedOverview",
                "summary": "The overview through a share link (no key)",
                "tags": ["employee page"],
                "security": OPEN,
                "parameters": [_TOKEN],
                "responses": {
                    "200": _html("The overview (da/en).", "Programmets overblik"),
                    "403": _DENIED,
                    "503": _BROWSER_DOWN,
                },
            }
        },
    }


@functools.cache
def openapi() -> dict[str, Any]:
    (event_ref,), schemas = msgspec.json.schema_components([InboundEvent], ref_template=_REF)
    binary_headers = [
        {
            "name": f"ce-{name}",
            "in": "header",
            "required": False,
            "description": f"CloudEvents `{name}` attribute (binary mode).",
            "schema": {"type": "string"},
        }
        for name in ("specversion", "id", "source", "type", "time", "subject", "dataschema")
    ]
    binary_data = dict(_EVENT_EXAMPLE["data"])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Ripples ingest API",
            "version": "1.0.0",
            "license": LICENSE,
            "description": (
                "Takes the contract events (CloudEvents 1.0, JSON data) from other systems "
                "and publishes them to Kafka. A 202 means the broker acknowledged every "
                "event (acks=all). Events are identified by (source, id): sending one twice "
                "is harmless."
            ),
        },
        "servers": [{"url": "http://127.0.0.1:8080"}],
        "paths": {
            "/v1/events": {
                "post": {
                    "operationId": "publishEvent",
                    "summary": "Publish one event (structured or binary mode)",
                    "tags": ["events"],
                    "security": BEARER,
                    "parameters": binary_headers,
                    "requestBody": {
                        "required": True,
                        "description": "Structured mode: the whole event as "
                        "`application/cloudevents+json`; members that are not core attributes "
                        "are extension attributes (see the event schemas). Binary mode: the "
                        "event's `data` as JSON, its attributes in `ce-*` headers: the "
                        "`Content-Type` is the `datacontenttype` (`application/json`, a `+json` "
                        "type, parameters allowed, or no `Content-Type` at all: JSON), so a "
                        "`ce-datacontenttype` header is a 422; any other `ce-<name>` header "
                        "(`<name>` of `^[a-z0-9]+$`, at most 32) is an extension attribute "
                        "(`ce-traceparent`), carried to Kafka as the header `ce_<name>`. Header "
                        "values are unquoted and percent-decoded once (HTTP binding §3.1.3.2). "
                        "A bad attribute name or value is a 422 whose `errors[].field` names "
                        "it (`ce-trace_id`, `traceParent`).",
                        "content": {
                            "application/cloudevents+json": {
                                "schema": event_ref,
                                "examples": {
                                    "employee": {"value": _EVENT_EXAMPLE},
                                    "metrics": {"value": _METRICS_EXAMPLE},
                                    "traced": {
                                        "summary": "With an extension attribute and a "
                                        "datacontenttype with parameters",
                                        "value": _TRACED_EXAMPLE,
                                    },
                                },
                            },
                            "application/json": {
                                "schema": {"type": "object"},
                                "example": binary_data,
                            },
                        },
                    },
                    "responses": {
                        "202": {
                            "description": "Acknowledged by the broker.",
                            "content": json_body(
                                _ACCEPTED,
                                {
                                    "status": "accepted",
                                    "id": "hr-4711",
                                    "source": "urn:hr:example",
                                    "type": "ripples.employee.upserted.v1",
                                },
                            ),
                        },
                        **_EVENT_ERRORS,
                    },
                }
            },
            "/v1/events:batch": {
                "post": {
                    "operationId": "publishEventBatch",
                    "summary": "Publish a batch of events, all or nothing",
                    "tags": ["events"],
                    "security": BEARER,
                    "requestBody": {
                        "required": True,
                        "description": 'Zero or more structured events ("The batch MAY be '
                        'empty", HTTP binding §3.3.2; at most `INGEST_MAX_BATCH_EVENTS`). If '
                        "any is invalid, nothing is published and the 422 names each by its "
                        "index and field.",
                        "content": {
                            "application/cloudevents-batch+json": {
                                "schema": {"type": "array", "items": event_ref},
                                "examples": {
                                    "two": {"value": [_EVENT_EXAMPLE, _METRICS_EXAMPLE]},
                                    "empty": {"summary": "Publishes nothing", "value": []},
                                },
                            }
                        },
                    },
                    "responses": {
                        "202": {
                            "description": "Every event acknowledged by the broker; an empty "
                            "batch is accepted with `accepted: 0` and publishes nothing.",
                            "content": {
                                "application/json": {
                                    "schema": _BATCH_ACCEPTED,
                                    "examples": {
                                        "two": {"value": {"status": "accepted", "accepted": 2}},
                                        "empty": {"value": {"status": "accepted", "accepted": 0}},
                                    },
                                }
                            },
                        },
                        **_EVENT_ERRORS,
                    },
                }
            },
            **_connector_paths(),
            **_key_paths(),
            "/v1/employees:import": _import_path(
                "employees",
                "ripples.employee.upserted.v1",
                "employee_id, display_name, ambassador, department, locale, notify_channel, "
                "notify_address, recognition_opt_out, linkedin_member_urn, followers",
                "employee_id;display_name;ambassador;locale\r\nemp-1;Søren Ærø;ja;da\r\n",
            ),
            "/v1/jobs:import": _import_path(
                "jobs",
                "ripples.job.upserted.v1",
                "job_id, title, family, hard_to_recruit",
                "job_id,title,family,hard_to_recruit\r\njob-42,Sygeplejerske,Sundhed,ja\r\n",
            ),
            **_linkedin_connect_paths(),
            **_self_service_paths(),
            **operational_paths(
                "ingest",
                "The broker and the database are reachable",
                ["broker", "database"],
                {"431": _HEADERS_TOO_LARGE},
            ),
        },
        "components": _with_key_reader(components(_with_extensions(schemas))),
    }


def _with_key_reader(parts: dict[str, Any]) -> dict[str, Any]:
    schemes = {**parts["securitySchemes"], "keyReaderAuth": _KEY_READER_SCHEME}
    return {**parts, "securitySchemes": schemes}


if __name__ == "__main__":
    sys.stdout.write(
        orjson.dumps(openapi(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
    )
