"""One batch of events into PostgreSQL: facts stored idempotently, then everything they
affect re-derived (rings, inspirers, touches, credit, recognitions: :mod:`derive`), in the
caller's transaction. Output events go to an outbox table in the same transaction; the worker sends
them after the commit (:func:`pending_outbox`, :func:`delete_outbox`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from services.attribution import derive
from services.attribution.settings import AttributionSettings
from shared.events import (
    CREDITS,
    RECOGNITIONS,
    ApplicantApplied,
    ApplicantErased,
    ApplicantHired,
    CreditAssignedEvent,
    EmployeeRemoved,
    EmployeeUpserted,
    Envelope,
    JobUpserted,
    LinkClicked,
    LinkCreated,
    PostEngagement,
    PostMetrics,
    PostPublished,
)

Conn = asyncpg.Connection | PoolConnectionProxy
"""A connection, or one borrowed from the pool."""

_LOCK = 0x52415454  # "RATT": one writer derives at a time, whatever the number of workers
_encode = msgspec.json.Encoder().encode
METRIC_FIELDS = ("impressions", "members_reached", "reactions", "comments", "reshares", "clicks")
RING_INPUTS = (
    "ripples.employee.upserted.v1",
    "ripples.employee.removed.v1",
    "ripples.post.published.v1",
    "ripples.post.engagement.v1",
)


def applicant_hash(applicant_id: str) -> str:
    return hashlib.sha256(applicant_id.encode()).hexdigest()


@dataclass
class BatchResult:
    """What a batch did, for the metrics."""

    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    credits_assigned: int = 0
    recognitions: Counter[str] = field(default_factory=Counter)
    outbox: int = 0
    rings_derived: int = 0  # employees whose placement the batch derived
    ring_steps: int = 0  # steps of the incremental walk


# --- facts --------------------------------------------------------------------------------

# Each statement stores all of a batch's rows of one kind at once (arrays, `unnest`). A key
# may appear more than once in a batch: the rows are first reduced to the one the upsert's
# own rule would keep last (the greatest (time, source, id), compared by the database as the
# `where` clause compares them), so the result equals applying the rows one by one.

_UPSERT_EMPLOYEE = """
insert into attribution.employees as e (employee_id, upsert_time, upsert_source, upsert_id,
    ambassador, department, locale, recognition_opt_out, display_name, notify,
    linkedin_member_urn, followers)
select distinct on (u.employee_id) u.employee_id, u.upsert_time, u.upsert_source, u.upsert_id,
    u.ambassador, u.department, u.locale, u.recognition_opt_out, u.display_name,
    u.notify::jsonb, u.linkedin_member_urn, u.followers
from unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::boolean[], $6::text[],
    $7::text[], $8::boolean[], $9::text[], $10::text[], $11::text[], $12::bigint[])
    as u(employee_id, upsert_time, upsert_source, upsert_id, ambassador, department, locale,
         recognition_opt_out, display_name, notify, linkedin_member_urn, followers)
order by u.employee_id, u.upsert_time desc, u.upsert_source desc, u.upsert_id desc
on conflict (employee_id) do update set
    upsert_time = excluded.upsert_time, upsert_source = excluded.upsert_source,
    upsert_id = excluded.upsert_id, ambassador = excluded.ambassador,
    department = excluded.department, locale = excluded.locale,
    recognition_opt_out = excluded.recognition_opt_out, followers = excluded.followers,
    display_name = case when e.removed_time is null or excluded.upsert_time > e.removed_time
        then excluded.display_name end,
    notify = case when e.removed_time is null or excluded.upsert_time > e.removed_time
        then excluded.notify end,
    linkedin_member_urn = case when e.removed_time is null
        or excluded.upsert_time > e.removed_time then excluded.linkedin_member_urn end
where e.upsert_time is null
    or (excluded.upsert_time, excluded.upsert_source, excluded.upsert_id)
       > (e.upsert_time, e.upsert_source, e.upsert_id)
