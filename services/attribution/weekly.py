"""The §10 bootstrap intervals per ISO week, for the results dashboard's bands.

Grafana reads PostgreSQL, and the intervals are computed in Python (:mod:`.evidence`, seeded
and vectorised), not in SQL: a second implementation in SQL would give other numbers than
`/v1/summary`. So the worker writes them: every ``ATTRIBUTION_EVIDENCE_REFRESH_S`` seconds a
faust timer computes `/v1/summary` (:func:`.queries.summary`, the very code the API runs) for
each of the last ``ATTRIBUTION_EVIDENCE_WEEKS`` ISO weeks (Monday 00:00 UTC to the next) since
the first post, and replaces the rows of ``attribution.weekly_evidence`` (migration 0007) in
one transaction. The figures are deterministic (same facts and seed, same intervals), so two
replicas would write the same rows; a transaction-scoped advisory lock lets one do it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import faust

from services.attribution import queries
from services.attribution.settings import AttributionSettings
from shared.settings import DatabaseSettings

log = logging.getLogger(__name__)

WEEK = timedelta(days=7)
STATISTICS = ("reach_ratio", "lift", "baseline_adjusted", "own_vs_prepared")
_LOCK = 0x72697070_6C6577  # pg_try_advisory_xact_lock key: "ripplew"


def week_of(t: datetime) -> datetime:
    """Monday 00:00 UTC of the ISO week holding ``t``."""
    day = t.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def weeks(first: datetime | None, now: datetime, count: int) -> list[datetime]:
    """The week starts to compute: from the week of ``first`` (the first post) to the week of
    ``now``, at most the last ``count``; none without a post."""
    if first is None:
        return []
    last = week_of(now)
    start = max(week_of(first), last - (count - 1) * WEEK)
    return [start + k * WEEK for k in range((last - start) // WEEK + 1)]


def rows(week: datetime, summary: dict[str, Any], refreshed_at: datetime) -> list[tuple[Any, ...]]:
    """The table's rows of one week from its `/v1/summary` answer."""
    u = summary["uncertainty"]
    points: dict[str, tuple[float | None, Sequence[float] | None]] = {
        "reach_ratio": (summary["reach_ratio"], u["reach_ratio"]),
        "lift": (summary["ripples"]["lift"], u["lift"]),
        "baseline_adjusted": (summary["ripples"]["baseline_adjusted"], u["baseline_adjusted"]),
        "own_vs_prepared": (
            summary["content_origin"]["own_vs_prepared"],
            summary["content_origin"]["interval"],
        ),
    }
    return [
        (
            week,
            week + WEEK,
            name,
            value,
            None if bounds is None else bounds[0],
            None if bounds is None else bounds[1],
            u["level"],
            u["samples"],
            u["seed"],
            refreshed_at,
        )
        for name, (value, bounds) in points.items()
    ]


async def refresh(conn: asyncpg.Connection, settings: AttributionSettings, now: datetime) -> int:
    """Replace ``attribution.weekly_evidence`` with the weeks up to ``now``; the number of
    weeks written, or -1 when another process holds the refresh."""
    async with conn.transaction(isolation="repeatable_read"):
        if not await conn.fetchval("select pg_try_advisory_xact_lock($1)", _LOCK):
            return -1
        first = await conn.fetchval(
            "select min(published_at) from attribution.posts where author_kind = 'employee'"
        )
        todo = weeks(first, now, settings.evidence_weeks)
        out: list[tuple[Any, ...]] = []
        for week in todo:
            period = queries.Period(week, week + WEEK)
            # the intervals do not depend on the credit model; last_touch is /v1/summary's default
            out += rows(week, await queries.summary(conn, period, "last_touch", settings), now)
        await conn.execute("delete from attribution.weekly_evidence")
        await conn.copy_records_to_table("weekly_evidence", schema_name="attribution", records=out)
    return len(todo)


def schedule(app: faust.App, settings: AttributionSettings, database: DatabaseSettings) -> None:
    """Refresh the table every ``settings.evidence_refresh_s`` seconds in the worker (off at
    0), on a connection of its own; a failure is logged and tried again next time."""
    if settings.evidence_refresh_s <= 0:
        return

    @app.timer(interval=settings.evidence_refresh_s)  # type: ignore[untyped-decorator]
    async def weekly_evidence() -> None:
        try:
            conn = await asyncpg.connect(database.url, command_timeout=database.command_timeout_s)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("weekly evidence not refreshed: %s", type(exc).__name__)
            return
        try:
            written = await refresh(conn, settings, datetime.now(UTC))
            log.info("weekly evidence refreshed", extra={"weeks": written})
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("weekly evidence not refreshed: %s", type(exc).__name__)
        finally:
            await conn.close()
