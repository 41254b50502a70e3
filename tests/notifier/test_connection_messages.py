"""Messages about the employee's own LinkedIn connection (ingest's
``ripples.linkedin.connection.v1``, TEAM "Messages to employees from ingest"): stored in the
ledger once per id, rendered in da/en with the link, and sent as service messages — to an
employee who opted out of recognitions too, never held by the daily cap, old news once the
link has expired."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from services.notifier import store
from services.notifier.messages import TEMPLATES, TemplateError, Templates, format_date
from shared.events import LinkedInConnection, LinkedInConnectionEvent
from tests.notifier.conftest import START, Harness, employee_event, recognition_event
from tests.notifier.peers import HttpPeer

URL = "https://go.example.com/connect/linkedin/eyJpIjoiMSJ9.c2ln"
_offsets = itertools.count(1)


def connection_event(
    employee_id: str,
    kind: str = "linkedin_reconnect",
    reason: str = "expiring",
    expires_at: datetime = START + timedelta(days=7),
    recognition_id: str | None = None,
) -> LinkedInConnectionEvent:
    return LinkedInConnectionEvent(
        specversion="1.0",
        id=recognition_id or f"{kind}:{employee_id}:2026-06-08",
        source="urn:ripples:ingest:linkedin-connect",
        time=START,
        data=LinkedInConnection(
            employee_id=employee_id,
            kind=kind,  # type: ignore[arg-type]
            url=URL,
            expires_at=expires_at,
            reason=reason,  # type: ignore[arg-type]
        ),
    )


async def receive(harness: Harness, *events: LinkedInConnectionEvent) -> None:
    async with harness.pool.acquire() as conn, conn.transaction():
        await store.record_connections(conn, [(e, 0, next(_offsets)) for e in events], harness.now)


def test_every_connection_message_renders_in_both_languages_with_its_link() -> None:
    templates = Templates.load()
    expires = START + timedelta(days=7)
    seen = set()
    for kind, reason in (
        ("linkedin_invitation", "invited"),
        ("linkedin_reconnect", "expiring"),
        ("linkedin_reconnect", "expired"),
        ("linkedin_reconnect", "revoked"),
    ):
        for locale in ("da", "en"):
            message = templates.render_connection(kind, locale, "Mette", URL, expires, reason)
            assert URL in message.text
            assert "Mette" in message.text
            assert format_date(expires, locale) in message.text
            seen.add((locale, message.title))
    assert format_date(expires, "da") == "8. juni 2026"
    assert format_date(expires, "en") == "8 June 2026"
    assert ("da", "Din LinkedIn-forbindelse er stoppet") in seen
    assert ("en", "Your LinkedIn connection expires soon") in seen
    assert len(seen) == 6  # invitation, expiring, stopped — in each language


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ('text = "{name}, connect again."', "must contain {url}"),
        ('text = "{name}: {url} {threshold}"', "uses {threshold}"),
    ],
)
def test_a_connection_template_without_its_link_or_with_another_placeholder_is_refused(
    tmp_path: Path, change: str, error: str
) -> None:
    for locale in ("da", "en"):
        text = (TEMPLATES / f"{locale}.toml").read_text(encoding="utf-8")
        if locale == "en":
            head, _, tail = text.partition("[linkedin_reconnect]\n")
            title, _, rest = tail.partition("\n")
            _, _, rest = rest.partition("\n")  # the original text line
            text = f"{head}[linkedin_reconnect]\n{title}\n{change}\n{rest}"
        (tmp_path / f"{locale}.toml").write_text(text, encoding="utf-8")
    with pytest.raises(TemplateError, match=error):
        Templates.load(tmp_path)


async def test_stored_once_and_sent_once_even_to_an_employee_who_opted_out(
    harness: Harness, peer: HttpPeer
) -> None:
    await harness.employee(employee_event("e1", "webhook", f"{peer.url}/e1", "da", opt_out=True))
    event = connection_event("e1")
    await receive(harness, event, event)
    await receive(harness, event)  # a replay
    await harness.recognize(recognition_event("first_post:e1", "e1", "first_post"))
    await harness.dispatch()
    await harness.dispatch()
    (request,) = [r for r in peer.requests if r.path == "/e1"]
    body = request.json()
    assert body["recognition_id"] == "linkedin_reconnect:e1:2026-06-08"
    assert body["kind"] == "linkedin_reconnect"
    assert body["locale"] == "da"
    assert URL in body["text"]
    ledger = await harness.ledger("e1")
    assert ledger["linkedin_reconnect:e1:2026-06-08"]["status"] == "sent"
    # The link is a credential: not kept once the message is settled.
    assert ledger["linkedin_reconnect:e1:2026-06-08"]["link"] is None
    # The recognition is suppressed for the opt-out, as before.
    assert ledger["first_post:e1"]["reason"] == "opted_out"


async def test_channel_none_still_suppresses(harness: Harness) -> None:
    await harness.employee(employee_event("e2", "none", None))
    await receive(harness, connection_event("e2", "linkedin_invitation", "invited"))
    await harness.dispatch()
    (row,) = (await harness.ledger("e2")).values()
    assert (row["status"], row["reason"]) == ("suppressed", "channel_none")


async def test_not_held_by_the_daily_cap(harness: Harness, peer: HttpPeer) -> None:
    harness.configure(daily_cap=1)
    await harness.employee(employee_event("e3", "webhook", f"{peer.url}/e3"))
    await harness.recognize(recognition_event("first_post:e3", "e3", "first_post"))
    await harness.dispatch()
    await receive(harness, connection_event("e3", reason="revoked"))
    await harness.recognize(recognition_event("reach_milestone:e3:1000", "e3"))
    await harness.dispatch()
    kinds = [r.json()["kind"] for r in peer.requests if r.path == "/e3"]
    assert kinds == ["first_post", "linkedin_reconnect"]
    ledger = await harness.ledger("e3")
    assert ledger["reach_milestone:e3:1000"]["digest_day"] is not None  # the cap held it
    assert "stopped" in peer.requests[-1].json()["title"]


async def test_suppressed_as_stale_once_the_link_has_expired(
    harness: Harness, peer: HttpPeer
) -> None:
    await harness.employee(employee_event("e4", "webhook", f"{peer.url}/e4"))
    await receive(harness, connection_event("e4", expires_at=START + timedelta(hours=1)))
    harness.advance(2 * 3600)
    await harness.dispatch()
    (row,) = (await harness.ledger("e4")).values()
    assert (row["status"], row["reason"]) == ("suppressed", "stale")
    assert row["link"] is None
    assert not peer.requests