"""

_REMOVE_EMPLOYEE = """
insert into attribution.employees as e (employee_id, removed_time)
select employee_id, max(removed_time)
from unnest($1::text[], $2::timestamptz[]) as u(employee_id, removed_time)
group by employee_id
on conflict (employee_id) do update set
    removed_time = greatest(e.removed_time, excluded.removed_time),
    display_name = case when e.upsert_time > greatest(e.removed_time, excluded.removed_time)
        then e.display_name end,
    notify = case when e.upsert_time > greatest(e.removed_time, excluded.removed_time)
        then e.notify end,
    linkedin_member_urn = case when e.upsert_time
        > greatest(e.removed_time, excluded.removed_time) then e.linkedin_member_urn end
"""

_UPSERT_POST = """
insert into attribution.posts as p (post_id, ev_time, ev_source, ev_id, author_kind,
    employee_id, published_at, url, reshare_of, link_codes, origin)
select distinct on (u.post_id) u.post_id, u.ev_time, u.ev_source, u.ev_id, u.author_kind,
    u.employee_id, u.published_at, u.url, u.reshare_of,
    array(select jsonb_array_elements_text(u.link_codes::jsonb)), u.origin
from unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::text[])
    as u(post_id, ev_time, ev_source, ev_id, author_kind, employee_id, published_at, url,
         reshare_of, link_codes, origin)
order by u.post_id, u.ev_time desc, u.ev_source desc, u.ev_id desc
on conflict (post_id) do update set
    ev_time = excluded.ev_time, ev_source = excluded.ev_source, ev_id = excluded.ev_id,
    author_kind = excluded.author_kind, employee_id = excluded.employee_id,
    published_at = excluded.published_at, url = excluded.url,
    reshare_of = excluded.reshare_of, link_codes = excluded.link_codes,
    origin = excluded.origin
where (excluded.ev_time, excluded.ev_source, excluded.ev_id) > (p.ev_time, p.ev_source, p.ev_id)
"""


_UPSERT_JOB = """
insert into attribution.jobs as j (job_id, ev_time, ev_source, ev_id, title, family,
    hard_to_recruit)
select distinct on (u.job_id) *
from unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::boolean[]) as u(job_id, ev_time, ev_source, ev_id, title, family, hard_to_recruit)
order by u.job_id, u.ev_time desc, u.ev_source desc, u.ev_id desc
on conflict (job_id) do update set
    ev_time = excluded.ev_time, ev_source = excluded.ev_source, ev_id = excluded.ev_id,
    title = excluded.title, family = excluded.family, hard_to_recruit = excluded.hard_to_recruit
where (excluded.ev_time, excluded.ev_source, excluded.ev_id) > (j.ev_time, j.ev_source, j.ev_id)
"""


def _metric_sql() -> str:
    columns = ", ".join(f"{m}, {m}_at" for m in METRIC_FIELDS)
    arrays = ", ".join(
        f"${2 * i + 2}::bigint[], ${2 * i + 3}::timestamptz[]" for i in range(len(METRIC_FIELDS))
    )
    updates = []
    for m in METRIC_FIELDS:
        newer = (
            f"excluded.{m} is not null and (m.{m} is null or excluded.{m}_at > m.{m}_at or "
            f"(excluded.{m}_at = m.{m}_at and excluded.{m} > m.{m}))"
        )
        updates.append(f"{m} = case when {newer} then excluded.{m} else m.{m} end")
        updates.append(f"{m}_at = case when {newer} then excluded.{m}_at else m.{m}_at end")
    table = "attribution.post_metrics as m"
    head = f"insert into {table} (post_id, {columns}) "
    head += f"select * from unnest($1::text[], {arrays})"  # noqa: S608
    return head + f" on conflict (post_id) do update set {', '.join(updates)}"


_UPSERT_METRICS = _metric_sql()

_INSERT_ENGAGEMENT = """
insert into attribution.engagements (source, id, post_id, action, at, actor_employee_id)
select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                     $6::text[])
on conflict do nothing
"""

_UPSERT_LINK = """
insert into attribution.links as l (link_code, ev_time, ev_source, ev_id, target_url,
    employee_id, job_id, post_id)
