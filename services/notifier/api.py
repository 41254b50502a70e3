"""The notifier's HTTP API: the delivery ledger per employee (CONTRACT §7) and the
operational endpoints. Served from the faust worker's loop."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.notifier import metrics, store
from services.notifier.openapi import openapi
from shared.auth import ApiKeys, RequireKey
from shared.http import (
    ProblemError,
    RequestMetrics,
    json_response,
    operational_routes,
    problem_handlers,
)

log = logging.getLogger(__name__)

MAX_ROWS = 10_000
KEYS_VARIABLE = "NOTIFIER_API_KEYS"


def create_api(
    pool: Callable[[], asyncpg.Pool | None],
    ready: Callable[[], Awaitable[Mapping[str, bool]]],
    api_keys: Sequence[str],
) -> Starlette:
    """The notifier's API; every ``/v1`` route needs one of ``api_keys``
    (:class:`shared.auth.RequireKey`)."""
    keys = ApiKeys(api_keys, KEYS_VARIABLE, realm="ripples-notifier")

    async def recognitions(request: Request) -> Response:
        employee_id = request.query_params.get("employee_id", "").strip() or None
        if employee_id is not None and len(employee_id) > 256:
            raise ProblemError(
                400,
                "invalid-parameter",
                "Invalid parameter",
                "`employee_id` is at most 256 characters",
                errors=[{"field": "employee_id", "detail": "too long"}],
            )
        raw_limit = request.query_params.get("limit", str(MAX_ROWS))
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_ROWS:
            raise ProblemError(
                400,
                "invalid-parameter",
                "Invalid parameter",
                f"`limit` is a whole number from 1 to {MAX_ROWS}",
                errors=[{"field": "limit", "detail": "out of range"}],
            )
        current = pool()
        if current is None:
            raise ProblemError(
                503, "not-ready", "Not ready", "the database is not connected yet",
                headers={"Retry-After": "1"},
            )  # fmt: skip
        async with current.acquire() as conn:
            rows: list[dict[str, Any]] = await store.recognitions_of(
                conn, employee_id, int(raw_limit)
            )
        return json_response(rows)

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
