"""aiokafka helpers: producers, consumers and topic creation from the shared settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.partitioner import murmur2

from shared.events import TOPICS, Topic
from shared.settings import KafkaSettings, SettingsError

log = logging.getLogger(__name__)


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext:
    """A TLS context that verifies the brokers (and presents a client certificate if set)."""
    context = ssl.create_default_context(cafile=settings.ssl_cafile)
    if settings.ssl_certfile:
        context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile)
    return context


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def check_security(settings: KafkaSettings) -> None:
    """Refuse a security setting the clients would silently misread."""
    protocol = settings.security_protocol
    if protocol not in SECURITY_PROTOCOLS:
        raise SettingsError(
            f"KAFKA_SECURITY_PROTOCOL must be one of {', '.join(SECURITY_PROTOCOLS)}"
        )
    if protocol.startswith("SASL_"):
        if settings.sasl_mechanism not in SASL_MECHANISMS:
            raise SettingsError(f"KAFKA_SASL_MECHANISM must be one of {', '.join(SASL_MECHANISMS)}")
        if not settings.sasl_username or not settings.sasl_password:
            raise SettingsError("KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD(_FILE) are needed")
    elif settings.sasl_mechanism:
        raise SettingsError("KAFKA_SASL_MECHANISM needs KAFKA_SECURITY_PROTOCOL SASL_SSL")


def min_insync_replicas(settings: KafkaSettings) -> int:
    """The topics' min.insync.replicas: the setting, else 2 from replication factor 3."""
    if settings.min_insync_replicas is not None:
        return settings.min_insync_replicas
    return 2 if settings.replication_factor >= 3 else 1


def new_topics(settings: KafkaSettings, topics: Iterable[Topic]) -> list[NewTopic]:
    """How the contract topics are created: partitions, replication, their configs
    (:func:`topic_configs`: compaction, retention) and min.insync.replicas."""
    insync = {"min.insync.replicas": str(min_insync_replicas(settings))}
    return [
        NewTopic(
            t.name,
            t.partitions,
            settings.replication_factor,
            topic_configs=topic_configs(t, settings) | insync,
        )
        for t in topics
    ]


def _connection(settings: KafkaSettings) -> dict[str, Any]:
    check_security(settings)
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
        "client_id": settings.client_id,
        "request_timeout_ms": int(settings.request_timeout_s * 1000),
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl_context(settings)
    if settings.sasl_mechanism:
        options.update(
            sasl_mechanism=settings.sasl_mechanism,
            sasl_plain_username=settings.sasl_username,
            sasl_plain_password=settings.sasl_password,
        )
    return options


def producer(settings: KafkaSettings, linger_ms: int = 2, **overrides: Any) -> AIOKafkaProducer:
    """A producer that waits for every in-sync replica (acks=all).

    The idempotent producer is a setting: on for Apache Kafka, off for Tansu, which lacks it.
    """
    options = _connection(settings) | {
        "acks": "all",
        "enable_idempotence": settings.enable_idempotence,
        "linger_ms": linger_ms,
        "max_batch_size": 256 * 1024,
    }
    return AIOKafkaProducer(**(options | overrides))


Record = tuple[str, bytes, bytes | None, Sequence[tuple[str, bytes]]]
"""One record to produce: topic, key, value (None: a tombstone), headers."""


