"""Bearer keys (CONTRACT §7 "Access"): the one check every Ripples service applies to its
``/v1/*`` routes.

Every ``/v1/*`` request needs ``Authorization: Bearer <key>`` with one of the service's keys
(``INGEST_API_KEYS``, ``ATTRIBUTION_API_KEYS``, ``NOTIFIER_API_KEYS``; several at once so a key
can be rotated). Open without a key: the vendor webhooks under ``/v1/webhooks/`` (checked by
their signatures) and everything outside ``/v1/`` (``/livez``, ``/readyz``, ``/metrics``,
``/openapi.json``, the redirector ``/r/{code}`` and the browser pages, checked by their signed
tokens). So a new ``/v1`` route is protected by default, nobody has to remember it.

The check works on the raw header bytes (no decoding, so a non-ASCII header is a plain 401,
never an exception) and compares the SHA-256 of the presented credential with the SHA-256 of
every configured key, each with :func:`hmac.compare_digest` and without stopping at a match:
the time taken says neither which key matched nor how long a key is. Anything else — no
header, another scheme, a wrong key — is a 401 problem+json with ``WWW-Authenticate: Bearer``
(RFC 6750 §3).

:class:`RequireKey` is the ASGI middleware a Starlette app adds once; ingest's hot-route front
(``services.ingest.app.HotRoutes``) asks :meth:`ApiKeys.check` itself for the routes it
answers, the same check.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.http import ProblemError, problem_response
from shared.settings import SettingsError

PROTECTED_PREFIX = "/v1/"
OPEN_PREFIXES: tuple[str, ...] = ("/v1/webhooks/",)
"""Under ``/v1/`` but checked by the vendor's signature instead of a key."""

_SPACE = b" \t"


def protected(path: str) -> bool:
    """Whether a request for ``path`` (without the root path) needs a key."""
    return path.startswith(PROTECTED_PREFIX) and not path.startswith(OPEN_PREFIXES)


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def check_keys(keys: Sequence[str], variable: str) -> None:
    """Refuse (:class:`SettingsError`, naming ``variable``, never a key) an empty key list
    or a key no client could send; each service calls it before it starts anything."""
    if not keys:
        raise SettingsError(
            f"{variable} (or {variable}_FILE) must hold at least one API key"
            " (comma-separated); the service does not start without one"
        )
    for position, key in enumerate(keys, 1):
        # Visible ASCII (RFC 6750's b64token characters are a subset of it): a space, a
        # control or a non-ASCII character is a mistake in the setting.
        if not all(0x21 <= ord(c) <= 0x7E for c in key):
            raise SettingsError(
                f"{variable}: key {position} holds a space, a control or a non-ASCII character"
            )


class ApiKeys:
    """The valid keys of one service; ``variable`` names the setting in error messages."""

    def __init__(self, keys: Sequence[str], variable: str, realm: str) -> None:
        check_keys(keys, variable)
        self._digests = tuple(_digest(key.encode()) for key in keys)
        self._missing = ProblemError(
            401,
            "unauthorized",
            "Unauthorized",
            "send a valid API key as `Authorization: Bearer <key>`",
            headers={"WWW-Authenticate": f'Bearer realm="{realm}"'},
        )
        self._invalid = ProblemError(
            401,
            "unauthorized",
            "Unauthorized",
            "send a valid API key as `Authorization: Bearer <key>`",
            headers={"WWW-Authenticate": f'Bearer realm="{realm}", error="invalid_token"'},
        )

    def accepts(self, authorization: bytes | None) -> bool:
        """Whether an ``Authorization`` header value carries one of the keys."""
        if authorization is None:
            return False
        scheme, _, credential = authorization.partition(b" ")
        credential = credential.strip(_SPACE)
        presented = _digest(credential)
        valid = False
        for digest in self._digests:  # every key, no early exit
            valid |= hmac.compare_digest(presented, digest)
        return valid and scheme.lower() == b"bearer" and bool(credential)

    def check(self, headers: Iterable[tuple[bytes, bytes]]) -> ProblemError | None:
        """The 401 problem unless the raw ASGI ``headers`` carry a valid key (the first
        ``Authorization`` header counts)."""
        authorization = None
        for name, value in headers:
            if name == b"authorization":
                authorization = value
                break
        if self.accepts(authorization):
            return None
        return self._missing if authorization is None else self._invalid

    def refusal(self, scope: Scope) -> ProblemError | None:
        """The 401 problem for an HTTP ``scope`` that needs a key and lacks a valid one."""
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        return self.check(scope["headers"]) if protected(path) else None


class RequireKey:
    """ASGI middleware answering 401 problem+json for a ``/v1/*`` request without a valid
    key (see :class:`ApiKeys`); add it once per app."""

    def __init__(self, app: ASGIApp, keys: ApiKeys) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            error = self.keys.refusal(scope)
            if error is not None:
                await problem_response(error, scope["path"])(scope, receive, send)
                return
        await self.app(scope, receive, send)
