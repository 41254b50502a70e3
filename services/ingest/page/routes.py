"""The employee's page (``/me/{token}``) and its page links (the overview: overview.py).

The page link is the employee's credential (shared/signing ``page_token``, purpose
``employee-page``), carried in the URL; no cookie is set. Every form on the page carries a
form token (purpose ``employee-page-form``) bound to the employee and to the page token it was
shown under, valid ``INGEST_PAGE_FORM_TTL_S``; a POST is also refused when the browser says it
comes from another site (``Origin`` not this service's, ``Sec-Fetch-Site`` cross-site or
same-site). docs/security.md ("The employee's page") says why this is the CSRF defence.

The page's actions go through the same handlers as their API routes (:meth:`_call`): a tracked
link through ``POST /v1/links``, an invitation through ``POST /v1/linkedin/invitations``, a
post through ``POST /v1/linkedin/posts``; preferences are published as
``ripples.employee.preferences.v1`` through ingest's own publish path.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote

import httpx
import msgspec
import orjson
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from services.ingest import directory
from services.ingest.connect import Connect
from services.ingest.database import Database, answering_503
from services.ingest.links import Links, link_url
from services.ingest.page import store, templates
from services.ingest.page.base import iso, origin_of
from services.ingest.page.overview import Overview
from services.ingest.page.texts import CHANNELS, NOTICES
from services.ingest.settings import IngestSettings
from shared import signing
from shared.events import EmployeePreferences, EmployeePreferencesEvent, Envelope, Notify
from shared.http import ProblemError, json_response, read_body
from shared.metrics import preinit

log = logging.getLogger(__name__)

FORM = "employee-page-form"
SOURCE = "urn:ripples:ingest:employee-page"
ACTIONS = ("open", "links", "linkedin", "posts", "preferences")
OUTCOMES = ("ok", "denied", "invalid", "unavailable")
PAGES = Counter(
    "ingest_employee_page_total",
    "Employee page requests, by action and outcome.",
    ["action", "outcome"],
)
preinit(PAGES, ACTIONS, OUTCOMES)
_MAX_FORM_BYTES = 16 * 1024

Publish = Callable[[list[Envelope], Request, bytes, str], Awaitable[None]]
Handler = Callable[[Request], Awaitable[Response]]
Answer = Response | tuple[int, dict[str, str]]
"""A redirect when the action was done, else (status, {form field: text key of its error})."""


def _internal(path: str, body: dict[str, Any]) -> Request:
    """A request for one of ingest's own JSON handlers (the page's actions take their path)."""
    raw = orjson.dumps(body)
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
        ],
        "path_params": {},
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    return Request(scope, receive)


class _Refused(Exception):
    """A page POST that is refused as a whole (403/400/415): the page is shown again."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class SelfService(Overview):
    """The employee's page, its page links and (inherited) the overview."""

    def __init__(
        self,
        settings: IngestSettings,
        database: Database,
        publish: Publish,
        links: Links,
        connect: Connect,
        http: httpx.AsyncClient,
    ) -> None:
        super().__init__(settings, database, connect)
        self._publish = publish  # Ingest._publish
        self.links = links
        self.http = http

    def _employee(self, token: str) -> str:
        if not self.secrets:
            raise signing.TokenError(expired=False)
        return signing.page_employee(token, self.secrets, datetime.now(UTC))

    def _form_token(self, employee: str, token: str) -> str:
        expires = datetime.now(UTC) + timedelta(seconds=self.settings.page_form_ttl_s)
        page = store.digest(token)[:32]
        return signing.sign(FORM, {"employee_id": employee, "page": page}, expires, self.secrets[0])

    def _form_ok(self, employee: str, token: str, form_token: str) -> bool:
        try:
            payload = signing.verify(FORM, form_token, self.secrets, datetime.now(UTC))
        except signing.TokenError:
            return False
        return (
            payload.get("employee_id") == employee
            and payload.get("page") == (store.digest(token)[:32])
        )

    def _same_origin(self, request: Request) -> bool:
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        origin = request.headers.get("origin")
        if origin is None or origin == "null":  # privacy settings hide it: the form token
            return True
        own = origin_of(str(request.base_url))
        return origin.lower() in (self.origin, own)

    async def _call(self, handler: Handler, path: str, body: dict[str, Any]) -> Any:
        """The JSON answer of one of ingest's own handlers; its ProblemError propagates."""
        response = await handler(_internal(path, body))
        return orjson.loads(bytes(response.body))

    async def _figures(self, employee: str) -> tuple[dict[str, Any] | None, bool]:
        """(figures, none yet) from attribution; (None, False) when it does not answer."""
        base = self.settings.attribution_url.rstrip("/")
        if not base:
            return None, False
        headers = {}
        # The first of a comma-separated list: attribution's own key file will do.
        if key := self.settings.attribution_api_key.split(",")[0].strip():
            headers["Authorization"] = f"Bearer {key}"
        try:
            response = await self.http.get(
                f"{base}/v1/employees/{quote(employee, safe='')}/ripples",
                headers=headers,
                timeout=self.settings.attribution_timeout_s,
            )
        except httpx.HTTPError as exc:
            log.warning("attribution unreachable", extra={"reason": type(exc).__name__})
            return None, False
        if response.status_code == 404:
            return {}, True
        if response.status_code != 200:
            log.warning("attribution refused", extra={"status": response.status_code})
            return None, False
        try:
            figures = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return None, False
        if not isinstance(figures, dict) or figures.get("employee_id") != employee:
            return None, False
        return figures, False

    def _job_target(self, job_id: str) -> str | None:
        template = self.settings.job_url_template
        return template.replace("{job_id}", quote(job_id, safe="")) if template else None

    async def _view(
        self, request: Request, token: str, employee: str, me: store.Me, **extra: Any
    ) -> templates.PageView:
        pool = self.database.pool
        figures, missing = await self._figures(employee)
        jobs = await store.jobs(pool) if self.settings.job_url_template else []
        try:
            connection: dict[str, Any] | None = await self.connect.store.status(pool, employee)
        except Exception as exc:  # the page still works; the status says it is unknown
            log.warning("connection status not read", extra={"reason": type(exc).__name__})
            connection = None
        link = None
        code = request.query_params.get("link", "")
        if code and code.isalnum() and len(code) <= 64:
            mine = await store.my_link(pool, employee, code)
            if mine is not None:
                link = (link_url(self.settings.public_base_url, code), mine[1] or "")
        notice = request.query_params.get("notice")
        return templates.PageView(
            locale=me.locale,
            token=token,
            form_token=self._form_token(employee, token),
            name=me.display_name,
            figures=figures,
            figures_missing=missing,
            jobs=jobs,
            link=link,
            connection=connection,
            channel=me.channel,
            address=me.address,
            opt_out=me.opt_out,
            notice=notice if notice in NOTICES else None,
            **extra,
        )

    # --- POST /v1/employees/{employee_id}/page-links ---

    async def page_link(self, request: Request) -> Response:
        employee = request.path_params["employee_id"]
        if not self.secrets:
            raise self._not_configured()
        with answering_503():
            pool = self.database.pool
            if (
                not employee.isprintable()
                or len(employee) > 256
                or not await directory.known(pool, employee)
            ):
                raise ProblemError(
                    404, "not-found", "Not found", "no employee with this employee_id is known"
                )
            expires = datetime.now(UTC).replace(microsecond=0) + timedelta(
                seconds=self.settings.page_link_ttl_s
            )
            token = signing.page_token(employee, expires, self.secrets[0])
            await store.link_issued(pool, token, employee, expires)
        base = self.settings.public_base_url.rstrip("/")
        return json_response({"url": f"{base}/me/{token}", "expires_at": iso(expires)}, 201)

    # --- GET /me/{token} ---

    async def _browser(self, request: Request, answer: Awaitable[Response]) -> Response:
        try:
            return await answer
        except ProblemError as exc:
            if exc.status != 503:
                raise
            PAGES.labels("open", "unavailable").inc()
            return self._unavailable(request)

    async def open(self, request: Request) -> Response:
        return await self._browser(request, self._open(request))

    async def _open(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            employee = self._employee(token)
        except signing.TokenError as exc:
            PAGES.labels("open", "denied").inc()
            return await self._denied(request, exc)
        with answering_503():
            pool = self.database.pool
            me = await store.me(pool, employee)
            if me is None:  # removed since the link was made
                PAGES.labels("open", "denied").inc()
                return await self._denied(request, None)
            expires = datetime.fromtimestamp(
                signing.verify(signing.PAGE, token, self.secrets, datetime.now(UTC))["exp"], UTC
            )
            await store.link_opened(pool, token, employee, expires)
            view = await self._view(request, token, employee, me)
        PAGES.labels("open", "ok").inc()
        return self._html(lambda n: templates.page(view, n))

    # --- the page's forms ---

    async def _form(self, request: Request, action: str) -> Response:
        token = request.path_params["token"]
        try:
            employee = self._employee(token)
        except signing.TokenError as exc:
            PAGES.labels(action, "denied").inc()
            return await self._denied(request, exc)
        with answering_503():
            pool = self.database.pool
            me = await store.me(pool, employee)
            if me is None:
                PAGES.labels(action, "denied").inc()
                return await self._denied(request, None)
            try:
                form = await self._read_form(request, employee, token)
            except _Refused as refused:
                PAGES.labels(action, "denied").inc()
                view = await self._view(request, token, employee, me, errors={"form": "error_form"})
                return self._html(lambda n: templates.page(view, n), refused.status)
            answer = await getattr(self, "_" + action)(request, token, employee, form)
            if isinstance(answer, Response):
                PAGES.labels(action, "ok").inc()
                return answer
            status, errors = answer
            PAGES.labels(action, "unavailable" if status >= 500 else "invalid").inc()
            values = {k: v for k, v in form.items() if k in ("url", "channel", "address")}
            view = await self._view(request, token, employee, me, errors=errors, values=values)
        return self._html(lambda n: templates.page(view, n), status)

    async def _read_form(self, request: Request, employee: str, token: str) -> dict[str, str]:
        if not self._same_origin(request):
            raise _Refused(403)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/x-www-form-urlencoded":
            raise _Refused(415)
        try:
            body = await read_body(request, _MAX_FORM_BYTES)
            fields = parse_qs(
                body.decode("ascii"),
                keep_blank_values=True,
                strict_parsing=False,
                max_num_fields=20,
                errors="strict",
            )
        except (ProblemError, UnicodeDecodeError, ValueError):
            raise _Refused(400) from None
        form = {name: values[-1].strip() for name, values in fields.items()}
        if any(not value.isprintable() for value in form.values()):
            raise _Refused(400)
        if not self._form_ok(employee, token, form.get("form_token", "")):
            raise _Refused(403)
        return form

    def _back(self, token: str, query: str, anchor: str) -> Response:
        return RedirectResponse(f"/me/{token}?{query}#{anchor}", 303)

    async def links_form(self, request: Request) -> Response:
        return await self._browser(request, self._form(request, "links"))

    async def linkedin_form(self, request: Request) -> Response:
        return await self._browser(request, self._form(request, "linkedin"))

    async def posts_form(self, request: Request) -> Response:
        return await self._browser(request, self._form(request, "posts"))

    async def preferences_form(self, request: Request) -> Response:
        return await self._browser(request, self._form(request, "preferences"))

    async def _links(self, _: Request, token: str, employee: str, form: dict[str, str]) -> Answer:
        job_id = form.get("job_id", "")
        known = dict(await store.jobs(self.database.pool))
        target = self._job_target(job_id)
        if job_id not in known or target is None:
            return 422, {"job_id": "error_job"}
        body = {"target_url": target, "employee_id": employee, "job_id": job_id}
        try:
            made = await self._call(self.links.create, "/v1/links", body)
        except ProblemError as exc:
            return exc.status, {"job_id": "error_link"}
        return self._back(token, f"link={made['link_code']}", "made")

    async def _linkedin(
        self, _: Request, token: str, employee: str, form: dict[str, str]
    ) -> Answer:
        try:
            invitation = await self._call(
                self.connect.invite, "/v1/linkedin/invitations", {"employee_id": employee}
            )
        except ProblemError as exc:
            if exc.kind == "not-configured":
                return self._back(token, "notice=linkedin_unavailable", "linkedin-title")
            return exc.status, {"form": "error_unavailable"}
        return RedirectResponse(invitation["url"], 303)

    async def _posts(self, _: Request, token: str, employee: str, form: dict[str, str]) -> Answer:
        body = {"employee_id": employee, "url": form.get("url", "")}
        try:
            await self._call(self.connect.register_post, "/v1/linkedin/posts", body)
        except ProblemError as exc:
            if exc.status == 409:
                return 409, {"url": "error_not_connected"}
            if exc.status >= 500:
                return exc.status, {"url": "error_unavailable"}
            if exc.kind == "unresolvable-activity-url":
                return 422, {"url": "error_activity_url"}
            return 422, {"url": "error_post_url"}
        return self._back(token, "notice=post", "linkedin-title")

    async def _preferences(
        self, request: Request, token: str, employee: str, form: dict[str, str]
    ) -> Answer:
        locale = form.get("locale", "")
        channel = form.get("channel", "")
        address = form.get("address", "")
        if locale not in ("da", "en"):
            return 422, {"form": "error_form"}
        if channel and channel not in CHANNELS:
            return 422, {"channel": "error_channel"}
        notify = None
        if channel:
            try:
                notify = Notify(channel=channel, address=address or None)  # type: ignore[arg-type]
                msgspec.convert(msgspec.to_builtins(notify), Notify)  # the length limits
            except (ValueError, msgspec.ValidationError):
                return 422, {"address": "error_address"}
        event = EmployeePreferencesEvent(
            specversion="1.0",
            id=str(uuid.uuid4()),
            source=SOURCE,
            time=datetime.now(UTC),
            data=EmployeePreferences(
                employee_id=employee,
                locale=locale,  # type: ignore[arg-type]
                notify=notify,
                recognition_opt_out=form.get("opt_out") == "true",
            ),
        )
        try:
            await self._publish([event], request, b"", "page")
        except ProblemError as exc:
            return exc.status, {"form": "error_unavailable"}
        return self._back(token, "notice=saved", "preferences-title")
