"""The hand-written scenario of issue 4: a company page, two ambassadors, a reshare chain three
rings deep, a colleague inspired by two people, an independent sharer, clicks before and after
applications, referrals, a hire (and a hire without an application).

All times are June 2026, UTC. The events are listed in a deliberately awkward arrival order
(a reshare before the post it reshares, a click after its application, an older metrics
snapshot after a newer one, engagements after the first share they explain, duplicates).

Who is who (ring by CONTRACT §2):
- amb1 (Anna), amb2 (Bo): ambassadors, ring 1.
- c1 (Carl): first share C1 on 06-04 12:00 reshares amb1's A1 -> ring 2, inspirer amb1 (1.0).
- d1 (Dina): first share D1 on 06-06 08:00 reshares C1 -> ring 3, inspirer c1 (1.0).
  Dina also reacts to A2 on 06-07, after her first share: it changes nothing in her ring.
- g1 (Gry): first share G1 on 06-08 00:00; commented on C1 (c1, ring 2) on 06-06 00:00 and
  reacted to A2 (amb2, ring 1) on 06-07 00:00 -> ring 1 + min(1, 2) = 2, inspirers amb2
  (1 day before) and c1 (2 days before).
- solo (Sif): first share S1 on 06-05 00:00 with no exposure -> independent.
- quiet (Ole): never shares, never exposed. watcher (Vera): reacted to A1 on 06-09, never
  shares.
"""

from __future__ import annotations

import itertools
from typing import Any

from services.attribution import evidence

_seq = itertools.count(1)


def ev(kind: str, time: str, data: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id or f"scn-{next(_seq):03d}",
        "source": "urn:test:scenario",
        "type": f"ripples.{kind}.v1",
        "time": time,
        "data": data,
    }


def person(employee_id: str, name: str, ambassador: bool = False) -> dict[str, Any]:
    return ev(
        "employee.upserted",
        "2026-05-01T00:00:00Z",
        {
            "employee_id": employee_id,
            "display_name": name,
            "ambassador": ambassador,
            "locale": "da",
            "notify": {"channel": "webhook", "address": "http://127.0.0.1:9/hook"},
        },
    )


def post(
    post_id: str,
    author: str | None,
    published_at: str,
    reshare_of: str | None = None,
    link_codes: tuple[str, ...] = (),
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "post_id": post_id,
        "author_kind": "company" if author is None else "employee",
        "published_at": published_at,
        "link_codes": list(link_codes),
    }
    if author is not None:
        data["employee_id"] = author
    if reshare_of is not None:
        data["reshare_of"] = reshare_of
    return ev("post.published", published_at, data)


def metrics(post_id: str, observed_at: str, impressions: int, clicks: int, **more: int) -> Any:
    return ev(
        "post.metrics",
        observed_at,
        {"post_id": post_id, "observed_at": observed_at, "impressions": impressions,
         "clicks": clicks, **more},
    )  # fmt: skip


def engage(post_id: str, actor: str, at: str, action: str = "reaction") -> dict[str, Any]:
    return ev(
        "post.engagement", at, {"post_id": post_id, "action": action, "at": at,
                                "actor_employee_id": actor}
    )  # fmt: skip


def link(code: str, employee_id: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "link_code": code,
        "target_url": "https://careers.example.com/jobs/J1",
        "job_id": "J1",
    }
    if employee_id is not None:
        data["employee_id"] = employee_id
    return ev("link.created", "2026-05-01T00:00:00Z", data)


def click(code: str, visitor: str, at: str) -> dict[str, Any]:
    return ev("link.clicked", at, {"link_code": code, "visitor_id": visitor, "at": at})


def applied(applicant: str, at: str, **more: str) -> dict[str, Any]:
    return ev(
        "applicant.applied",
        at,
        {"applicant_id": applicant, "job_id": "J1", "applied_at": at, **more},
    )


def hired(applicant: str, at: str) -> dict[str, Any]:
    return ev("applicant.hired", at, {"applicant_id": applicant, "job_id": "J1", "hired_at": at})


