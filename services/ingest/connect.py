"""Employees connect their own LinkedIn account (CONTRACT §8).

HR (or the notifier) hands the employee an invitation link (``POST /v1/linkedin/invitations``):
``{INGEST_PUBLIC_BASE_URL}/connect/linkedin/{token}``, signed by shared/signing.py (purpose
``linkedin-invitation``) under ``INGEST_CONNECT_SECRET`` and expiring. Opening it sends the
browser to LinkedIn's authorization page with a fresh ``state`` bound to the invitation;
LinkedIn sends the browser back to ``/connect/linkedin/callback`` with ``code`` and ``state``
(or ``error`` and ``error_description``), the code is exchanged for the member's tokens, the
member is found with OpenID Connect's userinfo (``sub``), and the tokens are stored encrypted
(services/ingest/tokens.py). Every outcome answers a small da/en HTML page; nothing is stored
on a failure.

Followed from LinkedIn's own pages:
- Authorization Code Flow (3-legged OAuth),
  https://learn.microsoft.com/en-us/linkedin/shared/authentication/authorization-code-flow :
  ``GET {base}/authorization?response_type=code&client_id&redirect_uri&state&scope`` (scope
  URL-encoded, space-separated); the redirect carries ``code`` and ``state``, or ``error``
  and ``error_description`` (e.g. ``user_cancelled_authorize``); ``POST {base}/accessToken``
  form-encoded ``grant_type=authorization_code, code, redirect_uri, client_id,
  client_secret`` → ``access_token``, ``expires_in`` (60 days), ``scope``, and
  ``refresh_token``/``refresh_token_expires_in`` for approved partners only.
- Refresh Tokens with OAuth 2.0,
  https://learn.microsoft.com/en-us/linkedin/shared/authentication/programmatic-refresh-tokens :
  ``POST {base}/accessToken`` ``grant_type=refresh_token, refresh_token, client_id,
  client_secret``; the refresh token keeps its original lifetime (365 days).
- Sign In with LinkedIn using OpenID Connect,
  https://learn.microsoft.com/en-us/linkedin/consumer/integrations/self-serve/
  sign-in-with-linkedin-v2 :
  scopes ``openid profile``; ``GET https://api.linkedin.com/v2/userinfo`` → ``sub``.
"""

from __future__ import annotations

import dataclasses
import html
import logging
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import httpx
import msgspec
import orjson
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from services.ingest import directory
from services.ingest.database import DB_ERRORS, Database, answering_503
from services.ingest.linkedin_posts import NotAPostUrl, activity_post, post_urn
from services.ingest.publisher import BrokerUnavailable, Publisher
from services.ingest.settings import IngestSettings
from services.ingest.tokens import (
    Connection,
    Grant,
    PageConnection,
    Store,
    TokenCipher,
    parse_keys,
    status_of,
)
from shared import signing
from shared.events import (
    CONNECTION_KINDS,
    ConnectionKind,
    ConnectionReason,
    LinkedInConnection,
    LinkedInConnectionEvent,
)
from shared.http import ProblemError, json_response, read_body
from shared.metrics import preinit

log = logging.getLogger(__name__)

CALLBACK_PATH = "/connect/linkedin/callback"
OUTCOMES = (
    "connected",
    "invalid_invitation",
    "expired_invitation",
    "used_invitation",
    "denied",
    "unknown_state",
    "exchange_failed",
    "wrong_account",
    "not_configured",
    "page_connected",
    "not_admin",
)
CONNECTS = Counter(
    "ingest_linkedin_connect_total", "Connect-flow pages answered, by outcome.", ["outcome"]
)
REFRESHES = Counter(
    "ingest_linkedin_token_refreshes_total", "LinkedIn token refreshes, by outcome.", ["outcome"]
)
MESSAGES = Counter(
    "ingest_linkedin_connection_messages_total",
    "Connection messages published for the notifier (ripples.linkedin.connection.v1), by kind.",
    ["kind"],
)
preinit(CONNECTS, OUTCOMES)
preinit(REFRESHES, ("ok", "failed"))
preinit(MESSAGES, CONNECTION_KINDS)
CONNECT_SOURCE = "urn:ripples:ingest:linkedin-connect"


# --- pages ---------------------------------------------------------------------------------

