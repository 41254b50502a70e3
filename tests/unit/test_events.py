"""The contract models (CONTRACT §1): what they accept, what they refuse, and how each error
names its field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from shared.cloudevents import InvalidEvent, parse_structured, to_kafka
from shared.events import (
    APPLICANTS,
    BY_TYPE,
    EMPLOYEES,
    INBOUND_TYPES,
    LINKS,
    POSTS,
    TOPICS,
    EmployeePreferencesEvent,
    EmployeeUpserted,
    Envelope,
    PostMetrics,
    preference_keys,
)
from tests import samples


def parse(event: dict[str, object]):
    return parse_structured(orjson.dumps(event))


def errors(event: dict[str, object]) -> list[tuple[str, str]]:
    with pytest.raises(InvalidEvent) as caught:
        parse(event)
    return [(e.field, e.detail) for e in caught.value.errors]


def test_every_contract_type_is_known() -> None:
    assert set(INBOUND_TYPES) == {
        "ripples.employee.upserted.v1",
        "ripples.employee.removed.v1",
        "ripples.employee.preferences.v1",
        "ripples.post.published.v1",
        "ripples.post.metrics.v1",
        "ripples.post.engagement.v1",
        "ripples.link.created.v1",
        "ripples.link.clicked.v1",
        "ripples.applicant.applied.v1",
        "ripples.applicant.hired.v1",
        "ripples.applicant.erased.v1",
        "ripples.job.upserted.v1",
    }


@pytest.mark.parametrize("event_type", INBOUND_TYPES)
def test_each_sample_parses_to_its_type(event_type: str) -> None:
    event = parse(samples.event(event_type))
    assert type(event) is BY_TYPE[event_type]
    assert event.type == event_type
    assert event.key == samples.KEYS[event_type].encode()


@pytest.mark.parametrize(
    ("event_type", "topic"),
    [
        ("ripples.employee.upserted.v1", EMPLOYEES),
        ("ripples.employee.removed.v1", EMPLOYEES),
        ("ripples.post.published.v1", POSTS),
        ("ripples.post.metrics.v1", POSTS),
        ("ripples.post.engagement.v1", POSTS),
        ("ripples.link.created.v1", LINKS),
        ("ripples.link.clicked.v1", LINKS),
        ("ripples.applicant.applied.v1", APPLICANTS),
        ("ripples.applicant.hired.v1", APPLICANTS),
        ("ripples.applicant.erased.v1", APPLICANTS),
        ("ripples.job.upserted.v1", APPLICANTS),
    ],
)
def test_events_of_one_entity_share_a_topic(event_type: str, topic: object) -> None:
    assert BY_TYPE[event_type].topic is topic


def test_evidence_fields_are_optional_with_their_defaults() -> None:
    """CONTRACT §10: older events without origin, followers or a job's flags stay valid."""
    post = dict(samples.DATA["ripples.post.published.v1"])
    del post["origin"]
    assert parse(samples.event("ripples.post.published.v1", post)).data.origin == "own"
    employee = dict(samples.DATA["ripples.employee.upserted.v1"])
    del employee["followers"]
    assert parse(samples.event("ripples.employee.upserted.v1", employee)).data.followers is None
    job = parse(samples.event("ripples.job.upserted.v1", {"job_id": "j"})).data
    assert (job.title, job.family, job.hard_to_recruit) == (None, None, False)


@pytest.mark.parametrize(
    ("event_type", "change", "field"),
    [
        ("ripples.post.published.v1", {"origin": "copied"}, "data.origin"),
        ("ripples.employee.upserted.v1", {"followers": -1}, "data.followers"),
        ("ripples.employee.upserted.v1", {"followers": 1.5}, "data.followers"),
        ("ripples.job.upserted.v1", {"job_id": ""}, "data.job_id"),
        ("ripples.job.upserted.v1", {"hard_to_recruit": "yes"}, "data.hard_to_recruit"),
    ],
)
def test_evidence_fields_are_checked(
    event_type: str, change: dict[str, object], field: str
) -> None:
    event = samples.event(event_type, samples.DATA[event_type] | change)
    assert [f for f, _ in errors(event)] == [field]


def test_topics_have_explicit_partition_counts() -> None:
    assert all(t.partitions >= 1 for t in TOPICS)
    assert len({t.name for t in TOPICS}) == len(TOPICS)


