"""LinkedIn tokens at rest: AES-256-GCM with rotating keys, and the connection store.

Keys come from ``INGEST_TOKEN_KEYS`` (or ``INGEST_TOKEN_KEYS_FILE``): comma-separated,
each the URL-safe base64 of 32 random bytes (``python -c "import secrets;
print(secrets.token_urlsafe(32))"``). The first key encrypts; every key listed decrypts, so a
key is rotated by putting the new one first and dropping the old one once every connection has
been re-encrypted (a refresh or a reconnect re-encrypts with the first key). Each ciphertext
carries the id of its key (the first 8 hex digits of SHA-256 of the key), a random 96-bit
nonce, and is bound (as GCM associated data) to its employee and its purpose, so a token
copied to another row or column does not decrypt.

AES-GCM is `cryptography`'s (``cryptography.hazmat.primitives.ciphers.aead.AESGCM``): a
well-kept, audited implementation instead of hand-written crypto.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from prometheus_client import Gauge

from shared.metrics import preinit

STATUSES = ("connected", "expiring", "expired", "revoked", "none")
GAUGED = STATUSES[:-1]
"""The closed label set of the gauge: the statuses of a connection that exists."""
CONNECTIONS = Gauge(
    "ingest_linkedin_connections",
    "Employees' LinkedIn connections, by status (updated at each poll and change, by every "
    "replica).",
    ["status"],
)
preinit(CONNECTIONS, GAUGED)

Executor = asyncpg.Pool | asyncpg.Connection | PoolConnectionProxy
_KID_LEN = 8
_NONCE_LEN = 12


class TokenKeyError(ValueError):
    pass


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).hexdigest()[:_KID_LEN].encode()


def parse_keys(values: Sequence[str]) -> list[bytes]:
    """The raw 32-byte keys of ``INGEST_TOKEN_KEYS``; a malformed key is an error."""
    keys = []
    for position, value in enumerate(values):
        try:
            key = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            raise TokenKeyError(f"INGEST_TOKEN_KEYS[{position}] is not base64") from None
        if len(key) != 32:
            raise TokenKeyError(f"INGEST_TOKEN_KEYS[{position}] must decode to 32 bytes")
        keys.append(key)
    return keys


class TokenCipher:
    """Encrypts with the first key, decrypts with whichever key the ciphertext names."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise TokenKeyError("no token key")
        self._first = (key_id(keys[0]), AESGCM(keys[0]))
        self._by_id = {key_id(key): AESGCM(key) for key in keys}

    def encrypt(self, plaintext: str, context: str) -> bytes:
        kid, aead = self._first
        nonce = os.urandom(_NONCE_LEN)
        return kid + nonce + aead.encrypt(nonce, plaintext.encode(), context.encode())

    def decrypt(self, blob: bytes, context: str) -> str:
        kid, nonce, sealed = (
            bytes(blob[:_KID_LEN]),
            bytes(blob[_KID_LEN : _KID_LEN + _NONCE_LEN]),
            bytes(blob[_KID_LEN + _NONCE_LEN :]),
        )
        aead = self._by_id.get(kid)
        if aead is None:
            raise TokenKeyError("the token was encrypted with a key no longer configured")
        try:
            return aead.decrypt(nonce, sealed, context.encode()).decode()
        except InvalidTag:
            raise TokenKeyError("the token does not decrypt (tampered or moved)") from None


def status_of(
    expires_at: datetime | None,
    revoked: bool,
    renewable: bool,
    now: datetime,
    warn_before: timedelta,
) -> str:
    """A connection's status (CONTRACT §8): ``none`` without one, ``revoked`` once LinkedIn
    refused the token, ``expired`` past its expiry, ``expiring`` within ``warn_before`` of it
    unless it can be refreshed, else ``connected``."""
    if expires_at is None:
        return "none"
    if revoked:
        return "revoked"
    if expires_at <= now:
        return "expired"
    if expires_at - now <= warn_before and not renewable:
        return "expiring"
    return "connected"


@dataclass(frozen=True)
class Grant:
    """What LinkedIn's token endpoint answered."""

    access_token: str
    expires_at: datetime
    scopes: tuple[str, ...]
    refresh_token: str | None = None
    refresh_expires_at: datetime | None = None


@dataclass(frozen=True)
class Connection:
    employee_id: str
    member_urn: str
    access_token: str
    refresh_token: str | None
    expires_at: datetime
    refresh_expires_at: datetime | None
    scopes: tuple[str, ...]
    revoked: bool


