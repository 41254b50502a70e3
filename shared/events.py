"""The contract events (CONTRACT §1) as typed, validated models.

Every event is a CloudEvents 1.0 envelope whose ``data`` has a type-specific shape. The models
are msgspec structs: decoding and validation happen in one C pass, and a validation error
names the offending field (``$.data.employee_id``). Unknown fields are ignored, as the
contract asks.

Each event type also knows where it goes on Kafka: its topic (one per entity family, so that
all events about one entity stay in order) and its key field (the subject entity).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

import msgspec

# --- field types -------------------------------------------------------------------------

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
"""An identifier: non-empty, bounded."""

Text = Annotated[str, msgspec.Meta(max_length=1024)]
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=4096, pattern=r"^https?://[^\s]+$")]
LinkCode = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Time = Annotated[datetime, msgspec.Meta(tz=True)]
"""An RFC 3339 timestamp with a UTC designator or an offset."""

Count = Annotated[int, msgspec.Meta(ge=0, le=10**15)]
"""A non-negative integer counter."""

Locale = Literal["da", "en"]
Channel = Literal["slack", "teams", "email", "webhook", "none"]
AuthorKind = Literal["employee", "company"]
Origin = Literal["own", "suggested", "template"]
"""Whether a post's text is the employee's own words or a prepared message (CONTRACT §10)."""
Action = Literal["reaction", "comment", "reshare", "click"]


def _time_fields(cls: type[msgspec.Struct]) -> tuple[str, ...]:
    return tuple(f.name for f in msgspec.structs.fields(cls) if _is_time(f.type))


def _is_time(kind: object) -> bool:
    return kind is datetime or any(_is_time(arg) for arg in typing.get_args(kind))


def _check_times(struct: msgspec.Struct, names: tuple[str, ...]) -> None:
    """Refuse a timestamp that has no UTC equivalent (``0001-01-01T00:00:00+01:00`` is in year
    0 in UTC): Python and the database would fail on it long after it was accepted. Only
    years 1 and 9999 can overflow, so that is all that is looked at per event."""
    for name in names:
        value = getattr(struct, name)
        if value is not None and value.year in (1, 9999) and value.utcoffset():
            try:
                value.astimezone(UTC)
            except OverflowError:
                raise ValueError(f"`{name}` is outside the years 1-9999 in UTC") from None


class Data(msgspec.Struct, kw_only=True, frozen=True):
    """Base of every ``data`` payload."""

    _times: ClassVar[tuple[str, ...]] = ()  # its timestamp fields, set below for each class

    def __post_init__(self) -> None:
        if self._times:
            _check_times(self, self._times)


# --- data payloads (CONTRACT §1) -----------------------------------------------------------


class Notify(msgspec.Struct, kw_only=True, frozen=True):
    channel: Channel
    address: Annotated[str, msgspec.Meta(max_length=2048)] | None = None

    def __post_init__(self) -> None:
        if self.channel != "none" and not self.address:
            raise ValueError(f"`address` is required for channel `{self.channel}`")


class EmployeeUpserted(Data, frozen=True):
    employee_id: Id
    display_name: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    ambassador: bool = False
    department: Text | None = None
    locale: Locale = "en"
    notify: Notify | None = None
    recognition_opt_out: bool = False
    linkedin_member_urn: Text | None = None
    followers: Count | None = None  # §10: the LinkedIn network size, when known


PREFERENCE_FIELDS = ("locale", "notify", "recognition_opt_out")
"""The fields an employee sets themselves (CONTRACT §11), in the order of the record key."""


def preference_keys(employee_id: str) -> list[str]:
    """Every record key a preference event of ``employee_id`` can have on
    ``ripples.employees`` (``prefs:{employee_id}:{fields given}``, one per combination of
    :data:`PREFERENCE_FIELDS`, none given included): the keys a removal tombstones, so that
    compaction drops the employee's preferences as it drops the HR records."""
    return [
        f"prefs:{employee_id}:{','.join(f for i, f in enumerate(PREFERENCE_FIELDS) if n >> i & 1)}"
        for n in range(2 ** len(PREFERENCE_FIELDS))
    ]


