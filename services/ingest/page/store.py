"""What the page and the overview read and write in ingest's PostgreSQL (migration 0008).

:func:`record` applies the employee and job events ingest accepted (on ``/v1/events``, the
imports and the page's own preference events), as the directory does: the latest CloudEvent
``time`` wins, per field for preferences; a removal deletes the employee's rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from shared.events import (
    EmployeePreferencesEvent,
    EmployeeRemovedEvent,
    EmployeeUpsertedEvent,
    Envelope,
    JobUpsertedEvent,
)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def record(conn: Any, events: Sequence[Envelope]) -> None:
    """Apply the employee events of an accepted request (names, preferences, removals)."""
    people = [
        (
            e.data.employee_id,
            e.data.display_name,
            e.data.ambassador,
            e.data.recognition_opt_out,
            e.time,
        )
        for e in events
        if isinstance(e, EmployeeUpsertedEvent)
    ]
    prefs = [
        (
            e.data.employee_id,
            e.data.locale,
            e.data.notify.channel if e.data.notify else None,
            e.data.notify.address if e.data.notify else None,
            e.data.notify is not None,
            e.data.recognition_opt_out,
            e.time,
        )
        for e in events
        if isinstance(e, EmployeePreferencesEvent)
    ]
    removals = [(e.data.employee_id, e.time) for e in events if isinstance(e, EmployeeRemovedEvent)]
    if people:
        await conn.executemany(
            "insert into ingest_people as p (employee_id, display_name, ambassador,"
            " recognition_opt_out, updated_at) values ($1, $2, $3, $4, $5)"
            " on conflict (employee_id) do update set display_name = excluded.display_name,"
            " ambassador = excluded.ambassador,"
            " recognition_opt_out = excluded.recognition_opt_out,"
            " updated_at = excluded.updated_at where p.updated_at <= excluded.updated_at",
            people,
        )
    if prefs:
        await conn.executemany(
            """insert into ingest_preferences as p (employee_id, locale, locale_at, channel,
                   address, notify_at, opt_out, opt_out_at)
               values ($1::text, $2::text,
                   case when $2::text is null then null else $7::timestamptz end,
                   $3::text, $4::text, case when $5::boolean then $7::timestamptz end,
                   $6::boolean, case when $6::boolean is null then null else $7::timestamptz end)
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
            prefs,
        )
    if removals:
        await conn.executemany(
            "delete from ingest_people where employee_id = $1 and updated_at <= $2", removals
        )
        await conn.executemany(
            "delete from ingest_preferences where employee_id = $1"
            " and greatest(locale_at, notify_at, opt_out_at) <= $2",
            removals,
        )
        await conn.executemany(  # handed out before the removal arrived: gone with it
            "delete from ingest_page_links where employee_id = $1", [(e,) for e, _ in removals]
        )


async def record_jobs(pool: asyncpg.Pool, events: Sequence[JobUpsertedEvent]) -> None:
    await pool.executemany(
        "insert into ingest_jobs as j (job_id, title, updated_at) values ($1, $2, $3)"
        " on conflict (job_id) do update set title = excluded.title,"
        " updated_at = excluded.updated_at where j.updated_at <= excluded.updated_at",
        [(e.data.job_id, e.data.title, e.time) for e in events],
    )


@dataclass(frozen=True)
class Me:
    """What the page shows of its employee, the preferences the employee set over HR's."""

    employee_id: str
    display_name: str | None
    locale: str
    channel: str | None
    address: str | None
    opt_out: bool


async def me(pool: asyncpg.Pool, employee_id: str) -> Me | None:
    row = await pool.fetchrow(
        """select e.employee_id, p.display_name, coalesce(f.locale, e.locale) as locale,
                  f.channel, f.address,
                  coalesce(f.opt_out, p.recognition_opt_out, false) as opt_out
           from ingest_employees e
           left join ingest_people p on p.employee_id = e.employee_id
           left join ingest_preferences f on f.employee_id = e.employee_id
           where e.employee_id = $1 and e.removed_at is null""",
        employee_id,
    )
    if row is None:
        return None
    return Me(
        row["employee_id"],
        row["display_name"],
        row["locale"] if row["locale"] in ("da", "en") else "en",
        row["channel"],
        row["address"],
        row["opt_out"],
    )


