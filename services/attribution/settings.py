"""``ATTRIBUTION_*`` settings. The rule parameters default to CONTRACT §2-§4."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from shared.settings import SettingsError


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
    # Ingest's key API (POST /v1/keys:lookup, docs/security.md "Topics"): its base URL and a
    # reader key of INGEST_KEY_READER_API_KEYS (ATTRIBUTION_INGEST_API_KEY or the file named
    # by ATTRIBUTION_INGEST_API_KEY_FILE). Without them a sealed record cannot be
    # opened and is dead-lettered ("no key service configured").
    ingest_url: str = ""
    ingest_api_key: str = ""
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
    # §10 uncertainty: bootstrap resamples, their seed (same data and seed: same intervals)
    # and the intervals' confidence level
    bootstrap_samples: int = 2000
    bootstrap_seed: int = 20240601
    bootstrap_level: float = 0.95
    # §10 extension: the ambassador counts the scale-up estimate is given for
    scale_up_ambassadors: tuple[int, ...] = (25, 50, 100)
    # §9 report share links: the address they start with (as a browser reaches this service),
    # their HMAC-SHA256 secrets (comma-separated; the first signs, every one verifies, so a
    # secret is rotated by putting the new one first) and their longest validity
    public_base_url: str = "http://127.0.0.1:8081"
    report_link_secret: tuple[str, ...] = ()
    report_link_max_expires_s: int = 90 * 86400
    # the results dashboard's interval bands (weekly.py): the worker rewrites the §10
    # intervals of the last this-many ISO weeks every this-many seconds (0 = off)
    evidence_refresh_s: float = 900.0
    evidence_weeks: int = 26

    def __post_init__(self) -> None:
        if not 1 <= self.bootstrap_samples <= 100_000:
            raise SettingsError("ATTRIBUTION_BOOTSTRAP_SAMPLES must be between 1 and 100000")
        if not 0 <= self.bootstrap_seed < 2**63:
            raise SettingsError("ATTRIBUTION_BOOTSTRAP_SEED must be between 0 and 2^63 - 1")
        if not all(1 <= n <= 1_000_000 for n in self.scale_up_ambassadors):
            raise SettingsError("ATTRIBUTION_SCALE_UP_AMBASSADORS must be between 1 and 1000000")
        if not 60 <= self.report_link_max_expires_s <= 366 * 86400:
            raise SettingsError("ATTRIBUTION_REPORT_LINK_MAX_EXPIRES_S must be 60 s to a year")
        if not 1 <= self.evidence_weeks <= 520:
            raise SettingsError("ATTRIBUTION_EVIDENCE_WEEKS must be between 1 and 520")
        if not 0 < self.bootstrap_level < 1:
            raise SettingsError("ATTRIBUTION_BOOTSTRAP_LEVEL must be between 0 and 1")

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
