"""Migrations as an admin process: ``python -m shared.db migrate`` / ``ripples migrate``
apply every service's migrations once, under the advisory lock; a service started with
``DATABASE_MIGRATE=false`` (every deployment) checks the schema and refuses to run against
one it does not know."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from shared import db
from tests.conftest import Running, free_port, fresh_database
from tests.deploy.pydeps import ROOT

pytestmark = pytest.mark.integration

BASICS = {"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1"}


def known() -> dict[str, set[int]]:
    return {name: {m.version for m in db.discover(folder)} for name, folder in db.components()}


async def applied(url: str) -> dict[str, set[int]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("select component, version from ripples_schema_migrations")
    finally:
        await conn.close()
    found: dict[str, set[int]] = {}
    for row in rows:
        found.setdefault(row["component"], set()).add(row["version"])
    return found


def migrate(url: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command or [sys.executable, "-m", "shared.db", "migrate"],
        cwd=ROOT,
        env=BASICS | {"DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_service_has_migrations() -> None:
    assert {"ingest", "attribution", "notifier"} <= set(known())


async def test_migrate_applies_every_service_once(postgres: Running) -> None:
    async with fresh_database(postgres) as url:
        first = await asyncio.to_thread(migrate, url)
        assert first.returncode == 0, first.stderr
        assert await applied(url) == known()
        again = await asyncio.to_thread(migrate, url, str(ROOT / ".venv/bin/ripples"), "migrate")
        assert again.returncode == 0, again.stderr
        assert again.stdout.count("nothing new") == len(known())


async def test_concurrent_runs_apply_each_migration_once(postgres: Running) -> None:
    async with fresh_database(postgres) as url:
        runs = await asyncio.gather(*(asyncio.to_thread(migrate, url) for _ in range(3)))
        assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
        # Each migration was applied by exactly one of the runs (the advisory lock).
        total = sum(len(known()[name]) for name in known())
        reported = sum(
            len(line.split("applied ", 1)[1].split(", "))
            for r in runs
            for line in r.stdout.splitlines()
            if "nothing new" not in line
        )
        assert reported == total


def start_ingest(url: str, tmp: Path, **extra: str) -> subprocess.Popen[bytes]:
    env = BASICS | {
        "DATABASE_URL": url,
        "DATABASE_MIGRATE": "false",
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "INGEST_PORT": str(free_port()),
        "INGEST_API_KEYS": "k",
    }
    with (tmp / "ingest.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "services.ingest"],
            cwd=ROOT,
            env=env | extra,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def exit_code(process: subprocess.Popen[bytes], timeout_s: float = 30) -> int | None:
    """The process's exit status, or None if it still ran after ``timeout_s`` (then it is
    stopped)."""
    try:
        return process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
        return None


async def test_a_service_refuses_an_unmigrated_database(postgres: Running, tmp_path: Path) -> None:
    """Failed before: ingest migrated the empty database itself and ran."""
    async with fresh_database(postgres) as url:
        process = start_ingest(url, tmp_path)
        code = await asyncio.to_thread(exit_code, process)
        log = (tmp_path / "ingest.log").read_text()
        assert code == 78, log
        assert "refusing to start" in log
        assert "python -m shared.db migrate" in log
        assert await _tables(url) == set(), "a refused start changes nothing"


async def test_a_service_refuses_a_schema_newer_than_it_knows(
    postgres: Running, tmp_path: Path
) -> None:
    async with fresh_database(postgres) as url:
        assert (await asyncio.to_thread(migrate, url)).returncode == 0
        conn = await asyncpg.connect(url)
        await conn.execute(
            "insert into ripples_schema_migrations (component, version, name, checksum)"
            " values ('ingest', 9999, 'from_the_future', 'x')"
        )
        await conn.close()
        process = start_ingest(url, tmp_path)
        code = await asyncio.to_thread(exit_code, process)
        log = (tmp_path / "ingest.log").read_text()
        assert code == 78, log
        assert "9999" in log


async def test_checked_schema_is_accepted(postgres: Running) -> None:
    async with fresh_database(postgres) as url:
        assert (await asyncio.to_thread(migrate, url)).returncode == 0
        conn = await asyncpg.connect(url)
        try:
            for name, folder in db.components():
                await db.check(conn, name, folder)
            # Another service's list: some of it not applied, or some unknown to it.
            with pytest.raises(db.SchemaMismatch, match=r"not applied|does not know"):
                await db.check(conn, "ingest", ROOT / "services" / "attribution" / "migrations")
        finally:
            await conn.close()


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "select table_schema || '.' || table_name as t from information_schema.tables"
            " where table_schema not in ('pg_catalog', 'information_schema')"
        )
    finally:
        await conn.close()
    return {row["t"] for row in rows}