async def locale_of(pool: asyncpg.Pool, employee_id: str) -> str | None:
    value = await pool.fetchval(
        "select coalesce(f.locale, e.locale) from ingest_employees e left join"
        " ingest_preferences f using (employee_id) where e.employee_id = $1",
        employee_id,
    )
    return str(value) if value in ("da", "en") else None


async def jobs(pool: asyncpg.Pool, limit: int = 200) -> list[tuple[str, str | None]]:
    rows = await pool.fetch(
        "select job_id, title from ingest_jobs order by coalesce(title, job_id), job_id limit $1",
        limit,
    )
    return [(r["job_id"], r["title"]) for r in rows]


async def link_issued(
    pool: asyncpg.Pool, token: str, employee_id: str, expires_at: datetime
) -> None:
    await pool.execute(
        "insert into ingest_page_links (token_digest, employee_id, expires_at)"
        " values ($1, $2, $3) on conflict (token_digest) do nothing",
        digest(token),
        employee_id,
        expires_at,
    )


async def link_opened(
    pool: asyncpg.Pool, token: str, employee_id: str, expires_at: datetime
) -> None:
    """A page link was opened (one the notifier signed is recorded at its first opening)."""
    await pool.execute(
        "insert into ingest_page_links (token_digest, employee_id, expires_at, opened_at)"
        " values ($1, $2, $3, now()) on conflict (token_digest) do update"
        " set opened_at = coalesce(ingest_page_links.opened_at, now())",
        digest(token),
        employee_id,
        expires_at,
    )


async def my_link(pool: asyncpg.Pool, employee_id: str, code: str) -> tuple[str, str | None] | None:
    """(target, job title) of one of the employee's own links; None for anyone else's."""
    row = await pool.fetchrow(
        "select l.target_url, j.title, l.job_id from ingest_links l left join ingest_jobs j"
        " on j.job_id = l.job_id where l.link_code = $1 and l.employee_id = $2",
        code,
        employee_id,
    )
    if row is None:
        return None
    return row["target_url"], row["title"] or row["job_id"]


async def overview(pool: asyncpg.Pool, month_start: datetime) -> list[dict[str, Any]]:
    """One row per employee in the programme (known to ingest, not removed)."""
    rows = await pool.fetch(
        """select e.employee_id, p.display_name, coalesce(p.ambassador, false) as ambassador,
              f.channel as preferred_channel, f.notify_at is not null as channel_set,
              f.opt_out as preferred_opt_out,
              c.expires_at as linkedin_expires_at, c.revoked_at is not null as revoked,
              c.refresh_token is not null
                  and coalesce(c.refresh_expires_at > now(), true) as renewable,
              (select count(*) from ingest_linkedin_invitations i
                  where i.employee_id = e.employee_id) as invitations_sent,
              (select count(*) from ingest_linkedin_invitations i
                  where i.employee_id = e.employee_id and (i.used_at is not null
                  or exists (select 1 from ingest_linkedin_states s
                             where s.invitation_id = i.invitation_id))) as invitations_opened,
              (select count(*) from ingest_page_links g
                  where g.employee_id = e.employee_id) as page_links_sent,
              (select count(*) from ingest_page_links g
                  where g.employee_id = e.employee_id and g.opened_at is not null)
                  as page_links_opened,
              (select count(*) from ingest_linkedin_registered_posts r
                  where r.employee_id = e.employee_id and r.registered_at >= $1)
                  as posts_this_month,
              (select count(*) from ingest_links l where l.employee_id = e.employee_id)
                  as links_made,
              (select count(*) from ingest_links l
                  where l.employee_id = e.employee_id and l.created_at >= $1)
                  as links_this_month
           from ingest_employees e
           left join ingest_people p on p.employee_id = e.employee_id
           left join ingest_linkedin_connections c on c.employee_id = e.employee_id
           left join ingest_preferences f on f.employee_id = e.employee_id
           where e.removed_at is null
           order by coalesce(p.display_name, e.employee_id), e.employee_id""",
        month_start,
    )
    return [dict(row) for row in rows]
