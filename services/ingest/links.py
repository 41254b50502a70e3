"""Tracked links: ``POST /v1/links`` creates one, ``GET /r/{code}`` redirects through it.

The pure rules (codes, the host allow-list, the UTM-tagged target, the visitor id) are plain
functions. Links are looked up in a bounded in-process LRU cache, then in PostgreSQL (the
source of truth); a click never waits for Kafka: its ``link.clicked.v1`` goes through the
:class:`~services.ingest.clicks.ClickBuffer`.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import logging
import os
import re
import secrets
import string
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import asyncpg
import idna
import msgspec
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response

from services.ingest.clicks import ClickBuffer
from services.ingest.database import Database, answering_503
from services.ingest.publisher import BrokerUnavailable, Publisher
from services.ingest.settings import IngestSettings
from shared.cloudevents import _field_error as field_error
from shared.events import Id, LinkClicked, LinkClickedEvent, LinkCreated, LinkCreatedEvent, Url
from shared.http import ProblemError, json_response, read_body
from shared.metrics import preinit

log = logging.getLogger(__name__)

BASE62 = string.ascii_letters + string.digits
CODE = re.compile(r"^[A-Za-z0-9]{6,64}$")
VISITOR = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
COOKIE = "ripples_vid"
SOURCE = "urn:ripples:ingest:links"

REDIRECT_OUTCOMES = ("redirected", "preview", "unknown", "blocked", "unavailable")
# Link-preview fetchers and crawlers: they follow the link to render a preview when it is
# posted, which is not a visit. They get the redirect, but no cookie and no click event.
PREVIEW_AGENTS = (
    "linkedinbot",
    "slackbot",
    "slack-imgproxy",
    "facebookexternalhit",
    "twitterbot",
    "whatsapp",
    "skypeuripreview",
    "microsoftpreview",
    "teamsbot",
    "discordbot",
    "telegrambot",
    "googlebot",
    "bingbot",
    "applebot",
)
REDIRECTS = Counter(
    "ingest_redirects_total", "Requests to GET /r/{link_code}, by outcome.", ["outcome"]
)
preinit(REDIRECTS, REDIRECT_OUTCOMES)
_OUTCOME = {outcome: REDIRECTS.labels(outcome) for outcome in REDIRECT_OUTCOMES}
CACHE_HITS = Counter("ingest_link_cache_hits_total", "Link lookups answered from memory.")
CACHE_MISSES = Counter("ingest_link_cache_misses_total", "Link lookups that went to PostgreSQL.")
LINKS_CREATED = Counter("ingest_links_created_total", "Tracked links created.")


# --- pure rules ----------------------------------------------------------------------------


def new_code(length: int) -> str:
    """An unguessable base62 code from the system's CSPRNG."""
    return "".join(secrets.choice(BASE62) for _ in range(length))


def new_visitor_id() -> str:
    return secrets.token_urlsafe(16)


class RandomBytes:
    """Bytes from the system CSPRNG (``os.urandom``), read ``chunk`` bytes at a time: one
    system call per 256 click ids instead of two per click."""

    def __init__(self, chunk: int = 4096) -> None:
        self.chunk = chunk
        self._bytes = b""
        self._at = 0

    def take(self, n: int) -> bytes:
        if self._at + n > len(self._bytes):
            self._bytes = os.urandom(max(self.chunk, n))
            self._at = 0
        out = self._bytes[self._at : self._at + n]
        self._at += n
        return out

    def visitor_id(self) -> str:
        """Like :func:`new_visitor_id` (``secrets.token_urlsafe(16)``): 22 url-safe
        characters."""
        return base64.urlsafe_b64encode(self.take(16)).rstrip(b"=").decode()

    def uuid4(self) -> str:
        return str(uuid.UUID(bytes=self.take(16), version=4))


def valid_visitor_id(value: str | None) -> str | None:
    """The cookie's visitor id if it is one Ripples could have set, else None."""
    return value if value is not None and VISITOR.match(value) else None