select distinct on (u.link_code) *
from unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::text[], $8::text[])
    as u(link_code, ev_time, ev_source, ev_id, target_url, employee_id, job_id, post_id)
order by u.link_code, u.ev_time desc, u.ev_source desc, u.ev_id desc
on conflict (link_code) do update set
    ev_time = excluded.ev_time, ev_source = excluded.ev_source, ev_id = excluded.ev_id,
    target_url = excluded.target_url, employee_id = excluded.employee_id,
    job_id = excluded.job_id, post_id = excluded.post_id
where (excluded.ev_time, excluded.ev_source, excluded.ev_id) > (l.ev_time, l.ev_source, l.ev_id)
"""

_INSERT_CLICK = """
insert into attribution.clicks (source, id, link_code, visitor_id, at)
select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
on conflict do nothing
"""

_UPSERT_APPLICATION = """
insert into attribution.applications as a (applicant_id, ev_time, ev_source, ev_id, job_id,
    applied_at, visitor_id, link_code, referrer_employee_id, source_name)
select distinct on (u.applicant_id) *
from unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],
    $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::text[])
    as u(applicant_id, ev_time, ev_source, ev_id, job_id, applied_at, visitor_id, link_code,
         referrer_employee_id, source_name)
order by u.applicant_id, u.ev_time desc, u.ev_source desc, u.ev_id desc
on conflict (applicant_id) do update set
    ev_time = excluded.ev_time, ev_source = excluded.ev_source, ev_id = excluded.ev_id,
    job_id = excluded.job_id, applied_at = excluded.applied_at,
    visitor_id = excluded.visitor_id, link_code = excluded.link_code,
    referrer_employee_id = excluded.referrer_employee_id, source_name = excluded.source_name
where (excluded.ev_time, excluded.ev_source, excluded.ev_id) > (a.ev_time, a.ev_source, a.ev_id)
"""

_UPSERT_HIRE = """
insert into attribution.hires as h (applicant_id, ev_time, ev_source, ev_id, job_id, hired_at)
select distinct on (u.applicant_id) *
from unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],
    $6::timestamptz[]) as u(applicant_id, ev_time, ev_source, ev_id, job_id, hired_at)
order by u.applicant_id, u.ev_time desc, u.ev_source desc, u.ev_id desc
on conflict (applicant_id) do update set
    ev_time = excluded.ev_time, ev_source = excluded.ev_source, ev_id = excluded.ev_id,
    job_id = excluded.job_id, hired_at = excluded.hired_at
where (excluded.ev_time, excluded.ev_source, excluded.ev_id) > (h.ev_time, h.ev_source, h.ev_id)
"""


# A statement with at least this many rows sends them with COPY into a temporary table and
# inserts from there, instead of as arrays (`unnest`). Measured here (docs/performance.md,
# "Batches end to end"): COPY costs the worker ~40 % less CPU per row either way, but below
# ~5,000 rows its extra statements and the temporary table make the transaction slower
# (+15-30 % wall, +10 % PostgreSQL CPU at 2,000 events); at 10,000 it is 20-40 % faster.
COPY_ROWS = 5000

# The temporary tables (one per connection, emptied at every commit); `like` takes the
# target's column types without its constraints.
_COPY_TABLES = {
    "events": "create temporary table if not exists ripples_copy_events "
    "(like attribution.events including defaults) on commit delete rows",
    "engagements": "create temporary table if not exists ripples_copy_engagements "
    "(like attribution.engagements including defaults) on commit delete rows",
    "clicks": "create temporary table if not exists ripples_copy_clicks "
    "(like attribution.clicks including defaults) on commit delete rows",
}


async def _copy_in(conn: Conn, table: str, columns: Sequence[str], rows: list[Any]) -> str:
    """COPY ``rows`` into the connection's temporary table for ``table``; its name."""
    await conn.execute(_COPY_TABLES[table])
    name = f"ripples_copy_{table}"
    await conn.copy_records_to_table(name, records=rows, columns=list(columns))
    return name


