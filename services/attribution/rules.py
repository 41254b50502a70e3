"""The attribution rules of CONTRACT §2-§5 as pure functions (no I/O).

Everything here is deterministic: inputs are sorted before they are combined, floats are summed
in a fixed order and rounded to :data:`DIGITS` decimals, so the same facts give the same
answers whatever order the events arrived in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from shared.events import MODELS, Model

DIGITS = 12
"""Weights and credit sums are rounded to this many decimals."""

DAY = timedelta(days=1)

TouchKind = Literal["click", "link_code", "referral"]
ExposureKind = Literal["reshare", "engagement"]
_KIND_ORDER: dict[str, int] = {"click": 0, "link_code": 1, "referral": 2}


def rnd(value: float) -> float:
    """Round a weight or a sum of weights; ``-0.0`` becomes ``0.0``."""
    return round(value, DIGITS) + 0.0


def _emp_key(employee_id: str | None) -> tuple[int, str]:
    """Sort key putting the company (``None``) first, then employees by id."""
    return (0, "") if employee_id is None else (1, employee_id)


def decay(age: timedelta, half_life: timedelta) -> float:
    """``2^(-age/half_life)``."""
    return float(2.0 ** (-(age / half_life)))


# --- §3 touches and the five credit models ---------------------------------------------


@dataclass(frozen=True)
class Click:
    """A ``link.clicked`` whose link is known: ``employee_id`` None is the company."""

    at: datetime
    link_code: str
    employee_id: str | None


@dataclass(frozen=True)
class Touch:
    at: datetime
    kind: TouchKind
    employee_id: str | None
    link_code: str | None

    def sort_key(self) -> tuple[datetime, int, tuple[int, str], str]:
        return (self.at, _KIND_ORDER[self.kind], _emp_key(self.employee_id), self.link_code or "")


def touches(
    applied_at: datetime,
    clicks: Iterable[Click],
    link_code: str | None,
    link_code_owner: tuple[bool, str | None],
    referrer_employee_id: str | None,
    lookback: timedelta,
) -> list[Touch]:
    """The touches of one application (CONTRACT §3), in contract order.

    ``clicks`` are the visitor's clicks on known links (any time; the window is applied here).
    ``link_code_owner`` is (whether the application's link_code is a known link, its
    employee_id or None for a company link).
    """
    found = [
        Touch(c.at, "click", c.employee_id, c.link_code)
        for c in clicks
        if applied_at - lookback <= c.at <= applied_at
    ]
    known, owner = link_code_owner
    if link_code is not None and known and all(t.link_code != link_code for t in found):
        found.append(Touch(applied_at, "link_code", owner, link_code))
    if referrer_employee_id is not None:
        found.append(Touch(applied_at, "referral", referrer_employee_id, None))
    return sorted(found, key=Touch.sort_key)


def model_weights(
    model: Model, found: Sequence[Touch], applied_at: datetime, half_life: timedelta
) -> list[float]:
    """Each touch's weight under ``model`` (touches in contract order; n ≥ 1)."""
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
    raw = [decay(applied_at - t.at, half_life) for t in found]
    total = sum(raw)
    return [w / total for w in raw]


CreditEntry = tuple[str | None, float]
"""(employee_id or None for the company, weight)."""


def credit(
    model: Model, found: Sequence[Touch], applied_at: datetime, half_life: timedelta
) -> list[CreditEntry]:
    """One conversion's credit under ``model``: weights of one party added up (in touch
    order, so the float sum is deterministic), ordered company first then by employee_id;
    parties whose weight is 0 are left out. Empty when unattributed. Stored at full
    precision; answers round with :func:`rnd`."""
    sums: dict[str | None, float] = {}
    for touch, weight in zip(
        found, model_weights(model, found, applied_at, half_life), strict=True
    ):
        sums[touch.employee_id] = sums.get(touch.employee_id, 0.0) + weight
    return [(e, sums[e]) for e in sorted(sums, key=_emp_key) if sums[e] != 0.0]


def all_credit(
    found: Sequence[Touch], applied_at: datetime, half_life: timedelta
) -> dict[Model, list[CreditEntry]]:
    return {m: credit(m, found, applied_at, half_life) for m in MODELS}


