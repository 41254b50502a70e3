"""The pure rules, against examples computed by hand from CONTRACT §2-§6."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.attribution import rules
from services.attribution.rules import Click, Exposure, PostFigures, Touch

T0 = datetime(2026, 3, 1, tzinfo=UTC)
D = timedelta(days=1)
WEEK = timedelta(days=7)
L = timedelta(days=30)


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


# --- §3 touches ---------------------------------------------------------------------------


def test_touches_window_link_code_and_referral_in_contract_order() -> None:
    applied = at(40)
    clicks = [
        Click(at(9), "old", "e9"),  # 31 days before T: outside L = 30 days
        Click(at(10), "a", "e1"),  # exactly T - 30 days: inside
        Click(at(38), "c", None),  # company link
        Click(at(41), "late", "e2"),  # after T: outside
    ]
    found = rules.touches(applied, clicks, "b", (True, "e2"), "e3", L)
    assert found == [
        Touch(at(10), "click", "e1", "a"),
        Touch(at(38), "click", None, "c"),
        # link_code b was not clicked → a touch at T; then the referral at T (kind order)
        Touch(applied, "link_code", "e2", "b"),
        Touch(applied, "referral", "e3", None),
    ]


def test_link_code_already_clicked_adds_no_touch_and_unknown_link_is_ignored() -> None:
    applied = at(5)
    clicked = [Click(at(4), "b", "e2")]
    assert rules.touches(applied, clicked, "b", (True, "e2"), None, L) == [
        Touch(at(4), "click", "e2", "b")
    ]
    assert rules.touches(applied, [], "zz", (False, None), None, L) == []


def test_touches_at_equal_time_order_by_kind_then_employee() -> None:
    applied = at(5)
    clicks = [Click(applied, "x", "e9"), Click(applied, "y", "e1")]
    found = rules.touches(applied, clicks, None, (False, None), "e0", L)
    assert [(t.kind, t.employee_id) for t in found] == [
        ("click", "e1"),
        ("click", "e9"),
        ("referral", "e0"),
    ]


# --- §3 models ----------------------------------------------------------------------------


def _four() -> tuple[list[Touch], datetime]:
    applied = at(14)
    return [
        Touch(at(0), "click", "e1", "a"),  # 14 days before T
        Touch(at(7), "click", None, "c"),  # 7 days before T
        Touch(at(14), "link_code", "e2", "b"),  # at T
        Touch(at(14), "referral", "e1", None),  # at T
    ], applied


def test_first_last_linear() -> None:
    found, applied = _four()
    assert rules.credit("first_touch", found, applied, WEEK) == [("e1", 1.0)]
    assert rules.credit("last_touch", found, applied, WEEK) == [("e1", 1.0)]
    # linear: 1/4 each; e1 has two touches → 0.5
    assert rules.credit("linear", found, applied, WEEK) == [
        (None, 0.25),
        ("e1", 0.5),
        ("e2", 0.25),
    ]


def test_position_based() -> None:
    found, applied = _four()
    # n = 4: first 0.4 + last 0.4 (both e1) = 0.8; middle two get 0.2 / 2 = 0.1 each
    assert [(e, rules.rnd(w)) for e, w in rules.credit("position_based", found, applied, WEEK)] == [
        (None, 0.1),
        ("e1", 0.8),
        ("e2", 0.1),
    ]
    assert rules.credit("position_based", found[:1], applied, WEEK) == [("e1", 1.0)]
    # n = 2: 0.5 each
    assert rules.credit("position_based", found[:2], applied, WEEK) == [
        (None, 0.5),
        ("e1", 0.5),
    ]
    # n = 3: 0.4, 0.2, 0.4 → company 0.2, e1 0.4, e2 0.4
    assert [
        (e, rules.rnd(w)) for e, w in rules.credit("position_based", found[:3], applied, WEEK)
    ] == [
        (None, 0.2),
        ("e1", 0.4),
        ("e2", 0.4),
    ]


def test_time_decay() -> None:
    found, applied = _four()
    # raw weights: 2^-2 = 0.25 (14 d), 2^-1 = 0.5 (7 d), 1, 1 → total 2.75
    # e1: (0.25 + 1) / 2.75 = 0.454545…; company 0.5 / 2.75 = 0.181818…; e2 1 / 2.75
    weights = rules.credit("time_decay", found, applied, WEEK)
    assert [(e, rules.rnd(w)) for e, w in weights] == [
        (None, round(0.5 / 2.75, 12)),
        ("e1", round(1.25 / 2.75, 12)),
        ("e2", round(1 / 2.75, 12)),
    ]


@pytest.mark.parametrize("model", ["first_touch", "last_touch", "linear", "position_based"])
def test_every_model_sums_to_one_and_empty_is_unattributed(model: str) -> None:
    found, applied = _four()
    for n in range(1, 5):
        weights = rules.credit(model, found[:n], applied, WEEK)  # type: ignore[arg-type]
        assert abs(sum(w for _, w in weights) - 1) <= 1e-9
    assert rules.credit(model, [], applied, WEEK) == []  # type: ignore[arg-type]


def test_seven_equal_linear_weights_sum_to_one() -> None:
    found = [Touch(at(i), "click", f"e{i}", f"l{i}") for i in range(7)]
    weights = rules.credit("linear", found, at(7), WEEK)
    assert [w for _, w in weights] == [1 / 7] * 7
    assert abs(sum(w for _, w in weights) - 1) <= 1e-9


# --- §2 rings -----------------------------------------------------------------------------


def test_rings_three_deep_with_inspirer_weights() -> None:
    first = {"amb": at(0), "b": at(5), "c": at(10), "d": at(12), "solo": at(3)}
    exposures = [
        # b reshares amb's post (published day 0) with its first post: x = s = day 5
        Exposure("b", "amb", at(5), at(0), "reshare"),
        # c reacted to b's post (day 5) on day 8 and to amb's post on day 9
        Exposure("c", "b", at(8), at(5), "engagement"),
        Exposure("c", "amb", at(9), at(0), "engagement"),
        # d commented on c's post on day 11 → ring of c + 1
        Exposure("d", "c", at(11), at(10), "engagement"),
        # solo engaged with d's post, but d's post is after solo's first share: ignored
        Exposure("solo", "d", at(13), at(12), "engagement"),
    ]
    placed = rules.rings(["amb", "idle_amb"], first, exposures, 14 * D, WEEK)
    assert placed["amb"].ring == 1
    assert placed["idle_amb"] == rules.Placement(1, None)
    assert placed["b"].ring == 2
    assert placed["b"].inspirers == (rules.Inspirer("amb", 1.0, "reshare", at(5)),)
    # c: min(ring b = 2, ring amb = 1) + 1 = 2; inspirers weighted by age at s = day 10:
    # amb 1 day → 2^(-1/7), b 2 days → 2^(-2/7); amb = 2^(-1/7) / (2^(-1/7) + 2^(-2/7))
    assert placed["c"].ring == 2
    w_amb = 2 ** (-1 / 7) / (2 ** (-1 / 7) + 2 ** (-2 / 7))
    assert placed["c"].inspirers == (
        rules.Inspirer("amb", round(w_amb, 12), "engagement", at(9)),
        rules.Inspirer("b", round(1 - w_amb, 12), "engagement", at(8)),
    )
    assert placed["d"].ring == 3
    assert placed["solo"] == rules.Placement(None, at(3))


def test_ring_window_edges_and_tie_of_kinds() -> None:
    first = {"amb": at(0), "e": at(20)}
    # exactly s - 14 days counts; one second earlier does not
    inside = [Exposure("e", "amb", at(6), at(0), "engagement")]
    outside = [Exposure("e", "amb", at(6) - timedelta(seconds=1), at(0), "engagement")]
    assert rules.rings(["amb"], first, inside, 14 * D, WEEK)["e"].ring == 2
    assert rules.rings(["amb"], first, outside, 14 * D, WEEK)["e"].ring is None
    # a post published at the very exposure time is not "published before x"
    same = [Exposure("e", "amb", at(20), at(20), "engagement")]
    assert rules.rings(["amb"], first, same, 14 * D, WEEK)["e"].ring is None
    # the latest exposure at s is both a reshare and an engagement: reshare names the edge
    tie = [
        Exposure("e", "amb", at(20), at(0), "engagement"),
        Exposure("e", "amb", at(20), at(0), "reshare"),
    ]
    (edge,) = rules.rings(["amb"], first, tie, 14 * D, WEEK)["e"].inspirers
    assert edge.exposure == "reshare"
    assert edge.weight == 1.0


def test_independent_colleagues_inspire_no_one() -> None:
    first = {"solo": at(0), "e": at(2)}
    exposures = [Exposure("e", "solo", at(1), at(0), "engagement")]
    assert rules.rings([], first, exposures, 14 * D, WEEK)["e"].ring is None


# --- §4 reach and EMV ---------------------------------------------------------------------


def test_reach_ratio_and_emv() -> None:
    ring_of = {"amb": 1, "b": 2, "solo": None}
    posts = [
        PostFigures("p1", "company", None, at(0), impressions=1000, clicks=10),
        PostFigures("p2", "company", None, at(1), impressions=500, clicks=5),
        PostFigures("p3", "employee", "amb", at(1), impressions=3000, clicks=7),
        PostFigures("p4", "employee", "b", at(2), impressions=200, clicks=1),
        PostFigures("p5", "employee", "b", at(3), impressions=100),
        PostFigures("p6", "employee", "solo", at(3), impressions=50),
    ]
    groups = rules.reach(posts, ring_of)
    assert groups["company"].as_dict() == {
        "posts": 2,
        "impressions": 1500,
        "clicks": 15,
        "mean_impressions_per_post": 750.0,
    }
    assert groups["spillover"].as_dict(with_sharers=True) == {
        "posts": 2,
        "impressions": 300,
        "clicks": 1,
        "mean_impressions_per_post": 150.0,
        "sharers": 1,
    }
    # ring-1 mean 3000 ÷ company mean 750 = 4
    assert rules.reach_ratio(groups) == 4.0
    # employee posts: impressions 3350, clicks 8 → 3350/1000 x 220 + 8 x 40 = 737 + 320
    assert rules.emv(3350, 8, 220, 40) == 1057.0
    empty = rules.reach([], ring_of)
    assert empty["ambassadors"].as_dict()["mean_impressions_per_post"] is None
    assert rules.reach_ratio(empty) is None


def test_reach_ratio_null_when_company_mean_is_zero() -> None:
    posts = [
        PostFigures("p1", "company", None, at(0)),
        PostFigures("p2", "employee", "amb", at(0), impressions=10),
    ]
    assert rules.reach_ratio(rules.reach(posts, {"amb": 1})) is None


# --- §5 spillover -------------------------------------------------------------------------


def test_spillover_baseline() -> None:
    start, end = at(10), at(20)
    population = ["x1", "x2", "x3", "u1", "u2", "u3", "u4", "old"]
    first = {
        "x1": at(12),  # exposed, ring 2, first share in period → adopter_X
        "x2": at(15),  # exposed but independent → not an adopter_X
        "u1": at(11),  # unexposed, shares in period → adopter_U
        "old": at(5),  # shared before `from`: not in P
    }
    ring_of = {"x1": 2, "x2": None}
    exposures = {
        "x1": [at(11)],
        "x2": [at(-3)],  # exactly from - 14 days: counts
        "x3": [at(0)],  # from - 14 days = day -4 ≤ day 0 < to: counts
        "u2": [at(-5)],  # before from - 14 days: does not count
        "u3": [at(20)],  # at `to`: does not count
    }
    result = rules.spillover(population, first, ring_of, exposures, start, end, 14 * D)
    # P = 7 (old excluded); X = {x1, x2, x3}; U = {u1, u2, u3, u4}
    # rate_U = 1/4; expected = 1/4 x 3 = 0.75; adopters_X = 1 → adjusted 0.25
    # rate_X = 1/3; lift = (1/3) / (1/4) = 4/3
    assert result == rules.Spillover(
        inspired=1,
        expected_by_chance=0.75,
        baseline_adjusted=0.25,
        lift=round(4 / 3, 12),
        exposed=3,
        unexposed=4,
        adopters_unexposed=1,
    )


def test_spillover_empty_sets_and_open_period() -> None:
    result = rules.spillover(["a"], {"a": at(1)}, {"a": 2}, {"a": [at(0)]}, None, None, 14 * D)
    # X = {a}, U = ∅ → rate_U = 0: nothing expected, lift null
    assert (result.inspired, result.expected_by_chance, result.baseline_adjusted) == (1, 0, 1)
    assert result.lift is None
    assert rules.spillover([], {}, {}, {}, None, None, 14 * D).inspired == 0


def test_milestones() -> None:
    assert rules.milestones_reached(999) == []
    assert rules.milestones_reached(1000) == [1000]
    assert rules.milestones_reached(100000) == [1000, 10000, 100000]
