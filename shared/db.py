"""PostgreSQL through asyncpg: one pool per process, and versioned SQL migrations.

Migrations are plain SQL files named ``NNNN_what_it_does.sql`` in a service's
``migrations/`` folder. Each is applied once, in order, in its own transaction, under an
advisory lock so that several replicas starting together apply it once. The checksum of every
applied file is recorded; editing a file after it was applied is refused, because the
databases that already ran it would silently differ from new ones.

A migration named ``roles`` (:data:`REGRANT`) is run again at the end of every later run.

Who applies them: in a deployment an admin process, ``python -m shared.db migrate`` (or
``ripples migrate``), applies every service's migrations before the services start (the
migrations Job in Kubernetes, the ``migrate`` service in compose), as the owner of the schema;
the services start with ``DATABASE_MIGRATE=false`` and only check that the database has
exactly the migrations they know (:func:`check`), refusing to run otherwise. The local stack
keeps ``DATABASE_MIGRATE=true`` (the default): each service migrates its own at start-up.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from shared import logs
from shared.settings import DatabaseSettings, database_settings

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x52495050  # "RIPP": one advisory lock for all migration runs


REGRANT = "roles"
"""The migration (``0090_roles.sql`` of each service) that grants the services' roles their
privileges. Its statements are idempotent grants, and it is run again, unchanged and under
the same lock, at the end of every run after the one that applied it: a migration numbered
below it but added later (0007, 0008, ...) runs *after* it on an existing database (before
it on a fresh one), and the grants of the ``ingest_*`` and ``notifier_*`` tables in schema
public go by name prefix, which default privileges cannot do (they would grant every
service's role every later table of the schema). Both orders thus end with the same grants,
and a role created after the first run gets its grants at the next one."""


class MigrationError(RuntimeError):
    pass


class SchemaMismatch(MigrationError):
    """The database's schema is not the one this code knows: refuse to run."""


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
        for migration in migrations:
            if migration.name == REGRANT and migration.version in applied:
                async with conn.transaction():
                    await conn.execute(migration.sql)
    return applied_now


async def check(conn: asyncpg.Connection, component: str, directory: Path) -> None:
    """Raise :class:`SchemaMismatch` unless the database has applied exactly the migrations
    of ``component`` found in ``directory`` (same versions, same checksums)."""
    known = {m.version: m for m in discover(directory)}
    rows = []
    if await conn.fetchval("select to_regclass('ripples_schema_migrations')") is not None:
        rows = await conn.fetch(
            "select version, checksum from ripples_schema_migrations where component = $1",
            component,
        )
    applied = {row["version"]: row["checksum"] for row in rows}
    unknown = sorted(set(applied) - set(known))
    if unknown:
        raise SchemaMismatch(
            f"{component}: the database has migrations this version does not know "
            f"({', '.join(f'{v:04d}' for v in unknown)}); run the version that applied them"
        )
    missing = sorted(set(known) - set(applied))
    if missing:
        raise SchemaMismatch(
            f"{component}: migrations {', '.join(f'{v:04d}' for v in missing)} are not "
            "applied; run `python -m shared.db migrate` (the migrations job) first"
        )
    changed = sorted(v for v, m in known.items() if applied[v] != m.checksum)
    if changed:
        raise SchemaMismatch(
            f"{component}: migrations {', '.join(f'{v:04d}' for v in changed)} differ from "
            "the ones applied"
        )


async def prepare(
    conn: asyncpg.Connection, component: str, directory: Path, settings: DatabaseSettings
) -> None:
    """At a service's start: migrate (``DATABASE_MIGRATE=true``, the local stack) or check
    that the schema is the one this code knows (deployments)."""
    if settings.migrate:
        await migrate(conn, component, directory)
    else:
        await check(conn, component, directory)


SERVICES = Path(__file__).resolve().parent.parent / "services"


def components(root: Path = SERVICES) -> list[tuple[str, Path]]:
    """(component, migrations folder) of every service present, in name order. Images
    carry the migrations of every service (plain SQL), so any image can run the job."""
    return [(p.parent.name, p) for p in sorted(root.glob("*/migrations")) if p.is_dir()]


async def migrate_all(settings: DatabaseSettings) -> dict[str, list[int]]:
    """Apply the pending migrations of every service; {component: versions applied}."""
    conn = await asyncpg.connect(settings.url, timeout=30)
    try:
        return {name: await migrate(conn, name, folder) for name, folder in components()}
    finally:
        await conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m shared.db migrate``: the migrations job."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["migrate"]:
        print("usage: python -m shared.db migrate", file=sys.stderr)
        return 2
    logs.configure("migrate", "INFO")
    try:
        applied = asyncio.run(migrate_all(database_settings()))
    except (OSError, asyncpg.PostgresError, MigrationError) as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    for name, versions in applied.items():
        done = ", ".join(f"{v:04d}" for v in versions) or "nothing new"
        print(f"{name}: applied {done}")
    return 0


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


if __name__ == "__main__":
    raise SystemExit(main())
