"""The ingest HTTP API (CONTRACT §7 "Ingest")."""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections import Counter as Tally
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx
import msgspec
from prometheus_client import Counter
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from services.ingest import directory
from services.ingest import keys as personal
from services.ingest.ats import Webhooks
from services.ingest.clicks import ClickBuffer
from services.ingest.connect import Connect
from services.ingest.database import DB_ERRORS, Database, published_but_not, unavailable
from services.ingest.imports import Imports
from services.ingest.linkedin import LinkedIn
from services.ingest.links import Links
from services.ingest.openapi import openapi
from services.ingest.page import SelfService, record_jobs
from services.ingest.page import record as record_people
from services.ingest.publisher import BrokerUnavailable, Publisher
from services.ingest.settings import IngestSettings
from services.ingest.tokens import TokenCipher, parse_keys
from shared import cloudevents as ce
from shared.auth import ApiKeys, protected
from shared.events import BY_TYPE, EMPLOYEES, INBOUND_TYPES, Envelope, JobUpsertedEvent
from shared.http import (
    HttpMetrics,
    ProblemError,
    RequestMetrics,
    http_metrics,
    json_response,
    operational_routes,
    problem_handlers,
    problem_response,
    read_body,
)
from shared.metrics import preinit
from shared.settings import DatabaseSettings, KafkaSettings

log = logging.getLogger(__name__)

EVENT_TYPES = (*INBOUND_TYPES, "unknown")
_KNOWN_TYPES = frozenset(EVENT_TYPES)
REJECT_REASONS = (
    "invalid",
    "missing_field",
    "unknown_type",
    "malformed",
    "empty_batch",
    "broker_unavailable",
)

HTTP = http_metrics("ingest")
ACCEPTED = Counter(
    "ingest_events_accepted_total", "Events the broker acknowledged, by event type.", ["type"]
)
REJECTED = Counter(
    "ingest_events_rejected_total", "Events refused, by event type and reason.", ["type", "reason"]
)
preinit(ACCEPTED, INBOUND_TYPES)
_ACCEPTED = {event_type: ACCEPTED.labels(event_type) for event_type in INBOUND_TYPES}
preinit(REJECTED, EVENT_TYPES, REJECT_REASONS)


def headers_too_large(scope: Scope, limit: int) -> ProblemError | None:
    """The 431 problem when the request line and headers of ``scope`` exceed ``limit`` bytes.
    uvicorn's httptools parser accepts any size (a 1 MB header got 202 in
    tests/reliability/test_bad_input.py before this), so the limit is enforced here."""
    size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    size += sum(len(name) + len(value) + 4 for name, value in scope["headers"])
    if size <= limit:
        return None
    return ProblemError(
        431,
        "headers-too-large",
        "Request header fields too large",
        f"the request line and headers must not exceed {limit} bytes",
    )


class HeaderLimit:
    """ASGI middleware answering 431 problem+json when the request line and headers exceed
    ``limit`` bytes (see :func:`headers_too_large`)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            error = headers_too_large(scope, self.limit)
            if error is not None:
                await problem_response(error, scope.get("path"))(scope, receive, send)
                return
        await self.app(scope, receive, send)


Handler = Callable[[Request], Awaitable[Response]]
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


def hot_route(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """The route template (and path parameters) of the requests :class:`HotRoutes` answers
    itself, or None for every other request. HEAD is answered like GET on ``/r/{link_code}``
    (Starlette adds HEAD to GET routes), so a link preview's HEAD takes the same path."""
    if method == "POST":
        if path == "/v1/events" or path == "/v1/events:batch":
            return path, {}
    elif (method == "GET" or method == "HEAD") and path.startswith("/r/"):
        code = path[3:]
        if code and "/" not in code:
            return "/r/{link_code}", {"link_code": code}
    return None


