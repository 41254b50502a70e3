"""One classifier of failures, for every service: is it worth trying the same thing again?

- ``TRANSIENT``: the database or broker could not do it *now* (connection lost or refused,
  the server shutting down or starting, too many connections, out of resources, a statement
  cancelled, a serialization failure or deadlock, a read-only node after a failover, a
  timeout, a retriable Kafka error, ingest's key API unreachable or failing). Back off with
  jitter (:class:`Backoff`) and try the same batch again: nothing acknowledged, nothing
  dead-lettered.
- ``DATA``: this one event can never be stored (PostgreSQL classes 22 "data exception" and 23
  "integrity constraint violation", our own validation errors, a Kafka record the broker
  refuses: too large, invalid). Dead-letter that one event, with its reason, and go on.
- ``DEFECT``: neither — a fault of ours about this input (a server internal error, a
  programming error raised while applying it). Retrying the same thing cannot help either; the
  caller isolates the event that triggers it and dead-letters it like a ``DATA`` failure, but
  it is counted apart so an alert can tell a bug from bad input.

PostgreSQL errors are classified by SQLSTATE
(https://www.postgresql.org/docs/current/errcodes-appendix.html), never by message text;
Kafka errors by aiokafka's ``retriable`` flag. Pure functions, no I/O.
"""

from __future__ import annotations

import asyncio
import enum
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import asyncpg
import msgspec
from aiokafka import errors as kafka_errors

from shared.cloudevents import InvalidEvent
from shared.sealing import KeyServiceUnavailable


class Failure(enum.Enum):
    TRANSIENT = "transient"
    DATA = "data"
    DEFECT = "defect"


TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "28", "3D", "3F", "42"})
"""08 connection exception, 40 transaction rollback (serialization failure, deadlock),
53 insufficient resources (too many connections, disk full, out of memory), 57 operator
intervention (admin shutdown, crash shutdown, cannot connect now, query canceled).

Also retried, because they are about the deployment and never about one event (our SQL
passes every value as a typed parameter): 28 invalid authorization (a rotated password),
3D invalid catalog (no such database), 3F invalid schema and 42 syntax error or access rule
violation (a missing grant or migration). Dead-lettering on them would throw away every
event until an operator fixes the deployment; retrying loses nothing and shows as lag."""
TRANSIENT_SQLSTATES = frozenset(
    {
        "25006",  # read_only_sql_transaction: a standby after a failover
        "55P03",  # lock_not_available (lock_timeout)
    }
)
DATA_SQLSTATE_CLASSES = frozenset({"22", "23"})
"""22 data exception (bad value, out of range, invalid text), 23 integrity constraint."""

