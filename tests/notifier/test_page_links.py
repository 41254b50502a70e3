"""The employee's page link under every message (CONTRACT §11, TEAM "The employee's page"):
``{NOTIFIER_PAGE_BASE_URL}/me/{token}``, the token the one the page itself verifies
(``shared.signing.page_token``, the first of ``NOTIFIER_PAGE_LINK_SECRETS``), valid 30 days by
default; unconfigured, the messages are exactly as before."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from services.notifier.messages import Templates
from shared.events import RecognitionFacts
from shared.signing import PAGE, TokenError, page_employee, verify
from tests.notifier.conftest import START, Harness, employee_event, recognition_event
from tests.notifier.peers import HttpPeer
from tests.notifier.test_connection_messages import connection_event, receive

BASE = "https://go.example.com"
SECRETS = ("page-secret-new", "page-secret-old")
LINK = re.compile(r"https://go\.example\.com/me/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)$")


def page_link(text: str) -> str:
    match = LINK.search(text)
    assert match, text
    return match.group(1)


async def test_every_message_links_the_employees_page(harness: Harness, peer: HttpPeer) -> None:
    harness.configure(page_base_url=BASE + "/", page_link_secrets=SECRETS)
    await harness.employee(employee_event("p1", "webhook", f"{peer.url}/p1", "da"))
    await harness.recognize(recognition_event("reach_milestone:p1:10000", "p1"))
    await receive(harness, connection_event("p1", "linkedin_invitation", "invited"))
    await harness.dispatch()
    recognition, invitation = sorted(
        (r.json() for r in peer.requests), key=lambda b: b["kind"] != "reach_milestone"
    )
    for body in (recognition, invitation):
        token = page_link(body["text"])
        # The page's own check opens it: this employee, signed with the first secret.
        assert page_employee(token, SECRETS, START) == "p1"
        assert page_employee(token, SECRETS[:1], START) == "p1"
        expires = verify(PAGE, token, SECRETS, START)["exp"]
        assert expires == int((START + timedelta(days=30)).timestamp())
        assert "på din egen side: https://go.example.com/me/" in body["text"]
    expected = Templates.load().render(
        "reach_milestone",
        "da",
        "Mette Holm",
        RecognitionFacts(threshold=10_000, impressions=10_400),
    )
    assert recognition["text"].startswith(expected.text + "\n\n")
    with pytest.raises(TokenError):  # it opens nothing after 30 days
        page_employee(page_link(recognition["text"]), SECRETS, START + timedelta(days=31))


async def test_the_digest_links_the_page_once(harness: Harness, peer: HttpPeer) -> None:
    harness.configure(page_base_url=BASE, page_link_secrets=SECRETS, daily_cap=1)
    await harness.employee(employee_event("p2", "webhook", f"{peer.url}/p2"))
    await harness.recognize(
        recognition_event("first_post:p2", "p2", "first_post", RecognitionFacts(post_count=1)),
        recognition_event("reach_milestone:p2:1000", "p2"),
        recognition_event("reach_milestone:p2:10000", "p2"),
    )
    await harness.dispatch()
    harness.advance(86400)
    await harness.dispatch()
    digest = next(r.json() for r in peer.requests if r.json()["kind"] == "digest")
    assert digest["text"].count("/me/") == 1
    assert page_employee(page_link(digest["text"]), SECRETS, harness.now) == "p2"


async def test_unconfigured_the_messages_are_as_before(harness: Harness, peer: HttpPeer) -> None:
    harness.configure(page_base_url=BASE)  # no secret: no link
    await harness.employee(employee_event("p3", "webhook", f"{peer.url}/p3"))
    await harness.recognize(recognition_event("reach_milestone:p3:10000", "p3"))
    await harness.dispatch()
    (request,) = peer.requests
    expected = Templates.load().render(
        "reach_milestone",
        "en",
        "Mette Holm",
        RecognitionFacts(threshold=10_000, impressions=10_400),
    )
    assert request.json()["text"] == expected.text
    assert "/me/" not in request.json()["text"]