@pytest.mark.parametrize("event_type", INBOUND_TYPES)
def test_every_required_field_is_named_when_missing(event_type: str) -> None:
    required = {
        "ripples.employee.upserted.v1": ["employee_id", "display_name"],
        "ripples.employee.removed.v1": ["employee_id"],
        "ripples.employee.preferences.v1": ["employee_id"],
        "ripples.post.published.v1": ["post_id", "author_kind", "published_at"],
        "ripples.post.metrics.v1": ["post_id", "observed_at"],
        "ripples.post.engagement.v1": ["post_id", "action", "at"],
        "ripples.link.created.v1": ["link_code", "target_url"],
        "ripples.link.clicked.v1": ["link_code", "visitor_id", "at"],
        "ripples.applicant.applied.v1": ["applicant_id", "job_id", "applied_at"],
        "ripples.applicant.hired.v1": ["applicant_id", "job_id", "hired_at"],
        "ripples.applicant.erased.v1": ["applicant_id"],
        "ripples.job.upserted.v1": ["job_id"],
    }[event_type]
    for name in required:
        event = samples.event(event_type)
        del event["data"][name]
        assert errors(event) == [(f"data.{name}", "required field is missing")]


@pytest.mark.parametrize("attribute", ["specversion", "id", "source", "type", "time", "data"])
def test_every_required_attribute_is_named_when_missing(attribute: str) -> None:
    event = samples.event("ripples.applicant.erased.v1")
    del event[attribute]
    ((field, _),) = errors(event)
    assert field == attribute


def test_defaults_of_an_employee_record() -> None:
    data = {"employee_id": "e1", "display_name": "Ann"}
    employee = parse(samples.event("ripples.employee.upserted.v1", data)).data
    assert isinstance(employee, EmployeeUpserted)
    assert (
        employee.ambassador,
        employee.locale,
        employee.notify,
        employee.recognition_opt_out,
    ) == (False, "en", None, False)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"locale": "de"}, "data.locale"),
        ({"ambassador": "yes"}, "data.ambassador"),
        ({"notify": {"channel": "pigeon", "address": "x"}}, "data.notify.channel"),
        ({"notify": {"channel": "slack"}}, "data.notify.address"),
        ({"display_name": ""}, "data.display_name"),
        ({"employee_id": "x" * 257}, "data.employee_id"),
    ],
)
def test_employee_validation(change: dict[str, object], field: str) -> None:
    data = samples.DATA["ripples.employee.upserted.v1"] | change
    ((found, _),) = errors(samples.event("ripples.employee.upserted.v1", data))
    assert found == field


def test_a_notify_record_of_none_needs_no_address() -> None:
    data = samples.DATA["ripples.employee.upserted.v1"] | {"notify": {"channel": "none"}}
    assert parse(samples.event("ripples.employee.upserted.v1", data)).data.notify.channel == "none"


def test_an_employee_post_needs_its_author() -> None:
    data = dict(samples.DATA["ripples.post.published.v1"])
    del data["employee_id"]
    ((field, detail),) = errors(samples.event("ripples.post.published.v1", data))
    assert field == "data.employee_id"
    assert "author_kind" in detail


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"author_kind": "bot"}, "data.author_kind"),
        ({"link_codes": ["ok", "not ok!"]}, "data.link_codes[1]"),
        ({"url": "javascript:alert(1)"}, "data.url"),
        ({"published_at": "2026-06-03 08:15"}, "data.published_at"),
    ],
)
def test_post_validation(change: dict[str, object], field: str) -> None:
    data = samples.DATA["ripples.post.published.v1"] | change
    ((found, _),) = errors(samples.event("ripples.post.published.v1", data))
    assert found == field


@pytest.mark.parametrize(
    "name", ["impressions", "members_reached", "reactions", "comments", "reshares", "clicks"]
)
@pytest.mark.parametrize("value", [-1, 1.5, "7", True, 10**16])
def test_metric_counts_are_non_negative_integers(name: str, value: object) -> None:
    data = samples.DATA["ripples.post.metrics.v1"] | {name: value}
    ((field, _),) = errors(samples.event("ripples.post.metrics.v1", data))
    assert field == f"data.{name}"


def test_absent_metrics_stay_absent() -> None:
    data = {"post_id": "p", "observed_at": "2026-06-04T08:00:00Z", "impressions": 0}
    metrics = parse(samples.event("ripples.post.metrics.v1", data)).data
    assert isinstance(metrics, PostMetrics)
    assert metrics.impressions == 0
    assert metrics.clicks is None  # not observed is not the same as zero


@pytest.mark.parametrize("action", ["like", "", None])
def test_engagement_actions(action: object) -> None:
    data = samples.DATA["ripples.post.engagement.v1"] | {"action": action}
    ((field, _),) = errors(samples.event("ripples.post.engagement.v1", data))
    assert field == "data.action"


