"""Versioned SQL migrations against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from shared.db import MigrationError, create_pool, discover, migrate, ping
from shared.settings import DatabaseSettings

pytestmark = pytest.mark.integration


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (folder / name).write_text(sql)
    return folder


async def test_applies_pending_migrations_in_order_once(database: str, tmp_path: Path) -> None:
    folder = write(
        tmp_path / "m",
        {
            "0002_add_column.sql": "alter table thing add column colour text;",
            "0001_create.sql": "create table thing (id int primary key);",
        },
    )
    conn = await asyncpg.connect(database)
    try:
        assert await migrate(conn, "svc", folder) == [1, 2]
        assert await migrate(conn, "svc", folder) == []
        columns = await conn.fetch(
            "select column_name from information_schema.columns where table_name = 'thing' "
            "order by ordinal_position"
        )
        assert [c["column_name"] for c in columns] == ["id", "colour"]

        write(folder, {"0003_index.sql": "create index thing_colour on thing (colour);"})
        assert await migrate(conn, "svc", folder) == [3]
        # Another component's history is separate.
        other = write(tmp_path / "o", {"0001_other.sql": "create table other (x int);"})
        assert await migrate(conn, "other", other) == [1]
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_nothing_half_done(database: str, tmp_path: Path) -> None:
    folder = write(
        tmp_path / "m",
        {
            "0001_create.sql": "create table a (id int);",
            "0002_broken.sql": "create table b (id int); select * from no_such_table;",
        },
    )
    conn = await asyncpg.connect(database)
    try:
        with pytest.raises(asyncpg.UndefinedTableError):
            await migrate(conn, "svc", folder)
        # The run is one transaction: nothing of it stays, and it can be fixed and rerun.
        assert await conn.fetchval("select to_regclass('a')") is None
        assert await conn.fetchval("select to_regclass('b')") is None
        write(folder, {"0002_broken.sql": "create table b (id int);"})
        assert await migrate(conn, "svc", folder) == [1, 2]
    finally:
        await conn.close()


async def test_an_applied_migration_that_was_edited_is_refused(
    database: str, tmp_path: Path
) -> None:
    folder = write(tmp_path / "m", {"0001_create.sql": "create table a (id int);"})
    conn = await asyncpg.connect(database)
    try:
        await migrate(conn, "svc", folder)
        write(folder, {"0001_create.sql": "create table a (id bigint);"})
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate(conn, "svc", folder)
    finally:
        await conn.close()


async def test_concurrent_runs_apply_each_migration_once(database: str, tmp_path: Path) -> None:
    folder = write(
        tmp_path / "m",
        {
            "0001_create.sql": "create table counter (n int); insert into counter values (0);",
            "0002_bump.sql": "update counter set n = n + 1;",
        },
    )
    conns = [await asyncpg.connect(database) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c, "svc", folder) for c in conns))
        assert sorted(map(tuple, results)) == [(), (), (), (1, 2)]
        assert await conns[0].fetchval("select n from counter") == 1
    finally:
        for conn in conns:
            await conn.close()


def test_misnamed_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        discover(write(tmp_path / "a", {"create.sql": "select 1;"}))
    with pytest.raises(MigrationError, match="share a version"):
        discover(write(tmp_path / "b", {"0001_a.sql": "", "0001_b.sql": ""}))


async def test_pool_and_ping(database: str) -> None:
    pool = await create_pool(DatabaseSettings(url=database, pool_min_size=1, pool_max_size=2))
    try:
        assert await ping(pool)
    finally:
        await pool.close()
    unreachable = DatabaseSettings(url="postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(OSError, match="Connect call failed"):
        await create_pool(unreachable)
