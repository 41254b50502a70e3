"""The dispatcher: delivers what the ledger says is due, outside the consumer loop.

It claims due ``pending`` rows (with a lease, so a crashed replica's rows come back, and a
claim token), and for each employee in turn decides — suppressed, deferred by the daily cap,
folded into a digest — then sends one attempt per message under the channel's concurrency
and rate limits. Every step after the claim changes the row only under the claim's token: a
claim that ran out while the employee's earlier messages were sent, and was taken by another
replica, is no longer this one's, and its step does nothing (nothing is sent). The attempt is
recorded *before* sending, renewing the lease, and the attempt's deadline is shorter than
the lease, so no other replica can take a row while its message is on the way. A process
that dies between sending and recording leaves the row pending; the next claim sends it again
with the same idempotency key, notes the interruption, and counts it: after
``max_attempts`` attempts, interrupted ones included, the delivery fails. A recognition id is
thus sent successfully at most once by the notifier and at most repeated once to a peer per
crash, always with one key.

Scheduled reports (:mod:`~services.notifier.schedule`) are ledger rows of their own lane
(``employee_id`` ``""``) and go through the same claim, attempt and settle steps; their
message is fetched from attribution after the claim, and a report attribution cannot give now
waits (backoff) and is tried again, never given up.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

import asyncpg

from services.notifier import metrics, policy, reports, store
from services.notifier.channels import Channels, Outgoing
from services.notifier.messages import DIGEST, Message, Templates, locale_of
from services.notifier.schedule import LANE, REPORT, ReportSchedule, parse_report_id
from services.notifier.settings import NotifierSettings
from shared import failures, signing
from shared.cloudevents import to_kafka
from shared.events import (
    RECOGNITIONS,
    Envelope,
    LinkedInConnection,
    LinkedInConnectionEvent,
    Locale,
    RecognitionDue,
    RecognitionDueEvent,
)
from shared.streaming import dead_letter_headers

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
DeadLetter = Callable[[bytes, bytes, dict[str, bytes]], Awaitable[None]]

_MIN_WAIT_S = 0.05


class Dispatcher:
    def __init__(
        self,
        settings: NotifierSettings,
        pool: asyncpg.Pool,
        channels: Channels,
        templates: Templates,
        dead_letter: DeadLetter,
        clock: Clock,
        rand: Callable[[], float] = random.random,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        schedule: ReportSchedule | None = None,
        attribution: reports.Attribution | None = None,
    ) -> None:
        self.settings = settings
        self.schedule = schedule
        self.attribution = attribution
        self._report_backoff: dict[str, failures.Backoff] = {}
        self.pool = pool
        self.channels = channels
        self.templates = templates
        self.dead_letter = dead_letter
        self.clock = clock
        self.rand = rand
        self.monotonic = monotonic
        self.sleep = sleep
        self.wake = asyncio.Event()
        self._serving: set[str] = set()  # employees whose claimed rows are being handled
        self._in_flight = 0  # claimed rows being handled
        self._tasks: set[asyncio.Task[None]] = set()
        self._finished = False  # a task ended since the last look
        self._limits: dict[str, asyncio.Semaphore] = {}
        own = (settings.channel_rate_per_s, settings.channel_burst)
        self.destinations = policy.Destinations(
            {
                "slack": (settings.slack_rate_per_s, settings.slack_burst),
                "teams": (settings.teams_rate_per_s, settings.teams_burst),
                "webhook": own,
                "email": own,
            },
            monotonic,
        )

    def _limit(self, channel: str) -> asyncio.Semaphore:
        if channel not in self._limits:
            self._limits[channel] = asyncio.Semaphore(self.settings.channel_concurrency)
        return self._limits[channel]

    async def run(self) -> None:
        """Dispatch until cancelled. Whoever records new work sets ``wake`` after its commit,
        and the dispatcher looks at once; otherwise it sweeps every ``dispatch_interval_s``
        for what became due by time (retries, expired leases, digests, waiting rows).

        Each employee's claimed deliveries run as a task of their own, so a slow peer or a
        channel held back by its rate limit does not hold back anyone else's message: the
        dispatcher claims again while they run, up to ``dispatch_batch`` rows in flight, and
        skips employees whose task is still running (their rows stay in order)."""
        try:
            while True:
                # Cleared before looking, so that work recorded while looking is not missed:
                # its wake makes the next wait return at once.
                self.wake.clear()
                self._finished = False
                try:
                    claimed, _ = await self._start_due()
                except Exception as exc:  # keep dispatching; claimed rows come back later
                    if failures.is_transient(exc):
                        log.warning("dispatch failed; retrying", extra=_error(exc))
                    else:
                        log.error("dispatch error", extra=_error(exc))
                    claimed = 0
                full = self._in_flight >= self.settings.dispatch_batch
                if claimed and not full:
                    continue
                interval = self.settings.dispatch_interval_s
                wait = interval if full else await self._until_due(interval)
                cause = "recorded"
                try:
                    await asyncio.wait_for(self.wake.wait(), wait)
                    if self._finished:
                        cause = "finished"
                except TimeoutError:
                    cause = "interval" if wait >= interval else "due"
                metrics.WAKEUPS.labels(cause).inc()
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _until_due(self, interval: float) -> float:
        """Seconds until the earliest pending row becomes claimable (a retry, a recheck, a
        digest day, an expired lease), at most ``interval``; at least a little, so that a
        row another replica is claiming right now is not polled in a tight loop."""
        try:
            async with self.pool.acquire() as conn:
                due = await store.next_due(conn, sorted(self._serving))
        except Exception as exc:  # the sweep looks again after the interval
            if not failures.is_transient(exc):
                log.error("next due time not read", extra=_error(exc))
            return interval
        if due is None:
            return interval
        return min(interval, max(_MIN_WAIT_S, (due - self.clock()).total_seconds()))

    async def dispatch_once(self) -> int:
        """Claim what is due and settle or attempt it, waiting for all of it; returns how
        many rows were claimed."""
        claimed, tasks = await self._start_due()
        await asyncio.gather(*tasks)
        if claimed:
            async with self.pool.acquire() as conn:
                metrics.QUEUE_DEPTH.set(await store.queue_depth(conn))
        return claimed

    async def _start_due(self) -> tuple[int, list[asyncio.Task[None]]]:
        """Claim due rows (as many as there is room for, none of an employee still being
        served) and start one task per employee; returns the rows claimed and the tasks."""
        room = self.settings.dispatch_batch - self._in_flight
        if room <= 0:
            return 0, []
        now = self.clock()
        async with self.pool.acquire() as conn:
            claimed = await store.claim_due(
                conn, now, room, self.settings.claim_lease_s, sorted(self._serving)
            )
            metrics.QUEUE_DEPTH.set(await store.queue_depth(conn))
            if not claimed:
                return 0, []
            people = await store.employees(conn, sorted({d.employee_id for d in claimed}))
            claimed = await store.colleague_names(conn, claimed)  # erasure: names rendered now
        groups: dict[str, list[store.Delivery]] = defaultdict(list)
        for delivery in sorted(claimed, key=lambda d: (d.due_at, d.recognition_id)):
            groups[delivery.employee_id].append(delivery)
        tasks = []
        for employee_id, rows in groups.items():
            if employee_id == LANE:
                task = asyncio.create_task(self._reports(rows))
            else:
                task = asyncio.create_task(self._employee(people.get(employee_id), rows))
            self._serving.add(employee_id)
            self._in_flight += len(rows)
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._done, employee_id, len(rows)))
            tasks.append(task)
        return len(claimed), tasks

    def _done(self, employee_id: str, rows: int, task: asyncio.Task[None]) -> None:
        """An employee's task ended: room for more, and their other due rows may go now."""
        self._serving.discard(employee_id)
        self._in_flight -= rows
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # The claim expires and the rows are tried again; nothing is lost.
            log.error("delivery task failed", extra=_error(exc))
        self._finished = True
        self.wake.set()

    async def _employee(
        self, employee: store.Employee | None, rows: Sequence[store.Delivery]
    ) -> None:
        """One employee's claimed deliveries, in order (the daily cap counts as it goes)."""
        done: set[str] = set()
        for row in rows:
            if row.recognition_id in done:
                continue
            try:
                done |= await self._one(employee, row)
            except Exception as exc:
                if failures.is_transient(exc):
                    # The claim expires and the row is tried again; nothing is lost.
                    log.warning("delivery step failed; retried", extra=_error(exc))
                    continue
                # Data the ledger refuses (or a fault of ours about this row): trying again
                # would fail the same way at every claim, so it fails now, closed reason
                # 'rejected', and goes to the dead-letter topic like a refused delivery.
                log.error("delivery step refused; the delivery fails", extra=_error(exc))
                detail = f"{failures.classify(exc).value}: {failures.reason(exc)}"
                try:
                    done |= await self._give_up(
                        [row], row.channel, "rejected", detail, refused=True
                    )
                except Exception as again:  # the claim expires; tried again later
                    log.error("refused delivery not recorded", extra=_error(again))

    async def _one(self, employee: store.Employee | None, row: store.Delivery) -> set[str]:
        now = self.clock()
        settings = self.settings
        ids = [row.recognition_id]
        token = row.claim_token
        lease = settings.claim_lease_s
        if row.interrupted and row.attempts >= settings.max_attempts:
            # The last allowed attempt was interrupted (a crash mid-send): it counts.
            return await self._give_up([row], row.channel, "max_attempts", "interrupted")
        async with self.pool.acquire() as conn:
            if _stale(row, now, settings.max_age_s):
                # Old news (a back-fill): settled at once, neither waiting for the employee
                # record nor paced by any channel.
                return await self._suppress(conn, [row], "achievement older than max age", "stale")
            if employee is None:
                deadline = row.received_at + timedelta(seconds=settings.employee_wait_s)
                if now < deadline:
                    # The employee record wakes the row at once; the recheck covers a record
                    # that arrived while this decision was being made.
                    recheck = now + timedelta(seconds=settings.employee_recheck_s)
                    await store.wait_for_employee(conn, ids, token, min(deadline, recheck), now)
                    return set(ids)
                return await self._suppress(conn, [row], "no employee record", "no_notify")
            suppressed = _suppression(employee, row.service)
            if suppressed is not None:
                return await self._suppress(conn, [row], *suppressed)
            assert employee.channel is not None
            if row.service:  # neither held by the daily cap nor folded into a digest
                return await self._attempt(employee, [row], self._message(employee, row))
            today = policy.day_of(now)
            if row.digest_id is not None:
                members = await store.digest_members(conn, row.digest_id, token, now, lease)
                if not members:
                    return set(ids)  # another claim holds the digest and sends it
            elif row.digest_day is not None:
                if row.digest_day > today:
                    await store.postpone(conn, ids, token, policy.start_of(row.digest_day))
                    return set(ids)
                digest = policy.digest_id(row.employee_id, row.digest_day)
                members = await store.form_digest(
                    conn, row.employee_id, today, digest, token, now, lease
                )
                if not members:
                    return set(ids)
            else:
                members = []
                if row.first_attempt_at is None and policy.over_cap(
                    await store.messages_on(conn, row.employee_id, policy.start_of(today)),
                    settings.daily_cap,
                ):
                    tomorrow = policy.digest_day(now)
                    await store.postpone(
                        conn, ids, token, policy.start_of(tomorrow), "over the daily cap", tomorrow
                    )
                    return set(ids)
        if members:
            return await self._attempt(employee, members, self._digest(employee, members))
        return await self._attempt(employee, [row], self._message(employee, row))

    async def _reports(self, rows: Sequence[store.Delivery]) -> None:
        """The claimed scheduled reports, one after the other."""
        for row in rows:
            try:
                await self._report(row)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # The claim expires and the report is tried again; nothing is lost.
                log.warning("report step failed", extra={"error": type(exc).__name__})

    async def _report(self, row: store.Delivery) -> None:
        """One report to one recipient: fetched from attribution, then attempted as every
        message is (under the claim's token). Attribution unable to give it now: the row waits
        with backoff (``failures.Backoff``) and no attempt is counted."""
        ids = [row.recognition_id]
        period, digest = parse_report_id(row.recognition_id)
        recipient = self.schedule.recipient(digest) if self.schedule else None
        if recipient is None or self.schedule is None or self.attribution is None:
            async with self.pool.acquire() as conn:
                detail = "recipient no longer configured"
                if await store.settle(
                    conn, ids, row.claim_token, "suppressed", "none", self.clock(), detail,
                    "no_notify",
                ):  # fmt: skip
                    metrics.REPORTS.labels("none", "suppressed").inc()
            return
        if row.interrupted and row.attempts >= self.settings.max_attempts:
            await self._give_up([row], recipient.channel, "max_attempts", "interrupted")
            return
        try:
            message = await reports.message(
                self.attribution, self.templates, self.schedule, row.recognition_id, period,
                recipient,
            )  # fmt: skip
        except reports.ReportUnavailable as exc:
            metrics.REPORT_FETCH_FAILURES.labels(exc.code).inc()
            backoff = self._report_backoff.setdefault(
                row.recognition_id,
                failures.Backoff(self.settings.backoff_base_s, self.settings.backoff_max_s),
            )
            delay = backoff.next_delay()
            async with self.pool.acquire() as conn:
                until = self.clock() + timedelta(seconds=delay)
                await store.postpone(
                    conn, ids, row.claim_token, until, f"report unavailable: {exc}",
                    reason=exc.code,
                )  # fmt: skip
            log.warning(
                "report unavailable; trying again",
                extra={"reason": exc.code, "retry_in_s": round(delay, 3)},
            )
            return
        self._report_backoff.pop(row.recognition_id, None)
        recipient_as = store.Employee(
            LANE, None, recipient.locale, recipient.channel, recipient.address, False, False
        )
        await self._attempt(recipient_as, [row], message)

    def _message(self, employee: store.Employee, row: store.Delivery) -> Outgoing:
        assert employee.display_name is not None
        assert employee.address is not None
        locale = locale_of(employee.locale)
        if row.link is not None:
            rendered = self.templates.render_connection(
                row.kind,
                locale,
                employee.display_name,
                row.link.url,
                row.link.expires_at,
                row.link.reason,
            )
        else:
            rendered = self.templates.render(row.kind, locale, employee.display_name, row.facts)
        rendered = self._with_page(employee, locale, rendered)
        return Outgoing(
            key=row.recognition_id,
            kind=row.kind,
            employee_id=row.employee_id,
            locale=locale,
            title=rendered.title,
            text=rendered.text,
            address=employee.address,
            recognition_ids=(row.recognition_id,),
        )

    def _digest(self, employee: store.Employee, members: Sequence[store.Delivery]) -> Outgoing:
        """One message covering every recognition folded into a digest."""
        assert employee.display_name is not None
        assert employee.address is not None
        locale = locale_of(employee.locale)
        titles = [self._message(employee, m).title for m in members]
        rendered = self._with_page(
            employee, locale, self.templates.render_digest(locale, employee.display_name, titles)
        )
        assert members[0].digest_id is not None
        return Outgoing(
            key=members[0].digest_id,
            kind=DIGEST,
            employee_id=employee.employee_id,
            locale=locale,
            title=rendered.title,
            text=rendered.text,
            address=employee.address,
            recognition_ids=tuple(m.recognition_id for m in members),
        )

    def _with_page(self, employee: store.Employee, locale: Locale, message: Message) -> Message:
        """The message with the link to the employee's own page under it, when page links are
        configured (``NOTIFIER_PAGE_BASE_URL``, ``NOTIFIER_PAGE_LINK_SECRETS``); else as is."""
        base, secrets = self.settings.page_base_url, self.settings.page_link_secrets
        if not base or not secrets or not secrets[0]:
            return message
        expires = self.clock() + timedelta(seconds=self.settings.page_link_ttl_s)
        token = signing.page_token(employee.employee_id, expires, secrets[0])
        url = f"{base.rstrip('/')}/me/{token}"
        assert employee.display_name is not None
        return self.templates.with_page(message, locale, employee.display_name, url)

    async def _suppress(
        self, conn: store.Conn, rows: Sequence[store.Delivery], detail: str, reason: str
    ) -> set[str]:
        ids = [r.recognition_id for r in rows]
        token = rows[0].claim_token
        if await store.settle(conn, ids, token, "suppressed", "none", self.clock(), detail, reason):
            metrics.DELIVERIES.labels("none", "suppressed").inc(len(ids))
            metrics.SUPPRESSED.labels(reason).inc(len(ids))
        return set(ids)

    async def _attempt(
        self, employee: store.Employee, rows: Sequence[store.Delivery], message: Outgoing
    ) -> set[str]:
        channel = employee.channel
        assert channel is not None
        ids = [r.recognition_id for r in rows]
        token = rows[0].claim_token
        attempt = max(r.attempts for r in rows) + 1
        limiter = self.destinations.limiter(channel, message.address)
        wait = limiter.reserve()
        if wait > self.settings.claim_lease_s / 2:
            # Paced (or paused by the peer) for longer than a claim should sit idle: the row
            # comes back when its turn is due; no attempt was made.
            limiter.unreserve()
            async with self.pool.acquire() as conn:
                until = self.clock() + timedelta(seconds=wait)
                await store.postpone(conn, ids, token, until)
            return set(ids)
        # The wait for this destination's rate comes before the channel's concurrency, so a
        # destination held back does not hold back the channel's other destinations.
        if wait > 0:
            await self.sleep(wait)
        async with self._limit(channel):
            # Recorded (and the claim renewed) only now, after any wait for the channel, so
            # the lease covers the attempt, whose deadline is shorter than the lease.
            async with self.pool.acquire() as conn:
                begun = await store.begin_attempt(
                    conn, ids, token, channel, self.clock(), self.settings.claim_lease_s
                )
            if not begun:
                metrics.CLAIMS_LOST.inc()
                log.info("claim lost before sending; another replica has the delivery")
                return set(ids)
            metrics.ATTEMPTS.labels(channel).inc()
            outcome = await self.channels.send(channel, message)
        if outcome.code == "rate_limited":
            # This destination asked for a pause; the others go on.
            pause = min(
                outcome.retry_after_s or self.settings.backoff_base_s, self.settings.backoff_max_s
            )
            limiter.pause(pause)
            metrics.DESTINATION_PAUSES.labels(channel).inc()
            log.info(
                "destination paused",
                extra={
                    "channel": channel,
                    "destination": policy.destination_key(channel, message.address),
                    "pause_s": pause,
                },
            )
        now = self.clock()
        async with self.pool.acquire() as conn:
            if outcome.verdict == "sent":
                if await store.settle(conn, ids, token, "sent", channel, now):
                    metrics.DELIVERIES.labels(channel, "sent").inc(len(ids))
                    if rows[0].kind == REPORT:  # due at its period's end: no latency of ours
                        metrics.REPORTS.labels(channel, "sent").inc()
                    else:
                        for row in rows:
                            metrics.LATENCY.labels(channel).observe(
                                max(0.0, (now - row.due_at).total_seconds())
                            )
                else:
                    metrics.CLAIMS_LOST.inc()
                    log.warning("claim lost while sending; the result was not recorded")
                return set(ids)
            if outcome.verdict == "retry" and attempt < self.settings.max_attempts:
                delay = policy.backoff_s(
                    attempt,
                    self.settings.backoff_base_s,
                    self.settings.backoff_max_s,
                    outcome.retry_after_s,
                    self.rand,
                )
                await store.postpone(
                    conn, ids, token, now + timedelta(seconds=delay), outcome.reason,
                    reason=outcome.code,
                )  # fmt: skip
                return set(ids)
        if outcome.verdict == "permanent":
            return await self._give_up(
                rows, channel, outcome.code or "rejected", outcome.reason, refused=True
            )
        return await self._give_up(rows, channel, "max_attempts", outcome.reason, attempt)

    async def _give_up(
        self,
        rows: Sequence[store.Delivery],
        channel: str | None,
        reason: str,
        detail: str,
        attempts: int | None = None,
        refused: bool = False,
    ) -> set[str]:
        """``failed`` with its closed reason, and the recognition to the dead-letter topic."""
        ids = [r.recognition_id for r in rows]
        attempts = attempts or max(r.attempts for r in rows)
        text = f"refused: {detail}" if refused else f"gave up after {attempts} attempts: {detail}"
        async with self.pool.acquire() as conn:
            settled = await store.settle(
                conn, ids, rows[0].claim_token, "failed", channel, self.clock(), text, reason
            )
        if not settled:
            return set(ids)
        label = channel or "none"
        metrics.DELIVERIES.labels(label, "failed").inc(len(ids))
        if rows[0].kind == REPORT:  # not a recognition: nothing to put on its topic again
            metrics.REPORTS.labels(label, "failed").inc()
            log.error("report delivery failed", extra={"channel": label, "reason": reason})
            return set(ids)
        for row in rows:
            await self._dead_letter(row, text)
        log.warning("delivery failed", extra={"channel": label, "reason": reason})
        return set(ids)

    async def _dead_letter(self, row: store.Delivery, reason: str) -> None:
        event: Envelope
        if row.link is not None:
            event = LinkedInConnectionEvent(
                specversion="1.0",
                id=row.event_id,
                source=row.event_source,
                time=row.event_time,
                data=LinkedInConnection(
                    employee_id=row.employee_id,
                    kind=row.kind,  # type: ignore[arg-type]  # stored from a validated event
                    url=row.link.url,
                    expires_at=row.link.expires_at,
                    reason=row.link.reason,
                ),
            )
        else:
            event = RecognitionDueEvent(
                specversion="1.0",
                id=row.event_id,
                source=row.event_source,
                time=row.event_time,
                data=RecognitionDue(
                    recognition_id=row.recognition_id,
                    kind=row.kind,  # type: ignore[arg-type]  # stored from a validated event
                    employee_id=row.employee_id,
                    due_at=row.due_at,
                    facts=store.without_names(row.facts),  # erasure: no name on a topic
                ),
            )
        key, value, headers = to_kafka(event)
        await self.dead_letter(
            key,
            value,
            dead_letter_headers(
                "notifier",
                reason,
                RECOGNITIONS.name,
                row.source_partition,
                row.source_offset,
                dict(headers),
            ),
        )
        metrics.DEAD_LETTERS.labels("delivery_failed").inc()