# the insert-only facts (the most rows after the events themselves) and their columns, in
# the order of their statements' arrays
_COPIED = {
    _INSERT_ENGAGEMENT: (
        "engagements",
        ("source", "id", "post_id", "action", "at", "actor_employee_id"),
    ),
    _INSERT_CLICK: ("clicks", ("source", "id", "link_code", "visitor_id", "at")),
}


async def _dedupe(conn: Conn, events: Sequence[Envelope]) -> list[Envelope]:
    """The events of the batch never stored before (first occurrence of each pair)."""
    if len(events) >= COPY_ROWS:
        copied = await _copy_in(
            conn, "events", ("source", "id", "type"), [(e.source, e.id, e.type) for e in events]
        )
        rows = await conn.fetch(
            "insert into attribution.events (source, id, type) "  # noqa: S608 - a fixed name
            f"select source, id, type from pg_temp.{copied} "
            "on conflict do nothing returning source, id"
        )
    else:
        rows = await conn.fetch(
            "insert into attribution.events (source, id, type) "
            "select * from unnest($1::text[], $2::text[], $3::text[]) "
            "on conflict do nothing returning source, id",
            [e.source for e in events],
            [e.id for e in events],
            [e.type for e in events],
        )
    fresh = {(r["source"], r["id"]) for r in rows}
    out: list[Envelope] = []
    for event in events:
        pair = (event.source, event.id)
        if pair in fresh:
            fresh.discard(pair)
            out.append(event)
    return out


@dataclass
class _Touched:
    """What the new facts of a batch may affect."""

    ring_inputs: bool = False
    applicants: set[str] = field(default_factory=set)
    clicks: list[tuple[str, datetime, str]] = field(default_factory=list)  # visitor, at, link
    link_codes: set[str] = field(default_factory=set)
    posted_by: set[str] = field(default_factory=set)
    metric_posts: set[str] = field(default_factory=set)
    erased: list[str] = field(default_factory=list)