@pytest.mark.parametrize("target", ["ftp://x.example/a", "careers.example.com/jobs", ""])
def test_link_targets_are_http_urls(target: str) -> None:
    data = samples.DATA["ripples.link.created.v1"] | {"target_url": target}
    ((field, _),) = errors(samples.event("ripples.link.created.v1", data))
    assert field == "data.target_url"


def test_times_keep_their_offset_and_compare_as_instants() -> None:
    event = parse(samples.event("ripples.post.published.v1"))
    published = event.data.published_at
    assert published.utcoffset() == timedelta(hours=2)
    assert published == datetime(2026, 6, 3, 6, 15, tzinfo=UTC)
    assert event.time.tzinfo is not None


@pytest.mark.parametrize(
    "value",
    [
        "2026-06-03T08:15:01",
        "2026-13-01T00:00:00Z",
        "2026-06-03T25:00:00Z",
        "1717400000",
        "",
        "0001-01-01T00:00:01+00:01",  # year 0 in UTC: found by the fuzz (the directory gave 503)
        "9999-12-31T23:59:59-01:00",  # year 10000 in UTC
    ],
)
def test_bad_timestamps_are_refused(value: str) -> None:
    ((field, _),) = errors(samples.event("ripples.applicant.erased.v1", time=value))
    assert field == "time"


def test_data_times_without_a_utc_equivalent_are_refused_by_name() -> None:
    data = samples.DATA["ripples.post.published.v1"] | {"published_at": "0001-01-01T00:00:00+05:00"}
    ((field, detail),) = errors(samples.event("ripples.post.published.v1", data))
    assert field == "data.published_at"
    assert "UTC" in detail


def test_the_earliest_and_latest_utc_times_are_accepted() -> None:
    for value in ("0001-01-01T00:00:00Z", "0001-01-01T05:00:00+05:00", "9999-12-31T23:59:59Z"):
        assert parse(samples.event("ripples.applicant.erased.v1", time=value)).time.year in (
            1,
            9999,
        )


def test_unknown_fields_are_ignored_everywhere() -> None:
    event = samples.event("ripples.applicant.hired.v1", extensionattribute="x")
    event["data"]["salary"] = 1
    hired = parse(event)
    assert hired.data.hired_at == datetime(2026, 7, 1, 9, tzinfo=timezone.utc)  # noqa: UP017
    assert not hasattr(hired.data, "salary")


def test_unknown_types_list_the_known_ones() -> None:
    ((field, detail),) = errors(
        samples.event("ripples.applicant.erased.v1", type="ripples.applicant.rejected.v1")
    )
    assert field == "type"
    assert "ripples.applicant.hired.v1" in detail


def _parsed(event_type: str, data: dict[str, object] | None = None) -> Envelope:
    return parse_structured(orjson.dumps(samples.event(event_type, data)))


def test_preferences_are_keyed_apart_from_the_hr_record() -> None:
    """Compaction keeps the latest record per key: a preference under the upsert's key would
    erase the HR record (or the reverse). Each combination of fields has its own key."""
    upsert = _parsed("ripples.employee.upserted.v1")
    only_locale = _parsed(
        "ripples.employee.preferences.v1", {"employee_id": "emp-1", "locale": "da"}
    )
    both = _parsed("ripples.employee.preferences.v1")
    assert upsert.key == b"emp-1"
    assert only_locale.key == b"prefs:emp-1:locale"
    assert both.key == b"prefs:emp-1:notify,recognition_opt_out"
    assert to_kafka(both)[0] == both.key
    assert both.topic is upsert.topic


def test_a_preference_notify_needs_an_address_unless_none() -> None:
    with pytest.raises(InvalidEvent, match="address"):
        _parsed(
            "ripples.employee.preferences.v1",
            {"employee_id": "e", "notify": {"channel": "slack"}},
        )
    empty = _parsed("ripples.employee.preferences.v1", {"employee_id": "e"})
    assert isinstance(empty, EmployeePreferencesEvent)
    assert empty.data.given == ()


def test_a_removal_reaches_every_key_a_preference_can_have() -> None:
    """The keys a removal tombstones (``preference_keys``) hold the key of every preference
    event of the employee, whichever fields it gives."""
    keys = preference_keys("emp-1")
    assert len(keys) == len(set(keys)) == 8
    notify = {"channel": "webhook", "address": "https://example.org/hook"}
    fields = {"locale": "da", "notify": notify, "recognition_opt_out": True}
    for n in range(8):
        data = {"employee_id": "emp-1"} | {
            name: value for i, (name, value) in enumerate(fields.items()) if n >> i & 1
        }
        event = _parsed("ripples.employee.preferences.v1", data)
        assert event.key.decode() in keys, data