class EmployeePreferences(Data, frozen=True, omit_defaults=True):
    """What the employee set themselves (CONTRACT §11). Each field given overrides the HR
    record's value until the employee changes it again; a field left out (None) leaves the
    previous preference (or the HR value) in place. The latest CloudEvent ``time`` among the
    preference events that give a field wins for that field."""

    employee_id: Id
    locale: Locale | None = None
    notify: Notify | None = None
    recognition_opt_out: bool | None = None

    @property
    def given(self) -> tuple[str, ...]:
        """The preference fields this event sets, in a fixed order."""
        return tuple(name for name in PREFERENCE_FIELDS if getattr(self, name) is not None)

    @property
    def kafka_key(self) -> str:
        """``prefs:{employee_id}:{the fields given}`` (see :class:`EmployeePreferencesEvent`)."""
        return f"prefs:{self.employee_id}:{','.join(self.given)}"


class EmployeeRemoved(Data, frozen=True):
    employee_id: Id


class PostPublished(Data, frozen=True):
    post_id: Id
    author_kind: AuthorKind
    published_at: Time
    employee_id: Id | None = None
    url: Url | None = None
    reshare_of: Id | None = None
    link_codes: Annotated[list[LinkCode], msgspec.Meta(max_length=100)] = []
    origin: Origin = "own"  # §10

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.author_kind == "employee" and self.employee_id is None:
            raise ValueError("`employee_id` is required when `author_kind` is `employee`")


class PostMetrics(Data, frozen=True):
    post_id: Id
    observed_at: Time
    impressions: Count | None = None
    members_reached: Count | None = None
    reactions: Count | None = None
    comments: Count | None = None
    reshares: Count | None = None
    clicks: Count | None = None


class PostEngagement(Data, frozen=True):
    post_id: Id
    action: Action
    at: Time
    actor_employee_id: Id | None = None


class LinkCreated(Data, frozen=True):
    link_code: LinkCode
    target_url: Url
    employee_id: Id | None = None
    job_id: Id | None = None
    post_id: Id | None = None


class LinkClicked(Data, frozen=True):
    link_code: LinkCode
    visitor_id: Id
    at: Time


class ApplicantApplied(Data, frozen=True):
    applicant_id: Id
    job_id: Id
    applied_at: Time
    visitor_id: Id | None = None
    link_code: LinkCode | None = None
    referrer_employee_id: Id | None = None
    source: Text | None = None


class ApplicantHired(Data, frozen=True):
    applicant_id: Id
    job_id: Id
    hired_at: Time


class ApplicantErased(Data, frozen=True):
    applicant_id: Id


class JobUpserted(Data, frozen=True):
    """A job of the ATS (CONTRACT §10); the one with the latest CloudEvent ``time`` wins."""

    job_id: Id
    title: Text | None = None
    family: Text | None = None
    hard_to_recruit: bool = False


# --- data payloads of the events Ripples itself emits -------------------------------------

Model = Literal["first_touch", "last_touch", "linear", "position_based", "time_decay"]
MODELS: tuple[Model, ...] = ("first_touch", "last_touch", "linear", "position_based", "time_decay")
RecognitionKind = Literal[
    "first_post", "reach_milestone", "first_applicant", "hire", "inspired_colleague"
]
RECOGNITION_KINDS: tuple[RecognitionKind, ...] = (
    "first_post",
    "reach_milestone",
    "first_applicant",
    "hire",
    "inspired_colleague",
)


class CreditShare(msgspec.Struct, kw_only=True, frozen=True):
    """One credited party of a conversion under one model (CONTRACT §3)."""

    employee_id: Id | None  # None: the company page (ring 0)
    ring: int | None  # None: independent
    weight: float


class CreditAssigned(Data, frozen=True):
    """A conversion's credit changed; ``credit`` holds every model's shares (empty lists when
    the conversion is unattributed)."""

    applicant_id: Id
    conversion: Literal["applied", "hired"]
    job_id: Id
    at: Time
    credit: dict[Model, list[CreditShare]]