async def _store_facts(conn: Conn, events: Sequence[Envelope]) -> _Touched:
    touched = _Touched()
    rows: dict[str, list[tuple[Any, ...]]] = {}  # statement → its rows, sent as arrays

    def add(sql: str, row: tuple[Any, ...]) -> None:
        rows.setdefault(sql, []).append(row)

    metrics: dict[str, list[tuple[datetime, int] | None]] = {}

    applicant_events: list[tuple[Envelope, ApplicantApplied | ApplicantHired]] = []
    for event in events:
        data = event.data
        if event.type in RING_INPUTS:
            touched.ring_inputs = True
        if isinstance(data, EmployeeUpserted):
            notify = None if data.notify is None else _encode(data.notify).decode()
            add(
                _UPSERT_EMPLOYEE,
                (
                    data.employee_id,
                    event.time,
                    event.source,
                    event.id,
                    data.ambassador,
                    data.department,
                    data.locale,
                    data.recognition_opt_out,
                    data.display_name,
                    notify,
                    data.linkedin_member_urn,
                    data.followers,
                ),
            )
        elif isinstance(data, EmployeeRemoved):
            add(_REMOVE_EMPLOYEE, (data.employee_id, event.time))
        elif isinstance(data, PostPublished):
            add(
                _UPSERT_POST,
                (
                    data.post_id,
                    event.time,
                    event.source,
                    event.id,
                    data.author_kind,
                    data.employee_id if data.author_kind == "employee" else None,
                    data.published_at,
                    data.url,
                    data.reshare_of,
                    _encode(list(data.link_codes)).decode(),
                    data.origin,
                ),
            )
            if data.author_kind == "employee" and data.employee_id is not None:
                touched.posted_by.add(data.employee_id)
        elif isinstance(data, PostMetrics):
            # the batch's winner per post and metric (latest observed_at, then larger value);
            # the upsert applies the same rule against the stored one
            winners = metrics.setdefault(data.post_id, [None] * len(METRIC_FIELDS))
            for i, name in enumerate(METRIC_FIELDS):
                value = getattr(data, name)
                if value is not None:
                    candidate = (data.observed_at, value)
                    current = winners[i]
                    if current is None or candidate > current:
                        winners[i] = candidate
            touched.metric_posts.add(data.post_id)
        elif isinstance(data, PostEngagement):
            add(
                _INSERT_ENGAGEMENT,
                (event.source, event.id, data.post_id, data.action, data.at,
                 data.actor_employee_id),
            )  # fmt: skip
        elif isinstance(data, LinkCreated):
            add(
                _UPSERT_LINK,
                (data.link_code, event.time, event.source, event.id, data.target_url,
                 data.employee_id, data.job_id, data.post_id),
            )  # fmt: skip
            touched.link_codes.add(data.link_code)
        elif isinstance(data, LinkClicked):
            add(_INSERT_CLICK, (event.source, event.id, data.link_code, data.visitor_id, data.at))
            touched.clicks.append((data.visitor_id, data.at, data.link_code))
        elif isinstance(data, ApplicantApplied | ApplicantHired):
            applicant_events.append((event, data))
        elif isinstance(data, ApplicantErased):
            touched.erased.append(data.applicant_id)
        elif isinstance(data, JobUpserted):
            add(
                _UPSERT_JOB,
                (data.job_id, event.time, event.source, event.id, data.title, data.family,
                 data.hard_to_recruit),
            )  # fmt: skip

    if applicant_events:
        hashes = {applicant_hash(d.applicant_id) for _, d in applicant_events}
        erased = {
            r["applicant_hash"]
            for r in await conn.fetch(
                "select applicant_hash from attribution.erased_applicants "
                "where applicant_hash = any($1::text[])",
                list(hashes),
            )
        }
        for event, data in applicant_events:
            if applicant_hash(data.applicant_id) in erased:
                continue
            touched.applicants.add(data.applicant_id)
            if isinstance(data, ApplicantApplied):
                add(
                    _UPSERT_APPLICATION,
                    (data.applicant_id, event.time, event.source, event.id, data.job_id,
                     data.applied_at, data.visitor_id, data.link_code,
                     data.referrer_employee_id, data.source),
                )  # fmt: skip
            else:
                add(
                    _UPSERT_HIRE,
                    (data.applicant_id, event.time, event.source, event.id, data.job_id,
                     data.hired_at),
                )  # fmt: skip
    previous_authors: list[str] = []
    if _UPSERT_POST in rows:
        previous_authors = [
            r["employee_id"]
            for r in await conn.fetch(
                "select distinct employee_id from attribution.posts "
                "where post_id = any($1::text[]) and employee_id is not null",
                [row[0] for row in rows[_UPSERT_POST]],
            )
        ]
    for sql, batch in rows.items():
        if sql in _COPIED and len(batch) >= COPY_ROWS:
            table, columns = _COPIED[sql]
            copied = await _copy_in(conn, table, columns, batch)
            names = ", ".join(columns)
            await conn.execute(
                f"insert into attribution.{table} ({names}) "  # noqa: S608 - fixed names
                f"select {names} from pg_temp.{copied} on conflict do nothing"
            )
            continue
        await conn.execute(sql, *(list(column) for column in zip(*batch, strict=True)))
    if _UPSERT_POST in rows:
        authors = sorted(touched.posted_by | set(previous_authors))
        await conn.execute(_UPSERT_FIRST_SHARES, authors)
        if previous_authors:
            await conn.execute(_DELETE_FIRST_SHARES, sorted(previous_authors))
    if metrics:
        values: list[list[Any]] = [sorted(metrics)]
        for i in range(len(METRIC_FIELDS)):
            winners = [metrics[post_id][i] for post_id in values[0]]
            values.append([None if w is None else w[1] for w in winners])
            values.append([None if w is None else w[0] for w in winners])
        await conn.execute(_UPSERT_METRICS, *values)
    return touched