_duplicate_of_click = click("L-co", "v1", "2026-06-02T00:00:00Z")

EVENTS: list[dict[str, Any]] = [
    person("amb1", "Anna", ambassador=True),
    person("amb2", "Bo", ambassador=True),
    person("c1", "Carl"),
    person("d1", "Dina"),
    person("g1", "Gry"),
    person("solo", "Sif"),
    person("quiet", "Ole"),
    person("watcher", "Vera"),
    link("L-amb1", "amb1"),
    link("L-c1", "c1"),
    link("L-co", None),
    # the company page
    post("P0", None, "2026-06-01T08:00:00Z"),
    post("P0b", None, "2026-06-02T08:00:00Z"),
    metrics("P0", "2026-06-05T00:00:00Z", 400, 4),
    metrics("P0b", "2026-06-05T00:00:00Z", 200, 0),
    # Dina's reshare arrives before Carl's post it reshares, which arrives before A1
    post("D1", "d1", "2026-06-06T08:00:00Z", reshare_of="C1"),
    post("C1", "c1", "2026-06-04T12:00:00Z", reshare_of="A1", link_codes=("L-c1",)),
    post("A1", "amb1", "2026-06-01T10:00:00Z", link_codes=("L-amb1",)),
    post("A2", "amb2", "2026-06-03T09:00:00Z"),
    post("S1", "solo", "2026-06-05T00:00:00Z"),
    post("G1", "g1", "2026-06-08T00:00:00Z"),
    # Gry's exposures arrive after her first share
    engage("C1", "g1", "2026-06-06T00:00:00Z", "comment"),
    engage("A2", "g1", "2026-06-07T00:00:00Z"),
    engage("A2", "d1", "2026-06-07T00:00:00Z"),  # after Dina's first share: no effect
    engage("A1", "watcher", "2026-06-09T00:00:00Z"),
    # metrics: the newest A1 snapshot first, then an older one and a smaller one at the same
    # observed_at; neither changes anything
    metrics("A1", "2026-06-05T00:00:00Z", 2000, 20, reactions=30, comments=5, reshares=2),
    metrics("A1", "2026-06-02T00:00:00Z", 1500, 15, reactions=10, comments=1, reshares=1),
    metrics("A1", "2026-06-05T00:00:00Z", 1999, 19, reactions=29, comments=4, reshares=1),
    metrics("A2", "2026-06-05T00:00:00Z", 1000, 10, reactions=12, comments=3, reshares=0),
    metrics("C1", "2026-06-08T00:00:00Z", 600, 6, reactions=8),
    metrics("D1", "2026-06-08T00:00:00Z", 300, 3),
    metrics("G1", "2026-06-09T00:00:00Z", 100, 1),
    metrics("S1", "2026-06-09T00:00:00Z", 50, 0),
    # ap1: a company-link click, the application (with Carl's link code, never clicked), the
    # click on Anna's link that happened before the application but arrives after it, a
    # click after the application (not a touch), and the hire
    _duplicate_of_click,
    applied("ap1", "2026-06-06T00:00:00Z", visitor_id="v1", link_code="L-c1"),
    click("L-amb1", "v1", "2026-06-05T00:00:00Z"),
    click("L-amb1", "v1", "2026-06-07T00:00:00Z"),
    _duplicate_of_click,  # the same event again
    hired("ap1", "2026-06-20T00:00:00Z"),
    # ap2: a referral by Dina only
    applied("ap2", "2026-06-10T00:00:00Z", referrer_employee_id="d1"),
    # ap3: a click 33 days before (outside the 30-day lookback), a click on an unknown link
    click("L-c1", "v3", "2026-05-10T00:00:00Z"),
    click("L-zz", "v3", "2026-06-11T00:00:00Z"),
    applied("ap3", "2026-06-12T00:00:00Z", visitor_id="v3"),
    # ap4: clicks on Anna's then Carl's link, and a referral by Bo
    applied("ap4", "2026-06-11T00:00:00Z", visitor_id="v4", referrer_employee_id="amb2"),
    click("L-amb1", "v4", "2026-06-09T00:00:00Z"),
    click("L-c1", "v4", "2026-06-10T00:00:00Z"),
    # ap5: a hire whose application never arrived
    hired("ap5", "2026-06-21T00:00:00Z"),
]