class HotRoutes:
    """Pure ASGI front for the three routes that carry the load: ``POST /v1/events``,
    ``POST /v1/events:batch`` and ``GET /r/{link_code}``.

    They are dispatched straight to their handlers, skipping Starlette's middleware stack,
    exception middlewares and route matching (about a third of the CPU of a single-event
    request). Everything those layers do for these routes is done here the same way: the 431
    header limit, the API key (:meth:`shared.auth.ApiKeys.check`, the check
    :class:`~shared.auth.RequireKey` makes for the other routes), the request metrics by route
    template, problem+json for
    :class:`ProblemError` and Starlette's HTTP exceptions, 415 for
    :class:`~shared.cloudevents.UnsupportedContentType`, and a logged 500 for anything else.
    Every other request goes to the Starlette app.
    """

    def __init__(
        self,
        app: ASGIApp,
        handlers: Mapping[str, Handler],
        metrics: HttpMetrics,
        header_limit: int,
        errors: Mapping[type[Exception], ErrorHandler],
        keys: ApiKeys,
    ) -> None:
        self.app = app
        self.handlers = dict(handlers)
        self.keys = keys
        # Which of the routes need a key (decided once, by the rule RequireKey applies).
        self._protected = {route: protected(route) for route in self.handlers}
        self.errors: dict[type[Exception], ErrorHandler] = dict(errors)
        self.header_limit = header_limit
        self.metrics = metrics
        self._durations = {route: metrics.duration.labels(route) for route in self.handlers}
        self._counts: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = (
            hot_route(scope["method"], scope["path"])
            if scope["type"] == "http" and not scope.get("root_path")
            else None
        )
        if hot is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        route, params = hot
        response: Response
        error = headers_too_large(scope, self.header_limit)
        if error is None and self._protected[route]:
            error = self.keys.check(scope["headers"])
        scope["path_params"] = params
        request = Request(scope, receive)
        try:
            if error is not None:
                raise error
            response = await self.handlers[route](request)
        except Exception as exc:
            response = await self._answer(request, exc)
        status = response.status_code
        try:
            await response(scope, receive, send)
        finally:
            key = (route, scope["method"], status)
            count = self._counts.get(key)
            if count is None:
                count = self._counts[key] = self.metrics.requests.labels(
                    route, scope["method"], str(status)
                )
            count.inc()
            self._durations[route].observe(time.perf_counter() - started)

    async def _answer(self, request: Request, exc: Exception) -> Response:
        """The app's own exception handler for ``exc`` (the nearest class, as Starlette
        looks it up), so both paths answer an error the same way."""
        for kind in type(exc).__mro__:
            handler = self.errors.get(kind)
            if handler is not None:
                return await handler(request, exc)
        raise exc


def _type_counts(events: Sequence[Envelope]) -> dict[str, int]:
    """{event type: how many} of ``events``, counted by class (the ``type`` property costs a
    Python call per event)."""
    counts = Tally(map(type, events))
    return {_TAGS.get(kind, "unknown"): n for kind, n in counts.items()}


_TAGS: dict[type, str] = {cls: tag for tag, cls in BY_TYPE.items()}