# --- rings ----------------------------------------------------------------------------------

# A batch's post upserts may move the first share of their authors, new and previous
# (a post re-published under another author); only those employees are re-aggregated.
_UPSERT_FIRST_SHARES = """
insert into attribution.first_shares as f (employee_id, first_shared_at)
select employee_id, min(published_at) from attribution.posts
where employee_id = any($1::text[]) and author_kind = 'employee'
group by employee_id
on conflict (employee_id) do update set first_shared_at = excluded.first_shared_at
where f.first_shared_at <> excluded.first_shared_at
"""

_DELETE_FIRST_SHARES = """
delete from attribution.first_shares f
where f.employee_id = any($1::text[]) and not exists (
    select from attribution.posts p
    where p.employee_id = f.employee_id and p.author_kind = 'employee'
)
"""


async def _erase(conn: Conn, applicant_ids: Sequence[str]) -> None:
    """Keep each erased conversion as anonymous numbers (times truncated to the day), then
    delete the applicant's rows, its visitor's clicks and the unsent output events of earlier
    batches about it; its ``hire`` recognitions keep only a digest of the id (still counted,
    never emitted again); remember only the digest so later events about it are ignored."""
    for applicant_id in sorted(set(applicant_ids)):
        digest = applicant_hash(applicant_id)
        app = await conn.fetchrow(
            "select a.job_id, a.applied_at, a.visitor_id, h.hired_at, h.job_id as hire_job "
            "from attribution.applications a full join attribution.hires h using (applicant_id)"
            " where coalesce(a.applicant_id, h.applicant_id) = $1",
            applicant_id,
        )
        if app is not None:
            attributed = await conn.fetchval(
                "select exists(select 1 from attribution.touches where applicant_id = $1)",
                applicant_id,
            )
            conversion_id = await conn.fetchval(
                "insert into attribution.erased_conversions "
                "(job_id, applied_at, hired_at, attributed) values ($1, $2, $3, $4) "
                "returning conversion_id",
                app["job_id"] or app["hire_job"],
                _day(app["applied_at"]),
                _day(app["hired_at"]),
                attributed,
            )
            await conn.execute(
                "insert into attribution.erased_credits "
                "select $2, model, employee_id, weight from attribution.credits "
                "where applicant_id = $1",
                applicant_id,
                conversion_id,
            )
            if app["visitor_id"] is not None:
                await conn.execute(
                    "delete from attribution.clicks where visitor_id = $1", app["visitor_id"]
                )
        for table in ("applications", "hires", "touches", "credits", "conversions"):
            await conn.execute(
                f"delete from attribution.{table} where applicant_id = $1",  # noqa: S608
                applicant_id,
            )
        hires = [
            r["recognition_id"]
            for r in await conn.fetch(
                "update attribution.recognitions "
                "set recognition_id = 'hire:' || employee_id || ':erased:' || $2 "
                "where kind = 'hire' and recognition_id = 'hire:' || employee_id || ':' || $1 "
                "returning 'hire:' || employee_id || ':' || $1 as recognition_id",
                applicant_id,
                digest,
            )
        ]
        await conn.execute(
            "delete from attribution.outbox where (topic = $1 and "
            "convert_from(event, 'UTF8')::jsonb -> 'data' ->> 'applicant_id' = $3) "
            "or (topic = $2 and "
            "convert_from(event, 'UTF8')::jsonb -> 'data' ->> 'recognition_id' = any($4))",
            CREDITS.name,
            RECOGNITIONS.name,
            applicant_id,
            hires,
        )
        await conn.execute(
            "insert into attribution.erased_applicants values ($1) on conflict do nothing",
            digest,
        )