def _error(exc: BaseException) -> dict[str, str]:
    """A failure for a log line: its class (and SQLSTATE) and its kind, never its message,
    which may quote the values (personal data)."""
    return {"error": failures.reason(exc), "failure": failures.classify(exc).value}


def _stale(row: store.Delivery, now: datetime, max_age_s: float) -> bool:
    """Whether a recognition is old news when it becomes due (CONTRACT §6 v1.1): its
    achievement (``facts.achieved_at``, else ``due_at``) older than the maximum age. Only a
    row that was never attempted nor folded into a digest: an attempt may have reached the
    peer, and a recognition once on its way is finished, never taken back."""
    if row.first_attempt_at is not None or row.digest_id is not None or row.attempts:
        return False
    if row.link is not None:  # a connection message is old news once its link has expired
        return row.link.expires_at <= now
    return policy.is_stale(row.facts.achieved_at or row.due_at, now, max_age_s)


def _suppression(employee: store.Employee, service: bool = False) -> tuple[str, str] | None:
    """Why an employee gets no message: (detail, closed reason), or None. The opt-out is of
    recognitions: a ``service`` message (about the employee's own LinkedIn connection) still
    goes to an employee who opted out."""
    if employee.removed or employee.display_name is None:
        return "employee removed", "no_notify"
    if employee.opt_out and not service:
        return "opted out", "opted_out"
    if employee.channel == "none":
        return "no notify channel", "channel_none"
    if employee.channel is None or not employee.address:
        return "no notify channel", "no_notify"
    return None
