"""Migration 0005 (erasure, issue 14) on a database that holds erasures made before it: the
exact times of the anonymous conversions become days, the erased applicants' hire
recognitions keep only a digest, and their unsent output events go."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import orjson
import pytest

from services.attribution.__main__ import MIGRATIONS
from services.attribution.store import applicant_hash
from shared import db

pytestmark = pytest.mark.integration


async def test_0005_erases_what_earlier_erasures_left(database: str, tmp_path: Path) -> None:
    before = tmp_path / "migrations"
    before.mkdir()
    for path in sorted(MIGRATIONS.glob("000[1-4]_*.sql")):
        shutil.copy(path, before / path.name)
    conn = await asyncpg.connect(database)
    try:
        await db.migrate(conn, "attribution", before)
        at = datetime(2026, 6, 3, 14, 27, 11, tzinfo=UTC)
        await conn.execute(
            "insert into attribution.erased_conversions (job_id, applied_at, hired_at, attributed)"
            " values ('j1', $1, $1, true)",
            at,
        )
        await conn.execute(
            "insert into attribution.erased_applicants values ($1)", applicant_hash("apl_gone")
        )
        await conn.executemany(
            "insert into attribution.recognitions values ($1, $2, $3, $4)",
            [
                ("hire:e:1:apl_gone", "hire", "e:1", at),  # an employee id with a colon
                ("hire:e2:apl_kept", "hire", "e2", at),
                ("first_post:e2", "first_post", "e2", at),
            ],
        )

        def event(topic_data: dict[str, object]) -> bytes:
            return orjson.dumps({"specversion": "1.0", "data": topic_data})

        await conn.executemany(
            "insert into attribution.outbox (topic, event) values ($1, $2)",
            [
                ("ripples.credits", event({"applicant_id": "apl_gone"})),
                ("ripples.credits", event({"applicant_id": "apl_kept"})),
                ("ripples.recognitions",
                 event({"recognition_id": "hire:e:1:apl_gone", "kind": "hire"})),
                ("ripples.recognitions",
                 event({"recognition_id": "hire:e2:apl_kept", "kind": "hire"})),
            ],
        )  # fmt: skip

        # 0005 first; the later ones (0006 evidence, 0090 roles) change none of this.
        assert (await db.migrate(conn, "attribution", MIGRATIONS))[0] == 5

        row = await conn.fetchrow("select applied_at, hired_at from attribution.erased_conversions")
        day = datetime(2026, 6, 3, tzinfo=UTC)
        assert (row["applied_at"], row["hired_at"]) == (day, day)
        ids = {
            r[0] for r in await conn.fetch("select recognition_id from attribution.recognitions")
        }
        assert ids == {
            f"hire:e:1:erased:{applicant_hash('apl_gone')}",
            "hire:e2:apl_kept",
            "first_post:e2",
        }
        left = [bytes(r[0]) for r in await conn.fetch("select event from attribution.outbox")]
        assert all(b"apl_gone" not in e for e in left)
        assert sum(b"apl_kept" in e for e in left) == 2
    finally:
        await conn.close()
