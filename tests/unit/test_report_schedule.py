"""The report schedule's rules without I/O (services/notifier/schedule.py): period boundaries
(calendar months and ISO weeks in UTC, ISO 8601 durations aligned to the epoch), the
recipients setting in both forms, ledger ids without addresses, which periods are due after
a restart, the settings the notifier refuses to start with, and the e-mail with its PDF."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.notifier import schedule
from services.notifier.__main__ import refusal
from services.notifier.channels import Attachment, Outgoing, email_message
from services.notifier.reports import period_text
from services.notifier.settings import NotifierSettings
from shared.settings import load

T = datetime(2026, 12, 1, 10, 24, 37, 500000, tzinfo=UTC)  # a Tuesday


def test_monthly_is_calendar_months_in_utc() -> None:
    monthly = schedule.parse_cadence("monthly")
    assert monthly.containing(T) == schedule.Period(
        datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    )
    assert monthly.before(monthly.containing(T)).start == datetime(2026, 11, 1, tzinfo=UTC)
    # A moment given in another zone is placed by its UTC time.
    copenhagen = datetime(2026, 12, 1, 0, 30, tzinfo=UTC).astimezone()
    assert monthly.containing(copenhagen).start.month == 12


def test_weekly_is_iso_weeks_from_monday() -> None:
    week = schedule.parse_cadence("weekly").containing(T)
    assert (week.start, week.end) == (
        datetime(2026, 11, 30, tzinfo=UTC),
        datetime(2026, 12, 7, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT30S", 30), ("pt1m", 60), ("PT6H", 21600), ("P1D", 86400), ("P2W", 1209600),
     ("P1DT12H", 129600)],
)  # fmt: skip
def test_durations_are_aligned_to_the_epoch(text: str, seconds: int) -> None:
    cadence = schedule.parse_cadence(text)
    assert cadence.seconds == seconds
    period = cadence.containing(T)
    assert period.start <= T < period.end
    assert (period.start - schedule.EPOCH).total_seconds() % seconds == 0
    assert cadence.before(period).end == period.start


@pytest.mark.parametrize("text", ["P1M", "P1Y", "PT", "P", "P1DT", "30", "PT0S", "daily", ""])
def test_other_periods_are_refused(text: str) -> None:
    with pytest.raises(schedule.ScheduleError, match="NOTIFIER_REPORT_PERIOD"):
        schedule.parse_cadence(text)


def test_recipients_in_the_comma_form_and_as_json() -> None:
    hook = "https://hooks.slack.com/services/T0/B0/secret"
    comma = schedule.parse_recipients(f"email:ceo@example.com:da, slack:{hook}:en")
    assert comma == (
        schedule.Recipient("email", "ceo@example.com", "da"),
        schedule.Recipient("slack", hook, "en"),
    )
    as_json = schedule.parse_recipients(
        f'[{{"channel":"email","address":"ceo@example.com","locale":"da"}},'
        f'{{"channel":"slack","address":"{hook}","locale":"en"}}]'
    )
    assert as_json == comma
    assert schedule.parse_recipients("  ") == ()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("sms:+4512345678:da", "item 1: the channel"),
        ("email:ceo@example.com:de", "item 1: the locale"),
        ("email:ceo@example.com:da,teams", "item 2 is not channel:address:locale"),
        ("email::da", "item 1: the address is missing"),
        ("email:a@example.com:da,email:a@example.com:en", "twice"),
        ("[1]", "item 1 is not an object"),
        ("[{", "not valid JSON"),
    ],
)
def test_bad_recipients_are_named_without_the_address(text: str, says: str) -> None:
    with pytest.raises(schedule.ScheduleError, match=says) as caught:
        schedule.parse_recipients(text)
    assert "example.com" not in str(caught.value)


def test_report_ids_name_the_period_and_a_digest_never_the_address() -> None:
    recipient = schedule.Recipient("email", "ceo@example.com", "da")
    month = schedule.parse_cadence("monthly").containing(T)
    rid = schedule.report_id(month, recipient)
    assert rid == f"report:2026-12-01:2027-01-01:{recipient.digest}"
    assert "ceo" not in rid
    assert schedule.parse_report_id(rid) == (month, recipient.digest)
    short = schedule.parse_cadence("PT30S").containing(T)
    rid = schedule.report_id(short, recipient)
    assert rid.split(":")[1:3] == ["20261201T102430Z", "20261201T102500Z"]
    assert schedule.parse_report_id(rid) == (short, recipient.digest)
    # The locale is a preference of the same person: the same digest.
    assert schedule.Recipient("email", "ceo@example.com", "en").digest == recipient.digest


def test_due_periods_after_a_restart() -> None:
    monthly = schedule.parse_cadence("monthly")
    nov = monthly.before(monthly.containing(T))
    # A recipient without any report: the latest closed period only.
    assert schedule.due_periods(monthly, T, None, 3) == [nov]
    # Up to date: nothing.
    assert schedule.due_periods(monthly, T, nov.end, 3) == []
    # Down for months: the missed ones, oldest first, at most catch_up of them.
    due = schedule.due_periods(monthly, T, datetime(2026, 6, 1, tzinfo=UTC), 3)
    assert [p.start.month for p in due] == [9, 10, 11]
    due = schedule.due_periods(monthly, T, datetime(2026, 10, 1, tzinfo=UTC), 3)
    assert [p.start.month for p in due] == [10, 11]


def test_the_period_as_a_reader_says_it() -> None:
    month = schedule.parse_cadence("monthly").containing(T)
    assert period_text(month, "da") == "1.–31. dec. 2026"
    assert period_text(month, "en") == "Dec 1\u2009–\u200931, 2026"
    day = schedule.parse_cadence("P1D").containing(T)
    assert period_text(day, "en") == "December 1, 2026"
    short = schedule.parse_cadence("PT30S").containing(T)
    assert period_text(short, "da").startswith("1. december 2026 10.24.30")
    assert period_text(short, "da").endswith("10.25.00 UTC")


def settings(**env: str) -> NotifierSettings:
    base = {"NOTIFIER_WEBHOOK_SECRET": "s", "NOTIFIER_SMTP_HOST": "smtp.example.com"}
    return load(NotifierSettings, "NOTIFIER_", base | env)


def test_the_schedule_is_off_without_recipients() -> None:
    assert schedule.configured(settings()) is None
    assert refusal(settings()) is None


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({}, "NOTIFIER_ATTRIBUTION_URL is not set"),
        ({"NOTIFIER_ATTRIBUTION_URL": "http://attribution:8081"},
         "NOTIFIER_ATTRIBUTION_API_KEY is not set"),
        ({"NOTIFIER_REPORT_PERIOD": "P1M"}, "NOTIFIER_REPORT_PERIOD"),
        ({"NOTIFIER_REPORT_MODEL": "best"}, "NOTIFIER_REPORT_MODEL"),
        ({"NOTIFIER_REPORT_RECIPIENTS": "slack:https://evil.example.com/x:en"},
         "item 1: address not allowed"),
        ({"NOTIFIER_REPORT_RECIPIENTS": "slack:http://hooks.slack.com/x:en"},
         "item 1: address not allowed"),
        ({"NOTIFIER_REPORT_RECIPIENTS": "email:not-an-address:da"}, "not an e-mail address"),
        ({"NOTIFIER_SMTP_HOST": ""}, "e-mail needs NOTIFIER_SMTP_HOST"),
        ({"NOTIFIER_REPORT_FETCH_TIMEOUT_S": "300"}, "NOTIFIER_REPORT_FETCH_TIMEOUT_S"),
    ],
)  # fmt: skip
def test_the_notifier_refuses_a_schedule_it_cannot_keep(env: dict[str, str], says: str) -> None:
    ready = {
        "NOTIFIER_REPORT_RECIPIENTS": "email:ceo@example.com:da",
        "NOTIFIER_ATTRIBUTION_URL": "http://attribution:8081",
        "NOTIFIER_ATTRIBUTION_API_KEY": "k",
    }
    if "NOTIFIER_ATTRIBUTION_URL" not in env and says.startswith("NOTIFIER_ATTRIBUTION"):
        ready.pop("NOTIFIER_ATTRIBUTION_URL")
    if "API_KEY" in says:
        ready.pop("NOTIFIER_ATTRIBUTION_API_KEY")
    problem = refusal(settings(**(ready | env)))
    assert problem is not None
    assert says in problem
    assert "evil" not in problem


def test_a_good_schedule_starts() -> None:
    good = settings(
        NOTIFIER_REPORT_RECIPIENTS="email:ceo@example.com:da,"
        "slack:https://hooks.slack.com/services/T/B/x:en,"
        "teams:https://prod-1.westeurope.logic.azure.com/workflows/x:da",
        NOTIFIER_ATTRIBUTION_URL="http://attribution:8081",
        NOTIFIER_ATTRIBUTION_API_KEY="k",
        NOTIFIER_REPORT_PERIOD="weekly",
    )
    assert refusal(good) is None
    plan = schedule.configured(good)
    assert plan is not None
    assert [r.channel for r in plan.recipients] == ["email", "slack", "teams"]
    assert plan.cadence == schedule.Cadence("weekly")


def test_the_report_email_is_multipart_with_the_pdf() -> None:
    pdf = b"%PDF-1.7\n" + bytes(range(256)) * 4
    message = Outgoing(
        key="report:2026-11-01:2026-12-01:0123456789abcdef",
        kind="report",
        employee_id="",
        locale="da",
        title="Ripples-rapport: 1.–30. nov. 2026",
        text="Ripples-rapporten for 1.–30. nov. 2026 er vedhæftet som PDF.",
        address="ceo@example.com",
        recognition_ids=("report:2026-11-01:2026-12-01:0123456789abcdef",),
        attachments=(Attachment("ripples-report-2026-11-01-2026-12-01-da.pdf", "application",
                                "pdf", pdf),),
    )  # fmt: skip
    mail = email_message(message, "ripples@example.com")
    assert mail.get_content_type() == "multipart/mixed"
    text, attached = list(mail.iter_parts())
    assert text.get_content_type() == "text/plain"
    assert "vedhæftet" in text.get_content()
    assert attached.get_content_type() == "application/pdf"
    assert attached.get_filename() == "ripples-report-2026-11-01-2026-12-01-da.pdf"
    assert attached.get_content() == pdf
    assert mail["Message-ID"] == email_message(message, "x@example.com")["Message-ID"]
    # Without attachments, as before: one text/plain part.
    plain = email_message(
        Outgoing(**{**message.__dict__, "attachments": ()}), "ripples@example.com"
    )
    assert plain.get_content_type() == "text/plain"


def test_next_boundary() -> None:
    cadence = schedule.parse_cadence("PT30S")
    assert schedule.next_boundary(cadence, T) == datetime(2026, 12, 1, 10, 25, tzinfo=UTC)
    assert schedule.next_boundary(cadence, T) - T < timedelta(seconds=30)
