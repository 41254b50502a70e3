"""The notifier's HTTP API: the delivery ledger per employee (CONTRACT §7) and the
operational endpoints. Served from the faust worker's loop."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from urllib.parse import urlencode

import asyncpg
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.notifier import metrics, store
from services.notifier.openapi import openapi
from shared import params
from shared.auth import ApiKeys, RequireKey
from shared.http import (
    ProblemError,
    RequestMetrics,
    json_response,
    operational_routes,
    problem_handlers,
)

log = logging.getLogger(__name__)

MAX_LIMIT = 500
KEYS_VARIABLE = "NOTIFIER_API_KEYS"
DEFAULT_LIMIT = 100
MAX_EMPLOYEE_ID = 256
MAX_CURSOR = 1024


def _page_query(request: Request) -> tuple[str | None, int, tuple[datetime, str] | None]:
    """``employee_id``, ``limit`` and ``cursor`` of GET /v1/recognitions, or a 422 naming the
    parameter (shared.params): an empty value, control characters (NUL included), a bad
    number or range, a cursor that no previous page gave."""
    query = request.query_params
    employee_id = params.identifier(query.get("employee_id"), "employee_id", MAX_EMPLOYEE_ID)
    limit = params.integer(query.get("limit"), "limit", 1, MAX_LIMIT, DEFAULT_LIMIT)
    raw_cursor = query.get("cursor")
    if raw_cursor is None:
        return employee_id, limit, None
    params.identifier(raw_cursor, "cursor", MAX_CURSOR)
    try:
        return employee_id, limit, store.read_cursor(raw_cursor)
    except store.BadCursor:
        raise params.invalid(
            "cursor", "is not a cursor from a previous page's Link header"
        ) from None


def create_api(
    pool: Callable[[], asyncpg.Pool | None],
    ready: Callable[[], Awaitable[Mapping[str, bool]]],
    api_keys: Sequence[str],
) -> Starlette:
    """The notifier's API; every ``/v1`` route needs one of ``api_keys``
    (:class:`shared.auth.RequireKey`)."""
    keys = ApiKeys(api_keys, KEYS_VARIABLE, realm="ripples-notifier")

    async def recognitions(request: Request) -> Response:
        """The ledger (CONTRACT §7), a page at a time: ordered by (due_at, recognition_id);
        when there is more, a ``Link: <…?cursor=…>; rel="next"`` header names the next page.
        Each row's ``reason`` is null or one of the closed set (policy.REASONS)."""
        employee_id, limit, after = _page_query(request)
        current = pool()
        if current is None:
            raise ProblemError(
                503, "not-ready", "Not ready", "the database is not connected yet",
                headers={"Retry-After": "1"},
            )  # fmt: skip
        async with current.acquire() as conn:
            rows, cursor = await store.recognitions_page(conn, employee_id, limit, after)
        response = json_response(rows)
        if cursor is not None:
            query: dict[str, str] = {"limit": str(limit), "cursor": cursor}
            if employee_id is not None:
                query = {"employee_id": employee_id} | query
            response.headers["Link"] = f'<{request.url.path}?{urlencode(query)}>; rel="next"'
        return response

    routes = [
        Route("/v1/recognitions", recognitions, methods=["GET"]),
        *operational_routes(ready, openapi),
    ]
    return Starlette(
        routes=routes,
        exception_handlers=problem_handlers(log),
        middleware=[
            Middleware(RequestMetrics, metrics=metrics.HTTP, routes=routes),
            Middleware(RequireKey, keys=keys),
        ],
    )