class Ingest:
    """The request handlers, bound to one publisher and one set of settings."""

    def __init__(self, settings: IngestSettings, publisher: Publisher, database: Database) -> None:
        self.settings = settings
        self.publisher = publisher
        self.database = database

    async def _publish(
        self,
        events: Sequence[Envelope],
        request: Request,
        body: bytes,
        mode: str,
        extensions: Sequence[ce.Extensions] | None = None,
    ) -> None:
        employees = [event for event in events if event.topic is EMPLOYEES]
        # Employee events also feed ingest's directory (vendor identities → employee_id):
        # refuse them up front while the database is away rather than half-apply them.
        pool = self.database.pool if employees else None
        types = {events[0].type: 1} if len(events) == 1 else _type_counts(events)
        tombstones: list[bytes] = []
        if pool is not None:  # an upsert older than a removal stays off the compacted topic
            try:
                dropped = await directory.superseded(pool, events)
                if dropped:
                    events = [e for i, e in enumerate(events) if i not in dropped]
                    if extensions is not None:
                        extensions = [x for i, x in enumerate(extensions) if i not in dropped]
                    # nor are they recorded: the page's tables would take the name back
                    employees = [event for event in events if event.topic is EMPLOYEES]
                # a removal also ends the employee's preference records on the topic
                tombstones = await directory.removal_tombstones(pool, events)
            except DB_ERRORS as exc:
                log.warning("employee directory not read", extra={"reason": type(exc).__name__})
                raise unavailable() from None
        try:
            await self.publisher.publish(events, extensions, tombstones)
        except BrokerUnavailable as exc:
            for event_type, count in types.items():
                REJECTED.labels(event_type, "broker_unavailable").inc(count)
            log.warning("publish failed", extra={"events": len(events), "reason": str(exc)})
            raise ProblemError(
                503,
                "broker-unavailable",
                "Broker unavailable",
                "the events were not acknowledged by the broker; retry later",
                headers={"Retry-After": str(self.settings.retry_after_s)},
            ) from None
        for event_type, count in types.items():
            (_ACCEPTED.get(event_type) or ACCEPTED.labels(event_type)).inc(count)
        if pool is not None:
            emails = directory.work_emails(body, mode, request.headers)
            try:
                await directory.record(pool, employees, emails, self.settings.applicant_id_secret)
                await record_people(pool, employees)  # the employee's page and the overview
            except DB_ERRORS as exc:
                # Published, but not in the directory: ask for the (harmless) resend.
                # Only the class: PostgreSQL's message may quote the values.
                log.warning("employee directory not updated", extra={"reason": type(exc).__name__})
                raise published_but_not(
                    "the employee directory was not updated", self.settings.retry_after_s
                ) from None
        jobs = [event for event in events if isinstance(event, JobUpsertedEvent)]
        if jobs:  # the jobs the employee's page offers links for: best effort
            try:
                await record_jobs(self.database.pool, jobs)
            except (ProblemError, *DB_ERRORS) as exc:
                log.warning("jobs not recorded", extra={"reason": type(exc).__name__})

    @staticmethod
    def _refuse_nul(events: Sequence[Envelope], body: bytes, batch: bool) -> None:
        """Refuse strings holding U+0000: JSON allows them, PostgreSQL text does not, so
        they would be published and then fail in every consumer's database (found by the
        reliability fuzz: an employee event gave 503 "send them again" forever)."""
        # The only way JSON can carry U+0000; a body without any backslash is looked at with
        # memchr first (searching the 6-byte escape in a 100 KB batch cost ~2% of the CPU).
        if b"\\" not in body or b"\\u0000" not in body:
            return
        errors: list[ce.FieldError] = []
        types: list[str] = []

        def walk(value: object, path: str, index: int, event_type: str) -> None:
            if isinstance(value, str) and "\x00" in value:
                errors.append(
                    ce.FieldError(
                        path, "must not contain U+0000", "invalid", index if batch else None
                    )
                )
                types.append(event_type)
            elif isinstance(value, dict):
                for key, item in value.items():
                    walk(item, f"{path}.{key}" if path else str(key), index, event_type)
            elif isinstance(value, list):
                for position, item in enumerate(value):
                    walk(item, f"{path}[{position}]", index, event_type)

        for index, event in enumerate(events):
            walk(msgspec.to_builtins(event), "", index, event.type)
        if errors:
            raise Ingest._invalid(ce.InvalidEvent(errors, types), batch)

    @staticmethod
    def _invalid(exc: ce.InvalidEvent, batch: bool) -> ProblemError:
        for error, event_type in zip(exc.errors, exc.event_types or ["unknown"], strict=False):
            # A closed set: the type may be a client's raw `ce-type` header.
            label = event_type if event_type in _KNOWN_TYPES else "unknown"
            REJECTED.labels(label, error.reason).inc()
        if batch:
            bad = sorted({e.index for e in exc.errors if e.index is not None})
            detail = (
                f"{len(bad)} of the events are invalid (indexes {bad}); nothing was published"
                if bad
                else str(exc)
            )
        else:
            detail = str(exc)
        return ProblemError(
            422, "invalid-event", "Invalid event", detail, errors=[e.as_dict() for e in exc.errors]
        )

    async def event(self, request: Request) -> Response:
        body = await read_body(request, self.settings.max_body_bytes)
        content_type = request.headers.get("content-type")
        media = ce.media_type(content_type)
        extensions: list[ce.Extensions] = []
        try:
            if media == ce.STRUCTURED:
                event = ce.parse_structured(body, extensions)
            elif "ce-specversion" in request.headers and (
                content_type is None or ce.is_json_media(content_type)
            ):
                # Binary mode; no Content-Type (the official Python SDK's default) is JSON.
                event = ce.parse_binary(request.headers, body, extensions)
            elif media == ce.BATCH:
                raise ProblemError(
                    415,
                    "unsupported-media-type",
                    "Unsupported media type",
                    "batches go to POST /v1/events:batch",
                )
            else:
                raise ce.UnsupportedContentType(
                    media, [ce.STRUCTURED, f"{ce.JSON} with ce-* headers (binary mode)"]
                )
        except ce.InvalidEvent as exc:
            raise self._invalid(exc, batch=False) from None
        self._refuse_nul([event], body, batch=False)
        mode = "structured" if media == ce.STRUCTURED else "binary"
        await self._publish([event], request, body, mode, extensions)
        return json_response(
            {"status": "accepted", "id": event.id, "source": event.source, "type": event.type}, 202
        )

    async def batch(self, request: Request) -> Response:
        body = await read_body(request, self.settings.max_body_bytes)
        media = ce.media_type(request.headers.get("content-type"))
        if media != ce.BATCH:
            raise ce.UnsupportedContentType(media, [ce.BATCH])
        extensions: list[ce.Extensions] = []
        try:
            events = ce.parse_batch(body, extensions)
        except ce.InvalidEvent as exc:
            raise self._invalid(exc, batch=True) from None
        if not events:  # "zero or more" events (CloudEvents 1.0 §2): nothing to publish
            return json_response({"status": "accepted", "accepted": 0}, 202)
        if len(events) > self.settings.max_batch_events:
            raise ProblemError(
                413,
                "batch-too-large",
                "Batch too large",
                f"a batch holds at most {self.settings.max_batch_events} events, "
                f"this one {len(events)}",
            )
        self._refuse_nul(events, body, batch=True)
        await self._publish(events, request, body, "batch", extensions)
        return json_response({"status": "accepted", "accepted": len(events)}, 202)


