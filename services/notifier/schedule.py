"""The period report's schedule (issue 17, "Scheduled delivery"): which periods there are,
who receives the report, and the ledger ids of the reports due. Pure functions; the ledger
rows are written by :func:`services.notifier.store.record_reports`.

A period is ``[start, end)`` in UTC, like the report's ``from``/``to``:

- ``monthly`` (default): calendar months;
- ``weekly``: ISO weeks, Monday 00:00 UTC to the next Monday;
- an ISO 8601 duration of weeks, days, hours, minutes and seconds (``P1D``, ``PT6H``,
  ``PT30S``): consecutive periods of that length aligned to the Unix epoch (1970-01-01T00:00Z),
  so every replica, before and after a restart, computes the same boundaries. Durations with
  years or months are refused (their length varies: use ``monthly``).

When a period has closed, each recipient gets one ledger row ``report:{start}:{end}:{digest}``
(the bounds as ``YYYY-MM-DD`` when they fall on midnight UTC, else ``YYYYMMDDTHHMMSSZ``, the ISO
8601 basic format, so the id stays colon-separated; the digest names the recipient without
their address). The primary key makes the row once whichever replica, or restart, writes it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from services.notifier import egress
from services.notifier.settings import NotifierSettings
from shared.events import MODELS

REPORT = "report"
"""The ledger kind of a scheduled report."""
LANE = ""
"""``employee_id`` of report rows: no employee has an empty id (``shared.events.Id``), so
the employees' rules (daily cap, preferences, erasure) never touch a report."""
SOURCE = "urn:ripples:notifier:schedule"
CHANNELS = ("email", "slack", "teams")
LOCALES = ("da", "en")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_DURATION = re.compile(
    r"P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?"
)


