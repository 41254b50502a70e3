"""Ingest's PostgreSQL: one pool, its migrations, and a supervisor that keeps trying.

The service starts without a database (it stays live, not ready) and connects when one
answers; the connectors that need it answer 503 until then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import asyncpg

from shared import db, failures
from shared.http import ProblemError
from shared.settings import DatabaseSettings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def unavailable() -> ProblemError:
    return ProblemError(
        503,
        "database-unavailable",
        "Database unavailable",
        "the database is not reachable; retry later",
        headers={"Retry-After": "5"},
    )


def published_but_not(what: str, retry_after_s: float | str = 5) -> ProblemError:
    """The 503 for events the broker took while ``what`` (the bookkeeping after them) was not
    done: sending them again is harmless and completes it."""
    return ProblemError(
        503,
        "database-unavailable",
        "Database unavailable",
        f"the events were published but {what}; send them again",
        headers={"Retry-After": str(retry_after_s)},
    )


@contextlib.contextmanager
def answering_503() -> Iterator[None]:
    """Turn a transient database failure inside the block into a 503 problem (never a
    500), and a value the database can never store (:mod:`shared.failures`: SQLSTATE
    classes 22, 23) into a 422: "send it again" would be refused again, forever."""
    try:
        yield
    except DB_ERRORS as exc:
        kind = failures.classify(exc)
        log.warning(
            "database call failed", extra={"reason": failures.reason(exc), "failure": kind.value}
        )
        if kind is failures.Failure.DATA:
            raise ProblemError(
                422, "invalid-value", "Invalid value", "the database refused a value of it"
            ) from None
        if kind is failures.Failure.DEFECT:
            raise
        raise unavailable() from None


class Database:
    def __init__(self, settings: DatabaseSettings, retry_s: float = 1.0) -> None:
        self.settings = settings
        self.retry_s = retry_s
        self._pool: asyncpg.Pool | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    async def start(self, wait_s: float = 5.0) -> None:
        self._task = asyncio.create_task(self._connect(), name="database-connect")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), wait_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _connect(self) -> None:
        misses = 0
        while True:
            try:
                conn = await asyncpg.connect(self.settings.url, timeout=10)
                try:
                    await db.prepare(conn, "ingest", MIGRATIONS, self.settings)
                except db.SchemaMismatch as exc:
                    # Refuse to run against a schema this code does not know (deployments
                    # migrate with the job first): exit, so the orchestrator shows it.
                    log.critical("refusing to start", extra={"reason": str(exc)})
                    os._exit(78)  # EX_CONFIG
                finally:
                    await conn.close()
                pool = await db.create_pool(self.settings)
            except DB_ERRORS as exc:
                misses += 1
                if misses == 1 or misses % 30 == 0:
                    log.warning("database unreachable", extra={"reason": repr(exc)})
                await asyncio.sleep(self.retry_s)
                continue
            self._pool = pool
            self._connected.set()
            log.info("database connected")
            return

    async def ready(self) -> bool:
        return self._pool is not None and await db.ping(self._pool)

    @property
    def pool(self) -> asyncpg.Pool:
        """The pool, or a 503 problem while there is none."""
        if self._pool is None:
            raise unavailable()
        return self._pool
