"""``NOTIFIER_*`` settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NotifierSettings:
    host: str = "127.0.0.1"
    port: int = 8082
    log_level: str = "INFO"
    # Valid bearer keys of the /v1 API, comma-separated; several may be valid at once
    # (rotation). Read from NOTIFIER_API_KEYS or from the file named by
    # NOTIFIER_API_KEYS_FILE.
    # Required: the service refuses to start without one.
    api_keys: tuple[str, ...] = ()
    # Ingest's key API (POST /v1/keys:lookup, docs/security.md "Topics"): its base URL and a
    # reader key of INGEST_KEY_READER_API_KEYS (NOTIFIER_INGEST_API_KEY or the file named by
    # NOTIFIER_INGEST_API_KEY_FILE). Without them a sealed record cannot be
    # opened and is dead-lettered ("no key service configured").
    ingest_url: str = ""
    ingest_api_key: str = ""

    # Consumer: events per batch and how long a batch may gather (a full batch goes at once,
    # so a short window costs nothing under load). How long a fetch may wait at the broker is
    # shared.streaming.FETCH_MAX_WAIT_MS, the same for every faust worker.
    batch_size: int = 500
    batch_within_s: float = 0.05

    # Dispatcher: a stored recognition wakes it at once; besides, it sweeps the ledger this
    # often for what became due by time (retries, leases, digests, waiting rows) and takes
    # this many rows at once. A claimed delivery is invisible to other replicas for the lease.
    dispatch_interval_s: float = 1.0
    dispatch_batch: int = 100
    claim_lease_s: float = 120.0
    # One attempt (connect, TLS, send, answer) ends after this long, whatever its phases do;
    # shorter than the lease, so a claim cannot run out while its message is on the way.
    attempt_deadline_s: float = 30.0

    # A recognition whose employee record has not arrived waits this long (it may be late on
    # the employees topic), then is recorded as suppressed (CONTRACT §6: no notify record).
    employee_wait_s: float = 86400.0
    # While waiting, look again this often (a record also wakes its recognitions at once).
    employee_recheck_s: float = 30.0

    # Retries: attempts in all (first included), exponential backoff with full jitter.
    max_attempts: int = 6
    backoff_base_s: float = 2.0
    backoff_max_s: float = 900.0
    request_timeout_s: float = 10.0

    # Per channel: at most this many sends in flight. Rates are kept per destination (per
    # webhook URL, per Slack channel; e-mail: the one relay), each with its channel's rate:
    # Slack about 1 message a second per webhook or channel with short bursts, Teams
    # throttles above 4 requests a second per webhook; webhooks and e-mail this rate.
    channel_concurrency: int = 4
    channel_rate_per_s: float = 5.0
    channel_burst: int = 10
    slack_rate_per_s: float = 1.0
    slack_burst: int = 3
    teams_rate_per_s: float = 4.0
    teams_burst: int = 4

    # Stale recognitions (CONTRACT §6 v1.1): one whose achievement is older than this when
    # it becomes due is recorded suppressed (reason stale), not sent. 30 days; 0 = off (the
    # local stack).
    max_age_s: float = 30 * 86400.0

    # Messages per employee per UTC day; 0 = no cap (default). Over the cap, the rest goes
    # out the next day as one digest.
    daily_cap: int = 0

    # Calls out (docs/security.md "Calls out (notifier)"). Deployment defaults: https only,
    # loopback refused. The local stack and the tests allow both explicitly (their receivers
    # listen on 127.0.0.1); link-local, private and reserved addresses are always refused.
    allow_loopback: bool = False
    allow_http: bool = False
    # Host allow-lists per channel (an exact host, or *.parent); empty = any public host.
    # Slack incoming webhooks: hooks.slack.com. Teams Workflows (Power Automate) webhooks:
    # *.logic.azure.com and *.environment.api.powerplatform.com.
    slack_allowed_hosts: tuple[str, ...] = ("hooks.slack.com",)
    teams_allowed_hosts: tuple[str, ...] = (
        "*.logic.azure.com",
        "*.environment.api.powerplatform.com",
    )
    webhook_allowed_hosts: tuple[str, ...] = ()

    # Channels. Webhook: HMAC-SHA256 secret of X-Ripples-Signature and of the Standard
    # Webhooks signature (a "whsec_" secret is base64, as that spec serialises it). Required.
    webhook_secret: str = ""
    # Slack: an address that is not a URL is a channel/user id for chat.postMessage.
    slack_bot_token: str = ""
    slack_api_url: str = "https://slack.com/api"
    # E-mail over SMTP with STARTTLS.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_from: str = "ripples@localhost"
    smtp_starttls: bool = True
    # CA bundle to verify the SMTP server with (default: the system's).
    smtp_ca_file: str = ""

    # Another folder of templates (da.toml, en.toml); default: the ones shipped.
    templates_dir: str = ""

    # The employee's page link in every message (CONTRACT §11; TEAM "The employee's page"):
    # {page_base_url}/me/{token}, the token signed by shared/signing.py page_token with the
    # first of page_link_secrets (the same secrets as ingest's INGEST_PAGE_LINK_SECRETS; a
    # comma list, _FILE allowed), valid page_link_ttl_s. Unset (either): no link, messages
    # as before.
    page_base_url: str = ""
    page_link_secrets: tuple[str, ...] = ()
    page_link_ttl_s: int = 30 * 86400

    # The period report (services/notifier/README.md "Scheduled report"): after each period
    # closes, the report goes once to every recipient. Off while no recipient is set.
    # Period: monthly (calendar months, UTC), weekly (ISO weeks) or an ISO 8601 duration
    # (PT30S, P1D) aligned to the Unix epoch.
    report_period: str = "monthly"
    # Comma-separated `channel:address:locale` (email, slack or teams; da or en), or a JSON
    # list of {"channel","address","locale"} (NOTIFIER_REPORT_RECIPIENTS_FILE).
    report_recipients: str = ""
    report_model: str = "last_touch"
    # A period's report is due this long after it ends (late events are still arriving).
    report_delay_s: float = 3600.0
    # After an outage, the reports of at most this many missed periods are sent.
    report_catch_up: int = 3
    # Share links in Slack/Teams reports live this long; 0 = attribution's default (7 days).
    report_link_expires_s: int = 0
    # Fetching the PDF or the link may take this long (PDF rendering); below the claim lease.
    report_fetch_timeout_s: float = 60.0
    # Attribution's results API, where the report comes from, and a key it accepts (the
    # first of a comma-separated list, so ATTRIBUTION_API_KEYS_FILE itself will do).
    attribution_url: str = ""
    attribution_api_key: str = ""
