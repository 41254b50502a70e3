"""The results API (CONTRACT §7): `/v1/summary`, `/v1/sharers`, `/v1/sharers/{employee_id}`,
`/v1/conversions/{applicant_id}`, `/v1/ripples`, the employee's own figures
`/v1/employees/{employee_id}/ripples` (v1.1, for their page), the admin route that recomputes
every derived table (`/v1/admin/recompute`), plus the operational routes."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.attribution import metrics, queries, recompute
from services.attribution.openapi import openapi
from services.attribution.report.routes import report_routes
from services.attribution.settings import AttributionSettings
from services.attribution.store import Conn
from shared import params
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


def period(request: Request) -> queries.Period:
    query = request.query_params
    start = params.timestamp(query.get("from"), "from")
    end = params.timestamp(query.get("to"), "to")
    params.period(start, end)
    return queries.Period(start, end)


def model(request: Request, default: Model = "last_touch") -> Model:
    return params.choice(request.query_params.get("model"), "model", MODELS, default)


def recent_period(request: Request, now: datetime) -> queries.Period:
    """``from``/``to`` of the employee's figures: ``to`` absent = now, ``from`` absent =
    :data:`queries.MY_RIPPLES_DAYS` days before ``to``."""
    query = request.query_params
    start = params.timestamp(query.get("from"), "from")
    end = params.timestamp(query.get("to"), "to")
    if end is None:
        if start is not None and start >= now:
            raise params.invalid("from", "must be in the past when `to` is absent (now)")
        end = now
    if start is None:
        try:
            start = end - timedelta(days=queries.MY_RIPPLES_DAYS)
        except OverflowError:
            raise params.invalid(
                "to", f"has no date {queries.MY_RIPPLES_DAYS} days before it; give `from`"
            ) from None
    params.period(start, end)
    return queries.Period(start, end)


def path_id(request: Request, name: str) -> str:
    found = params.identifier(request.path_params[name], name)
    assert found is not None  # a path parameter is always there
    return found


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
        employee_id = path_id(request, "employee_id")

        async def one(conn: Conn) -> Any:
            if not await queries.known_employee(conn, employee_id):
                return None
            return (await queries.sharers(conn, p, m, only=employee_id))[0]

        found = await read(one)
        if found is None:
            raise ProblemError(404, "not-found", "Not found", "no such employee")
        return json_response(found)

    async def conversion(request: Request) -> Response:
        applicant_id = path_id(request, "applicant_id")
        found = await read(lambda c: queries.conversion(c, applicant_id))
        if found is None:
            raise ProblemError(404, "not-found", "Not found", "no such applicant")
        return json_response(found)

    async def ripples(_: Request) -> Response:
        return json_response(await read(queries.ripples))

    async def my_ripples(request: Request) -> Response:
        employee_id = path_id(request, "employee_id")
        p = recent_period(request, datetime.now(UTC).replace(microsecond=0))
        m = model(request, "linear")

        async def mine(conn: Conn) -> Any:
            if not await queries.known_employee(conn, employee_id):
                return None
            return await queries.my_ripples(conn, employee_id, p, m, settings)

        found = await read(mine)
        if found is None:
            raise ProblemError(404, "not-found", "Not found", "no such employee")
        return json_response(found)

    job = recompute.Job()

    async def start_recompute(_: Request) -> Response:
        # one at a time, here or in another replica (whose next_* tables are being built)
        staging = await read(recompute.staging)
        if staging or not job.start(await pool(), settings):
            raise ProblemError(
                409,
                "recompute-running",
                "A recompute is running",
                "a recompute is running; GET /v1/admin/recompute shows its progress",
            )
        return json_response(job.as_dict() | {"staging": staging}, status=202)

    async def recompute_status(_: Request) -> Response:
        staging = await read(recompute.staging)
        return json_response(job.as_dict() | {"staging": staging})

    routes = [
        Route("/v1/admin/recompute", start_recompute, methods=["POST"]),
        Route("/v1/admin/recompute", recompute_status, methods=["GET"]),
        Route("/v1/summary", summary, methods=["GET"]),
        Route("/v1/sharers", sharers, methods=["GET"]),
        Route("/v1/sharers/{employee_id}", sharer, methods=["GET"]),
        Route("/v1/conversions/{applicant_id}", conversion, methods=["GET"]),
        Route("/v1/ripples", ripples, methods=["GET"]),
        Route("/v1/employees/{employee_id}/ripples", my_ripples, methods=["GET"]),
        *report_routes(read, settings),
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
