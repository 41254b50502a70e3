"""shared.failures over the real asyncpg and aiokafka exception classes: which failures are
retried (the same batch, nothing acknowledged) and which dead-letter one event."""

from __future__ import annotations

import inspect
import random
from types import SimpleNamespace

import asyncpg
import msgspec
import pytest
from aiokafka import errors as kafka_errors

from services.ingest.database import answering_503
from shared import failures, streaming
from shared.cloudevents import FieldError, InvalidEvent, to_kafka
from shared.failures import Failure, classify
from shared.http import ProblemError
from tests.notifier.conftest import recognition_event

T, D, X = Failure.TRANSIENT, Failure.DATA, Failure.DEFECT

POSTGRES_CLASSES = [
    cls
    for _, cls in inspect.getmembers(asyncpg.exceptions, inspect.isclass)
    if issubclass(cls, asyncpg.PostgresError) and len(getattr(cls, "sqlstate", "") or "") == 5
]


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        # the everyday faults of the issue, by the classes asyncpg raises for them
        (asyncpg.AdminShutdownError("terminating connection due to administrator command"), T),
        (asyncpg.CannotConnectNowError("the database system is starting up"), T),
        (asyncpg.TooManyConnectionsError("sorry, too many clients already"), T),
        (asyncpg.QueryCanceledError("canceling statement due to statement timeout"), T),
        (asyncpg.SerializationError("could not serialize access"), T),
        (asyncpg.DeadlockDetectedError("deadlock detected"), T),
        (asyncpg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only txn"), T),
        (asyncpg.CrashShutdownError("crash shutdown"), T),
        (asyncpg.ConnectionFailureError("connection failure"), T),
        (asyncpg.OutOfMemoryError("out of memory"), T),
        (asyncpg.DiskFullError("disk full"), T),
        (asyncpg.LockNotAvailableError("lock timeout"), T),
        (asyncpg.InsufficientPrivilegeError("permission denied for table"), T),
        (asyncpg.UndefinedTableError("relation does not exist"), T),
        (asyncpg.InvalidCatalogNameError("database does not exist"), T),
        (asyncpg.InvalidPasswordError("password authentication failed"), T),
        # the client side of a lost connection
        (asyncpg.ConnectionDoesNotExistError("connection was closed in the middle"), T),
        (asyncpg.InterfaceError("pool is closing"), T),
        (asyncpg.InternalClientError("protocol state"), T),
        (ConnectionRefusedError(111, "Connection refused"), T),
        (ConnectionResetError(104, "Connection reset by peer"), T),
        (OSError(113, "No route to host"), T),
        (TimeoutError(), T),
        # data: one event the database can never store
        (asyncpg.CharacterNotInRepertoireError("invalid byte sequence for encoding"), D),
        (asyncpg.NumericValueOutOfRangeError("value out of range"), D),
        (asyncpg.InvalidDatetimeFormatError("invalid input syntax for type timestamp"), D),
        (asyncpg.StringDataRightTruncationError("value too long"), D),
        (asyncpg.UniqueViolationError("duplicate key value"), D),
        (asyncpg.CheckViolationError("violates check constraint"), D),
        (asyncpg.NotNullViolationError("null value in column"), D),
        (asyncpg.ForeignKeyViolationError("violates foreign key"), D),
        (asyncpg.DataError("invalid input for query argument $1"), D),
        (InvalidEvent([FieldError("data.post_id", "expected str", "invalid")]), D),
        (msgspec.ValidationError("Expected `str`, got `int`"), D),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), D),
        # defects: neither retried blindly nor the input's fault alone
        (asyncpg.InternalServerError("internal error"), X),
        (KeyError("topic"), X),
        (TypeError("'NoneType' object is not iterable"), X),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_classify(exc: BaseException, expected: Failure) -> None:
    assert classify(exc) is expected
    assert failures.is_transient(exc) is (expected is T)


@pytest.mark.parametrize("cls", POSTGRES_CLASSES, ids=lambda c: f"{c.sqlstate}-{c.__name__}")
def test_every_asyncpg_error_class_by_its_sqlstate(cls: type[asyncpg.PostgresError]) -> None:
    code = cls.sqlstate
    assert isinstance(code, str)
    if code[:2] in {"08", "40", "53", "57", "28", "3D", "3F", "42"} or code in {"25006", "55P03"}:
        expected = T
    elif code[:2] in {"22", "23"}:
        expected = D
    else:
        expected = X
    assert classify(cls("message")) is expected


def test_a_server_error_with_an_unknown_sqlstate_goes_by_its_class() -> None:
    """asyncpg builds an error of an unknown code as its class's base; the code decides."""
    exc = asyncpg.PostgresError("new in a later server")
    exc.sqlstate = "57P05"  # idle_session_timeout (PostgreSQL 14)
    assert classify(exc) is T
    exc.sqlstate = "22P99"
    assert classify(exc) is D
    assert failures.classify_sqlstate("25006") is T
    assert failures.classify_sqlstate("25001") is X  # active_sql_transaction: our bug