# --- expected answers, computed by hand from the contract ----------------------------------

THIRD = round(1 / 3, 12)  # 0.333333333333
TWO_THIRDS = round(2 / 3, 12)  # 1/3 + 1/3 = 0.666666666667
# g1's inspirers at s = 06-08: amb2 exposed 1 day before, c1 2 days before (half-life 7 d)
_G_AMB2 = 2 ** (-1 / 7) / (2 ** (-1 / 7) + 2 ** (-2 / 7))
_G_C1 = 2 ** (-2 / 7) / (2 ** (-1 / 7) + 2 ** (-2 / 7))
# ap1 touches at 06-02 (4 days before T), 06-05 (1 day), 06-06 (T): raw 2^(-4/7), 2^(-1/7), 1
_AP1 = [2 ** (-4 / 7), 2 ** (-1 / 7), 1.0]

ZERO_RINGS = {"0": 0.0, "1": 0.0, "2": 0.0, "3": 0.0, "independent": 0.0}


class Containing:
    """Equal to any bootstrap interval [low, high] with low <= point <= high (CONTRACT §10:
    each interval contains its point value). The intervals' exact bounds depend on the
    seeded resampling, not on a rule a hand can follow; their reproducibility is checked by
    the byte comparisons of the same facts fed in other orders."""

    def __init__(self, point: float) -> None:
        self.point = point

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, list)
            and len(other) == 2
            and all(isinstance(v, float) for v in other)
            and other[0] <= self.point <= other[1]
        )

    def __hash__(self) -> int:
        return hash(self.point)

    def __repr__(self) -> str:
        return f"Containing({self.point})"


def uncertainty(**intervals: Containing | None) -> dict[str, Any]:
    return {"method": "bootstrap", "level": 0.95, "samples": 2000, "seed": 20240601, **intervals}


def scale_up(ambassadors: int, impressions: float, applicants: float) -> dict[str, Any]:
    """The scale-up estimate from the mean per ambassador, for 25, 50 and 100 ambassadors."""
    return {
        "estimate": True,
        "ambassadors": ambassadors,
        "per_ambassador": {
            "impressions": impressions,
            "impressions_interval": Containing(impressions),
            "applicants": applicants,
            "applicants_interval": Containing(applicants),
        },
        "targets": [
            {
                "ambassadors": n,
                "impressions": n * impressions,
                "impressions_interval": Containing(n * impressions),
                "applicants": round(n * applicants, 12),
                "applicants_interval": Containing(round(n * applicants, 12)),
            }
            for n in (25, 50, 100)
        ],
        "assumptions": evidence.SCALE_UP_ASSUMPTIONS,
    }


def no_origin(posts: int, impressions: int) -> dict[str, Any]:
    """content_origin when every employee post is `own` (no event of the scenario says
    otherwise): no prepared posts, so no ratio."""
    none = {"posts": 0, "impressions": 0, "mean_impressions_per_post": None}
    return {
        "own": {"posts": posts, "impressions": impressions,
                "mean_impressions_per_post": impressions / posts},
        "suggested": none,
        "template": none,
        "own_vs_prepared": None,
        "interval": None,
    }  # fmt: skip


