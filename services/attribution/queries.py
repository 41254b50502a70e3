"""The `/v1` answers (CONTRACT §4, §5, §7), computed at query time from the stored facts and
the derived tables, in one read-only snapshot. Lists come sorted and floats rounded, so the
same facts always give byte-identical answers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.attribution import evidence, rules
from services.attribution.settings import AttributionSettings
from services.attribution.store import Conn
from shared.events import MODELS, Model

_PERIOD = (
    "(${a}::timestamptz is null or {col} >= ${a}) and (${b}::timestamptz is null or {col} < ${b})"
)


def in_period(column: str, first: int = 1) -> str:
    """SQL: ``column`` in [$first, $first+1), either end open when null."""
    return _PERIOD.format(a=first, b=first + 1, col=column)


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Period:
    start: datetime | None = None
    end: datetime | None = None

    def contains(self, t: datetime | None) -> bool:
        return (
            t is not None
            and (self.start is None or t >= self.start)
            and (self.end is None or t < self.end)
        )

    def as_dict(self) -> dict[str, str | None]:
        return {"from": rfc3339(self.start), "to": rfc3339(self.end)}


def _party_key(employee_id: str | None) -> tuple[int, str]:
    return (0, "") if employee_id is None else (1, employee_id)


def ring_key(employee_id: str | None, ring_of: dict[str, int | None]) -> str:
    if employee_id is None:
        return "0"
    ring = ring_of.get(employee_id)
    return "independent" if ring is None else str(ring)


def _sum(values: Iterable[float]) -> float:
    return rules.rnd(sum(sorted(values)))


async def _placements(conn: Conn) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "select employee_id, ring, first_shared_at from attribution.placements "
            "order by employee_id"
        )
    )


_POSTS = f"""
select p.post_id, p.author_kind, p.employee_id, p.published_at,
       coalesce(m.impressions, 0) as impressions, coalesce(m.reactions, 0) as reactions,
       coalesce(m.comments, 0) as comments, coalesce(m.reshares, 0) as reshares,
       coalesce(m.clicks, 0) as clicks, p.origin
from attribution.posts p left join attribution.post_metrics m using (post_id)
where {in_period("p.published_at")}
order by p.post_id
"""  # noqa: S608

_CREDIT = f"""
select c.employee_id, c.weight, a.job_id from attribution.credits c
join attribution.applications a using (applicant_id)
where c.model = $3 and {in_period("a.applied_at")}
union all
select c.employee_id, c.weight, x.job_id from attribution.erased_credits c
join attribution.erased_conversions x using (conversion_id)
where c.model = $3 and {in_period("x.applied_at")}
"""  # noqa: S608

_HIRE_CREDIT = f"""
select c.employee_id, c.weight from attribution.credits c
join attribution.hires h using (applicant_id)
where c.model = $3 and {in_period("h.hired_at")}
union all
select c.employee_id, c.weight from attribution.erased_credits c
join attribution.erased_conversions x using (conversion_id)
where c.model = $3 and x.hired_at is not null and {in_period("x.hired_at")}
"""  # noqa: S608

_APPLICANTS = f"""
select exists(select 1 from attribution.touches t where t.applicant_id = a.applicant_id)
       as attributed, a.job_id
from attribution.applications a where {in_period("a.applied_at")}
union all
select attributed, job_id from attribution.erased_conversions x
where x.applied_at is not null and {in_period("x.applied_at")}
"""  # noqa: S608

_HIRES = f"""
select exists(select 1 from attribution.touches t where t.applicant_id = h.applicant_id)
       as attributed
from attribution.hires h where {in_period("h.hired_at")}
union all
select attributed from attribution.erased_conversions x
where x.hired_at is not null and {in_period("x.hired_at")}
"""  # noqa: S608

_POPULATION = """
select employee_id from attribution.employees
where upsert_time is not null and not ambassador
  and (removed_time is null or upsert_time > removed_time)
"""

# exposures as in §2 to posts of ringed colleagues, from - window <= x < to
_EXPOSURES = """
select e.actor_employee_id as employee_id, e.at
from attribution.engagements e
join attribution.posts p on p.post_id = e.post_id and p.author_kind = 'employee'
join attribution.placements r on r.employee_id = p.employee_id and r.ring is not null
where p.published_at < e.at and p.employee_id <> e.actor_employee_id
  and ($1::timestamptz is null or e.at >= $1) and ($2::timestamptz is null or e.at < $2)
