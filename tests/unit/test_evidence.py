"""The statistics of CONTRACT §10 (services/attribution/evidence.py), on cases computed by
hand: ranks with ties, Spearman, the bootstrap intervals (containing their point, the same
for the same seed), content origin and applicants per job family."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from services.attribution import evidence
from services.attribution.evidence import Bootstrap, Job
from services.attribution.settings import AttributionSettings
from shared.settings import SettingsError, load

BOOT = Bootstrap(samples=2000, seed=11)


def test_ranks_share_their_mean_rank_when_tied() -> None:
    assert evidence.ranks([30, 10, 20, 20]).tolist() == [4.0, 1.0, 2.5, 2.5]
    assert evidence.ranks([5, 5, 5]).tolist() == [2.0, 2.0, 2.0]


def test_spearman_by_hand_with_a_tie() -> None:
    # ranks of y = [5, 6, 7, 8, 7] are [1, 2, 3.5, 5, 3.5]; deviations from the mean rank 3:
    # x [-2, -1, 0, 1, 2], y [-2, -1, 0.5, 2, 0.5]; sum of products 4 + 1 + 0 + 2 + 1 = 8;
    # sums of squares 10 and 9.5: r = 8 / sqrt(95).
    got = evidence.spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7])
    assert got == pytest.approx(8 / math.sqrt(95), abs=1e-12)


def test_spearman_is_rank_based_and_bounded() -> None:
    assert evidence.spearman([1, 2, 3, 4, 5], [1, 4, 9, 16, 1000]) == 1.0
    assert evidence.spearman([1, 2, 3, 4, 5], [50, 40, 30, 20, 10]) == -1.0


@pytest.mark.parametrize(
    ("x", "y"),
    [
        ([1, 2, 3, 4], [4, 3, 2, 1]),  # fewer than five employees
        ([1, 2, 3, 4, 5], [7, 7, 7, 7, 7]),  # constant
        ([2, 2, 2, 2, 2], [1, 2, 3, 4, 5]),
        ([], []),
    ],
)
def test_spearman_is_null_when_undefined(x: list[float], y: list[float]) -> None:
    assert evidence.spearman(x, y) is None


def test_drivers_over_sharers_and_known_followers() -> None:
    activity = {f"e{i}": (i + 1, 1000 * (i + 1) ** 2) for i in range(6)}  # per post 1000(i+1)
    activity["idle"] = (0, 0)
    followers: dict[str, int | None] = {"e0": 10, "e1": 30, "e2": 20, "e3": None, "e4": 50}
    got = evidence.drivers(activity, followers)
    assert got["employees"] == 6
    assert got["activity_spearman"] == 1.0
    # only e0, e1, e2, e4 have followers: four, fewer than five
    assert got["followers_spearman"] is None
    followers["e5"] = 40
    # per post ranks 1..5 for e0 e1 e2 e4 e5; followers 10 30 20 50 40 → ranks 1 3 2 5 4:
    # d² = 0 + 1 + 1 + 1 + 1 = 4, r = 1 - 6·4 / (5·24) = 0.8
    assert evidence.drivers(activity, followers)["followers_spearman"] == pytest.approx(0.8)


def test_interval_is_widened_to_contain_its_point() -> None:
    draws = np.array([3.0, 4.0, 5.0, 6.0])
    assert evidence.interval(draws, 1.0, 0.95) == [1.0, pytest.approx(5.925)]
    assert evidence.interval(draws, 9.0, 0.95)[1] == 9.0
    assert evidence.interval(draws, None, 0.95) is None
    assert evidence.interval(np.array([np.nan, np.inf]), 2.0, 0.95) == [2.0, 2.0]


def test_reach_ratio_interval_contains_the_point_and_is_reproducible() -> None:
    ambassadors = [2500, 4000, 11000, 3100, 7000, 9800, 2600]
    company = [600, 900, 2200, 1500]
    point = (sum(ambassadors) / 7) / (sum(company) / 4)
    first = evidence.reach_ratio_interval(ambassadors, company, point, BOOT)
    assert first is not None
    low, high = first
    assert low <= point <= high
    assert low < high
    assert evidence.reach_ratio_interval(ambassadors, company, point, BOOT) == first
    other = evidence.reach_ratio_interval(ambassadors, company, point, Bootstrap(2000, 12))
    assert other != first
    assert evidence.reach_ratio_interval(ambassadors, [], None, BOOT) is None


def test_a_zero_denominator_resample_is_left_out() -> None:
    # company posts [0, 0, 10]: a resample of only zeros has no ratio; the rest do.
    got = evidence.reach_ratio_interval([10, 20], [0, 0, 10], 15 / (10 / 3), BOOT)
    assert got is not None
    assert all(math.isfinite(v) for v in got)


def test_spillover_intervals() -> None:
    # X: 20 exposed, 8 adopted; U: 40 unexposed, 4 adopted. rate_U = 0.1, expected 2,
    # baseline 6, lift 0.4 / 0.1 = 4.
    lift, baseline = evidence.spillover_intervals(20, 8, 40, 4, 4.0, 6.0, BOOT)
    assert lift is not None
    assert baseline is not None
    assert lift[0] <= 4.0 <= lift[1]
    assert baseline[0] <= 6.0 <= baseline[1]
    assert baseline[0] >= 0.0
    assert evidence.spillover_intervals(20, 8, 40, 4, 4.0, 6.0, BOOT) == (lift, baseline)
    # nobody in U adopted: no lift, and the baseline-adjusted count has no spread from U
    lift, baseline = evidence.spillover_intervals(20, 8, 40, 0, None, 8.0, BOOT)
    assert lift is None
    assert baseline is not None
    assert baseline[0] <= 8.0 <= baseline[1]
    # empty X and U
    assert evidence.spillover_intervals(0, 0, 0, 0, None, 0.0, BOOT) == (None, [0.0, 0.0])


def test_content_origin_own_vs_prepared() -> None:
    posts = [("own", 3000), ("suggested", 1000), ("own", 5000), ("template", 2000)]
    got = evidence.content_origin(posts, BOOT)
    assert got["own"] == {"posts": 2, "impressions": 8000, "mean_impressions_per_post": 4000.0}
    assert got["suggested"]["posts"] == 1
    assert got["template"]["mean_impressions_per_post"] == 2000.0
    assert got["own_vs_prepared"] == pytest.approx(4000 / 1500)
    low, high = got["interval"]
    assert low <= got["own_vs_prepared"] <= high
    assert evidence.content_origin(posts, BOOT) == got


@pytest.mark.parametrize(
    "posts",
    [
        [("own", 3000)],  # no prepared posts
        [("suggested", 10)],  # no own posts
        [("own", 3000), ("template", 0)],  # the prepared mean is 0
    ],
)
def test_content_origin_is_null_when_undefined(posts: list[tuple[str, int]]) -> None:
    got = evidence.content_origin(posts, BOOT)
    assert got["own_vs_prepared"] is None
    assert got["interval"] is None


def test_job_families_order_and_credit() -> None:
    jobs = {
        "j-eng": Job("engineering", True),
        "j-eng2": Job("engineering", False),
        "j-it": Job("it", False),
        "j-fin": Job("finance", False),
        "j-heat": Job("heating", True),
    }
    applications = [
        ("j-it", True),
        ("j-it", False),
        ("j-it", True),
        ("j-eng2", True),  # engineering is hard to recruit through j-eng
        ("j-heat", False),
        ("j-heat", True),
        ("j-fin", False),
        ("j-fin", True),
        ("unknown", True),
        ("unknown", False),
        ("unknown", False),
    ]
    credit = [
        ("j-it", "1", 1.0),
        ("j-it", "2", 0.5),
        ("j-it", "0", 0.5),
        ("j-eng2", "1", 1.0),
        ("j-heat", "independent", 1.0),
        ("j-fin", "2", 1.0),
        ("unknown", "1", 1.0),
    ]
    got = evidence.job_families(applications, credit, jobs, ["0", "1", "2", "independent"])
    assert [(j["family"], j["hard_to_recruit"], j["applicants"]) for j in got] == [
        ("heating", True, 2),
        ("engineering", True, 1),
        ("it", False, 3),
        (None, False, 3),  # ties with it on applicants: null last
        ("finance", False, 2),
    ]
    it = got[2]
    assert it["attributed"] == 2
    assert it["credit"] == {"0": 0.5, "1": 1.0, "2": 0.5, "independent": 0.0}
    assert evidence.job_families([], [], jobs, ["0"]) == []


def test_two_thousand_resamples_over_a_pilot_take_well_under_a_second() -> None:
    """The demo pilot's size: ~120 ambassador and ~24 company posts, 150 employees."""
    rng = np.random.default_rng(1)
    ambassadors = rng.integers(2500, 11000, 120).tolist()
    company = rng.integers(600, 2200, 24).tolist()
    posts = [("own", v) for v in ambassadors] + [("suggested", v) for v in company]
    started = time.perf_counter()
    evidence.reach_ratio_interval(ambassadors, company, 5.0, BOOT)
    evidence.spillover_intervals(60, 20, 80, 5, 4.0, 10.0, BOOT)
    evidence.content_origin(posts, BOOT)
    assert time.perf_counter() - started < 0.5


