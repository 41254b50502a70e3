"""Everything attribution derives from the stored facts, in the caller's transaction: rings
and inspirers (CONTRACT §2), touches and credit (§3), recognitions (§6).

Rings are derived one of two ways, with the same result (proved row for row by
``tests/attribution/test_incremental.py``):

- :func:`whole_network_rings` re-derives every employee from the facts: the reference, and
  what ``ripples recompute`` uses;
- :func:`incremental_rings` re-derives only what a batch can change: the employees whose own
  ring inputs it touched (:func:`ring_seeds`), then, by a bounded walk over the edges those
  employees reach, the colleagues exposed to the posts of an employee whose ring moved, and
  so on until no ring moves. Everyone else keeps the placement and inspirers stored for them,
  which equal what a whole-network derivation would give because none of their inputs (their
  own facts, the rings of the colleagues whose posts they saw) changed.

Conversions are re-derived for the applicants a batch can change (:func:`affected_applicants`),
recognitions for the employees and conversions it touched (:func:`recognitions`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from services.attribution import rules
from services.attribution.settings import AttributionSettings
from shared.events import (
    CREDITS,
    MODELS,
    RECOGNITIONS,
    CreditAssigned,
    CreditAssignedEvent,
    CreditShare,
    EmployeeRemoved,
    EmployeeUpserted,
    Envelope,
    Model,
    PostEngagement,
    PostMetrics,
    PostPublished,
    RecognitionDue,
    RecognitionDueEvent,
    RecognitionFacts,
    RecognitionKind,
)

if TYPE_CHECKING:
    from services.attribution.store import BatchResult, Conn

SOURCE = "urn:ripples:attribution"
_encode = msgspec.json.Encoder().encode

Derivation = Literal["incremental", "whole_network"]
"""How a batch derives the rings: only what it can change, or every employee (the
reference the incremental one is proved equal to)."""


# --- rings ----------------------------------------------------------------------------------

# Per employee with a first share, only the engagements inside its window (the index
# engagements_by_actor (actor_employee_id, at) bounds both ends) and the post at the first
# share; `offset 0` keeps the lateral subquery a per-employee index probe instead of a join
# over every engagement and post. `{only}` narrows it to some employees ($2).
_EXPOSURES = """
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
{only}
union all
select q.employee_id, p.employee_id, q.published_at, p.published_at, 'reshare'
from attribution.first_shares fs
join attribution.posts q on q.employee_id = fs.employee_id
    and q.published_at = fs.first_shared_at
join attribution.posts p on p.post_id = q.reshare_of and p.author_kind = 'employee'
where q.author_kind = 'employee'
    and p.published_at < q.published_at and p.employee_id <> q.employee_id
    {and_only}
"""
_ALL_EXPOSURES = _EXPOSURES.format(only="", and_only="")

# the exposures of some employees, with the stored ring of each exposure's author
_SOME_EXPOSURES = (
    "select x.*, pa.ring as author_ring from ("  # noqa: S608 - constant text
    + _EXPOSURES.format(
        only="where fs.employee_id = any($2::text[])",
        and_only="and fs.employee_id = any($2::text[])",
    )
    + ") x left join attribution.placements pa on pa.employee_id = x.author_id"
)

# What a batch's events can change about an employee's own ring inputs, beyond the employees
# they name ($1: employee records, post authors new and previous): engagements in the batch
# ($2 actors, $3 times) and stored engagements on the batch's posts ($4) that fall inside the
# actor's window, and stored first-share posts resharing the batch's posts. An engagement
# outside the actor's window is no exposure (the window follows the first share, which only
# moves when the actor's own posts do, and then the actor is in $1).
_SEEDS = """
select employee_id from unnest($1::text[]) as s(employee_id)
union
select b.actor from unnest($2::text[], $3::timestamptz[]) as b(actor, at)
join attribution.first_shares fs on fs.employee_id = b.actor
where b.at between fs.first_shared_at - $5::interval and fs.first_shared_at
union
select e.actor_employee_id from attribution.engagements e
join attribution.first_shares fs on fs.employee_id = e.actor_employee_id
where e.post_id = any($4::text[])
    and e.at between fs.first_shared_at - $5::interval and fs.first_shared_at
