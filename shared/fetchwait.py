"""How long a faust worker's consumer lets a fetch wait at the broker.

faust-streaming's aiokafka driver creates the worker's consumer with ``fetch_max_wait_ms=1500``
and offers no setting for it. A broker that answers a fetch as soon as data arrives (Kafka
with ``fetch_min_bytes=1``) makes that harmless; one that answers only when the wait is over
adds up to the whole wait to every record on a quiet topic. Tansu 0.6 here behaves like the
latter: a record produced to an idle topic reached an aiokafka consumer 480–1,230 ms later
with a 1,500 ms wait and 7–36 ms later with 100 ms. A busy topic fills fetches at once, so a
short wait costs only a few more (empty) fetch requests per second when idle.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as driver


def limit_fetch_wait(app: faust.App, seconds: float) -> None:
    """Make ``app``'s worker consumer wait at most ``seconds`` for a fetch to fill. Call it
    before the app starts (the consumer is created when the worker starts)."""
    wait_ms = max(0, round(seconds * 1000))

    class Thread(driver.AIOKafkaConsumerThread):  # type: ignore[misc]  # faust is untyped here
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = wait_ms  # read by the consumer's start()
            return consumer

    class Consumer(driver.Consumer):  # type: ignore[misc]
        def _new_consumer_thread(self) -> Thread:
            return Thread(self, loop=self.loop, beacon=self.beacon)

    app.transport.Consumer = Consumer
