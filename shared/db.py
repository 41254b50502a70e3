"""PostgreSQL through asyncpg: one pool per process, and versioned SQL migrations.

Migrations are plain SQL files named ``NNNN_what_it_does.sql`` in a service's
``migrations/`` folder. Each is applied once, in order, in its own transaction, under an
advisory lock so that several replicas starting together apply it once. The checksum of every
applied file is recorded; editing a file after it was applied is refused, because the
databases that already ran it would silently differ from new ones.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from shared.settings import DatabaseSettings

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x52495050  # "RIPP": one advisory lock for all migration runs


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path) -> list[Migration]:
    """The migrations in ``directory``, in version order; a malformed name is an error."""
    migrations: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        migrations.append(Migration(int(match["version"]), match["name"], path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{directory}: two migrations share a version number")
    return migrations


async def migrate(conn: asyncpg.Connection, component: str, directory: Path) -> list[int]:
    """Apply the pending migrations of ``component``; return the versions applied."""
    migrations = discover(directory)
    applied_now: list[int] = []
    async with conn.transaction():
        await conn.execute("select pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(
            """create table if not exists ripples_schema_migrations (
                   component text not null,
                   version integer not null,
                   name text not null,
                   checksum text not null,
                   applied_at timestamptz not null default now(),
                   primary key (component, version))"""
        )
        rows = await conn.fetch(
            "select version, checksum from ripples_schema_migrations where component = $1",
            component,
        )
        applied = {row["version"]: row["checksum"] for row in rows}
        for migration in migrations:
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"{component} migration {migration.version:04d}_{migration.name} was "
                        "changed after it was applied; add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "insert into ripples_schema_migrations (component, version, name, checksum)"
                    " values ($1, $2, $3, $4)",
                    component,
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            applied_now.append(migration.version)
            log.info(
                "applied migration",
                extra={
                    "component": component,
                    "version": migration.version,
                    "migration": migration.name,
                },
            )
    return applied_now


async def create_pool(settings: DatabaseSettings) -> asyncpg.Pool:
    """The process's one connection pool."""
    pool = await asyncpg.create_pool(
        settings.url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        command_timeout=settings.command_timeout_s,
    )
    assert pool is not None
    return pool


async def ping(pool: asyncpg.Pool, timeout_s: float = 2.0) -> bool:
    """Whether the database answers a trivial query in time."""
    try:
        async with pool.acquire(timeout=timeout_s) as conn:
            await conn.fetchval("select 1", timeout=timeout_s)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    return True