union
select q.employee_id from attribution.posts q
join attribution.first_shares fs on fs.employee_id = q.employee_id
    and fs.first_shared_at = q.published_at
where q.reshare_of = any($4::text[]) and q.author_kind = 'employee'
"""

# The colleagues whose exposures include a post of these employees ($1): the next step of
# the walk when their rings moved. Exactly the exposures of _EXPOSURES, seen from the author.
_DOWNSTREAM = """
select e.actor_employee_id as employee_id
from attribution.posts p
join attribution.engagements e on e.post_id = p.post_id
join attribution.first_shares fs on fs.employee_id = e.actor_employee_id
where p.employee_id = any($1::text[]) and p.author_kind = 'employee'
    and p.published_at < e.at and e.actor_employee_id <> p.employee_id
    and e.at between fs.first_shared_at - $2::interval and fs.first_shared_at
union
select q.employee_id
from attribution.posts p
join attribution.posts q on q.reshare_of = p.post_id and q.author_kind = 'employee'
join attribution.first_shares fs on fs.employee_id = q.employee_id
    and fs.first_shared_at = q.published_at
where p.employee_id = any($1::text[]) and p.author_kind = 'employee'
    and p.published_at < q.published_at and q.employee_id <> p.employee_id
"""

# Per employee: the inputs of its own placement (known, ambassador, first share) and the
# placement stored for it.
_NODES = """
select x.employee_id,
    coalesce(k.upsert_time is not null and k.ambassador, false) as ambassador,
    fs.first_shared_at, pl.employee_id is not null as placed, pl.ring,
    pl.first_shared_at as placed_first_shared_at
from unnest($1::text[]) as x(employee_id)
left join attribution.employees k on k.employee_id = x.employee_id
left join attribution.first_shares fs on fs.employee_id = x.employee_id
left join attribution.placements pl on pl.employee_id = x.employee_id
"""


@dataclass
class RingChange:
    changed: set[str] = field(default_factory=set)  # employees whose ring changed
    new_edges: list[tuple[str, str]] = field(default_factory=list)  # (inspirer, inspired)
    derived: int = 0  # employees whose placement was derived (all of them, or the walk's)
    steps: int = 0  # steps of the walk (0: whole network)


Place = tuple[int | None, datetime | None]
Edge = tuple[float, str, datetime]


async def previous_authors(conn: Conn, events: Sequence[Envelope]) -> list[str]:
    """The stored authors of the batch's posts, read before the batch stores them: a post
    re-published under another author (or as the company's) changes its previous author's
    first share and exposures too."""
    posts = [e.data.post_id for e in events if isinstance(e.data, PostPublished)]
    if not posts:
        return []
    rows = await conn.fetch(
        "select distinct employee_id from attribution.posts "
        "where post_id = any($1::text[]) and employee_id is not null",
        posts,
    )
    return [r["employee_id"] for r in rows]


async def ring_seeds(
    conn: Conn,
    events: Sequence[Envelope],
    previous: Iterable[str],
    settings: AttributionSettings,
) -> set[str]:
    """The employees whose own ring inputs a batch's (stored, fresh) events may have changed:
    its employee records, the authors of its posts (new and previous), the actors of its
    engagements and of stored engagements on its posts inside their windows, and the authors
    of first-share posts resharing its posts."""
    named: set[str] = set(previous)
    actors: list[str] = []
    times: list[datetime] = []
    posts: list[str] = []
    for event in events:
        data = event.data
        if isinstance(data, EmployeeUpserted | EmployeeRemoved):
            named.add(data.employee_id)
        elif isinstance(data, PostPublished):
            posts.append(data.post_id)
            if data.employee_id is not None:
                named.add(data.employee_id)
        elif isinstance(data, PostEngagement) and data.actor_employee_id is not None:
            actors.append(data.actor_employee_id)
            times.append(data.at)
    rows = await conn.fetch(
        _SEEDS, sorted(named), actors, times, sorted(set(posts)), settings.ring_window
    )
    return {r["employee_id"] for r in rows}


async def whole_network_rings(conn: Conn, settings: AttributionSettings) -> RingChange:
    """Re-derive the rings and inspirers of every employee from the stored facts (one pass in
    order of first share, :func:`rules.rings`); write only the rows that differ."""
    placed = await whole_network_placements(conn, settings)
    old_places: dict[str, Place] = {
        r["employee_id"]: (r["ring"], r["first_shared_at"])
        for r in await conn.fetch("select * from attribution.placements")
    }
    old_edges = await stored_edges(conn)
    change = await _write_rings(conn, placed, old_places, old_edges)
    change.derived = len(placed)
    return change


async def stored_edges(conn: Conn) -> dict[tuple[str, str], Edge]:
    return {
        (r["employee_id"], r["inspirer_id"]): (r["weight"], r["exposure"], r["exposed_at"])
        for r in await conn.fetch("select * from attribution.inspirers")
    }


async def whole_network_placements(
    conn: Conn, settings: AttributionSettings
) -> dict[str, rules.Placement]:
    """Every employee's placement and inspirers, derived from the stored facts."""
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
        for r in await conn.fetch(_ALL_EXPOSURES, settings.ring_window)
    ]
    return rules.rings(ambassadors, first, exposures, settings.ring_window, settings.ring_half_life)