PAGES: dict[str, dict[str, tuple[str, str]]] = {
    "connected": {
        "en": ("LinkedIn connected", "Thank you. Your LinkedIn account is now connected."),
        "da": ("LinkedIn forbundet", "Tak. Din LinkedIn-konto er nu forbundet."),
    },
    "invalid_invitation": {
        "en": ("Link not valid", "This link is not valid. Ask HR for a new one."),
        "da": ("Linket er ikke gyldigt", "Dette link er ikke gyldigt. Bed HR om et nyt."),
    },
    "expired_invitation": {
        "en": ("Link expired", "This link has expired. Ask HR for a new one."),
        "da": ("Linket er udløbet", "Dette link er udløbet. Bed HR om et nyt."),
    },
    "used_invitation": {
        "en": ("Link already used", "This link has been used. Ask HR for a new one."),
        "da": ("Linket er allerede brugt", "Dette link er brugt. Bed HR om et nyt."),
    },
    "denied": {
        "en": ("Not connected", "LinkedIn did not connect your account. Nothing was stored."),
        "da": ("Ikke forbundet", "LinkedIn forbandt ikke din konto. Intet blev gemt."),
    },
    "unknown_state": {
        "en": (
            "Not connected",
            "This answer from LinkedIn is unknown or was already used. Open your link again.",
        ),
        "da": (
            "Ikke forbundet",
            "Dette svar fra LinkedIn er ukendt eller allerede brugt. Åbn dit link igen.",
        ),
    },
    "exchange_failed": {
        "en": ("Not connected", "LinkedIn could not be reached. Please try again later."),
        "da": ("Ikke forbundet", "LinkedIn kunne ikke nås. Prøv igen senere."),
    },
    "wrong_account": {
        "en": (
            "Not connected",
            "This LinkedIn account is not the one registered for you. Nothing was stored.",
        ),
        "da": (
            "Ikke forbundet",
            "Denne LinkedIn-konto er ikke den, der er registreret for dig. Intet blev gemt.",
        ),
    },
    "not_configured": {
        "en": ("Not available", "Connecting LinkedIn is not set up yet."),
        "da": ("Ikke tilgængelig", "Forbindelse til LinkedIn er ikke sat op endnu."),
    },
    "page_connected": {
        "en": (
            "Company page connected",
            "Thank you. The company page's LinkedIn statistics now come through your account.",
        ),
        "da": (
            "Virksomhedssiden er forbundet",
            "Tak. Virksomhedssidens LinkedIn-statistik kommer nu gennem din konto.",
        ),
    },
    "not_admin": {
        "en": (
            "Not connected",
            "This LinkedIn account is not an administrator of the company page. Nothing was"
            " stored.",
        ),
        "da": (
            "Ikke forbundet",
            "Denne LinkedIn-konto er ikke administrator af virksomhedssiden. Intet blev gemt.",
        ),
    },
}
STATUS = {
    "connected": 200,
    "invalid_invitation": 403,
    "expired_invitation": 410,
    "used_invitation": 410,
    "denied": 400,
    "unknown_state": 400,
    "exchange_failed": 502,
    "wrong_account": 409,
    "not_configured": 503,
    "page_connected": 200,
    "not_admin": 403,
}


def page(outcome: str, locale: str) -> HTMLResponse:
    """The da/en page of ``outcome`` (no personal data, nothing from the request echoed)."""
    CONNECTS.labels(outcome).inc()
    language = "da" if locale == "da" else "en"
    title, text = PAGES[outcome][language]
    body = (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head><body><main><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(text)}</p></main></body></html>"
    )
    return HTMLResponse(
        body,
        STATUS[outcome],
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": "default-src 'none'",
        },
    )


def browser_locale(request: Request) -> str:
    accepted = request.headers.get("accept-language", "").strip().lower()
    return "da" if accepted.startswith("da") else "en"


# --- signed invitations --------------------------------------------------------------------

INVITATION = "linkedin-invitation"
"""The purpose of an invitation link's token (shared/signing.py, the project's one signer)."""


def sign_invitation(secret: str, invitation_id: str, expires_at: datetime) -> str:
    """The token of an invitation link: ``{INGEST_PUBLIC_BASE_URL}/connect/linkedin/{token}``."""
    return signing.sign(INVITATION, {"invitation": invitation_id}, expires_at, secret)


def verify_invitation(secret: str, token: str, now: datetime) -> tuple[str, bool] | None:
    """(invitation id, expired) of a genuine token; None for a tampered one."""
    if not secret:
        return None
    try:
        payload, expired = signing.verify(INVITATION, token, (secret,), now), False
    except signing.TokenError as exc:
        if not exc.expired:
            return None
        payload, expired = exc.payload, True
    invitation = payload.get("invitation")
    if not isinstance(invitation, str) or not invitation:
        return None
    return invitation, expired


