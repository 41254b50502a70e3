"""What ingest knows about employees, to map vendor identities to ``employee_id``.

The connectors meet employees under other names: an ATS names a referrer by e-mail, LinkedIn
names an actor by member URN. Ingest learns both from the employee events it accepts on
``/v1/events``: ``linkedin_member_urn`` (a contract field) and ``work_email``, an optional
extension field of ``ripples.employee.upserted.v1`` that ingest reads and never forwards (the
contract models drop unknown fields, so it never reaches Kafka). Only a keyed hash of the
address is stored (HMAC-SHA256 with ``INGEST_APPLICANT_ID_SECRET``). The latest CloudEvent
``time`` wins, as in the contract.

``employee.removed`` erases: the row stays as a tombstone (no e-mail hash, no member URN, the
removal's time), so an upsert older than the removal changes nothing — without it a late
upsert re-inserted both. The member's LinkedIn poller state goes, and a keyed hash of the
member URN is kept (:func:`member_removed`) so the poller does not poll the member, nor
write its URN again, while its token is still in the tokens file. An upsert newer than the
removal (the person is back) clears the tombstone.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime

import asyncpg
import msgspec

from services.ingest import tokens
from shared.events import (
    EmployeePreferencesEvent,
    EmployeeRemovedEvent,
    EmployeeUpsertedEvent,
    Envelope,
    preference_keys,
)


def email_hash(secret: str, email: str) -> str:
    """The keyed hash under which an e-mail address is stored and looked up."""
    message = b"email:" + email.strip().lower().encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def member_hash(secret: str, urn: str) -> str:
    """The keyed hash a removed member's URN is remembered by (SHA-256 when no secret)."""
    message = b"member:" + urn.strip().encode()
    if not secret:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class _ExtraData(msgspec.Struct, frozen=True):
    employee_id: str = ""
    work_email: str | None = None


class _Extra(msgspec.Struct, frozen=True):
    type: str = ""
    data: _ExtraData = _ExtraData()


_UPSERTED = "ripples.employee.upserted.v1"
_decode_one = msgspec.json.Decoder(_Extra).decode
_decode_many = msgspec.json.Decoder(list[_Extra]).decode
_decode_data = msgspec.json.Decoder(_ExtraData).decode


def work_emails(body: bytes, mode: str, headers: Mapping[str, str]) -> dict[str, str]:
    """{employee_id: work_email} of the upserts in an accepted request body."""
    try:
        if mode == "structured":
            items = [_decode_one(body)]
        elif mode == "batch":
            items = _decode_many(body)
        elif headers.get("ce-type") == _UPSERTED:
            items = [_Extra(_UPSERTED, _decode_data(body))]
        else:
            return {}
    except msgspec.MsgspecError:
        return {}
    return {
        item.data.employee_id: item.data.work_email
        for item in items
        if item.type == _UPSERTED and item.data.employee_id and item.data.work_email
    }


async def record(
    pool: asyncpg.Pool, events: Sequence[Envelope], emails: Mapping[str, str], secret: str
) -> None:
    """Apply the employee events of an accepted request to the directory."""
    upserts: list[tuple[str, str | None, str | None, datetime, str]] = []
    removals: list[tuple[str, datetime]] = []
    for event in events:
        if isinstance(event, EmployeeUpsertedEvent):
            data = event.data
            email = emails.get(data.employee_id)
            hashed = email_hash(secret, email) if email and secret else None
            upserts.append(
                (data.employee_id, hashed, data.linkedin_member_urn, event.time, data.locale)
            )
        elif isinstance(event, EmployeeRemovedEvent):
            removals.append((event.data.employee_id, event.time))
    if not upserts and not removals:
        return
    async with pool.acquire() as conn, conn.transaction():
        if upserts:
            await conn.executemany(
                "insert into ingest_employees (employee_id, email_hash, linkedin_member_urn,"
                " updated_at, locale) values ($1, $2, $3, $4, $5)"
                " on conflict (employee_id) do update set email_hash = excluded.email_hash,"
                " locale = excluded.locale,"
                " linkedin_member_urn = excluded.linkedin_member_urn,"
                " updated_at = excluded.updated_at, removed_at = null"
                " where ingest_employees.updated_at <= excluded.updated_at"
                " and (ingest_employees.removed_at is null"
                " or ingest_employees.removed_at < excluded.updated_at)",
                upserts,
            )
            # Back after a removal (a newer upsert): the poller may poll the member again.
            await conn.executemany(
                "delete from ingest_removed_members where member_hash = $1 and removed_at < $2",
                [(member_hash(secret, u[2]), u[3]) for u in upserts if u[2]],
            )
        if removals:
            await tokens.forget(conn, removals)
            # Erasure: the member URN goes from the poller's state too, and is remembered
            # by its keyed hash only.
            rows = await conn.fetch(
                "select employee_id, linkedin_member_urn, updated_at from ingest_employees"
                " where employee_id = any($1::text[]) and linkedin_member_urn is not null",
                sorted({e for e, _ in removals}),
            )
            stored = {r["employee_id"]: r for r in rows}
            await conn.executemany(
                "insert into ingest_removed_members (member_hash, removed_at) values ($1, $2)"
                " on conflict (member_hash) do update set removed_at"
                " = greatest(ingest_removed_members.removed_at, excluded.removed_at)",
                [
                    (member_hash(secret, row["linkedin_member_urn"]), at)
                    for e, at in removals
                    if (row := stored.get(e)) is not None and row["updated_at"] <= at
                ],
            )
            await conn.executemany(
                "delete from ingest_linkedin_members where member_urn in (select"
                " linkedin_member_urn from ingest_employees where employee_id = $1"
                " and updated_at <= $2)",
                removals,
            )
            await conn.executemany(
                "insert into ingest_employees (employee_id, updated_at, removed_at)"
                " values ($1, $2, $2) on conflict (employee_id) do update set"
                " email_hash = null, linkedin_member_urn = null,"
                " updated_at = excluded.updated_at, removed_at = excluded.removed_at"
                " where ingest_employees.updated_at <= excluded.updated_at",
                removals,
            )