SUMMARY_ALL_LINEAR: dict[str, Any] = {
    "period": {"from": None, "to": None},
    "model": "linear",
    # P0 400 + P0b 200 = 600 impressions over 2 posts; clicks 4 + 0
    "company": {"posts": 2, "impressions": 600, "clicks": 4, "mean_impressions_per_post": 300.0},
    # A1 2000 (latest snapshot) + A2 1000; clicks 20 + 10
    "ambassadors": {
        "posts": 2,
        "impressions": 3000,
        "clicks": 30,
        "mean_impressions_per_post": 1500.0,
    },
    # C1 600 + D1 300 + G1 100 = 1000 over 3 posts by 3 sharers
    "spillover": {
        "posts": 3,
        "impressions": 1000,
        "clicks": 10,
        "mean_impressions_per_post": round(1000 / 3, 12),
        "sharers": 3,
    },
    "independent": {"posts": 1, "impressions": 50, "clicks": 0, "mean_impressions_per_post": 50.0},
    # 1500 / 300
    "reach_ratio": 5.0,
    "applicants": {
        # ap1..ap4; ap3 has no touch (click too old, unknown link)
        "total": 4,
        "attributed": 3,
        "unattributed": 1,
        # linear: ap1 = company, amb1, c1 a third each; ap2 = d1 1; ap4 = amb1, c1, amb2 a third
        # ring 1: amb1 1/3 + amb1 1/3 + amb2 1/3 = 1; ring 2: c1 1/3 + 1/3; ring 3: d1 1
        "credit_by_ring": {"0": THIRD, "1": 1.0, "2": TWO_THIRDS, "3": 1.0, "independent": 0.0},
        # J1 was never upserted: one family, null
        "jobs": [
            {
                "family": None,
                "hard_to_recruit": False,
                "applicants": 4,
                "attributed": 3,
                "credit": {"0": THIRD, "1": 1.0, "2": TWO_THIRDS, "3": 1.0, "independent": 0.0},
            }
        ],
    },
    # ap1 hired (credited like its application) and ap5 (no application: unattributed)
    "hires": {
        "total": 2,
        "attributed": 1,
        "credit_by_ring": {"0": THIRD, "1": THIRD, "2": THIRD, "3": 0.0, "independent": 0.0},
    },
    # employee posts: 3000 + 1000 + 50 = 4050 impressions, 30 + 10 + 0 = 40 clicks
    # 4050 / 1000 x 220 + 40 x 40 = 891 + 1600
    "emv": {"currency": "DKK", "value": 2491.0},
    "ripples": {
        "rings": [
            {"ring": 1, "sharers": 2},
            {"ring": 2, "sharers": 2},
            {"ring": 3, "sharers": 1},
        ],
        # P = c1, d1, g1, solo, quiet, watcher; X = c1, d1, g1, watcher; U = solo, quiet
        # adopters_X = c1, d1, g1 (3); adopters_U = solo (1) -> rate_U = 1/2
        # expected = 1/2 x 4 = 2; adjusted = 3 - 2 = 1; lift = (3/4) / (1/2) = 1.5
        "inspired": 3,
        "expected_by_chance": 2.0,
        "baseline_adjusted": 1.0,
        "lift": 1.5,
    },
    "uncertainty": uncertainty(
        reach_ratio=Containing(5.0), lift=Containing(1.5), baseline_adjusted=Containing(1.0)
    ),
    # employee posts A1 2000, A2 1000, C1 600, D1 300, G1 100, S1 50: all own words
    "content_origin": no_origin(6, 4050),
    # six sharers with one post each (activity constant), no follower counts known
    "drivers": {"employees": 6, "followers_spearman": None, "activity_spearman": None},
    # amb1: A1 2000, linear credit 1/3 + 1/3; amb2: A2 1000, 1/3 → means 1500 and 0.5
    "scale_up": scale_up(2, 1500.0, 0.5),
}