async def incremental_rings(
    conn: Conn, seeds: Collection[str], settings: AttributionSettings
) -> RingChange:
    """Re-derive the rings and inspirers of ``seeds`` and of everyone downstream of a ring
    that moves, and nobody else; write only the rows that differ.

    The walk: derive the employees reached so far in order of first share (inspirers outside
    them keep their stored rings); for each whose ring differs from its stored one and was not
    followed yet, read the colleagues exposed to its posts inside their windows
    (:data:`_DOWNSTREAM`); add those not reached yet and derive again, until no step adds
    anyone. An inspirer's post precedes the exposure, which precedes the inspired employee's
    first share, so every step reaches only later first shares and the walk ends.
    """
    nodes: dict[str, Any] = {}  # employee → its _NODES row
    exposures: list[rules.Exposure] = []
    stored_rings: dict[str, int | None] = {}  # inspirers' stored rings
    followed: set[str] = set()
    frontier = set(seeds)
    change = RingChange()
    placed: dict[str, rules.Placement] = {}
    while frontier:
        change.steps += 1
        batch = sorted(frontier)
        for r in await conn.fetch(_NODES, batch):
            nodes[r["employee_id"]] = r
        for r in await conn.fetch(_SOME_EXPOSURES, settings.ring_window, batch):
            exposures.append(
                rules.Exposure(
                    r["employee_id"], r["author_id"], r["at"], r["published_at"], r["kind"]
                )
            )
            stored_rings[r["author_id"]] = r["author_ring"]
        placed = rules.rings(
            [e for e, n in nodes.items() if n["ambassador"]],
            {e: n["first_shared_at"] for e, n in nodes.items() if n["first_shared_at"]},
            exposures,
            settings.ring_window,
            settings.ring_half_life,
            {u: ring for u, ring in stored_rings.items() if u not in nodes},
        )
        moved = {
            e
            for e, n in nodes.items()
            if (n["ring"] if n["placed"] else None) != _ring(placed.get(e)) and e not in followed
        }
        followed |= moved
        frontier = set()
        if moved:
            rows = await conn.fetch(_DOWNSTREAM, sorted(moved), settings.ring_window)
            frontier = {r["employee_id"] for r in rows} - nodes.keys()
    if not nodes:
        return change
    old_places: dict[str, Place] = {
        e: (n["ring"], n["placed_first_shared_at"]) for e, n in nodes.items() if n["placed"]
    }
    old_edges: dict[tuple[str, str], Edge] = {
        (r["employee_id"], r["inspirer_id"]): (r["weight"], r["exposure"], r["exposed_at"])
        for r in await conn.fetch(
            "select * from attribution.inspirers where employee_id = any($1::text[])",
            sorted(nodes),
        )
    }
    derived = await _write_rings(conn, placed, old_places, old_edges)
    derived.derived, derived.steps = len(nodes), change.steps
    return derived