# A preference older than the removal would put an address back on the topic, too.
_RECORDS = (EmployeeUpsertedEvent, EmployeePreferencesEvent)


async def superseded(pool: asyncpg.Pool, events: Sequence[Envelope]) -> set[int]:
    """The positions in ``events`` of the upserts older than a removal ingest knows of: such
    an upsert changes nothing anywhere (the latest CloudEvent ``time`` wins), and left off the
    topic the removal stays the latest record of its key on the compacted
    ``ripples.employees``."""
    upserted = {e.data.employee_id for e in events if isinstance(e, _RECORDS)}
    if not upserted:
        return set()
    removed = {
        r["employee_id"]: r["removed_at"]
        for r in await pool.fetch(
            "select employee_id, removed_at from ingest_employees"
            " where employee_id = any($1::text[]) and removed_at is not null",
            sorted(upserted),
        )
    }
    return {
        i
        for i, e in enumerate(events)
        if isinstance(e, _RECORDS)
        and e.data.employee_id in removed
        and e.time <= removed[e.data.employee_id]
    }


async def removal_tombstones(pool: asyncpg.Pool, events: Sequence[Envelope]) -> list[bytes]:
    """The record keys to publish a tombstone (no value) under, after ``events``, on the
    compacted ``ripples.employees``: every preference key of each removed employee
    (:func:`shared.events.preference_keys`), so that compaction drops their preferences, the
    notify address in them included, as it drops the HR records under the removal. The keys
    are all those a preference event of the employee can have (eight): ingest keeps no list
    of the ones it published, and so also reaches those published before it tombstoned any.
    None for a removal older than the employee's latest upsert (the person is back; the
    removal changes nothing anywhere)."""
    removals: dict[str, datetime] = {}
    for event in events:
        if isinstance(event, EmployeeRemovedEvent):
            at = removals.get(event.data.employee_id)
            removals[event.data.employee_id] = event.time if at is None else max(at, event.time)
    if not removals:
        return []
    newer = {
        r["employee_id"]: r["updated_at"]
        for r in await pool.fetch(
            "select employee_id, updated_at from ingest_employees"
            " where employee_id = any($1::text[])",
            sorted(removals),
        )
    }
    return [
        key.encode()
        for employee_id, at in removals.items()
        if employee_id not in newer or newer[employee_id] <= at
        for key in preference_keys(employee_id)
    ]


async def by_email(pool: asyncpg.Pool, secret: str, email: str) -> str | None:
    if not secret:
        return None
    value: str | None = await pool.fetchval(
        "select employee_id from ingest_employees where email_hash = $1"
        " order by updated_at desc limit 1",
        email_hash(secret, email),
    )
    return value


async def by_member_urn(pool: asyncpg.Pool, urn: str) -> str | None:
    value: str | None = await pool.fetchval(
        "select employee_id from ingest_employees where linkedin_member_urn = $1"
        " order by updated_at desc limit 1",
        urn,
    )
    return value


async def known(pool: asyncpg.Pool, employee_id: str) -> bool:
    found = await pool.fetchval(
        "select 1 from ingest_employees where employee_id = $1 and removed_at is null",
        employee_id,
    )
    return found is not None


async def member_removed(pool: asyncpg.Pool, secret: str, urn: str) -> bool:
    """Whether the member with this URN was removed (and not upserted again since)."""
    found = await pool.fetchval(
        "select 1 from ingest_removed_members where member_hash = $1", member_hash(secret, urn)
    )
    return found is not None
