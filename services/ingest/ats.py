"""Applicant tracking system webhooks: Greenhouse, Teamtailor and Lever.

Each vendor's delivery is verified with its own signature scheme (constant-time compare, on
bytes: a malformed or non-ASCII signature is a 401, never an error), deduplicated on what the
signature covers as well as on the vendor's event id (Greenhouse: the SHA-256 of the raw body;
Lever: the signed ``token``, and a ``triggeredAt`` outside the replay window is refused), and
mapped to ``applicant.applied.v1`` /
``applicant.hired.v1``. Applicants are pseudonymised here, at the edge: the applicant id is a
keyed HMAC of vendor and candidate id; no name, e-mail address or phone number leaves this
module (not in events, not in logs).

The mapping is pure (:func:`greenhouse`, :func:`teamtailor`, :func:`lever`); the handler
around it does the I/O: Lever's opportunity, and a Teamtailor job application whose webhook
lacks its relationships, are read from the vendor's API with bounded retries
(:meth:`Webhooks._vendor_get`); what cannot be read is a 503 with ``Retry-After``, so the
vendor redelivers.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import msgspec
import orjson
from asyncpg.pool import PoolConnectionProxy
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response

from services.ingest import directory
from services.ingest.database import Database, answering_503
from services.ingest.links import VISITOR
from services.ingest.publisher import BrokerUnavailable, Publisher
from services.ingest.settings import IngestSettings
from shared.events import (
    ApplicantApplied,
    ApplicantAppliedEvent,
    ApplicantHired,
    ApplicantHiredEvent,
    Envelope,
)
from shared.http import ProblemError, json_response, read_body
from shared.metrics import preinit

log = logging.getLogger(__name__)

VENDORS = ("greenhouse", "teamtailor", "lever", "linkedin")
OUTCOMES = ("accepted", "duplicate", "ignored", "unauthorized", "invalid", "unavailable")
DELIVERIES = Counter(
    "ingest_webhook_deliveries_total",
    "Webhook deliveries from vendors, by vendor and outcome.",
    ["vendor", "outcome"],
)
preinit(DELIVERIES, VENDORS, OUTCOMES)


LINK_CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # the contract's link_code


class Invalid(Exception):
    """A signed delivery whose content is not what the vendor documents."""


# --- pure rules ----------------------------------------------------------------------------


def pseudonym(secret: str, vendor: str, candidate_id: str) -> str:
    """The applicant id Ripples uses: stable per vendor candidate, not reversible."""
    digest = hmac.new(secret.encode(), f"{vendor}:{candidate_id}".encode(), hashlib.sha256)
    return "apl_" + digest.hexdigest()[:32]


def _hmac_hex(key: str, message: bytes) -> bytes:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest().encode()


def as_bytes(text: str) -> bytes:
    """Any ``str`` as bytes, for a comparison that cannot raise: a header value (Starlette
    decodes headers as Latin-1, so a non-ASCII byte is a non-ASCII character) or a JSON string
    (which may hold a lone surrogate). ``hmac.compare_digest(str, str)`` raises TypeError on
    non-ASCII text: that was an unauthenticated 500 on every webhook."""
    return text.encode("utf-8", "surrogatepass")


def verify_greenhouse(secret: str, body: bytes, header: str | None) -> bool:
    """``Signature: sha256 <hex HMAC-SHA256 of the raw body>``."""
    algorithm, _, signature = (header or "").partition(" ")
    expected = _hmac_hex(secret, body)
    same = hmac.compare_digest(as_bytes(signature), expected)
    return bool(secret) and algorithm == "sha256" and same


def verify_teamtailor(key: str, payload: bytes, signature: str | None) -> bool:
    """``signature`` = Base64 of the hex HMAC-SHA256 of the ``payload`` member's JSON text."""
    expected = base64.b64encode(_hmac_hex(key, payload))
    return bool(key) and hmac.compare_digest(as_bytes(signature or ""), expected)