# --- §2 rings and inspirers ------------------------------------------------------------


@dataclass(frozen=True)
class Exposure:
    """Employee ``employee_id`` was exposed at ``at`` to a post by colleague ``author_id``
    published at ``published_at``."""

    employee_id: str
    author_id: str
    at: datetime
    published_at: datetime
    kind: ExposureKind


@dataclass(frozen=True)
class Inspirer:
    employee_id: str  # the inspirer u
    weight: float
    exposure: ExposureKind
    exposed_at: datetime


@dataclass(frozen=True)
class Placement:
    ring: int | None
    first_shared_at: datetime | None
    inspirers: tuple[Inspirer, ...] = ()


def rings(
    ambassadors: Iterable[str],
    first_shares: Mapping[str, datetime],
    exposures: Iterable[Exposure],
    window: timedelta,
    half_life: timedelta,
    fixed_rings: Mapping[str, int | None] | None = None,
) -> dict[str, Placement]:
    """Every employee's ring and inspirers (CONTRACT §2).

    ``first_shares``: employee → earliest ``published_at`` of their posts. ``exposures``:
    candidates (engagements by the employee, and reshares by the employee's posts at the
    post's time); the window, the ``published before`` rule and the colleague rule are
    applied here. An inspirer's post precedes the exposure, which precedes the inspired
    employee's first share, so processing employees in order of first share sees every
    inspirer's ring before it is needed (the relation has no cycles).

    ``fixed_rings``: for a derivation of part of the network, the rings of inspirers outside
    it (their stored placements); an author neither placed here nor in it inspires no one.
    """
    fixed = fixed_rings or {}
    ambassador_set = set(ambassadors)
    by_employee: dict[str, list[Exposure]] = {}
    for exposure in exposures:
        s = first_shares.get(exposure.employee_id)
        if (
            s is None
            or exposure.author_id == exposure.employee_id
            or not (s - window <= exposure.at <= s)
            or not (exposure.published_at < exposure.at)
        ):
            continue
        by_employee.setdefault(exposure.employee_id, []).append(exposure)
    out: dict[str, Placement] = {
        a: Placement(1, first_shares.get(a)) for a in sorted(ambassador_set)
    }
    order = sorted(
        (e for e in first_shares if e not in ambassador_set), key=lambda e: (first_shares[e], e)
    )
    for employee in order:
        s = first_shares[employee]
        latest: dict[str, tuple[datetime, int]] = {}
        rings_of: dict[str, int] = {}
        for exp in by_employee.get(employee, ()):
            author = out.get(exp.author_id)
            author_ring = fixed.get(exp.author_id) if author is None else author.ring
            if author_ring is None:
                continue
            rings_of[exp.author_id] = author_ring
            # latest exposure per colleague; at equal times `reshare` (1) beats engagement (0)
            candidate = (exp.at, 1 if exp.kind == "reshare" else 0)
            if exp.author_id not in latest or candidate > latest[exp.author_id]:
                latest[exp.author_id] = candidate
        if not latest:
            out[employee] = Placement(None, s)
            continue
        ring = 1 + min(rings_of[u] for u in latest)
        raw = {u: decay(s - at, half_life) for u, (at, _) in latest.items()}
        total = sum(raw[u] for u in sorted(raw))
        inspirers = tuple(
            Inspirer(
                u,
                rnd(raw[u] / total),
                "reshare" if latest[u][1] else "engagement",
                latest[u][0],
            )
            for u in sorted(raw)
        )
        out[employee] = Placement(ring, s, inspirers)
    return out


# --- §4 reach and earned media value -----------------------------------------------------


@dataclass(frozen=True)
class PostFigures:
    post_id: str
    author_kind: str
    employee_id: str | None
    published_at: datetime
    impressions: int = 0
    reactions: int = 0
    comments: int = 0
    reshares: int = 0
    clicks: int = 0


Group = Literal["company", "ambassadors", "spillover", "independent"]


def group_of(post: PostFigures, ring_of: Mapping[str, int | None]) -> Group:
    if post.author_kind == "company":
        return "company"
    ring = ring_of.get(post.employee_id or "")
    if ring is None:
        return "independent"
    return "ambassadors" if ring <= 1 else "spillover"


