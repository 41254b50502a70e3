"""Each channel's payload as its vendor documents it, through the real httpx/SMTP code,
against local peers: Slack (incoming webhook and chat.postMessage), Teams (Adaptive Card),
e-mail (STARTTLS and AUTH on a real SMTP server)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from services.notifier.channels import ADAPTIVE_CARD
from shared.events import RecognitionFacts
from tests.notifier.conftest import Harness, employee_event, recognition_event
from tests.notifier.peers import Answer, HttpPeer, smtp_peer

pytestmark = pytest.mark.integration

FACTS = RecognitionFacts(colleague_id="e7")  # the name comes from e7's employee record


async def test_slack_incoming_webhook(harness: Harness, peer: HttpPeer) -> None:
    await harness.employee(employee_event("e1", "slack", f"{peer.url}/services/T0/B0/X"))
    await harness.employee(employee_event("e7", "none", None, name="Bo Jensen"))
    await harness.recognize(recognition_event("inspired_colleague:e1:e7", "e1",
                                              "inspired_colleague", FACTS))  # fmt: skip
    await harness.dispatch()
    (request,) = peer.requests
    assert request.path == "/services/T0/B0/X"
    assert request.headers["x-ripples-recognition-id"] == "inspired_colleague:e1:e7"
    body = request.json()
    assert body["text"].startswith("*You inspired a colleague*\n")
    assert "Bo Jensen started sharing" in body["text"]
    assert body["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "You inspired a colleague"},
    }
    assert body["blocks"][1]["text"]["type"] == "mrkdwn"
    assert "channel" not in body
    row = (await harness.ledger("e1"))["inspired_colleague:e1:e7"]
    assert (row["status"], row["channel"]) == ("sent", "slack")


async def test_slack_chat_post_message_with_bot_token(harness: Harness, peer: HttpPeer) -> None:
    harness.configure(slack_bot_token="xoxb-test", slack_api_url=f"{peer.url}/api")
    peer.script = [
        Answer(200, {"Content-Type": "application/json"}, b'{"ok":false,"error":"ratelimited"}')
    ]
    peer.default = Answer(200, {"Content-Type": "application/json"}, b'{"ok":true,"ts":"1.2"}')
    await harness.employee(employee_event("e1", "slack", "U0123ABC", locale="da"))
    await harness.recognize(recognition_event("first_post:e1", "e1", "first_post"))
    await harness.dispatch()
    row = (await harness.ledger("e1"))["first_post:e1"]
    assert (row["status"], row["last_error"]) == ("pending", "slack: ratelimited")
    harness.advance(60)
    await harness.dispatch()
    assert len(peer.requests) == 2
    request = peer.requests[1]
    assert request.path == "/api/chat.postMessage"
    assert request.headers["authorization"] == "Bearer xoxb-test"
    body = request.json()
    assert body["channel"] == "U0123ABC"
    assert body["metadata"] == {
        "event_type": "ripples_recognition",
        "event_payload": {"recognition_id": "first_post:e1", "kind": "first_post"},
    }
    assert "Dit første opslag er ude" in body["text"]
    assert (await harness.ledger("e1"))["first_post:e1"]["status"] == "sent"


async def test_slack_api_error_is_permanent(harness: Harness, peer: HttpPeer) -> None:
    harness.configure(slack_bot_token="xoxb-test", slack_api_url=peer.url)
    peer.default = Answer(200, {}, b'{"ok":false,"error":"channel_not_found"}')
    await harness.employee(employee_event("e1", "slack", "C999"))
    await harness.recognize(recognition_event("first_post:e1", "e1", "first_post"))
    await harness.dispatch()
    row = (await harness.ledger("e1"))["first_post:e1"]
    assert (row["status"], row["last_error"]) == ("failed", "refused: slack: channel_not_found")


async def test_teams_adaptive_card(harness: Harness, peer: HttpPeer) -> None:
    peer.default = Answer(202, body=b"")
    await harness.employee(employee_event("e1", "teams", f"{peer.url}/workflows/abc", locale="da"))
    await harness.recognize(recognition_event("reach_milestone:e1:10000", "e1"))
    await harness.dispatch()
    (request,) = peer.requests
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-ripples-recognition-id"] == "reach_milestone:e1:10000"
    body = request.json()
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == ADAPTIVE_CARD
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["version"] == "1.4"
    title, text = card["body"]
    assert title == {"type": "TextBlock", "text": "10.000 visninger", "weight": "Bolder",
                     "size": "Medium", "wrap": True}  # fmt: skip
    assert text["type"] == "TextBlock"
    assert "har nu været vist 10.000 gange" in text["text"]
    assert (await harness.ledger("e1"))["reach_milestone:e1:10000"]["status"] == "sent"


async def test_email_over_starttls_with_auth(harness: Harness, tmp_path: Path) -> None:
    with smtp_peer(tmp_path, "ripples", "s3cret") as smtp:
        harness.configure(
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_username="ripples",
            smtp_password="s3cret",
            smtp_from="ripples@example.org",
            smtp_ca_file=str(smtp.ca_file),
        )
        await harness.employee(employee_event("e1", "email", "mette@example.org", locale="da"))
        await harness.recognize(recognition_event("hire:e1:a1", "e1", "hire"))
        await harness.dispatch()
    (mail,) = smtp.mailbox.messages
    assert smtp.mailbox.tls_seen == [True]
    assert smtp.mailbox.logins == [(b"ripples", b"s3cret")]
    assert mail["To"] == "mette@example.org"
    assert mail["From"] == "ripples@example.org"
    assert mail["Subject"] == "En ny kollega"
    assert mail["X-Ripples-Recognition-Id"] == "hire:e1:a1"
    assert mail["Message-ID"].endswith("@ripples>")
    text = mail.get_payload(decode=True).decode()
    assert "en ny kollega er blevet ansat" in text
    assert "a1" not in text.replace("Mette", "")  # the applicant is never named
    row = (await harness.ledger("e1"))["hire:e1:a1"]
    assert (row["status"], row["channel"], row["attempts"]) == ("sent", "email", 1)


async def test_email_bad_password_is_refused(harness: Harness, tmp_path: Path) -> None:
    with smtp_peer(tmp_path, "ripples", "s3cret") as smtp:
        harness.configure(
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_username="ripples",
            smtp_password="wrong",
            smtp_ca_file=str(smtp.ca_file),
        )
        await harness.employee(employee_event("e1", "email", "mette@example.org"))
        await harness.recognize(recognition_event("hire:e1:a1", "e1", "hire"))
        await harness.dispatch()
    assert smtp.mailbox.messages == []
    row = (await harness.ledger("e1"))["hire:e1:a1"]
    assert row["status"] == "failed"
    assert row["last_error"].startswith("refused: smtp_535")


async def test_webhook_body_is_signed_over_the_raw_bytes(harness: Harness, peer: HttpPeer) -> None:
    await harness.employee(employee_event("e1", "webhook", peer.url))
    await harness.recognize(recognition_event("first_applicant:e1", "e1", "first_applicant",
                                              RecognitionFacts(job_id="job-9")))  # fmt: skip
    await harness.dispatch()
    body = peer.requests[0].json()
    assert set(body) >= {"recognition_id", "kind", "employee_id", "text", "locale"}
    assert "job-9" not in orjson.dumps(body).decode()
