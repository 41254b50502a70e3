"""The notifier's tables: employees (from ``ripples.employees``) and the delivery ledger.

Every function takes a connection; transactions are the caller's. Times come from the
caller's clock, so the dispatcher's rules can be tested with a clock of the test's choosing.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from shared.events import (
    EmployeeRemovedEvent,
    EmployeeUpsertedEvent,
    RecognitionDueEvent,
    RecognitionFacts,
)

MIGRATIONS = Path(__file__).parent / "migrations"
COMPONENT = "notifier"

Conn = asyncpg.Connection | PoolConnectionProxy
"""A connection, or one lent by the pool."""

WAITING = "waiting for the employee record"
"""The note on a delivery whose employee is not known yet (cleared when it is attempted)."""

ERASED = "applicant erased"
"""The note on a hire recognition dropped, unsent, because its applicant was erased."""

_encode = msgspec.json.Encoder().encode
_decode_facts = msgspec.json.Decoder(RecognitionFacts).decode


@dataclass(frozen=True)
class Employee:
    employee_id: str
    display_name: str | None
    locale: str
    channel: str | None
    address: str | None
    opt_out: bool
    removed: bool


@dataclass(frozen=True)
class Delivery:
    recognition_id: str
    kind: str
    employee_id: str
    due_at: datetime
    facts: RecognitionFacts
    event_id: str
    event_source: str
    event_time: datetime
    source_partition: int
    source_offset: int
    attempts: int
    received_at: datetime
    first_attempt_at: datetime | None
    in_flight: bool
    digest_day: date | None
    digest_id: str | None
    last_error: str | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Delivery:
        return cls(
            recognition_id=row["recognition_id"],
            kind=row["kind"],
            employee_id=row["employee_id"],
            due_at=row["due_at"],
            facts=_decode_facts(row["facts"]),
            event_id=row["event_id"],
            event_source=row["event_source"],
            event_time=row["event_time"],
            source_partition=row["source_partition"],
            source_offset=row["source_offset"],
            attempts=row["attempts"],
            received_at=row["received_at"],
            first_attempt_at=row["first_attempt_at"],
            in_flight=row["in_flight"],
            digest_day=row["digest_day"],
            digest_id=row["digest_id"],
            last_error=row["last_error"],
        )


# --- consumer side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """A recognition event as it came off the topic."""

    event: RecognitionDueEvent
    partition: int
    offset: int


def applicant_hash(applicant_id: str) -> str:
    """The digest an erased applicant is remembered by (as attribution does)."""
    return hashlib.sha256(applicant_id.encode()).hexdigest()


def _hire_applicants(recognition_id: str) -> list[str]:
    """Every applicant id ``hire:{employee_id}:{applicant_id}`` may name (either id may hold
    a colon, so each split is a candidate)."""
    if not recognition_id.startswith("hire:"):
        return []
    rest = recognition_id[len("hire:") :]
    return [rest[i + 1 :] for i, c in enumerate(rest) if c == ":" and rest[i + 1 :]]


async def record_recognitions(conn: Conn, received: Sequence[Received], now: datetime) -> None:
    """Ledger rows for new recognition ids; a recognition id seen before changes nothing, and
    neither does a hire recognition of an erased applicant (a replay after the erasure).
    Names are not kept: the message is rendered from the employee records when it is sent."""
    hashes = {
        r.event.data.recognition_id: [applicant_hash(a) for a in _hire_applicants(rid)]
        for r in received
        if r.event.data.kind == "hire" and (rid := r.event.data.recognition_id)
    }
    erased: set[str] = set()
    if hashes:
        erased = {
            row["applicant_hash"]
            for row in await conn.fetch(
                "select applicant_hash from notifier_erased_applicants"
                " where applicant_hash = any($1::text[])",
                sorted({h for hs in hashes.values() for h in hs}),
            )
        }
    await conn.executemany(
        """insert into notifier_deliveries (recognition_id, kind, employee_id, due_at, facts,
               event_id, event_source, event_time, source_partition, source_offset,
               received_at, next_attempt_at)
           values ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $11)
           on conflict (recognition_id) do nothing""",
        [
            (
                r.event.data.recognition_id,
                r.event.data.kind,
                r.event.data.employee_id,
                r.event.data.due_at,
                _encode(without_names(r.event.data.facts)).decode(),
                r.event.id,
                r.event.source,
                r.event.time,
                r.partition,
                r.offset,
                now,
            )
            for r in received
            if not erased.intersection(hashes.get(r.event.data.recognition_id, ()))
        ],
    )


def without_names(facts: RecognitionFacts) -> RecognitionFacts:
    """The facts without the colleague's name (kept neither in the ledger nor on a topic)."""
    return msgspec.structs.replace(facts, colleague_display_name=None)


