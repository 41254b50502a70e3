"""A local LinkedIn: OAuth 2.0 (authorization code and refresh), OpenID userinfo, the member's
posts and their statistics, speaking the formats of LinkedIn's own pages:

- Authorization Code Flow (3-legged OAuth),
  https://learn.microsoft.com/en-us/linkedin/shared/authentication/authorization-code-flow :
  ``GET /oauth/v2/authorization`` with ``response_type=code``, ``client_id``,
  ``redirect_uri``, ``state``, ``scope`` → the browser goes back to ``redirect_uri`` with
  ``code`` and ``state``, or ``error=user_cancelled_authorize`` and ``error_description``;
  ``POST /oauth/v2/accessToken`` (``application/x-www-form-urlencoded``: ``grant_type=
  authorization_code``, ``code``, ``redirect_uri``, ``client_id``, ``client_secret``) →
  ``{"access_token","expires_in","scope"}`` (+ ``refresh_token``,
  ``refresh_token_expires_in`` for partners approved for refresh tokens); a code is single
  use and bound to its ``redirect_uri``; errors are ``{"error","error_description"}``.
- Refresh Tokens with OAuth 2.0,
  https://learn.microsoft.com/en-us/linkedin/shared/authentication/programmatic-refresh-tokens :
  ``grant_type=refresh_token``, ``refresh_token``, ``client_id``, ``client_secret`` → a new
  access token (60 days) and the refresh token with its remaining lifetime.
- Sign In with LinkedIn using OpenID Connect,
  https://learn.microsoft.com/en-us/linkedin/consumer/integrations/self-serve/
  sign-in-with-linkedin-v2 :
  ``GET /v2/userinfo`` (Bearer) → ``sub``, ``name``, ``given_name``, ``family_name``,
  ``locale``, ``email_verified``…
- LinkedIn API versioning,
  https://learn.microsoft.com/en-us/linkedin/marketing/versioning : ``/rest`` calls carry
  ``LinkedIn-Version: YYYYMM`` and ``X-Restli-Protocol-Version: 2.0.0``; a missing version is
  400 ``VERSION_MISSING``; an expired or revoked token is 401 (``EXPIRED_ACCESS_TOKEN`` /
  ``REVOKED_ACCESS_TOKEN``).
- Rest.li protocol 2.0,
  https://learn.microsoft.com/en-us/linkedin/shared/api-guide/concepts/protocol-version :
  URNs inside a parameter are URL-encoded (``:`` → ``%3A``), the tuple's own parentheses are
  not (``List(urn%3Ali%3Aorganization%3A12345)``).
- Organization Access Control by Role,
  https://learn.microsoft.com/en-us/linkedin/marketing/community-management/organizations/
  organization-access-control-by-role : ``GET /rest/organizationAcls?q=roleAssignee``
  (optionally ``role=ADMINISTRATOR``, ``state=APPROVED``), the authenticated member's roles
  as ``elements`` of ``{"roleAssignee", "role", "state", "organization"}``; it needs one of
  the organization permissions (``rw_organization_admin`` "restricted to organizations in
  which the authenticated member has the role type ADMINISTRATOR").
- Posts API ``GET /rest/posts?q=author&author={encoded urn}`` (needs ``r_member_social``) and
  Member Post Statistics (the authenticated member's own posts, ``r_member_postAnalytics``)
  ``GET /rest/memberCreatorPostAnalytics?q=entity&entity=(share:{encoded urn})&queryType=
  IMPRESSION&aggregation=TOTAL``.
- Activities API (DMA), https://learn.microsoft.com/en-us/linkedin/dma/content/activities :
  ``GET /rest/dmaActivities?ids=List(urn%3Ali%3Aactivity%3A{id})`` (Bearer, ``Linkedin-Version``,
  ``X-Restli-Protocol-Version: 2.0.0``), a "Batch_Get to resolve a batch of activities and
  returns each activities' domain entity Urn": ``results`` keyed by the activity URN, each
  ``{"domainEntity": "urn:li:share:…"}`` (Rest.li's BATCH_GET shape, ``results``/``statuses``/
  ``errors`` maps keyed by the id, as LinkedIn's own client documents it:
  https://github.com/linkedin-developers/linkedin-api-python-client); "The DomainEntity field
  will be empty when the author is opted out for sharing their data"; "For activity types that
  are not supported (i.e. Reaction), you should expect a HTTP 403 with Activity's verb type is
  not allowed from the ActivityFilter." An app without the DMA product is refused (403).
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

SIXTY_DAYS = 60 * 24 * 3600
YEAR = 365 * 24 * 3600


@dataclass
class Call:
    method: str
    path: str
    raw_query: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    form: dict[str, list[str]]


@dataclass
class LinkedInEmulator:
    client_id: str
    client_secret: str
    # Who consents at the authorization page next ("" = the member cancels).
    member_sub: str = "abc123XYZ"
    # What the token endpoint grants on a code exchange.
    expires_in: int = SIXTY_DAYS
    refresh_tokens: bool = False
    posts: dict[str, list[str]] = field(default_factory=dict)  # member URN → post URNs
    published: dict[str, int] = field(default_factory=dict)  # post URN → publishedAt (ms)
    calls: list[Call] = field(default_factory=list)
    codes: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    access: dict[str, str] = field(default_factory=dict)  # token → sub
    scopes: dict[str, list[str]] = field(default_factory=dict)  # token → granted scopes
    refresh: dict[str, str] = field(default_factory=dict)  # refresh token → sub
    refresh_scopes: dict[str, list[str]] = field(default_factory=dict)  # sub → scopes
    exchanged: list[str] = field(default_factory=list)  # access tokens issued for a code
    admins: dict[str, list[str]] = field(default_factory=dict)  # sub → pages administered
    # Activities API (DMA): activity URN → its domainEntity ("" = the author opted out of data
    # sharing, None = a verb type the ActivityFilter does not allow); dma=False: the app lacks
    # the DMA product.
    activities: dict[str, str | None] = field(default_factory=dict)
    dma: bool = True
    activities_outage: int = 0  # a status the Activities API answers with instead (e.g. 500)
    address: str = ""

    def revoke(self, sub: str) -> None:
        for token, owner in list(self.access.items()):
            if owner == sub:
                del self.access[token]

    # --- the endpoints ---

    def handle(self, call: Call) -> tuple[int, dict[str, str], Any]:
        if call.method == "GET" and call.path == "/oauth/v2/authorization":
            return self._authorize(call)
        if call.method == "POST" and call.path == "/oauth/v2/accessToken":
            return self._token(call)
        if call.method == "GET" and call.path == "/v2/userinfo":
            sub = self._bearer(call)
            if sub is None:
                return 401, {}, {"status": 401, "serviceErrorCode": 65600, "code": "INVALID"}
            return (
                200,
                {},
                {
                    "sub": sub,
                    "email_verified": True,
                    "name": "Test Person",
                    "locale": {"country": "DK", "language": "da"},
                    "given_name": "Test",
                    "family_name": "Person",
                },
            )
        if call.path.startswith("/rest/"):
            return self._rest(call)
        return 404, {}, {"status": 404}

    def _authorize(self, call: Call) -> tuple[int, dict[str, str], Any]:
        q = {k: v[0] for k, v in call.query.items()}
        if (
            q.get("response_type") != "code"
            or q.get("client_id") != self.client_id
            or not q.get("redirect_uri")
            or not q.get("scope")
        ):
            return 400, {}, {"error": "invalid_request", "error_description": "bad request"}
        back = {"state": q["state"]} if "state" in q else {}
        if not self.member_sub:
            back |= {
                "error": "user_cancelled_authorize",
                "error_description": "The user cancelled the authorization",
            }
        else:
            code = secrets.token_urlsafe(16)
            self.codes[code] = (q["redirect_uri"], self.member_sub, q["scope"])
            back = {"code": code, **back}
        return 302, {"Location": f"{q['redirect_uri']}?{urlencode(back)}"}, None

    def _token(self, call: Call) -> tuple[int, dict[str, str], Any]:
        if not call.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return 400, {}, {"error": "invalid_request", "error_description": "form expected"}
        f = {k: v[0] for k, v in call.form.items()}
        if f.get("client_id") != self.client_id or f.get("client_secret") != self.client_secret:
            return 401, {}, {"error": "invalid_client", "error_description": "Client auth failed"}
        if f.get("grant_type") == "authorization_code":
            issued = self.codes.pop(f.get("code", ""), None)
            if issued is None or issued[0] != f.get("redirect_uri"):
                return 400, {}, {"error": "invalid_request", "error_description": "bad code"}
            _, sub, scope = issued
            token = "AQV" + secrets.token_urlsafe(32)
            self.access[token] = sub
            self.scopes[token] = scope.split()
            self.exchanged.append(token)
            self.refresh_scopes[sub] = scope.split()
            body: dict[str, Any] = {
                "access_token": token,
                "expires_in": self.expires_in,
                "scope": ",".join(scope.split()),
            }
            if self.refresh_tokens:
                refresh = "AQX" + secrets.token_urlsafe(32)
                self.refresh[refresh] = sub
                body |= {"refresh_token": refresh, "refresh_token_expires_in": YEAR}
            return 200, {}, body
        if f.get("grant_type") == "refresh_token":
            sub = self.refresh.get(f.get("refresh_token", ""))
            if sub is None:
                return 400, {}, {"error": "invalid_request", "error_description": "bad token"}
            token = "AQV" + secrets.token_urlsafe(32)
            self.access[token] = sub
            self.scopes[token] = self.refresh_scopes.get(sub, [])
            return (
                200,
                {},
                {
                    "access_token": token,
                    "expires_in": SIXTY_DAYS,
                    "refresh_token": f["refresh_token"],
                    "refresh_token_expires_in": YEAR - 60,
                },
            )
        return 400, {}, {"error": "unsupported_grant_type", "error_description": "grant type"}

    def _bearer(self, call: Call) -> str | None:
        token = call.headers.get("authorization", "").removeprefix("Bearer ")
        return self.access.get(token)

    def _rest(self, call: Call) -> tuple[int, dict[str, str], Any]:
        version = call.headers.get("linkedin-version", "")
        if not (len(version) == 6 and version.isdigit()):
            return 400, {}, {"status": 400, "code": "VERSION_MISSING"}
        if call.headers.get("x-restli-protocol-version") != "2.0.0":
            return 400, {}, {"status": 400, "code": "PROTOCOL_VERSION"}
        sub = self._bearer(call)
        if sub is None:
            return 401, {}, {"status": 401, "serviceErrorCode": 65601, "code": "REVOKED"}
        member = f"urn:li:person:{sub}"
        token = call.headers.get("authorization", "").removeprefix("Bearer ")
        granted = self.scopes.get(token, [])
        if call.path == "/rest/organizationAcls" and call.query.get("q") == ["roleAssignee"]:
            if not {"rw_organization_admin", "r_organization_admin"} & set(granted):
                return 403, {}, {"status": 403, "code": "ACCESS_DENIED"}
            roles = [
                {
                    "roleAssignee": member,
                    "role": "ADMINISTRATOR",
                    "state": "APPROVED",
                    "organization": organization,
                }
                for organization in self.admins.get(sub, [])
            ]
            wanted = {k: call.query[k][0] for k in ("role", "state") if k in call.query}
            elements = [r for r in roles if all(r[k] == v for k, v in wanted.items())]
            return 200, {}, {"paging": {"count": 10, "start": 0, "links": []}, "elements": elements}
        if call.path == "/rest/posts" and "r_member_social" not in granted:
            # Posts API: reading a member's posts needs the closed r_member_social permission.
            return 403, {}, {"status": 403, "code": "ACCESS_DENIED", "message": "r_member_social"}
        if call.path == "/rest/posts" and call.query.get("author") == [member]:
            posts = self.posts.get(member, [])
            return (
                200,
                {},
                {
                    "elements": [
                        {
                            "id": p,
                            "author": member,
                            "publishedAt": self.published.get(p, 1780000000000 + i),
                            "lifecycleState": "PUBLISHED",
                        }
                        for i, p in enumerate(posts)
                    ],
                    "paging": {"start": 0, "count": len(posts), "total": len(posts)},
                },
            )
        if call.path == "/rest/memberCreatorPostAnalytics":
            # Member Post Statistics: only the authenticated member's own posts, named in the
            # tuple with the URN URL-encoded: (share:urn%3Ali%3Ashare%3A…) / (ugc:…).
            raw = dict(p.split("=", 1) for p in call.raw_query.split("&") if "=" in p)
            entity = raw.get("entity", "")
            kind, _, encoded = entity.removeprefix("(").removesuffix(")").partition(":")
            urn = unquote(encoded)
            if "r_member_postAnalytics" not in granted:
                return 403, {}, {"status": 403, "code": "ACCESS_DENIED"}
            if ":" in encoded or kind not in ("share", "ugc"):
                return 400, {}, {"status": 400, "code": "ILLEGAL_ARGUMENT", "message": entity}
            if urn not in self.posts.get(member, []):
                return 403, {}, {"status": 403, "code": "ACCESS_DENIED", "message": "not owner"}
            return 200, {}, {"elements": [{"count": 100}], "paging": {"start": 0, "count": 10}}
        if call.path == "/rest/dmaActivities":
            return self._activities(call)
        return 403, {}, {"status": 403, "code": "ACCESS_DENIED"}

    def _activities(self, call: Call) -> tuple[int, dict[str, str], Any]:
        """BATCH_GET: ``ids=List(urn%3Ali%3Aactivity%3A…,…)``, each URN URL-encoded."""
        raw = dict(p.split("=", 1) for p in call.raw_query.split("&") if "=" in p)
        ids = raw.get("ids", "")
        inner = ids.removeprefix("List(").removesuffix(")")
        if not ids.startswith("List(") or not ids.endswith(")") or ":" in inner or not inner:
            return 400, {}, {"status": 400, "code": "ILLEGAL_ARGUMENT", "message": ids}
        if self.activities_outage:
            return self.activities_outage, {}, {"status": self.activities_outage}
        if not self.dma:
            return (
                403,
                {},
                {
                    "status": 403,
                    "code": "ACCESS_DENIED",
                    "message": "Not enough permissions to access: dmaActivities.BATCH_GET.20240101",
                },
            )
        results: dict[str, Any] = {}
        statuses: dict[str, int] = {}
        errors: dict[str, Any] = {}
        for urn in (unquote(part) for part in inner.split(",")):
            if urn not in self.activities:
                statuses[urn] = 404
                errors[urn] = {"status": 404, "message": "Not found"}
                continue
            entity = self.activities[urn]
            if entity is None:
                return (
                    403,
                    {},
                    {
                        "status": 403,
                        "code": "ACCESS_DENIED",
                        "message": "Activity's verb type is not allowed from the ActivityFilter.",
                    },
                )
            results[urn] = {"domainEntity": entity} if entity else {}
            statuses[urn] = 200
        return 200, {}, {"results": results, "statuses": statuses, "errors": errors}

    # --- the server ---

    def start(self) -> None:
        emulator = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                call = Call(
                    method,
                    parts.path,
                    parts.query,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    parse_qs(raw) if method == "POST" else {},
                )
                emulator.calls.append(call)
                status, extra, body = emulator.handle(call)
                payload = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.address = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