# A backslash (a path separator to browsers: ``https://evil.com\.example.com/`` goes to
# evil.com), C0/C1 control characters and spaces (browsers drop tabs and newlines before
# parsing, so what they see is not what was checked).
_REFUSED_CHARACTERS = re.compile(r"[\\\x00-\x20\x7f-\x9f]")
_LABEL = re.compile(r"\A(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
_NUMERIC_LABEL = re.compile(r"\A(?:[0-9]+|0x[0-9a-f]*)\Z")
_ASCII = "".join(map(chr, range(0x21, 0x7F)))  # percent-encode only what is not ASCII


class TargetRefused(ValueError):
    """A redirect target Ripples will not send a browser to; the message says why."""


def normalise_host(host: str) -> str:
    """The host as a browser resolves it (WHATWG URL host parsing): lower case, without the
    root's trailing dot, a U-label as its A-label (UTS #46, the ``idna`` package), an IP
    literal in its canonical form. :class:`TargetRefused` when it is none of a valid
    IDNA/ASCII host name, an IPv4 address or a bracketed IPv6 address."""
    if host.startswith("["):
        if not host.endswith("]") or "%" in host:
            raise TargetRefused("is not a valid IPv6 literal")
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            raise TargetRefused("is not a valid IPv6 literal") from None
    name = host[:-1] if host.endswith(".") else host
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise TargetRefused("is not a valid internationalised host name") from None
    name = name.lower()
    labels = name.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):  # browsers parse this as an IPv4 address
        try:
            return str(ipaddress.IPv4Address(name))
        except ValueError:
            raise TargetRefused("is not a valid IPv4 address") from None
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise TargetRefused("is not a valid host name")
    for label in labels:
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError):
                raise TargetRefused("is not a valid internationalised host name") from None
    return name


