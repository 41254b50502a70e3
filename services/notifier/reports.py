"""What a scheduled report says and carries: the PDF (e-mail) or a share link (Slack, Teams),
fetched from attribution (CONTRACT §9: ``GET /v1/report?format=pdf``, ``POST
/v1/report/links``) with ``NOTIFIER_ATTRIBUTION_URL`` and ``NOTIFIER_ATTRIBUTION_API_KEY``.

Attribution is the notifier's own peer at an address the operator sets (inside the cluster,
a private address), not an address from data: it is called with a client of its own, not
the guarded one of :mod:`~services.notifier.egress`, which refuses private addresses. Any
failure to get the report (unreachable, slow, 5xx, a refused key) is
:class:`ReportUnavailable`: the dispatcher waits and tries again, it never gives a report up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import orjson
from babel.dates import format_date, format_interval, format_time

from services.notifier import metrics, store
from services.notifier.channels import Attachment, Outgoing
from services.notifier.messages import Templates
from services.notifier.schedule import (
    LANE,
    REPORT,
    SOURCE,
    Period,
    Recipient,
    ReportSchedule,
    due_periods,
    next_boundary,
    report_id,
    stamp,
)
from services.notifier.settings import NotifierSettings
from shared import failures
from shared.events import Locale

log = logging.getLogger(__name__)

MAX_PDF_BYTES = 20 * 1024 * 1024
"""The largest PDF attached (mail relays take about 25 MB with the base64 overhead)."""
FETCH_REASONS = metrics.REPORT_FETCH_REASONS
LOOK_AGAIN_S = 60.0
"""The scheduler looks at the clock at least this often (a boundary wakes it on time)."""


class ReportUnavailable(Exception):
    """Attribution did not give the report now. ``code`` is one of :data:`FETCH_REASONS`;
    the text is the operator's detail (no address, no key)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _midnight(moment: datetime) -> bool:
    return moment == moment.replace(hour=0, minute=0, second=0, microsecond=0)


def period_text(period: Period, locale: Locale) -> str:
    """The period as a reader says it: ``1.–31. dec. 2026`` / ``Dec 1 – 31, 2026`` (days,
    the last one included), or the times in UTC for a period shorter than days."""
    start, end = period.start.astimezone(UTC), period.end.astimezone(UTC)
    if _midnight(start) and _midnight(end):
        last = (end - timedelta(days=1)).date()
        if last == start.date():
            return format_date(last, format="long", locale=locale)
        return format_interval(start.date(), last, "yMMMMd", locale=locale)
    if start.date() == end.date():
        first, last_moment = (
            format_time(t, format="medium", tzinfo=UTC, locale=locale) for t in (start, end)
        )
        return f"{format_date(start, format='long', locale=locale)} {first}–{last_moment} UTC"
    return format_interval(start, end, "yMMMdHms", tzinfo=UTC, locale=locale) + " UTC"


def filename(period: Period, locale: str) -> str:
    return f"ripples-report-{stamp(period.start)}-{stamp(period.end)}-{locale}.pdf"