def parse_scopes(value: Any) -> tuple[str, ...]:
    """LinkedIn answers ``scope`` comma-separated; the authorize request sends it spaced."""
    if not isinstance(value, str):
        return ()
    return tuple(sorted({s for s in value.replace(",", " ").split() if s}))


def grant_from(document: Any, now: datetime) -> Grant | None:
    if not isinstance(document, dict):
        return None
    token, expires_in = document.get("access_token"), document.get("expires_in")
    if not isinstance(token, str) or not token or not isinstance(expires_in, int):
        return None
    refresh = document.get("refresh_token")
    refresh_in = document.get("refresh_token_expires_in")
    return Grant(
        access_token=token,
        expires_at=now + timedelta(seconds=expires_in),
        scopes=parse_scopes(document.get("scope")),
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        refresh_expires_at=now + timedelta(seconds=refresh_in)
        if isinstance(refresh_in, int)
        else None,
    )


class _Invite(msgspec.Struct, forbid_unknown_fields=True):
    employee_id: str
    send: bool = False  # also send it to the employee, through the notifier
    page: bool = False  # the company page's admin connects the page (rw_organization_admin)


class _Post(msgspec.Struct, forbid_unknown_fields=True):
    employee_id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]


_decode_invite = msgspec.json.Decoder(_Invite).decode
_decode_post = msgspec.json.Decoder(_Post).decode


