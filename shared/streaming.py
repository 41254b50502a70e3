"""faust-streaming pieces shared by the consuming services (attribution, notifier).

- :func:`faust_app` builds an app from the shared Kafka settings, with short consumer-group
  timeouts where the settings ask for them, raw bytes in and out (the records are CloudEvents
  in binary mode; :func:`shared.cloudevents.from_kafka` decodes them), and no faust web
  server: each service serves its own Starlette API through :class:`HttpServer`.
- :func:`dead_letter_headers` describes a record that could not be processed, for the
  dead-letter topic, so a poison event never stops a stream and is never silently lost.
- :func:`run` starts a faust worker that keeps the project's JSON logging.

Design rules (INFRA-NOTES): agent concurrency 1 per partition; at-least-once delivery with
idempotent effects in PostgreSQL; catch per-event errors and dead-letter them (an exception
inside an agent acks the event and it is never retried).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import faust
import mode
import uvicorn
from starlette.types import ASGIApp

from shared.events import Topic
from shared.settings import KafkaSettings


def broker_urls(bootstrap_servers: str) -> list[str]:
    """``host1:9092,host2:9092`` → faust's ``kafka://`` URLs."""
    return [
        f"kafka://{server.strip()}" for server in bootstrap_servers.split(",") if server.strip()
    ]


def faust_app(app_id: str, kafka: KafkaSettings, **overrides: Any) -> faust.App:
    """A faust app for one service; ``app_id`` is also its consumer group id."""
    options: dict[str, Any] = {
        "broker": broker_urls(kafka.bootstrap_servers),
        "broker_client_id": f"{kafka.client_id}-{app_id}",
        "broker_session_timeout": kafka.session_timeout_s,
        "broker_heartbeat_interval": kafka.heartbeat_interval_s,
        "broker_rebalance_timeout": kafka.rebalance_timeout_s,
        "broker_request_timeout": max(kafka.request_timeout_s, kafka.session_timeout_s + 5),
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "key_serializer": "raw",
        "value_serializer": "raw",
        "topic_allow_declare": False,  # topics are created with explicit partition counts
        "topic_disable_leader": True,
        "store": "memory://",
        "web_enabled": False,
    }
    if kafka.security_protocol != "PLAINTEXT":
        options["broker_credentials"] = _credentials(kafka)
    return faust.App(app_id, **(options | overrides))


def _credentials(kafka: KafkaSettings) -> Any:
    from shared.kafka import ssl_context

    context = ssl_context(kafka)
    if kafka.sasl_mechanism:
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password,
            mechanism=kafka.sasl_mechanism,
            ssl_context=context,
        )
    return faust.SSLCredentials(context)


def topic(app: faust.App, spec: Topic) -> faust.TopicT:
    """A contract topic as raw bytes (CloudEvents binary mode)."""
    return app.topic(
        spec.name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=spec.partitions,
    )


def dead_letter_headers(
    consumer: str,
    reason: str,
    source_topic: str,
    partition: int,
    offset: int,
    headers: Mapping[str, bytes] | None = None,
) -> dict[str, bytes]:
    """Headers for the dead-letter copy of a record: its own headers (the CloudEvents
    attributes) plus why and where it failed. The value and key are copied unchanged."""
    out = dict(headers or {})
    out |= {
        "x-ripples-error": reason[:2000].encode(),
        "x-ripples-consumer": consumer.encode(),
        "x-ripples-topic": source_topic.encode(),
        "x-ripples-partition": str(partition).encode(),
        "x-ripples-offset": str(offset).encode(),
    }
    return out


class HttpServer(mode.Service):  # type: ignore[misc]  # mode is untyped here
    """Serves a Starlette (ASGI) app from inside the faust worker's event loop."""

    def __init__(self, asgi: ASGIApp, host: str, port: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._server = uvicorn.Server(
            uvicorn.Config(
                asgi,
                host=host,
                port=port,
                log_config=None,
                access_log=False,
                lifespan="off",
                loop="none",
                http="httptools",
            )
        )
        self._serving: asyncio.Task[None] | None = None

    async def on_start(self) -> None:
        self._serving = asyncio.ensure_future(self._server.serve())

    async def on_stop(self) -> None:
        self._server.should_exit = True
        if self._serving is not None:
            await asyncio.wait([self._serving], timeout=5)


def run(app: faust.App, log_level: str = "INFO") -> None:
    """Run a faust worker in this process until SIGTERM/SIGINT, with the JSON logs that
    :func:`shared.logs.configure` set up (faust's own console output is off)."""
    worker = faust.Worker(
        app, loglevel=log_level, quiet=True, override_logging=False, redirect_stdouts=False
    )
    worker.execute_from_commandline()
