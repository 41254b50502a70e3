"""The employee's page names why a post could not be registered, from the problem the API route
answered (services/ingest/page/routes.py ``_posts``): an activity link LinkedIn will not
resolve gets its own da/en advice (copy the post's own link), not "not one of your posts"."""

from __future__ import annotations

import types
from typing import Any

import pytest

from services.ingest.page.routes import SelfService
from services.ingest.page.texts import TEXTS
from shared.http import ProblemError


def refusing(problem: ProblemError) -> SelfService:
    page = SelfService.__new__(SelfService)

    async def call(*_: Any) -> Any:
        raise problem

    page._call = call  # type: ignore[method-assign]  # the route's answer, without the route
    page.connect = types.SimpleNamespace(register_post=None)  # type: ignore[assignment]  # only named
    return page


@pytest.mark.parametrize(
    ("problem", "status", "text"),
    [
        (ProblemError(422, "unresolvable-activity-url", "t", "d"), 422, "error_activity_url"),
        (ProblemError(422, "not-own-post", "t", "d"), 422, "error_post_url"),
        (ProblemError(409, "not-connected", "t", "d"), 409, "error_not_connected"),
        (ProblemError(503, "linkedin-unavailable", "t", "d"), 503, "error_unavailable"),
    ],
)
async def test_each_refusal_gets_its_own_words(
    problem: ProblemError, status: int, text: str
) -> None:
    answer = await refusing(problem)._posts(None, "tok", "emp-1", {"url": "u"})  # type: ignore[arg-type]
    assert answer == (status, {"url": text})
    assert all(TEXTS[locale][text] for locale in ("da", "en"))
