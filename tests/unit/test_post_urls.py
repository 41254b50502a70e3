"""Every public LinkedIn post URL form parses into its URN; anything else is refused."""

from __future__ import annotations

import pytest

from services.ingest.linkedin_posts import NotAPostUrl, post_urn

ID = "7123456789012345678"


@pytest.mark.parametrize(
    ("url", "urn"),
    [
        (f"https://www.linkedin.com/feed/update/urn:li:activity:{ID}/", f"urn:li:activity:{ID}"),
        (f"https://www.linkedin.com/feed/update/urn:li:activity:{ID}", f"urn:li:activity:{ID}"),
        (f"https://www.linkedin.com/feed/update/urn:li:share:{ID}/", f"urn:li:share:{ID}"),
        (f"https://www.linkedin.com/feed/update/urn:li:ugcPost:{ID}/", f"urn:li:ugcPost:{ID}"),
        (
            f"https://www.linkedin.com/feed/update/urn:li:activity:{ID}/?utm_source=share"
            "&utm_medium=member_desktop",
            f"urn:li:activity:{ID}",
        ),
        (
            f"https://www.linkedin.com/feed/update/urn%3Ali%3Aactivity%3A{ID}/",
            f"urn:li:activity:{ID}",
        ),
        (
            f"https://www.linkedin.com/feed/update/urn%3Ali%3AugcPost%3A{ID}?trk=x#c",
            f"urn:li:ugcPost:{ID}",
        ),
        (
            f"https://www.linkedin.com/embed/feed/update/urn:li:share:{ID}",
            f"urn:li:share:{ID}",
        ),
        (
            f"https://www.linkedin.com/posts/jane-doe-1a2b3c_hiring-denmark-activity-{ID}-Xy_z"
            "?utm_source=share&utm_medium=member_ios",
            f"urn:li:activity:{ID}",
        ),
        (
            f"https://www.linkedin.com/posts/jane-doe_we-are-hiring-activity-{ID}-AbCd",
            f"urn:li:activity:{ID}",
        ),
        (
            f"https://dk.linkedin.com/posts/acme_news-ugcPost-{ID}-q9Zk/",
            f"urn:li:ugcPost:{ID}",
        ),
        (f"http://linkedin.com/posts/jane_text-share-{ID}-aa", f"urn:li:share:{ID}"),
    ],
)
def test_post_url_forms(url: str, urn: str) -> None:
    assert post_urn(url) == urn


@pytest.mark.parametrize(
    "url",
    [
        "",
        "not a url",
        f"https://example.com/feed/update/urn:li:activity:{ID}/",
        f"https://linkedin.com.evil.example/feed/update/urn:li:activity:{ID}/",
        f"ftp://www.linkedin.com/feed/update/urn:li:activity:{ID}/",
        "https://www.linkedin.com/feed/",
        "https://www.linkedin.com/in/jane-doe/",
        "https://www.linkedin.com/feed/update/urn:li:person:123/",
        "https://www.linkedin.com/feed/update/urn:li:activity:abc/",
        "https://www.linkedin.com/posts/jane-doe_hiring",
        f"https://www.linkedin.com/feed/update/urn:li:activity:{ID}/\x00",
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(NotAPostUrl):
        post_urn(url)
