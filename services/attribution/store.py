"""One batch of events into PostgreSQL: facts stored idempotently, then everything they
affect re-derived (rings, inspirers, touches, credit, recognitions), in the caller's
transaction. Output events go to an outbox table in the same transaction; the worker sends
them after the commit (:func:`pending_outbox`, :func:`delete_outbox`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from services.attribution import rules
from services.attribution.settings import AttributionSettings
from shared.events import (
    CREDITS,
    MODELS,
    RECOGNITIONS,
    ApplicantApplied,
    ApplicantErased,
    ApplicantHired,
    CreditAssigned,
    CreditAssignedEvent,
    CreditShare,
    EmployeeRemoved,
    EmployeeUpserted,
    Envelope,
    JobUpserted,
    LinkClicked,
    LinkCreated,
    Model,
    PostEngagement,
    PostMetrics,
    PostPublished,
    RecognitionDue,
    RecognitionDueEvent,
    RecognitionFacts,
    RecognitionKind,
)

Conn = asyncpg.Connection | PoolConnectionProxy
"""A connection, or one borrowed from the pool."""

SOURCE = "urn:ripples:attribution"
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

# Per employee with a first share, only the engagements inside its window (the index
# engagements_by_actor (actor_employee_id, at) bounds both ends) and the post at the first
# share; `offset 0` keeps the lateral subquery a per-employee index probe instead of a join
# over every engagement and post.
_RING_EXPOSURES = """
select fs.employee_id, x.author_id, x.at, x.published_at, 'engagement' as kind
from attribution.first_shares fs
join attribution.employees k on k.employee_id = fs.employee_id and k.upsert_time is not null
cross join lateral (
    select p.employee_id as author_id, e.at, p.published_at
    from attribution.engagements e
    join attribution.posts p on p.post_id = e.post_id
    where e.actor_employee_id = fs.employee_id
        and e.at between fs.first_shared_at - $1::interval and fs.first_shared_at
        and p.author_kind = 'employee' and p.published_at < e.at
        and p.employee_id <> fs.employee_id
    offset 0
) x
union all
select q.employee_id, p.employee_id, q.published_at, p.published_at, 'reshare'
from attribution.first_shares fs
join attribution.posts q on q.employee_id = fs.employee_id
    and q.published_at = fs.first_shared_at
join attribution.posts p on p.post_id = q.reshare_of and p.author_kind = 'employee'
where q.author_kind = 'employee'
    and p.published_at < q.published_at and p.employee_id <> q.employee_id
