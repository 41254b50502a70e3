"""The results API (CONTRACT §7): `/v1/summary`, `/v1/sharers`, `/v1/sharers/{employee_id}`,
`/v1/conversions/{applicant_id}`, `/v1/ripples`, plus the operational routes."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.attribution import metrics, queries
from services.attribution.openapi import openapi
from services.attribution.settings import AttributionSettings
from services.attribution.store import Conn
from shared.auth import ApiKeys, RequireKey
from shared.events import MODELS, Model
from shared.http import (
    ProblemError,
    RequestMetrics,
    json_response,
    operational_routes,
    problem_handlers,
)

log = logging.getLogger(__name__)

PoolGetter = Callable[[], Awaitable[asyncpg.Pool]]
KEYS_VARIABLE = "ATTRIBUTION_API_KEYS"


def _invalid(parameter: str, detail: str) -> ProblemError:
    return ProblemError(
        422,
        "invalid-parameter",
        "Invalid query parameter",
        f"`{parameter}`: {detail}",
        errors=[{"field": parameter, "detail": detail}],
    )


def _time(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise _invalid(name, "must be an RFC 3339 timestamp, e.g. 2026-01-01T00:00:00Z") from None
    if value.tzinfo is None:
        raise _invalid(name, "needs a UTC designator (Z) or an offset")
    return value


def period(request: Request) -> queries.Period:
    start, end = _time(request, "from"), _time(request, "to")
    if start is not None and end is not None and start > end:
        raise _invalid("to", "must not be before `from`")
    return queries.Period(start, end)


def model(request: Request) -> Model:
    raw = request.query_params.get("model", "last_touch")
    for known in MODELS:
        if raw == known:
            return known
    raise _invalid("model", f"must be one of {', '.join(MODELS)}")


def create_api(
    pool: PoolGetter,
    ready: Callable[[], Awaitable[Mapping[str, bool]]],
    settings: AttributionSettings,
) -> Starlette:
    """The results API; every ``/v1`` route needs one of ``settings.api_keys``
    (:class:`shared.auth.RequireKey`)."""
    keys = ApiKeys(settings.api_keys, KEYS_VARIABLE, realm="ripples-attribution")

    async def read(fn: Callable[[Conn], Awaitable[Any]]) -> Any:
        async with (
            (await pool()).acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            return await fn(conn)

    async def summary(request: Request) -> Response:
        p, m = period(request), model(request)
        return json_response(await read(lambda c: queries.summary(c, p, m, settings)))

    async def sharers(request: Request) -> Response:
        p, m = period(request), model(request)
        return json_response(await read(lambda c: queries.sharers(c, p, m)))

    async def sharer(request: Request) -> Response:
        p, m = period(request), model(request)
        employee_id = request.path_params["employee_id"]

        async def one(conn: Conn) -> Any:
            if not await queries.known_employee(conn, employee_id):
                return None
            return (await queries.sharers(conn, p, m, only=employee_id))[0]

        found = await read(one)
        if found is None:
            raise ProblemError(404, "not-found", "Not found", "no such employee")
        return json_response(found)

    async def conversion(request: Request) -> Response:
        applicant_id = request.path_params["applicant_id"]
        found = await read(lambda c: queries.conversion(c, applicant_id))
        if found is None:
            raise ProblemError(404, "not-found", "Not found", "no such applicant")
        return json_response(found)

    async def ripples(_: Request) -> Response:
        return json_response(await read(queries.ripples))

    routes = [
        Route("/v1/summary", summary, methods=["GET"]),
        Route("/v1/sharers", sharers, methods=["GET"]),
        Route("/v1/sharers/{employee_id}", sharer, methods=["GET"]),
        Route("/v1/conversions/{applicant_id}", conversion, methods=["GET"]),
        Route("/v1/ripples", ripples, methods=["GET"]),
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