class ScheduleError(ValueError):
    """A schedule setting that cannot be used; the text names the variable, never an
    address (a Slack or Teams webhook URL is a credential)."""


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Cadence:
    """``monthly``, ``weekly`` or ``every`` ``seconds`` aligned to the epoch."""

    kind: str
    seconds: int = 0

    def containing(self, moment: datetime) -> Period:
        """The period ``moment`` falls in."""
        moment = moment.astimezone(UTC)
        if self.kind == "monthly":
            start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            return Period(start, _next_month(start))
        if self.kind == "weekly":
            day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
            start = day - timedelta(days=day.weekday())
            return Period(start, start + timedelta(weeks=1))
        elapsed = int((moment - EPOCH).total_seconds() // self.seconds)
        start = EPOCH + timedelta(seconds=elapsed * self.seconds)
        return Period(start, start + timedelta(seconds=self.seconds))

    def before(self, period: Period) -> Period:
        """The period that ends where ``period`` starts."""
        return self.containing(period.start - timedelta(microseconds=1))


def _next_month(start: datetime) -> datetime:
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def parse_cadence(text: str) -> Cadence:
    """``monthly``, ``weekly`` or an ISO 8601 duration without years or months."""
    value = text.strip()
    if value.lower() in ("monthly", "weekly"):
        return Cadence(value.lower())
    match = _DURATION.fullmatch(value.upper())
    if match is None or value.upper() in ("P", "PT") or value.upper().endswith("T"):
        raise ScheduleError(
            "NOTIFIER_REPORT_PERIOD must be monthly, weekly or an ISO 8601 duration such as "
            "P1D or PT30S (weeks, days, hours, minutes, seconds)"
        )
    units = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
    seconds = sum(int(match[name] or 0) * size for name, size in units.items())
    if seconds < 1:
        raise ScheduleError("NOTIFIER_REPORT_PERIOD must be at least one second long")
    return Cadence("every", seconds)


@dataclass(frozen=True)
class Recipient:
    channel: str
    address: str
    locale: str

    @property
    def digest(self) -> str:
        """Who the report goes to, without saying it: 16 hex digits of SHA-256 over the
        channel and address (the locale is a preference: changing it is the same person)."""
        return hashlib.sha256(f"{self.channel}\n{self.address}".encode()).hexdigest()[:16]


def parse_recipients(text: str) -> tuple[Recipient, ...]:
    """``channel:address:locale`` items separated by commas, or a JSON list of
    ``{"channel","address","locale"}`` objects (the form a ``_FILE`` may hold). The address
    is everything between the first and the last colon (a URL keeps its own)."""
    text = text.strip()
    if not text:
        return ()
    items: list[tuple[Any, Any, Any]] = []
    if text.startswith("["):
        try:
            raw = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise ScheduleError("NOTIFIER_REPORT_RECIPIENTS is not valid JSON") from None
        if not isinstance(raw, list):
            raise ScheduleError("NOTIFIER_REPORT_RECIPIENTS must be a JSON list")
        for index, entry in enumerate(raw, 1):
            if not isinstance(entry, dict):
                raise ScheduleError(f"NOTIFIER_REPORT_RECIPIENTS item {index} is not an object")
            items.append((entry.get("channel"), entry.get("address"), entry.get("locale", "en")))
    else:
        for index, part in enumerate((p.strip() for p in text.split(",")), 1):
            channel, _, rest = part.partition(":")
            address, colon, locale = rest.rpartition(":")
            if not colon:
                raise ScheduleError(
                    f"NOTIFIER_REPORT_RECIPIENTS item {index} is not channel:address:locale"
                )
            items.append((channel, address, locale))
    recipients: list[Recipient] = []
    for index, (channel, address, locale) in enumerate(items, 1):
        where = f"NOTIFIER_REPORT_RECIPIENTS item {index}"
        if channel not in CHANNELS:
            raise ScheduleError(f"{where}: the channel must be one of {', '.join(CHANNELS)}")
        if locale not in LOCALES:
            raise ScheduleError(f"{where}: the locale must be da or en")
        if not isinstance(address, str) or not address.strip():
            raise ScheduleError(f"{where}: the address is missing")
        recipients.append(Recipient(channel, address.strip(), locale))
    digests = [r.digest for r in recipients]
    if len(set(digests)) != len(digests):
        raise ScheduleError("NOTIFIER_REPORT_RECIPIENTS names a recipient twice")
    return tuple(recipients)


@dataclass(frozen=True)
class ReportSchedule:
    """The schedule's settings, checked."""

    cadence: Cadence
    recipients: tuple[Recipient, ...]
    model: str
    delay_s: float
    catch_up: int

    def recipient(self, digest: str) -> Recipient | None:
        return next((r for r in self.recipients if r.digest == digest), None)


def configured(settings: NotifierSettings) -> ReportSchedule | None:
    """The schedule, or None when no recipient is set (the schedule is off). Raises
    :class:`ScheduleError` naming the setting that is wrong."""
    recipients = parse_recipients(settings.report_recipients)
    if not recipients:
        return None
    cadence = parse_cadence(settings.report_period)
    if settings.report_model not in MODELS:
        raise ScheduleError(f"NOTIFIER_REPORT_MODEL must be one of {', '.join(MODELS)}")
    if not settings.attribution_url:
        raise ScheduleError("NOTIFIER_ATTRIBUTION_URL is not set (where the report comes from)")
    if not settings.attribution_api_key:
        raise ScheduleError("NOTIFIER_ATTRIBUTION_API_KEY is not set")
    if not 0 < settings.report_fetch_timeout_s < settings.claim_lease_s:
        raise ScheduleError(
            "NOTIFIER_REPORT_FETCH_TIMEOUT_S must be above 0 and shorter than "
            "NOTIFIER_CLAIM_LEASE_S (the claim must outlast fetching the report)"
        )
    if settings.report_delay_s < 0 or settings.report_catch_up < 1:
        raise ScheduleError(
            "NOTIFIER_REPORT_DELAY_S must be 0 or more and NOTIFIER_REPORT_CATCH_UP 1 or more"
        )
    for index, recipient in enumerate(recipients, 1):
        where = f"NOTIFIER_REPORT_RECIPIENTS item {index}"
        if recipient.channel == "email":
            if "@" not in recipient.address or any(c in recipient.address for c in " <>,\r\n"):
                raise ScheduleError(f"{where}: not an e-mail address")
            if not settings.smtp_host:
                raise ScheduleError(f"{where}: e-mail needs NOTIFIER_SMTP_HOST")
            continue
        hosts = (
            settings.slack_allowed_hosts
            if recipient.channel == "slack"
            else settings.teams_allowed_hosts
        )
        try:  # the same rules as every other send (the address itself is checked at send)
            egress.check_url(recipient.address, settings.allow_http, hosts)
        except egress.AddressNotAllowed as exc:
            raise ScheduleError(f"{where}: address not allowed ({exc})") from None
    return ReportSchedule(
        cadence,
        recipients,
        settings.report_model,
        settings.report_delay_s,
        settings.report_catch_up,
    )


def stamp(moment: datetime) -> str:
    """A period bound in a ledger id: ``YYYY-MM-DD`` on midnight UTC, else the basic
    ``YYYYMMDDTHHMMSSZ`` (no colon)."""
    moment = moment.astimezone(UTC)
    if moment == moment.replace(hour=0, minute=0, second=0, microsecond=0):
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _unstamp(text: str) -> datetime:
    fmt = "%Y-%m-%d" if len(text) == 10 else "%Y%m%dT%H%M%SZ"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


def report_id(period: Period, recipient: Recipient) -> str:
    return f"{REPORT}:{stamp(period.start)}:{stamp(period.end)}:{recipient.digest}"


def parse_report_id(recognition_id: str) -> tuple[Period, str]:
    """The period and recipient digest of a report's ledger id (ValueError if it is none)."""
    kind, start, end, digest = recognition_id.split(":")
    if kind != REPORT:
        raise ValueError(recognition_id)
    return Period(_unstamp(start), _unstamp(end)), digest


def due_periods(
    cadence: Cadence, now: datetime, last_end: datetime | None, catch_up: int
) -> list[Period]:
    """The closed periods a recipient's report is due for, oldest first: every period that
    ended after ``last_end`` (the end of the latest report on the ledger for them), at most
    the last ``catch_up``; only the latest closed period for a recipient with none yet."""
    periods: list[Period] = []
    period = cadence.before(cadence.containing(now))
    limit = catch_up if last_end is not None else 1
    while len(periods) < limit and (last_end is None or period.end > last_end):
        periods.append(period)
        period = cadence.before(period)
    return periods[::-1]


def next_boundary(cadence: Cadence, now: datetime) -> datetime:
    """When the current period closes."""
    return cadence.containing(now).end
