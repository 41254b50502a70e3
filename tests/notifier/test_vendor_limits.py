"""Slack and Teams limits through the real dispatcher, channels and httpx code, against local
peers that refuse what the vendors refuse (tests/notifier/peers.py cites the pages):

- Slack "Rate limits" (https://docs.slack.dev/apis/web-api/rate-limits, "Posting messages":
  about 1 message per second, short bursts allowed; over it, HTTP 429 with ``Retry-After``).
- Slack incoming webhooks "Handling errors" (https://api.slack.com/messaging/webhooks): a
  header over 150 characters or a section over 3000 is a 400 ``invalid_blocks``.
- Slack "Escaping text" (https://api.slack.com/reference/surfaces/formatting#escaping).
- Teams "Create incoming webhooks" (https://learn.microsoft.com/microsoftteams/platform/
  webhooks-and-connectors/how-to/add-incoming-webhook): 28 KB per message, throttled above
  four requests a second.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from services.notifier.messages import TEMPLATES
from tests.notifier.conftest import Harness, employee_event, recognition_event
from tests.notifier.peers import (
    TEAMS_MAX_BYTES,
    Answer,
    HttpPeer,
    Request,
    slack_webhook_rules,
    teams_rules,
)

pytestmark = pytest.mark.integration


def adviser_templates(tmp: Path) -> Path:
    """The shipped templates with [hire] edited the way a communication adviser may: the
    name in the title, and a long text."""
    folder = tmp / "templates"
    shutil.copytree(TEMPLATES, folder)
    for locale in ("da", "en"):
        path = folder / f"{locale}.toml"
        raw = path.read_text(encoding="utf-8")
        start = raw.index("[hire]")
        end = raw.index("[", start + 1)
        hire = '[hire]\ntitle = "{name}: a new colleague"\ntext = "' + "{name} " * 30 + '"\n\n'
        path.write_text(raw[:start] + hire + raw[end:], encoding="utf-8")
    return folder


# A name as HR may send it (up to 1024 characters): Slack's control characters in it, and
# long enough to break both Block Kit limits and, written 30 times, Teams' 28 KB.
NAME = "Mette <!channel> & <https://evil.example|Holm> " + "Å" * 900


async def test_slack_texts_are_escaped_and_cut_to_block_kit_limits(
    harness: Harness, peer: HttpPeer, tmp_path: Path
) -> None:
    # failed before: 400 invalid_blocks (a 1,000-character header), the row failed 'rejected'
    harness.configure(templates_dir=str(adviser_templates(tmp_path)))
    peer.rules = slack_webhook_rules
    await harness.employee(employee_event("e1", "slack", f"{peer.url}/services/T/B/X", name=NAME))
    await harness.recognize(recognition_event("hire:e1:a1", "e1", "hire"))
    await harness.dispatch()
    row = (await harness.ledger("e1"))["hire:e1:a1"]
    assert (row["status"], row["reason"]) == ("sent", None)
    body = peer.requests[-1].json()
    header, section = (b["text"]["text"] for b in body["blocks"])
    assert len(header) == 150
    assert header.endswith("\u2026")
    assert header.startswith("Mette <!channel>")  # plain_text: Slack shows it as it is
    assert len(section) <= 3000
    assert section.endswith("\u2026")
    assert "<" not in section
    assert section.startswith("Mette &lt;!channel&gt; &amp; &lt;https://evil.example|Holm&gt;")
    assert "<!channel>" not in body["text"]


async def test_teams_card_stays_under_28_kb(
    harness: Harness, peer: HttpPeer, tmp_path: Path
) -> None:
    # failed before: 413 Request Entity too large (a 60 KB card), the row failed 'rejected'
    harness.configure(templates_dir=str(adviser_templates(tmp_path)))
    peer.rules = teams_rules
    await harness.employee(employee_event("e1", "teams", f"{peer.url}/workflows/1", name=NAME))
    await harness.recognize(recognition_event("hire:e1:a1", "e1", "hire"))
    await harness.dispatch()
    row = (await harness.ledger("e1"))["hire:e1:a1"]
    assert (row["status"], row["reason"]) == ("sent", None)
    request = peer.requests[-1]
    assert TEAMS_MAX_BYTES - 200 < len(request.body) <= TEAMS_MAX_BYTES
    card = request.json()["attachments"][0]["content"]
    assert card["body"][1]["text"].endswith("\u2026")


async def test_slack_is_paced_per_webhook_not_per_channel(harness: Harness, peer: HttpPeer) -> None:
    # failed before: one bucket for all of Slack at the channel rate — no webhook held to
    # Slack's 1/s (no waits at all with the tests' channel rate)
    harness.configure(slack_rate_per_s=1.0, slack_burst=3)
    for employee in ("e1", "e2"):
        await harness.employee(employee_event(employee, "slack", f"{peer.url}/hooks/{employee}"))
        await harness.recognize(
            *(
                recognition_event(f"reach_milestone:{employee}:{n}", employee)
                for n in (1000, 10_000, 100_000, 1_000_000, 10_000_000)
            )
        )
    await harness.dispatch()
    assert len(peer.requests) == 10
    # each webhook: a burst of three, then one a second (the clock stands still while the
    # dispatcher sleeps, so the waits add up per webhook): 1 s and 2 s, twice
    assert sorted(harness.slept) == [1.0, 1.0, 2.0, 2.0]


async def test_teams_is_paced_at_four_a_second_per_webhook(
    harness: Harness, peer: HttpPeer
) -> None:
    harness.configure(teams_rate_per_s=4.0, teams_burst=4)
    await harness.employee(employee_event("e1", "teams", f"{peer.url}/workflows/1"))
    await harness.recognize(*(recognition_event(f"reach_milestone:e1:{n}", "e1") for n in range(6)))
    await harness.dispatch()
    assert len(peer.requests) == 6
    assert harness.slept == [0.25, 0.5]


async def test_a_429_pauses_only_its_own_webhook(harness: Harness, peer: HttpPeer) -> None:
    # failed before: the second message to the paused webhook was sent at once, straight
    # into the peer's pause (2 requests at /hooks/e1 instead of 1)
    harness.configure(backoff_max_s=900.0, slack_rate_per_s=1.0, slack_burst=3)
    paused: list[Request] = []

    def rules(request: Request) -> Answer | None:
        if request.path == "/hooks/e1" and not paused:
            paused.append(request)
            return Answer(429, {"Retry-After": "120"}, b"rate_limited")
        return slack_webhook_rules(request)

    peer.rules = rules
    for employee in ("e1", "e2"):
        await harness.employee(employee_event(employee, "slack", f"{peer.url}/hooks/{employee}"))
        await harness.recognize(
            *(recognition_event(f"reach_milestone:{employee}:{n}", employee) for n in (1, 2))
        )
    await harness.dispatch()
    by_path = [r.path for r in peer.requests]
    assert by_path.count("/hooks/e1") == 1  # the 429; nothing more into the pause
    assert by_path.count("/hooks/e2") == 2  # the other webhook went on
    e1 = await harness.ledger("e1")
    assert {r["status"] for r in e1.values()} == {"pending"}
    resume = harness.now + timedelta(seconds=120)
    assert all(r["next_attempt_at"] >= resume for r in e1.values())
    assert e1["reach_milestone:e1:1"]["reason"] == "rate_limited"
    assert {r["status"] for r in (await harness.ledger("e2")).values()} == {"sent"}
    harness.advance(121)
    await harness.dispatch()
    assert {r["status"] for r in (await harness.ledger("e1")).values()} == {"sent"}
    assert by_path.count("/hooks/e1") + 2 == [r.path for r in peer.requests].count("/hooks/e1")


async def test_no_webhook_url_in_the_log(
    harness: Harness, peer: HttpPeer, caplog: pytest.LogCaptureFixture
) -> None:
    peer.script = [Answer(429, {"Retry-After": "5"}, b"rate_limited")]
    url = f"{peer.url}/services/T0/B0/SECRETPART"
    await harness.employee(employee_event("e1", "slack", url))
    await harness.recognize(recognition_event("first_post:e1", "e1", "first_post"))
    # failed before: httpx's INFO line "HTTP Request: POST http://…/SECRETPART"
    with caplog.at_level("INFO"):
        await harness.dispatch()
    assert any(getattr(r, "destination", "").startswith("slack:") for r in caplog.records)
    logged = " ".join(f"{r.getMessage()} {orjson.dumps(r.__dict__, default=str)!r}"
                      for r in caplog.records)  # fmt: skip
    assert "SECRETPART" not in logged
