"""Ground truth: what the contract (CONTRACT §2–§6) says the results of a set of facts are.

This is deliberately a second, independent reading of the contract, written for the demo's
scenario generator and the end-to-end test, and sharing no code with the attribution
service. It works on plain facts the generator knows (who posted what when, who was exposed
to what, who clicked which link, who applied), so that a disagreement between the two means
one of them misread the contract.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

DAY = timedelta(days=1)
MODELS = ("first_touch", "last_touch", "linear", "position_based", "time_decay")
MILESTONES = (1000, 10000, 100000)


@dataclass(frozen=True)
class Settings:
    window: timedelta = 14 * DAY  # §2 exposure window
    ring_half_life: timedelta = 7 * DAY  # §2 inspirer weights
    lookback: timedelta = 30 * DAY  # §3
    decay_half_life: timedelta = 7 * DAY  # §3 time_decay
    cpm: float = 220.0  # §4
    cpc: float = 40.0
    currency: str = "DKK"
    bootstrap_samples: int = 2000  # §10: the attribution service's default settings
    bootstrap_seed: int = 20240601
    bootstrap_level: float = 0.95
    scale_up_ambassadors: tuple[int, ...] = (25, 50, 100)


@dataclass(frozen=True)
class Employee:
    id: str
    name: str
    ambassador: bool
    notify: bool  # has a notify channel other than none, and did not opt out
    removed: bool = False
    followers: int | None = None  # §10, from the latest record


@dataclass(frozen=True)
class Post:
    id: str
    author: str | None  # None: the company page
    published_at: datetime
    reshare_of: str | None = None
    impressions: int = 0  # the latest snapshot (0 if never seen)
    clicks: int = 0
    reactions: int = 0
    comments: int = 0
    reshares: int = 0
    origin: str = "own"  # §10: own | suggested | template


@dataclass(frozen=True)
class Engagement:
    post_id: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class Link:
    code: str
    employee: str | None  # None: a company link


@dataclass(frozen=True)
class Click:
    code: str
    visitor: str
    at: datetime


@dataclass(frozen=True)
class Application:
    applicant: str
    job: str
    applied_at: datetime
    visitor: str | None = None
    link_code: str | None = None
    referrer: str | None = None


@dataclass(frozen=True)
class Hire:
    applicant: str
    job: str
    hired_at: datetime


@dataclass(frozen=True)
class JobRecord:
    """One ``job.upserted`` (§10): ``time`` is its CloudEvent time."""

    job_id: str
    title: str | None
    family: str | None
    hard_to_recruit: bool
    time: datetime


@dataclass
class Facts:
    employees: dict[str, Employee] = field(default_factory=dict)
    posts: dict[str, Post] = field(default_factory=dict)
    engagements: list[Engagement] = field(default_factory=list)
    links: dict[str, Link] = field(default_factory=dict)
    clicks: list[Click] = field(default_factory=list)
    applications: dict[str, Application] = field(default_factory=dict)
    hires: dict[str, Hire] = field(default_factory=dict)
    jobs: list[JobRecord] = field(default_factory=list)  # every record, any order


# --- §2 rings --------------------------------------------------------------------------


@dataclass(frozen=True)
class Edge:
    inspirer: str
    colleague: str
    weight: float
    exposure: str  # "reshare" | "engagement"


@dataclass
class Rings:
    ring: dict[str, int | None]  # every known employee and every post author
    first_share: dict[str, datetime]
    edges: list[Edge]


def _first_posts(facts: Facts) -> dict[str, Post]:
    first: dict[str, Post] = {}
    for post in sorted(facts.posts.values(), key=lambda p: (p.published_at, p.id)):
        if post.author is not None and post.author not in first:
            first[post.author] = post
    return first


def rings(facts: Facts, settings: Settings = Settings()) -> Rings:
    first = _first_posts(facts)
    people = set(facts.employees) | set(first)
    ring: dict[str, int | None] = {}
    edges: list[Edge] = []
    for e in people:
        if facts.employees.get(e, Employee(e, e, False, False)).ambassador:
            ring[e] = 1
    # Non-ambassadors in order of first share: an inspirer's first share precedes theirs.
    for e, post in sorted(first.items(), key=lambda kv: (kv[1].published_at, kv[0])):
        if ring.get(e) == 1:
            continue
        s = post.published_at
        exposures: list[tuple[str | None, datetime, str, datetime]] = []
        if post.reshare_of is not None and post.reshare_of in facts.posts:
            origin = facts.posts[post.reshare_of]
            exposures.append((origin.author, s, "reshare", origin.published_at))
        for engagement in facts.engagements:
            if engagement.actor == e and engagement.post_id in facts.posts:
                target = facts.posts[engagement.post_id]
                exposures.append((target.author, engagement.at, "engagement", target.published_at))
        latest: dict[str, tuple[datetime, str]] = {}  # colleague -> (x_u, kind)
        for u, x, kind, published in exposures:
            if (
                u is None
                or u == e
                or not s - settings.window <= x <= s
                or not published < x
                or ring.get(u) is None
            ):
                continue  # company posts and independent colleagues inspire no one
            best = latest.get(u)
            if best is None or x > best[0] or (x == best[0] and kind == "reshare"):
                latest[u] = (x, kind)
        if not latest:
            ring[e] = None
            continue
        ring[e] = 1 + min(r for u in latest if (r := ring[u]) is not None)
        raw = {
            u: 2 ** (-(s - x).total_seconds() / settings.ring_half_life.total_seconds())
            for u, (x, _) in latest.items()
        }
        total = sum(raw.values())
        edges.extend(Edge(u, e, raw[u] / total, latest[u][1]) for u in sorted(latest))
    for e in people:
        ring.setdefault(e, None)
    return Rings(ring, {e: p.published_at for e, p in first.items()}, edges)


# --- §3 credit --------------------------------------------------------------------------


@dataclass(frozen=True)
class Touch:
    at: datetime
    kind: str  # click, link_code, referral
    employee: str | None
    link_code: str | None


_KIND_ORDER = {"click": 0, "link_code": 1, "referral": 2}


def touches(facts: Facts, application: Application, settings: Settings = Settings()) -> list[Touch]:
    found: list[Touch] = []
    t = application.applied_at
    if application.visitor is not None:
        for click in facts.clicks:
            link = facts.links.get(click.code)
            if (
                link is not None
                and click.visitor == application.visitor
                and t - settings.lookback <= click.at <= t
            ):
                found.append(Touch(click.at, "click", link.employee, click.code))
    code = application.link_code
    if code is not None and code in facts.links and all(x.link_code != code for x in found):
        found.append(Touch(t, "link_code", facts.links[code].employee, code))
    if application.referrer is not None:
        found.append(Touch(t, "referral", application.referrer, None))
    return sorted(found, key=lambda x: (x.at, _KIND_ORDER[x.kind], x.employee or ""))


def weights(
    model: str, found: Sequence[Touch], at: datetime, settings: Settings = Settings()
) -> list[float]:
    n = len(found)
    if n == 0:
        return []
    if model == "first_touch":
        return [1.0] + [0.0] * (n - 1)
    if model == "last_touch":
        return [0.0] * (n - 1) + [1.0]
    if model == "linear":
        return [1.0 / n] * n
    if model == "position_based":
        if n == 1:
            return [1.0]
        if n == 2:
            return [0.5, 0.5]
        return [0.4] + [0.2 / (n - 2)] * (n - 2) + [0.4]
    if model == "time_decay":
        half = settings.decay_half_life.total_seconds()
        raw = [2 ** (-(at - x.at).total_seconds() / half) for x in found]
        return [w / sum(raw) for w in raw]
    raise ValueError(model)


def credit(
    facts: Facts, application: Application, model: str, settings: Settings = Settings()
) -> dict[str | None, float]:
    """Credited party (employee id, None for the company) → weight."""
    found = touches(facts, application, settings)
    out: dict[str | None, float] = defaultdict(float)
    for touch, weight in zip(
        found, weights(model, found, application.applied_at, settings), strict=True
    ):
        out[touch.employee] += weight
    return dict(out)


# --- §4, §5, §7 results ------------------------------------------------------------------


def _in(at: datetime | None, start: datetime | None, end: datetime | None) -> bool:
    return at is not None and (start is None or at >= start) and (end is None or at < end)


def _ring_key(employee: str | None, ring_of: dict[str, int | None]) -> str:
    if employee is None:
        return "0"
    r = ring_of.get(employee)
    return "independent" if r is None else str(r)


def _group(posts: Iterable[Post]) -> dict[str, Any]:
    chosen = list(posts)
    impressions = sum(p.impressions for p in chosen)
    return {
        "posts": len(chosen),
        "impressions": impressions,
        "clicks": sum(p.clicks for p in chosen),
        "mean_impressions_per_post": impressions / len(chosen) if chosen else None,
    }


def summary(
    facts: Facts,
    model: str = "last_touch",
    start: datetime | None = None,
    end: datetime | None = None,
    settings: Settings = Settings(),
) -> dict[str, Any]:
    r = rings(facts, settings)
    posts = [p for p in facts.posts.values() if _in(p.published_at, start, end)]
    company = _group(p for p in posts if p.author is None)
    ambassadors = _group(p for p in posts if p.author is not None and r.ring[p.author] == 1)
    spill = [p for p in posts if p.author is not None and (r.ring[p.author] or 0) >= 2]
    spillover = _group(spill) | {"sharers": len({p.author for p in spill})}
    independent = _group(p for p in posts if p.author is not None and r.ring[p.author] is None)
    ratio = None
    if (
        ambassadors["mean_impressions_per_post"] is not None
        and company["mean_impressions_per_post"]
    ):
        ratio = ambassadors["mean_impressions_per_post"] / company["mean_impressions_per_post"]
    employee_posts = [p for p in posts if p.author is not None]
    emv = (
        sum(p.impressions for p in employee_posts) / 1000 * settings.cpm
        + sum(p.clicks for p in employee_posts) * settings.cpc
    )

    applied = [a for a in facts.applications.values() if _in(a.applied_at, start, end)]
    applicant_ring: dict[str, float] = defaultdict(float)
    attributed = 0
    for application in applied:
        shares = credit(facts, application, model, settings)
        attributed += bool(shares)
        for party, weight in shares.items():
            applicant_ring[_ring_key(party, r.ring)] += weight
    hired = [h for h in facts.hires.values() if _in(h.hired_at, start, end)]
    hire_ring: dict[str, float] = defaultdict(float)
    hires_attributed = 0
    for hire in hired:
        belongs = facts.applications.get(hire.applicant)
        shares = credit(facts, belongs, model, settings) if belongs else {}
        hires_attributed += bool(shares)
        for party, weight in shares.items():
            hire_ring[_ring_key(party, r.ring)] += weight

    ripples = spillover_baseline(facts, r, start, end, settings)
    return {
        "period": {"from": start, "to": end},
        "model": model,
        "company": company,
        "ambassadors": ambassadors,
        "spillover": spillover,
        "independent": independent,
        "reach_ratio": ratio,
        "applicants": {
            "total": len(applied),
            "attributed": attributed,
            "unattributed": len(applied) - attributed,
            "credit_by_ring": dict(applicant_ring),
            "jobs": job_families(facts, applied, model, r.ring, settings),
        },
        "hires": {
            "total": len(hired),
            "attributed": hires_attributed,
            "credit_by_ring": dict(hire_ring),
        },
        "emv": {"currency": settings.currency, "value": emv},
        "ripples": ripples,
        # §10: the intervals themselves come from the service's seeded resampling, which the
        # contract does not fix; :func:`interval_problems` checks them against these points
        "uncertainty": {
            "method": "bootstrap",
            "level": settings.bootstrap_level,
            "samples": settings.bootstrap_samples,
            "seed": settings.bootstrap_seed,
        },
        "content_origin": content_origin(employee_posts),
        "drivers": drivers(facts, employee_posts),
        "scale_up": scale_up(facts, r, employee_posts, applied, model, settings),
    }


# --- §10 evidence ---------------------------------------------------------------------------


def content_origin(employee_posts: Sequence[Post]) -> dict[str, Any]:
    out: dict[str, Any] = {
        origin: _group(p for p in employee_posts if p.origin == origin)
        for origin in ("own", "suggested", "template")
    }
    for group in out.values():
        del group["clicks"]
    own = out["own"]["mean_impressions_per_post"]
    prepared = [p for p in employee_posts if p.origin != "own"]
    prepared_mean = sum(p.impressions for p in prepared) / len(prepared) if prepared else None
    out["own_vs_prepared"] = own / prepared_mean if own is not None and prepared_mean else None
    return out


def mean_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks; a run of equal values shares the mean of the positions it spans."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(pairs: Sequence[tuple[float, float]]) -> float | None:
    if len(pairs) < 5:
        return None
    rx = mean_ranks([x for x, _ in pairs])
    ry = mean_ranks([y for _, y in pairs])
    n = len(pairs)
    mx, my = sum(rx) / n, sum(ry) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return float(sxy / (sxx * syy) ** 0.5)


def drivers(facts: Facts, employee_posts: Sequence[Post]) -> dict[str, Any]:
    by_author: dict[str, list[int]] = defaultdict(list)
    for post in employee_posts:
        if post.author is not None:
            by_author[post.author].append(post.impressions)
    per_post = {e: sum(v) / len(v) for e, v in by_author.items()}
    known = {e: facts.employees[e].followers for e in by_author if e in facts.employees}
    followers = {e: f for e, f in known.items() if f is not None}
    return {
        "employees": len(by_author),
        "followers_spearman": spearman([(per_post[e], float(f)) for e, f in followers.items()]),
        "activity_spearman": spearman([(per_post[e], float(len(v))) for e, v in by_author.items()]),
    }


def scale_up(
    facts: Facts,
    r: Rings,
    employee_posts: Sequence[Post],
    applied: Sequence[Application],
    model: str,
    settings: Settings = Settings(),
) -> dict[str, Any] | None:
    """The scale-up estimate's points: N times the period's mean per ambassador."""
    ambassadors = sorted(e for e, ring in r.ring.items() if ring == 1)
    if not ambassadors:
        return None
    impressions = sum(p.impressions for p in employee_posts if p.author in ambassadors)
    applicants = sum(
        weight
        for application in applied
        for party, weight in credit(facts, application, model, settings).items()
        if party in ambassadors
    )
    per = {
        "impressions": impressions / len(ambassadors),
        "applicants": applicants / len(ambassadors),
    }
    return {
        "estimate": True,
        "ambassadors": len(ambassadors),
        "per_ambassador": per,
        "targets": [
            {
                "ambassadors": n,
                "impressions": n * per["impressions"],
                "applicants": n * per["applicants"],
            }
            for n in settings.scale_up_ambassadors
        ],
    }


def latest_jobs(facts: Facts) -> dict[str, JobRecord]:
    latest: dict[str, JobRecord] = {}
    for job in facts.jobs:
        if job.job_id not in latest or job.time > latest[job.job_id].time:
            latest[job.job_id] = job
    return latest


def job_families(
    facts: Facts,
    applied: Sequence[Application],
    model: str,
    ring_of: dict[str, int | None],
    settings: Settings = Settings(),
) -> list[dict[str, Any]]:
    jobs = latest_jobs(facts)
    families: dict[str | None, dict[str, Any]] = {}
    for application in applied:
        job = jobs.get(application.job)
        family = None if job is None else job.family
        entry = families.setdefault(
            family,
            {
                "family": family,
                "hard_to_recruit": any(
                    j.hard_to_recruit for j in jobs.values() if j.family == family
                ),
                "applicants": 0,
                "attributed": 0,
                "credit": defaultdict(float),
            },
        )
        shares = credit(facts, application, model, settings)
        entry["applicants"] += 1
        entry["attributed"] += bool(shares)
        for party, weight in shares.items():
            entry["credit"][_ring_key(party, ring_of)] += weight
    for entry in families.values():
        entry["credit"] = dict(entry["credit"])
    return sorted(
        families.values(),
        key=lambda f: (
            not f["hard_to_recruit"],
            -f["applicants"],
            f["family"] is None,
            f["family"] or "",
        ),
    )


def interval_problems(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """The §10 intervals of a ``/v1/summary`` answer against the truth's points: null exactly
    when the point is null, else ``[low, high]`` with low <= point <= high."""
    pairs: tuple[tuple[str, Any, Any], ...] = (
        ("uncertainty.reach_ratio", got["uncertainty"]["reach_ratio"], want["reach_ratio"]),
        ("uncertainty.lift", got["uncertainty"]["lift"], want["ripples"]["lift"]),
        (
            "uncertainty.baseline_adjusted",
            got["uncertainty"]["baseline_adjusted"],
            want["ripples"]["baseline_adjusted"],
        ),
        (
            "content_origin.interval",
            got["content_origin"]["interval"],
            want["content_origin"]["own_vs_prepared"],
        ),
    )
    scale_got, scale_want = got.get("scale_up"), want.get("scale_up")
    if (scale_got is None) != (scale_want is None):
        return [f"$.scale_up: {scale_got!r} != {scale_want!r}"]
    if scale_got is not None and scale_want is not None:
        rows = [("per_ambassador", scale_got["per_ambassador"], scale_want["per_ambassador"])]
        rows += [
            (f"targets[{i}]", g, w)
            for i, (g, w) in enumerate(
                zip(scale_got["targets"], scale_want["targets"], strict=True)
            )
        ]
        pairs += tuple(
            (f"scale_up.{where}.{key}_interval", g[f"{key}_interval"], w[key])
            for where, g, w in rows
            for key in ("impressions", "applicants")
        )
    found = []
    for path, bounds, point in pairs:
        slack = TOLERANCE * max(1, abs(point or 0))
        if point is None:
            if bounds is not None:
                found.append(f"$.{path}: {bounds!r} for a null point")
        elif not (
            isinstance(bounds, list)
            and len(bounds) == 2
            and bounds[0] - slack <= point <= bounds[1] + slack
        ):
            found.append(f"$.{path}: {bounds!r} does not contain {point!r}")
    return found


def spillover_baseline(
    facts: Facts,
    r: Rings,
    start: datetime | None,
    end: datetime | None,
    settings: Settings = Settings(),
) -> dict[str, Any]:
    known = {e for e, emp in facts.employees.items() if not emp.removed}
    population = {
        e
        for e in known
        if not facts.employees[e].ambassador
        and not (start is not None and e in r.first_share and r.first_share[e] < start)
    }
    low = None if start is None else start - settings.window

    def ringed(author: str | None, e: str) -> bool:
        return author is not None and author != e and r.ring.get(author) is not None

    def exposure_times(e: str) -> list[datetime]:
        """Exposures as in §2: to posts of colleagues who have a ring (company posts and
        independent colleagues' posts expose no one to the programme)."""
        times = [
            g.at
            for g in facts.engagements
            if g.actor == e
            and g.post_id in facts.posts
            and ringed(facts.posts[g.post_id].author, e)
            and facts.posts[g.post_id].published_at < g.at
        ]
        times += [
            p.published_at
            for p in facts.posts.values()
            if p.author == e
            and p.reshare_of in facts.posts
            and ringed(facts.posts[p.reshare_of].author, e)
            and facts.posts[p.reshare_of].published_at < p.published_at
            and p.published_at == r.first_share.get(e)
        ]
        return times

    exposed = {
        e
        for e in population
        if any((low is None or x >= low) and (end is None or x < end) for x in exposure_times(e))
    }
    unexposed = population - exposed
    adopters_x = {
        e for e in exposed if (r.ring.get(e) or 0) >= 2 and _in(r.first_share.get(e), start, end)
    }
    adopters_u = {e for e in unexposed if _in(r.first_share.get(e), start, end)}
    rate_x = len(adopters_x) / len(exposed) if exposed else 0.0
    rate_u = len(adopters_u) / len(unexposed) if unexposed else 0.0
    expected = rate_u * len(exposed)
    per_ring: dict[int, int] = defaultdict(int)
    for e, ring in r.ring.items():
        if ring is not None and e in r.first_share and (end is None or r.first_share[e] < end):
            per_ring[ring] += 1
    return {
        "rings": [{"ring": k, "sharers": per_ring[k]} for k in sorted(per_ring)],
        "inspired": len(adopters_x),
        "expected_by_chance": expected,
        "baseline_adjusted": max(0.0, len(adopters_x) - expected),
        "lift": rate_x / rate_u if rate_u else None,
    }


def recognitions(facts: Facts, settings: Settings = Settings()) -> dict[str, str]:
    """Every recognition id the contract makes due (§6) → the employee it is for."""
    r = rings(facts, settings)
    due: dict[str, str] = {}
    for e in r.first_share:
        due[f"first_post:{e}"] = e
    impressions: dict[str, int] = defaultdict(int)
    for post in facts.posts.values():
        if post.author is not None:
            impressions[post.author] += post.impressions
    for e, total in impressions.items():
        for threshold in MILESTONES:
            if total >= threshold:
                due[f"reach_milestone:{e}:{threshold}"] = e
    for application in facts.applications.values():
        for party, weight in credit(facts, application, "linear", settings).items():
            if party is not None and weight > 0:
                due[f"first_applicant:{party}"] = party
    for hire in facts.hires.values():
        belongs = facts.applications.get(hire.applicant)
        if belongs is None:
            continue
        for party, weight in credit(facts, belongs, "linear", settings).items():
            if party is not None and weight > 0:
                due[f"hire:{party}:{hire.applicant}"] = party
    for edge in r.edges:
        due[f"inspired_colleague:{edge.inspirer}:{edge.colleague}"] = edge.inspirer
    return due


def sharers(
    facts: Facts,
    model: str = "last_touch",
    start: datetime | None = None,
    end: datetime | None = None,
    settings: Settings = Settings(),
) -> list[dict[str, Any]]:
    """CONTRACT §7 ``/v1/sharers``: every employee with a post or with credit in the period."""
    r = rings(facts, settings)
    rows: dict[str, dict[str, Any]] = {}

    def row(e: str) -> dict[str, Any]:
        if e not in rows:
            employee = facts.employees.get(e)
            rows[e] = {
                "employee_id": e,
                "display_name": None if employee is None or employee.removed else employee.name,
                "ring": r.ring.get(e),
                "posts": 0,
                "impressions": 0,
                "reactions": 0,
                "comments": 0,
                "reshares": 0,
                "clicks": 0,
                "applicant_credit": 0.0,
                "hire_credit": 0.0,
                "inspired": [],
            }
        return rows[e]

    for post in facts.posts.values():
        if post.author is not None and _in(post.published_at, start, end):
            target = row(post.author)
            target["posts"] += 1
            for name in ("impressions", "reactions", "comments", "reshares", "clicks"):
                target[name] += getattr(post, name)
    for application in facts.applications.values():
        if _in(application.applied_at, start, end):
            for party, weight in credit(facts, application, model, settings).items():
                if party is not None and weight > 0:
                    row(party)["applicant_credit"] += weight
    for hire in facts.hires.values():
        belongs = facts.applications.get(hire.applicant)
        if belongs is not None and _in(hire.hired_at, start, end):
            for party, weight in credit(facts, belongs, model, settings).items():
                if party is not None and weight > 0:
                    row(party)["hire_credit"] += weight
    for edge in r.edges:
        if edge.inspirer in rows and _in(r.first_share.get(edge.colleague), start, end):
            rows[edge.inspirer]["inspired"].append(edge.colleague)
    for value in rows.values():
        value["inspired"].sort()
    return sorted(
        rows.values(), key=lambda x: (-x["applicant_credit"], -x["impressions"], x["employee_id"])
    )


def ripples_graph(facts: Facts, settings: Settings = Settings()) -> dict[str, Any]:
    """CONTRACT §7 ``/v1/ripples``: every employee who shared or has a ring (an ambassador who
    never shared is ring 1 with ``first_shared_at`` null), and the inspirer edges."""
    r = rings(facts, settings)
    members = sorted(set(r.first_share) | {e for e, ring in r.ring.items() if ring is not None})
    return {
        "nodes": [
            {"employee_id": e, "ring": r.ring.get(e), "first_shared_at": r.first_share.get(e)}
            for e in members
        ],
        "edges": [
            {"from": x.inspirer, "to": x.colleague, "weight": x.weight, "exposure": x.exposure}
            for x in r.edges
        ],
    }


TOLERANCE = 1e-6


def in_order(answer: Any) -> Any:
    """A ``/v1/ripples`` answer with its lists in one order (the contract leaves it open)."""
    if isinstance(answer, dict) and "nodes" in answer:
        return {
            "nodes": sorted(answer["nodes"], key=lambda n: n["employee_id"]),
            "edges": sorted(answer["edges"], key=lambda e: (e["from"], e["to"])),
        }
    return answer


def differences(got: Any, want: Any, path: str = "$") -> list[str]:
    """Where an API answer differs from the truth: floats within TOLERANCE (relative, for
    large sums), absent ``credit_by_ring`` entries counting as 0, extra fields in ``got``
    allowed. Empty when they agree."""
    if isinstance(want, dict) and isinstance(got, dict):
        if path.endswith("credit_by_ring") or re.search(r"\.jobs\[\d+\]\.credit$", path):
            return [
                d
                for key in sorted(set(want) | set(got))
                for d in differences(got.get(key, 0.0), want.get(key, 0.0), f"{path}.{key}")
            ]
        missing = sorted(set(want) - set(got))
        if missing:
            return [f"{path}: missing {missing}"]
        return [d for key in want for d in differences(got[key], want[key], f"{path}.{key}")]
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{path}: {got!r} != {want!r}"]
        return [
            d
            for i, (g, w) in enumerate(zip(got, want, strict=True))
            for d in differences(g, w, f"{path}[{i}]")
        ]
    if isinstance(want, float) or (isinstance(got, float) and isinstance(want, int)):
        if got is None or abs(got - want) > TOLERANCE * max(1, abs(want)):
            return [f"{path}: {got!r} != {want!r}"]
        return []
    return [] if got == want else [f"{path}: {got!r} != {want!r}"]
