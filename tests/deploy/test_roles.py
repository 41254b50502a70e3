"""Per-service PostgreSQL roles with least privilege and Grafana's read-only role, granted by
the migrations 0090_* (to the roles that exist), on a real PostgreSQL: each service's role
reads and writes its own tables and passes the schema check, and nothing else; Grafana reads
the dashboard views and nothing else. Failed before the 0090 migrations: every role was
refused its own tables (no grants)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from shared import db
from shared.settings import DatabaseSettings
from tests.conftest import Running, fresh_database

pytestmark = pytest.mark.integration

ROLES = ("ripples_ingest", "ripples_attribution", "ripples_notifier", "ripples_grafana")
VIEWS = (
    "attribution.reach_per_ring_per_day",
    "attribution.credit_per_ring_per_day",
    "attribution.top_sharers",
    "attribution.ripple_nodes",
    "attribution.ripple_edges",
)
# One table of each service (reads and writes are tried on it).
OWN = {
    "ripples_ingest": "public.ingest_links",
    "ripples_attribution": "attribution.posts",
    "ripples_notifier": "public.notifier_deliveries",
}


@pytest.fixture(scope="module")
async def migrated(postgres: Running) -> AsyncIterator[str]:
    """A database migrated by the owner after the operator created the roles (the documented
    order; trust authentication locally, so no passwords)."""
    admin = await asyncpg.connect(postgres.address)
    for role in ROLES:
        if not await admin.fetchval("select 1 from pg_roles where rolname = $1", role):
            await admin.execute(f"create role {role} login")
    await admin.close()
    async with fresh_database(postgres, "roles") as url:
        await db.migrate_all(DatabaseSettings(url=url))
        yield url


def as_role(url: str, role: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{role}@{rest.split('@', 1)[1]}"


async def _can(conn: asyncpg.Connection, sql: str) -> bool:
    try:
        async with conn.transaction():
            await conn.execute(sql)
            raise _Rollback
    except _Rollback:
        return True
    except asyncpg.InsufficientPrivilegeError:
        return False


class _Rollback(Exception):
    pass


async def _reads(conn: asyncpg.Connection, relation: str) -> bool:
    return await _can(conn, f"select * from {relation} limit 1")  # noqa: S608 (names above)


def _delete(table: str) -> str:
    return f"delete from {table}"  # noqa: S608 (names above)


@pytest.mark.parametrize("role", sorted(OWN))
async def test_a_service_role_uses_its_own_tables_only(migrated: str, role: str) -> None:
    conn = await asyncpg.connect(as_role(migrated, role))
    try:
        for other_role, table in OWN.items():
            mine = other_role == role
            assert await _reads(conn, table) is mine, table
            assert await _can(conn, _delete(table)) is mine, table
        for view in VIEWS:
            assert await _reads(conn, view) is (role == "ripples_attribution")
        assert not await _can(conn, "create table public.intruder (x int)")
        assert not await _can(conn, "create table attribution.intruder (x int)")
        assert not await _can(conn, "drop table public.ripples_schema_migrations")
        assert not await _can(conn, "delete from public.ripples_schema_migrations")
        component = role.removeprefix("ripples_")
        (folder,) = [f for name, f in db.components() if name == component]
        await db.check(conn, component, folder)  # the start-up check works as this role
    finally:
        await conn.close()


async def test_grafana_reads_the_dashboard_views_only(migrated: str) -> None:
    conn = await asyncpg.connect(as_role(migrated, "ripples_grafana"))
    try:
        for view in VIEWS:
            assert await _reads(conn, view), view
        for table in OWN.values():
            assert not await _reads(conn, table), table
        assert not await _can(conn, "select * from attribution.employees limit 1")
        assert not await _can(conn, "select * from public.ripples_schema_migrations")
    finally:
        await conn.close()


async def test_the_attribution_role_gets_tables_added_later(migrated: str) -> None:
    """Default privileges: a table a later migration creates in schema attribution."""
    owner = await asyncpg.connect(migrated)
    await owner.execute("create table attribution.later_table (x int)")
    await owner.close()
    conn = await asyncpg.connect(as_role(migrated, "ripples_attribution"))
    try:
        assert await _can(conn, "insert into attribution.later_table values (1)")
    finally:
        await conn.close()


# A migration numbered below 0090 added in a later release (as 0007 and 0008 are): its table,
# with a sequence, in the service's namespace.
LATER = {
    "ingest": "public.ingest_later",
    "attribution": "attribution.later_tables",
    "notifier": "public.notifier_later",
}


def _with_later(component: str, folder: Path, into: Path) -> Path:
    into.mkdir()
    for path in folder.glob("*.sql"):
        shutil.copy(path, into / path.name)
    (into / "0089_later.sql").write_text(
        f"create table {LATER[component]} (id bigserial primary key, x int);\n"
    )
    return into


@pytest.mark.parametrize("order", ["fresh", "existing"])
async def test_tables_of_later_migrations_below_0090_are_granted_in_both_orders(
    postgres: Running, migrated: str, tmp_path: Path, order: str
) -> None:
    """``fresh``: the later migration runs before 0090 (a new database); ``existing``: after
    it (a database that ran 0090 in an earlier release). Both end with each service's role
    reading and writing the new table, its sequence included, and no other role on it.
    Failed before (``existing``): ripples_ingest and ripples_notifier were refused their new
    table (0090 granted the tables that existed when it ran)."""
    async with fresh_database(postgres, f"roles_{order}") as url:
        owner = await asyncpg.connect(url)
        try:
            for component, folder in db.components():
                later = _with_later(component, folder, tmp_path / component)
                if order == "existing":
                    assert 89 not in await db.migrate(owner, component, folder)
                assert 89 in await db.migrate(owner, component, later)
        finally:
            await owner.close()
        for role in OWN:
            conn = await asyncpg.connect(as_role(url, role))
            try:
                for component, table in LATER.items():
                    mine = role == f"ripples_{component}"
                    insert = f"insert into {table} (x) values (1)"  # noqa: S608 (names above)
                    assert await _can(conn, insert) is mine, (role, table)
                    assert await _reads(conn, table) is mine, (role, table)
            finally:
                await conn.close()
