"""services/ingest/linkedin_posts.activity_post: the post a ``dmaActivities`` BATCH_GET answer
gives for an activity (https://learn.microsoft.com/en-us/linkedin/dma/content/activities:
``results`` keyed by the activity URN, each with its ``domainEntity``; "The DomainEntity field
will be empty when the author is opted out for sharing their data")."""

from __future__ import annotations

from typing import Any

import pytest

from services.ingest.linkedin_posts import activity_post

ACTIVITY = "urn:li:activity:7074127827113058304"


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            {"results": {ACTIVITY: {"domainEntity": "urn:li:share:7074127826605551616"}}},
            "urn:li:share:7074127826605551616",
        ),
        (
            {
                "results": {
                    "urn%3Ali%3Aactivity%3A7074127827113058304": {
                        "domainEntity": "urn:li:ugcPost:1"
                    }
                }
            },
            "urn:li:ugcPost:1",
        ),
        ({"results": {ACTIVITY: {}}, "statuses": {ACTIVITY: 200}, "errors": {}}, None),
        ({"results": {ACTIVITY: {"domainEntity": ""}}}, None),
        ({"results": {ACTIVITY: {"domainEntity": "urn:li:comment:(urn:li:activity:1,2)"}}}, None),
        ({"results": {}, "statuses": {ACTIVITY: 404}, "errors": {ACTIVITY: {"status": 404}}}, None),
        ({"results": {"urn:li:activity:1": {"domainEntity": "urn:li:share:2"}}}, None),
        ({"results": [ACTIVITY]}, None),
        ([], None),
    ],
)
def test_activity_post(document: Any, expected: str | None) -> None:
    assert activity_post(document, ACTIVITY) == expected
