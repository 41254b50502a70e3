"""The evidence of CONTRACT §10 as pure functions (no I/O): bootstrap intervals, content
origin, Spearman drivers and applicants per job family.

The bootstrap is seeded and vectorised with numpy: every resample of one statistic is drawn
at once as a (samples × n) index matrix from a generator seeded by (seed, statistic), so the
same data in the same order and the same seed give the same intervals, and 2,000 resamples
of a pilot cost milliseconds. Each interval is the percentile interval of the resampled
statistic, widened to include the point value when it falls outside (a resampled ratio's
percentiles need not contain the observed ratio); resamples for which the statistic is
undefined (a resampled denominator of 0) are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from services.attribution.rules import mean, rnd

Origin = Literal["own", "suggested", "template"]
ORIGINS: tuple[Origin, ...] = ("own", "suggested", "template")
MIN_SPEARMAN = 5
"""Spearman is null over fewer employees than this."""

# one independent random stream per statistic, so adding one never moves another
_REACH_RATIO, _SPILLOVER, _CONTENT_ORIGIN, _SCALE_UP = 1, 2, 3, 4
_CHUNK = 4_000_000


@dataclass(frozen=True)
class Bootstrap:
    samples: int = 2000
    seed: int = 20240601
    level: float = 0.95

    def generator(self, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, stream])


Interval = list[float] | None


def interval(draws: NDArray[np.float64], point: float | None, level: float) -> Interval:
    """The percentile interval of ``draws`` at ``level``, widened to contain ``point``; null
    when the point is null. Non-finite draws are left out; none left: ``[point, point]``."""
    if point is None:
        return None
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return [point, point]
    low, high = np.quantile(finite, [(1 - level) / 2, 1 - (1 - level) / 2])
    return [min(rnd(float(low)), point), max(rnd(float(high)), point)]


def resampled_means(
    values: Sequence[float] | NDArray[np.float64], samples: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """The mean of each of ``samples`` resamples (with replacement, same size) of ``values``;
    NaN for every resample of an empty group."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return np.full(samples, np.nan)
    # at most ~4 million indices at a time (32 MB), so a large period stays bounded in memory
    rows = max(1, _CHUNK // data.size)
    means: NDArray[np.float64] = np.concatenate(
        [
            data[rng.integers(0, data.size, size=(min(rows, samples - done), data.size))].mean(
                axis=1
            )
            for done in range(0, samples, rows)
        ]
    )
    return means


def ratio_interval(
    numerator: Sequence[float],
    denominator: Sequence[float],
    point: float | None,
    boot: Bootstrap,
    stream: int,
) -> Interval:
    """Interval of mean(numerator) ÷ mean(denominator), each group resampled on its own."""
    if point is None:
        return None
    rng = boot.generator(stream)
    top = resampled_means(numerator, boot.samples, rng)
    bottom = resampled_means(denominator, boot.samples, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = np.where(bottom > 0, top / bottom, np.nan)
    return interval(draws, point, boot.level)


def reach_ratio_interval(
    ambassador_impressions: Sequence[float],
    company_impressions: Sequence[float],
    point: float | None,
    boot: Bootstrap,
) -> Interval:
    """§10 `uncertainty.reach_ratio`: posts resampled within each group."""
    return ratio_interval(ambassador_impressions, company_impressions, point, boot, _REACH_RATIO)


def spillover_intervals(
    exposed: int,
    inspired: int,
    unexposed: int,
    adopters_unexposed: int,
    lift: float | None,
    baseline_adjusted: float,
    boot: Bootstrap,
) -> tuple[Interval, Interval]:
    """§10 `uncertainty.lift` and `.baseline_adjusted`: the employees of X and of U are
    resampled (each set on its own, same size); per resample, §5's formulas on the resampled
    adopters. A resample whose U rate is 0 has no lift."""
    rng = boot.generator(_SPILLOVER)
    x = np.zeros(exposed)
    x[:inspired] = 1.0
    u = np.zeros(unexposed)
    u[:adopters_unexposed] = 1.0
    rate_x = resampled_means(x, boot.samples, rng) if exposed else np.zeros(boot.samples)
    rate_u = resampled_means(u, boot.samples, rng) if unexposed else np.zeros(boot.samples)
    baseline = np.maximum(0.0, (rate_x - rate_u) * exposed)
    with np.errstate(divide="ignore", invalid="ignore"):
        lifts = np.where(rate_u > 0, rate_x / rate_u, np.nan)
    return interval(lifts, lift, boot.level), interval(baseline, baseline_adjusted, boot.level)


# --- scale-up estimate (an extension of §10) -----------------------------------------------

SCALE_UP_ASSUMPTIONS = {
    "en": "An estimate, not a forecast: each added ambassador is assumed to bring what the "
    "period's average ambassador brought (the same number of posts, reach per post and "
    "applicant credit), with no overlap between their audiences and no saturation; the "
    "interval resamples the current ambassadors and covers only their variation.",
    "da": "Et skøn, ikke en prognose: hver ny ambassadør antages at bringe det samme som "
    "periodens gennemsnitlige ambassadør (lige så mange opslag, samme rækkevidde pr. opslag "
    "og samme ansøgerkredit), uden overlap mellem deres publikum og uden mætning; "
    "intervallet gensampler de nuværende ambassadører og dækker kun deres variation.",
}


def scale_up(
    ambassadors: Sequence[tuple[int, float]], targets: Sequence[int], boot: Bootstrap
) -> dict[str, Any] | None:
    """What ``targets`` ambassadors would likely bring, from each current ambassador's
    (impressions, applicant credit) in the period (in a fixed order): the mean per
    ambassador with a bootstrap interval (ambassadors resampled, both figures from the same
    resample), times N. Null without ambassadors."""
    if not ambassadors:
        return None
    impressions = np.asarray([a[0] for a in ambassadors], dtype=np.float64)
    credit = np.asarray([a[1] for a in ambassadors], dtype=np.float64)
    rng = boot.generator(_SCALE_UP)
    picks = rng.integers(0, len(ambassadors), size=(boot.samples, len(ambassadors)))
    per = {
        "impressions": (rnd(float(impressions.mean())), impressions[picks].mean(axis=1)),
        "applicants": (rnd(float(credit.mean())), credit[picks].mean(axis=1)),
    }
    bounds = {k: interval(draws, point, boot.level) for k, (point, draws) in per.items()}

    def times(n: int, key: str) -> dict[str, Any]:
        low, high = bounds[key] or [0.0, 0.0]
        return {key: rnd(n * per[key][0]), f"{key}_interval": [rnd(n * low), rnd(n * high)]}

    return {
        "estimate": True,
        "ambassadors": len(ambassadors),
        "per_ambassador": {
            "impressions": per["impressions"][0],
            "impressions_interval": bounds["impressions"],
            "applicants": per["applicants"][0],
            "applicants_interval": bounds["applicants"],
        },
        "targets": [
            {"ambassadors": n, **times(n, "impressions"), **times(n, "applicants")} for n in targets
        ],
        "assumptions": SCALE_UP_ASSUMPTIONS,
    }


# --- content origin ---------------------------------------------------------------------------


def content_origin(posts: Iterable[tuple[str, int]], boot: Bootstrap) -> dict[str, Any]:
    """§10 `content_origin` from (origin, impressions) of the period's employee posts, in a
    fixed order (the interval depends on it)."""
    by_origin: dict[str, list[int]] = {o: [] for o in ORIGINS}
    for origin, impressions in posts:
        by_origin[origin].append(impressions)
    out: dict[str, Any] = {
        o: {
            "posts": len(v),
            "impressions": sum(v),
            "mean_impressions_per_post": mean(sum(v), len(v)),
        }
        for o, v in by_origin.items()
    }
    own = by_origin["own"]
    prepared = by_origin["suggested"] + by_origin["template"]
    own_mean, prepared_mean = mean(sum(own), len(own)), mean(sum(prepared), len(prepared))
    ratio = (
        None
        if own_mean is None or prepared_mean is None or prepared_mean == 0
        else rnd(own_mean / prepared_mean)
    )
    out["own_vs_prepared"] = ratio
    out["interval"] = ratio_interval(own, prepared, ratio, boot, _CONTENT_ORIGIN)
    return out


# --- drivers ------------------------------------------------------------------------------------


def ranks(values: Sequence[float]) -> NDArray[np.float64]:
    """Ranks from 1, tied values sharing their mean rank."""
    data = np.asarray(values, dtype=np.float64)
    _, inverse, counts = np.unique(data, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    mean_rank: NDArray[np.float64] = (ends - counts + 1 + ends) / 2
    return mean_rank[inverse]


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """The Pearson correlation of the ranks; null for fewer than :data:`MIN_SPEARMAN` pairs
    or when either variable is constant."""
    if len(x) != len(y):
        raise ValueError("x and y differ in length")
    if len(x) < MIN_SPEARMAN:
        return None
    rx, ry = ranks(x), ranks(y)
    if np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return None
    rx -= rx.mean()
    ry -= ry.mean()
    r = float((rx * ry).sum() / np.sqrt((rx * rx).sum() * (ry * ry).sum()))
    return rnd(max(-1.0, min(1.0, r)))


def drivers(
    activity: Mapping[str, tuple[int, int]], followers: Mapping[str, int | None]
) -> dict[str, Any]:
    """§10 `drivers` from each employee's (posts, impressions) in the period (employees
    with a post only) and the followers of their latest record (None: not known)."""
    employees = sorted(e for e, (posts, _) in activity.items() if posts > 0)
    per_post = [activity[e][1] / activity[e][0] for e in employees]
    known = [(i, e) for i, e in enumerate(employees) if followers.get(e) is not None]
    return {
        "employees": len(employees),
        "followers_spearman": spearman(
            [per_post[i] for i, _ in known], [float(followers[e] or 0) for _, e in known]
        ),
        "activity_spearman": spearman(per_post, [float(activity[e][0]) for e in employees]),
    }


# --- applicants per job family ------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    family: str | None
    hard_to_recruit: bool


def job_families(
    applications: Iterable[tuple[str | None, bool]],
    credit: Iterable[tuple[str | None, str, float]],
    jobs: Mapping[str, Job],
    ring_keys: Sequence[str],
) -> list[dict[str, Any]]:
    """§10 `applicants.jobs`. ``applications``: (job_id, attributed) of the period's
    applications; ``credit``: (job_id, ring key, weight) of their credit under the model;
    ``jobs``: each upserted job's latest record; ``ring_keys``: the keys every ``credit``
    map has (as `credit_by_ring`). A family is hard to recruit when any known job of it is."""

    def family(job_id: str | None) -> str | None:
        job = None if job_id is None else jobs.get(job_id)
        return None if job is None else job.family

    hard = {j.family for j in jobs.values() if j.hard_to_recruit}
    counts: dict[str | None, list[int]] = {}
    for job_id, attributed in applications:
        entry = counts.setdefault(family(job_id), [0, 0])
        entry[0] += 1
        entry[1] += int(attributed)
    weights: dict[str | None, dict[str, list[float]]] = {
        f: {k: [] for k in ring_keys} for f in counts
    }
    for job_id, ring, weight in credit:
        f = family(job_id)
        if f in weights:
            weights[f].setdefault(ring, []).append(weight)
    order = sorted(
        counts,
        key=lambda f: (f not in hard, -counts[f][0], f is None, f or ""),
    )
    return [
        {
            "family": f,
            "hard_to_recruit": f in hard,
            "applicants": counts[f][0],
            "attributed": counts[f][1],
            "credit": {k: rnd(sum(sorted(v))) for k, v in weights[f].items()},
        }
        for f in order
    ]
