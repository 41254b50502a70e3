"""Settings from environment variables (12-factor).

Each settings class is a frozen dataclass read with :func:`load` under one prefix:
``load(IngestSettings, "INGEST_")`` reads ``INGEST_PORT`` into ``port``. A secret may come
from a file instead: ``INGEST_API_KEYS_FILE=/run/secrets/keys`` reads the value from that
file. Values are parsed by the field's type; a bad value raises :class:`SettingsError` naming
the variable, never echoing a secret.

The Kafka and PostgreSQL settings are shared by every service (``KAFKA_*``, ``DATABASE_*``).
"""

from __future__ import annotations

import dataclasses
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    pass


def _parse(variable: str, raw: str, kind: Any) -> Any:
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(kind) if a is not type(None)]
        if raw.strip() == "":
            return None
        return _parse(variable, raw, inner[0])
    if origin is tuple:
        (item, _ellipsis) = get_args(kind)
        parts = [part.strip() for part in raw.split(",")]
        return tuple(_parse(variable, part, item) for part in parts if part)
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise SettingsError(f"{variable} must be true or false")
    if kind is int or kind is float:
        try:
            return kind(raw.strip())
        except ValueError:
            raise SettingsError(f"{variable} must be a number") from None
    if kind is str:
        return raw.strip()
    raise TypeError(f"unsupported settings type {kind!r} for {variable}")  # pragma: no cover


def load(cls: type[T], prefix: str, environ: Mapping[str, str] | None = None) -> T:
    """Build ``cls`` from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        variable = prefix + field.name.upper()
        raw = env.get(variable)
        path = env.get(variable + "_FILE")
        if raw is None and path:
            try:
                raw = Path(path).read_text()
            except OSError as exc:
                raise SettingsError(f"{variable}_FILE cannot be read: {exc.strerror}") from None
        if raw is not None:
            values[field.name] = _parse(variable, raw, hints[field.name])
    return cls(**values)


@dataclass(frozen=True)
class KafkaSettings:
    """``KAFKA_*``: how every service reaches the broker."""

    bootstrap_servers: str = "127.0.0.1:19092"
    # Idempotent producer: on for Apache Kafka; Tansu (the local broker) does not support it.
    enable_idempotence: bool = False
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    # TLS (security_protocol SSL or SASL_SSL): CA bundle, and a client certificate for mTLS.
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    client_id: str = "ripples"
    replication_factor: int = 1
    # min.insync.replicas of the topics created (with acks=all: how many replicas must have a
    # record before it is acknowledged). Unset: 2 when the replication factor is 3 or more
    # (one broker may be down, none lost), else 1.
    min_insync_replicas: int | None = None
    # Create the contract topics at start-up when missing (off where a job or operator does).
    create_topics: bool = True
    # Erasure cannot reach a record on a topic; these bound how long one outlives it: the
    # retention of the dead-letter topic (copies of any record) and of the topics whose
    # records name applicants (applicants, credits, recognitions), and how long a superseded
    # record of the compacted employees topic may wait for compaction.
    dead_letter_retention_s: float = 7 * 24 * 3600.0
    applicant_retention_s: float = 30 * 24 * 3600.0
    employee_compaction_lag_s: float = 7 * 24 * 3600.0
    # Consumer-group timings. Short values make rebalances quick on the local stack.
    session_timeout_s: float = 10.0
    heartbeat_interval_s: float = 1.0
    rebalance_timeout_s: float = 10.0
    request_timeout_s: float = 10.0


@dataclass(frozen=True)
class DatabaseSettings:
    """``DATABASE_*``: the PostgreSQL server (``DATABASE_URL``)."""

    url: str = "postgresql://ripples@127.0.0.1:15432/ripples"
    # Apply the service's migrations at start-up (the local stack). Deployments set false and
    # run `python -m shared.db migrate` first; a service then refuses to start against a
    # schema it does not know (shared.db.check).
    migrate: bool = True
    pool_min_size: int = 1
    pool_max_size: int = 10
    command_timeout_s: float = 30.0


def kafka_settings(environ: Mapping[str, str] | None = None) -> KafkaSettings:
    return load(KafkaSettings, "KAFKA_", environ)


def database_settings(environ: Mapping[str, str] | None = None) -> DatabaseSettings:
    return load(DatabaseSettings, "DATABASE_", environ)