def test_the_reason_names_the_class_and_sqlstate_never_the_message() -> None:
    exc = asyncpg.UniqueViolationError("Key (email)=(someone@example.com) already exists.")
    assert failures.reason(exc) == "UniqueViolationError (23505)"
    assert "example.com" not in failures.reason(exc)
    assert failures.reason(KeyError("x")) == "KeyError"


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (kafka_errors.KafkaTimeoutError(), T),
        (kafka_errors.KafkaConnectionError("broker gone"), T),
        (kafka_errors.RequestTimedOutError(), T),
        (kafka_errors.NotLeaderForPartitionError(), T),
        (kafka_errors.LeaderNotAvailableError(), T),
        (kafka_errors.UnknownTopicOrPartitionError(), T),
        (kafka_errors.NodeNotReadyError(), T),
        (kafka_errors.NotEnoughReplicasError(), T),
        (kafka_errors.CoordinatorNotAvailableError(), T),
        (kafka_errors.KafkaError("a flush failed"), T),
        (kafka_errors.MessageSizeTooLargeError(), D),
        (kafka_errors.RecordListTooLargeError(), D),
        (kafka_errors.CorruptRecordException(), D),
        (kafka_errors.InvalidTopicError(), D),
        (kafka_errors.TopicAuthorizationFailedError(), D),
        (kafka_errors.UnsupportedVersionError(), D),
        (kafka_errors.ProducerClosed(), X),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_classify_kafka(exc: BaseException, expected: Failure) -> None:
    assert classify(exc) is expected


def test_every_retriable_aiokafka_error_is_transient() -> None:
    for _, cls in inspect.getmembers(kafka_errors, inspect.isclass):
        if issubclass(cls, kafka_errors.KafkaError) and cls.retriable:
            assert classify(cls()) is T, cls


def test_backoff_grows_with_full_jitter_up_to_the_cap() -> None:
    backoff = failures.Backoff(base=0.1, cap=2.0, floor=0.01, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(200)]
    assert all(0.01 <= d <= 2.0 for d in delays)
    assert delays[0] <= 0.1
    assert delays[1] <= 0.2
    assert delays[2] <= 0.4
    late = delays[20:]
    assert max(late) > 1.5
    assert min(late) < 0.5
    backoff.reset()
    assert backoff.next_delay() <= 0.1


async def test_retry_transient_retries_the_same_operation_and_raises_the_rest() -> None:
    calls: list[int] = []
    retried: list[str] = []
    errors: list[BaseException] = [asyncpg.CannotConnectNowError("starting"), OSError(113, "")]

    async def operation() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return "stored"

    fast = failures.Backoff(base=0.001, floor=0.0)
    result = await failures.retry_transient(
        operation, lambda exc, _delay: retried.append(type(exc).__name__), fast
    )
    assert (result, len(calls), retried) == ("stored", 3, ["CannotConnectNowError", "OSError"])

    async def refused() -> None:
        raise asyncpg.CharacterNotInRepertoireError("invalid byte sequence")

    with pytest.raises(asyncpg.CharacterNotInRepertoireError):
        await failures.retry_transient(refused, backoff=fast)


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (asyncpg.CannotConnectNowError("the database system is starting up"), 503),
        (asyncpg.TooManyConnectionsError("sorry, too many clients already"), 503),
        (ConnectionRefusedError(111, "Connection refused"), 503),
        (asyncpg.CharacterNotInRepertoireError("invalid byte sequence"), 422),
        (asyncpg.UniqueViolationError("duplicate key value"), 422),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_ingest_answers_a_database_failure_by_its_class(exc: BaseException, status: int) -> None:
    """Ingest's guard: "retry later" only where a retry can succeed (before: 503 for all)."""
    with pytest.raises(ProblemError) as raised, answering_503():
        raise exc
    assert raised.value.status == status
    if status == 503:
        assert raised.value.headers["Retry-After"]


def test_ingest_lets_a_defect_through_to_its_500_handler() -> None:
    with pytest.raises(asyncpg.InternalServerError), answering_503():
        raise asyncpg.InternalServerError("internal error")


def _record(value: bytes | None, headers: object) -> SimpleNamespace:
    return SimpleNamespace(value=value, headers=headers)


def test_decode_turns_any_record_into_its_event_or_invalid_event() -> None:
    """A tombstone with CloudEvent headers made from_kafka raise TypeError (the agent then
    restarted without the batch); garbage of any shape is InvalidEvent too."""
    event = recognition_event("first_post:e1", "e1", "first_post")
    _, value, headers = to_kafka(event)
    assert streaming.decode(_record(value, dict(headers))) == event
    assert streaming.decode(_record(value, list(headers))) == event
    for poison in (
        _record(None, dict(headers)),  # a tombstone of a CloudEvent
        _record(None, None),
        _record(b"\x00\xff garbage", None),
        _record(b"\x00\xff garbage", []),
        _record(b"{not json", dict(headers)),
        _record(value, {"ce_type": b"\xff\xfe"}),
        _record(value, [("ce_type", None)]),  # a header without a value
    ):
        with pytest.raises(InvalidEvent):
            streaming.decode(poison)
    with pytest.raises(InvalidEvent) as raised:
        streaming.decode(_record(None, dict(headers)))
    assert raised.value.errors[0].reason == "tombstone"