async def erase_applicants(conn: Conn, applicant_ids: Sequence[str], now: datetime) -> None:
    """``applicant.erased``: each ``hire`` recognition of the applicant keeps only a digest
    of the id (``hire:{employee_id}:erased:{sha256}``); one not sent yet is dropped
    (suppressed), as it can no longer go out under its id. The digest is remembered, so a
    replayed recognition is not stored (nor sent) again."""
    for applicant_id in sorted(set(applicant_ids)):
        digest = applicant_hash(applicant_id)
        await conn.execute(
            "insert into notifier_erased_applicants values ($1) on conflict do nothing", digest
        )
        await conn.execute(
            """update notifier_deliveries set
                   recognition_id = 'hire:' || employee_id || ':erased:' || $2,
                   event_id = 'hire:' || employee_id || ':erased:' || $2,
                   status = case when status = 'pending' then 'suppressed' else status end,
                   last_error = case when status = 'pending' then $4 else last_error end,
                   claimed_until = null, in_flight = false,
                   sent_at = case when status = 'sent' then sent_at else null end,
                   next_attempt_at = case when status = 'pending' then $3 else next_attempt_at
                       end
               where kind = 'hire' and recognition_id = 'hire:' || employee_id || ':' || $1""",
            applicant_id,
            digest,
            now,
            ERASED,
        )


async def colleague_names(conn: Conn, deliveries: Sequence[Delivery]) -> list[Delivery]:
    """The deliveries with each named colleague's current display name filled in from the
    employee records (none once the colleague is removed: the message then says "a
    colleague")."""
    ids = sorted({d.facts.colleague_id for d in deliveries if d.facts.colleague_id})
    if not ids:
        return list(deliveries)
    names = {
        row["employee_id"]: row["display_name"]
        for row in await conn.fetch(
            "select employee_id, display_name from notifier_employees"
            " where employee_id = any($1::text[]) and not removed",
            ids,
        )
    }
    return [
        dataclasses.replace(
            d,
            facts=msgspec.structs.replace(
                d.facts, colleague_display_name=names.get(d.facts.colleague_id or "")
            ),
        )
        if d.facts.colleague_id
        else d
        for d in deliveries
    ]


EmployeeEvent = EmployeeUpsertedEvent | EmployeeRemovedEvent


async def record_employees(conn: Conn, events: Sequence[EmployeeEvent], now: datetime) -> None:
    """Apply HR records: the one with the latest CloudEvent ``time`` wins; a removal deletes
    the personal fields. Recognitions waiting for these employees become due now."""
    rows: list[tuple[Any, ...]] = []
    for event in events:
        if isinstance(event, EmployeeUpsertedEvent):
            data = event.data
            notify = data.notify
            rows.append(
                (
                    data.employee_id,
                    data.display_name,
                    data.locale,
                    notify.channel if notify else None,
                    notify.address if notify else None,
                    data.recognition_opt_out,
                    False,
                    event.time,
                )
            )
        else:
            rows.append((event.data.employee_id, None, "en", None, None, False, True, event.time))
    await conn.executemany(
        """insert into notifier_employees as e (employee_id, display_name, locale, channel,
               address, opt_out, removed, event_time)
           values ($1, $2, $3, $4, $5, $6, $7, $8)
           on conflict (employee_id) do update set
               display_name = excluded.display_name, locale = excluded.locale,
               channel = excluded.channel, address = excluded.address,
               opt_out = excluded.opt_out, removed = excluded.removed,
               event_time = excluded.event_time
           where e.event_time <= excluded.event_time""",
        rows,
    )
    await conn.execute(
        """update notifier_deliveries set next_attempt_at = $2
           where employee_id = any($1::text[]) and status = 'pending' and attempts = 0
             and digest_day is null and next_attempt_at > $2""",
        sorted({row[0] for row in rows}),
        now,
    )


# --- dispatcher side -----------------------------------------------------------------------


async def claim_due(
    conn: Conn, now: datetime, limit: int, lease_s: float, skip: Sequence[str] = ()
) -> list[Delivery]:
    """Claim up to ``limit`` pending deliveries that are due, for ``lease_s`` seconds, except
    those of the employees in ``skip`` (being served already).

    A claim whose attempt was still in flight (the process died between sending and
    recording) is noted in ``last_error``; the delivery is retried with the same key.
    """
    rows = await conn.fetch(
        """with due as (
               select recognition_id from notifier_deliveries
               where status = 'pending' and next_attempt_at <= $1
                 and (claimed_until is null or claimed_until <= $1)
                 and not (employee_id = any($4::text[]))
               order by next_attempt_at, recognition_id
               limit $2
               for update skip locked)
           update notifier_deliveries d set
               claimed_until = $1 + make_interval(secs => $3),
               last_error = case when d.in_flight
                   then 'interrupted: no result recorded for attempt ' || d.attempts
                   else d.last_error end,
               in_flight = false
           from due where d.recognition_id = due.recognition_id
           returning d.*""",
        now,
        limit,
        lease_s,
        list(skip),
    )
    return [Delivery.from_row(row) for row in rows]


async def employees(conn: Conn, ids: Sequence[str]) -> dict[str, Employee]:
    rows = await conn.fetch(
        "select * from notifier_employees where employee_id = any($1::text[])", list(ids)
    )
    return {
        row["employee_id"]: Employee(
            row["employee_id"],
            row["display_name"],
            row["locale"],
            row["channel"],
            row["address"],
            row["opt_out"],
            row["removed"],
        )
        for row in rows
    }


