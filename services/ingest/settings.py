"""``INGEST_*`` settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IngestSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    # Valid bearer keys, comma-separated; several may be valid at once (rotation).
    # Read from INGEST_API_KEYS or from the file named by INGEST_API_KEYS_FILE.
    api_keys: tuple[str, ...] = ()
    max_body_bytes: int = 4 * 1024 * 1024
    max_batch_events: int = 1000
    # How long a request waits for the broker's acknowledgement before answering 503.
    publish_timeout_s: float = 5.0
    retry_after_s: int = 5
    linger_ms: int = 2
    # How often the broker connection is checked (readiness, topic re-creation).
    health_interval_s: float = 1.0
    log_level: str = "INFO"
