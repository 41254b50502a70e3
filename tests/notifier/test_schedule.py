"""The scheduled period report through the real dispatcher, ledger and channels, with the
real attribution report routes (tests/notifier/reporting.py) and local receivers: an SMTP
server with STARTTLS and a Slack incoming webhook that refuses what Slack refuses
(tests/notifier/peers.py cites Slack's page). The clock is the test's.

Slack: "Sending messages using incoming webhooks" (https://api.slack.com/messaging/webhooks):
a POST of JSON with `text` (and optionally `blocks`) to the webhook URL, answered 200 `ok`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.notifier import metrics, reports, schedule
from services.notifier.channels import Channels
from services.notifier.dispatcher import Dispatcher
from services.notifier.messages import Templates
from services.notifier.settings import NotifierSettings
from tests.conftest import Running, free_port, fresh_database
from tests.notifier.conftest import Harness
from tests.notifier.peers import HttpPeer, SmtpPeer, slack_webhook_rules, smtp_peer, teams_rules
from tests.notifier.reporting import (
    Attribution,
    mail_text,
    pdf_attachment,
    pdf_text,
    served_attribution,
    subject,
)

pytestmark = pytest.mark.integration

JULY = datetime(2026, 7, 1, 0, 0, 5, tzinfo=UTC)  # five seconds after June closed


@pytest.fixture
async def attribution(postgres: Running) -> AsyncIterator[Attribution]:
    async with fresh_database(postgres, "attribution") as url, served_attribution(url) as app:
        yield app


@pytest.fixture
def smtp(tmp_path: Path) -> Any:
    with smtp_peer(tmp_path, "ripples", "smtp-password") as peer:
        yield peer


class Reports:
    """The harness's ledger and clock, with dispatchers that deliver scheduled reports."""

    def __init__(self, harness: Harness, settings: NotifierSettings) -> None:
        self.harness = harness
        self.settings = settings
        self.plan = schedule.configured(settings)
        assert self.plan is not None
        self.attribution = reports.Attribution(settings)
        self.clients: list[httpx.AsyncClient] = []

    def dispatcher(self, plan: schedule.ReportSchedule | None = None) -> Dispatcher:
        async def dead_letter(key: bytes, value: bytes, headers: dict[str, bytes]) -> None:
            raise AssertionError("a report is never dead-lettered")

        async def no_sleep(_: float) -> None:
            return None

        client = self.harness.client
        return Dispatcher(
            self.settings,
            self.harness.pool,
            Channels(self.settings, client),
            Templates.load(),
            dead_letter,
            lambda: self.harness.now,
            rand=lambda: 1.0,
            monotonic=lambda: self.harness.now.timestamp(),
            sleep=no_sleep,
            schedule=plan or self.plan,
            attribution=self.attribution,
        )

    async def record(self) -> int:
        assert self.plan is not None
        scheduler = reports.Scheduler(
            self.plan, self.harness.pool, self.harness.dispatcher.wake, lambda: self.harness.now
        )
        return await scheduler.record()

    async def rows(self) -> dict[str, dict[str, Any]]:
        return await self.harness.ledger(schedule.LANE)


def report_settings(
    harness: Harness, smtp: SmtpPeer, slack: HttpPeer, attribution_url: str, **extra: Any
) -> NotifierSettings:
    return dataclasses.replace(
        harness.settings,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_username="ripples",
        smtp_password="smtp-password",
        smtp_ca_file=str(smtp.ca_file),
        smtp_from="ripples@example.com",
        report_recipients=f"email:director@example.com:da,slack:{slack.url}/hooks/T1/B1/x:en",
        report_period="monthly",
        report_delay_s=0.0,
        attribution_url=attribution_url,
        attribution_api_key="test-key-primary",
        **extra,
    )


@pytest.fixture
async def setup(
    harness: Harness, smtp: SmtpPeer, peer: HttpPeer, attribution: Attribution
) -> AsyncIterator[Reports]:
    peer.rules = slack_webhook_rules
    harness.now = JULY
    subject = Reports(harness, report_settings(harness, smtp, peer, attribution.url))
    yield subject
    await subject.attribution.aclose()


