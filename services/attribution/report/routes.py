"""The report's routes (CONTRACT §9):

- ``GET /v1/report?from&to&model&locale&format`` — the period report (key required);
- ``POST /v1/report/links`` — a signed, expiring share link (key required);
- ``GET /reports/{token}`` — the browser route a share link opens: no key, checked by its
  token; an expired or tampered link answers a 403 HTML page in the link's locale.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from services.attribution import queries
from services.attribution.report import FORMATS, LOCALES, MEDIA_TYPES, ReportData, Week, render
from services.attribution.report.links import Link, LinkError, sign, verify
from services.attribution.report.render import GROUPS, render_link_problem
from services.attribution.settings import AttributionSettings
from services.attribution.store import Conn
from shared import params
from shared.events import MODELS, Model
from shared.http import ProblemError, json_response, read_body

Read = Callable[[Callable[[Conn], Awaitable[Any]]], Awaitable[Any]]

LINK_PREFIX = "/reports/"
"""The share links' path prefix: a browser route, open (no key), checked by its token."""
MAX_WEEKS = 105
BODY_LIMIT = 16 * 1024
# The share link page carries its token in the URL: never cached, never sent on as a referrer.
LINK_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}


def _api_shaped(value: Any) -> Any:
    """What a client of the JSON API sees (datetimes as RFC 3339 strings)."""
    return orjson.loads(orjson.dumps(value))


def _week_start(value: datetime) -> datetime:
    day = value.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


async def gather(
    conn: Conn, period: queries.Period, model: Model, settings: AttributionSettings
) -> ReportData:
    """The report's data from one consistent snapshot: the summary, the sharers, the ripple
    graph and one summary per week of the period (those without bootstrap resamples: the
    weeks show counts only)."""
    now = datetime.now(UTC)
    summary = await queries.summary(conn, period, model, settings)
    sharers = await queries.sharers(conn, period, model)
    graph = _api_shaped(await queries.ripples(conn))
    first = [
        datetime.fromisoformat(n["first_shared_at"])
        for n in graph["nodes"]
        if n.get("first_shared_at")
    ]
    begin = period.start or (min(first) if first else now - timedelta(weeks=12))
    finish = period.end or now
    quick = dataclasses.replace(settings, bootstrap_samples=1)
    weeks: list[Week] = []
    cursor = _week_start(begin)
    while cursor < finish and len(weeks) < MAX_WEEKS:
        nxt = cursor + timedelta(weeks=1)
        week = await queries.summary(conn, queries.Period(cursor, nxt), model, quick)
        weeks.append(
            Week(
                cursor,
                sum(week[g]["posts"] for g in GROUPS),
                sum(week[g]["impressions"] for g in GROUPS),
                week["applicants"]["total"],
            )
        )
        cursor = nxt
    names = await queries.display_names(conn, [str(n["employee_id"]) for n in graph["nodes"]])
    return ReportData(_api_shaped(summary), _api_shaped(sharers), graph, weeks, now, names)


async def _report(read: Read, settings: AttributionSettings, link: Link, fmt: str) -> bytes:
    data: ReportData = await read(
        lambda c: gather(c, queries.Period(link.start, link.end), link.model, settings)  # type: ignore[arg-type]
    )
    if fmt == "pdf":
        return await run_in_threadpool(render, data, fmt, link.locale)
    return render(data, fmt, link.locale)


def _body_field(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if (value is not None and not isinstance(value, kind)) or isinstance(value, bool):
        raise params.invalid(
            name, f"must be a {'string' if kind is str else 'whole number'}", "body"
        )
    return value


def _as_body(error: ProblemError) -> ProblemError:
    """A parameter check's 422, said of the body."""
    field = error.extra["errors"][0]["field"]
    return params.invalid(field, error.extra["errors"][0]["detail"], "body")


def report_routes(read: Read, settings: AttributionSettings) -> list[Route]:
    async def report(request: Request) -> Response:
        query = request.query_params
        start = params.timestamp(query.get("from"), "from")
        end = params.timestamp(query.get("to"), "to")
        params.period(start, end)
        model = params.choice(query.get("model"), "model", MODELS, "last_touch")
        locale = params.choice(query.get("locale"), "locale", LOCALES, "en")
        fmt = params.choice(query.get("format"), "format", FORMATS, "html")
        link = Link(start, end, model, locale, datetime.now(UTC))
        body = await _report(read, settings, link, fmt)
        headers = {"Content-Language": locale}
        if fmt in ("pdf", "csv", "md"):
            headers["Content-Disposition"] = f'inline; filename="ripples-report-{locale}.{fmt}"'
        return Response(body, 200, headers, media_type=MEDIA_TYPES[fmt])

    async def create_link(request: Request) -> Response:
        try:
            body = orjson.loads(await read_body(request, BODY_LIMIT) or b"{}")
        except orjson.JSONDecodeError:
            raise params.invalid("body", "must be a JSON object", "body") from None
        if not isinstance(body, dict):
            raise params.invalid("body", "must be a JSON object", "body")
        try:
            start = params.timestamp(_body_field(body, "from", str), "from")
            end = params.timestamp(_body_field(body, "to", str), "to")
            params.period(start, end)
            model = params.choice(_body_field(body, "model", str), "model", MODELS, "last_touch")
            locale = params.choice(_body_field(body, "locale", str), "locale", LOCALES, "en")
        except ProblemError as error:
            raise _as_body(error) from None
        expires_in = _body_field(body, "expires_in_s", int)
        longest = settings.report_link_max_expires_s
        if expires_in is None:
            expires_in = min(7 * 86400, longest)
        elif not 60 <= expires_in <= longest:
            raise params.invalid(
                "expires_in_s", f"must be a whole number from 60 to {longest}", "body"
            )
        if not settings.report_link_secret:
            raise ProblemError(
                503,
                "not-configured",
                "Share links not configured",
                "set ATTRIBUTION_REPORT_LINK_SECRET to make report share links",
            )
        expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=expires_in)
        token = sign(Link(start, end, model, locale, expires_at), settings.report_link_secret[0])
        url = settings.public_base_url.rstrip("/") + LINK_PREFIX + token
        stamp = expires_at.isoformat().replace("+00:00", "Z")
        return json_response({"url": url, "expires_at": stamp}, 201)

    async def shared(request: Request) -> Response:
        try:
            link = verify(
                request.path_params["token"], settings.report_link_secret, datetime.now(UTC)
            )
        except LinkError as error:
            return HTMLResponse(render_link_problem(error.locale, error.expired), 403, LINK_HEADERS)
        body = await _report(read, settings, link, "html")
        return Response(
            body, 200, LINK_HEADERS | {"Content-Language": link.locale}, MEDIA_TYPES["html"]
        )

    return [
        Route("/v1/report", report, methods=["GET"]),
        Route("/v1/report/links", create_link, methods=["POST"]),
        Route(LINK_PREFIX + "{token}", shared, methods=["GET"]),
    ]
