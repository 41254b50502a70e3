"""The notifier's vendor limits as pure functions (issue 16 part 7, CONTRACT §6 v1.1 stale).

The vendors' own pages:
- Slack "Rate limits" (https://docs.slack.dev/apis/web-api/rate-limits, "Posting messages":
  1 per second, short bursts >1 allowed; chat.postMessage one message per second per channel;
  an app over the limit gets HTTP 429 with ``Retry-After``).
- Slack Block Kit "Header block" (https://docs.slack.dev/reference/block-kit/blocks/header-block:
  the plain_text text at most 150 characters) and "Section block" (text at most 3000).
- Slack "Formatting text for app surfaces", "Escaping text"
  (https://api.slack.com/reference/surfaces/formatting#escaping: ``&``, ``<``, ``>`` as
  ``&amp;``, ``&lt;``, ``&gt;``, and only those).
- Microsoft Teams "Create incoming webhooks"
  (https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook:
  message size limit 28 KB; more than four requests in a second are throttled).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from services.notifier import policy
from services.notifier.channels import (
    ELLIPSIS,
    SLACK_HEADER_MAX,
    SLACK_SECTION_MAX,
    TEAMS_MAX_BYTES,
    Outgoing,
    cut,
    slack_escape,
    slack_payload,
    teams_body,
)


def message(title: str = "Title", text: str = "Text") -> Outgoing:
    return Outgoing(
        "hire:e-1:a-1", "hire", "e-1", "da", title, text, "https://x", ("hire:e-1:a-1",)
    )


# --- cutting and escaping ---------------------------------------------------------------


def test_short_text_is_kept_whole() -> None:
    assert cut("Tillykke", 150) == "Tillykke"
    assert cut("x" * 150, 150) == "x" * 150


def test_long_text_is_cut_with_an_ellipsis_to_the_limit() -> None:
    out = cut("æøå " * 100, 150)
    assert len(out) <= 150
    assert out.endswith(ELLIPSIS)
    assert out.startswith("æøå æøå")


def test_the_cut_never_separates_a_mark_or_joiner_from_its_character() -> None:
    # "e" + COMBINING ACUTE at the limit: both go, not the "e" alone
    text = "a" * 148 + "e\u0301" + "zzz"
    out = cut(text, 150)
    assert out == "a" * 148 + ELLIPSIS
    # a family emoji joined with ZWJ: no dangling joiner at the end
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    out = cut("a" * 146 + family + "tail", 150)
    assert "\u200d" not in out[-2:]
    # a thumbs up with a skin tone stays together or goes together
    out = cut("a" * 148 + "\U0001f44d\U0001f3fd" + "tail", 150)
    assert not out.endswith("\U0001f44d" + ELLIPSIS)


def test_slack_escaping_is_only_the_three_control_characters() -> None:
    assert slack_escape("A & B <@U123> > 'x' \"y\"") == "A &amp; B &lt;@U123&gt; &gt; 'x' \"y\""


def test_an_escaped_cut_never_splits_an_entity() -> None:
    out = cut("&" * 2000, SLACK_SECTION_MAX, slack_escape)
    assert len(out) <= SLACK_SECTION_MAX
    assert out.removesuffix(ELLIPSIS) == "&amp;" * 599  # 599 * 5 + 1 = 2996 ≤ 3000


def test_slack_payload_keeps_the_block_kit_limits() -> None:
    payload = slack_payload(message("Ø" * 400, "<b>&" * 2000), None)
    header, section = payload["blocks"]
    assert len(header["text"]["text"]) == SLACK_HEADER_MAX
    assert header["text"]["text"].endswith(ELLIPSIS)
    assert header["text"]["type"] == "plain_text"  # plain text: shown as is, not escaped
    assert len(section["text"]["text"]) <= SLACK_SECTION_MAX
    assert "<" not in section["text"]["text"]
    assert "&lt;b&gt;&amp;" in section["text"]["text"]
    assert "<" not in payload["text"]  # the fallback text is mrkdwn as well


def test_a_name_with_control_characters_cannot_mention_or_link() -> None:
    payload = slack_payload(message("Hej <!channel>", "Hej <!channel> & <https://evil|x>"), None)
    assert (
        payload["blocks"][1]["text"]["text"] == "Hej &lt;!channel&gt; &amp; &lt;https://evil|x&gt;"
    )
    assert "<!channel>" not in payload["text"]


def test_teams_body_is_measured_and_kept_under_28_kb() -> None:
    small = teams_body(message("Tillykke", "Kort"))
    assert b"Kort" in small
    # multi-byte text: 20,000 characters of "ø" are 40,000 bytes of UTF-8
    big = teams_body(message("Tillykke", "ø" * 20_000))
    assert len(big) <= TEAMS_MAX_BYTES
    assert len(big) > TEAMS_MAX_BYTES - 100  # cut as little as needed
    card = orjson.loads(big)["attachments"][0]["content"]
    assert card["body"][0]["text"] == "Tillykke"
    assert card["body"][1]["text"].endswith(ELLIPSIS)
    # JSON escaping counts too: quotes become \"
    quoted = teams_body(message("T", '"' * 20_000))
    assert len(quoted) <= TEAMS_MAX_BYTES
    # a huge title alone is cut as well
    assert len(teams_body(message("T" * 40_000, "x"))) <= TEAMS_MAX_BYTES


# --- rate limits per destination ----------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_destination_key_hides_the_address() -> None:
    url = "https://hooks.slack.com/services/T000/B000/SECRETSECRET"
    key = policy.destination_key("slack", url)
    assert key.startswith("slack:")
    assert "SECRET" not in key
    assert "hooks" not in key
    assert key == policy.destination_key("slack", url)
    assert key != policy.destination_key("slack", url + "x")
    assert key != policy.destination_key("teams", url)
    assert policy.destination_key("email", "a@example.com") == "email"


def test_each_destination_has_its_own_bucket_at_its_channels_rate() -> None:
    clock = Clock()
    destinations = policy.Destinations({"slack": (1.0, 3), "teams": (4.0, 4)}, clock)
    a = destinations.limiter("slack", "https://hooks.slack.com/a")
    b = destinations.limiter("slack", "https://hooks.slack.com/b")
    assert a is not b
    assert a is destinations.limiter("slack", "https://hooks.slack.com/a")
    # Slack: a short burst of 3, then one a second
    assert [a.reserve() for _ in range(5)] == [0.0, 0.0, 0.0, 1.0, 2.0]
    # the other webhook is not held back by the first
    assert b.reserve() == 0.0
    # Teams: 4 a second
    t = destinations.limiter("teams", "https://x.logic.azure.com/w")
    assert [t.reserve() for _ in range(6)] == [0.0, 0.0, 0.0, 0.0, 0.25, 0.5]


def test_a_pause_holds_one_destination_for_its_retry_after() -> None:
    clock = Clock()
    destinations = policy.Destinations({"slack": (1.0, 3)}, clock)
    a = destinations.limiter("slack", "a")
    b = destinations.limiter("slack", "b")
    a.pause(30)
    assert a.reserve() == pytest.approx(30.0)
    assert b.reserve() == 0.0
    clock.now = 30.0
    assert a.reserve() == pytest.approx(1.0)  # the one reserved at 0 used the first token
    # a shorter pause never shortens a longer one
    c = destinations.limiter("slack", "c")
    c.pause(60)
    c.pause(5)
    assert c.reserve() == pytest.approx(60.0)


def test_unreserve_gives_the_token_back() -> None:
    limiter = policy.RateLimiter(1.0, 1, Clock())
    assert limiter.reserve() == 0.0
    assert limiter.reserve() == 1.0
    limiter.unreserve()
    assert limiter.reserve() == 1.0


def test_the_table_of_destinations_stays_bounded() -> None:
    clock = Clock()
    destinations = policy.Destinations({"webhook": (5.0, 10)}, clock, keep=100)
    for i in range(1000):
        destinations.limiter("webhook", f"https://h/{i}")
    assert len(destinations.limiters) <= 101
    busy = destinations.limiter("webhook", "busy")
    for _ in range(20):
        busy.reserve()
    for i in range(300):
        destinations.limiter("webhook", f"https://other/{i}")
    assert destinations.limiters[policy.destination_key("webhook", "busy")] is busy


# --- stale ------------------------------------------------------------------------------


def test_stale_is_older_than_the_maximum_age_and_off_at_zero() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    month = 30 * 86400.0
    assert policy.is_stale(now - timedelta(days=31), now, month)
    assert not policy.is_stale(now - timedelta(days=30), now, month)
    assert not policy.is_stale(now - timedelta(days=1), now, month)
    assert not policy.is_stale(now - timedelta(days=3650), now, 0)