async def test_a_closed_month_gets_one_report_per_recipient(
    setup: Reports, smtp: SmtpPeer, peer: HttpPeer, tmp_path: Path
) -> None:
    assert await setup.record() == 2
    assert await setup.record() == 0  # the same period again: the ids exist
    rows = await setup.rows()
    digests = {r.digest: r for r in setup.plan.recipients}  # type: ignore[union-attr]
    assert {i.rsplit(":", 1)[0] for i in rows} == {"report:2026-06-01:2026-07-01"}
    assert {i.rsplit(":", 1)[1] for i in rows} == set(digests)
    assert not any("example.com" in i or "127.0.0.1" in i for i in rows)  # no address in ids
    assert await setup.dispatcher().dispatch_once() == 2
    assert await setup.dispatcher().dispatch_once() == 0
    # E-mail, in Danish, with the PDF attached; the PDF says which period it covers.
    (mail,) = smtp.mailbox.messages
    assert mail["To"] == "director@example.com"
    assert mail.get_content_type() == "multipart/mixed"
    assert subject(mail) == "Ripples-rapport: 1.–30. jun. 2026"
    assert "vedhæftet som PDF" in mail_text(mail)
    name, data = pdf_attachment(mail)
    assert name == "ripples-report-2026-06-01-2026-07-01-da.pdf"
    text = pdf_text(data, tmp_path)
    assert "1. juni 2026" in text
    assert "1. juli 2026" in text
    # Slack, in English, with a share link that opens the report without a key.
    (post,) = peer.requests
    body = post.json()
    # Babel puts thin spaces around the dash of a range
    assert body["blocks"][0]["text"]["text"] == "Ripples report: Jun 1\u2009–\u200930, 2026"
    url = next(w for w in body["blocks"][1]["text"]["text"].split() if w.startswith("http"))
    async with httpx.AsyncClient(timeout=30) as client:
        page = await client.get(url)
    assert page.status_code == 200
    assert "June 1, 2026" in page.text  # a period with no data still has its report
    rows = await setup.rows()
    assert sorted((r["status"], r["channel"], r["attempts"]) for r in rows.values()) == [
        ("sent", "email", 1),
        ("sent", "slack", 1),
    ]


async def test_attribution_unreachable_waits_and_the_report_goes_once(
    setup: Reports, smtp: SmtpPeer, peer: HttpPeer, attribution: Attribution
) -> None:
    working = setup.attribution
    away = dataclasses.replace(setup.settings, attribution_url=f"http://127.0.0.1:{free_port()}")
    setup.attribution = reports.Attribution(away)  # nothing listens there: connection refused
    before = metrics.REPORT_FETCH_FAILURES.labels("connection_error")._value.get()
    await setup.record()
    dispatcher = setup.dispatcher()
    assert await dispatcher.dispatch_once() == 2
    rows = await setup.rows()
    assert {(r["status"], r["reason"], r["attempts"]) for r in rows.values()} == {
        ("pending", "connection_error", 0)
    }
    assert all(r["next_attempt_at"] > setup.harness.now for r in rows.values())
    assert not smtp.mailbox.messages
    assert not peer.requests
    assert metrics.REPORT_FETCH_FAILURES.labels("connection_error")._value.get() == before + 2
    # Still away a while later: still waiting (with a longer backoff), never given up.
    setup.harness.advance(setup.settings.backoff_max_s)
    assert await dispatcher.dispatch_once() == 2
    assert {r["status"] for r in (await setup.rows()).values()} == {"pending"}
    # Attribution is back: each report goes out once.
    await setup.attribution.aclose()
    setup.attribution = working
    dispatcher.attribution = working
    setup.harness.advance(setup.settings.backoff_max_s)
    assert await dispatcher.dispatch_once() == 2
    assert len(smtp.mailbox.messages) == 1
    assert len(peer.requests) == 1
    assert {r["status"] for r in (await setup.rows()).values()} == {"sent"}