@dataclass
class Reach:
    posts: int = 0
    impressions: int = 0
    clicks: int = 0
    authors: set[str] = field(default_factory=set)

    def as_dict(self, with_sharers: bool = False) -> dict[str, object]:
        out: dict[str, object] = {
            "posts": self.posts,
            "impressions": self.impressions,
            "clicks": self.clicks,
            "mean_impressions_per_post": mean(self.impressions, self.posts),
        }
        if with_sharers:
            out["sharers"] = len(self.authors)
        return out


def mean(total: int, count: int) -> float | None:
    return None if count == 0 else rnd(total / count)


def reach(posts: Iterable[PostFigures], ring_of: Mapping[str, int | None]) -> dict[Group, Reach]:
    groups: dict[Group, Reach] = {
        "company": Reach(),
        "ambassadors": Reach(),
        "spillover": Reach(),
        "independent": Reach(),
    }
    for post in posts:
        group = groups[group_of(post, ring_of)]
        group.posts += 1
        group.impressions += post.impressions
        group.clicks += post.clicks
        if post.employee_id is not None and post.author_kind == "employee":
            group.authors.add(post.employee_id)
    return groups


def reach_ratio(groups: Mapping[Group, Reach]) -> float | None:
    ambassadors = mean(groups["ambassadors"].impressions, groups["ambassadors"].posts)
    company = mean(groups["company"].impressions, groups["company"].posts)
    if ambassadors is None or company is None or company == 0:
        return None
    return rnd(ambassadors / company)


def emv(impressions: int, clicks: int, cpm: float, cpc: float) -> float:
    """Earned media value of employee-authored posts, in the currency's units, 2 decimals."""
    return round(impressions / 1000 * cpm + clicks * cpc, 2) + 0.0


# --- §5 spillover with a baseline --------------------------------------------------------


@dataclass(frozen=True)
class Spillover:
    inspired: int
    expected_by_chance: float
    baseline_adjusted: float
    lift: float | None
    exposed: int
    unexposed: int
    adopters_unexposed: int


def window_start(start: datetime | None, window: timedelta) -> datetime | None:
    """``start - window``; None (no lower bound) when that is before year 1, which no
    stored time can be (``from=0001-01-01T00:00:00Z`` was a 500: OverflowError)."""
    if start is None:
        return None
    try:
        return start - window
    except OverflowError:
        return None


def spillover(
    population: Iterable[str],
    first_shares: Mapping[str, datetime],
    ring_of: Mapping[str, int | None],
    exposure_times: Mapping[str, Sequence[datetime]],
    start: datetime | None,
    end: datetime | None,
    window: timedelta,
) -> Spillover:
    """CONTRACT §5. ``population``: known, non-ambassador employees; ``exposure_times``:
    each employee's exposures (as in §2) to posts of ringed colleagues."""

    def in_period(t: datetime | None) -> bool:
        return t is not None and (start is None or t >= start) and (end is None or t < end)

    lower = window_start(start, window)
    p = sorted(
        e
        for e in set(population)
        if start is None or first_shares.get(e) is None or first_shares[e] >= start
    )
    x: list[str] = []
    u: list[str] = []
    for e in p:
        exposed = any(
            (lower is None or t >= lower) and (end is None or t < end)
            for t in exposure_times.get(e, ())
        )
        (x if exposed else u).append(e)
    adopters_x = [e for e in x if (ring_of.get(e) or 0) >= 2 and in_period(first_shares.get(e))]
    adopters_u = [e for e in u if in_period(first_shares.get(e))]
    rate_x = len(adopters_x) / len(x) if x else 0.0
    rate_u = len(adopters_u) / len(u) if u else 0.0
    expected = rate_u * len(x)
    return Spillover(
        inspired=len(adopters_x),
        expected_by_chance=rnd(expected),
        baseline_adjusted=rnd(max(0.0, len(adopters_x) - expected)),
        lift=None if rate_u == 0 else rnd(rate_x / rate_u),
        exposed=len(x),
        unexposed=len(u),
        adopters_unexposed=len(adopters_u),
    )


# --- §6 recognitions -----------------------------------------------------------------------

MILESTONES = (1000, 10000, 100000)


def milestones_reached(impressions: int) -> list[int]:
    return [m for m in MILESTONES if impressions >= m]