union all
select q.employee_id, q.published_at
from attribution.posts q
join attribution.posts p on p.post_id = q.reshare_of and p.author_kind = 'employee'
join attribution.placements r on r.employee_id = p.employee_id and r.ring is not null
where q.author_kind = 'employee' and p.published_at < q.published_at
  and p.employee_id <> q.employee_id
  and ($1::timestamptz is null or q.published_at >= $1)
  and ($2::timestamptz is null or q.published_at < $2)
"""


def _by_ring(
    rows: Iterable[asyncpg.Record], ring_of: dict[str, int | None], max_ring: int
) -> dict[str, float]:
    sums: dict[str, list[float]] = {str(k): [] for k in range(max_ring + 1)}
    sums["independent"] = []
    for row in rows:
        sums.setdefault(ring_key(row["employee_id"], ring_of), []).append(row["weight"])
    return {k: _sum(v) for k, v in sums.items()}


async def summary(
    conn: Conn, period: Period, model: Model, settings: AttributionSettings
) -> dict[str, Any]:
    placements = await _placements(conn)
    ring_of = {r["employee_id"]: r["ring"] for r in placements}
    first = {r["employee_id"]: r["first_shared_at"] for r in placements if r["first_shared_at"]}
    max_ring = max([1, *(r["ring"] for r in placements if r["ring"] is not None)])
    post_rows = await conn.fetch(_POSTS, *_ends(period))
    origin_of = {r["post_id"]: r["origin"] for r in post_rows}
    posts = [rules.PostFigures(**{k: v for k, v in r.items() if k != "origin"}) for r in post_rows]
    groups = rules.reach(posts, ring_of)
    employee_posts = [p for p in posts if p.author_kind == "employee"]
    application_rows = await conn.fetch(_APPLICANTS, *_ends(period))
    applicants = [r["attributed"] for r in application_rows]
    hires = [r["attributed"] for r in await conn.fetch(_HIRES, *_ends(period))]
    credit = await conn.fetch(_CREDIT, *_ends(period), model)
    hire_credit = await conn.fetch(_HIRE_CREDIT, *_ends(period), model)
    population = [r["employee_id"] for r in await conn.fetch(_POPULATION)]
    lower = rules.window_start(period.start, settings.ring_window)
    exposures: dict[str, list[datetime]] = {}
    for row in await conn.fetch(_EXPOSURES, lower, period.end):
        exposures.setdefault(row["employee_id"], []).append(row["at"])
    spill = rules.spillover(
        population, first, ring_of, exposures, period.start, period.end, settings.ring_window
    )
    sharers_per_ring: dict[int, int] = {}
    for r in placements:
        shared = r["first_shared_at"]
        if (
            r["ring"] is not None
            and shared is not None
            and (period.end is None or shared < period.end)
        ):
            sharers_per_ring[r["ring"]] = sharers_per_ring.get(r["ring"], 0) + 1
    credit_by_ring = _by_ring(credit, ring_of, max_ring)
    boot = evidence.Bootstrap(
        settings.bootstrap_samples, settings.bootstrap_seed, settings.bootstrap_level
    )
    reach_ratio = rules.reach_ratio(groups)
    lift_interval, baseline_interval = evidence.spillover_intervals(
        spill.exposed,
        spill.inspired,
        spill.unexposed,
        spill.adopters_unexposed,
        spill.lift,
        spill.baseline_adjusted,
        boot,
    )
    activity: dict[str, tuple[int, int]] = {}
    for p in employee_posts:
        if p.employee_id is not None:
            n, total = activity.get(p.employee_id, (0, 0))
            activity[p.employee_id] = (n + 1, total + p.impressions)
    followers = {
        r["employee_id"]: r["followers"]
        for r in await conn.fetch(
            "select employee_id, followers from attribution.employees "
            "where employee_id = any($1::text[]) and upsert_time is not null",
            sorted(activity),
        )
    }
    ambassador_credit: dict[str, list[float]] = {}
    for row in credit:
        if row["employee_id"] is not None and ring_of.get(row["employee_id"]) == 1:
            ambassador_credit.setdefault(row["employee_id"], []).append(row["weight"])
    jobs = {
        r["job_id"]: evidence.Job(r["family"], r["hard_to_recruit"])
        for r in await conn.fetch("select job_id, family, hard_to_recruit from attribution.jobs")
    }
    return {
        "period": period.as_dict(),
        "model": model,
        "company": groups["company"].as_dict(),
        "ambassadors": groups["ambassadors"].as_dict(),
        "spillover": groups["spillover"].as_dict(with_sharers=True),
        "independent": groups["independent"].as_dict(),
        "reach_ratio": reach_ratio,
        "applicants": {
            "total": len(applicants),
            "attributed": sum(applicants),
            "unattributed": len(applicants) - sum(applicants),
            "credit_by_ring": credit_by_ring,
            "jobs": evidence.job_families(
                [(r["job_id"], r["attributed"]) for r in application_rows],
                [(r["job_id"], ring_key(r["employee_id"], ring_of), r["weight"]) for r in credit],
                jobs,
                list(credit_by_ring),
            ),
        },
        "hires": {
            "total": len(hires),
            "attributed": sum(hires),
            "credit_by_ring": _by_ring(hire_credit, ring_of, max_ring),
        },
        "emv": {
            "currency": settings.currency,
            "value": rules.emv(
                sum(p.impressions for p in employee_posts),
                sum(p.clicks for p in employee_posts),
                settings.cpm,
                settings.cpc,
            ),
        },
        "ripples": {
            "rings": [
                {"ring": k, "sharers": sharers_per_ring[k]} for k in sorted(sharers_per_ring)
            ],
            "inspired": spill.inspired,
            "expected_by_chance": spill.expected_by_chance,
            "baseline_adjusted": spill.baseline_adjusted,
            "lift": spill.lift,
        },
        "uncertainty": {
            "method": "bootstrap",
            "level": boot.level,
            "samples": boot.samples,
            "seed": boot.seed,
            "reach_ratio": evidence.reach_ratio_interval(
                [p.impressions for p in posts if rules.group_of(p, ring_of) == "ambassadors"],
                [p.impressions for p in posts if p.author_kind == "company"],
                reach_ratio,
                boot,
            ),
            "lift": lift_interval,
            "baseline_adjusted": baseline_interval,
        },
        "content_origin": evidence.content_origin(
            [(origin_of[p.post_id], p.impressions) for p in employee_posts], boot
        ),
        "drivers": evidence.drivers(activity, followers),
        # an extension of §10 (issue 17 part 4), labelled an estimate with its assumptions
        "scale_up": evidence.scale_up(
            [
                (activity.get(e, (0, 0))[1], _sum(ambassador_credit.get(e, [])))
                for e in sorted(e for e, ring in ring_of.items() if ring == 1)
            ],
            settings.scale_up_ambassadors,
            boot,
        ),
    }


def _ends(period: Period) -> tuple[datetime | None, datetime | None]:
    return period.start, period.end


async def sharers(
    conn: Conn, period: Period, model: Model, only: str | None = None
) -> list[dict[str, Any]]:
    """CONTRACT §7 `/v1/sharers` (or the one entry of ``only``)."""
    placements = await _placements(conn)
    ring_of = {r["employee_id"]: r["ring"] for r in placements}
    figures: dict[str, dict[str, int]] = {}
    for row in await conn.fetch(_POSTS, *_ends(period)):
        if row["author_kind"] != "employee" or row["employee_id"] is None:
            continue
        entry = figures.setdefault(
            row["employee_id"],
            dict.fromkeys(
                ("posts", "impressions", "reactions", "comments", "reshares", "clicks"), 0
            ),
        )
        entry["posts"] += 1
        for name in ("impressions", "reactions", "comments", "reshares", "clicks"):
            entry[name] += row[name]
    applicant_credit: dict[str, list[float]] = {}
    for row in await conn.fetch(_CREDIT, *_ends(period), model):
        if row["employee_id"] is not None:
            applicant_credit.setdefault(row["employee_id"], []).append(row["weight"])
    hire_credit: dict[str, list[float]] = {}
    for row in await conn.fetch(_HIRE_CREDIT, *_ends(period), model):
        if row["employee_id"] is not None:
            hire_credit.setdefault(row["employee_id"], []).append(row["weight"])
    inspired: dict[str, list[str]] = {}
    first = {r["employee_id"]: r["first_shared_at"] for r in placements}
    for row in await conn.fetch(
        "select employee_id, inspirer_id from attribution.inspirers "
        "order by inspirer_id, employee_id"
    ):
        if period.contains(first.get(row["employee_id"])):
            inspired.setdefault(row["inspirer_id"], []).append(row["employee_id"])
    credited = {e for e, ws in applicant_credit.items() if _sum(ws) > 0} | {
        e for e, ws in hire_credit.items() if _sum(ws) > 0
    }
    members = set(figures) | credited
    if only is not None:
        members = {only}
    names = {
        r["employee_id"]: r["display_name"]
        for r in await conn.fetch(
            "select employee_id, display_name from attribution.employees "
            "where employee_id = any($1::text[])",
            sorted(members),
        )
    }
    empty = dict.fromkeys(
        ("posts", "impressions", "reactions", "comments", "reshares", "clicks"), 0
    )
    out: list[dict[str, Any]] = [
        {
            "employee_id": e,
            "display_name": names.get(e),
            "ring": ring_of.get(e),
            **figures.get(e, empty),
            "applicant_credit": _sum(applicant_credit.get(e, [])),
            "hire_credit": _sum(hire_credit.get(e, [])),
            "inspired": inspired.get(e, []),
        }
        for e in members
    ]
    out.sort(
        key=lambda s: (-float(s["applicant_credit"]), -int(s["impressions"]), str(s["employee_id"]))
    )
    return out


async def display_names(conn: Conn, employee_ids: list[str]) -> dict[str, str | None]:
    """Display names as `/v1/sharers` gives them (None: removed, its personal fields gone)."""
    return {
        r["employee_id"]: r["display_name"]
        for r in await conn.fetch(
            "select employee_id, display_name from attribution.employees "
            "where employee_id = any($1::text[])",
            sorted(set(employee_ids)),
        )
    }


async def known_employee(conn: Conn, employee_id: str) -> bool:
    found: bool = await conn.fetchval(
        """select exists(select 1 from attribution.employees where employee_id = $1)
               or exists(select 1 from attribution.placements where employee_id = $1)
               or exists(select 1 from attribution.posts where employee_id = $1)
               or exists(select 1 from attribution.credits where employee_id = $1)
               or exists(select 1 from attribution.erased_credits where employee_id = $1)""",
        employee_id,
    )
    return found


async def conversion(conn: Conn, applicant_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "select coalesce(a.job_id, h.job_id) as job_id, a.applied_at, h.hired_at "
        "from attribution.applications a full join attribution.hires h using (applicant_id) "
        "where coalesce(a.applicant_id, h.applicant_id) = $1",
        applicant_id,
    )
    if row is None:
        return None
    touches = await conn.fetch(
        "select at, kind, employee_id, link_code from attribution.touches "
        "where applicant_id = $1 order by position",
        applicant_id,
    )
    credit_rows = await conn.fetch(
        "select c.model, c.employee_id, c.weight, r.ring from attribution.credits c "
        "left join attribution.placements r using (employee_id) where c.applicant_id = $1",
        applicant_id,
    )
    credit: dict[str, list[dict[str, Any]]] = {m: [] for m in MODELS}
    for r in sorted(credit_rows, key=lambda r: (r["model"], _party_key(r["employee_id"]))):
        credit[r["model"]].append(
            {
                "employee_id": r["employee_id"],
                "ring": 0 if r["employee_id"] is None else r["ring"],
                "weight": rules.rnd(r["weight"]),
            }
        )
    return {
        "applicant_id": applicant_id,
        "job_id": row["job_id"],
        "applied_at": rfc3339(row["applied_at"]),
        "hired_at": rfc3339(row["hired_at"]),
        "touches": [
            {
                "at": rfc3339(t["at"]),
                "kind": t["kind"],
                "employee_id": t["employee_id"],
                "link_code": t["link_code"],
            }
            for t in touches
        ],
        "credit": credit,
    }


async def ripples(conn: Conn) -> dict[str, Any]:
    nodes = [
        {
            "employee_id": r["employee_id"],
            "ring": r["ring"],
            "first_shared_at": rfc3339(r["first_shared_at"]),
        }
        for r in await _placements(conn)
    ]
    edges = [
        {
            "from": r["inspirer_id"],
            "to": r["employee_id"],
            "weight": r["weight"],
            "exposure": r["exposure"],
            "exposed_at": rfc3339(r["exposed_at"]),
        }
        for r in await conn.fetch(
            "select * from attribution.inspirers order by employee_id, inspirer_id"
        )
    ]
    return {"nodes": nodes, "edges": edges}


# --- the employee's own figures (TEAM.md "My ripples figures", CONTRACT §11 v1.1) ------------

MY_RIPPLES_DAYS = 90
"""The default period of `/v1/employees/{employee_id}/ripples`: this many days ending now."""

_MY_POSTS = f"""
select p.post_id, p.published_at, p.origin,
       coalesce(m.impressions, 0) as impressions, coalesce(m.reactions, 0) as reactions,
       coalesce(m.comments, 0) as comments, coalesce(m.reshares, 0) as reshares,
       coalesce(m.clicks, 0) as clicks