async def test_a_refused_key_waits_for_the_operator(
    setup: Reports, smtp: SmtpPeer, attribution: Attribution
) -> None:
    wrong = dataclasses.replace(setup.settings, attribution_api_key="not-a-key")
    good = setup.attribution
    setup.attribution = reports.Attribution(wrong)
    await setup.record()
    dispatcher = setup.dispatcher()
    await dispatcher.dispatch_once()
    assert {(r["status"], r["reason"]) for r in (await setup.rows()).values()} == {
        ("pending", "rejected")
    }
    await setup.attribution.aclose()
    dispatcher.attribution = setup.attribution = good
    setup.harness.advance(setup.settings.backoff_max_s)
    await dispatcher.dispatch_once()
    assert len(smtp.mailbox.messages) == 1


async def test_two_replicas_on_one_ledger_send_once(
    setup: Reports, smtp: SmtpPeer, peer: HttpPeer
) -> None:
    assert sum(await asyncio.gather(setup.record(), setup.record())) == 2
    first, second = setup.dispatcher(), setup.dispatcher()
    claimed = await asyncio.gather(first.dispatch_once(), second.dispatch_once())
    assert sum(claimed) == 2
    assert len(smtp.mailbox.messages) == 1
    assert len(peer.requests) == 1
    assert await first.dispatch_once() + await second.dispatch_once() == 0


async def test_missed_periods_are_caught_up_and_a_removed_recipient_gets_none(
    setup: Reports, smtp: SmtpPeer, peer: HttpPeer
) -> None:
    await setup.record()  # June
    await setup.dispatcher().dispatch_once()
    # No notifier ran for five months: the last three (NOTIFIER_REPORT_CATCH_UP) are due.
    setup.harness.now = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)
    assert await setup.record() == 6
    ends = sorted({i.split(":")[2] for i in await setup.rows()})
    assert ends == ["2026-07-01", "2026-10-01", "2026-11-01", "2026-12-01"]
    # The operator removes the Slack recipient before they went out: suppressed, not sent.
    only_mail = dataclasses.replace(
        setup.settings, report_recipients="email:director@example.com:da"
    )
    plan = schedule.configured(only_mail)
    await setup.dispatcher(plan).dispatch_once()
    rows = await setup.rows()
    slack = [r for r in rows.values() if r["channel"] in ("slack", "none")]
    assert sorted((r["status"], r["reason"]) for r in slack) == [
        ("sent", None),
        *[("suppressed", "no_notify")] * 3,
    ]
    assert len(smtp.mailbox.messages) == 4
    assert len(peer.requests) == 1
    assert sorted(subject(m) for m in smtp.mailbox.messages)[-1] == (
        "Ripples-rapport: 1.–31. okt. 2026"
    )


async def test_the_report_is_due_after_the_delay(setup: Reports, smtp: SmtpPeer) -> None:
    setup.settings = dataclasses.replace(setup.settings, report_delay_s=3600.0)
    setup.plan = schedule.configured(setup.settings)
    await setup.record()
    assert await setup.dispatcher().dispatch_once() == 0  # closed, not due yet
    setup.harness.advance(3600)
    assert await setup.dispatcher().dispatch_once() == 2
    assert len(smtp.mailbox.messages) == 1


async def test_teams_gets_the_link_in_an_adaptive_card(
    harness: Harness, smtp: SmtpPeer, peer: HttpPeer, attribution: Attribution
) -> None:
    """Teams Workflows webhooks take a message with one Adaptive Card
    (https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook);
    the peer refuses what Teams refuses (tests/notifier/peers.py)."""
    peer.rules = teams_rules
    harness.now = JULY
    settings = dataclasses.replace(
        report_settings(harness, smtp, peer, attribution.url),
        report_recipients=f"teams:{peer.url}/workflows/report:da",
    )
    subject = Reports(harness, settings)
    try:
        assert await subject.record() == 1
        assert await subject.dispatcher().dispatch_once() == 1
    finally:
        await subject.attribution.aclose()
    (post,) = peer.requests
    card = post.json()["attachments"][0]["content"]
    assert card["lang"] == "da"
    title, text = (block["text"] for block in card["body"])
    assert title == "Ripples-rapport: 1.–30. jun. 2026"
    assert "er klar: http" in text
    url = next(w for w in text.split() if w.startswith("http"))
    async with httpx.AsyncClient(timeout=30) as client:
        page = await client.get(url)
    assert page.status_code == 200
    assert page.headers["content-language"] == "da"