class RecognitionFacts(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """What a recognition message may say. Never anything about an applicant."""

    post_count: int | None = None
    impressions: int | None = None
    threshold: int | None = None
    job_id: Id | None = None
    colleague_id: Id | None = None
    colleague_display_name: Text | None = None
    # (v1.1) When the achievement happened (the first post's time, the application's, the
    # hire's, the colleague's first share, the newest impressions count of a milestone), so
    # the notifier can leave old news unsent (CONTRACT §6 "stale"). Optional: an event
    # without it is judged by its due_at.
    achieved_at: Time | None = None


class RecognitionDue(Data, frozen=True):
    """A recognition condition of CONTRACT §6 was first met. ``recognition_id`` is
    deterministic, so re-emitting it is harmless."""

    recognition_id: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    kind: RecognitionKind
    employee_id: Id
    due_at: Time
    facts: RecognitionFacts = RecognitionFacts()


ConnectionKind = Literal["linkedin_invitation", "linkedin_reconnect"]
CONNECTION_KINDS: tuple[ConnectionKind, ...] = ("linkedin_invitation", "linkedin_reconnect")
ConnectionReason = Literal["invited", "expiring", "expired", "revoked"]


class LinkedInConnection(Data, frozen=True):
    """A message to an employee about their own LinkedIn connection (ingest → notifier, on
    ``ripples.recognitions``; the CloudEvent ``id`` is its recognition id): an invitation to
    connect (``reason`` ``invited``), or to reconnect because the token is ``expiring``, has
    ``expired`` or LinkedIn ``revoked`` it (a 401). ``url`` is the signed invitation link and
    ``expires_at`` when that link expires."""

    employee_id: Id
    kind: ConnectionKind
    url: Url
    expires_at: Time
    reason: ConnectionReason


# --- topics --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Topic:
    """A Kafka topic of the contract, with its explicit partition count and the topic
    configs it is created with: its own ``configs``, and those whose values are settings
    (``{config: setting}``, a ``KAFKA_<SETTING>`` in seconds, see
    :func:`shared.kafka.topic_configs`)."""

    name: str
    partitions: int
    description: str
    configs: tuple[tuple[str, str], ...] = ()
    timed: tuple[tuple[str, str], ...] = ()


# Erasure: the removal is the latest record of its key on the compacted topic (ingest keeps
# older upserts of a removed employee off it), so compaction deletes the personal fields,
# at the latest after the compaction lag.
EMPLOYEES = Topic(
    "ripples.employees",
    6,
    "HR records: employee upserts and removals",
    configs=(("cleanup.policy", "compact"),),
    timed=(("max.compaction.lag.ms", "employee_compaction_lag_s"),),
)
POSTS = Topic("ripples.posts", 12, "LinkedIn posts, metric snapshots and engagements")
LINKS = Topic("ripples.links", 12, "tracked links and their clicks")
# Topics whose records name (pseudonymous) applicants, or copy any record: bounded retention.
APPLICANTS = Topic(
    "ripples.applicants",
    6,
    "applications, hires, applicant erasures and the jobs applied to",
    timed=(("retention.ms", "applicant_retention_s"),),
)
CREDITS = Topic(
    "ripples.credits",
    6,
    "credit of each conversion under every model (output)",
    timed=(("retention.ms", "applicant_retention_s"),),
)
RECOGNITIONS = Topic(
    "ripples.recognitions",
    6,
    "recognitions due to employees (output)",
    timed=(("retention.ms", "applicant_retention_s"),),
)
DEAD_LETTERS = Topic(
    "ripples.deadletter",
    3,
    "events a consumer could not process, with reason",
    timed=(("retention.ms", "dead_letter_retention_s"),),
)

TOPICS: tuple[Topic, ...] = (
    EMPLOYEES,
    POSTS,
    LINKS,
    APPLICANTS,
    CREDITS,
    RECOGNITIONS,
    DEAD_LETTERS,
)


# --- envelopes -----------------------------------------------------------------------------


class Envelope(msgspec.Struct, kw_only=True, frozen=True, tag_field="type"):
    """A CloudEvents 1.0 envelope. Subclasses fix ``type`` (the tag), the ``data`` shape, the
    topic, and the data field whose value is the Kafka key (the entity the event is about)."""

    topic: ClassVar[Topic]
    key_field: ClassVar[str]

    specversion: Literal["1.0"]
    id: Id
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    time: Time
    subject: Text | None = None
    datacontenttype: Literal["application/json"] | None = None
    dataschema: Text | None = None
    data: Data

    def __post_init__(self) -> None:
        if self.time.year in (1, 9999):
            _check_times(self, ("time",))

    @property
    def type(self) -> str:
        tag = self.__struct_config__.tag
        assert isinstance(tag, str)
        return tag

    @property
    def key(self) -> bytes:
        value: str = getattr(self.data, self.key_field)
        return value.encode()


class EmployeeUpsertedEvent(Envelope, frozen=True, tag="ripples.employee.upserted.v1"):
    topic = EMPLOYEES
    key_field = "employee_id"
    data: EmployeeUpserted


class EmployeeRemovedEvent(Envelope, frozen=True, tag="ripples.employee.removed.v1"):
    topic = EMPLOYEES
    key_field = "employee_id"
    data: EmployeeRemoved


class EmployeePreferencesEvent(Envelope, frozen=True, tag="ripples.employee.preferences.v1"):
    """On ``ripples.employees`` beside the HR records, but never under the upsert's key: the
    topic is compacted (only the latest record of a key stays), so one key for both would lose
    the HR record or the preference. The key is ``prefs:{employee_id}:{the fields given}``
    (e.g. ``prefs:e1:locale,notify``): compaction keeps the latest event of each combination,
    which still holds, for every field, the latest event that gave it — a consumer rebuilding
    from the topic merges them by ``time`` to the same preferences."""

    topic = EMPLOYEES
    key_field = "kafka_key"  # a property of the data, not a field
    data: EmployeePreferences


class PostPublishedEvent(Envelope, frozen=True, tag="ripples.post.published.v1"):
    topic = POSTS
    key_field = "post_id"
    data: PostPublished


class PostMetricsEvent(Envelope, frozen=True, tag="ripples.post.metrics.v1"):
    topic = POSTS
    key_field = "post_id"
    data: PostMetrics


class PostEngagementEvent(Envelope, frozen=True, tag="ripples.post.engagement.v1"):
    topic = POSTS
    key_field = "post_id"
    data: PostEngagement


class LinkCreatedEvent(Envelope, frozen=True, tag="ripples.link.created.v1"):
    topic = LINKS
    key_field = "link_code"
    data: LinkCreated


class LinkClickedEvent(Envelope, frozen=True, tag="ripples.link.clicked.v1"):
    topic = LINKS
    key_field = "link_code"
    data: LinkClicked


class ApplicantAppliedEvent(Envelope, frozen=True, tag="ripples.applicant.applied.v1"):
    topic = APPLICANTS
    key_field = "applicant_id"
    data: ApplicantApplied


class ApplicantHiredEvent(Envelope, frozen=True, tag="ripples.applicant.hired.v1"):
    topic = APPLICANTS
    key_field = "applicant_id"
    data: ApplicantHired


class ApplicantErasedEvent(Envelope, frozen=True, tag="ripples.applicant.erased.v1"):
    topic = APPLICANTS
    key_field = "applicant_id"
    data: ApplicantErased


class JobUpsertedEvent(Envelope, frozen=True, tag="ripples.job.upserted.v1"):
    topic = APPLICANTS
    key_field = "job_id"
    data: JobUpserted


class CreditAssignedEvent(Envelope, frozen=True, tag="ripples.credit.assigned.v1"):
    topic = CREDITS
    key_field = "applicant_id"
    data: CreditAssigned


class RecognitionDueEvent(Envelope, frozen=True, tag="ripples.recognition.due.v1"):
    topic = RECOGNITIONS
    key_field = "employee_id"
    data: RecognitionDue


class LinkedInConnectionEvent(Envelope, frozen=True, tag="ripples.linkedin.connection.v1"):
    topic = RECOGNITIONS
    key_field = "employee_id"
    data: LinkedInConnection


InboundEvent = (
    EmployeeUpsertedEvent
    | EmployeeRemovedEvent
    | EmployeePreferencesEvent
    | PostPublishedEvent
    | PostMetricsEvent
    | PostEngagementEvent
    | LinkCreatedEvent
    | LinkClickedEvent
    | ApplicantAppliedEvent
    | ApplicantHiredEvent
    | ApplicantErasedEvent
    | JobUpsertedEvent
)
"""Any event other systems publish into Ripples (CONTRACT §1); msgspec decodes this union in
one pass, dispatching on ``type``."""

INBOUND: tuple[type[Envelope], ...] = InboundEvent.__args__
INBOUND_TYPES: tuple[str, ...] = tuple(str(cls.__struct_config__.tag) for cls in INBOUND)

OUTBOUND: tuple[type[Envelope], ...] = (
    CreditAssignedEvent,
    RecognitionDueEvent,
    LinkedInConnectionEvent,
)
"""The event types Ripples emits (attribution → notifier and anyone else listening; ingest's
connection messages → notifier)."""

BY_TYPE: dict[str, type[Envelope]] = {
    str(cls.__struct_config__.tag): cls for cls in (*INBOUND, *OUTBOUND)
}


def _subclasses(cls: type[Data]) -> list[type[Data]]:
    return [c for sub in cls.__subclasses__() for c in (sub, *_subclasses(sub))]


for _cls in _subclasses(Data):
    _cls._times = _time_fields(_cls)