class Connect:
    def __init__(
        self,
        settings: IngestSettings,
        database: Database,
        http: httpx.AsyncClient,
        publisher: Publisher | None = None,
    ):
        self.settings = settings
        self.database = database
        self.http = http
        self.publisher = publisher
        keys = parse_keys(settings.token_keys)
        self.store = Store(
            TokenCipher(keys) if keys else None,
            timedelta(seconds=settings.linkedin_expiry_warning_s),
        )
        self._scopes: dict[str, tuple[str, ...]] = {}

    @property
    def configured(self) -> bool:
        s = self.settings
        return bool(
            s.linkedin_client_id
            and s.linkedin_client_secret
            and s.connect_secret
            and self.store.cipher
        )

    def _not_configured(self) -> ProblemError:
        return ProblemError(
            503,
            "not-configured",
            "Not configured",
            "INGEST_LINKEDIN_CLIENT_ID, INGEST_LINKEDIN_CLIENT_SECRET, INGEST_CONNECT_SECRET"
            " and INGEST_TOKEN_KEYS must be set",
        )

    # --- /v1 (keyed by the caller) ---

    async def invite(self, request: Request) -> Response:
        body = await read_body(request, self.settings.max_body_bytes)
        try:
            spec = _decode_invite(body)
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise ProblemError(
                422,
                "invalid-invitation",
                "Invalid invitation",
                str(exc),
                errors=[{"field": _field(str(exc), ("send", "page")), "detail": str(exc)}],
            ) from None
        if not 1 <= len(spec.employee_id) <= 256 or not spec.employee_id.isprintable():
            raise ProblemError(
                422,
                "invalid-invitation",
                "Invalid invitation",
                "employee_id must be 1-256 printable characters",
                errors=[{"field": "employee_id", "detail": "1-256 printable characters"}],
            )
        if not self.configured or (spec.page and not self.settings.linkedin_organization_urn):
            raise self._not_configured()
        with answering_503():
            pool = self.database.pool
            if not await directory.known(pool, spec.employee_id):
                raise ProblemError(
                    404, "not-found", "Not found", "no employee with this employee_id is known"
                )
            async with pool.acquire() as conn, conn.transaction():
                invitation, url, expires = await self._invitation(
                    conn, spec.employee_id, "organization" if spec.page else "member"
                )
                if spec.send:
                    # Published before the commit: a broker away leaves no invitation behind.
                    await self._send(
                        f"linkedin_invitation:{spec.employee_id}:{invitation}",
                        spec.employee_id,
                        "linkedin_invitation",
                        url,
                        expires,
                        "invited",
                    )
        return json_response(
            {"url": url, "expires_at": expires.isoformat().replace("+00:00", "Z")}, 201
        )

    async def _invitation(
        self, conn: Any, employee: str, purpose: str = "member"
    ) -> tuple[str, str, datetime]:
        """A new invitation of ``employee`` to connect their own account (``member``) or the
        company page as its admin (``organization``): (its id, its signed link, its expiry)."""
        invitation = secrets.token_urlsafe(18)
        expires = datetime.now(UTC).replace(microsecond=0) + timedelta(
            seconds=self.settings.linkedin_invitation_ttl_s
        )
        await conn.execute(
            "insert into ingest_linkedin_invitations (invitation_id, employee_id,"
            " expires_at, purpose) values ($1, $2, $3, $4)",
            invitation,
            employee,
            expires,
            purpose,
        )
        token = sign_invitation(self.settings.connect_secret, invitation, expires)
        base = self.settings.public_base_url.rstrip("/")
        return invitation, f"{base}/connect/linkedin/{token}", expires

    async def _send(
        self,
        recognition_id: str,
        employee: str,
        kind: ConnectionKind,
        url: str,
        expires: datetime,
        reason: ConnectionReason,
    ) -> None:
        """Publish one connection message for the notifier; ProblemError 503 if the broker
        does not take it."""
        event = LinkedInConnectionEvent(
            specversion="1.0",
            id=recognition_id,
            source=CONNECT_SOURCE,
            time=datetime.now(UTC),
            data=LinkedInConnection(
                employee_id=employee, kind=kind, url=url, expires_at=expires, reason=reason
            ),
        )
        try:
            if self.publisher is None:
                raise BrokerUnavailable("no publisher")
            await self.publisher.publish([event])
        except BrokerUnavailable:
            raise ProblemError(
                503,
                "broker-unavailable",
                "Broker unavailable",
                "the message to the employee was not published; retry later",
                headers={"Retry-After": str(self.settings.retry_after_s)},
            ) from None
        MESSAGES.labels(kind).inc()

    async def remind(self, employee: str | None = None) -> int:
        """Send a reconnect message to each employee (or only ``employee``) whose connection
        is expiring, expired or refused by LinkedIn and who was not sent one for this token
        expiry yet — once per expiry, never again (``ingest_linkedin_reminders``). Each
        message carries a fresh invitation link. Returns how many were sent; a broker away
        sends nothing and leaves them for the next poll."""
        if not self.configured:
            return 0
        pool = self.database.pool
        rows = await pool.fetch(
            "select c.employee_id, c.expires_at, c.revoked_at is not null as revoked,"
            " c.refresh_token is not null and coalesce(c.refresh_expires_at > now(), true)"
            " as renewable from ingest_linkedin_connections c"
            " join ingest_employees e on e.employee_id = c.employee_id and e.removed_at is null"
            " where ($1::text is null or c.employee_id = $1)"
            " and (c.revoked_at is not null or c.expires_at <= now() + make_interval(secs => $2))"
            " and not exists (select 1 from ingest_linkedin_reminders r"
            " where r.employee_id = c.employee_id"
            " and r.expires_on = (c.expires_at at time zone 'UTC')::date)"
            " order by c.employee_id",
            employee,
            self.store.warn_before.total_seconds(),
        )
        now, sent = datetime.now(UTC), 0
        for row in rows:
            reason = status_of(
                row["expires_at"], row["revoked"], row["renewable"], now, self.store.warn_before
            )
            if reason not in ("expiring", "expired", "revoked"):
                continue  # renewable: the poller refreshes it
            who = row["employee_id"]
            day = row["expires_at"].astimezone(UTC).date()
            try:
                async with pool.acquire() as conn, conn.transaction():
                    invitation, url, expires = await self._invitation(conn, who)
                    fresh = await conn.fetchval(
                        "insert into ingest_linkedin_reminders (employee_id, expires_on, reason,"
                        " invitation_id) values ($1, $2, $3, $4) on conflict do nothing"
                        " returning 1",
                        who,
                        day,
                        reason,
                        invitation,
                    )
                    if fresh is None:  # another replica sent it meanwhile
                        raise _AlreadySent
                    await self._send(
                        f"linkedin_reconnect:{who}:{day.isoformat()}",
                        who,
                        "linkedin_reconnect",
                        url,
                        expires,
                        reason,  # type: ignore[arg-type]  # one of the three, checked above
                    )
            except _AlreadySent:
                continue
            except ProblemError:
                log.warning("linkedin reconnect message not published; next poll")
                return sent
            log.info("linkedin reconnect message sent", extra={"employee_id": who})
            sent += 1
        return sent

    async def connection(self, request: Request) -> Response:
        employee = request.path_params["employee_id"]
        with answering_503():
            pool = self.database.pool
            if request.method == "DELETE":
                await self.store.delete(pool, employee)
                await self.store.measure(pool)
                return Response(status_code=204)
            return json_response(await self.store.status(pool, employee))

    # --- browser routes (signed) ---

    async def _locale(self, employee: str | None, request: Request) -> str:
        if employee is not None:
            try:
                value = await self.database.pool.fetchval(
                    "select locale from ingest_employees where employee_id = $1", employee
                )
            except (ProblemError, *DB_ERRORS):
                value = None
            if value in ("da", "en"):
                return str(value)
        return browser_locale(request)

    async def open(self, request: Request) -> Response:
        verified = verify_invitation(
            self.settings.connect_secret, request.path_params["token"], datetime.now(UTC)
        )
        if not self.configured:
            return page("not_configured", browser_locale(request))
        if verified is None:
            return page("invalid_invitation", browser_locale(request))
        invitation, expired = verified
        with answering_503():
            pool = self.database.pool
            row = await pool.fetchrow(
                "select employee_id, used_at, purpose from ingest_linkedin_invitations"
                " where invitation_id = $1",
                invitation,
            )
            if row is None:  # the employee was removed since
                return page("invalid_invitation", browser_locale(request))
            locale = await self._locale(row["employee_id"], request)
            if expired:
                return page("expired_invitation", locale)
            if row["used_at"] is not None:
                return page("used_invitation", locale)
            state = secrets.token_urlsafe(24)
            await pool.execute(
                "insert into ingest_linkedin_states (state, invitation_id, expires_at)"
                " values ($1, $2, now() + make_interval(secs => $3))",
                state,
                invitation,
                float(self.settings.linkedin_state_ttl_s),
            )
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.settings.linkedin_client_id,
                "redirect_uri": self.redirect_uri,
                "state": state,
                "scope": " ".join(
                    self.settings.linkedin_admin_scopes
                    if row["purpose"] == "organization"
                    else self.settings.linkedin_scopes
                ),
            }
        )
        base = self.settings.linkedin_oauth_base_url.rstrip("/")
        return RedirectResponse(
            f"{base}/authorization?{query}",
            302,
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )

    @property
    def redirect_uri(self) -> str:
        return self.settings.public_base_url.rstrip("/") + CALLBACK_PATH

    async def callback(self, request: Request) -> Response:
        params = request.query_params
        state = params.get("state", "")
        if not self.configured:
            return page("not_configured", browser_locale(request))
        if not state.isprintable() or len(state) > 256:  # never one of ours (NUL, controls)
            return page("unknown_state", browser_locale(request))
        with answering_503():
            pool = self.database.pool
            # Single use: the state is gone whatever the outcome.
            row = await pool.fetchrow(
                "delete from ingest_linkedin_states s using ingest_linkedin_invitations i"
                " where s.state = $1 and i.invitation_id = s.invitation_id"
                " returning i.invitation_id, i.employee_id, i.used_at, i.purpose,"
                " s.expires_at > now() as fresh",
                state,
            )
            if row is None or not row["fresh"]:
                return page("unknown_state", browser_locale(request))
            employee = row["employee_id"]
            locale = await self._locale(employee, request)
            if row["used_at"] is not None:
                return page("used_invitation", locale)
            if params.get("error") or not params.get("code"):
                # LinkedIn's error codes are [a-z_]; anything else is not logged verbatim.
                error = params.get("error", "no_code")
                reason = error if re.fullmatch(r"[a-z_]{1,64}", error) else "other"
                log.info(
                    "linkedin authorization not granted",
                    extra={"employee_id": employee, "reason": reason},
                )
                return page("denied", locale)
            grant, member = await self._exchange(params["code"], employee)
            if grant is None or member is None:
                return page("exchange_failed", locale)
            registered = await pool.fetchval(
                "select linkedin_member_urn from ingest_employees where employee_id = $1",
                employee,
            )
            if registered and registered != member:
                return page("wrong_account", locale)
            organization = self.settings.linkedin_organization_urn
            if row["purpose"] == "organization":
                administers = await self._administers(grant.access_token, organization)
                if administers is None:
                    return page("exchange_failed", locale)
                if not administers:
                    return page("not_admin", locale)
            async with pool.acquire() as conn, conn.transaction():
                used = await conn.fetchval(
                    "update ingest_linkedin_invitations set used_at = now()"
                    " where invitation_id = $1 and used_at is null returning 1",
                    row["invitation_id"],
                )
                if used is None:
                    return page("used_invitation", locale)
                if row["purpose"] == "organization":
                    await self.store.save_page(conn, organization, employee, member, grant)
                else:
                    await self.store.save(conn, employee, member, grant)
            await self.store.measure(pool)
        if row["purpose"] == "organization":
            log.info("linkedin company page connected", extra={"employee_id": employee})
            return page("page_connected", locale)
        log.info("linkedin connected", extra={"employee_id": employee})
        return page("connected", locale)

    async def _administers(self, token: str, organization: str) -> bool | None:
        """Whether the token's member is an APPROVED ADMINISTRATOR of ``organization``:
        ``GET /rest/organizationAcls?q=roleAssignee&role=ADMINISTRATOR&state=APPROVED``
        ("Organization Access Control by Role", https://learn.microsoft.com/en-us/linkedin/
        marketing/community-management/organizations/organization-access-control-by-role;
        rw_organization_admin is "restricted to organizations in which the authenticated
        member has the role type ADMINISTRATOR"). None: LinkedIn did not answer."""
        response = await self._rest_get(
            token, "organizationAcls?q=roleAssignee&role=ADMINISTRATOR&state=APPROVED"
        )
        if response is None:
            return None
        if response.status_code in (401, 403):
            return False  # rw_organization_admin not granted
        if response.status_code != 200:
            return None
        try:
            elements = orjson.loads(response.content).get("elements")
        except (orjson.JSONDecodeError, AttributeError):
            return None
        return administers(elements, organization)

    async def _rest_get(self, token: str, path_and_query: str) -> httpx.Response | None:
        """``GET {api base}/{path_and_query}`` with the member's token and LinkedIn's
        versioned Rest.li headers; None when LinkedIn did not answer."""
        url = f"{self.settings.linkedin_api_base_url.rstrip('/')}/{path_and_query}"
        headers = {
            "Authorization": f"Bearer {token}",
            "LinkedIn-Version": self.settings.linkedin_version,
            "X-Restli-Protocol-Version": "2.0.0",
        }
        try:
            return await self.http.get(url, headers=headers, timeout=self.settings.vendor_timeout_s)
        except httpx.HTTPError:
            return None

    async def _token_call(self, form: dict[str, str]) -> Any:
        url = self.settings.linkedin_oauth_base_url.rstrip("/") + "/accessToken"
        try:
            response = await self.http.post(
                url,
                data={
                    **form,
                    "client_id": self.settings.linkedin_client_id,
                    "client_secret": self.settings.linkedin_client_secret,
                },
                timeout=self.settings.vendor_timeout_s,
            )
        except httpx.HTTPError as exc:
            log.warning("linkedin token endpoint unreachable", extra={"reason": type(exc).__name__})
            return None
        if response.status_code != 200:
            log.warning("linkedin token endpoint refused", extra={"status": response.status_code})
            return None
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return None

    async def _exchange(self, code: str, employee: str) -> tuple[Grant | None, str | None]:
        now = datetime.now(UTC)
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri}
        grant = grant_from(await self._token_call(form), now)
        if grant is None:
            return None, None
        try:
            response = await self.http.get(
                self.settings.linkedin_userinfo_url,
                headers={"Authorization": f"Bearer {grant.access_token}"},
                timeout=self.settings.vendor_timeout_s,
            )
            sub = orjson.loads(response.content).get("sub") if response.status_code == 200 else None
        except (httpx.HTTPError, orjson.JSONDecodeError, AttributeError):
            sub = None
        if not isinstance(sub, str) or not sub:
            log.warning("linkedin userinfo without sub", extra={"employee_id": employee})
            return grant, None
        return grant, f"urn:li:person:{sub}"

    # --- for the poller ---

    async def tokens(self) -> list[tuple[str, str, str]]:
        """(member URN, access token, employee id) of every usable connection, refreshing
        those within the warning window that hold a live refresh token."""
        if self.store.cipher is None:
            return []
        pool = self.database.pool
        now = datetime.now(UTC)
        found = []
        for connection in await self.store.active(pool, now):
            token = await self._fresh(pool, connection, now)
            if token is not None:
                found.append((connection.member_urn, token, connection.employee_id))
                self._scopes[connection.employee_id] = connection.scopes
        return found

    def may_list(self, employee: str | None) -> bool:
        """Whether the poller may list the member's posts (``GET /rest/posts?q=author``):
        only with ``r_member_social`` granted, checked on the connection's scopes; members of
        the operator's tokens file (scopes unknown) keep being listed."""
        scopes = self._scopes.get(employee) if employee else None
        return scopes is None or "r_member_social" in scopes

    async def registered_posts(self, employee: str) -> list[dict[str, Any]]:
        """The posts polled for a connected employee whose posts may not be listed: those
        registered by URL, and those the employee's tracked links name."""
        rows = await self.database.pool.fetch(
            "select post_id from ingest_linkedin_registered_posts where employee_id = $1"
            " union select post_id from ingest_links where employee_id = $1"
            " and (post_id like 'urn:li:share:%' or post_id like 'urn:li:ugcPost:%')"
            " order by post_id",
            employee,
        )
        return [{"id": row["post_id"]} for row in rows]

    async def register_post(self, request: Request) -> Response:
        """``POST /v1/linkedin/posts {"employee_id","url"}`` (CONTRACT §8)."""
        body = await read_body(request, self.settings.max_body_bytes)
        try:
            spec = _decode_post(body)
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
            field = "url" if "url" in str(exc) else "employee_id"
            raise ProblemError(
                422,
                "invalid-post",
                "Invalid post",
                str(exc),
                errors=[{"field": field, "detail": str(exc)}],
            ) from None
        try:
            urn = post_urn(spec.url)
        except NotAPostUrl as exc:
            raise ProblemError(
                422,
                "invalid-post",
                "Invalid post",
                f"url: {exc}",
                errors=[{"field": "url", "detail": str(exc)}],
            ) from None
        with answering_503():
            mine = {e: (m, t) for m, t, e in await self.tokens()}
            if spec.employee_id not in mine:
                raise ProblemError(
                    409,
                    "not-connected",
                    "Not connected",
                    "the employee has no working LinkedIn connection; send an invitation",
                    errors=[{"field": "employee_id", "detail": "not connected"}],
                )
            _, token = mine[spec.employee_id]
            activity = urn if urn.startswith("urn:li:activity:") else None
            if activity is not None:
                urn = await self._activity_post(token, activity)
            owned = await self._owns(token, urn)
            if owned is None:
                raise ProblemError(
                    503,
                    "linkedin-unavailable",
                    "LinkedIn unavailable",
                    "LinkedIn did not answer; retry later",
                    headers={"Retry-After": str(self.settings.retry_after_s)},
                )
            if not owned:
                raise ProblemError(
                    422,
                    "not-own-post",
                    "Not the employee's post",
                    "LinkedIn does not give this member's statistics for this post: it is not"
                    " one of the employee's own posts",
                    errors=[{"field": "url", "detail": "not a post of the employee's account"}],
                )
            await self.database.pool.execute(
                "insert into ingest_linkedin_registered_posts (post_id, employee_id)"
                " values ($1, $2) on conflict (post_id) do update set employee_id = $2",
                urn,
                spec.employee_id,
            )
            if activity is not None:
                # The webhook's notifications naming only this activity join the same post.
                await self.database.pool.execute(
                    "insert into ingest_linkedin_activities (activity_urn, post_id)"
                    " values ($1, $2) on conflict (activity_urn) do nothing",
                    activity,
                    urn,
                )
        return json_response({"post_id": urn}, 202)

    async def _activity_post(self, token: str, activity: str) -> str:
        """The share/ugcPost an ``urn:li:activity:`` URL's activity is: the pair the webhook
        (or an earlier registration) saw, else LinkedIn's Activities API (DMA) BATCH_GET
        ``GET /rest/dmaActivities?ids=List({encoded urn})``
        (https://learn.microsoft.com/en-us/linkedin/dma/content/activities). A refusal (403:
        the app lacks the DMA permission, or "Activity's verb type is not allowed from the
        ActivityFilter") or an empty ``domainEntity`` (the author opted out of data sharing)
        is 422 naming ``url``; LinkedIn not answering is 503."""
        known = await self.database.pool.fetchval(
            "select post_id from ingest_linkedin_activities where activity_urn = $1", activity
        )
        if isinstance(known, str):
            return known
        response = await self._rest_get(
            token, f"dmaActivities?ids=List({quote(activity, safe='')})"
        )
        if response is None or response.status_code not in (200, 400, 403, 404):
            raise ProblemError(
                503,
                "linkedin-unavailable",
                "LinkedIn unavailable",
                "LinkedIn did not answer; retry later",
                headers={"Retry-After": str(self.settings.retry_after_s)},
            )
        post = None
        if response.status_code == 200:
            try:
                post = activity_post(orjson.loads(response.content), activity)
            except orjson.JSONDecodeError:
                post = None
        if post is None:
            log.info("linkedin activity not resolved", extra={"status": response.status_code})
            raise ProblemError(
                422,
                "unresolvable-activity-url",
                "Activity link not resolved",
                "url names an activity (/feed/update/urn:li:activity:… or /posts/…-activity-…)"
                " and LinkedIn would not say which post it is (the app lacks LinkedIn's DMA"
                " Activities permission, the author does not share their data, or it is not a"
                " post); copy the post's own link instead: /feed/update/urn:li:share:… or"
                " urn:li:ugcPost:… (on the post: … → Embed this post) / Aktivitetslinket kunne"
                " ikke slås op hos LinkedIn; kopiér opslagets eget link (urn:li:share:… eller"
                " urn:li:ugcPost:…)",
                errors=[
                    {
                        "field": "url",
                        "detail": "an activity LinkedIn did not resolve to a share or ugcPost;"
                        " use the post's share/ugcPost link",
                    }
                ],
            )
        return post

    async def _owns(self, token: str, urn: str) -> bool | None:
        """Whether ``urn`` is the token's member's own post: Member Post Statistics answer
        only for the authenticated member's posts (403/404 otherwise). None: no answer."""
        kind = "ugc" if urn.startswith("urn:li:ugcPost:") else "share"
        response = await self._rest_get(
            token,
            f"memberCreatorPostAnalytics?q=entity&entity=({kind}:{quote(urn, safe='')})"
            "&queryType=IMPRESSION&aggregation=TOTAL",
        )
        if response is None:
            return None
        if response.status_code == 200:
            return True
        if response.status_code in (400, 403, 404):
            return False
        return None

    async def _fresh(
        self, pool: Any, connection: Connection | PageConnection, now: datetime
    ) -> str | None:
        """The connection's access token, refreshed first when within the warning window
        and a live refresh token exists; None once it no longer works."""
        due = connection.expires_at - now <= self.store.warn_before
        renewable = connection.refresh_token is not None and (
            connection.refresh_expires_at is None or connection.refresh_expires_at > now
        )
        if due and renewable and self.configured:
            grant = grant_from(
                await self._token_call(
                    {"grant_type": "refresh_token", "refresh_token": connection.refresh_token or ""}
                ),
                now,
            )
            if grant is not None:
                REFRESHES.labels("ok").inc()
                if not grant.scopes:
                    grant = dataclasses.replace(grant, scopes=connection.scopes)
                if isinstance(connection, PageConnection):
                    await self.store.save_page(
                        pool,
                        connection.organization_urn,
                        connection.employee_id,
                        connection.admin_urn,
                        grant,
                    )
                else:
                    await self.store.save(
                        pool, connection.employee_id, connection.member_urn, grant
                    )
                return grant.access_token
            REFRESHES.labels("failed").inc()
        return connection.access_token if connection.expires_at > now else None

    async def page_token(self) -> tuple[str, str] | None:
        """(access token, admin URN) of the company page (``INGEST_LINKEDIN_ORGANIZATION_URN``)
        as its admin connected it (refreshed when due); None without a working one."""
        organization = self.settings.linkedin_organization_urn
        if not organization or self.store.cipher is None:
            return None
        pool, now = self.database.pool, datetime.now(UTC)
        connection = await self.store.page(pool, organization, now)
        if connection is None:
            return None
        token = await self._fresh(pool, connection, now)
        return (token, connection.admin_urn) if token is not None else None

    async def page_refused(self) -> None:
        """The poller's 401 for the page's connected token: its admin must connect again."""
        await self.store.page_revoked(self.database.pool, self.settings.linkedin_organization_urn)

    async def refused(self, employee: str) -> None:
        """The poller's 401 for a connected employee: revoked, and told at once."""
        await self.store.revoked(self.database.pool, employee)
        await self.remind(employee)


def administers(elements: Any, organization: str) -> bool:
    """Whether ``organizationAcls`` elements grant ``organization``'s ADMINISTRATOR role,
    APPROVED (``organization``, the versioned API's field; ``organizationalTarget`` in /v2)."""
    for element in elements if isinstance(elements, list) else []:
        if not isinstance(element, dict):
            continue
        target = element.get("organization") or element.get("organizationalTarget")
        if (
            target == organization
            and element.get("role") == "ADMINISTRATOR"
            and element.get("state") == "APPROVED"
        ):
            return True
    return False


def _field(message: str, optional: tuple[str, ...]) -> str:
    """The body field a msgspec error names (``$.send``), else ``employee_id``."""
    return next((f for f in optional if f"$.{f}" in message), "employee_id")


class _AlreadySent(Exception):
    """Rolls back a reminder another replica recorded first."""
