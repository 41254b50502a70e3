"""The notifier's tables: employees (from ``ripples.employees``) and the delivery ledger.

Every function takes a connection; transactions are the caller's. Times come from the
caller's clock, so the dispatcher's rules can be tested with a clock of the test's choosing.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from shared.events import (
    CONNECTION_KINDS,
    ConnectionReason,
    EmployeePreferencesEvent,
    EmployeeRemovedEvent,
    EmployeeUpsertedEvent,
    LinkedInConnectionEvent,
    RecognitionDueEvent,
    RecognitionFacts,
    Time,
    Url,
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


class Link(msgspec.Struct, frozen=True):
    """What a connection message says besides the name (``notifier_deliveries.link``)."""

    url: Url
    expires_at: Time
    reason: ConnectionReason


_decode_link = msgspec.json.Decoder(Link).decode


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
    reason: str | None = None
    channel: str | None = None
    claim_token: uuid.UUID | None = None
    interrupted: bool = False  # this claim found the previous attempt without a result
    link: Link | None = None  # a connection message's link (cleared once settled)

    @property
    def service(self) -> bool:
        """A message about the employee's own LinkedIn connection, not a recognition."""
        return self.kind in CONNECTION_KINDS

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
            reason=row["reason"],
            channel=row["channel"],
            claim_token=row["claim_token"],
            interrupted=bool(row.get("was_in_flight", False)),
            link=_decode_link(row["link"]) if row.get("link") else None,
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


