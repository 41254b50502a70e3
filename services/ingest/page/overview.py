"""The communication team's overview (issue 21 point 4): ``GET /v1/overview`` (key; JSON, or
HTML by ``Accept``), its share link ``POST /v1/overview/links`` and the shared page
``GET /overview/{token}`` (shared/signing, purpose ``programme-overview``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from services.ingest.connect import browser_locale
from services.ingest.database import answering_503
from services.ingest.page import store, templates
from services.ingest.page.base import Pages, iso
from services.ingest.tokens import status_of
from shared import signing
from shared.http import ProblemError, json_response, read_body
from shared.params import invalid

OVERVIEW = "programme-overview"


class Overview(Pages):
    async def _overview_document(self) -> dict[str, Any]:
        now = datetime.now(UTC)
        month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        warn = self.connect.store.warn_before
        with answering_503():
            rows = await store.overview(self.database.pool, month)
        return {
            "generated_at": iso(now.replace(microsecond=0)),
            "month_start": iso(month),
            "employees": [
                {
                    "employee_id": r["employee_id"],
                    "display_name": r["display_name"],
                    "ambassador": r["ambassador"],
                    "linkedin": {
                        "status": status_of(
                            r["linkedin_expires_at"], r["revoked"], r["renewable"], now, warn
                        ),
                        "expires_at": iso(r["linkedin_expires_at"]),
                    },
                    "invitations": {
                        "sent": r["invitations_sent"],
                        "opened": r["invitations_opened"],
                    },
                    "page_links": {"sent": r["page_links_sent"], "opened": r["page_links_opened"]},
                    "preferences": {
                        "channel": r["preferred_channel"] if r["channel_set"] else None,
                        "opt_out": r["preferred_opt_out"],
                    },
                    "posts_this_month": r["posts_this_month"],
                    "links": {"total": r["links_made"], "this_month": r["links_this_month"]},
                }
                for r in rows
            ],
        }

    @staticmethod
    def _locale(request: Request) -> str:
        locale = request.query_params.get("locale")
        if locale is None:
            return browser_locale(request)
        if locale not in ("da", "en"):
            raise invalid("locale", "must be da or en")
        return locale

    @staticmethod
    def _wants_html(request: Request) -> bool:
        for part in request.headers.get("accept", "").split(","):
            media = part.split(";")[0].strip().lower()
            if media in ("text/html", "application/xhtml+xml"):
                return True
            if media in ("application/json", "application/*"):
                return False
        return False

    async def overview(self, request: Request) -> Response:
        """``GET /v1/overview`` (key): JSON, or HTML when the client asks for it."""
        locale = self._locale(request)
        document = await self._overview_document()
        if self._wants_html(request):
            return self._html(lambda n: templates.overview(locale, document, n))
        return json_response(document)

    async def overview_link(self, request: Request) -> Response:
        """``POST /v1/overview/links`` (key) → 201 ``{"url","expires_at"}``."""
        body = await read_body(request, 4096)
        locale = None
        if body.strip():
            try:
                spec = orjson.loads(body)
            except orjson.JSONDecodeError:
                spec = None
            if not isinstance(spec, dict) or set(spec) - {"locale"}:
                raise ProblemError(
                    422,
                    "invalid-body",
                    "Invalid body",
                    'the body is empty or {"locale": "da"|"en"}',
                    errors=[{"field": "$", "detail": "an object with `locale` only"}],
                )
            locale = spec.get("locale")
            if locale not in (None, "da", "en"):
                raise ProblemError(
                    422,
                    "invalid-body",
                    "Invalid body",
                    "locale must be da or en",
                    errors=[{"field": "locale", "detail": "must be da or en"}],
                )
        if not self.secrets:
            raise self._not_configured()
        expires = datetime.now(UTC).replace(microsecond=0) + timedelta(
            seconds=self.settings.overview_link_ttl_s
        )
        payload = {"locale": locale} if locale else {}
        token = signing.sign(OVERVIEW, payload, expires, self.secrets[0])
        base = self.settings.public_base_url.rstrip("/")
        return json_response({"url": f"{base}/overview/{token}", "expires_at": iso(expires)}, 201)

    async def shared_overview(self, request: Request) -> Response:
        """``GET /overview/{token}``: the overview's HTML through a share link, no key."""
        try:
            if not self.secrets:
                raise signing.TokenError(expired=False)
            payload = signing.verify(
                OVERVIEW, request.path_params["token"], self.secrets, datetime.now(UTC)
            )
        except signing.TokenError as exc:
            browser = browser_locale(request)
            expired = exc.expired
            return self._html(lambda n: templates.denied(browser, expired, n), 403)
        chosen = payload.get("locale")
        locale = chosen if chosen in ("da", "en") else browser_locale(request)
        try:
            document = await self._overview_document()
        except ProblemError as exc:
            if exc.status != 503:
                raise
            return self._unavailable(request)
        return self._html(lambda n: templates.overview(str(locale), document, n))
