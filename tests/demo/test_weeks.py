"""The demo pilot's weeks look like a pilot: applicants arrive over the period, in step with
the posts, not piled up on the day the demo runs (issue 17 part 5: the demo report's last
week showed ~25 applicants against one post)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from ripples.demo import scenario


def _week(value: datetime) -> datetime:
    day = value.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


@pytest.mark.parametrize("seed", [7, 11, 3])
def test_applicants_are_spread_over_the_pilot_not_piled_on_the_run(seed: int) -> None:
    # The demo runs on a Tuesday morning: the player stamps live applications with that moment.
    run = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    pilot = scenario.generate(seed, now=run)
    applied = [a.applied_at or run for a in pilot.applications]
    per_week = Counter(_week(a) for a in applied)
    posts = Counter(_week(p.published_at) for p in pilot.posts)
    weeks = sorted(set(per_week) | set(posts))
    mean = len(applied) / len(weeks)
    last = weeks[-1]
    assert per_week[last] <= 2 * mean, (
        f"the last week has {per_week[last]} applicants against {posts[last]} posts "
        f"(mean {mean:.1f} a week)"
    )
    assert max(per_week.values()) <= 3 * mean, per_week
