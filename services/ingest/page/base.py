"""What the employee's page and the overview share: settings, the signing secrets, and how a
page is answered (its security headers, the refusal and "try again" pages)."""

from __future__ import annotations

import logging
import secrets as random
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from services.ingest.connect import Connect, browser_locale
from services.ingest.database import Database
from services.ingest.page import store, templates
from services.ingest.settings import IngestSettings
from shared import signing
from shared.http import ProblemError

log = logging.getLogger(__name__)


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class Pages:
    def __init__(self, settings: IngestSettings, database: Database, connect: Connect) -> None:
        self.settings = settings
        self.database = database
        self.connect = connect
        self.secrets = tuple(s for s in settings.page_link_secrets if s)
        self.origin = origin_of(settings.public_base_url)
        linkedin = origin_of(settings.linkedin_oauth_base_url)
        self.csp = (
            "default-src 'none'; style-src 'nonce-{n}'; script-src 'nonce-{n}';"
            f" form-action 'self' {linkedin}; base-uri 'none'; frame-ancestors 'none'"
        )

    # --- helpers ---

    def _not_configured(self) -> ProblemError:
        return ProblemError(
            503, "not-configured", "Not configured", "INGEST_PAGE_LINK_SECRETS must be set"
        )

    def _html(self, render: Callable[[str], str], status: int = 200) -> HTMLResponse:
        nonce = random.token_urlsafe(16)
        return HTMLResponse(
            render(nonce),
            status,
            headers={
                "Cache-Control": "no-store",
                # The token is in the URL: it never leaves in a Referer to another site, and
                # same-origin form posts carry their Origin (no-referrer makes it "null").
                "Referrer-Policy": "same-origin",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": self.csp.format(n=nonce),
            },
        )

    async def _denied(self, request: Request, error: signing.TokenError | None) -> Response:
        locale = browser_locale(request)
        employee = error.payload.get("employee_id") if error is not None else None
        if isinstance(employee, str) and employee.isprintable() and len(employee) <= 256:
            try:
                locale = await store.locale_of(self.database.pool, employee) or locale
            except Exception as exc:  # the refusal never depends on the database
                log.info("locale not read", extra={"reason": type(exc).__name__})
        expired = error is not None and error.expired
        return self._html(lambda n: templates.denied(locale, expired, n), 403)

    def _unavailable(self, request: Request) -> HTMLResponse:
        """A person gets a page, not a problem document, while the database is away."""
        locale = browser_locale(request)
        page = self._html(lambda n: templates.unavailable(locale, n), 503)
        page.headers["Retry-After"] = str(self.settings.retry_after_s)
        return page
