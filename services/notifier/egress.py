"""Calls out only where they may go (OWASP SSRF prevention cheat sheet).

Notify addresses come from data (an HR record), so before every connection the host is
resolved once, every address it resolves to is checked, and the connection is made to the
checked address — no second DNS lookup, so a name cannot be re-bound between the check and
the connect. Refused: loopback (unless the local stack allows it explicitly), private,
shared (CGNAT), link-local, multicast, reserved, documentation and unspecified addresses, and
the IPv4-mapped, IPv4-compatible, 6to4, NAT64 and Teredo forms that carry one of them.

The check sits in an httpcore network backend under the notifier's httpx client, so it holds
for every request the client makes (redirects are not followed; proxies from the
environment are not used). TLS is started by httpcore on the connected stream with the URL's
host name, so SNI and certificate verification stay against the original name.

Above the connection, :func:`check_url` enforces the deployment rules on the URL itself:
https only (plain http only where allowed, i.e. the local stack) and the channel's host
allow-list when one is set.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import httpcore
import httpx

REASON = "address_not_allowed"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolve = Callable[[str, int], Awaitable[Sequence[str]]]

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_TEREDO = ipaddress.ip_network("2001::/32")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 carrier-grade NAT


class AddressNotAllowed(Exception):
    """The destination may not be called: a permanent failure (``address_not_allowed``)."""


def address_allowed(address: IPAddress, allow_loopback: bool) -> bool:
    """Whether a connection to ``address`` may be made. IPv6 forms that embed an IPv4 address
    are judged by the address they carry."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address_allowed(address.ipv4_mapped, allow_loopback)
        if address in _TEREDO:
            return False  # a tunnel to an obfuscated IPv4 client: never a webhook receiver
        if address.sixtofour is not None:
            return address_allowed(address.sixtofour, allow_loopback)
        if any(address in net for net in _NAT64):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
            return address_allowed(embedded, allow_loopback)
    if address.is_loopback:
        return allow_loopback
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return False
    return not (
        address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def normalise_host(host: str) -> str:
    """Lower case, IDNA (ASCII) form, no trailing dot — the form allow-lists compare."""
    host = host.strip().rstrip(".").lower()
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def host_matches(host: str, patterns: Iterable[str]) -> bool:
    """``host`` equals a pattern, or a pattern ``*.example.com`` names one of its parents."""
    host = normalise_host(host)
    for pattern in patterns:
        pattern = normalise_host(pattern)
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def check_url(url: str, allow_http: bool, allowed_hosts: Sequence[str]) -> httpx.URL:
    """The URL a message may be posted to, or :class:`AddressNotAllowed`: https (or plain http
    where allowed), a host, no user info, and the host on the allow-list when one is set."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise AddressNotAllowed("not a URL") from None
    schemes = ("https", "http") if allow_http else ("https",)
    if parsed.scheme not in schemes:
        raise AddressNotAllowed("scheme")
    if not parsed.host or parsed.userinfo:
        raise AddressNotAllowed("host")
    if allowed_hosts and not host_matches(parsed.host, allowed_hosts):
        raise AddressNotAllowed("host not on the allow-list")
    return parsed


async def system_resolve(host: str, port: int) -> Sequence[str]:
    """Every address the system resolver gives for ``host`` (one lookup), in its order."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"cannot resolve: {exc.strerror}") from None
    seen: dict[str, None] = {}
    for info in infos:
        seen[str(info[4][0])] = None
    return list(seen)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolve once, check every address, connect to a checked one (in resolver order)."""

    def __init__(
        self,
        allow_loopback: bool,
        resolve: Resolve = system_resolve,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_loopback = allow_loopback
        self.resolve = resolve
        self.network = network or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        literal = host.strip("[]").split("%")[0]
        try:
            addresses: Sequence[str] = [str(ipaddress.ip_address(literal))]
        except ValueError:
            addresses = await self.resolve(host, port)
        if not addresses:
            raise httpcore.ConnectError("the name has no address")
        for address in addresses:
            if not address_allowed(
                ipaddress.ip_address(address.split("%")[0]), self.allow_loopback
            ):
                # one refused address refuses the name: its owner chose to point it inside
                raise AddressNotAllowed("address")
        failure: Exception = httpcore.ConnectError("no address answered")
        for address in addresses:
            try:
                return await self.network.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
            except httpcore.ConnectTimeout:
                raise
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressNotAllowed("unix socket")

    async def sleep(self, seconds: float) -> None:
        await self.network.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport over a connection pool whose network backend is guarded."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend, limits: httpx.Limits) -> None:
        super().__init__(trust_env=False, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=backend,
        )


def client(allow_loopback: bool, timeout_s: float) -> httpx.AsyncClient:
    """The notifier's HTTP client: guarded connections, no redirects, no proxies from the
    environment."""
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    return httpx.AsyncClient(
        transport=GuardedTransport(GuardedBackend(allow_loopback), limits),
        timeout=timeout_s,
        follow_redirects=False,
        trust_env=False,
    )
