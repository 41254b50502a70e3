"""aiokafka helpers: producers, consumers and topic creation from the shared settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from shared.events import TOPICS, Topic
from shared.settings import KafkaSettings

log = logging.getLogger(__name__)


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext:
    """A TLS context that verifies the brokers (and presents a client certificate if set)."""
    context = ssl.create_default_context(cafile=settings.ssl_cafile)
    if settings.ssl_certfile:
        context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile)
    return context


def _connection(settings: KafkaSettings) -> dict[str, Any]:
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


async def ensure_topics(
    settings: KafkaSettings, topics: Iterable[Topic] = TOPICS, timeout_s: float = 10.0
) -> list[str]:
    """Create the topics that do not exist yet, with their explicit partition counts.

    Returns the names created. Safe to call concurrently and repeatedly.
    """
    admin = AIOKafkaAdminClient(**_connection(settings))
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        existing = set(await asyncio.wait_for(admin.list_topics(), timeout_s))
        missing = [t for t in topics if t.name not in existing]
        if not missing:
            return []
        new = [NewTopic(t.name, t.partitions, settings.replication_factor) for t in missing]
        with contextlib.suppress(TopicAlreadyExistsError):
            await asyncio.wait_for(admin.create_topics(new), timeout_s)
        log.info("created topics", extra={"topics": [t.name for t in missing]})
        return [t.name for t in missing]
    finally:
        await admin.close()


__all__ = ["KafkaError", "consumer", "ensure_topics", "producer"]