def target_host(url: str) -> str:
    """The normalised host of a redirect target; :class:`TargetRefused` when the URL is not
    http(s), carries a backslash, userinfo or a control character, has a bad port, or its
    host is not a valid host name or IP literal."""
    if _REFUSED_CHARACTERS.search(url):
        raise TargetRefused("contains a backslash, a space or a control character")
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number 0-65535 raises
    except ValueError:
        raise TargetRefused("is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("must be an http or https URL")
    if "@" in parts.netloc:
        raise TargetRefused("must not carry userinfo (user@)")
    host = parts.netloc
    if host.startswith("["):
        host = host[: host.find("]") + 1]
    else:
        host = host.rpartition(":")[0] if ":" in host else host
    if not host:
        raise TargetRefused("has no host")
    try:
        return normalise_host(host)
    except TargetRefused as exc:
        raise TargetRefused(f"has a host that {exc}") from None


def target_refused(url: str, allowed: tuple[str, ...]) -> str | None:
    """Why ``url`` may not be a redirect target, or None when it is http(s) on a host of the
    allow-list (``host`` or ``*.domain``), compared after normalising both sides."""
    try:
        host = target_host(url)
    except TargetRefused as exc:
        return str(exc)
    for entry in allowed:
        wildcard = entry.startswith("*.")
        try:
            name = normalise_host(entry[2:] if wildcard else entry)
        except TargetRefused:
            continue  # a bad entry allows nothing
        if host == name if not wildcard else host.endswith("." + name):
            return None
    return "has a host that is not on the allow-list (INGEST_LINK_ALLOWED_HOSTS)"


def host_allowed(url: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``url`` may be a redirect target (see :func:`target_refused`)."""
    return target_refused(url, allowed) is None


def tagged_target(target_url: str, link_code: str, job_id: str | None) -> str:
    """The target with the UTM parameters and ``ripples_ref`` added; other parameters kept.

    Parameters Ripples sets replace any of the same name already in the target."""
    parts = urlsplit(target_url)
    ours = {
        "utm_source": "linkedin",
        "utm_medium": "employee_advocacy",
        **({"utm_campaign": job_id} if job_id else {}),
        "utm_content": link_code,
        "ripples_ref": link_code,
    }
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ours]
    query = urlencode([*kept, *ours.items()])
    netloc = parts.netloc
    if not netloc.isascii():  # the Location header is ASCII: the host as its A-label
        port = f":{parts.port}" if parts.port is not None else ""
        netloc = target_host(target_url) + port
    path, fragment = quote(parts.path, safe=_ASCII), quote(parts.fragment, safe=_ASCII)
    return urlunsplit((parts.scheme, netloc, path, query, fragment))


def is_preview(method: str, user_agent: str | None) -> bool:
    """Whether a request is a link preview or crawler (a HEAD, or a known fetcher's agent)."""
    if method == "HEAD":
        return True
    agent = (user_agent or "").lower()
    return any(name in agent for name in PREVIEW_AGENTS)


def link_url(public_base_url: str, link_code: str) -> str:
    return f"{public_base_url.rstrip('/')}/r/{link_code}"


# --- the cache -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Link:
    link_code: str
    target_url: str
    employee_id: str | None = None
    job_id: str | None = None
    post_id: str | None = None


class LinkCache:
    """A bounded least-recently-used map of link codes to links."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._links: OrderedDict[str, Link] = OrderedDict()

    def get(self, code: str) -> Link | None:
        link = self._links.get(code)
        if link is not None:
            self._links.move_to_end(code)
        return link

    def put(self, link: Link) -> None:
        self._links[link.link_code] = link
        self._links.move_to_end(link.link_code)
        while len(self._links) > self.size:
            self._links.popitem(last=False)

    def __len__(self) -> int:
        return len(self._links)


# --- HTTP ----------------------------------------------------------------------------------


class LinkRequest(msgspec.Struct, kw_only=True, frozen=True):
    target_url: Url
    employee_id: Id | None = None
    job_id: Id | None = None
    post_id: Id | None = None


_decode_request = msgspec.json.Decoder(LinkRequest).decode


class Links:
    def __init__(
        self,
        settings: IngestSettings,
        database: Database,
        publisher: Publisher,
        clicks: ClickBuffer,
    ) -> None:
        self.settings = settings
        self.database = database
        self.publisher = publisher
        self.clicks = clicks
        self.cache = LinkCache(settings.link_cache_size)
        self.secure_cookie = settings.public_base_url.startswith("https://")
        # What Response.set_cookie(COOKIE, visitor, max_age, path="/", secure, httponly=True,
        # samesite="lax") writes after the value, built once instead of per click.
        self._cookie_attributes = (
            f"; HttpOnly; Max-Age={settings.visitor_cookie_max_age_s}; Path=/; SameSite=lax"
            + ("; Secure" if self.secure_cookie else "")
        )
        self._random = RandomBytes()
        # The redirect target of a link (None when its host is no longer allowed) depends
        # only on the link and the settings: computed once per link, not per click.
        self._location = functools.lru_cache(maxsize=max(1, settings.link_cache_size))(
            self._resolve
        )

    def _resolve(self, target_url: str, code: str, job_id: str | None) -> str | None:
        if not host_allowed(target_url, self.settings.link_allowed_hosts):
            return None
        return tagged_target(target_url, code, job_id)

    async def create(self, request: Request) -> Response:
        with answering_503():
            return await self._create(request)

    async def _create(self, request: Request) -> Response:
        body = await read_body(request, self.settings.max_body_bytes)
        try:
            spec = _decode_request(body)
        except msgspec.ValidationError as exc:
            field = field_error(exc).field  # "missing required field `target_url`" too
            raise ProblemError(
                422,
                "invalid-link",
                "Invalid link",
                str(exc),
                errors=[{"field": field, "detail": str(exc)}],
            ) from None
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # msgspec's invalid UTF-8
            detail = f"not JSON: {exc}"
            raise ProblemError(
                422,
                "invalid-link",
                "Invalid link",
                detail,
                errors=[{"field": "$", "detail": detail}],
            ) from None
        refused = target_refused(spec.target_url, self.settings.link_allowed_hosts)
        if refused is not None:
            raise ProblemError(
                422,
                "target-not-allowed",
                "Target not allowed",
                f"target_url {refused}",
                errors=[{"field": "target_url", "detail": refused}],
            )
        pool = self.database.pool
        link = None
        for _ in range(5):
            candidate = Link(
                new_code(self.settings.link_code_length),
                spec.target_url,
                spec.employee_id,
                spec.job_id,
                spec.post_id,
            )
            try:
                await pool.execute(
                    "insert into ingest_links (link_code, target_url, employee_id, job_id,"
                    " post_id) values ($1, $2, $3, $4, $5)",
                    candidate.link_code,
                    candidate.target_url,
                    candidate.employee_id,
                    candidate.job_id,
                    candidate.post_id,
                )
            except asyncpg.UniqueViolationError:
                continue
            link = candidate
            break
        if link is None:  # pragma: no cover - 5 collisions of 71-bit random codes
            raise ProblemError(500, "internal-error", "Internal error", "no free link code")
        event = LinkCreatedEvent(
            specversion="1.0",
            id=f"link-created:{link.link_code}",
            source=SOURCE,
            time=datetime.now(UTC),
            subject=link.link_code,
            data=LinkCreated(
                link_code=link.link_code,
                target_url=link.target_url,
                employee_id=link.employee_id,
                job_id=link.job_id,
                post_id=link.post_id,
            ),
        )
        try:
            await self.publisher.publish([event])
        except BrokerUnavailable:
            # Nobody learnt the code: remove it, so no link exists without its event.
            await pool.execute("delete from ingest_links where link_code = $1", link.link_code)
            raise ProblemError(
                503,
                "broker-unavailable",
                "Broker unavailable",
                "the link was not created because the broker did not acknowledge; retry later",
                headers={"Retry-After": str(self.settings.retry_after_s)},
            ) from None
        self.cache.put(link)
        LINKS_CREATED.inc()
        url = link_url(self.settings.public_base_url, link.link_code)
        return json_response(
            {
                "link_code": link.link_code,
                "url": url,
                "target_url": link.target_url,
                "employee_id": link.employee_id,
                "job_id": link.job_id,
                "post_id": link.post_id,
            },
            201,
            headers={"Location": url},
        )

    async def lookup(self, code: str) -> Link | None:
        link = self.cache.get(code)
        if link is not None:
            CACHE_HITS.inc()
            return link
        CACHE_MISSES.inc()
        with answering_503():
            row = await self.database.pool.fetchrow(
                "select link_code, target_url, employee_id, job_id, post_id"
                " from ingest_links where link_code = $1",
                code,
            )
        if row is None:
            return None
        link = Link(**dict(row))
        self.cache.put(link)
        return link

    async def redirect(self, request: Request) -> Response:
        code: str = request.path_params["link_code"]
        link = None
        if CODE.match(code):
            try:
                link = await self.lookup(code)
            except ProblemError:
                _OUTCOME["unavailable"].inc()
                raise
        if link is None:
            _OUTCOME["unknown"].inc()
            raise ProblemError(404, "unknown-link", "Unknown link", "no tracked link has this code")
        location = self._location(link.target_url, code, link.job_id)
        if location is None:
            _OUTCOME["blocked"].inc()
            log.warning("link target no longer allowed", extra={"link_code": code})
            raise ProblemError(
                404, "unknown-link", "Unknown link", "this link's target is no longer allowed"
            )
        headers = request.headers
        if is_preview(request.method, headers.get("user-agent")):
            _OUTCOME["preview"].inc()
            return Response(
                status_code=302, headers={"Location": location, "Cache-Control": "no-store"}
            )
        existing = valid_visitor_id(request.cookies.get(COOKIE)) if "cookie" in headers else None
        visitor = existing or self._random.visitor_id()
        now = datetime.now(UTC)
        self.clicks.add(
            LinkClickedEvent(
                specversion="1.0",
                id=self._random.uuid4(),
                source=SOURCE,
                time=now,
                subject=code,
                data=LinkClicked(link_code=code, visitor_id=visitor, at=now),
            )
        )
        response = Response(
            status_code=302,
            headers={
                "Location": location,
                "Cache-Control": "no-store",
                "Referrer-Policy": "no-referrer-when-downgrade",
            },
        )
        if existing is None:
            cookie = f"{COOKIE}={visitor}{self._cookie_attributes}"
            response.raw_headers.append((b"set-cookie", cookie.encode("latin-1")))
        _OUTCOME["redirected"].inc()
        return response
