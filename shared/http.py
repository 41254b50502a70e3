"""HTTP pieces every Ripples service shares: RFC 9457 problem documents, bounded body
reading, the operational endpoints (``/livez``, ``/readyz``, ``/metrics``, ``/openapi.json``)
and a request-metrics middleware labelled by route template, never by raw path."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import asyncpg
import orjson
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.metrics import LATENCY_BUCKETS, exposition

PROBLEM = "application/problem+json"
PROBLEM_BASE = "https://ripples.dev/problems/"


class ProblemError(Exception):
    """Raise to answer with a problem+json document."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem document.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "What is wrong, field by field (and, in a batch, index by index).",
            "items": {
                "type": "object",
                "required": ["field", "detail"],
                "properties": {
                    "field": {"type": "string", "description": "Dotted path, e.g. data.post_id"},
                    "detail": {"type": "string"},
                    "index": {"type": "integer", "description": "Position in the batch"},
                    "line": {
                        "type": "integer",
                        "description": "Line of an imported file, as a spreadsheet numbers it "
                        "(the header is line 1)",
                    },
                    "column": {
                        "type": ["string", "null"],
                        "description": "Column of an imported file (its header name); null "
                        "for the line as a whole",
                    },
                },
            },
        },
    },
}
"""The OpenAPI schema of what :func:`problem_response` writes (``components.schemas.Problem``
in every service's document)."""


def problem_response(error: ProblemError, instance: str | None = None) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + error.kind,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
    }
    if instance:
        body["instance"] = instance
    body.update(error.extra)
    return Response(orjson.dumps(body), error.status, error.headers, media_type=PROBLEM)


def json_response(
    content: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(content), status, dict(headers or {}), media_type="application/json"
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing with 413 as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    too_large = ProblemError(
        413,
        "body-too-large",
        "Request body too large",
        f"the body must not exceed {limit} bytes",
    )
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_large
        except ValueError:
            raise ProblemError(
                400, "bad-request", "Bad request", "Content-Length is not a number"
            ) from None
    # The ASGI messages themselves, not ``request.stream()``: an async generator per request
    # costs more than the usual single message it yields.
    chunks: list[bytes] = []
    size = 0
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def operational_routes(
    ready: Callable[[], Awaitable[Mapping[str, bool]]],
    openapi: Callable[[], Mapping[str, Any]],
) -> list[Route]:
    """``/livez`` (the process answers), ``/readyz`` (its dependencies answer), ``/metrics``
    and ``/openapi.json``."""

    async def livez(_: Request) -> Response:
        return json_response({"status": "live"})

    async def readyz(_: Request) -> Response:
        checks = await ready()
        ok = all(checks.values())
        body = {
            "status": "ready" if ok else "not ready",
            "checks": {name: "ok" if passed else "failing" for name, passed in checks.items()},
        }
        return json_response(body, 200 if ok else 503)

    async def metrics(_: Request) -> Response:
        body, content_type = exposition()
        return Response(body, headers={"Content-Type": content_type})

    async def openapi_json(_: Request) -> Response:
        return json_response(openapi())

    return [
        Route("/livez", livez, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
    ]


@dataclass(frozen=True)
class HttpMetrics:
    requests: Counter
    duration: Histogram


def http_metrics(service: str) -> HttpMetrics:
    """The request metrics of one service; create once per process, at import."""
    return HttpMetrics(
        Counter(
            f"{service}_http_requests_total",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
        ),
        Histogram(
            f"{service}_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
        ),
    )


class RequestMetrics:
    """ASGI middleware counting requests by route template (never the raw path), method and
    status."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics, routes: list[Route]) -> None:
        self.app = app
        self.routes = routes
        self.metrics = metrics
        for route in routes:
            metrics.duration.labels(route.path)

    def _template(self, scope: Scope) -> str:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is not Match.NONE:
                return route.path
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = self._template(scope)
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.duration.labels(route).observe(time.perf_counter() - started)


def http_problem(exc: HTTPException) -> ProblemError:
    """The problem document of one of Starlette's HTTP exceptions (404, 405, …)."""
    title = HTTPStatus(exc.status_code).phrase
    return ProblemError(
        exc.status_code,
        title.lower().replace(" ", "-"),
        title,
        str(exc.detail),
        headers=exc.headers,
    )


CLIENT_CLOSED = 499
"""The status recorded for a request whose client hung up before the answer (nginx's
"client closed request"): not a 500, and nothing is sent (there is nobody to send it to)."""

# Connection-class failures of PostgreSQL (the server is down, restarting, refusing or full):
# the request may succeed later, so 503 with Retry-After, not 500. OSError covers a refused
# or reset connection and the pool's connect/acquire timeouts (TimeoutError is an OSError);
# a handler's only sockets are its database's (broker failures have their own problem).
_UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


def problem_handlers(
    log: logging.Logger, retry_after_s: int = 5
) -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
    """Starlette exception handlers that answer every error as problem+json: a database
    that cannot be reached is a 503 with ``Retry-After``, a client that hung up is neither
    logged nor counted as an error (:data:`CLIENT_CLOSED`), anything unexpected a logged
    500."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProblemError)
        return problem_response(exc, request.url.path)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return problem_response(http_problem(exc), request.url.path)

    async def on_error(request: Request, exc: Exception) -> Response:
        log.error("unhandled error", exc_info=exc, extra={"route": request.url.path})
        return problem_response(
            ProblemError(
                500,
                "internal-error",
                "Internal error",
                "the request failed inside the service; it has been logged",
            ),
            request.url.path,
        )

    async def on_unavailable(request: Request, exc: Exception) -> Response:
        # Only the class: a PostgreSQL message may quote values.
        log.warning("database unavailable", extra={"error": type(exc).__name__})
        return problem_response(
            ProblemError(
                503,
                "database-unavailable",
                "Database unavailable",
                "the database is not reachable; retry later",
                headers={"Retry-After": str(retry_after_s)},
            ),
            request.url.path,
        )

    async def on_disconnect(_: Request, __: Exception) -> Response:
        return Response(status_code=CLIENT_CLOSED)

    return {
        ProblemError: on_problem,
        HTTPException: on_http,
        ClientDisconnect: on_disconnect,
        **dict.fromkeys(_UNAVAILABLE, on_unavailable),
        Exception: on_error,
    }