def _ring(placement: rules.Placement | None) -> int | None:
    return None if placement is None else placement.ring


async def _write_rings(
    conn: Conn,
    placed: dict[str, rules.Placement],
    old_places: dict[str, Place],
    old_edges: dict[tuple[str, str], Edge],
) -> RingChange:
    """Write the placements and inspirers that differ between the stored rows of the derived
    employees (``old_*``) and their derivation (``placed``)."""
    new_places: dict[str, Place] = {e: (p.ring, p.first_shared_at) for e, p in placed.items()}
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
    new_edges: dict[tuple[str, str], Edge] = {
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


async def affected_applicants(
    conn: Conn,
    applicants: Iterable[str],
    clicks: Sequence[tuple[str, datetime, str]],
    link_codes: Collection[str],
    rings_changed: Collection[str],
    settings: AttributionSettings,
) -> set[str]:
    """Applicants whose touches or credit the batch may change: their own events; a new
    click of their visitor on a known link within the lookback before the application (a
    click outside it, or on a link not yet known, is not a touch: a link that arrives later
    re-derives through its code); a new link their visitor clicked or their application names;
    a credited or referring employee whose ring changed."""
    found = set(applicants)
    if clicks or link_codes or rings_changed:
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
            list(link_codes),
            list(rings_changed),
            [c[0] for c in clicks],
            [c[1] for c in clicks],
            [c[2] for c in clicks],
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
    # each click's link by its primary key (`offset 0`: a hash join would read every link)
    for r in await conn.fetch(
        "select c.visitor_id, c.at, c.link_code, l.employee_id from attribution.clicks c "
        "cross join lateral (select employee_id from attribution.links l "
        "where l.link_code = c.link_code offset 0) l where c.visitor_id = any($1::text[])",
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
            all_credit(found, app["applied_at"], settings.decay_half_life)
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


def all_credit(
    found: Sequence[rules.Touch], applied_at: datetime, half_life: timedelta
) -> dict[Model, list[rules.CreditEntry]]:
    """:func:`rules.all_credit`, without its five passes when there is nothing to weigh: no
    touch gives every model no credit, one touch gives its party all of it (weight 1.0)
    under every model — exactly what the rules compute then (each model's only weight is 1,
    the time decay's ``w / w`` included). Most conversions have one touch (the referral);
    ``tests/attribution/test_incremental.py`` checks the two agree."""
    if not found:
        return {m: [] for m in MODELS}
    if len(found) == 1 and rules.decay(applied_at - found[0].at, half_life) > 0.0:
        return {m: [(found[0].employee_id, 1.0)] for m in MODELS}
    return rules.all_credit(found, applied_at, half_life)


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


def derived_digest(conv: Conversion) -> str:
    """The digest of a conversion's touch and credit rows (``conversions.derived_digest``)."""
    return hashlib.sha256(
        _encode([[t.at, t.kind, t.employee_id, t.link_code] for t in conv.touches])
        + _encode(conv.credit)
    ).hexdigest()


Digests = tuple[str | None, str | None, str | None]
"""(derived rows, last credit.assigned for the application, for the hire)."""


def conversion_outputs(
    conversions: Iterable[Conversion],
    ring_of: dict[str, int | None],
    digests: dict[str, Digests],
    result: BatchResult,
    outbox: list[tuple[str, bytes]],
) -> tuple[
    list[Conversion], list[Conversion], list[tuple[str, str | None, str | None, str | None]]
]:
    """For derived conversions and their stored digests: a ``credit.assigned`` in ``outbox``
    for each payload that changed; (the conversions whose digests changed, those whose touch
    and credit rows changed, the new digest rows of the first)."""
    changed: list[Conversion] = []
    rewrite: list[Conversion] = []  # changed touches or credit rows, not only rings
    digest_rows: list[tuple[str, str | None, str | None, str | None]] = []
    for conv in conversions:
        credit = shares(conv.credit, ring_of)
        derived = derived_digest(conv)
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
    return changed, rewrite, digest_rows


async def derive_conversions(
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
    changed, rewrite, digest_rows = conversion_outputs(
        conversions, ring_of, digests, result, outbox
    )
    if rewrite:
        # an applicant without a stored conversion row has no touch or credit rows either
        # (they are written together): only the others' rows are looked up to be replaced
        ids = [c.applicant_id for c in rewrite if c.applicant_id in digests]
        if ids:
            await conn.execute("delete from attribution.touches where applicant_id = any($1)", ids)
            await conn.execute("delete from attribution.credits where applicant_id = any($1)", ids)
        await copy_touches_and_credits(conn, rewrite)
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


# --- recognitions ---------------------------------------------------------------------------

Candidate = tuple[str, RecognitionKind, str, RecognitionFacts]


@dataclass(frozen=True)
class Totals:
    """What the recognitions need of an employee's posts (``attribution.author_totals``)."""

    posts: int
    impressions: int
    first_at: datetime
    counted_at: datetime  # the latest impressions reading, or post, counted


Contribution = tuple[str, datetime, int, datetime]
"""What one post adds to its author's totals: (author, published_at, impressions, the time
its impressions were read, else published_at)."""

TotalsChange = dict[str, tuple[Totals | None, Totals | None]]
"""Per employee whose totals a batch changed: (before, after); None = no posts."""

# The totals of some employees ($1), summed over all their posts: the reference, and what an
# employee gets whose extreme (first post, latest count) a batch may have taken away.
_TOTALS = """
select p.employee_id, count(*) as posts, coalesce(sum(m.impressions), 0)::bigint as impressions,
    min(p.published_at) as first_at, max(coalesce(m.impressions_at, p.published_at)) as counted_at
from attribution.posts p
left join lateral (
    select impressions, impressions_at from attribution.post_metrics m
    where m.post_id = p.post_id offset 0
) m on true
where p.author_kind = 'employee' and p.employee_id = any($1::text[])
group by p.employee_id
"""

# per post by primary keys (`offset 0`: a join the planner may hash reads every metric row)
_CONTRIBUTIONS = """
select p.post_id, p.employee_id, p.published_at, coalesce(m.impressions, 0) as impressions,
    coalesce(m.impressions_at, p.published_at) as counted_at
from attribution.posts p
left join lateral (
    select impressions, impressions_at from attribution.post_metrics m
    where m.post_id = p.post_id offset 0
) m on true
where p.post_id = any($1::text[]) and p.author_kind = 'employee' and p.employee_id is not null
"""


def touched_posts(events: Iterable[Envelope]) -> list[str]:
    """The posts whose contribution to their author's totals a batch may change: those it
    publishes (again) and those it brings metrics for."""
    return sorted(
        {e.data.post_id for e in events if isinstance(e.data, PostPublished | PostMetrics)}
    )


async def contributions(conn: Conn, posts: Sequence[str]) -> dict[str, Contribution]:
    """What each of these posts adds to its author's totals now (read before a batch stores
    its facts, and after)."""
    if not posts:
        return {}
    return {
        r["post_id"]: (r["employee_id"], r["published_at"], r["impressions"], r["counted_at"])
        for r in await conn.fetch(_CONTRIBUTIONS, posts)
    }


def _totals(row: Any) -> Totals:
    return Totals(row["posts"], row["impressions"], row["first_at"], row["counted_at"])


async def update_author_totals(
    conn: Conn, posts: Sequence[str], before: dict[str, Contribution] | None
) -> TotalsChange | None:
    """Bring ``attribution.author_totals`` up to date after a batch stored its facts.

    With the contributions of the batch's posts read ``before`` it stored them, only their
    authors (before and after) change: each post's old contribution comes off, its new one
    goes on. Counts and sums follow exactly; the first post and the latest count follow as a
    minimum and a maximum, except where the post that held an employee's extreme let go of
    it (moved to someone else or later, or its count moved earlier: metrics read before the
    post's own time): only then may the extreme have gone with it, and that employee is
    summed again from all their posts (``_TOTALS``). Returns each changed employee's totals
    before and after.

    ``before`` None: the reference (``derivation="whole_network"``): the whole table is
    summed again from every post; returns None."""
    if not posts:
        return {} if before is not None else None
    if before is None:
        await conn.execute(
            "delete from attribution.author_totals; "
            "insert into attribution.author_totals "
            "select p.employee_id, count(*), coalesce(sum(m.impressions), 0), "
            "min(p.published_at), max(coalesce(m.impressions_at, p.published_at)) "
            "from attribution.posts p "
            "left join attribution.post_metrics m on m.post_id = p.post_id "
            "where p.author_kind = 'employee' and p.employee_id is not null "
            "group by p.employee_id"
        )
        return None
    after = await contributions(conn, posts)
    moved = [(before.get(p), after.get(p)) for p in posts if before.get(p) != after.get(p)]
    if not moved:
        return {}
    employees = sorted({c[0] for pair in moved for c in pair if c is not None})
    old = {
        r["employee_id"]: _totals(r)
        for r in await conn.fetch(
            "select * from attribution.author_totals where employee_id = any($1::text[])",
            employees,
        )
    }
    count = {e: 0 if e not in old else old[e].posts for e in employees}
    reach = {e: 0 if e not in old else old[e].impressions for e in employees}
    first = {e: old[e].first_at for e in old}
    counted = {e: old[e].counted_at for e in old}
    again: set[str] = set()  # employees summed again from all their posts
    for b, a in moved:
        if b is not None:
            count[b[0]] -= 1
            reach[b[0]] -= b[2]
            kept = a if a is not None and a[0] == b[0] else None  # still the same author's
            was = old.get(b[0])
            if (
                was is None  # (no totals for a stored post: sum them)
                or (b[1] <= was.first_at and (kept is None or kept[1] > b[1]))
                or (b[3] >= was.counted_at and (kept is None or kept[3] < b[3]))
            ):
                again.add(b[0])  # it held the first post or the latest count, and let go
        if a is not None:
            count[a[0]] += 1
            reach[a[0]] += a[2]
            first[a[0]] = min(first.get(a[0], a[1]), a[1])
            counted[a[0]] = max(counted.get(a[0], a[3]), a[3])
    new: dict[str, Totals | None] = {
        e: Totals(count[e], reach[e], first[e], counted[e]) if count[e] else None
        for e in employees
        if e not in again
    }
    if again:
        summed = {r["employee_id"]: _totals(r) for r in await conn.fetch(_TOTALS, sorted(again))}
        new |= {e: summed.get(e) for e in again}
    change: TotalsChange = {e: (old.get(e), t) for e, t in new.items() if old.get(e) != t}
    gone = sorted(e for e, (_, t) in change.items() if t is None)
    rows = [(e, t.posts, t.impressions, t.first_at, t.counted_at)
            for e, (_, t) in sorted(change.items()) if t is not None]  # fmt: skip
    if gone:
        await conn.execute(
            "delete from attribution.author_totals where employee_id = any($1::text[])", gone
        )
    if rows:
        await conn.execute(
            "insert into attribution.author_totals select * from unnest($1::text[], "
            "$2::bigint[], $3::bigint[], $4::timestamptz[], $5::timestamptz[]) "
            "on conflict (employee_id) do update set posts = excluded.posts, "
            "impressions = excluded.impressions, first_at = excluded.first_at, "
            "counted_at = excluded.counted_at",
            *(list(column) for column in zip(*rows, strict=True)),
        )
    return change


def _post_candidates(
    employee_id: str, totals: Totals, first_post: bool, above: int = -1
) -> list[Candidate]:
    """An employee's ``first_post`` (when asked) and the reach milestones their impressions
    reach above ``above``."""
    out: list[Candidate] = []
    if first_post:
        out.append(
            (
                f"first_post:{employee_id}",
                "first_post",
                employee_id,
                RecognitionFacts(post_count=totals.posts, achieved_at=totals.first_at),
            )
        )
    for threshold in rules.milestones_reached(totals.impressions):
        if threshold > above:
            out.append(
                (
                    f"reach_milestone:{employee_id}:{threshold}",
                    "reach_milestone",
                    employee_id,
                    RecognitionFacts(
                        post_count=totals.posts,
                        impressions=totals.impressions,
                        threshold=threshold,
                        achieved_at=totals.counted_at,
                    ),
                )
            )
    return out


async def recognitions(
    conn: Conn,
    posted_by: Collection[str],
    metric_posts: Collection[str],
    ring_change: RingChange,
    changed: Sequence[Conversion],
    totals: TotalsChange | None = None,
) -> list[Candidate]:
    """The recognitions a batch may have made due (the ledger keeps each once).

    ``first_post`` and ``reach_milestone``: with the batch's ``totals`` change
    (:func:`update_author_totals`), only what it can have made due: a ``first_post`` for an
    employee who had no post before, and the milestones above an employee's impressions
    before. Every other one their totals reach was due, and is in the ledger, since the
    batch that reached it (totals only rise by a post or metrics of the employee's own, which
    make them a candidate then). Without (the reference and the first version): every
    employee who posted or whose post got metrics is a candidate for every milestone their
    totals reach, summed over all their posts."""
    candidates: list[Candidate] = []
    if totals is not None:
        for employee_id, (old, new) in sorted(totals.items()):
            if new is not None:
                candidates += _post_candidates(
                    employee_id,
                    new,
                    old is None and employee_id in posted_by,
                    -1 if old is None else old.impressions,
                )
    elif posted_by or metric_posts:
        rows = await conn.fetch(
            """
            with affected as (
                select employee_id from attribution.posts
                where post_id = any($1::text[]) and author_kind = 'employee'
                union
                select unnest($2::text[])
            )
            select p.employee_id, count(*) as posts,
                   coalesce(sum(m.impressions), 0)::bigint as impressions,
                   min(p.published_at) as first_at,
                   max(coalesce(m.impressions_at, p.published_at)) as counted_at
            from attribution.posts p
            left join attribution.post_metrics m on m.post_id = p.post_id
            where p.author_kind = 'employee'
                and p.employee_id = any(array(select employee_id from affected))
            group by p.employee_id
            """,
            sorted(metric_posts),
            sorted(posted_by),
        )
        for r in rows:
            employee_id = r["employee_id"]
            candidates += _post_candidates(employee_id, _totals(r), employee_id in posted_by)
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


async def emit_recognitions(
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


async def copy_touches_and_credits(
    conn: Conn, conversions: Sequence[Conversion], prefix: str = ""
) -> None:
    """COPY the touches and the credit of every model of ``conversions`` into
    ``attribution.{prefix}touches`` and ``attribution.{prefix}credits`` (``next_`` while a
    recompute builds its tables)."""
    await conn.copy_records_to_table(
        f"{prefix}touches",
        schema_name="attribution",
        records=[
            (c.applicant_id, i, t.at, t.kind, t.employee_id, t.link_code)
            for c in conversions
            for i, t in enumerate(c.touches)
        ],
    )
    await conn.copy_records_to_table(
        f"{prefix}credits",
        schema_name="attribution",
        records=[
            (c.applicant_id, m, e, w) for c in conversions for m in MODELS for e, w in c.credit[m]
        ],
    )
