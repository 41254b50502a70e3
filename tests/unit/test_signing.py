"""shared/signing.py: the one format of signed, expiring links (report share links, the
employee's page)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.attribution.report import links
from shared.signing import (
    PAGE,
    TokenError,
    claimed,
    page_employee,
    page_token,
    sign,
    verify,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
LATER = NOW + timedelta(days=7)


def test_a_genuine_token_opens_with_every_configured_secret() -> None:
    token = page_token("E1", LATER, "new")
    assert page_employee(token, ("new",), NOW) == "E1"
    assert page_employee(token, ("other", "new"), NOW) == "E1"


def test_an_expired_genuine_token_says_so_and_keeps_its_payload() -> None:
    token = sign("report", {"locale": "da"}, NOW, "s")
    with pytest.raises(TokenError) as caught:
        verify("report", token, ("s",), NOW)
    assert caught.value.expired
    assert caught.value.payload["locale"] == "da"


def test_a_token_for_one_purpose_does_not_open_another() -> None:
    token = sign("report", {"employee_id": "E1"}, LATER, "shared")
    with pytest.raises(TokenError) as caught:
        verify(PAGE, token, ("shared",), NOW)
    assert not caught.value.expired


def test_a_tampered_payload_or_an_unknown_secret_is_refused() -> None:
    token = page_token("E1", LATER, "s")
    forged = page_token("E2", LATER, "attacker")
    mac = token.partition(".")[2]
    for bad in (forged, f"{forged.partition('.')[0]}.{mac}", token, "", ".", "x" * 5000):
        with pytest.raises(TokenError):
            page_employee(bad, ("s",) if bad != token else ("wrong",), NOW)


def test_signing_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        page_token("E1", LATER, "")


@given(st.text(max_size=300))
def test_any_text_is_refused_without_raising_anything_else(token: str) -> None:
    with pytest.raises(TokenError):
        page_employee(token, ("s",), NOW)
    assert isinstance(claimed(token), dict)  # the refusing page's language: never raises


def test_a_report_share_link_is_a_token_of_purpose_report() -> None:
    """The report's links are signed by this module (purpose "report"): a page token made
    with the same secret opens no report, and a report token no page."""
    link = links.Link(NOW - timedelta(days=30), NOW, "linear", "da", LATER)
    token = links.sign(link, "s")
    assert verify("report", token, ("s",), NOW)["locale"] == "da"
    assert links.verify(token, ("s",), NOW) == link
    with pytest.raises(TokenError):
        page_employee(token, ("s",), NOW)
    with pytest.raises(links.LinkError):
        links.verify(page_token("E1", LATER, "s"), ("s",), NOW)
    # a tampered token's refusal page keeps the language it asks for
    body, signature = token.split(".")
    with pytest.raises(links.LinkError) as caught:
        links.verify(f"{body}.{signature[::-1]}", ("s",), NOW)
    assert (caught.value.expired, caught.value.locale) == (False, "da")
