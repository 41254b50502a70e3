"""``ATTRIBUTION_*`` settings. The rule parameters default to CONTRACT §2-§4."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class AttributionSettings:
    host: str = "127.0.0.1"
    port: int = 8081
    log_level: str = "INFO"
    # Valid bearer keys of the /v1 API, comma-separated; several may be valid at once
    # (rotation). Read from ATTRIBUTION_API_KEYS or from the file named by
    # ATTRIBUTION_API_KEYS_FILE.
    # Required: the service refuses to start without one.
    api_keys: tuple[str, ...] = ()
    # §2: an exposure counts within this many days before a first share; inspirer half-life
    ring_window_days: float = 14.0
    ring_half_life_days: float = 7.0
    # §3: clicks count within this many days before an application; time-decay half-life
    lookback_days: float = 30.0
    decay_half_life_days: float = 7.0
    # §4: earned media value prices (assumptions, documented in the README)
    cpm: float = 220.0
    cpc: float = 40.0
    currency: str = "DKK"
    # batches: at most this many events, waiting at most this long for them
    batch_size: int = 2000
    batch_within_s: float = 0.5

    @property
    def ring_window(self) -> timedelta:
        return timedelta(days=self.ring_window_days)

    @property
    def ring_half_life(self) -> timedelta:
        return timedelta(days=self.ring_half_life_days)

    @property
    def lookback(self) -> timedelta:
        return timedelta(days=self.lookback_days)

    @property
    def decay_half_life(self) -> timedelta:
        return timedelta(days=self.decay_half_life_days)
