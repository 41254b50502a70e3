"""``INGEST_*`` settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IngestSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    # Valid bearer keys of the /v1 API, comma-separated; several may be valid at once
    # (rotation). Read from INGEST_API_KEYS or from the file named by INGEST_API_KEYS_FILE.
    # Required: the service refuses to start without one.
    api_keys: tuple[str, ...] = ()
    max_body_bytes: int = 4 * 1024 * 1024
    # Request line plus headers; uvicorn's httptools parser sets no limit of its own.
    max_header_bytes: int = 16 * 1024
    max_batch_events: int = 1000
    # Spreadsheet imports (POST /v1/employees:import, /v1/jobs:import): a bigger file or more
    # data rows is refused with 413.
    import_max_bytes: int = 8 * 1024 * 1024
    import_max_rows: int = 20_000
    # How long a request waits for the broker's acknowledgement before answering 503.
    publish_timeout_s: float = 5.0
    retry_after_s: int = 5
    # Concurrent requests share one flush (shared.kafka.BatchSender): after a flush, the next
    # one waits up to this long for as many requests as the last one carried (group commit);
    # with a single request in flight at a time it never waits.
    linger_ms: int = 2
    # How often the broker connection is checked (readiness, topic re-creation).
    health_interval_s: float = 1.0
    log_level: str = "INFO"

    # --- crypto-shredding (services/ingest/keys.py; docs/security.md "Crypto-shredding") ---
    # Seal the personal fields of employee and applicant events on the topics under each
    # person's own key (on/off). Off publishes them in plaintext, as before.
    sealing: bool = True
    # Bearer keys of POST /v1/keys:lookup only, comma-separated (or _FILE): the consumers'
    # (attribution, notifier). They open everyone's personal fields, so INGEST_API_KEYS do not
    # work there, and these work nowhere else. Empty: nobody can look keys up.
    key_reader_api_keys: tuple[str, ...] = ()
    # How long an erased person's key is still served after the erasure, so consumers behind
    # can open what was published before it; 0 shreds it in the erasure's own transaction.
    shred_grace_s: float = 3600.0
    # How often the keys past their grace are deleted (also after every erasure); 0: only then.
    shred_sweep_interval_s: float = 60.0

    # --- tracked links and the redirector ---
    # The public address of this service as visitors see it; `GET /r/{code}` lives under it.
    # An https address makes the visitor cookie `Secure`.
    public_base_url: str = "http://127.0.0.1:8080"
    # Hosts a link may point to: `example.com` (exactly) or `*.example.com` (any subdomain).
    # Empty: no link can be created (there is no open redirect by default).
    link_allowed_hosts: tuple[str, ...] = ()
    # Length of a new link code (base62; 12 characters ≈ 71 bits).
    link_code_length: int = 12
    # Links kept in memory (LRU); PostgreSQL is the source of truth.
    link_cache_size: int = 100_000
    # Click events waiting for the broker; when full, further clicks are dropped and counted.
    click_buffer_size: int = 100_000
    visitor_cookie_max_age_s: int = 365 * 24 * 3600

    # --- applicant tracking systems ---
    # Key of the HMAC that pseudonymises applicant ids and employee e-mail addresses.
    # Required for the ATS webhooks and for e-mail referrer mapping.
    applicant_id_secret: str = ""
    greenhouse_secret_key: str = ""
    teamtailor_signature_key: str = ""
    lever_signature_token: str = ""
    # Lever's webhooks carry ids only; the opportunity (posting, sources) is read from its API.
    lever_api_base_url: str = "https://api.lever.co/v1"
    lever_api_key: str = ""
    # A Teamtailor webhook without the application's relationships (candidate, job, stage) is
    # completed from `GET {base}/v1/job-applications/{id}?include=candidate,job,stage`
    # (EU: https://api.teamtailor.com, NA: https://api.na.teamtailor.com).
    teamtailor_api_base_url: str = "https://api.teamtailor.com"
    teamtailor_api_key: str = ""
    teamtailor_api_version: str = "20240404"
    # Vendor API reads (Lever, Teamtailor): attempts in all, the first backoff (doubling), and
    # the longest 429 Retry-After waited out in-request; a longer one is passed to the vendor
    # as a 503 with that Retry-After, so it redelivers then.
    vendor_attempts: int = 3
    vendor_backoff_s: float = 0.5
    vendor_max_wait_s: float = 5.0
    vendor_timeout_s: float = 10.0
    # A Lever delivery whose signed `triggeredAt` is older than this is refused (401) as a
    # replay; its signed `token` is remembered (deduplicated) at least this long.
    lever_replay_window_s: float = 24 * 3600.0
    # How far a signed webhook timestamp may lie in the future (clocks disagree) before it
    # is refused as absurd.
    webhook_clock_skew_s: float = 300.0

    # --- LinkedIn ---
    # The app's client secret: webhook challenge responses and X-LI-Signature.
    linkedin_client_secret: str = ""
    linkedin_api_base_url: str = "https://api.linkedin.com/rest"
    # LinkedIn-Version (YYYYMM) on every /rest call. LinkedIn supports each version for at
    # least a year: bump it yearly (services/ingest/README.md, "LinkedIn API version").
    linkedin_version: str = "202601"
    linkedin_poll_enabled: bool = False
    linkedin_poll_interval_s: float = 3600.0
    # JSON file {"urn:li:person:…": "<access token>", …}; tokens are never logged.
    linkedin_tokens_file: str = ""
    # The company page polled for organizationalEntityShareStatistics, and its admin token.
    linkedin_organization_urn: str = ""
    linkedin_organization_token: str = ""
    # Requests per UTC day the poller may make (LinkedIn's quotas are daily, reset at
    # midnight UTC): the whole application's, and each member's (token's).
    linkedin_daily_request_budget: int = 5000
    linkedin_member_daily_request_budget: int = 500
    # After a 429 that member waits Retry-After, or this long doubled for each 429 in a row
    # when the header is absent, never more than the maximum.
    linkedin_backoff_s: float = 60.0
    linkedin_backoff_max_s: float = 6 * 3600.0
    linkedin_page_size: int = 50
    # Webhook subscriptions (Organization Social Action Notifications → Event Subscription
    # API): the app (urn:li:developerApplication:{id}, Developer Portal), the public https URL
    # of /v1/webhooks/linkedin, and the page admins (urn:li:person:…, comma-separated) whose
    # subscriptions the poller keeps, with the organization token. All three or none.
    linkedin_application_urn: str = ""
    linkedin_webhook_url: str = ""
    linkedin_organization_admins: tuple[str, ...] = ()

    # --- LinkedIn connect flow (CONTRACT §8; services/ingest/connect.py) ---
    # The app's client id (LinkedIn Developer Portal → Auth) beside its client secret.
    linkedin_client_id: str = ""
    # {base}/authorization (the browser is sent there) and {base}/accessToken (code exchange).
    linkedin_oauth_base_url: str = "https://www.linkedin.com/oauth/v2"
    # OpenID Connect userinfo: `sub` names the member (urn:li:person:{sub}).
    linkedin_userinfo_url: str = "https://api.linkedin.com/v2/userinfo"
    # Scopes asked for (space-separated at LinkedIn): openid+profile find the member,
    # r_member_postAnalytics reads their post statistics.
    linkedin_scopes: tuple[str, ...] = ("openid", "profile", "r_member_postAnalytics")
    # HMAC key signing invitation links.
    connect_secret: str = ""
    # AES-256-GCM keys for tokens at rest, comma-separated (first encrypts, all decrypt).
    token_keys: tuple[str, ...] = ()
    linkedin_invitation_ttl_s: int = 7 * 24 * 3600
    # How long a `state` handed to LinkedIn stays valid.
    linkedin_state_ttl_s: int = 1800
    # A token this close to expiry is `expiring` (or refreshed, when it can be).
    linkedin_expiry_warning_s: int = 7 * 24 * 3600
    # Scopes asked of the company page's admin (an invitation with "page": true):
    # rw_organization_admin reads the page's statistics and manages its webhook subscriptions
    # (LinkedIn "Organization Access Control by Role").
    linkedin_admin_scopes: tuple[str, ...] = ("openid", "profile", "rw_organization_admin")

    # --- the employee's page and the overview (CONTRACT §11; services/ingest/page/) ---
    # HMAC keys of the page links (`{public_base_url}/me/{token}`, shared/signing.page_token),
    # comma-separated: the first signs, every one verifies (rotation). The notifier signs the
    # same tokens with NOTIFIER_PAGE_LINK_SECRETS. The overview's share links and the page's
    # form tokens are signed with them too, each under its own purpose. Empty: no page.
    page_link_secrets: tuple[str, ...] = ()
    page_link_ttl_s: int = 30 * 24 * 3600
    # How long a form on the page may be sent after the page was shown.
    page_form_ttl_s: int = 12 * 3600
    overview_link_ttl_s: int = 7 * 24 * 3600
    # The employee's figures: attribution's GET /v1/employees/{id}/ripples, with its key.
    # Empty URL: the page says the figures are unavailable.
    attribution_url: str = ""
    attribution_api_key: str = ""
    attribution_timeout_s: float = 3.0
    # The target of an employee's tracked link for a job: `{job_id}` is replaced by the job's
    # id (URL-encoded), e.g. https://careers.example.com/jobs/{job_id}. Its host must be on
    # INGEST_LINK_ALLOWED_HOSTS. Empty: the page offers no job links.
    job_url_template: str = ""