GC_YOUNG_THRESHOLD = 20_000
"""Allocations between two collections of the youngest generation (CPython's default: 700)."""


def tune_gc(young_threshold: int = GC_YOUNG_THRESHOLD) -> None:
    """Make the cyclic garbage collector cheap for the request path; call once started.

    A 500-event batch allocates a few thousand tracked objects (the decoded events, their
    Kafka records) that live until the broker acknowledges them: with CPython's default
    threshold (700) each batch set off several young collections, each traversing the batch
    in flight and promoting it, and the older collections then traversed them again together
    with everything the service had built at start-up (the modules, the routes, the clients).
    Under the bench's batch load ingest's CPU per event went 7.8 -> 7.1 us with this. So: what
    exists once the service has started is frozen (moved to the permanent generation, never
    traversed again; nothing of it is garbage), and young collections run every
    ``young_threshold`` allocations instead of 700. Reference counting still frees
    everything at once; only cycles wait a little longer, bounded by the threshold.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, older, oldest)


def create_app(
    settings: IngestSettings, kafka_settings: KafkaSettings, database_settings: DatabaseSettings
) -> HotRoutes:
    """The ingest ASGI app: the hot routes answered directly (:class:`HotRoutes`), the rest
    by Starlette."""
    keys = ApiKeys(settings.api_keys, "INGEST_API_KEYS", realm="ripples-ingest")
    readers = personal.KeyReaders(settings.key_reader_api_keys, keys)
    database = Database(database_settings)
    # The keys are served and erased with sealing off too (those made while it was on).
    token_keys = parse_keys(settings.token_keys)
    store = personal.KeyStore(
        database,
        TokenCipher(token_keys) if token_keys else None,
        settings.applicant_id_secret,
        settings.shred_grace_s,
        acquire_timeout_s=settings.publish_timeout_s,
    )
    if settings.sealing and not settings.key_reader_api_keys:
        log.warning("INGEST_KEY_READER_API_KEYS is not set: no consumer can open sealed fields")
    sweeper = personal.Sweeper(store, settings.shred_sweep_interval_s)
    key_api = personal.KeyApi(store, settings.max_body_bytes)
    publisher = Publisher(
        kafka_settings,
        timeout_s=settings.publish_timeout_s,
        linger_ms=settings.linger_ms,
        health_interval_s=settings.health_interval_s,
        keys=store,
        seal=settings.sealing,
    )
    clicks = ClickBuffer(publisher, settings.click_buffer_size)
    http = httpx.AsyncClient(
        timeout=settings.vendor_timeout_s, headers={"User-Agent": "ripples-ingest/1"}
    )
    ingest = Ingest(settings, publisher, database)
    links = Links(settings, database, publisher, clicks)
    webhooks = Webhooks(settings, database, publisher, http)
    connect = Connect(settings, database, http, publisher)
    linkedin = LinkedIn(settings, database, publisher, http, connect)
    imports = Imports(settings, database, ingest._publish)
    page = SelfService(settings, database, ingest._publish, links, connect, http)

    async def ready() -> dict[str, bool]:
        return {"broker": publisher.ready, "database": await database.ready()}

    routes = [
        Route("/v1/events", ingest.event, methods=["POST"]),
        Route("/v1/events:batch", ingest.batch, methods=["POST"]),
        Route("/v1/links", links.create, methods=["POST"]),
        Route(personal.KEY_LOOKUP, key_api.lookup, methods=["POST"]),
        Route("/v1/employees:import", imports.employees, methods=["POST"]),
        Route("/v1/jobs:import", imports.jobs, methods=["POST"]),
        Route("/r/{link_code}", links.redirect, methods=["GET"]),
        Route("/v1/linkedin/invitations", connect.invite, methods=["POST"]),
        Route(
            "/v1/linkedin/connections/{employee_id}", connect.connection, methods=["GET", "DELETE"]
        ),
        Route("/v1/linkedin/posts", connect.register_post, methods=["POST"]),
        Route("/connect/linkedin/callback", connect.callback, methods=["GET"]),
        Route("/connect/linkedin/{token}", connect.open, methods=["GET"]),
        Route("/v1/employees/{employee_id}/page-links", page.page_link, methods=["POST"]),
        Route("/me/{token}", page.open, methods=["GET"]),
        Route("/me/{token}/links", page.links_form, methods=["POST"]),
        Route("/me/{token}/linkedin", page.linkedin_form, methods=["POST"]),
        Route("/me/{token}/posts", page.posts_form, methods=["POST"]),
        Route("/me/{token}/preferences", page.preferences_form, methods=["POST"]),
        Route("/v1/overview", page.overview, methods=["GET"]),
        Route("/v1/overview/links", page.overview_link, methods=["POST"]),
        Route("/overview/{token}", page.shared_overview, methods=["GET"]),
        Route("/v1/webhooks/greenhouse", webhooks.greenhouse, methods=["POST"]),
        Route("/v1/webhooks/teamtailor", webhooks.teamtailor, methods=["POST"]),
        Route("/v1/webhooks/lever", webhooks.lever, methods=["POST"]),
        Route("/v1/webhooks/linkedin", linkedin.challenge, methods=["GET"]),
        Route("/v1/webhooks/linkedin", linkedin.notification, methods=["POST"]),
        *operational_routes(ready, openapi),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await publisher.start()
        await database.start()
        clicks.start()
        linkedin.start()
        sweeper.start()
        tune_gc()
        try:
            yield
        finally:
            await sweeper.stop()
            await linkedin.stop()
            await clicks.stop()
            await publisher.stop()
            await database.stop()
            await http.aclose()

    async def on_media(request: Request, exc: Exception) -> Response:
        return problem_response(
            ProblemError(415, "unsupported-media-type", "Unsupported media type", str(exc)),
            request.url.path,
        )

    errors = {**problem_handlers(log), ce.UnsupportedContentType: on_media}
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestMetrics, metrics=HTTP, routes=routes),
            Middleware(HeaderLimit, limit=settings.max_header_bytes),
            Middleware(personal.RequireKeys, keys=keys, readers=readers),
        ],
        exception_handlers=errors,
        lifespan=lifespan,
    )
    hot = {
        "/v1/events": ingest.event,
        "/v1/events:batch": ingest.batch,
        "/r/{link_code}": links.redirect,
    }
    return HotRoutes(app, hot, HTTP, settings.max_header_bytes, errors, keys)