def verify_lever(signature_token: str, token: str, triggered_at: str, signature: str) -> bool:
    """``signature`` = hex HMAC-SHA256 of ``token + triggeredAt`` keyed by the signature token."""
    expected = _hmac_hex(signature_token, as_bytes(token + triggered_at))
    return bool(signature_token) and hmac.compare_digest(as_bytes(signature), expected)


def lever_triggered_at(value: Any) -> datetime | None:
    """Lever's ``triggeredAt`` (epoch milliseconds, a number or a string of digits), or None
    when it is not one or is outside the years :data:`EARLIEST`-:data:`LATEST`."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    try:
        return _time(value, "triggeredAt")
    except Invalid:
        return None


def outside_window(at: datetime, now: datetime, window_s: float, skew_s: float) -> str | None:
    """Why a signed timestamp cannot be a fresh delivery (older than the replay window, or
    further in the future than clocks disagree), or None when it can."""
    if at < now - timedelta(seconds=window_s):
        return f"older than the replay window ({window_s:g} s)"
    if at > now + timedelta(seconds=skew_s):
        return f"more than {skew_s:g} s in the future"
    return None


def refs_from_url(url: str | None) -> tuple[str | None, str | None]:
    """(``ripples_ref``, ``ripples_vid``) from a source/referring URL's query, when valid."""
    if not url:
        return None, None
    try:
        query = dict(parse_qsl(urlsplit(url).query))
    except ValueError:
        return None, None
    ref = query.get("ripples_ref")
    vid = query.get("ripples_vid")
    return (
        ref if ref and LINK_CODE.match(ref) else None,
        vid if vid and VISITOR.match(vid) else None,
    )


@dataclass(frozen=True)
class Applied:
    candidate_id: str
    job_id: str
    applied_at: datetime
    source: str | None = None
    link_code: str | None = None
    visitor_id: str | None = None
    referrer_employee_id: str | None = None
    referrer_email: str | None = None


@dataclass(frozen=True)
class Hired:
    candidate_id: str
    job_id: str
    hired_at: datetime


Change = Applied | Hired


@dataclass(frozen=True)
class Delivery:
    """A verified delivery: the vendor's id for it, and what it says (may be nothing).

    ``also`` are further keys the same delivery is known by, taken from what the signature
    covers: a replay under a new (unsigned) id still matches one of them."""

    delivery_id: str
    changes: list[Change]
    also: tuple[str, ...] = ()

    @property
    def keys(self) -> list[str]:
        return [self.delivery_id, *self.also]


def _get(obj: Any, *path: str | int) -> Any:
    for step in path:
        if isinstance(step, int):
            obj = obj[step] if isinstance(obj, list) and len(obj) > step else None
        else:
            obj = obj.get(step) if isinstance(obj, dict) else None
    return obj