PERIOD = ("2026-06-05T00:00:00Z", "2026-06-10T00:00:00Z")
SUMMARY_PERIOD_FIRST_TOUCH: dict[str, Any] = {
    "period": {"from": PERIOD[0], "to": PERIOD[1]},
    "model": "first_touch",
    # posts published in [06-05, 06-10): S1, D1, G1
    "company": {"posts": 0, "impressions": 0, "clicks": 0, "mean_impressions_per_post": None},
    "ambassadors": {"posts": 0, "impressions": 0, "clicks": 0, "mean_impressions_per_post": None},
    "spillover": {
        "posts": 2,
        "impressions": 400,
        "clicks": 4,
        "mean_impressions_per_post": 200.0,
        "sharers": 2,
    },
    "independent": {"posts": 1, "impressions": 50, "clicks": 0, "mean_impressions_per_post": 50.0},
    "reach_ratio": None,
    # only ap1 applied in the period; first touch = the company-link click
    "applicants": {
        "total": 1,
        "attributed": 1,
        "unattributed": 0,
        "credit_by_ring": ZERO_RINGS | {"0": 1.0},
        "jobs": [
            {
                "family": None,
                "hard_to_recruit": False,
                "applicants": 1,
                "attributed": 1,
                "credit": ZERO_RINGS | {"0": 1.0},
            }
        ],
    },
    "hires": {"total": 0, "attributed": 0, "credit_by_ring": ZERO_RINGS},
    # 450 / 1000 x 220 + 4 x 40 = 99 + 160
    "emv": {"currency": "DKK", "value": 259.0},
    "ripples": {
        # first shares before `to`: amb1, amb2 | c1, g1 | d1
        "rings": [
            {"ring": 1, "sharers": 2},
            {"ring": 2, "sharers": 2},
            {"ring": 3, "sharers": 1},
        ],
        # P (no share before 06-05) = d1, g1, solo, quiet, watcher; window from 05-22
        # X = d1, g1, watcher; U = solo, quiet; adopters_X = d1, g1; adopters_U = solo
        # expected = 1/2 x 3 = 1.5; adjusted = 0.5; lift = (2/3) / (1/2)
        "inspired": 2,
        "expected_by_chance": 1.5,
        "baseline_adjusted": 0.5,
        "lift": round(4 / 3, 12),
    },
    # no company or ambassador post in the period: no reach ratio, so no interval
    "uncertainty": uncertainty(
        reach_ratio=None, lift=Containing(round(4 / 3, 12)), baseline_adjusted=Containing(0.5)
    ),
    "content_origin": no_origin(3, 450),
    "drivers": {"employees": 3, "followers_spearman": None, "activity_spearman": None},
    # no ambassador post and no ambassador credit in the period
    "scale_up": scale_up(2, 0.0, 0.0),
}


def _sharer(employee_id: str, name: str, ring: int | None, **values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "employee_id": employee_id,
        "display_name": name,
        "ring": ring,
        "posts": 1,
        "impressions": 0,
        "reactions": 0,
        "comments": 0,
        "reshares": 0,
        "clicks": 0,
        "applicant_credit": 0.0,
        "hire_credit": 0.0,
        "inspired": [],
    }
    return base | values


# linear credit; order: applicant credit, then impressions (descending), then id
SHARERS_ALL_LINEAR = [
    _sharer("d1", "Dina", 3, impressions=300, clicks=3, applicant_credit=1.0),
    _sharer(
        "amb1", "Anna", 1, impressions=2000, reactions=30, comments=5, reshares=2, clicks=20,
        applicant_credit=TWO_THIRDS, hire_credit=THIRD, inspired=["c1"],
    ),
    _sharer(
        "c1", "Carl", 2, impressions=600, reactions=8, clicks=6, applicant_credit=TWO_THIRDS,
        hire_credit=THIRD, inspired=["d1", "g1"],
    ),
    _sharer(
        "amb2", "Bo", 1, impressions=1000, reactions=12, comments=3, clicks=10,
        applicant_credit=THIRD, inspired=["g1"],
    ),
    _sharer("g1", "Gry", 2, impressions=100, clicks=1),
    _sharer("solo", "Sif", None, impressions=50),
]  # fmt: skip