def test_scale_up_is_an_estimate_from_the_mean_per_ambassador() -> None:
    # three ambassadors: impressions 3000, 6000, 0; applicant credit 1, 0.5, 0
    got = evidence.scale_up([(3000, 1.0), (6000, 0.5), (0, 0.0)], (10, 30), BOOT)
    assert got is not None
    assert got["estimate"] is True
    assert set(got["assumptions"]) == {"en", "da"}
    per = got["per_ambassador"]
    assert (per["impressions"], per["applicants"]) == (3000.0, 0.5)
    low, high = per["impressions_interval"]
    assert 0 <= low <= 3000 <= high <= 6000
    ten, thirty = got["targets"]
    assert (ten["ambassadors"], ten["impressions"], ten["applicants"]) == (10, 30000.0, 5.0)
    assert ten["impressions_interval"] == [10 * low, 10 * high]
    assert thirty["applicants_interval"][0] <= 15.0 <= thirty["applicants_interval"][1]
    assert evidence.scale_up([(3000, 1.0), (6000, 0.5), (0, 0.0)], (10, 30), BOOT) == got
    assert evidence.scale_up([], (10,), BOOT) is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ATTRIBUTION_BOOTSTRAP_SAMPLES", "0"),
        ("ATTRIBUTION_BOOTSTRAP_SAMPLES", "many"),
        ("ATTRIBUTION_BOOTSTRAP_SEED", "-1"),
        ("ATTRIBUTION_BOOTSTRAP_LEVEL", "1.5"),
        ("ATTRIBUTION_SCALE_UP_AMBASSADORS", "25,0"),
    ],
)
def test_bad_bootstrap_settings_name_their_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load(AttributionSettings, "ATTRIBUTION_", {variable: value})


def test_bootstrap_settings_are_read() -> None:
    got = load(
        AttributionSettings,
        "ATTRIBUTION_",
        {"ATTRIBUTION_BOOTSTRAP_SAMPLES": "500", "ATTRIBUTION_BOOTSTRAP_SEED": "3",
         "ATTRIBUTION_SCALE_UP_AMBASSADORS": "10,20"},
    )  # fmt: skip
    assert (got.bootstrap_samples, got.bootstrap_seed, got.scale_up_ambassadors) == (
        500,
        3,
        (10, 20),
    )


def test_a_large_period_is_resampled_in_bounded_chunks() -> None:
    """100,000 posts × 2,000 samples would be 200 million indices at once; in chunks the same
    generator gives a deterministic answer, with the point inside."""
    rng = np.random.default_rng(2)
    ambassadors = rng.integers(0, 10_000, 100_000).astype(float)
    company = rng.integers(0, 2_000, 50).astype(float)
    point = float(ambassadors.mean() / company.mean())
    got = evidence.reach_ratio_interval(ambassadors, company, point, Bootstrap(200, 5))
    assert got is not None
    assert got[0] <= point <= got[1]
    assert evidence.reach_ratio_interval(ambassadors, company, point, Bootstrap(200, 5)) == got
