"""Click events, published in the background so a redirect never waits for the broker.

A visitor's redirect must work even while the broker is away, so ``link.clicked.v1`` events
go into a bounded in-memory buffer that one task drains to Kafka in batches. While the broker
is down the task keeps the batch and retries; the buffer absorbs the clicks meanwhile. When
the buffer is full a click is dropped, counted in ``ingest_clicks_dropped_total{reason}`` and
logged: never lost silently. At shutdown the buffer is flushed for a bounded time; what cannot
be flushed is counted and logged the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from prometheus_client import Counter, Gauge

from services.ingest.publisher import BrokerUnavailable, Publisher
from shared.events import LinkClickedEvent
from shared.metrics import preinit

log = logging.getLogger(__name__)

DROP_REASONS = ("buffer_full", "shutdown")
BUFFERED = Gauge("ingest_click_buffer_depth", "Click events waiting to be published.")
PUBLISHED = Counter("ingest_clicks_published_total", "Click events the broker acknowledged.")
DROPPED = Counter(
    "ingest_clicks_dropped_total", "Click events that could not be kept, by reason.", ["reason"]
)
preinit(DROPPED, DROP_REASONS)


class ClickBuffer:
    def __init__(
        self,
        publisher: Publisher,
        size: int,
        batch: int = 500,
        retry_s: float = 0.5,
        flush_timeout_s: float = 5.0,
    ) -> None:
        self.publisher = publisher
        self.size = size
        self.batch = batch
        self.retry_s = retry_s
        self.flush_timeout_s = flush_timeout_s
        self._events: deque[LinkClickedEvent] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._task: asyncio.Task[None] | None = None
        self._warned = False

    def add(self, event: LinkClickedEvent) -> None:
        if len(self._events) >= self.size:
            DROPPED.labels("buffer_full").inc()
            if not self._warned:
                log.error("click buffer full: clicks are being dropped", extra={"size": self.size})
                self._warned = True
            return
        self._events.append(event)
        BUFFERED.set(len(self._events))
        self._drained.clear()
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="click-publisher")

    async def stop(self) -> None:
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), self.flush_timeout_s)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._events:
            DROPPED.labels("shutdown").inc(len(self._events))
            log.error("clicks not published at shutdown", extra={"clicks": len(self._events)})
            self._events.clear()
            BUFFERED.set(0)

    async def _run(self) -> None:
        while True:
            if not self._events:
                self._wake.clear()
                await self._wake.wait()
            chunk = [self._events[i] for i in range(min(self.batch, len(self._events)))]
            try:
                await self.publisher.publish(chunk)
            except BrokerUnavailable:
                await asyncio.sleep(self.retry_s)
                continue
            for _ in chunk:
                self._events.popleft()
            PUBLISHED.inc(len(chunk))
            BUFFERED.set(len(self._events))
            if not self._events:
                self._drained.set()
            if self._warned and len(self._events) < self.size:
                self._warned = False