def _day(at: datetime | None) -> datetime | None:
    """``at`` truncated to its UTC day."""
    if at is None:
        return None
    return at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


# --- the batch --------------------------------------------------------------------------------


async def apply_batch(
    conn: Conn,
    events: Sequence[Envelope],
    settings: AttributionSettings,
    derivation: derive.Derivation = "incremental",
) -> BatchResult:
    """Store and derive one batch; call inside a transaction. ``derivation`` says how the
    rings are derived (the same tables either way; ``whole_network`` is the reference)."""
    result = BatchResult()
    if not events:
        return result
    # one writer at a time; plans made for each batch's own arrays (a generic plan made
    # while the tables were small turns the `= any($1)` lookups into scans later)
    await conn.execute(
        "select pg_advisory_xact_lock($1), "
        "set_config('plan_cache_mode', 'force_custom_plan', true)",
        _LOCK,
    )
    fresh = await _dedupe(conn, events)
    fresh_ids = {id(e) for e in fresh}
    for event in events:
        result.outcomes[(event.type, "stored" if id(event) in fresh_ids else "duplicate")] += 1
        fresh_ids.discard(id(event))
    if not fresh:
        return result
    previous: list[str] = []
    posts = derive.touched_posts(fresh)
    before: dict[str, derive.Contribution] | None = None  # None: totals summed again
    if derivation == "incremental":
        previous = await derive.previous_authors(conn, fresh)
        before = await derive.contributions(conn, posts)
    touched = await _store_facts(conn, fresh)
    ring_change = derive.RingChange()
    if touched.ring_inputs:
        if derivation == "incremental":
            seeds = await derive.ring_seeds(conn, fresh, previous, settings)
            ring_change = await derive.incremental_rings(conn, seeds, settings)
        else:
            ring_change = await derive.whole_network_rings(conn, settings)
    result.rings_derived, result.ring_steps = ring_change.derived, ring_change.steps
    outbox: list[tuple[str, bytes]] = []
    affected = await derive.affected_applicants(
        conn, touched.applicants, touched.clicks, touched.link_codes, ring_change.changed, settings
    )
    erased = set(touched.erased)
    changed = await derive.derive_conversions(conn, affected, settings, result, outbox)
    if erased:
        # no credit.assigned about an applicant erased in this very batch
        outbox = [
            (topic, body)
            for topic, body in outbox
            if topic != CREDITS.name
            or msgspec.json.decode(body, type=CreditAssignedEvent).data.applicant_id not in erased
        ]
        await _erase(conn, touched.erased)
        # nor a recognition naming it (a hire derived in this very batch)
        changed = [c for c in changed if c.applicant_id not in erased]
    totals = await derive.update_author_totals(conn, posts, before)
    candidates = await derive.recognitions(
        conn, touched.posted_by, touched.metric_posts, ring_change, changed, totals
    )
    await derive.emit_recognitions(conn, candidates, result, outbox)
    if outbox:
        await conn.copy_records_to_table(
            "outbox", schema_name="attribution", columns=("topic", "event"), records=outbox
        )
    result.outbox = len(outbox)
    return result


async def pending_outbox(conn: Conn, limit: int = 5000) -> list[asyncpg.Record]:
    """The oldest unsent rows, locked until the caller's transaction ends; rows another
    worker is sending right now are skipped, so two workers on one database never send the
    same row twice."""
    return list(
        await conn.fetch(
            "select seq, topic, event from attribution.outbox order by seq limit $1 "
            "for update skip locked",
            limit,
        )
    )


async def delete_outbox(conn: Conn, seqs: Sequence[int]) -> None:
    await conn.execute("delete from attribution.outbox where seq = any($1::bigint[])", list(seqs))