@dataclass(frozen=True)
class PageConnection:
    """The company page's token, from the admin who connected it."""

    organization_urn: str
    employee_id: str
    admin_urn: str
    access_token: str
    refresh_token: str | None
    expires_at: datetime
    refresh_expires_at: datetime | None
    scopes: tuple[str, ...]


class Store:
    """``ingest_linkedin_connections``: one row per employee, tokens encrypted; and
    ``ingest_linkedin_organization_connections``: one row per company page."""

    def __init__(self, cipher: TokenCipher | None, warn_before: timedelta) -> None:
        self.cipher = cipher
        self.warn_before = warn_before

    def _cipher(self) -> TokenCipher:
        if self.cipher is None:
            raise TokenKeyError("INGEST_TOKEN_KEYS is not set")
        return self.cipher

    async def save(self, conn: Executor, employee: str, member: str, grant: Grant) -> None:
        cipher = self._cipher()
        refresh = (
            cipher.encrypt(grant.refresh_token, f"{employee}:refresh")
            if grant.refresh_token
            else None
        )
        await conn.execute(
            "insert into ingest_linkedin_connections (employee_id, member_urn, access_token,"
            " refresh_token, expires_at, refresh_expires_at, scopes)"
            " values ($1, $2, $3, $4, $5, $6, $7)"
            " on conflict (employee_id) do update set member_urn = $2, access_token = $3,"
            " refresh_token = coalesce($4, ingest_linkedin_connections.refresh_token),"
            " expires_at = $5,"
            " refresh_expires_at = coalesce($6, ingest_linkedin_connections.refresh_expires_at),"
            " scopes = $7, revoked_at = null, updated_at = now()",
            employee,
            member,
            cipher.encrypt(grant.access_token, f"{employee}:access"),
            refresh,
            grant.expires_at,
            grant.refresh_expires_at,
            list(grant.scopes),
        )

    async def save_page(
        self, conn: Executor, organization: str, employee: str, admin: str, grant: Grant
    ) -> None:
        """The page's token from its admin (the ciphertexts bound to the page)."""
        cipher = self._cipher()
        refresh = (
            cipher.encrypt(grant.refresh_token, f"{organization}:page-refresh")
            if grant.refresh_token
            else None
        )
        await conn.execute(
            "insert into ingest_linkedin_organization_connections (organization_urn,"
            " employee_id, admin_urn, access_token, refresh_token, expires_at,"
            " refresh_expires_at, scopes) values ($1, $2, $3, $4, $5, $6, $7, $8)"
            " on conflict (organization_urn) do update set employee_id = $2, admin_urn = $3,"
            " access_token = $4, refresh_token = coalesce($5,"
            " case when ingest_linkedin_organization_connections.employee_id = $2"
            " then ingest_linkedin_organization_connections.refresh_token end),"
            " expires_at = $6, refresh_expires_at = $7, scopes = $8, revoked_at = null,"
            " updated_at = now()",
            organization,
            employee,
            admin,
            cipher.encrypt(grant.access_token, f"{organization}:page-access"),
            refresh,
            grant.expires_at,
            grant.refresh_expires_at,
            list(grant.scopes),
        )

    async def page(
        self, pool: asyncpg.Pool, organization: str, now: datetime
    ) -> PageConnection | None:
        """The page's connection while its token may still work (not revoked; not expired,
        or with a refresh token that is not)."""
        row = await pool.fetchrow(
            "select * from ingest_linkedin_organization_connections where organization_urn = $1"
            " and revoked_at is null and (expires_at > $2 or refresh_expires_at > $2)",
            organization,
            now,
        )
        if row is None:
            return None
        cipher = self._cipher()
        return PageConnection(
            organization,
            row["employee_id"],
            row["admin_urn"],
            cipher.decrypt(row["access_token"], f"{organization}:page-access"),
            cipher.decrypt(row["refresh_token"], f"{organization}:page-refresh")
            if row["refresh_token"] is not None
            else None,
            row["expires_at"],
            row["refresh_expires_at"],
            tuple(row["scopes"]),
        )

    async def page_revoked(self, pool: asyncpg.Pool, organization: str) -> None:
        """LinkedIn refused the page's token (401): its admin must connect it again."""
        await pool.execute(
            "update ingest_linkedin_organization_connections set revoked_at = now(),"
            " updated_at = now() where organization_urn = $1 and revoked_at is null",
            organization,
        )

    async def active(self, pool: asyncpg.Pool, now: datetime) -> list[Connection]:
        """The connections whose token may still work (not revoked, not expired, or
        expired with a refresh token that has not)."""
        rows = await pool.fetch(
            "select * from ingest_linkedin_connections where revoked_at is null"
            " and (expires_at > $1 or refresh_expires_at > $1) order by employee_id",
            now,
        )
        cipher = self._cipher()
        return [
            Connection(
                row["employee_id"],
                row["member_urn"],
                cipher.decrypt(row["access_token"], f"{row['employee_id']}:access"),
                cipher.decrypt(row["refresh_token"], f"{row['employee_id']}:refresh")
                if row["refresh_token"] is not None
                else None,
                row["expires_at"],
                row["refresh_expires_at"],
                tuple(row["scopes"]),
                False,
            )
            for row in rows
        ]

    async def revoked(self, pool: asyncpg.Pool, employee: str) -> None:
        """LinkedIn refused the token (401): the member must connect again."""
        await pool.execute(
            "update ingest_linkedin_connections set revoked_at = now(), updated_at = now()"
            " where employee_id = $1 and revoked_at is null",
            employee,
        )

    async def delete(self, conn: Executor, employee: str) -> bool:
        """Disconnect: the employee's tokens go, the page's token they connected too."""
        deleted = await conn.fetchval(
            "delete from ingest_linkedin_connections where employee_id = $1 returning 1",
            employee,
        )
        await conn.execute(
            "delete from ingest_linkedin_organization_connections where employee_id = $1",
            employee,
        )
        return deleted is not None

    async def status(self, pool: asyncpg.Pool, employee: str) -> dict[str, object]:
        row = await pool.fetchrow(
            "select expires_at, refresh_expires_at, refresh_token is not null as renewable,"
            " revoked_at is not null as revoked, scopes"
            " from ingest_linkedin_connections where employee_id = $1",
            employee,
        )
        now = datetime.now(UTC)
        if row is None:
            return {"employee_id": employee, "status": "none", "expires_at": None, "scopes": []}
        renewable = bool(row["renewable"]) and (
            row["refresh_expires_at"] is None or row["refresh_expires_at"] > now
        )
        return {
            "employee_id": employee,
            "status": status_of(
                row["expires_at"], row["revoked"], renewable, now, self.warn_before
            ),
            "expires_at": row["expires_at"].isoformat().replace("+00:00", "Z"),
            "scopes": list(row["scopes"]),
        }

    async def measure(self, pool: asyncpg.Pool) -> None:
        """Set the ``ingest_linkedin_connections`` gauge from the table."""
        rows = await pool.fetch(
            "select expires_at, revoked_at is not null as revoked,"
            " refresh_token is not null and coalesce(refresh_expires_at > now(), true)"
            " as renewable from ingest_linkedin_connections"
        )
        now = datetime.now(UTC)
        counts = dict.fromkeys(GAUGED, 0)
        for row in rows:
            status = status_of(
                row["expires_at"], row["revoked"], row["renewable"], now, self.warn_before
            )
            counts[status] += 1
        for status in GAUGED:
            CONNECTIONS.labels(status).set(counts[status])