class KeyHashes:
    """aiokafka's default partitioner (``DefaultPartitioner``: murmur2 of the key, masked to
    31 bits, modulo the number of partitions, as the Java client does), remembering each
    key's hash: murmur2 is pure Python in aiokafka (~2 µs a key, a tenth of ingest's CPU per
    event in a batch) and keys (posts, links, employees) repeat. Bounded: forgets everything
    after ``size`` keys."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._hashes: dict[bytes, int] = {}

    def partition(self, key: bytes, all_partitions: Sequence[int]) -> int:
        """The partition ``producer.send(topic, key=key)`` would choose; ``all_partitions``
        sorted by id."""
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= self.size:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]


class BatchSender:
    """Produces the records of concurrent callers as one record batch per partition.

    ``await send(records)`` returns once the broker acknowledged every one of ``records`` (with
    the producer's acks), or raises :class:`KafkaError`. One flush is on the wire at a time:
    records handed over meanwhile wait for the next one, so under load many requests share
    each record batch and produce request. Records of one caller keep their order within a
    partition, and callers are flushed in arrival order. Partitions are chosen exactly as
    ``producer.send`` would (:class:`KeyHashes`), so an entity's events land on the same
    partition whichever producer wrote them.

    With ``linger_s``, a flush waits up to that long for as many callers as the previous
    flush carried (group commit): the callers one flush answered come back within moments,
    and without the wait the first of them would go alone. A lone caller never waits.

    Why not ``producer.send`` per record: it costs ~17 µs of CPU per record (metadata wait,
    partitioner, accumulator, a future per record), twice what appending to a batch does.
    Why wait for the acknowledgements before the next flush (``wait_for_acks``): the local
    broker's cost is mostly per partition batch, not per record, so gathering everything
    that arrived during one round trip into one flush gave fewer, larger batches (broker CPU
    per 10,000 batch events 0.023 -> 0.015 s) than queueing a second, smaller flush behind
    the first in the producer (aiokafka sends one produce request per broker at a time
    anyway).
    """

    def __init__(
        self, producer: AIOKafkaProducer, wait_for_acks: bool = True, linger_s: float = 0.0
    ) -> None:
        self.producer = producer
        self.wait_for_acks = wait_for_acks
        self.linger_s = linger_s
        self._hashes = KeyHashes()
        self._queue: list[tuple[Sequence[Record], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._partitions: dict[str, list[int]] = {}

    async def send(self, records: Sequence[Record]) -> None:
        if not records:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="kafka-batch-sender")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((records, done))
        self._wake.set()
        await done

    async def close(self) -> None:
        """Stop taking records; callers still waiting get a KafkaError (what was already handed
        to the producer is flushed by ``producer.stop()``)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for _, done in self._queue:
            if not done.done():
                done.set_exception(KafkaError("the producer was stopped"))
        self._queue.clear()

    async def _gather(self, expected: int) -> None:
        """Wait up to ``linger_s`` until ``expected`` callers are queued (group commit)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.linger_s
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                while len(self._queue) < expected:
                    self._wake.clear()
                    await self._wake.wait()

    async def _run(self) -> None:
        expected = 1
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            if len(self._queue) < expected and self.linger_s > 0:
                await self._gather(expected)
            taken, self._queue = self._queue, []
            expected = len(taken)
            callers = [(records, done) for records, done in taken if not done.done()]
            try:
                await self._flush(callers)
            except asyncio.CancelledError:
                self._queue[:0] = callers  # close() fails them
                raise
            except Exception as exc:  # anything else fails these callers, not the sender
                error = exc if isinstance(exc, KafkaError) else KafkaError(repr(exc))
                for _, done in callers:
                    if not done.done():
                        done.set_exception(error)

    async def _partitions_of(self, topic: str) -> list[int]:
        known = self.producer.client.cluster.partitions_for_topic(topic)
        if not known:
            known = await self.producer.partitions_for(topic)
        cached = self._partitions.get(topic)
        if cached is None or len(cached) != len(known):
            cached = self._partitions[topic] = sorted(known)
        return cached

    async def _flush(
        self, callers: Sequence[tuple[Sequence[Record], asyncio.Future[None]]]
    ) -> None:
        producer = self.producer
        batches: list[tuple[str, int, Any]] = []  # (topic, partition, BatchBuilder), in order
        open_batch: dict[tuple[str, int], int] = {}  # (topic, partition) -> index in batches
        uses: list[set[int]] = []  # per caller: the batches holding its records
        partitions: dict[str, list[int]] = {}
        for records, _ in callers:
            used: set[int] = set()
            for topic, key, value, headers in records:
                all_partitions = partitions.get(topic)
                if all_partitions is None:
                    all_partitions = partitions[topic] = await self._partitions_of(topic)
                partition = self._hashes.partition(key, all_partitions)
                index = open_batch.get((topic, partition))
                if index is None or (
                    batches[index][2].append(key=key, value=value, timestamp=None, headers=headers)
                    is None
                ):
                    builder = producer.create_batch()
                    if (
                        builder.append(key=key, value=value, timestamp=None, headers=headers)
                        is None
                    ):
                        raise KafkaError("a record does not fit in an empty batch")
                    index = open_batch[(topic, partition)] = len(batches)
                    batches.append((topic, partition, builder))
                used.add(index)
            uses.append(used)
        futures: list[asyncio.Future[Any]] = []
        for topic, partition, builder in batches:
            futures.append(await producer.send_batch(builder, topic, partition=partition))

        def settle(outcome: asyncio.Future[list[Any]]) -> None:
            results = (
                outcome.result()
                if not outcome.cancelled()
                else [KafkaError("cancelled")] * len(batches)
            )
            for (_, done), used in zip(callers, uses, strict=True):
                if done.done():
                    continue
                failed = next((r for i in used if isinstance(r := results[i], BaseException)), None)
                if failed is None:
                    done.set_result(None)
                else:
                    done.set_exception(
                        failed if isinstance(failed, KafkaError) else KafkaError(repr(failed))
                    )

        acknowledged = asyncio.gather(*futures, return_exceptions=True)
        acknowledged.add_done_callback(settle)
        if self.wait_for_acks:
            await asyncio.wait([acknowledged])


def consumer(
    settings: KafkaSettings, group_id: str, *topics: str, **overrides: Any
) -> AIOKafkaConsumer:
    """A consumer in a group that commits only what the caller has processed."""
    options = _connection(settings) | {
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": int(settings.session_timeout_s * 1000),
        "heartbeat_interval_ms": int(settings.heartbeat_interval_s * 1000),
        "rebalance_timeout_ms": int(settings.rebalance_timeout_s * 1000),
    }
    return AIOKafkaConsumer(*topics, **(options | overrides))


def topic_configs(topic: Topic, settings: KafkaSettings) -> dict[str, str]:
    """The configs ``topic`` is created with: its own, and the times that are settings (in
    seconds; the config in milliseconds)."""
    configs = dict(topic.configs)
    for name, setting in topic.timed:
        configs[name] = str(int(getattr(settings, setting) * 1000))
    return configs


async def ensure_topics(
    settings: KafkaSettings, topics: Iterable[Topic] = TOPICS, timeout_s: float = 10.0
) -> list[str]:
    """Create the topics that do not exist yet, with their explicit partition counts and
    configs (:func:`topic_configs`; compaction, retention).

    Returns the names created. Safe to call concurrently and repeatedly. Topics that exist
    are left as they are (an operator changes their configs, see deploy/README.md).
    """
    admin = AIOKafkaAdminClient(**_connection(settings))
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        existing = set(await asyncio.wait_for(admin.list_topics(), timeout_s))
        missing = [t for t in topics if t.name not in existing]
        if not missing:
            return []
        new = new_topics(settings, missing)
        with contextlib.suppress(TopicAlreadyExistsError):
            await asyncio.wait_for(admin.create_topics(new), timeout_s)
        log.info("created topics", extra={"topics": [t.name for t in missing]})
        return [t.name for t in missing]
    finally:
        await admin.close()


__all__ = [
    "BatchSender",
    "KafkaError",
    "KeyHashes",
    "Record",
    "consumer",
    "ensure_topics",
    "producer",
    "topic_configs",
]