"""


@dataclass
class RingChange:
    changed: set[str] = field(default_factory=set)  # employees whose ring changed
    new_edges: list[tuple[str, str]] = field(default_factory=list)  # (inspirer, inspired)


async def _derive_rings(conn: Conn, settings: AttributionSettings) -> RingChange:
    ambassadors = [
        r["employee_id"]
        for r in await conn.fetch(
            "select employee_id from attribution.employees "
            "where upsert_time is not null and ambassador"
        )
    ]
    first = {
        r["employee_id"]: r["first_shared_at"]
        for r in await conn.fetch("select * from attribution.first_shares")
    }
    exposures = [
        rules.Exposure(r["employee_id"], r["author_id"], r["at"], r["published_at"], r["kind"])
        for r in await conn.fetch(_RING_EXPOSURES, settings.ring_window)
    ]
    placed = rules.rings(
        ambassadors, first, exposures, settings.ring_window, settings.ring_half_life
    )
    old_places = {
        r["employee_id"]: (r["ring"], r["first_shared_at"])
        for r in await conn.fetch("select * from attribution.placements")
    }
    new_places = {e: (p.ring, p.first_shared_at) for e, p in placed.items()}
    change = RingChange()
    stale = [e for e in old_places if old_places[e] != new_places.get(e)]
    fresh = [(e, *new_places[e]) for e in sorted(new_places) if old_places.get(e) != new_places[e]]
    change.changed = {
        e
        for e in set(old_places) | set(new_places)
        if (old_places.get(e) or (None, None))[0] != (new_places.get(e) or (None, None))[0]
    }
    if stale:
        await conn.execute(
            "delete from attribution.placements where employee_id = any($1::text[])", stale
        )
    if fresh:
        await conn.execute(
            "insert into attribution.placements "
            "select * from unnest($1::text[], $2::integer[], $3::timestamptz[])",
            *(list(column) for column in zip(*fresh, strict=True)),
        )

    old_edges = {
        (r["employee_id"], r["inspirer_id"]): (r["weight"], r["exposure"], r["exposed_at"])
        for r in await conn.fetch("select * from attribution.inspirers")
    }
    new_edges = {
        (e, i.employee_id): (i.weight, i.exposure, i.exposed_at)
        for e, p in placed.items()
        for i in p.inspirers
    }
    gone = [k for k in old_edges if old_edges[k] != new_edges.get(k)]
    added = [k for k in sorted(new_edges) if old_edges.get(k) != new_edges[k]]
    if gone:
        await conn.execute(
            "delete from attribution.inspirers i using unnest($1::text[], $2::text[]) g(e, u) "
            "where i.employee_id = g.e and i.inspirer_id = g.u",
            [k[0] for k in gone],
            [k[1] for k in gone],
        )
    if added:
        await conn.execute(
            "insert into attribution.inspirers select * from unnest($1::text[], $2::text[], "
            "$3::double precision[], $4::text[], $5::timestamptz[])",
            *(list(c) for c in zip(*[(*k, *new_edges[k]) for k in added], strict=True)),
        )
    change.new_edges = [(u, e) for e, u in added if (e, u) not in old_edges]
    return change


# --- conversions ------------------------------------------------------------------------------


@dataclass
class Conversion:
    applicant_id: str
    job_id: str
    applied_at: datetime | None
    hired_at: datetime | None
    touches: list[rules.Touch]
    credit: dict[Model, list[rules.CreditEntry]]


async def _affected_applicants(
    conn: Conn, touched: _Touched, rings_changed: set[str], settings: AttributionSettings
) -> set[str]:
    """Applicants whose touches or credit the batch may change: their own events; a new
    click of their visitor on a known link within the lookback before the application (a
    click outside it, or on a link not yet known, is not a touch: a link that arrives later
    re-derives through its code); a new link their visitor clicked or their application names;
    a credited or referring employee whose ring changed."""
    found = set(touched.applicants)
    if touched.clicks or touched.link_codes or rings_changed:
        rows = await conn.fetch(
            """
            select a.applicant_id
            from unnest($4::text[], $5::timestamptz[], $6::text[]) as c(visitor_id, at, link_code)
            join attribution.applications a on a.visitor_id = c.visitor_id
            where c.at between a.applied_at - $1::interval and a.applied_at
                and exists (select from attribution.links l where l.link_code = c.link_code)
            union
            select applicant_id from attribution.applications where link_code = any($2::text[])
            union
            select applicant_id from attribution.applications
            where visitor_id = any(array(
                select visitor_id from attribution.clicks where link_code = any($2::text[])
            ))
            union
            select applicant_id from attribution.applications
            where referrer_employee_id = any($3::text[])
            union
            select applicant_id from attribution.credits where employee_id = any($3::text[])
            """,
            settings.lookback,
            list(touched.link_codes),
            list(rings_changed),
            [c[0] for c in touched.clicks],
            [c[1] for c in touched.clicks],
            [c[2] for c in touched.clicks],
        )
        found |= {r["applicant_id"] for r in rows}
    return found


async def load_conversions(
    conn: Conn, applicant_ids: Iterable[str], settings: AttributionSettings
) -> list[Conversion]:
    """The touches and credit of these applicants, computed from the stored facts."""
    ids = sorted(set(applicant_ids))
    apps = {
        r["applicant_id"]: r
        for r in await conn.fetch(
            "select * from attribution.applications where applicant_id = any($1::text[])", ids
        )
    }
    hires = {
        r["applicant_id"]: r
        for r in await conn.fetch(
            "select * from attribution.hires where applicant_id = any($1::text[])", ids
        )
    }
    visitors = sorted({a["visitor_id"] for a in apps.values() if a["visitor_id"] is not None})
    clicks: dict[str, list[rules.Click]] = {}
    for r in await conn.fetch(
        "select c.visitor_id, c.at, c.link_code, l.employee_id from attribution.clicks c "
        "join attribution.links l using (link_code) where c.visitor_id = any($1::text[])",
        visitors,
    ):
        clicks.setdefault(r["visitor_id"], []).append(
            rules.Click(r["at"], r["link_code"], r["employee_id"])
        )
    codes = sorted({a["link_code"] for a in apps.values() if a["link_code"] is not None})
    links = {
        r["link_code"]: r["employee_id"]
        for r in await conn.fetch(
            "select link_code, employee_id from attribution.links "
            "where link_code = any($1::text[])",
            codes,
        )
    }
    out: list[Conversion] = []
    for applicant_id in ids:
        app, hire = apps.get(applicant_id), hires.get(applicant_id)
        if app is None and hire is None:
            continue
        found: list[rules.Touch] = []
        if app is not None:
            found = rules.touches(
                app["applied_at"],
                clicks.get(app["visitor_id"], []),
                app["link_code"],
                (app["link_code"] in links, links.get(app["link_code"])),
                app["referrer_employee_id"],
                settings.lookback,
            )
        credit: dict[Model, list[rules.CreditEntry]] = (
            rules.all_credit(found, app["applied_at"], settings.decay_half_life)
            if app is not None
            else {m: [] for m in MODELS}
        )
        out.append(
            Conversion(
                applicant_id,
                (app if app is not None else hire)["job_id"],  # type: ignore[index]
                None if app is None else app["applied_at"],
                None if hire is None else hire["hired_at"],
                found,
                credit,
            )
        )
    return out


async def ring_map(conn: Conn, employees: Iterable[str]) -> dict[str, int | None]:
    rows = await conn.fetch(
        "select employee_id, ring from attribution.placements where employee_id = any($1::text[])",
        sorted(set(employees)),
    )
    return {r["employee_id"]: r["ring"] for r in rows}


def shares(
    credit: dict[Model, list[rules.CreditEntry]], ring_of: dict[str, int | None]
) -> dict[Model, list[CreditShare]]:
    return {
        m: [
            CreditShare(employee_id=e, ring=0 if e is None else ring_of.get(e), weight=rules.rnd(w))
            for e, w in entries
        ]
        for m, entries in credit.items()
    }


async def _derive_conversions(
    conn: Conn,
    applicant_ids: set[str],
    settings: AttributionSettings,
    result: BatchResult,
    outbox: list[tuple[str, bytes]],
) -> list[Conversion]:
    """Re-derive touches and credit of these applicants; return those whose credit changed."""
    if not applicant_ids:
        return []
    conversions = await load_conversions(conn, applicant_ids, settings)
    employees = {e for c in conversions for es in c.credit.values() for e, _ in es if e}
    ring_of = await ring_map(conn, employees)
    digests = {
        r["applicant_id"]: (r["derived_digest"], r["applied_digest"], r["hired_digest"])
        for r in await conn.fetch(
            "select * from attribution.conversions where applicant_id = any($1::text[])",
            sorted(applicant_ids),
        )
    }
    changed: list[Conversion] = []
    rewrite: list[Conversion] = []  # changed touches or credit rows, not only rings
    digest_rows: list[tuple[str, str | None, str | None, str | None]] = []
    for conv in conversions:
        credit = shares(conv.credit, ring_of)
        derived = hashlib.sha256(
            _encode([[t.at, t.kind, t.employee_id, t.link_code] for t in conv.touches])
            + _encode(conv.credit)
        ).hexdigest()
        payloads: list[str | None] = [derived]
        for kind, at in (("applied", conv.applied_at), ("hired", conv.hired_at)):
            if at is None:
                payloads.append(None)
                continue
            data = CreditAssigned(
                applicant_id=conv.applicant_id,
                conversion=kind,  # type: ignore[arg-type]
                job_id=conv.job_id,
                at=at,
                credit=credit,
            )
            body = _encode(data)
            digest = hashlib.sha256(body).hexdigest()
            payloads.append(digest)
            if digests.get(conv.applicant_id, (None, None, None))[len(payloads) - 1] != digest:
                event = CreditAssignedEvent(
                    specversion="1.0",
                    id=f"credit-{digest[:40]}",
                    source=SOURCE,
                    time=datetime.now(UTC),
                    subject=conv.applicant_id,
                    data=data,
                )
                outbox.append((CREDITS.name, _encode(event)))
                result.credits_assigned += 1
        if tuple(payloads) != digests.get(conv.applicant_id):
            changed.append(conv)
            digest_rows.append((conv.applicant_id, *payloads))  # type: ignore[arg-type]
            # a ring that moved changes the payloads but not the stored touches and credit
            # (they hold no ring): those rows are rewritten only when they differ
            if derived != digests.get(conv.applicant_id, (None, None, None))[0]:
                rewrite.append(conv)
    if rewrite:
        ids = [c.applicant_id for c in rewrite]
        await conn.execute("delete from attribution.touches where applicant_id = any($1)", ids)
        await conn.execute("delete from attribution.credits where applicant_id = any($1)", ids)
        await conn.copy_records_to_table(
            "touches",
            schema_name="attribution",
            records=[
                (c.applicant_id, i, t.at, t.kind, t.employee_id, t.link_code)
                for c in rewrite
                for i, t in enumerate(c.touches)
            ],
        )
        await conn.copy_records_to_table(
            "credits",
            schema_name="attribution",
            records=[
                (c.applicant_id, m, e, w) for c in rewrite for m in MODELS for e, w in c.credit[m]
            ],
        )
    if changed:
        await conn.execute(
            "insert into attribution.conversions "
            "select * from unnest($1::text[], $2::text[], $3::text[], $4::text[]) "
            "on conflict (applicant_id) do update set "
            "derived_digest = excluded.derived_digest, "
            "applied_digest = excluded.applied_digest, hired_digest = excluded.hired_digest",
            *(list(column) for column in zip(*digest_rows, strict=True)),
        )
    return changed


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


# --- recognitions ---------------------------------------------------------------------------

Candidate = tuple[str, RecognitionKind, str, RecognitionFacts]


async def _recognitions(
    conn: Conn,
    touched: _Touched,
    ring_change: RingChange,
    changed: Sequence[Conversion],
) -> list[Candidate]:
    candidates: list[Candidate] = []
    if touched.posted_by or touched.metric_posts:
        rows = await conn.fetch(
            """
            with affected as (
                select employee_id from attribution.posts
                where post_id = any($1::text[]) and author_kind = 'employee'
                union
                select unnest($2::text[])
            )
            select p.employee_id, count(*) as n,
                   coalesce(sum(m.impressions), 0)::bigint as impressions,
                   min(p.published_at) as first_at,
                   max(coalesce(m.impressions_at, p.published_at)) as counted_at
            from attribution.posts p
            left join attribution.post_metrics m on m.post_id = p.post_id
            where p.author_kind = 'employee'
                and p.employee_id = any(array(select employee_id from affected))
            group by p.employee_id
            """,
            sorted(touched.metric_posts),
            sorted(touched.posted_by),
        )
        for r in rows:
            employee_id, posts, impressions = r["employee_id"], r["n"], r["impressions"]
            if employee_id in touched.posted_by:
                candidates.append(
                    (
                        f"first_post:{employee_id}",
                        "first_post",
                        employee_id,
                        RecognitionFacts(post_count=posts, achieved_at=r["first_at"]),
                    )
                )
            for threshold in rules.milestones_reached(impressions):
                candidates.append(
                    (
                        f"reach_milestone:{employee_id}:{threshold}",
                        "reach_milestone",
                        employee_id,
                        RecognitionFacts(
                            post_count=posts,
                            impressions=impressions,
                            threshold=threshold,
                            achieved_at=r["counted_at"],
                        ),
                    )
                )
    first: dict[str, Conversion] = {}  # the earliest application each employee earned
    for conv in changed:
        linear = [e for e, w in conv.credit["linear"] if e is not None and w > 0]
        for employee in linear:
            if conv.applied_at is not None:
                earlier = first.get(employee)
                if earlier is None or (earlier.applied_at or conv.applied_at) > conv.applied_at:
                    first[employee] = conv
            if conv.hired_at is not None:
                candidates.append(
                    (
                        f"hire:{employee}:{conv.applicant_id}",
                        "hire",
                        employee,
                        RecognitionFacts(job_id=conv.job_id, achieved_at=conv.hired_at),
                    )
                )
    for employee, conv in first.items():
        candidates.append(
            (
                f"first_applicant:{employee}",
                "first_applicant",
                employee,
                RecognitionFacts(job_id=conv.job_id, achieved_at=conv.applied_at),
            )
        )
    # No name in the event: topics outlive an erasure, and the notifier names the colleague
    # from its own employee records when it renders the message.
    shared_at = {}
    if ring_change.new_edges:  # the colleague's first share is when they were inspired
        shared_at = {
            r["employee_id"]: r["first_shared_at"]
            for r in await conn.fetch(
                "select employee_id, first_shared_at from attribution.placements "
                "where employee_id = any($1::text[])",
                sorted({c for _, c in ring_change.new_edges}),
            )
        }
    for inspirer, colleague in ring_change.new_edges:
        candidates.append(
            (
                f"inspired_colleague:{inspirer}:{colleague}",
                "inspired_colleague",
                inspirer,
                RecognitionFacts(colleague_id=colleague, achieved_at=shared_at.get(colleague)),
            )
        )
    return candidates


async def _emit_recognitions(
    conn: Conn,
    candidates: Sequence[Candidate],
    result: BatchResult,
    outbox: list[tuple[str, bytes]],
) -> None:
    if not candidates:
        return
    by_id = {c[0]: c for c in candidates}
    now = datetime.now(UTC)
    rows = await conn.fetch(
        "insert into attribution.recognitions "
        "select * from unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) "
        "on conflict do nothing returning recognition_id",
        list(by_id),
        [c[1] for c in by_id.values()],
        [c[2] for c in by_id.values()],
        [now] * len(by_id),
    )
    for row in sorted(rows, key=lambda r: str(r["recognition_id"])):
        recognition_id, kind, employee_id, facts = by_id[row["recognition_id"]]
        event = RecognitionDueEvent(
            specversion="1.0",
            id=recognition_id,
            source=SOURCE,
            time=now,
            data=RecognitionDue(
                recognition_id=recognition_id,
                kind=kind,
                employee_id=employee_id,
                due_at=now,
                facts=facts,
            ),
        )
        outbox.append((RECOGNITIONS.name, _encode(event)))
        result.recognitions[kind] += 1


# --- the batch --------------------------------------------------------------------------------


async def apply_batch(
    conn: Conn, events: Sequence[Envelope], settings: AttributionSettings
) -> BatchResult:
    """Store and derive one batch; call inside a transaction."""
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
    touched = await _store_facts(conn, fresh)
    ring_change = RingChange()
    if touched.ring_inputs:
        ring_change = await _derive_rings(conn, settings)
    outbox: list[tuple[str, bytes]] = []
    affected = await _affected_applicants(conn, touched, ring_change.changed, settings)
    erased = set(touched.erased)
    changed = await _derive_conversions(conn, affected, settings, result, outbox)
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
    candidates = await _recognitions(conn, touched, ring_change, changed)
    await _emit_recognitions(conn, candidates, result, outbox)
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