async def forget(conn: Executor, removals: Sequence[tuple[str, datetime]]) -> None:
    """``employee.removed``: the employee's tokens (the page's they connected too), registered
    posts, reconnect messages sent, invitations and pending states go (called by the
    directory inside its transaction, before the directory row is deleted)."""
    await conn.executemany(
        "delete from ingest_linkedin_connections where employee_id = $1 and not exists"
        " (select 1 from ingest_employees where employee_id = $1 and updated_at > $2)",
        removals,
    )
    await conn.executemany(
        "delete from ingest_linkedin_registered_posts where employee_id = $1 and not exists"
        " (select 1 from ingest_employees where employee_id = $1 and updated_at > $2)",
        removals,
    )
    await conn.executemany(
        "delete from ingest_linkedin_organization_connections where employee_id = $1 and not"
        " exists (select 1 from ingest_employees where employee_id = $1 and updated_at > $2)",
        removals,
    )
    await conn.executemany(
        "delete from ingest_linkedin_reminders where employee_id = $1 and not exists"
        " (select 1 from ingest_employees where employee_id = $1 and updated_at > $2)",
        removals,
    )
    await conn.executemany(
        "delete from ingest_linkedin_invitations where employee_id = $1 and not exists"
        " (select 1 from ingest_employees where employee_id = $1 and updated_at > $2)",
        removals,
    )
