"""The demo's independent reading of the contract, checked on examples computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ripples.demo import scenario, truth
from ripples.demo.truth import (
    Application,
    Click,
    Employee,
    Engagement,
    Facts,
    Hire,
    Link,
    Post,
)

T0 = datetime(2026, 6, 1, 8, tzinfo=UTC)
DAY = timedelta(days=1)


def person(e: str, ambassador: bool = False) -> Employee:
    return Employee(e, e.title(), ambassador, notify=True)


def chain() -> Facts:
    """Company page, ambassador A, B inspired by A (engagement), C by B (reshare) and by A
    (engagement), D shares with no exposure, E is exposed but never shares, F never does
    anything."""
    f = Facts()
    for e in ("a", "b", "c", "d", "e", "f"):
        f.employees[e] = person(e, ambassador=e == "a")
    f.posts = {
        p.id: p
        for p in (
            Post("co1", None, T0, impressions=1000, clicks=10),
            Post("a1", "a", T0 + 1 * DAY, impressions=5000, clicks=50),
            Post("a2", "a", T0 + 5 * DAY, impressions=3000, clicks=30),
            Post("b1", "b", T0 + 4 * DAY, impressions=2000, clicks=20),
            Post("c1", "c", T0 + 10 * DAY, reshare_of="b1", impressions=800, clicks=8),
            Post("d1", "d", T0 + 6 * DAY, impressions=400, clicks=4),
        )
    }
    f.engagements = [
        Engagement("a1", "b", T0 + 2 * DAY),  # b exposed to a, 2 days before b1
        Engagement("a2", "c", T0 + 3 * DAY),  # before a2 was published: no exposure
        Engagement("a1", "c", T0 + 3 * DAY),  # c exposed to a, 7 days before c1
        Engagement("a1", "e", T0 + 2 * DAY),  # e exposed, never shares
        Engagement("co1", "f", T0 + 1 * DAY),  # company posts inspire no one
    ]
    return f


def test_rings_and_inspirer_weights() -> None:
    r = truth.rings(chain())
    assert r.ring == {"a": 1, "b": 2, "c": 2, "d": None, "e": None, "f": None}
    edges = {(x.inspirer, x.colleague): (x.weight, x.exposure) for x in r.edges}
    # b: only a, weight 1.
    assert edges[("a", "b")] == (1.0, "engagement")
    # c: b via the reshare at s (age 0 → 2^0 = 1) and a via the engagement 7 days before
    # (2^-1 = 0.5): weights 1/1.5 and 0.5/1.5. c's ring is 1 + min(2, 1) = 2.
    assert edges[("b", "c")][0] == pytest.approx(2 / 3)
    assert edges[("b", "c")][1] == "reshare"
    assert edges[("a", "c")][0] == pytest.approx(1 / 3)
    assert len(edges) == 3


def test_exposure_outside_the_window_does_not_inspire() -> None:
    f = chain()
    f.posts["b1"] = Post("b1", "b", T0 + 17 * DAY, impressions=2000)  # 15 days after
    r = truth.rings(f)
    assert r.ring["b"] is None
    # c's reshare of b1 now precedes b1's publication: no exposure to b; a's still counts.
    assert r.ring["c"] == 2
    assert [(x.inspirer, x.weight) for x in r.edges if x.colleague == "c"] == [("a", 1.0)]


def feed() -> Facts:
    f = Facts()
    for e in ("a", "b", "r"):
        f.employees[e] = person(e, ambassador=e == "a")
    f.posts["b1"] = Post("b1", "b", T0)  # b independent
    f.links = {"la": Link("la", "a"), "lb": Link("lb", "b"), "lc": Link("lc", None)}
    f.clicks = [
        Click("la", "v1", T0 + 1 * DAY),
        Click("lc", "v1", T0 + 8 * DAY),
        Click("lb", "v1", T0 + 15 * DAY),
        Click("lb", "v1", T0 + 40 * DAY),  # after the application: no touch
        Click("zz", "v1", T0 + 2 * DAY),  # unknown link: ignored
    ]
    f.applications["app"] = Application("app", "job", T0 + 15 * DAY, "v1", "la", "r")
    f.hires["app"] = Hire("app", "job", T0 + 30 * DAY)
    return f


def test_touches_are_ordered_by_time_then_kind() -> None:
    f = feed()
    found = truth.touches(f, f.applications["app"])
    # link_code `la` was clicked, so it adds no touch of its own; the referral ties with the
    # click at T: click sorts first.
    assert [(t.kind, t.employee) for t in found] == [
        ("click", "a"),
        ("click", None),
        ("click", "b"),
        ("referral", "r"),
    ]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("first_touch", {"a": 1.0}),
        ("last_touch", {"r": 1.0}),
        ("linear", {"a": 0.25, None: 0.25, "b": 0.25, "r": 0.25}),
        # n = 4: 0.4 first, 0.4 last, 0.2 / 2 for each of the two in between.
        ("position_based", {"a": 0.4, None: 0.1, "b": 0.1, "r": 0.4}),
        # ages 14, 7, 0, 0 days → 2^-2, 2^-1, 1, 1 = 0.25, 0.5, 1, 1 of 2.75.
        ("time_decay", {"a": 0.25 / 2.75, None: 0.5 / 2.75, "b": 1 / 2.75, "r": 1 / 2.75}),
    ],
)
def test_credit_models(model: str, expected: dict[str | None, float]) -> None:
    f = feed()
    got = truth.credit(f, f.applications["app"], model)
    assert {k: v for k, v in got.items() if v} == pytest.approx(expected)
    assert sum(got.values()) == pytest.approx(1.0, abs=1e-9)


def test_lookback_and_link_code_without_click() -> None:
    f = feed()
    late = Application("app2", "job", T0 + 60 * DAY, "v1", "lc", None)
    found = truth.touches(f, late)
    # Only the click at +40 days is within 30 days; lc was not clicked in the window, so
    # it counts as a link_code touch at T.
    assert [(t.kind, t.employee, t.at) for t in found] == [
        ("click", "b", T0 + 40 * DAY),
        ("link_code", None, T0 + 60 * DAY),
    ]


def test_summary_of_the_chain() -> None:
    f = chain()
    f.links = {"la": Link("la", "a")}
    f.clicks = [Click("la", "v", T0 + 2 * DAY)]
    f.applications = {
        "x": Application("x", "j", T0 + 3 * DAY, "v"),
        "y": Application("y", "j", T0 + 3 * DAY, referrer="d"),
        "z": Application("z", "j", T0 + 3 * DAY),
    }
    f.hires = {"x": Hire("x", "j", T0 + 20 * DAY), "w": Hire("w", "j", T0 + 20 * DAY)}
    s = truth.summary(f)
    assert s["company"] == {
        "posts": 1,
        "impressions": 1000,
        "clicks": 10,
        "mean_impressions_per_post": 1000.0,
    }
    assert s["ambassadors"]["mean_impressions_per_post"] == 4000.0
    assert s["spillover"] == {
        "posts": 2,
        "impressions": 2800,
        "clicks": 28,
        "mean_impressions_per_post": 1400.0,
        "sharers": 2,
    }
    assert s["independent"]["posts"] == 1
    assert s["reach_ratio"] == 4.0
    # EMV: employee posts 5000+3000+2000+800+400 = 11200 impressions, 112 clicks:
    # 11.2 × 220 + 112 × 40 = 2464 + 4480.
    assert s["emv"]["value"] == pytest.approx(6944.0)
    assert s["applicants"] == {
        "total": 3,
        "attributed": 2,
        "unattributed": 1,
        "credit_by_ring": {"1": 1.0, "independent": 1.0},
        # job j never upserted: one family, null
        "jobs": [
            {
                "family": None,
                "hard_to_recruit": False,
                "applicants": 3,
                "attributed": 2,
                "credit": {"1": 1.0, "independent": 1.0},
            }
        ],
    }
    # w has no application: counted, unattributed.
    assert s["hires"] == {"total": 2, "attributed": 1, "credit_by_ring": {"1": 1.0}}
    # P = {b, c, d, e, f}; X = {b, c, e} (f engaged only with the company page... which is
    # not a colleague's post); adopters_X = {b, c}; U = {d, f}, adopters_U = {d}.
    # rate_U = 1/2, expected = 1.5, baseline-adjusted = 0.5, lift = (2/3) / (1/2).
    assert s["ripples"] == {
        "rings": [{"ring": 1, "sharers": 1}, {"ring": 2, "sharers": 2}],
        "inspired": 2,
        "expected_by_chance": 1.5,
        "baseline_adjusted": 0.5,
        "lift": pytest.approx(4 / 3),
    }


def test_a_period_counts_what_happened_in_it() -> None:
    f = chain()
    s = truth.summary(f, start=T0 + 5 * DAY, end=T0 + 11 * DAY)
    # Posts a2, c1, d1 fall in [T0+5d, T0+11d).
    assert (
        s["ambassadors"]["posts"],
        s["spillover"]["posts"],
        s["independent"]["posts"],
        s["company"]["posts"],
    ) == (1, 1, 1, 0)
    assert s["reach_ratio"] is None
    # P excludes b (shared before `from`); X = {c, e} (exposures from from-14d); adopters_X =
    # {c}; U = {d, f}; adopters_U = {d}.
    assert s["ripples"]["inspired"] == 1
    assert s["ripples"]["expected_by_chance"] == 1.0
    assert s["ripples"]["baseline_adjusted"] == 0.0
    assert s["ripples"]["lift"] == 1.0
    # rings: sharers whose first share is before `to`.
    assert s["ripples"]["rings"] == [{"ring": 1, "sharers": 1}, {"ring": 2, "sharers": 2}]


def test_recognitions() -> None:
    f = chain()
    f.links = {"la": Link("la", "a")}
    f.clicks = [Click("la", "v", T0 + 2 * DAY)]
    f.applications = {"x": Application("x", "j", T0 + 3 * DAY, "v")}
    f.hires = {"x": Hire("x", "j", T0 + 20 * DAY)}
    due = truth.recognitions(f)
    assert set(due) == {
        "first_post:a",
        "first_post:b",
        "first_post:c",
        "first_post:d",
        "reach_milestone:a:1000",
        "reach_milestone:b:1000",
        "first_applicant:a",
        "hire:a:x",
        "inspired_colleague:a:b",
        "inspired_colleague:b:c",
        "inspired_colleague:a:c",
    }


def test_the_scenario_is_seeded_and_rich() -> None:
    now = datetime(2026, 9, 1, tzinfo=UTC)
    one, two = scenario.generate(3, now=now), scenario.generate(3, now=now)
    assert one == two
    clicks = {i: now for i in range(len(one.clicks))}
    live = {a.candidate: now for a in one.applications if a.applied_at is None}
    facts = one.facts(clicks, live)
    s = truth.summary(facts)
    assert len(s["ripples"]["rings"]) >= 3
    assert s["reach_ratio"] > 1
    assert s["applicants"]["attributed"] > 0
    assert s["hires"]["attributed"] > 0
    assert s["ripples"]["baseline_adjusted"] > 0
    assert len(one.people) == 150
    assert sum(p.ambassador for p in one.people) == 8
    assert {p.locale for p in one.people} == {"da", "en"}


# --- §10 evidence -----------------------------------------------------------------------------


def test_mean_ranks_and_spearman_by_hand() -> None:
    assert truth.mean_ranks([30, 10, 20, 20]) == [4.0, 1.0, 2.5, 2.5]
    # ranks of y: 1, 2, 3.5, 5, 3.5 → r = 8 / sqrt(10 × 9.5)
    pairs = list(zip([1, 2, 3, 4, 5], [5, 6, 7, 8, 7], strict=True))
    assert truth.spearman(pairs) == pytest.approx(8 / (10 * 9.5) ** 0.5)
    assert truth.spearman(pairs[:4]) is None
    assert truth.spearman([(x, 1.0) for x in range(6)]) is None


def test_content_origin_drivers_and_jobs() -> None:
    f = chain()
    f.posts["a2"] = Post("a2", "a", T0 + 5 * DAY, impressions=3000, origin="template")
    f.posts["d1"] = Post("d1", "d", T0 + 6 * DAY, impressions=400, origin="suggested")
    f.employees = {e: Employee(e, e, e == "a", True, followers=10 * (i + 1))
                   for i, e in enumerate("abcdef")}  # fmt: skip
    f.jobs = [
        truth.JobRecord("j1", "Engineer", "eng", False, T0),
        truth.JobRecord("j1", "Engineer", "heat", True, T0 + DAY),  # the latest wins
        truth.JobRecord("j2", None, "it", False, T0),
    ]
    f.applications = {
        "x": Application("x", "j2", T0 + 3 * DAY, referrer="a"),
        "y": Application("y", "j2", T0 + 3 * DAY),
        "z": Application("z", "j1", T0 + 3 * DAY, referrer="d"),
        "w": Application("w", "j9", T0 + 3 * DAY),
    }
    s = truth.summary(f)
    origin = s["content_origin"]
    # own: a1 5000, b1 2000, c1 800 → 2600; prepared: a2 3000, d1 400 → 1700
    assert origin["own"] == {"posts": 3, "impressions": 7800, "mean_impressions_per_post": 2600.0}
    assert origin["own_vs_prepared"] == pytest.approx(2600 / 1700)
    # sharers a (2 posts, 4000 per post), b 2000, c 800, d 400: four, fewer than five
    assert s["drivers"] == {"employees": 4, "followers_spearman": None, "activity_spearman": None}
    assert s["applicants"]["jobs"] == [
        {"family": "heat", "hard_to_recruit": True, "applicants": 1, "attributed": 1,
         "credit": {"independent": 1.0}},
        {"family": "it", "hard_to_recruit": False, "applicants": 2, "attributed": 1,
         "credit": {"1": 1.0}},
        {"family": None, "hard_to_recruit": False, "applicants": 1, "attributed": 0,
         "credit": {}},
    ]  # fmt: skip


def test_interval_problems() -> None:
    want = {
        "reach_ratio": 4.0,
        "ripples": {"lift": None, "baseline_adjusted": 0.5},
        "content_origin": {"own_vs_prepared": 1.5},
    }
    good = {
        "uncertainty": {"reach_ratio": [2.0, 6.0], "lift": None, "baseline_adjusted": [0.0, 2.0]},
        "content_origin": {"interval": [1.5, 1.9]},
    }
    assert truth.interval_problems(good, want) == []
    bad = {
        "uncertainty": {"reach_ratio": [4.5, 6.0], "lift": [1.0, 2.0], "baseline_adjusted": None},
        "content_origin": {"interval": [1.5]},
    }
    assert len(truth.interval_problems(bad, want)) == 4
