"""The faust worker: consumes ``ripples.recognitions`` (recognitions, and ingest's messages
about employees' LinkedIn connections) and ``ripples.employees`` (and the applicant erasures
of ``ripples.applicants``) into the notifier's own tables, runs the
dispatcher beside them and serves the API.

Consuming only records (one transaction per batch); delivering happens in the dispatcher
task, which reads pending rows, so a slow peer never holds the consumer loop and pending
deliveries survive restarts. Undecodable records go to the dead-letter topic with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import faust
import httpx
import mode

from services.notifier import egress, kids, metrics, reports, schedule, store
from services.notifier.api import create_api
from services.notifier.channels import Channels
from services.notifier.dispatcher import Dispatcher
from services.notifier.messages import TEMPLATES, Templates
from services.notifier.settings import NotifierSettings
from shared import db, failures, sealing, streaming
from shared.cloudevents import InvalidEvent
from shared.events import (
    APPLICANTS,
    DEAD_LETTERS,
    EMPLOYEES,
    RECOGNITIONS,
    ApplicantErasedEvent,
    EmployeePreferencesEvent,
    EmployeeRemovedEvent,
    EmployeeUpsertedEvent,
    Envelope,
    LinkedInConnectionEvent,
    RecognitionDueEvent,
)
from shared.settings import DatabaseSettings, KafkaSettings

log = logging.getLogger(__name__)

APP_ID = "ripples-notifier"
ERASURES = frozenset({"ripples.applicant.erased.v1"})
"""The only sealed records of ripples.applicants the notifier opens (it applies no other)."""


def now() -> datetime:
    return datetime.now(UTC)


class Runtime(mode.Service):  # type: ignore[misc]  # mode is untyped here
    """The pool, the migrations, the channels and the dispatcher task of one worker."""

    def __init__(
        self,
        app: faust.App,
        settings: NotifierSettings,
        database: DatabaseSettings,
        dead_letter: Callable[[bytes, bytes, dict[str, bytes]], Awaitable[None]],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.settings = settings
        self.database = database
        self.dead_letter = dead_letter
        self.pool: asyncpg.Pool | None = None
        self.dispatcher: Dispatcher | None = None
        self.prepared = asyncio.Event()
        self.lag: dict[tuple[str, int], int] = {}
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Future[None] | None = None
        self._attribution: reports.Attribution | None = None
        self._scheduler: asyncio.Future[None] | None = None
        self.keys: sealing.KeyClient | None = None

    async def on_start(self) -> None:
        if self.settings.ingest_url and self.settings.ingest_api_key:
            self.keys = sealing.KeyClient(
                self.settings.ingest_url, self.settings.ingest_api_key.split(",")[0].strip()
            )
        else:  # said at start, so an operator who left them out sees why records dead-letter
            log.warning(
                "no key service: NOTIFIER_INGEST_URL and NOTIFIER_INGEST_API_KEY(_FILE) "
                "are not both set, so every sealed record is dead-lettered"
            )
        folder = Path(self.settings.templates_dir) if self.settings.templates_dir else TEMPLATES
        templates = Templates.load(folder)
        conn = await asyncpg.connect(self.database.url)
        try:
            await db.prepare(conn, store.COMPONENT, store.MIGRATIONS, self.database)
        finally:
            await conn.close()
        self.pool = await db.create_pool(self.database)
        self._client = egress.client(self.settings.allow_loopback, self.settings.request_timeout_s)
        plan = schedule.configured(self.settings)  # checked at start (__main__.refusal)
        if plan is not None:
            self._attribution = reports.Attribution(self.settings)
        self.dispatcher = Dispatcher(
            self.settings,
            self.pool,
            Channels(self.settings, self._client),
            templates,
            self.dead_letter,
            now,
            schedule=plan,
            attribution=self._attribution,
        )
        self._task = asyncio.ensure_future(self.dispatcher.run())
        if plan is not None:
            scheduler = reports.Scheduler(plan, self.pool, self.dispatcher.wake, now)
            self._scheduler = asyncio.ensure_future(scheduler.run())
        self.prepared.set()

    async def on_stop(self) -> None:
        for task in (self._scheduler, self._task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
        if self._attribution is not None:
            await self._attribution.aclose()
        if self.keys is not None:
            await self.keys.aclose()
        if self.pool is not None:
            await self.pool.close()

    async def write(self, step: Callable[[store.Conn], Awaitable[None]]) -> None:
        """Run one transaction, retrying while the database is unavailable: the batch is not
        acknowledged before it is stored, so nothing is lost. Any other failure (data the
        database refuses, :mod:`shared.failures`) is raised for the caller to dead-letter."""
        await self.prepared.wait()
        assert self.pool is not None
        delay = 0.2
        while True:
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await step(conn)
                return
            except Exception as exc:
                if not failures.is_transient(exc):
                    raise
                log.warning(
                    "database write failed; retrying", extra={"error": failures.reason(exc)}
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def ready(self) -> Mapping[str, bool]:
        database = self.pool is not None and await db.ping(self.pool)
        try:
            assigned = bool(self.app.consumer.assignment())
        except Exception:  # the consumer may not exist yet while starting
            assigned = False
        return {"database": database, "partitions": assigned}

    def observe_lag(self, event: Any) -> None:
        tp = event.message.tp
        try:
            highwater = self.app.consumer.highwater(tp)
        except Exception:  # highwater unknown before the first fetch response
            return
        if highwater is None:
            return
        self.lag[(tp.topic, tp.partition)] = max(0, highwater - event.message.offset - 1)
        metrics.CONSUMER_LAG.labels(tp.topic).set(
            sum(v for (topic, _), v in self.lag.items() if topic == tp.topic)
        )


def build(
    settings: NotifierSettings, kafka: KafkaSettings, database: DatabaseSettings
) -> faust.App:
    app = streaming.faust_app(APP_ID, kafka)
    recognitions_topic = streaming.topic(app, RECOGNITIONS)
    employees_topic = streaming.topic(app, EMPLOYEES)
    applicants_topic = streaming.topic(app, APPLICANTS)
    dead_letters = streaming.topic(app, DEAD_LETTERS)

    async def dead_letter(key: bytes, value: bytes, headers: dict[str, bytes]) -> None:
        async def seal() -> tuple[bytes, dict[str, bytes]] | None:
            assert runtime.pool is not None
            async with runtime.pool.acquire() as conn:
                return await kids.seal_dead_letter(conn, runtime.keys, value, headers)

        # a hire recognition goes as it came: naming the applicant's kid (kids.py)
        body, attributes = value, headers
        if runtime.pool is not None:
            try:
                sealed = await failures.retry_transient(seal)
            except Exception as exc:  # a defect: the dead letter goes as it is, never lost
                log.error("dead letter not sealed", extra={"error": failures.reason(exc)})
                sealed = (value, headers)
            if sealed is None:
                return  # its applicant was erased (the key shredded): nothing to keep
            body, attributes = sealed

        async def send() -> None:
            sent = await dead_letters.send(key=key, value=body, headers=attributes)
            await sent

        await failures.retry_transient(send)  # a broker away is waited for, never skipped

    runtime = Runtime(app, settings, database, dead_letter)
    forgotten: set[str] = set()  # the kids a transaction erased (a set per write)

    async def reject(event: Any, reason: str) -> None:
        headers = dict(event.headers or {})
        await dead_letter(
            event.key or b"",
            event.value or b"",
            streaming.dead_letter_headers(
                "notifier",
                reason,
                event.message.topic,
                event.message.partition,
                event.message.offset,
                headers,
            ),
        )
        metrics.DEAD_LETTERS.labels("invalid_event").inc()

    async def decode(
        events: list[Any], wanted: tuple[type[Envelope], ...], sealed: frozenset[str] | None = None
    ) -> list[kids.Item]:
        """(decoded, raw, opening) of the events of the wanted types; poison dead-lettered.
        Sealed records (of the ``sealed`` types, when given) are opened first: one key lookup
        for the batch; ingest away raises, and the same batch is handed over again."""
        await runtime.prepared.wait()
        openings = await sealing.open_records(events, runtime.keys, sealed)
        out: list[kids.Item] = []
        for index, event in enumerate(events):
            runtime.observe_lag(event)
            if streaming.compaction_tombstone(event):
                continue  # a removed employee's preference key: nothing to apply
            opening = openings.get(index)
            if opening is not None and opening.poison is not None:
                await reject(event, f"sealed: {opening.poison}")
                continue
            try:  # a tombstone or garbage: InvalidEvent
                decoded = streaming.decode(opening if opening is not None else event)
            except InvalidEvent as exc:
                await reject(event, f"invalid_event: {exc}")
                continue
            if opening is not None:
                decoded = kids.restore_id(sealing.without_shredded(decoded), opening)
            if isinstance(decoded, wanted):
                out.append((decoded, event, opening))
        return out

    async def store_batch(
        items: list[Any], step: Callable[[store.Conn, list[Any]], Awaitable[None]]
    ) -> None:
        """Store a batch in one transaction; if the database refuses some data, store the
        events one by one and dead-letter the refused ones."""
        if not items:
            return

        def bound(chosen: list[Any]) -> Callable[[store.Conn], Awaitable[None]]:
            return lambda conn: step(conn, chosen)

        try:
            await runtime.write(bound(items))
        except Exception:  # not transient (write retries those): find the refused events
            for item in items:
                try:
                    await runtime.write(bound([item]))
                except Exception as exc:
                    reason = failures.reason(exc)  # never the message: it may quote values
                    await reject(item[1], f"invalid_event: database refused it: {reason}")
        if runtime.keys is not None and forgotten:  # erased kids: their keys leave the cache
            runtime.keys.forget(forgotten)
        forgotten.clear()
        assert runtime.dispatcher is not None
        runtime.dispatcher.wake.set()

    async def store_recognitions(conn: store.Conn, items: list[Any]) -> None:
        items, erased = await kids.recognitions(conn, items, now())
        forgotten.update(erased)
        received = [
            store.Received(e, raw.message.partition, raw.message.offset)
            for e, raw, _ in items
            if isinstance(e, RecognitionDueEvent)
        ]
        connections = [
            (e, raw.message.partition, raw.message.offset)
            for e, raw, _ in items
            if isinstance(e, LinkedInConnectionEvent)
        ]
        if received:
            await store.record_recognitions(conn, received, now())
        if connections:
            await store.record_connections(conn, connections, now())

    async def store_employees(conn: store.Conn, items: list[Any]) -> None:
        await store.record_employees(conn, [event for event, _, _ in items], now())

    async def store_erasures(conn: store.Conn, items: list[Any]) -> None:
        forgotten.update(await kids.erasures(conn, items, now()))

    async def recognitions_batch(batch: list[Any]) -> None:
        wanted = (RecognitionDueEvent, LinkedInConnectionEvent)
        await store_batch(await decode(batch, wanted), store_recognitions)

    async def employees_batch(batch: list[Any]) -> None:
        wanted = (EmployeeUpsertedEvent, EmployeeRemovedEvent, EmployeePreferencesEvent)
        await store_batch(await decode(batch, wanted), store_employees)

    async def applicants_batch(batch: list[Any]) -> None:
        erasures = await decode(batch, (ApplicantErasedEvent,), ERASURES)
        await store_batch(erasures, store_erasures)

    async def consume_recognitions(stream: Any) -> None:
        await streaming.handle_batches(
            stream, settings.batch_size, settings.batch_within_s, recognitions_batch
        )

    async def consume_employees(stream: Any) -> None:
        await streaming.handle_batches(
            stream, settings.batch_size, settings.batch_within_s, employees_batch
        )

    async def consume_applicants(stream: Any) -> None:
        """Only the erasures: an erased applicant's hire recognitions keep no id."""
        await streaming.handle_batches(
            stream, settings.batch_size, settings.batch_within_s, applicants_batch
        )

    app.agent(recognitions_topic, concurrency=1)(consume_recognitions)
    app.agent(applicants_topic, concurrency=1)(consume_applicants)
    app.agent(employees_topic, concurrency=1)(consume_employees)
    app.service(runtime)
    app.service(
        streaming.HttpServer(
            create_api(lambda: runtime.pool, runtime.ready, settings.api_keys),
            settings.host,
            settings.port,
        )
    )
    return app
