"""Publishing to Kafka with a bounded wait, and a supervisor that keeps the connection.

A request gets 202 only once the broker acknowledged every one of its events (acks=all).
When the broker is away, publishing fails fast with :class:`BrokerUnavailable` (the API
answers 503) instead of queueing events nobody will be told about. The supervisor connects,
watches the broker, and re-creates the contract topics when a broker comes back without them
(the local broker keeps its log in memory).

Every route, webhook, poller and import publishes here, so this is where the personal fields
of employee and applicant events are sealed (:mod:`services.ingest.keys`, when a key store is
given and ``seal``: ``INGEST_SEALING``) and where an erasure's key is unlinked once the broker
has the erasure (with sealing off too: keys made while it was on still go). Only those events
touch the database; the posts, links and clicks do not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from prometheus_client import Gauge, Histogram

from services.ingest import keys as personal
from services.ingest.database import DB_ERRORS, published_but_not
from shared import kafka
from shared.cloudevents import Extensions, kafka_records
from shared.events import EMPLOYEES, TOPICS, Envelope
from shared.metrics import LATENCY_BUCKETS
from shared.settings import KafkaSettings

log = logging.getLogger(__name__)

PUBLISH_SECONDS = Histogram(
    "ingest_publish_duration_seconds",
    "Time from handing a request's events to the producer to the broker's acknowledgement.",
    buckets=LATENCY_BUCKETS,
)
BROKER_UP = Gauge("ingest_broker_up", "1 when the broker answered the last health check.")


class BrokerUnavailable(Exception):
    pass


class Publisher:
    def __init__(
        self,
        settings: KafkaSettings,
        *,
        timeout_s: float,
        linger_ms: int,
        health_interval_s: float,
        keys: personal.KeyStore | None = None,
        seal: bool = True,
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.seal = seal
        self._looked_at = personal.SEALED_TYPES if seal else personal.ERASURE_TYPES
        self.timeout_s = timeout_s
        self.linger_ms = linger_ms
        self.health_interval_s = health_interval_s
        self._producer: AIOKafkaProducer | None = None
        self._sender: kafka.BatchSender | None = None
        self._healthy = False
        self._supervisor: asyncio.Task[None] | None = None
        self._first_check = asyncio.Event()

    @property
    def ready(self) -> bool:
        return self._producer is not None and self._healthy

    async def start(self, wait_s: float = 5.0) -> None:
        """Start supervising; wait up to ``wait_s`` for a first connection (not required)."""
        self._supervisor = asyncio.create_task(self._supervise(), name="kafka-supervisor")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_check.wait(), wait_s)

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._sender is not None:
            await self._sender.close()
            self._sender = None
        if self._producer is not None:
            await self._producer.stop()  # flushes what was handed over
            self._producer = None

    async def publish(
        self,
        events: Sequence[Envelope],
        extensions: Sequence[Extensions] | None = None,
        tombstones: Sequence[bytes] = (),
    ) -> None:
        """Return once the broker acknowledged every event; else raise BrokerUnavailable.
        ``extensions``: each event's extension attributes as ``ce_`` headers, when parsed.
        ``tombstones``: keys of ``ripples.employees`` to write a record with no value under,
        after the events (compaction's delete marker; consumers skip them).
        With a key store, employee and applicant events are sealed (unless ``seal`` is off),
        and their erasures applied; the database away then is a :class:`ProblemError` 503."""
        sender = self._sender
        if sender is None or not self._healthy:
            raise BrokerUnavailable("the broker is not reachable")
        records: list[kafka.Record] = list(kafka_records(events, extensions))
        store = self.keys
        if store is not None and not self._looked_at.isdisjoint(map(type, events)):
            await self._publish_sealed(store, events, records, tombstones)
            return
        records += [(EMPLOYEES.name, key, None, []) for key in tombstones]
        await self._send(sender, records)

    async def _send(self, sender: kafka.BatchSender, records: list[kafka.Record]) -> None:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                await sender.send(records)
        except (TimeoutError, kafka.KafkaError) as exc:
            raise BrokerUnavailable(f"the broker did not acknowledge: {exc!r}") from exc
        PUBLISH_SECONDS.observe(time.perf_counter() - started)

    async def _publish_sealed(
        self,
        store: personal.KeyStore,
        events: Sequence[Envelope],
        records: list[kafka.Record],
        tombstones: Sequence[bytes],
    ) -> None:
        """Seal, send, then erase, piece by piece: a piece ends where an event is about a
        person erased earlier in it, so that event is sealed under the person's new key."""
        secret = store.applicant_secret
        for wanted in personal.plans(events, secret):
            piece, part = events[wanted.start : wanted.end], records[wanted.start : wanted.end]
            if self.seal:
                try:
                    found = await store.keys_for(wanted.subjects) if wanted.subjects else {}
                except DB_ERRORS as exc:
                    raise personal.database_down(exc) from None
                personal.seal_records(piece, part, found, secret)
            if wanted.end == len(events):
                part += [(EMPLOYEES.name, key, None, []) for key in tombstones]
            sender = self._sender
            if sender is None or not self._healthy:
                raise BrokerUnavailable("the broker is not reachable")
            await self._send(sender, part)
            if wanted.removed or wanted.erased_applicants:
                try:
                    await store.erase(wanted.removed, wanted.erased_applicants)
                except DB_ERRORS as exc:
                    log.warning("personal keys not erased", extra={"reason": type(exc).__name__})
                    raise published_but_not("the erasure's key was not unlinked") from None

    async def _supervise(self) -> None:
        while True:
            try:
                await self._check()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep supervising whatever happens; say what it was
                log.exception("broker check failed unexpectedly")
                self._set_health(False)
            self._first_check.set()
            await asyncio.sleep(self.health_interval_s)

    async def _check(self) -> None:
        if self._producer is None:
            # The batching (and its linger) is the sender's: the producer sends at once.
            candidate = kafka.producer(self.settings, linger_ms=0)
            try:
                await asyncio.wait_for(candidate.start(), self.settings.request_timeout_s)
            except (TimeoutError, kafka.KafkaError, OSError) as exc:
                await candidate.stop()
                self._set_health(False, repr(exc))
                return
            self._producer = candidate
            self._sender = kafka.BatchSender(candidate, linger_s=self.linger_ms / 1000)
        try:
            metadata = await asyncio.wait_for(
                self._producer.client.fetch_all_metadata(), self.settings.request_timeout_s
            )
            if self.settings.create_topics and not {t.name for t in TOPICS} <= metadata.topics():
                await kafka.ensure_topics(self.settings)
        except (TimeoutError, kafka.KafkaError, OSError) as exc:
            self._set_health(False, repr(exc))
            return
        self._set_health(True)

    def _set_health(self, healthy: bool, reason: str = "") -> None:
        if healthy != self._healthy:
            if healthy:
                log.info("broker reachable", extra={"bootstrap": self.settings.bootstrap_servers})
            else:
                log.warning(
                    "broker unreachable",
                    extra={"bootstrap": self.settings.bootstrap_servers, "reason": reason},
                )
        self._healthy = healthy
        BROKER_UP.set(1 if healthy else 0)
