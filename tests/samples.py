"""One valid event of every contract type, as a client would POST it (structured mode)."""

from __future__ import annotations

import copy
import itertools
from typing import Any

_ids = itertools.count(1)

DATA: dict[str, dict[str, Any]] = {
    "ripples.employee.upserted.v1": {
        "employee_id": "emp-1",
        "display_name": "Mette Jensen",
        "ambassador": True,
        "department": "Water supply",
        "locale": "da",
        "notify": {"channel": "webhook", "address": "http://127.0.0.1:9/hook"},
        "recognition_opt_out": False,
        "linkedin_member_urn": "urn:li:person:abc123",
        "followers": 1250,
    },
    "ripples.employee.removed.v1": {"employee_id": "emp-2"},
    "ripples.employee.preferences.v1": {
        "employee_id": "emp-1",
        "notify": {"channel": "slack", "address": "http://127.0.0.1:9/slack"},
        "recognition_opt_out": True,
    },
    "ripples.post.published.v1": {
        "post_id": "urn:li:share:7001",
        "author_kind": "employee",
        "employee_id": "emp-1",
        "published_at": "2026-06-03T08:15:00+02:00",
        "url": "https://www.linkedin.com/feed/x",
        "reshare_of": "urn:li:share:7000",
        "link_codes": ["aB3xY9"],
        "origin": "suggested",
    },
    "ripples.post.metrics.v1": {
        "post_id": "urn:li:share:7001",
        "observed_at": "2026-06-04T08:00:00Z",
        "impressions": 1234,
        "members_reached": 800,
        "reactions": 41,
        "comments": 7,
        "reshares": 3,
        "clicks": 19,
    },
    "ripples.post.engagement.v1": {
        "post_id": "urn:li:share:7001",
        "action": "reshare",
        "at": "2026-06-03T09:00:00Z",
        "actor_employee_id": "emp-7",
    },
    "ripples.link.created.v1": {
        "link_code": "aB3xY9",
        "target_url": "https://careers.example.com/jobs/42",
        "employee_id": "emp-1",
        "job_id": "job-42",
        "post_id": "urn:li:share:7001",
    },
    "ripples.link.clicked.v1": {
        "link_code": "aB3xY9",
        "visitor_id": "v-5f2c",
        "at": "2026-06-03T10:00:00Z",
    },
    "ripples.applicant.applied.v1": {
        "applicant_id": "app-9d1e",
        "job_id": "job-42",
        "applied_at": "2026-06-05T12:00:00Z",
        "visitor_id": "v-5f2c",
        "link_code": "aB3xY9",
        "referrer_employee_id": "emp-1",
        "source": "LinkedIn",
    },
    "ripples.applicant.hired.v1": {
        "applicant_id": "app-9d1e",
        "job_id": "job-42",
        "hired_at": "2026-07-01T09:00:00Z",
    },
    "ripples.applicant.erased.v1": {"applicant_id": "app-9d1e"},
    "ripples.job.upserted.v1": {
        "job_id": "job-42",
        "title": "District heating engineer",
        "family": "engineering",
        "hard_to_recruit": True,
    },
}

KEYS = {
    "ripples.employee.upserted.v1": "emp-1",
    "ripples.employee.removed.v1": "emp-2",
    "ripples.employee.preferences.v1": "prefs:emp-1:notify,recognition_opt_out",
    "ripples.post.published.v1": "urn:li:share:7001",
    "ripples.post.metrics.v1": "urn:li:share:7001",
    "ripples.post.engagement.v1": "urn:li:share:7001",
    "ripples.link.created.v1": "aB3xY9",
    "ripples.link.clicked.v1": "aB3xY9",
    "ripples.applicant.applied.v1": "app-9d1e",
    "ripples.applicant.hired.v1": "app-9d1e",
    "ripples.applicant.erased.v1": "app-9d1e",
    "ripples.job.upserted.v1": "job-42",
}


def event(event_type: str, data: dict[str, Any] | None = None, **attributes: Any) -> dict[str, Any]:
    """A structured CloudEvent of ``event_type`` with a fresh id."""
    return {
        "specversion": "1.0",
        "id": f"evt-{next(_ids)}",
        "source": "urn:ripples:test",
        "type": event_type,
        "time": "2026-06-03T08:15:01Z",
        "data": copy.deepcopy(DATA[event_type] if data is None else data),
        **attributes,
    }