_TRANSIENT_CLIENT = (
    OSError,  # refused, reset, unreachable (ConnectionError and socket errors are OSErrors)
    TimeoutError,  # asyncio.TimeoutError is TimeoutError since Python 3.11
    asyncpg.InterfaceError,  # connection closed under the client, pool closing
    asyncpg.InternalClientError,
    EOFError,
    KeyServiceUnavailable,  # ingest's key API away, or not answering as specified
)
_DATA_CLIENT = (
    InvalidEvent,
    msgspec.ValidationError,
    msgspec.DecodeError,
    UnicodeError,
    asyncpg.DataError,  # the client could not encode a value (wrong type, out of range)
)


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a PostgreSQL error (the server's, else its class's), else None."""
    if not isinstance(exc, asyncpg.PostgresError):
        return None
    code = getattr(exc, "sqlstate", None)
    return code if isinstance(code, str) and len(code) == 5 else None


def classify_sqlstate(code: str) -> Failure:
    if code in TRANSIENT_SQLSTATES or code[:2] in TRANSIENT_SQLSTATE_CLASSES:
        return Failure.TRANSIENT
    if code[:2] in DATA_SQLSTATE_CLASSES:
        return Failure.DATA
    return Failure.DEFECT


def classify(exc: BaseException) -> Failure:
    """What to do about ``exc`` (see the module's documentation)."""
    code = sqlstate(exc)
    if code is not None:
        return classify_sqlstate(code)
    if isinstance(exc, asyncpg.PostgresConnectionError):  # no SQLSTATE given by the client
        return Failure.TRANSIENT
    if isinstance(exc, kafka_errors.KafkaError):
        return classify_kafka(exc)
    if isinstance(exc, _TRANSIENT_CLIENT):
        return Failure.TRANSIENT
    if isinstance(exc, _DATA_CLIENT):
        return Failure.DATA
    return Failure.DEFECT


_KAFKA_TRANSIENT = (
    kafka_errors.KafkaTimeoutError,
    kafka_errors.KafkaConnectionError,
    kafka_errors.NodeNotReadyError,
    kafka_errors.RequestTimedOutError,
    kafka_errors.NotEnoughReplicasError,
    kafka_errors.NotEnoughReplicasAfterAppendError,
    kafka_errors.LeaderNotAvailableError,
    kafka_errors.NotLeaderForPartitionError,
    kafka_errors.UnknownTopicOrPartitionError,  # a topic being created, a broker restarted
    kafka_errors.CoordinatorNotAvailableError,
    kafka_errors.NotCoordinatorError,
    kafka_errors.RebalanceInProgressError,
)
_KAFKA_DATA = (
    kafka_errors.MessageSizeTooLargeError,
    kafka_errors.RecordListTooLargeError,
    kafka_errors.CorruptRecordException,
    kafka_errors.InvalidTopicError,
    kafka_errors.TopicAuthorizationFailedError,  # refused: this record will never go there
    kafka_errors.PolicyViolationError,
)


def classify_kafka(exc: kafka_errors.KafkaError) -> Failure:
    """aiokafka's ``retriable`` flag decides, except where aiokafka leaves it unset for errors
    that a restarted or re-electing broker gives (connection, timeouts, unknown partition)
    and for errors about the record itself (too large, corrupt, refused), which are the
    record's and never the broker's state."""
    if isinstance(exc, _KAFKA_DATA):
        return Failure.DATA
    if isinstance(exc, _KAFKA_TRANSIENT) or getattr(exc, "retriable", False):
        return Failure.TRANSIENT
    if isinstance(exc, kafka_errors.ProducerClosed | kafka_errors.IllegalStateError):
        return Failure.DEFECT
    if isinstance(exc, kafka_errors.BrokerResponseError):
        return Failure.DATA  # a broker's definite answer about this request (refused)
    return Failure.TRANSIENT  # a client-side KafkaError without an answer: try again


def is_transient(exc: BaseException) -> bool:
    return classify(exc) is Failure.TRANSIENT


def reason(exc: BaseException) -> str:
    """A short description for a dead-letter header or a log line: the class and SQLSTATE,
    never the message (PostgreSQL's messages may quote the values, i.e. personal data)."""
    code = sqlstate(exc)
    return f"{type(exc).__name__} ({code})" if code else type(exc).__name__


@dataclass
class Backoff:
    """Exponential back-off with full jitter (AWS Architecture Blog, "Exponential Backoff And
    Jitter"): the n-th wait is uniform in [0, min(cap, base * 2**n)], at least ``floor``."""

    base: float = 0.2
    cap: float = 5.0
    floor: float = 0.05
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2 ** min(self.attempts, 30))
        self.attempts += 1
        return max(self.floor, self.rng.uniform(0, ceiling))

    def reset(self) -> None:
        self.attempts = 0

    async def wait(self) -> float:
        delay = self.next_delay()
        await asyncio.sleep(delay)
        return delay


T = TypeVar("T")


async def retry_transient(
    operation: Callable[[], Awaitable[T]],
    on_retry: Callable[[BaseException, float], None] = lambda _exc, _delay: None,
    backoff: Backoff | None = None,
) -> T:
    """``await operation()`` until it succeeds or fails with a failure that is not
    ``TRANSIENT`` (raised); a transient one waits :class:`Backoff`'s next delay first."""
    backoff = backoff or Backoff()
    while True:
        try:
            return await operation()
        except Exception as exc:
            if classify(exc) is not Failure.TRANSIENT:
                raise
            delay = backoff.next_delay()
            on_retry(exc, delay)
            await asyncio.sleep(delay)
