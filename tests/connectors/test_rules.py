"""The connectors' pure rules, with hand-computed examples (no I/O)."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from services.ingest import ats, linkedin, links
from services.ingest.app import hot_route
from services.ingest.directory import work_emails

# The well-known HMAC-SHA256 test vector: key "key", message "The quick brown fox …".
FOX = b"The quick brown fox jumps over the lazy dog"
FOX_HMAC = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"


def test_greenhouse_signature() -> None:
    assert ats.verify_greenhouse("key", FOX, f"sha256 {FOX_HMAC}")
    assert not ats.verify_greenhouse("key", FOX + b".", f"sha256 {FOX_HMAC}")
    assert not ats.verify_greenhouse("key", FOX, f"sha1 {FOX_HMAC}")
    assert not ats.verify_greenhouse("key", FOX, None)
    assert not ats.verify_greenhouse("", FOX, "sha256 " + "0" * 64)  # no secret: refuse all


def test_teamtailor_signature_is_base64_of_the_hex_digest() -> None:
    signature = base64.b64encode(FOX_HMAC.encode()).decode()
    assert signature.startswith("ZjdiYzgz")  # base64 of "f7bc83"
    assert ats.verify_teamtailor("key", FOX, signature)
    assert not ats.verify_teamtailor("key", FOX, FOX_HMAC)
    assert not ats.verify_teamtailor("key", FOX, None)


def test_lever_signature_covers_token_and_triggered_at() -> None:
    # "The quick brown fox " + "jumps over the lazy dog" split as token + triggeredAt.
    assert ats.verify_lever("key", "The quick brown fox ", "jumps over the lazy dog", FOX_HMAC)
    assert not ats.verify_lever("key", "The quick brown fox", "jumps over the lazy dog", FOX_HMAC)


def test_linkedin_challenge_and_signature() -> None:
    assert linkedin.challenge_response("key", FOX.decode()) == FOX_HMAC
    assert linkedin.verify_signature("key", FOX, FOX_HMAC)
    assert linkedin.verify_signature("key", FOX, "hmacsha256=" + FOX_HMAC)
    assert not linkedin.verify_signature("key", FOX, "hmacsha256=" + "0" * 64)
    assert not linkedin.verify_signature("", FOX, FOX_HMAC)


def test_pseudonym_is_keyed_per_vendor_and_stable() -> None:
    a = ats.pseudonym("s", "greenhouse", "42")
    assert a == ats.pseudonym("s", "greenhouse", "42")
    assert a.startswith("apl_")
    assert len(a) == 36
    assert a != ats.pseudonym("s", "lever", "42")
    assert a != ats.pseudonym("t", "greenhouse", "42")


def test_tagged_target_adds_utm_and_keeps_other_parameters() -> None:
    url = links.tagged_target(
        "https://c.example.com/jobs/7?lang=da&utm_source=x#apply", "Ab3", "j-7"
    )
    parts = urlsplit(url)
    assert parts.fragment == "apply"
    assert parse_qs(parts.query) == {
        "lang": ["da"],
        "utm_source": ["linkedin"],
        "utm_medium": ["employee_advocacy"],
        "utm_campaign": ["j-7"],
        "utm_content": ["Ab3"],
        "ripples_ref": ["Ab3"],
    }
    assert "utm_campaign" not in links.tagged_target("https://c.example.com/", "Ab3", None)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://careers.example.com/x", True),
        ("http://careers.example.com", True),
        ("https://CAREERS.example.com/x", True),
        ("https://a.jobs.example.org/", True),
        ("https://jobs.example.org/", False),
        ("https://evil.com/?careers.example.com", False),
        ("https://careers.example.com@evil.com/", False),
        ("ftp://careers.example.com/", False),
        ("https://xjobs.example.org/", False),
        ("not a url", False),
        ("https://evil.com\\.a.jobs.example.org/", False),  # a browser goes to evil.com
        ("https://careers.example.com/\\x", False),
        ("https://x@careers.example.com/", False),
        ("https://careers.example.com/\x01", False),
        ("https://careers.example.com./", True),
        ("https://xn--bcher-kva.jobs.example.org/", True),
        ("https://bücher.jobs.example.org/", True),
        ("https://xn--zz.jobs.example.org/", False),  # not a valid A-label
        ("https://care_ers.example.com/", False),
    ],
)
def test_host_allow_list(url: str, allowed: bool) -> None:
    assert links.host_allowed(url, ("careers.example.com", "*.jobs.example.org")) is allowed


def test_codes_and_visitor_ids() -> None:
    code = links.new_code(12)
    assert len(code) == 12
    assert links.CODE.match(code)
    assert links.valid_visitor_id(links.new_visitor_id())
    assert links.valid_visitor_id("short") is None
    assert links.valid_visitor_id("x" * 20 + ";drop") is None
    assert links.valid_visitor_id(None) is None


def test_buffered_random_ids_have_the_unbuffered_shape_and_never_repeat() -> None:
    random = links.RandomBytes(chunk=40)  # a refill every 2.5 ids: crosses the boundary
    visitors = [random.visitor_id() for _ in range(50)]
    ids = [random.uuid4() for _ in range(50)]
    assert all(
        links.valid_visitor_id(v) and len(v) == len(links.new_visitor_id()) for v in visitors
    )
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)
    assert len(set(visitors)) == 50
    assert len(set(ids)) == 50
    assert [len(random.take(n)) for n in (1, 39, 40, 100)] == [1, 39, 40, 100]


def test_link_cache_evicts_the_least_recently_used() -> None:
    cache = links.LinkCache(2)
    for code in ("a", "b"):
        cache.put(links.Link(code, "https://x/"))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put(links.Link("c", "https://x/"))
    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert len(cache) == 2


def test_refs_from_url() -> None:
    url = "https://c.example.com/apply?ripples_ref=Ab3xY9&ripples_vid=abcdefghijklmnop1234"
    assert ats.refs_from_url(url) == ("Ab3xY9", "abcdefghijklmnop1234")
    assert ats.refs_from_url("https://c.example.com/?ripples_ref=bad%20ref&ripples_vid=x") == (
        None,
        None,
    )
    assert ats.refs_from_url(None) == (None, None)


def test_greenhouse_mapping_drops_personal_data() -> None:
    document = {
        "action": "new_candidate_application",
        "payload": {
            "application": {
                "applied_at": "2026-06-05T12:00:00Z",
                "jobs": [{"id": 9}],
                "candidate": {"id": 5, "first_name": "Ada", "email_addresses": ["a@x"]},
                "credited_to": {"email": "ref@x", "employee_id": "E1"},
                "source": {"public_name": "Referral"},
            }
        },
    }
    delivery = ats.greenhouse(document, "ev-1", b"", datetime(2026, 1, 1, tzinfo=UTC))
    (change,) = delivery.changes
    assert isinstance(change, ats.Applied)
    assert (change.candidate_id, change.job_id, change.source) == ("5", "9", "Referral")
    assert (change.referrer_employee_id, change.referrer_email) == ("E1", "ref@x")
    (event,) = ats.to_events(
        "greenhouse",
        ats.Delivery("ev-1", [ats.Applied("5", "9", change.applied_at)]),
        "s",
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert event.id == "ev-1:0"
    assert "Ada" not in repr(event)


def test_greenhouse_prospects_are_not_applications() -> None:
    document = {
        "action": "new_candidate_application",
        "payload": {"application": {"id": 1, "prospect": True, "jobs": []}},
    }
    assert ats.greenhouse(document, "e", b"", datetime(2026, 1, 1, tzinfo=UTC)).changes == []


def test_greenhouse_without_jobs_is_invalid() -> None:
    document = {"action": "new_candidate_application", "payload": {"application": {"id": 1}}}
    with pytest.raises(ats.Invalid):
        ats.greenhouse(document, "e", b"", datetime(2026, 1, 1, tzinfo=UTC))


def test_linkedin_notifications_and_statistics() -> None:
    document = {
        "notifications": [
            {
                "action": "SHARE",
                "sourcePost": "urn:li:share:1",
                "lastModifiedAt": 1780000000000,
                "notificationId": 7,
                "decoratedGeneratedActivity": {
                    "share": {"entity": "urn:li:share:2", "owner": "urn:li:person:p"}
                },
            },
            {"action": "SHARE_MENTION", "sourcePost": "urn:li:share:1", "notificationId": 8},
        ]
    }
    (n,) = linkedin.notifications(document)
    assert (n.notification_id, n.action, n.actor_urn, n.share_id) == (
        "7",
        "reshare",
        "urn:li:person:p",
        "urn:li:share:2",
    )
    assert n.at == datetime(2026, 5, 28, 20, 26, 40, tzinfo=UTC)
    stats = linkedin.metrics_from_share_statistics(
        {
            "elements": [
                {
                    "share": "urn:li:share:1",
                    "totalShareStatistics": {"impressionCount": 10, "clickCount": 2},
                }
            ]
        }
    )
    assert stats == {"urn:li:share:1": {"impressions": 10, "clicks": 2}}
    assert linkedin.metrics_from_member_analytics("IMPRESSION", {"elements": [{"count": 5}]}) == {
        "impressions": 5
    }


def test_work_email_is_read_from_every_content_mode() -> None:
    one = b'{"type":"ripples.employee.upserted.v1","data":{"employee_id":"e","work_email":"a@x"}}'
    assert work_emails(one, "structured", {}) == {"e": "a@x"}
    assert work_emails(b"[" + one + b"]", "batch", {}) == {"e": "a@x"}
    binary = b'{"employee_id":"e","work_email":"a@x"}'
    assert work_emails(binary, "binary", {"ce-type": "ripples.employee.upserted.v1"}) == {
        "e": "a@x"
    }
    assert work_emails(b"junk", "structured", {}) == {}


@pytest.mark.parametrize(
    ("method", "agent", "preview"),
    [
        (
            "GET",
            "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
            True,
        ),
        ("GET", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", True),
        ("GET", "facebookexternalhit/1.1", True),
        ("HEAD", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0", True),
        ("GET", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0", False),
        ("GET", None, False),
    ],
)
def test_link_previews_are_recognised(method: str, agent: str | None, preview: bool) -> None:
    assert links.is_preview(method, agent) is preview


@pytest.mark.parametrize(
    ("method", "path", "hot"),
    [
        ("POST", "/v1/events", ("/v1/events", {})),
        ("POST", "/v1/events:batch", ("/v1/events:batch", {})),
        ("GET", "/r/aB3xY9", ("/r/{link_code}", {"link_code": "aB3xY9"})),
        ("HEAD", "/r/aB3xY9", ("/r/{link_code}", {"link_code": "aB3xY9"})),
        # everything else goes to Starlette (405s, 404s, the other routes)
        ("GET", "/v1/events", None),
        ("POST", "/r/aB3xY9", None),
        ("GET", "/r/", None),
        ("GET", "/r/a/b", None),
        ("POST", "/v1/events/", None),
        ("POST", "/v1/links", None),
        ("GET", "/metrics", None),
    ],
)
def test_only_the_hot_routes_skip_starlette(
    method: str, path: str, hot: tuple[str, dict[str, str]] | None
) -> None:
    assert hot_route(method, path) == hot