from attribution.posts p left join attribution.post_metrics m using (post_id)
where p.employee_id = $3 and p.author_kind = 'employee' and {in_period("p.published_at")}
order by p.published_at, p.post_id
"""  # noqa: S608

# one row per conversion of the period with this employee's weight under the model (erased
# applicants' conversions included as the anonymous numbers they became)
_MY_CREDIT = f"""
select 'applied' as conversion, c.weight from attribution.credits c
join attribution.applications a using (applicant_id)
where c.employee_id = $3 and c.model = $4 and {in_period("a.applied_at")}
union all
select 'hired', c.weight from attribution.credits c
join attribution.hires h using (applicant_id)
where c.employee_id = $3 and c.model = $4 and {in_period("h.hired_at")}
union all
select 'applied', c.weight from attribution.erased_credits c
join attribution.erased_conversions x using (conversion_id)
where c.employee_id = $3 and c.model = $4 and x.applied_at is not null
  and {in_period("x.applied_at")}
union all
select 'hired', c.weight from attribution.erased_credits c
join attribution.erased_conversions x using (conversion_id)
where c.employee_id = $3 and c.model = $4 and x.hired_at is not null
  and {in_period("x.hired_at")}
"""  # noqa: S608

# the colleagues downstream of this employee along the inspirer edges, each at its shortest
# distance (1 = named this employee as inspirer), counted when its first share is in the
# period; the edges form no cycle (an inspirer shared before the colleague it inspired)
_MY_INSPIRED = f"""
with recursive downstream(employee_id, depth) as (
    select employee_id, 1 from attribution.inspirers where inspirer_id = $3
    union
    select i.employee_id, d.depth + 1
    from downstream d join attribution.inspirers i on i.inspirer_id = d.employee_id
)
select d.depth, count(*)::int as colleagues
from (select employee_id, min(depth) as depth from downstream group by employee_id) d
join attribution.placements p using (employee_id)
where {in_period("p.first_shared_at")}
group by d.depth
order by d.depth
"""  # noqa: S608


def _credited(rows: Iterable[asyncpg.Record], conversion: str) -> dict[str, Any]:
    weights = [r["weight"] for r in rows if r["conversion"] == conversion and r["weight"] > 0]
    return {"attributed": len(weights), "credit": _sum(weights)}


async def my_ripples(
    conn: Conn, employee_id: str, period: Period, model: Model, settings: AttributionSettings
) -> dict[str, Any]:
    """The employee's own figures of ``period`` (both ends set): their posts and reach, the
    colleagues their ripple reached per distance, and the applicants and hires credited to
    them under ``model`` — counts only, never another person's id or name."""
    ends = _ends(period)
    posts = await conn.fetch(_MY_POSTS, *ends, employee_id)
    credit = await conn.fetch(_MY_CREDIT, *ends, employee_id, model)
    reached = {
        r["depth"]: r["colleagues"] for r in await conn.fetch(_MY_INSPIRED, *ends, employee_id)
    }
    # "1" always there, then every distance up to the farthest reached (0 where none)
    by_ring = {str(k): reached.get(k, 0) for k in range(1, max([1, *reached]) + 1)}
    impressions = sum(r["impressions"] for r in posts)
    return {
        "employee_id": employee_id,
        **period.as_dict(),
        "posts": [
            {
                "post_id": r["post_id"],
                "published_at": rfc3339(r["published_at"]),
                "origin": r["origin"],
                **{k: r[k] for k in ("impressions", "reactions", "comments", "reshares")},
            }
            for r in posts
        ],
        "inspired": {"total": sum(by_ring.values()), "by_ring": by_ring},
        "applicants": _credited(credit, "applied"),
        "hires": _credited(credit, "hired"),
        "reach": {
            "impressions": impressions,
            "emv": rules.emv(
                impressions, sum(r["clicks"] for r in posts), settings.cpm, settings.cpc
            ),
        },
    }