_decay_total = sum(_AP1)
CONVERSION_AP1 = {
    "applicant_id": "ap1",
    "job_id": "J1",
    "applied_at": "2026-06-06T00:00:00Z",
    "hired_at": "2026-06-20T00:00:00Z",
    "touches": [
        {"at": "2026-06-02T00:00:00Z", "kind": "click", "employee_id": None, "link_code": "L-co"},
        {"at": "2026-06-05T00:00:00Z", "kind": "click", "employee_id": "amb1",
         "link_code": "L-amb1"},
        {"at": "2026-06-06T00:00:00Z", "kind": "link_code", "employee_id": "c1",
         "link_code": "L-c1"},
    ],
    "credit": {
        "first_touch": [{"employee_id": None, "ring": 0, "weight": 1.0}],
        "last_touch": [{"employee_id": "c1", "ring": 2, "weight": 1.0}],
        "linear": [
            {"employee_id": None, "ring": 0, "weight": THIRD},
            {"employee_id": "amb1", "ring": 1, "weight": THIRD},
            {"employee_id": "c1", "ring": 2, "weight": THIRD},
        ],
        # n = 3: 0.4 first, 0.2 middle, 0.4 last
        "position_based": [
            {"employee_id": None, "ring": 0, "weight": 0.4},
            {"employee_id": "amb1", "ring": 1, "weight": 0.2},
            {"employee_id": "c1", "ring": 2, "weight": 0.4},
        ],
        "time_decay": [
            {"employee_id": None, "ring": 0, "weight": round(_AP1[0] / _decay_total, 12)},
            {"employee_id": "amb1", "ring": 1, "weight": round(_AP1[1] / _decay_total, 12)},
            {"employee_id": "c1", "ring": 2, "weight": round(_AP1[2] / _decay_total, 12)},
        ],
    },
}  # fmt: skip

_all = {"weight": 1.0}
CONVERSION_AP2 = {
    "applicant_id": "ap2",
    "job_id": "J1",
    "applied_at": "2026-06-10T00:00:00Z",
    "hired_at": None,
    "touches": [
        {"at": "2026-06-10T00:00:00Z", "kind": "referral", "employee_id": "d1", "link_code": None}
    ],
    "credit": {
        m: [{"employee_id": "d1", "ring": 3, "weight": 1.0}]
        for m in ("first_touch", "last_touch", "linear", "position_based", "time_decay")
    },
}

CONVERSION_AP5 = {
    "applicant_id": "ap5",
    "job_id": "J1",
    "applied_at": None,
    "hired_at": "2026-06-21T00:00:00Z",
    "touches": [],
    "credit": {
        m: [] for m in ("first_touch", "last_touch", "linear", "position_based", "time_decay")
    },
}

RIPPLES = {
    "nodes": [
        {"employee_id": "amb1", "ring": 1, "first_shared_at": "2026-06-01T10:00:00Z"},
        {"employee_id": "amb2", "ring": 1, "first_shared_at": "2026-06-03T09:00:00Z"},
        {"employee_id": "c1", "ring": 2, "first_shared_at": "2026-06-04T12:00:00Z"},
        {"employee_id": "d1", "ring": 3, "first_shared_at": "2026-06-06T08:00:00Z"},
        {"employee_id": "g1", "ring": 2, "first_shared_at": "2026-06-08T00:00:00Z"},
        {"employee_id": "solo", "ring": None, "first_shared_at": "2026-06-05T00:00:00Z"},
    ],
    "edges": [
        {"from": "amb1", "to": "c1", "weight": 1.0, "exposure": "reshare",
         "exposed_at": "2026-06-04T12:00:00Z"},
        {"from": "c1", "to": "d1", "weight": 1.0, "exposure": "reshare",
         "exposed_at": "2026-06-06T08:00:00Z"},
        {"from": "amb2", "to": "g1", "weight": round(_G_AMB2, 12), "exposure": "engagement",
         "exposed_at": "2026-06-07T00:00:00Z"},
        {"from": "c1", "to": "g1", "weight": round(_G_C1, 12), "exposure": "engagement",
         "exposed_at": "2026-06-06T00:00:00Z"},
    ],
}  # fmt: skip

RECOGNITION_IDS = {
    *(f"first_post:{e}" for e in ("amb1", "amb2", "c1", "d1", "g1", "solo")),
    "reach_milestone:amb1:1000",  # 2000 impressions
    "reach_milestone:amb2:1000",  # 1000 impressions
    # linear credit > 0 (the company earns no recognition)
    *(f"first_applicant:{e}" for e in ("amb1", "amb2", "c1", "d1")),
    "hire:amb1:ap1",
    "hire:c1:ap1",
    "inspired_colleague:amb1:c1",
    "inspired_colleague:c1:d1",
    "inspired_colleague:amb2:g1",
    "inspired_colleague:c1:g1",
}