async def record_connections(
    conn: Conn, received: Sequence[tuple[LinkedInConnectionEvent, int, int]], now: datetime
) -> None:
    """Ledger rows for the connection messages of ingest (event, partition, offset): the
    CloudEvent id is the recognition id; one seen before changes nothing."""
    await conn.executemany(
        """insert into notifier_deliveries (recognition_id, kind, employee_id, due_at, facts,
               event_id, event_source, event_time, source_partition, source_offset,
               received_at, next_attempt_at, link)
           values ($1, $2, $3, $4, '{}'::jsonb, $1, $5, $4, $6, $7, $8, $8, $9::jsonb)
           on conflict (recognition_id) do nothing""",
        [
            (
                event.id,
                event.data.kind,
                event.data.employee_id,
                event.time,
                event.source,
                partition,
                offset,
                now,
                _encode(Link(event.data.url, event.data.expires_at, event.data.reason)).decode(),
            )
            for event, partition, offset in received
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
                   reason = case when status = 'pending' then 'erased' else reason end,
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


EmployeeEvent = EmployeeUpsertedEvent | EmployeeRemovedEvent | EmployeePreferencesEvent


async def record_employees(conn: Conn, events: Sequence[EmployeeEvent], now: datetime) -> None:
    """Apply HR records: the one with the latest CloudEvent ``time`` wins; a removal deletes
    the personal fields, the employee's preferences included. Preference events are kept
    apart (:func:`record_preferences`), so an HR upsert never resets them. Recognitions
    waiting for these employees become due now."""
    preferences = [e for e in events if isinstance(e, EmployeePreferencesEvent)]
    hr = [e for e in events if not isinstance(e, EmployeePreferencesEvent)]
    rows: list[tuple[Any, ...]] = []
    for event in hr:
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
    removals = [(e.data.employee_id, e.time) for e in hr if isinstance(e, EmployeeRemovedEvent)]
    if removals:  # the preferences are the person's too (a later one is a return: kept)
        await conn.executemany(
            """delete from notifier_preferences p using notifier_employees e
               where p.employee_id = $1 and e.employee_id = $1 and e.removed
                 and e.event_time = $2
                 and greatest(p.locale_at, p.notify_at, p.opt_out_at) <= $2""",
            removals,
        )
    if preferences:
        await record_preferences(conn, preferences)
    await conn.execute(
        """update notifier_deliveries set next_attempt_at = $2
           where employee_id = any($1::text[]) and status = 'pending' and attempts = 0
             and digest_day is null and next_attempt_at > $2""",
        sorted({e.data.employee_id for e in events}),
        now,
    )


async def record_preferences(conn: Conn, events: Sequence[EmployeePreferencesEvent]) -> None:
    """Apply the employee's own preferences, field by field: a field given replaces the
    stored one when its event is not older (``time``); a field left out changes nothing. A
    preference not newer than the employee's removal is not stored."""
    rows = []
    for event in events:
        data = event.data
        notify = data.notify
        rows.append(
            (
                data.employee_id,
                data.locale,
                notify.channel if notify else None,
                notify.address if notify else None,
                notify is not None,
                data.recognition_opt_out,
                event.time,
            )
        )
    await conn.executemany(
        """insert into notifier_preferences as p (employee_id, locale, locale_at, channel,
               address, notify_at, opt_out, opt_out_at)
           select $1::text, $2::text,
                  case when $2::text is null then null else $7::timestamptz end,
                  $3::text, $4::text, case when $5::boolean then $7::timestamptz end,
                  $6::boolean,
                  case when $6::boolean is null then null else $7::timestamptz end
           where not exists (select 1 from notifier_employees e where e.employee_id = $1
                             and e.removed and e.event_time >= $7)
           on conflict (employee_id) do update set
               locale = case when excluded.locale_at >= coalesce(p.locale_at, '-infinity')
                   then excluded.locale else p.locale end,
               locale_at = greatest(p.locale_at, excluded.locale_at),
               channel = case when excluded.notify_at >= coalesce(p.notify_at, '-infinity')
                   then excluded.channel else p.channel end,
               address = case when excluded.notify_at >= coalesce(p.notify_at, '-infinity')
                   then excluded.address else p.address end,
               notify_at = greatest(p.notify_at, excluded.notify_at),
               opt_out = case when excluded.opt_out_at >= coalesce(p.opt_out_at, '-infinity')
                   then excluded.opt_out else p.opt_out end,
               opt_out_at = greatest(p.opt_out_at, excluded.opt_out_at)""",
        rows,
    )


# --- dispatcher side -----------------------------------------------------------------------


async def claim_due(
    conn: Conn,
    now: datetime,
    limit: int,
    lease_s: float,
    skip: Sequence[str] = (),
    token: uuid.UUID | None = None,
) -> list[Delivery]:
    """Claim up to ``limit`` pending deliveries that are due, for ``lease_s`` seconds, except
    those of the employees in ``skip`` (being served already), under a new claim token
    (``token``, or a fresh one). Every later step checks the token: a claim that ran out and
    was taken by another replica is no longer this one's.

    A claim whose attempt was still in flight (the process died between sending and
    recording) is noted (reason ``interrupted``, ``Delivery.interrupted``); the delivery is
    retried with the same key unless it has had its attempts.
    """
    rows = await conn.fetch(
        """with due as (
               select recognition_id, in_flight as was_in_flight from notifier_deliveries
               where status = 'pending' and next_attempt_at <= $1
                 and (claimed_until is null or claimed_until <= $1)
                 and not (employee_id = any($4::text[]))
               order by next_attempt_at, recognition_id
               limit $2
               for update skip locked)
           update notifier_deliveries d set
               claimed_until = $1 + make_interval(secs => $3),
               claim_token = $5,
               last_error = case when d.in_flight
                   then 'interrupted: no result recorded for attempt ' || d.attempts
                   else d.last_error end,
               reason = case when d.in_flight then 'interrupted' else d.reason end,
               in_flight = false
           from due where d.recognition_id = due.recognition_id
           returning d.*, due.was_in_flight""",
        now,
        limit,
        lease_s,
        list(skip),
        token or uuid.uuid4(),
    )
    return [Delivery.from_row(row) for row in rows]


async def employees(conn: Conn, ids: Sequence[str]) -> dict[str, Employee]:
    """The employees' effective settings: each preference field the employee set
    (``notifier_preferences``), else the HR record's value (CONTRACT §11)."""
    rows = await conn.fetch(
        """select e.employee_id, e.display_name, e.removed,
                  case when p.locale_at is not null then p.locale else e.locale end as locale,
                  case when p.notify_at is not null then p.channel else e.channel end
                      as channel,
                  case when p.notify_at is not null then p.address else e.address end
                      as address,
                  case when p.opt_out_at is not null then p.opt_out else e.opt_out end
                      as opt_out
           from notifier_employees e
           left join notifier_preferences p
               on p.employee_id = e.employee_id and not e.removed
           where e.employee_id = any($1::text[])""",
        list(ids),
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


def _changed(status: str) -> int:
    """Rows an UPDATE changed, from its command tag (``UPDATE n``)."""
    return int(status.rsplit(" ", 1)[-1])


async def postpone(
    conn: Conn,
    ids: Sequence[str],
    token: uuid.UUID | None,
    until: datetime,
    error: str | None = None,
    digest_day: date | None = None,
    reason: str | None = None,
) -> bool:
    """Not now: release the claim until ``until`` (recording why — the detail in
    ``last_error``, the closed ``reason`` — and a digest day if the daily cap deferred it).
    Only rows still held under ``token`` move; False when the claim was lost."""
    status = await conn.execute(
        """update notifier_deliveries set next_attempt_at = $2, claimed_until = null,
               claim_token = null, in_flight = false, last_error = coalesce($3, last_error),
               digest_day = coalesce($4, digest_day), reason = coalesce($6, reason)
           where recognition_id = any($1::text[]) and claim_token = $5
             and status = 'pending'""",
        list(ids),
        until,
        error,
        digest_day,
        token,
        reason,
    )
    return _changed(status) > 0


async def wait_for_employee(
    conn: Conn, ids: Sequence[str], token: uuid.UUID | None, until: datetime, now: datetime
) -> bool:
    """Not now, the employee record is missing: look again at ``until`` — or at once if the
    record was stored meanwhile (after the caller read it; its own wake-up of waiting rows
    may have run before this row was released). Only under ``token``."""
    status = await conn.execute(
        """update notifier_deliveries d set
               next_attempt_at = case when exists (
                   select 1 from notifier_employees e where e.employee_id = d.employee_id)
                   then $3::timestamptz else $2::timestamptz end,
               claimed_until = null, claim_token = null, in_flight = false, last_error = $4
           where recognition_id = any($1::text[]) and claim_token = $5
             and status = 'pending'""",
        list(ids),
        until,
        now,
        WAITING,
        token,
    )
    return _changed(status) > 0


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
    token: uuid.UUID | None,
    status: str,
    channel: str | None,
    now: datetime,
    error: str | None = None,
    reason: str | None = None,
) -> bool:
    """Final state of deliveries: ``sent`` (with ``sent_at``, no reason), ``suppressed`` or
    ``failed`` (with the closed ``reason``). Only pending rows still held under ``token``
    move, so a delivery settles once, and never from a claim that was lost."""
    changed = await conn.execute(
        """update notifier_deliveries set status = $2, channel = coalesce($3, channel),
               sent_at = case when $2::text = 'sent' then $4::timestamptz else null end,
               last_error = coalesce($5, last_error),
               reason = case when $2::text = 'sent' then null else $7 end,
               claimed_until = null, claim_token = null, in_flight = false, link = null
           where recognition_id = any($1::text[]) and status = 'pending'
             and claim_token = $6""",
        list(ids),
        status,
        channel,
        now,
        error,
        token,
        reason,
    )
    return _changed(changed) > 0


async def begin_attempt(
    conn: Conn,
    ids: Sequence[str],
    token: uuid.UUID | None,
    channel: str,
    now: datetime,
    lease_s: float,
) -> bool:
    """Record that an attempt starts, before anything is sent, and renew the claim for
    ``lease_s`` (longer than an attempt may take). All of ``ids`` must still be held under
    ``token``; otherwise nothing changes, False is returned and nothing may be sent."""
    try:
        async with conn.transaction():
            changed = await conn.execute(
                """update notifier_deliveries set attempts = attempts + 1, channel = $2,
                       first_attempt_at = coalesce(first_attempt_at, $3), in_flight = true,
                       claimed_until = $3::timestamptz + make_interval(secs => $6),
                       last_error = case when last_error = $4 then null else last_error end
                   where recognition_id = any($1::text[]) and claim_token = $5
                     and status = 'pending'""",
                list(ids),
                channel,
                now,
                WAITING,
                token,
                lease_s,
            )
            if _changed(changed) != len(set(ids)):
                raise _ClaimLost
    except _ClaimLost:
        return False
    return True


class _ClaimLost(Exception):
    """Rolls back a step of which only part was still held."""


async def messages_on(conn: Conn, employee_id: str, start: datetime) -> int:
    """Messages of an employee whose first attempt was in the UTC day starting at ``start``
    and that did not fail (a digest counts once; connection messages do not count)."""
    count: int = await conn.fetchval(
        """select count(distinct coalesce(digest_id, recognition_id)) from notifier_deliveries
           where employee_id = $1 and first_attempt_at >= $2 and first_attempt_at < $3
             and status in ('sent', 'pending') and not (kind = any($4::text[]))""",
        employee_id,
        start,
        start + timedelta(days=1),
        list(CONNECTION_KINDS),
    )
    return count


async def form_digest(
    conn: Conn,
    employee_id: str,
    day: date,
    digest_id: str,
    token: uuid.UUID | None,
    now: datetime,
    lease_s: float,
) -> list[Delivery]:
    """Fold every deferred recognition of an employee due by ``day`` into one digest (those
    not held by another claim), then take its members under ``token``."""
    await conn.execute(
        """update notifier_deliveries set digest_id = $3
           where employee_id = $1 and status = 'pending' and digest_day <= $2
             and digest_id is null
             and (claim_token = $4 or claimed_until is null or claimed_until <= $5)""",
        employee_id,
        day,
        digest_id,
        token,
        now,
    )
    return await digest_members(conn, digest_id, token, now, lease_s)


async def digest_members(
    conn: Conn, digest_id: str, token: uuid.UUID | None, now: datetime, lease_s: float
) -> list[Delivery]:
    """A digest's pending members, taken under ``token`` — or none at all if another claim
    holds one of them (that claim sends the digest)."""
    async with conn.transaction():
        rows = await conn.fetch(
            """select * from notifier_deliveries where digest_id = $1 and status = 'pending'
               order by due_at, recognition_id for update""",
            digest_id,
        )
        held = [
            r
            for r in rows
            if r["claim_token"] != token and r["claimed_until"] and r["claimed_until"] > now
        ]
        if held or not rows:
            return []
        await conn.execute(
            """update notifier_deliveries set claim_token = $2,
                   claimed_until = $3::timestamptz + make_interval(secs => $4)
               where digest_id = $1 and status = 'pending'""",
            digest_id,
            token,
            now,
            lease_s,
        )
    return [dataclasses.replace(Delivery.from_row(row), claim_token=token) for row in rows]


async def queue_depth(conn: Conn) -> int:
    depth: int = await conn.fetchval(
        "select count(*) from notifier_deliveries where status = 'pending'"
    )
    return depth


class BadCursor(ValueError):
    """A cursor that did not come from :func:`cursor_of`."""


def cursor_of(row: dict[str, Any]) -> str:
    """The opaque cursor after ``row``: its place in the (due_at, recognition_id) order."""
    raw = _encode([row["due_at"].isoformat(), row["recognition_id"]])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, recognition_id = msgspec.json.decode(raw, type=tuple[datetime, str])
    except (binascii.Error, ValueError, msgspec.ValidationError, msgspec.DecodeError):
        raise BadCursor(cursor) from None
    if when.tzinfo is None:
        raise BadCursor(cursor)
    return when, recognition_id


async def recognitions_page(
    conn: Conn, employee_id: str | None, limit: int, after: tuple[datetime, str] | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """CONTRACT §7 ``GET /v1/recognitions`` rows (plus ``due_at``, ``digest_id`` and the closed
    ``reason``), one employee's or everyone's, ordered by (due_at, recognition_id), from after
    the cursor ``after``; and the next page's cursor, None on the last page."""
    rows = await conn.fetch(
        """select recognition_id, kind, employee_id, status, channel, attempts, sent_at,
                  due_at, digest_id, reason
            from notifier_deliveries
            where ($1::text is null or employee_id = $1)
              and ($3::timestamptz is null or (due_at, recognition_id) > ($3, $4::text))
            order by due_at, recognition_id limit $2""",
        employee_id,
        limit + 1,
        after[0] if after else None,
        after[1] if after else None,
    )
    page = [dict(row) for row in rows[:limit]]
    return page, cursor_of(page[-1]) if len(rows) > limit else None


# --- scheduled reports -----------------------------------------------------------------------


async def last_report_end(conn: Conn, digest: str) -> datetime | None:
    """The end of the latest period on the ledger for the recipient ``digest`` (a report
    row's ``due_at`` is its period's end), None when there is none."""
    end: datetime | None = await conn.fetchval(
        """select max(due_at) from notifier_deliveries
           where employee_id = '' and kind = 'report' and recognition_id like '%:' || $1""",
        digest,
    )
    return end


async def record_reports(
    conn: Conn, reports: Sequence[tuple[str, datetime, datetime]], source: str, now: datetime
) -> list[str]:
    """A ledger row per (report id, period end, due time) not there yet; the new ids.
    The id is the primary key, so replicas and restarts writing the same report make one row."""
    if not reports:
        return []
    rows = await conn.fetch(
        """insert into notifier_deliveries (recognition_id, kind, employee_id, due_at, facts,
               event_id, event_source, event_time, source_partition, source_offset,
               received_at, next_attempt_at)
           select r.id, 'report', '', r.period_end, '{}'::jsonb, r.id, $4, r.period_end, -1, -1,
                  $5, r.due
           from unnest($1::text[], $2::timestamptz[], $3::timestamptz[])
                as r(id, period_end, due)
           on conflict (recognition_id) do nothing
           returning recognition_id""",
        [r[0] for r in reports],
        [r[1] for r in reports],
        [r[2] for r in reports],
        source,
        now,
    )
    return [row["recognition_id"] for row in rows]
