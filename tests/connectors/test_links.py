"""Tracked links against the real service, broker and PostgreSQL: creation, the 302 with
UTM parameters and ripples_ref, the visitor cookie, the click event, 404 and the allow-list."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest

from shared.events import LinkClickedEvent, LinkCreatedEvent
from tests.conftest import Running, read_events
from tests.connectors.conftest import AUTH, metric, wait_for

pytestmark = pytest.mark.integration


async def create(http: httpx.AsyncClient, **body: str) -> httpx.Response:
    return await http.post("/v1/links", json=body, headers=AUTH)


async def test_create_link_emits_link_created(http: httpx.AsyncClient, broker: Running) -> None:
    response = await create(
        http,
        target_url="https://careers.example.com/jobs/42?lang=da",
        employee_id="emp-links-1",
        job_id="job-42",
        post_id="urn:li:share:1",
    )
    assert response.status_code == 201, response.text
    body = response.json()
    code = body["link_code"]
    assert len(code) == 12
    assert code.isalnum()
    assert body["url"] == f"http://go.example.com/r/{code}"
    assert response.headers["location"] == body["url"]

    found = await read_events(broker.address, "ripples.links", {f"link-created:{code}"})
    ((key, event),) = found.values()
    assert isinstance(event, LinkCreatedEvent)
    assert key == code.encode()
    assert event.data.target_url == "https://careers.example.com/jobs/42?lang=da"
    assert (event.data.employee_id, event.data.job_id, event.data.post_id) == (
        "emp-links-1",
        "job-42",
        "urn:li:share:1",
    )


async def test_codes_are_unique_and_unguessable(http: httpx.AsyncClient) -> None:
    codes = {
        (await create(http, target_url="https://careers.example.com/")).json()["link_code"]
        for _ in range(20)
    }
    assert len(codes) == 20


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example.net/phish",
        "https://careers.example.com.evil.net/",
        "javascript:alert(1)",
        "https://user:pw@careers.example.com/",
        "https://jobs.example.org/",  # only subdomains of jobs.example.org are allowed
    ],
)
async def test_targets_off_the_allow_list_are_refused(http: httpx.AsyncClient, target: str) -> None:
    response = await create(http, target_url=target)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_subdomain_wildcard_is_allowed(http: httpx.AsyncClient) -> None:
    response = await create(http, target_url="https://dk.jobs.example.org/apply")
    assert response.status_code == 201, response.text


async def test_creating_a_link_needs_the_api_key(http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/links", json={"target_url": "https://careers.example.com/"})
    assert response.status_code == 401


async def test_click_redirects_with_utm_sets_cookie_and_emits_click(
    http: httpx.AsyncClient, broker: Running
) -> None:
    target = "https://careers.example.com/jobs/7?lang=da&utm_source=old"
    code = (await create(http, target_url=target, job_id="job-7", employee_id="emp-2")).json()[
        "link_code"
    ]

    response = await http.get(f"/r/{code}")
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert (location.scheme, location.netloc, location.path) == (
        "https",
        "careers.example.com",
        "/jobs/7",
    )
    assert parse_qs(location.query) == {
        "lang": ["da"],
        "utm_source": ["linkedin"],
        "utm_medium": ["employee_advocacy"],
        "utm_campaign": ["job-7"],
        "utm_content": [code],
        "ripples_ref": [code],
    }
    cookie = response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "max-age", "path", "samesite"} <= attributes
    assert "samesite=lax" in cookie.lower()
    assert "max-age=31536000" in cookie.lower()
    assert "secure" not in attributes  # the public base URL is http here
    visitor = response.cookies["ripples_vid"]
    assert len(visitor) >= 16

    (click,) = await wait_for(
        broker.address,
        "ripples.links",
        lambda e: isinstance(e, LinkClickedEvent) and e.data.link_code == code,
    )
    assert isinstance(click, LinkClickedEvent)
    assert click.data.visitor_id == visitor

    # A returning visitor keeps the cookie: no new one is set, the click carries the old id.
    http.cookies.clear()
    again = await http.get(f"/r/{code}", headers={"Cookie": f"ripples_vid={visitor}"})
    assert again.status_code == 302
    assert "set-cookie" not in again.headers
    clicks = await wait_for(
        broker.address,
        "ripples.links",
        lambda e: isinstance(e, LinkClickedEvent) and e.data.link_code == code,
        count=2,
    )
    assert [c.data.visitor_id for c in clicks if isinstance(c, LinkClickedEvent)] == [
        visitor,
        visitor,
    ]


async def test_a_link_without_job_has_no_campaign(http: httpx.AsyncClient) -> None:
    code = (await create(http, target_url="https://careers.example.com/")).json()["link_code"]
    query = parse_qs(urlsplit((await http.get(f"/r/{code}")).headers["location"]).query)
    assert "utm_campaign" not in query
    assert query["ripples_ref"] == [code]


async def test_unknown_code_is_404(http: httpx.AsyncClient) -> None:
    for code in ("NoSuchCode12", "bad!code", "x"):
        response = await http.get(f"/r/{code}")
        assert response.status_code == 404, code
        assert response.headers["content-type"] == "application/problem+json"


async def test_allow_list_is_enforced_again_at_redirect(
    http: httpx.AsyncClient, ingest_db: str
) -> None:
    # A link whose host is not (or no longer) allowed, e.g. the list was narrowed since.
    conn = await asyncpg.connect(ingest_db)
    await conn.execute(
        "insert into ingest_links (link_code, target_url) values ('Blocked00001', $1)",
        "https://evil.example.net/",
    )
    await conn.close()
    before = metric((await http.get("/metrics")).text, "ingest_redirects_total", outcome="blocked")
    response = await http.get("/r/Blocked00001")
    assert response.status_code == 404
    assert "location" not in response.headers
    after = metric((await http.get("/metrics")).text, "ingest_redirects_total", outcome="blocked")
    assert after == before + 1


async def test_links_are_served_from_the_cache(http: httpx.AsyncClient) -> None:
    code = (await create(http, target_url="https://careers.example.com/")).json()["link_code"]
    before = metric((await http.get("/metrics")).text, "ingest_link_cache_hits_total")
    for _ in range(3):
        assert (await http.get(f"/r/{code}")).status_code == 302
    after = metric((await http.get("/metrics")).text, "ingest_link_cache_hits_total")
    assert after == before + 3


async def test_link_previews_are_redirected_without_cookie_or_click(
    http: httpx.AsyncClient, broker: Running
) -> None:
    code = (await create(http, target_url="https://careers.example.com/")).json()["link_code"]
    before = metric((await http.get("/metrics")).text, "ingest_redirects_total", outcome="preview")
    bot = {"User-Agent": "LinkedInBot/1.0 (compatible; Mozilla/5.0; +http://www.linkedin.com)"}
    response = await http.get(f"/r/{code}", headers=bot)
    assert response.status_code == 302
    assert "ripples_ref=" + code in response.headers["location"]
    assert "set-cookie" not in response.headers
    assert (await http.head(f"/r/{code}")).status_code == 302
    after = metric((await http.get("/metrics")).text, "ingest_redirects_total", outcome="preview")
    assert after == before + 2
    # A real visit afterwards: its click is the only one for this link (same partition).
    visit = await http.get(f"/r/{code}")
    clicks = await wait_for(
        broker.address,
        "ripples.links",
        lambda e: isinstance(e, LinkClickedEvent) and e.data.link_code == code,
    )
    assert [c.data.visitor_id for c in clicks if isinstance(c, LinkClickedEvent)] == [
        visit.cookies["ripples_vid"]
    ]