def _id(value: Any, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise Invalid(f"{field} is missing")
    return str(value)


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
"""Vendor timestamps outside [EARLIEST, LATEST) are absurd (year 1 with an offset has no UTC
equivalent; epoch values past the year 9999 do not fit a datetime; a year-1 time would
overflow the attribution's look-back arithmetic): refused as invalid, never a 500."""


def _time(value: Any, field: str, default: datetime | None = None) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            parsed = datetime.fromtimestamp(value / 1000, UTC)  # epoch milliseconds
        except (OverflowError, OSError, ValueError):
            raise Invalid(f"{field} is out of range") from None
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            parsed.astimezone(UTC)  # 0001-01-01T00:00:00+01:00 is in the year 0 in UTC
        except (OverflowError, ValueError):
            raise Invalid(f"{field} is not a timestamp in the years 1970-8999") from None
    elif default is not None:
        return default
    else:
        raise Invalid(f"{field} is missing")
    if not EARLIEST <= parsed < LATEST:
        raise Invalid(f"{field} is not a timestamp in the years 1970-8999")
    return parsed


def vendor_time(value: Any, field: str) -> datetime:
    """A vendor timestamp (epoch milliseconds or RFC 3339); :class:`Invalid` when it is
    missing, malformed or absurd (outside the years 1970-8999)."""
    return _time(value, field)


def _custom_value(fields: Any, name: str) -> str | None:
    value = _get(fields, name)
    if isinstance(value, dict):
        value = value.get("value")
    return value if isinstance(value, str) and value else None


GREENHOUSE_APPLIED = "new_candidate_application"
GREENHOUSE_HIRED = ("hire_candidate", "candidate_hired")


def greenhouse(document: Any, event_id: str | None, body: bytes, now: datetime) -> Delivery:
    """A Greenhouse delivery (``action`` + ``payload.application``), known by its
    ``Greenhouse-Event-ID`` and by the SHA-256 of the signed body."""
    digest = hashlib.sha256(body).hexdigest()
    delivery_id = event_id or digest
    also = (f"sha256:{digest}",)
    action = _get(document, "action")
    application = _get(document, "payload", "application")
    if action not in (GREENHOUSE_APPLIED, *GREENHOUSE_HIRED):
        return Delivery(delivery_id, [], also)
    if not isinstance(application, dict):
        raise Invalid("payload.application is missing")
    if application.get("prospect") is True:
        return Delivery(delivery_id, [], also)  # a sourced prospect has not applied
    candidate = _get(application, "candidate", "id") or _get(application, "candidate_id")
    if candidate is None:
        candidate = _get(document, "payload", "candidate", "id")
    candidate_id = _id(candidate, "payload.application.candidate.id")
    job_id = _id(_get(application, "jobs", 0, "id"), "payload.application.jobs[0].id")
    if action == GREENHOUSE_APPLIED:
        fields = _get(application, "custom_fields")
        ref, vid = refs_from_url(_custom_value(fields, "ripples_source_url"))
        ref = _custom_value(fields, "ripples_ref") or ref
        vid = _custom_value(fields, "ripples_vid") or vid
        ref, vid = refs_from_url(f"?ripples_ref={ref or ''}&ripples_vid={vid or ''}")
        credited = _get(application, "credited_to")
        employee = _get(credited, "employee_id")
        email = _get(credited, "email")
        # Application events carry `source.name`; the hire example shows `public_name`.
        source = _get(application, "source", "name") or _get(application, "source", "public_name")
        return Delivery(
            delivery_id,
            [
                Applied(
                    candidate_id,
                    job_id,
                    _time(_get(application, "applied_at"), "payload.application.applied_at"),
                    source=source if isinstance(source, str) else None,
                    link_code=ref,
                    visitor_id=vid,
                    referrer_employee_id=str(employee) if employee else None,
                    referrer_email=email if isinstance(email, str) and email else None,
                )
            ],
            also,
        )
    # "application.offer.resolved_at: Date the offer was accepted" (Greenhouse's hire_candidate
    # docs); without an offer in the payload, the time the hire reached us is the best there is.
    resolved = _get(application, "offer", "resolved_at")
    hired_at = _time(resolved, "payload.application.offer.resolved_at", default=now)
    return Delivery(delivery_id, [Hired(candidate_id, job_id, hired_at)], also)


TEAMTAILOR_EVENTS = ("job_application.create", "job_application.update")


def _teamtailor_stage_type(data: Any, included: Any) -> Any:
    stage_id = _get(data, "relationships", "stage", "data", "id")
    return next(
        (
            _get(item, "attributes", "stage-type")
            for item in (included if isinstance(included, list) else [])
            if isinstance(item, dict)
            and item.get("type") == "stages"
            and item.get("id") == stage_id
        ),
        None,
    )


def _teamtailor_included(document: Any) -> Any:
    return _get(document, "included") or _get(document, "data", "included") or []


def teamtailor_application_to_read(payload: Any) -> str | None:
    """The job application id to read from Teamtailor's API, when the webhook ``payload`` is
    a job-application event without what the mapping needs (the candidate and job
    relationships and, for an update, the included stage). Teamtailor's documented webhook
    example has only ``data.id``, ``data.type`` and ``data.attributes``."""
    if _get(payload, "event_name") not in TEAMTAILOR_EVENTS:
        return None
    data = _get(payload, "data")
    complete = all(
        _get(data, "relationships", name, "data", "id") is not None for name in ("candidate", "job")
    )
    if complete and _get(payload, "event_name") == "job_application.update":
        complete = _teamtailor_stage_type(data, _teamtailor_included(payload)) is not None
    if complete:
        return None
    return _id(_get(data, "id"), "payload.data.id")


def teamtailor(payload: Any, raw_payload: bytes, document: Any = None) -> Delivery:
    """A Teamtailor company webhook (``payload.event_name`` + JSON:API ``payload.data``),
    known by the SHA-256 of the signed ``payload``; ``document`` is the job application as
    Teamtailor's API returned it (``include=candidate,job,stage``), when the webhook lacked
    its relationships: then its ``data`` and ``included`` are used instead of the payload's."""
    delivery_id = hashlib.sha256(raw_payload).hexdigest()
    event = _get(payload, "event_name")
    if event not in TEAMTAILOR_EVENTS:
        return Delivery(delivery_id, [])
    source = payload if document is None else document
    data = _get(source, "data")
    attributes = _get(data, "attributes") or {}
    candidate_id = _id(
        _get(data, "relationships", "candidate", "data", "id"),
        "payload.data.relationships.candidate.data.id",
    )
    job_id = _id(
        _get(data, "relationships", "job", "data", "id"), "payload.data.relationships.job.data.id"
    )
    if event == "job_application.create":
        ref, vid = refs_from_url(_get(attributes, "referring-url"))
        site = _get(attributes, "referring-site")
        return Delivery(
            delivery_id,
            [
                Applied(
                    candidate_id,
                    job_id,
                    _time(_get(attributes, "created-at"), "payload.data.attributes.created-at"),
                    source=site if isinstance(site, str) and site else None,
                    link_code=ref,
                    visitor_id=vid,
                )
            ],
        )
    if _teamtailor_stage_type(data, _teamtailor_included(source)) != "hired":
        return Delivery(delivery_id, [])
    hired_at = _get(attributes, "changed-stage-at") or _get(attributes, "updated-at")
    return Delivery(delivery_id, [Hired(candidate_id, job_id, _time(hired_at, "changed-stage-at"))])


LEVER_EVENTS = ("applicationCreated", "candidateHired")


def lever(document: Any, opportunity: Any) -> Delivery:
    """A Lever delivery, with the opportunity read from Lever's API (``?expand=applications``),
    known by its ``id`` and by its signed ``token``."""
    delivery_id = _id(_get(document, "id"), "id")
    also = lever_keys(document)
    event = _get(document, "event")
    if event not in LEVER_EVENTS:
        return Delivery(delivery_id, [], also)
    data = _get(document, "data")
    candidate_id = _id(
        _get(data, "candidateId") or _get(data, "contactId") or _get(data, "opportunityId"),
        "data.candidateId",
    )
    applications = _get(opportunity, "applications") or []
    wanted = _get(data, "applicationId")
    application = next(
        (a for a in applications if isinstance(a, dict) and a.get("id") == wanted),
        applications[0] if applications else None,
    )
    job_id = _id(_get(application, "posting"), "opportunity.applications[].posting")
    if event == "candidateHired":
        # A hired candidate's opportunity is archived with a hired reason; `archivedAt` is when.
        # The webhook's own `triggeredAt` (the hire event) when the opportunity says nothing.
        archived = _get(opportunity, "archived", "archivedAt")
        if archived is not None:
            hired_at = _time(archived, "opportunity.archived.archivedAt")
        else:
            hired_at = _time(_get(document, "triggeredAt"), "triggeredAt")
        return Delivery(delivery_id, [Hired(candidate_id, job_id, hired_at)], also)
    sources = [s for s in (_get(opportunity, "sources") or []) if isinstance(s, str)]
    ref = vid = None
    for entry in sources:
        found_ref, found_vid = refs_from_url("?" + entry)
        ref, vid = ref or found_ref, vid or found_vid
    plain = [s for s in sources if "ripples_" not in s]
    applied_at = _get(application, "createdAt") or _get(document, "triggeredAt")
    return Delivery(
        delivery_id,
        [
            Applied(
                candidate_id,
                job_id,
                _time(applied_at, "createdAt"),
                source=plain[0] if plain else None,
                link_code=ref,
                visitor_id=vid,
            )
        ],
        also,
    )


def lever_keys(document: Any) -> tuple[str, ...]:
    """The key of a Lever delivery that its signature covers: ``token:<token>``."""
    token = _get(document, "token")
    return (f"token:{token}",) if isinstance(token, str) else ()


def to_events(vendor: str, delivery: Delivery, secret: str, now: datetime) -> list[Envelope]:
    """The contract events of a delivery whose referrers are resolved."""
    events: list[Envelope] = []
    source = f"urn:ripples:ingest:{vendor}"
    for index, change in enumerate(delivery.changes):
        applicant_id = pseudonym(secret, vendor, change.candidate_id)
        event_id = f"{delivery.delivery_id}:{index}"
        if isinstance(change, Applied):
            events.append(
                ApplicantAppliedEvent(
                    specversion="1.0",
                    id=event_id,
                    source=source,
                    time=now,
                    data=ApplicantApplied(
                        applicant_id=applicant_id,
                        job_id=change.job_id,
                        applied_at=change.applied_at,
                        visitor_id=change.visitor_id,
                        link_code=change.link_code,
                        referrer_employee_id=change.referrer_employee_id,
                        source=change.source[:1024] if change.source else None,
                    ),
                )
            )
        else:
            events.append(
                ApplicantHiredEvent(
                    specversion="1.0",
                    id=event_id,
                    source=source,
                    time=now,
                    data=ApplicantHired(
                        applicant_id=applicant_id, job_id=change.job_id, hired_at=change.hired_at
                    ),
                )
            )
    return events


def _retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header (delta-seconds or an HTTP date) in seconds from now."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max(0.0, (at - datetime.now(UTC)).total_seconds())


# --- HTTP ----------------------------------------------------------------------------------


class _TeamtailorBody(msgspec.Struct):
    payload: msgspec.Raw
    signature: str | None = None


_decode_teamtailor = msgspec.json.Decoder(_TeamtailorBody).decode


def unauthorized(vendor: str, what: str) -> ProblemError:
    DELIVERIES.labels(vendor, "unauthorized").inc()
    return ProblemError(401, "bad-signature", "Bad signature", what)


class Webhooks:
    def __init__(
        self,
        settings: IngestSettings,
        database: Database,
        publisher: Publisher,
        http: httpx.AsyncClient,
    ) -> None:
        self.settings = settings
        self.database = database
        self.publisher = publisher
        self.http = http

    async def greenhouse(self, request: Request) -> Response:
        body = await read_body(request, self.settings.max_body_bytes)
        if not verify_greenhouse(
            self.settings.greenhouse_secret_key, body, request.headers.get("signature")
        ):
            raise unauthorized("greenhouse", "the Signature header does not match the body")
        document = self._json("greenhouse", body)
        return await self._deliver(
            "greenhouse",
            lambda: self._parse(
                "greenhouse",
                lambda: greenhouse(
                    document, request.headers.get("greenhouse-event-id"), body, datetime.now(UTC)
                ),
            ),
        )

    async def teamtailor(self, request: Request) -> Response:
        body = await read_body(request, self.settings.max_body_bytes)
        try:
            envelope = _decode_teamtailor(body)
        except (msgspec.MsgspecError, UnicodeDecodeError):  # msgspec's invalid UTF-8
            raise unauthorized("teamtailor", "no signed payload in the body") from None
        if not verify_teamtailor(
            self.settings.teamtailor_signature_key, bytes(envelope.payload), envelope.signature
        ):
            raise unauthorized("teamtailor", "the signature does not match the payload")
        raw = bytes(envelope.payload)
        payload = self._json("teamtailor", raw)

        async def parse() -> Delivery:
            wanted = self._parse_id("teamtailor", lambda: teamtailor_application_to_read(payload))
            if wanted is None:
                return self._parse("teamtailor", lambda: teamtailor(payload, raw))
            delivery_id = hashlib.sha256(raw).hexdigest()
            if await self._seen("teamtailor", [delivery_id]):
                return Delivery(delivery_id, [])  # a redelivery: no need to ask Teamtailor
            document = await self._teamtailor_application(wanted)
            if document is None:  # 404: deleted before we read it, nothing to count
                return Delivery(delivery_id, [])
            return self._parse("teamtailor", lambda: teamtailor(payload, raw, document))

        return await self._deliver("teamtailor", parse)

    async def lever(self, request: Request) -> Response:
        body = await read_body(request, self.settings.max_body_bytes)
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise unauthorized("lever", "the body is not a signed Lever delivery") from None
        token, triggered, signature = (
            _get(document, k) for k in ("token", "triggeredAt", "signature")
        )
        if not (
            isinstance(token, str)
            and isinstance(triggered, int | str)
            and not isinstance(triggered, bool)
            and isinstance(signature, str)
            and verify_lever(self.settings.lever_signature_token, token, str(triggered), signature)
        ):
            raise unauthorized("lever", "the signature does not match token + triggeredAt")
        at = lever_triggered_at(triggered)
        if at is None:
            DELIVERIES.labels("lever", "invalid").inc()
            raise ProblemError(
                422,
                "invalid-delivery",
                "Invalid delivery",
                "triggeredAt is not a timestamp in epoch milliseconds (years 1970-8999)",
            )
        stale = outside_window(
            at,
            datetime.now(UTC),
            self.settings.lever_replay_window_s,
            self.settings.webhook_clock_skew_s,
        )
        if stale:
            raise unauthorized("lever", f"triggeredAt is {stale}: not a fresh delivery")

        async def parse() -> Delivery:
            if _get(document, "event") not in LEVER_EVENTS:
                return self._parse("lever", lambda: lever(document, None))
            delivery_id = _get(document, "id")
            keys = [k for k in (delivery_id, *lever_keys(document)) if isinstance(k, str)]
            if await self._seen("lever", keys):
                # A redelivery: no need to ask Lever again.
                return Delivery(str(delivery_id), [], lever_keys(document))
            opportunity = await self._lever_opportunity(_get(document, "data", "opportunityId"))
            return self._parse("lever", lambda: lever(document, opportunity))

        return await self._deliver("lever", parse)

    async def _lever_opportunity(self, opportunity_id: Any) -> Any:
        if not isinstance(opportunity_id, str) or not opportunity_id.isascii():
            DELIVERIES.labels("lever", "invalid").inc()
            raise ProblemError(
                422, "invalid-delivery", "Invalid delivery", "data.opportunityId is missing"
            )
        base = self.settings.lever_api_base_url.rstrip("/")
        document = await self._vendor_get(
            "lever",
            f"{base}/opportunities/{quote(opportunity_id, safe='')}",
            params={"expand": "applications"},
            auth=(self.settings.lever_api_key, ""),
            what="the Lever opportunity",
        )
        return _get(document, "data")

    async def _teamtailor_application(self, application_id: str) -> Any:
        """``GET /v1/job-applications/{id}?include=candidate,job,stage`` (JSON:API), or None
        when Teamtailor no longer has it (404)."""
        if not self.settings.teamtailor_api_key:
            DELIVERIES.labels("teamtailor", "unavailable").inc()
            raise ProblemError(
                503,
                "not-configured",
                "Not configured",
                "the webhook carries no relationships and INGEST_TEAMTAILOR_API_KEY is not set",
                headers={"Retry-After": str(self.settings.retry_after_s)},
            )
        base = self.settings.teamtailor_api_base_url.rstrip("/")
        return await self._vendor_get(
            "teamtailor",
            f"{base}/v1/job-applications/{quote(application_id, safe='')}",
            params={"include": "candidate,job,stage"},
            headers={
                "Authorization": f"Token token={self.settings.teamtailor_api_key}",
                "X-Api-Version": self.settings.teamtailor_api_version,
                "Accept": "application/vnd.api+json",
            },
            what="the Teamtailor job application",
            missing_ok=True,
        )

    async def _vendor_get(
        self,
        vendor: str,
        url: str,
        *,
        params: dict[str, str],
        what: str,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        missing_ok: bool = False,
    ) -> Any:
        """The JSON body of a vendor API read, with bounded retries: a connection error, a
        timeout, a 5xx or a 429 is tried again (``INGEST_VENDOR_ATTEMPTS`` in all) after an
        exponential backoff, or after the 429's ``Retry-After`` when that is at most
        ``INGEST_VENDOR_MAX_WAIT_S``. Whatever still fails is a 503 with ``Retry-After``, so the
        vendor redelivers the webhook later (never a 500); a 404 is None when ``missing_ok``."""
        settings = self.settings
        retry_after = float(settings.retry_after_s)
        reason = "error"
        for attempt in range(max(1, settings.vendor_attempts)):
            wait = settings.vendor_backoff_s * 2**attempt
            try:
                response = await self.http.get(
                    url,
                    params=params,
                    headers=headers,
                    auth=auth or httpx.USE_CLIENT_DEFAULT,
                    timeout=settings.vendor_timeout_s,
                )
            except httpx.HTTPError as exc:
                reason = type(exc).__name__
            else:
                if response.status_code == 404 and missing_ok:
                    return None
                if response.is_success:
                    try:
                        return response.json()
                    except ValueError:
                        reason = "not JSON"
                        break
                reason = f"HTTP {response.status_code}"
                if response.status_code == 429:
                    asked = _retry_after(response.headers.get("retry-after"))
                    if asked is not None:
                        retry_after = max(retry_after, asked)
                        if asked > settings.vendor_max_wait_s:
                            break  # longer than a webhook request may wait: pass it on
                        wait = asked
                elif response.status_code < 500:
                    break  # 401, 403, 400…: asking again will not help
            if attempt + 1 < settings.vendor_attempts:
                await asyncio.sleep(wait)
        DELIVERIES.labels(vendor, "unavailable").inc()
        log.warning(f"{vendor} api failed", extra={"vendor": vendor, "reason": reason})
        raise ProblemError(
            503,
            "vendor-unavailable",
            "Vendor API unavailable",
            f"{what} could not be read ({reason}); redeliver later",
            headers={"Retry-After": str(math.ceil(retry_after))},
        )

    @staticmethod
    def _json(vendor: str, body: bytes) -> Any:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            DELIVERIES.labels(vendor, "invalid").inc()
            raise ProblemError(422, "invalid-delivery", "Invalid delivery", "not JSON") from None

    @staticmethod
    def _parse(vendor: str, parse: Callable[[], Delivery]) -> Delivery:
        try:
            return parse()
        except Invalid as exc:
            DELIVERIES.labels(vendor, "invalid").inc()
            raise ProblemError(422, "invalid-delivery", "Invalid delivery", str(exc)) from None

    @staticmethod
    def _parse_id(vendor: str, parse: Callable[[], str | None]) -> str | None:
        try:
            return parse()
        except Invalid as exc:
            DELIVERIES.labels(vendor, "invalid").inc()
            raise ProblemError(422, "invalid-delivery", "Invalid delivery", str(exc)) from None

    async def _seen(
        self, vendor: str, keys: list[str], conn: PoolConnectionProxy | None = None
    ) -> bool:
        """Whether a delivery known by any of ``keys`` was published already."""
        found = await (conn or self.database.pool).fetchval(
            "select 1 from ingest_deliveries where vendor = $1"
            " and delivery_id = any($2::text[]) limit 1",
            vendor,
            keys,
        )
        return found is not None

    async def _resolve(self, change: Change) -> Change:
        if not isinstance(change, Applied):
            return change
        pool = self.database.pool
        employee = change.referrer_employee_id
        if employee and not await directory.known(pool, employee):
            employee = None
        if employee is None and change.referrer_email:
            employee = await directory.by_email(
                pool, self.settings.applicant_id_secret, change.referrer_email
            )
        return replace(change, referrer_employee_id=employee, referrer_email=None)

    async def _deliver(
        self, vendor: str, parse: Callable[[], Delivery | Awaitable[Delivery]]
    ) -> Response:
        try:
            with answering_503():
                return await self._publish(vendor, parse)
        except ProblemError as exc:
            if exc.status == 503 and exc.kind == "database-unavailable":
                DELIVERIES.labels(vendor, "unavailable").inc()
            raise

    async def _publish(
        self, vendor: str, parse: Callable[[], Delivery | Awaitable[Delivery]]
    ) -> Response:
        secret = self.settings.applicant_id_secret
        if not secret:
            DELIVERIES.labels(vendor, "unavailable").inc()
            raise ProblemError(
                503,
                "not-configured",
                "Not configured",
                "INGEST_APPLICANT_ID_SECRET is not set, so applicants cannot be pseudonymised",
            )
        pool = self.database.pool
        parsed = parse()
        delivery = parsed if isinstance(parsed, Delivery) else await parsed
        # Referrers resolved first, so the lock below holds one connection and needs no other.
        resolved = [await self._resolve(change) for change in delivery.changes]
        delivery = replace(delivery, changes=resolved)
        async with pool.acquire() as conn, conn.transaction():
            # One delivery at a time per signed key (until this transaction ends): a copy
            # racing the original waits here, then finds it recorded.
            signed = (delivery.also or (delivery.delivery_id,))[0]
            await conn.execute(
                "select pg_advisory_xact_lock(hashtextextended($1, 0))", f"{vendor}:{signed}"
            )
            return await self._publish_once(vendor, delivery, conn)

    async def _publish_once(
        self, vendor: str, delivery: Delivery, conn: PoolConnectionProxy
    ) -> Response:
        secret = self.settings.applicant_id_secret
        if await self._seen(vendor, delivery.keys, conn):
            DELIVERIES.labels(vendor, "duplicate").inc()
            log.info(
                "duplicate delivery", extra={"vendor": vendor, "delivery": delivery.delivery_id}
            )
            return json_response({"status": "duplicate", "events": 0})
        if not delivery.changes:
            DELIVERIES.labels(vendor, "ignored").inc()
            return json_response({"status": "ignored", "events": 0})
        events = to_events(vendor, delivery, secret, datetime.now(UTC))
        try:
            await self.publisher.publish(events)
        except BrokerUnavailable:
            DELIVERIES.labels(vendor, "unavailable").inc()
            raise ProblemError(
                503,
                "broker-unavailable",
                "Broker unavailable",
                "the delivery was not published; redeliver later",
                headers={"Retry-After": str(self.settings.retry_after_s)},
            ) from None
        await conn.executemany(
            "insert into ingest_deliveries (vendor, delivery_id) values ($1, $2)"
            " on conflict do nothing",
            [(vendor, key) for key in delivery.keys],
        )
        DELIVERIES.labels(vendor, "accepted").inc()
        log.info(
            "delivery accepted",
            extra={"vendor": vendor, "delivery": delivery.delivery_id, "events": len(events)},
        )
        return json_response({"status": "accepted", "events": len(events)})