async def postpone(
    conn: Conn,
    ids: Sequence[str],
    until: datetime,
    error: str | None = None,
    digest_day: date | None = None,
) -> None:
    """Not now: release the claim until ``until`` (recording why, and a digest day if the
    daily cap deferred it)."""
    await conn.execute(
        """update notifier_deliveries set next_attempt_at = $2, claimed_until = null,
               in_flight = false, last_error = coalesce($3, last_error),
               digest_day = coalesce($4, digest_day)
           where recognition_id = any($1::text[])""",
        list(ids),
        until,
        error,
        digest_day,
    )


async def wait_for_employee(conn: Conn, ids: Sequence[str], until: datetime, now: datetime) -> None:
    """Not now, the employee record is missing: look again at ``until`` — or at once if the
    record was stored meanwhile (after the caller read it; its own wake-up of waiting rows
    may have run before this row was released)."""
    await conn.execute(
        """update notifier_deliveries d set
               next_attempt_at = case when exists (
                   select 1 from notifier_employees e where e.employee_id = d.employee_id)
                   then $3::timestamptz else $2::timestamptz end,
               claimed_until = null, in_flight = false, last_error = $4
           where recognition_id = any($1::text[])""",
        list(ids),
        until,
        now,
        WAITING,
    )


async def next_due(conn: Conn, skip: Sequence[str] = ()) -> datetime | None:
    """When the earliest pending delivery that is not claimed (or whose claim expires)
    becomes claimable, leaving out the employees in ``skip``; None when there is none."""
    due: datetime | None = await conn.fetchval(
        """select min(greatest(next_attempt_at, claimed_until)) from notifier_deliveries
           where status = 'pending' and not (employee_id = any($1::text[]))""",
        list(skip),
    )
    return due


async def settle(
    conn: Conn,
    ids: Sequence[str],
    status: str,
    channel: str | None,
    now: datetime,
    error: str | None = None,
) -> None:
    """Final state of deliveries: ``sent`` (with ``sent_at``), ``suppressed`` or ``failed``.
    Only pending rows move, so a delivery settles once."""
    await conn.execute(
        """update notifier_deliveries set status = $2, channel = coalesce($3, channel),
               sent_at = case when $2::text = 'sent' then $4::timestamptz else null end,
               last_error = coalesce($5, last_error), claimed_until = null, in_flight = false
           where recognition_id = any($1::text[]) and status = 'pending'""",
        list(ids),
        status,
        channel,
        now,
        error,
    )


async def begin_attempt(conn: Conn, ids: Sequence[str], channel: str, now: datetime) -> None:
    """Record that an attempt starts, before anything is sent."""
    await conn.execute(
        """update notifier_deliveries set attempts = attempts + 1, channel = $2,
               first_attempt_at = coalesce(first_attempt_at, $3), in_flight = true,
               last_error = case when last_error = $4 then null else last_error end
           where recognition_id = any($1::text[])""",
        list(ids),
        channel,
        now,
        WAITING,
    )


async def messages_on(conn: Conn, employee_id: str, start: datetime) -> int:
    """Messages of an employee whose first attempt was in the UTC day starting at ``start``
    and that did not fail (a digest counts once)."""
    count: int = await conn.fetchval(
        """select count(distinct coalesce(digest_id, recognition_id)) from notifier_deliveries
           where employee_id = $1 and first_attempt_at >= $2 and first_attempt_at < $3
             and status in ('sent', 'pending')""",
        employee_id,
        start,
        start + timedelta(days=1),
    )
    return count


async def form_digest(conn: Conn, employee_id: str, day: date, digest_id: str) -> list[Delivery]:
    """Fold every deferred recognition of an employee due by ``day`` into one digest."""
    await conn.execute(
        """update notifier_deliveries set digest_id = $3
           where employee_id = $1 and status = 'pending' and digest_day <= $2
             and digest_id is null""",
        employee_id,
        day,
        digest_id,
    )
    return await digest_members(conn, digest_id)


async def digest_members(conn: Conn, digest_id: str) -> list[Delivery]:
    rows = await conn.fetch(
        """select * from notifier_deliveries where digest_id = $1 and status = 'pending'
           order by due_at, recognition_id""",
        digest_id,
    )
    return [Delivery.from_row(row) for row in rows]


async def queue_depth(conn: Conn) -> int:
    depth: int = await conn.fetchval(
        "select count(*) from notifier_deliveries where status = 'pending'"
    )
    return depth


async def recognitions_of(
    conn: Conn, employee_id: str | None, limit: int = 10_000
) -> list[dict[str, Any]]:
    """CONTRACT §7 ``GET /v1/recognitions`` rows (plus a few extensions): one employee's, or
    everyone's when ``employee_id`` is None."""
    rows = await conn.fetch(
        """select recognition_id, kind, employee_id, status, channel, attempts, sent_at,
                  due_at, last_error, digest_id
           from notifier_deliveries where $1::text is null or employee_id = $1
           order by due_at, recognition_id limit $2""",
        employee_id,
        limit,
    )
    return [dict(row) for row in rows]
