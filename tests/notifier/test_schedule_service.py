"""Issue 17's "Done when": the scheduled report goes out once per period and recipient when the
notifier (``python -m services.notifier``, real broker and PostgreSQL) is killed just before a
period boundary and started again after it — as two replicas on the one database.

The period is ``PT10S`` (NOTIFIER_REPORT_PERIOD takes an ISO 8601 duration aligned to the
epoch), the report comes from attribution's real report routes (tests/notifier/reporting.py),
e-mail goes to a local STARTTLS SMTP server and Slack to a local incoming-webhook peer
(https://api.slack.com/messaging/webhooks: a JSON POST with ``text``/``blocks``, answered 200).
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.notifier import schedule
from tests.conftest import API_KEYS, Running, fresh_database, start_service
from tests.notifier.conftest import SECRET
from tests.notifier.peers import HttpPeer, SmtpPeer, slack_webhook_rules, smtp_peer
from tests.notifier.reporting import (
    Attribution,
    pdf_attachment,
    pdf_text,
    served_attribution,
    subject,
)

pytestmark = pytest.mark.integration

PERIOD_S = 10
CADENCE = schedule.parse_cadence(f"PT{PERIOD_S}S")
KEY_HEADER = "X-Ripples-Recognition-Id"
MONTHS_DA = ("januar", "februar", "marts", "april", "maj", "juni", "juli", "august",
             "september", "oktober", "november", "december")  # fmt: skip


def env(smtp: SmtpPeer, slack: HttpPeer, attribution: Attribution, database: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database,
        "NOTIFIER_WEBHOOK_SECRET": SECRET,
        "NOTIFIER_DISPATCH_INTERVAL_S": "0.2",
        "NOTIFIER_CLAIM_LEASE_S": "40",
        "NOTIFIER_ATTEMPT_DEADLINE_S": "20",
        "NOTIFIER_BACKOFF_BASE_S": "0.2",
        "NOTIFIER_BACKOFF_MAX_S": "1",
        "NOTIFIER_SLACK_ALLOWED_HOSTS": "127.0.0.1",
        "NOTIFIER_SMTP_HOST": "127.0.0.1",
        "NOTIFIER_SMTP_PORT": str(smtp.port),
        "NOTIFIER_SMTP_USERNAME": "ripples",
        "NOTIFIER_SMTP_PASSWORD": "smtp-password",
        "NOTIFIER_SMTP_CA_FILE": str(smtp.ca_file),
        "NOTIFIER_SMTP_FROM": "ripples@example.com",
        "NOTIFIER_REPORT_PERIOD": f"PT{PERIOD_S}S",
        "NOTIFIER_REPORT_DELAY_S": "0",
        "NOTIFIER_REPORT_RECIPIENTS": (
            f"email:director@example.com:da,slack:{slack.url}/hooks/T1/B1/report:en"
        ),
        "NOTIFIER_REPORT_FETCH_TIMEOUT_S": "30",
        "NOTIFIER_ATTRIBUTION_URL": attribution.url,
        "NOTIFIER_ATTRIBUTION_API_KEY": API_KEYS[0],
        "KAFKA_SESSION_TIMEOUT_S": "6",
        "KAFKA_REBALANCE_TIMEOUT_S": "6",
    }


@pytest.fixture
async def notifier_db(postgres: Running) -> AsyncIterator[str]:
    async with fresh_database(postgres, "notifier") as url:
        yield url


@pytest.fixture
async def attribution(postgres: Running) -> AsyncIterator[Attribution]:
    async with fresh_database(postgres, "attribution") as url, served_attribution(url) as app:
        yield app


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpPeer]:
    with smtp_peer(tmp_path, "ripples", "smtp-password") as peer:
        yield peer


def received(smtp: SmtpPeer, slack: HttpPeer) -> list[str]:
    """The ledger id of every report that reached a receiver, in arrival order per receiver."""
    return [str(m[KEY_HEADER]) for m in smtp.mailbox.messages] + [
        r.headers[KEY_HEADER.lower()] for r in slack.requests
    ]


async def until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def sleep_until(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


def periods_of(ids: list[str]) -> collections.Counter[tuple[str, str]]:
    """How many reports each (period start, end) got, per recipient digest: {(period, digest)}."""
    return collections.Counter(
        (i.split(":")[1] + "/" + i.split(":")[2], i.split(":")[3]) for i in ids
    )


def key(period: schedule.Period) -> str:
    return f"{schedule.stamp(period.start)}/{schedule.stamp(period.end)}"


async def sent_once(database: str, until: datetime) -> bool:
    """Every report row of a period ending by ``until`` is sent, after one attempt."""
    conn = await asyncpg.connect(database)
    try:
        rows = await conn.fetch(
            "select status, attempts from notifier_deliveries where kind = 'report'"
            " and due_at <= $1",
            until,
        )
    finally:
        await conn.close()
    return bool(rows) and {(r["status"], r["attempts"]) for r in rows} == {("sent", 1)}


async def settled(database: str) -> bool:
    conn = await asyncpg.connect(database)
    try:
        pending: int = await conn.fetchval(
            "select count(*) from notifier_deliveries where kind = 'report' and status <> 'sent'"
        )
    finally:
        await conn.close()
    return pending == 0


async def test_killed_before_the_boundary_two_replicas_after_it_one_report_per_period(
    broker: Running,
    notifier_db: str,
    attribution: Attribution,
    smtp: SmtpPeer,
    peer: HttpPeer,
    tmp_path: Path,
) -> None:
    peer.rules = slack_webhook_rules
    settings = env(smtp, peer, attribution, notifier_db)
    first = await asyncio.to_thread(start_service, "notifier", tmp_path / "a", broker, **settings)
    second: Running | None = None
    try:
        # Whatever is on the ledger at start (the latest closed period's reports) is sent
        # before the kill, so that the kill interrupts no sending.
        await asyncio.sleep(1)
        deadline = time.monotonic() + 30
        while not await settled(notifier_db):
            assert time.monotonic() < deadline, "the reports at start were not sent"
            await asyncio.sleep(0.1)
        # Killed (SIGKILL: no clean shutdown) just before the next boundary...
        boundary = CADENCE.containing(datetime.now(UTC) + timedelta(seconds=1.5)).end
        await sleep_until(boundary - timedelta(seconds=1))
        assert datetime.now(UTC) < boundary
        pid = first.state.read_pid(first.component.name)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await asyncio.to_thread(first.stop)
        missed = CADENCE.containing(boundary - timedelta(seconds=1))  # closes while none runs
        await sleep_until(boundary + timedelta(seconds=1))
        # ... and started again after it, beside a second replica on the same database.
        started = await asyncio.gather(
            asyncio.to_thread(first.start),
            asyncio.to_thread(start_service, "notifier", tmp_path / "b", broker, **settings),
        )
        second = started[1]
        # Every period that has closed by now gets its report, once per recipient: the one
        # that closed while no notifier ran, and the next one, closing while the replicas
        # start or run.
        await sleep_until(boundary + timedelta(seconds=PERIOD_S + 0.5))
        last = CADENCE.containing(datetime.now(UTC)).start
        digests = {
            r.digest for r in schedule.parse_recipients(settings["NOTIFIER_REPORT_RECIPIENTS"])
        }

        def complete() -> bool:
            got = periods_of(received(smtp, peer))
            return all(
                (f"{schedule.stamp(p.start)}/{schedule.stamp(p.end)}", d) in got
                for p in (missed, CADENCE.before(CADENCE.containing(last)))
                for d in digests
            )

        await until(complete, 30, "the reports of the missed and the latest period")
        await asyncio.sleep(1.5)  # a second copy, were one on its way, would arrive by now
    finally:
        await asyncio.to_thread(first.stop)
        if second is not None:
            await asyncio.to_thread(second.stop)
    ids = received(smtp, peer)
    counts = periods_of(ids)
    assert max(counts.values()) == 1, counts  # never twice
    # No period skipped, for anyone, from the first report to the last period that had
    # closed when the check above was met (a later one may have closed while stopping).
    expected: list[str] = []
    period = CADENCE.before(CADENCE.containing(last))
    first_period = min(p for p, _ in counts)
    while key(period) >= first_period:
        expected.append(key(period))
        period = CADENCE.before(period)
    closed = {d: sorted(p for p, dd in counts if dd == d and p <= expected[0]) for d in digests}
    assert closed == {d: sorted(expected) for d in digests}
    assert key(missed) in expected
    assert await sent_once(notifier_db, last)
    # Each e-mail carries its period's PDF, in Danish, and names the period in its subject.
    for mail in smtp.mailbox.messages:
        _, start, end, _ = str(mail[KEY_HEADER]).split(":")
        name, data = pdf_attachment(mail)
        assert name == f"ripples-report-{start}-{end}-da.pdf"
        text = pdf_text(data, tmp_path)
        assert "Ripples" in text
        day = datetime.strptime(start, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        assert f"{day.day}. {MONTHS_DA[day.month - 1]} {day.year}" in text  # the period's day
        assert day.strftime("%H.%M.%S") in subject(mail)  # and its time (Danish clock)
