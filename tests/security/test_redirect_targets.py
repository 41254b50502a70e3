"""Attacks on the link redirector's targets, against the real ingest.

The allow-list must compare the host a browser goes to. Browsers parse URLs by the WHATWG URL
Standard (https://url.spec.whatwg.org/#host-parsing): for http(s) a backslash is a path
separator, so ``https://evil.com\\.example.com/`` goes to ``evil.com`` while Python's
``urlsplit`` sees one host ``evil.com\\.example.com`` ending in ``.example.com``; userinfo
(``user@``) hides the real host; tabs and newlines are removed before parsing. So a target
with a backslash, userinfo or a control character is refused, and so is a host that is not a
valid IDNA/ASCII host name or an IP literal; the allow-list compares the normalised host.
"""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from tests.connectors.conftest import AUTH

pytestmark = pytest.mark.integration

# The connectors' ingest allows careers.example.com and *.jobs.example.org.
REFUSED = [
    "https://evil.com\\.careers.example.com/",  # browser: evil.com
    "https://evil.com\\.dk.jobs.example.org/apply",
    "https://careers.example.com\\@evil.com/",
    "https://careers.example.com/jobs\\7",  # a backslash anywhere
    "https://user@careers.example.com/",  # userinfo
    "https://:@careers.example.com/",
    "https://careers.example.com@dk.jobs.example.org/",
    "https://careers.exa\x00mple.com/",  # control characters
    "https://careers.example.com/\x7f",
    "https://careers.example.com/a\x1bb",
    "https://careers.example.com%2f.evil.com/",  # percent-encoded host
    "https://careers_example.com/",  # not a host name
    "https://-careers.example.com/",
    "https://careers.example.com:99999/",  # not a port
    "https://[::1/",
]


@pytest.mark.parametrize("target", REFUSED)
async def test_refused_at_creation(http: httpx.AsyncClient, target: str) -> None:
    """Before: ``https://evil.com\\.careers.example.com/`` got 201 (a redirect to evil.com)."""
    response = await http.post("/v1/links", json={"target_url": target}, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "target_url" in {e["field"] for e in response.json()["errors"]}


@pytest.mark.parametrize(
    "target",
    [
        "https://CAREERS.Example.COM/jobs/7",  # normalised: lower case
        "https://careers.example.com./jobs/7",  # the trailing root dot
        "https://dk.jobs.example.org/apply?x=1#top",
        "https://xn--bcher-kva.jobs.example.org/",  # an A-label
        "https://bücher.jobs.example.org/",  # a U-label, compared as its A-label
    ],
)
async def test_valid_targets_still_work(http: httpx.AsyncClient, target: str) -> None:
    response = await http.post("/v1/links", json={"target_url": target}, headers=AUTH)
    assert response.status_code == 201, response.text
    redirect = await http.get(f"/r/{response.json()['link_code']}")
    assert redirect.status_code == 302


@pytest.mark.parametrize(
    ("code", "target"),
    [
        ("Backslash001", "https://evil.com\\.careers.example.com/"),
        ("Userinfo0001", "https://careers.example.com@evil.com/"),
        ("Userinfo0002", "https://x@careers.example.com/"),
        ("Control00001", "https://careers.example.com/\x01"),
    ],
)
async def test_a_stored_link_with_a_refused_target_never_redirects(
    http: httpx.AsyncClient, ingest_db: str, code: str, target: str
) -> None:
    """A link stored before these checks (or written around the API) whose target is now
    refused: the redirector answers 404 problem+json (the same as a link whose host left the
    allow-list), never a redirect."""
    conn = await asyncpg.connect(ingest_db)
    await conn.execute(
        "insert into ingest_links (link_code, target_url) values ($1, $2)"
        " on conflict (link_code) do nothing",
        code,
        target,
    )
    await conn.close()
    for method in ("GET", "HEAD"):
        response = await http.request(method, f"/r/{code}")
        assert response.status_code == 404, (method, response.text)
        assert "location" not in response.headers
        if method == "GET":
            assert response.headers["content-type"] == "application/problem+json"