class Attribution:
    """The calls to attribution's report routes."""

    def __init__(self, settings: NotifierSettings, client: httpx.AsyncClient | None = None):
        self.settings = settings
        self.client = client or httpx.AsyncClient(
            timeout=settings.report_fetch_timeout_s, follow_redirects=False, trust_env=False
        )
        self.base = settings.attribution_url.rstrip("/")
        # The first of a comma-separated list: the file of attribution's own keys will do.
        key = settings.attribution_api_key.split(",")[0].strip()
        self.headers = {"Authorization": f"Bearer {key}"}

    async def aclose(self) -> None:
        await self.client.aclose()

    def _query(self, period: Period, locale: str, model: str) -> dict[str, str]:
        return {
            "from": _rfc3339(period.start),
            "to": _rfc3339(period.end),
            "model": model,
            "locale": locale,
        }

    async def _call(self, what: str, request: httpx.Request) -> httpx.Response:
        try:
            response = await self.client.send(request)
        except httpx.TimeoutException:
            raise ReportUnavailable("timeout", f"{what}: timeout") from None
        except httpx.TransportError as exc:
            raise ReportUnavailable("connection_error", f"{what}: {type(exc).__name__}") from None
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise ReportUnavailable("server_error", f"{what}: http_{response.status_code}")
        return response

    async def pdf(self, period: Period, locale: str, model: str) -> bytes:
        request = self.client.build_request(
            "GET",
            self.base + "/v1/report",
            params=self._query(period, locale, model) | {"format": "pdf"},
            headers=self.headers,
        )
        response = await self._call("pdf", request)
        if response.status_code != 200:
            # 401/403: the key; 422: a period attribution refuses. An operator's to fix:
            # the report waits for it (nothing is lost).
            raise ReportUnavailable("rejected", f"pdf: http_{response.status_code}")
        if len(response.content) > MAX_PDF_BYTES:
            raise ReportUnavailable("too_large", "pdf: over 20 MiB")
        if not response.content.startswith(b"%PDF-"):
            raise ReportUnavailable("rejected", "pdf: the answer is not a PDF")
        return response.content

    async def link(self, period: Period, locale: str, model: str) -> tuple[str, datetime]:
        body: dict[str, object] = dict(self._query(period, locale, model))
        if self.settings.report_link_expires_s:
            body["expires_in_s"] = self.settings.report_link_expires_s
        request = self.client.build_request(
            "POST",
            self.base + "/v1/report/links",
            content=orjson.dumps(body),
            headers=self.headers | {"Content-Type": "application/json"},
        )
        response = await self._call("link", request)
        if response.status_code != 201:
            raise ReportUnavailable("rejected", f"link: http_{response.status_code}")
        try:
            answer = orjson.loads(response.content)
            url, expires = str(answer["url"]), datetime.fromisoformat(answer["expires_at"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise ReportUnavailable("rejected", "link: not the documented answer") from None
        if not url.startswith(("https://", "http://")):
            raise ReportUnavailable("rejected", "link: not an http(s) URL")
        return url, expires


async def message(
    attribution: Attribution,
    templates: Templates,
    schedule: ReportSchedule,
    key: str,
    period: Period,
    recipient: Recipient,
) -> Outgoing:
    """The report's message to one recipient, with what it carries fetched now."""
    locale: Locale = "da" if recipient.locale == "da" else "en"
    when = period_text(period, locale)
    attachments: tuple[Attachment, ...] = ()
    if recipient.channel == "email":
        pdf = await attribution.pdf(period, locale, schedule.model)
        attachments = (Attachment(filename(period, locale), "application", "pdf", pdf),)
        rendered = templates.render_report("report_email", locale, {"period": when})
    else:
        url, expires = await attribution.link(period, locale, schedule.model)
        expiry = format_date(expires.astimezone(UTC), format="long", locale=locale)
        rendered = templates.render_report(
            "report_link", locale, {"period": when, "url": url, "expires": expiry}
        )
    return Outgoing(
        key=key,
        kind=REPORT,
        employee_id=LANE,
        locale=locale,
        title=rendered.title,
        text=rendered.text,
        address=recipient.address,
        recognition_ids=(key,),
        attachments=attachments,
    )


class Scheduler:
    """Puts each closed period's reports on the ledger, at the boundary and at start (a
    period that closed while no notifier ran, up to ``catch_up`` of them), then wakes the
    dispatcher. Every replica does it; the ledger id makes it once."""

    def __init__(
        self,
        schedule: ReportSchedule,
        pool: asyncpg.Pool,
        wake: asyncio.Event,
        clock: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.schedule = schedule
        self.pool = pool
        self.wake = wake
        self.clock = clock
        self.sleep = sleep

    async def record(self) -> int:
        """The reports due by now that are not on the ledger yet; how many were new."""
        schedule = self.schedule
        now = self.clock()
        delay = timedelta(seconds=schedule.delay_s)
        due: list[tuple[str, datetime, datetime]] = []
        channels: dict[str, str] = {}
        async with self.pool.acquire() as conn, conn.transaction():
            for recipient in schedule.recipients:
                last = await store.last_report_end(conn, recipient.digest)
                for period in due_periods(schedule.cadence, now, last, schedule.catch_up):
                    key = report_id(period, recipient)
                    due.append((key, period.end, period.end + delay))
                    channels[key] = recipient.channel
            created = await store.record_reports(conn, due, SOURCE, now)
        latest = schedule.cadence.before(schedule.cadence.containing(now)).end
        metrics.REPORT_PERIOD_END.set(latest.timestamp())
        for key in created:
            metrics.REPORTS_SCHEDULED.labels(channels[key]).inc()
        if created:
            self.wake.set()
        return len(created)

    async def run(self) -> None:
        """Record, then sleep until the next boundary (at most :data:`LOOK_AGAIN_S`); a
        database away is waited for with backoff."""
        backoff = failures.Backoff(base=0.5, cap=30.0)
        while True:
            try:
                await self.record()
                backoff.reset()
                until = next_boundary(self.schedule.cadence, self.clock()) - self.clock()
                wait = min(LOOK_AGAIN_S, until.total_seconds()) + 0.05
            except Exception as exc:  # the schedule must outlive any one failure
                level = logging.WARNING if failures.is_transient(exc) else logging.ERROR
                log.log(level, "scheduling reports failed", extra={"error": failures.reason(exc)})
                wait = backoff.next_delay()
            await self.sleep(max(0.05, wait))
