"""Fixtures of the self-service tests: ingest with the employee's page configured, and a local
stand-in for attribution's "my ripples" route.

The stand-in answers ``GET /v1/employees/{employee_id}/ripples`` with exactly the shape the
lead fixed in TEAM.md ("My ripples figures", branch ``myripples``): once that branch is merged,
:func:`attribution_figures` must give way to the real attribution service
(tests/selfservice/test_page.py::test_the_page_shows_my_figures_from_attribution).
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import API_KEYS, AUTH, Running, fresh_database, start_service
from tests.connectors.conftest import VendorServer

PAGE_SECRET = "test-page-secret"
OLD_PAGE_SECRET = "test-page-secret-old"
ATTRIBUTION_KEY = "test-attribution-key"
JOB_URL = "https://careers.example.com/jobs/{job_id}"
ALLOWED_HOSTS = "careers.example.com"

FIGURES: dict[str, dict[str, Any]] = {}
"""What the stand-in answers per employee; an employee missing here is a 404 problem."""


def figures(employee_id: str) -> dict[str, Any]:
    """An answer of the documented shape: counts only, never another person's id or name."""
    return {
        "employee_id": employee_id,
        "from": "2026-09-02T00:00:00Z",
        "to": "2026-12-01T00:00:00Z",
        "posts": [
            {
                "post_id": "urn:li:share:7001",
                "published_at": "2026-10-05T08:00:00Z",
                "origin": "own",
                "impressions": 12345,
                "reactions": 210,
                "comments": 14,
                "reshares": 6,
            }
        ],
        "inspired": {"total": 3, "by_ring": {"1": 2, "2": 1}},
        "applicants": {"attributed": 4, "credit": 2.5},
        "hires": {"attributed": 1, "credit": 0.75},
        "reach": {"impressions": 23456, "emv": 1234.5},
    }


def attribution_figures(
    _: str, path: str, __: Any, headers: dict[str, str]
) -> tuple[int, dict[str, str], Any]:
    if headers.get("authorization") != f"Bearer {ATTRIBUTION_KEY}":
        return 401, {}, {"title": "Unauthorized", "status": 401}
    match = re.fullmatch(r"/v1/employees/([^/]+)/ripples", path)
    if match is None or match.group(1) not in FIGURES:
        return 404, {}, {"title": "Not found", "status": 404}
    return 200, {}, FIGURES[match.group(1)]


@pytest.fixture(scope="module")
def attribution_stand_in() -> Iterator[VendorServer]:
    server = VendorServer(attribution_figures)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def page_db(postgres: Running) -> AsyncIterator[str]:
    async with fresh_database(postgres, "page") as url:
        yield url


def page_env(attribution_url: str) -> dict[str, str]:
    return {
        "INGEST_PAGE_LINK_SECRETS": f"{PAGE_SECRET},{OLD_PAGE_SECRET}",
        "INGEST_ATTRIBUTION_URL": attribution_url,
        "INGEST_ATTRIBUTION_API_KEY": ATTRIBUTION_KEY,
        "INGEST_ATTRIBUTION_TIMEOUT_S": "2",
        "INGEST_JOB_URL_TEMPLATE": JOB_URL,
        "INGEST_LINK_ALLOWED_HOSTS": ALLOWED_HOSTS,
    }


@pytest.fixture(scope="module")
def page_ingest(
    broker: Running,
    page_db: str,
    attribution_stand_in: VendorServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Running]:
    running = start_service(
        "ingest",
        tmp_path_factory.mktemp("page"),
        broker,
        DATABASE_URL=page_db,
        INGEST_PUBLIC_BASE_URL="http://go.example.com",
        **page_env(attribution_stand_in.address),
    )
    yield running
    running.stop()


@pytest.fixture
async def http(page_ingest: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=page_ingest.address, timeout=15) as client:
        yield client


def event(kind: str, data: dict[str, Any], time: str = "2026-06-01T08:00:00Z") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"test-{uuid.uuid4()}",
        "source": "urn:test:hr",
        "type": f"ripples.{kind}.v1",
        "time": time,
        "data": data,
    }


async def send(client: httpx.AsyncClient, *events: dict[str, Any]) -> None:
    response = await client.post(
        "/v1/events:batch",
        content=orjson.dumps(list(events)),
        headers={**AUTH, "Content-Type": "application/cloudevents-batch+json"},
    )
    assert response.status_code == 202, response.text


async def hr_employee(
    client: httpx.AsyncClient,
    name: str,
    locale: str = "da",
    time: str = "2026-06-01T08:00:00Z",
    employee_id: str | None = None,
    **extra: Any,
) -> str:
    employee_id = employee_id or f"emp-{uuid.uuid4().hex[:10]}"
    data = {"employee_id": employee_id, "display_name": name, "locale": locale, **extra}
    await send(client, event("employee.upserted", data, time))
    return employee_id


async def page_link(client: httpx.AsyncClient, employee_id: str) -> tuple[str, datetime]:
    response = await client.post(f"/v1/employees/{employee_id}/page-links", headers=AUTH)
    assert response.status_code == 201, response.text
    body = response.json()
    return body["url"], datetime.fromisoformat(body["expires_at"])


FIGURE = re.compile(r'<dd class="figure">([^<]*)</dd>')
RING = re.compile(r"<li>([^<:]+: [^<]*)</li>")


def shown_figures(page: str) -> list[str]:
    """The figure cards of an employee's page (reach, inspired, applicants, hires, EMV) and
    its ring lines, as a person reads them."""
    return [html.unescape(v) for v in FIGURE.findall(page) + RING.findall(page)]


def expected_figures(answer: dict[str, Any], locale: str) -> list[str]:
    """What the page must show for attribution's answer of GET /v1/employees/{id}/ripples:
    its counts in the employee's language (Babel's digits, as services/ingest/page does)."""
    from services.ingest.page.templates import number
    from services.ingest.page.texts import TEXTS

    t = TEXTS[locale]

    def n(value: float, decimals: int = 0) -> str:
        return number(value, locale, decimals)

    def credited(part: dict[str, Any]) -> str:
        return f"{n(part['attributed'])} ({t['credit'].format(credit=n(part['credit'], 2))})"

    rings = sorted(answer["inspired"]["by_ring"].items(), key=lambda kv: int(kv[0]))
    return [
        n(answer["reach"]["impressions"]),
        n(answer["inspired"]["total"]),
        credited(answer["applicants"]),
        credited(answer["hires"]),
        n(answer["reach"]["emv"], 2),
        *(f"{t['ring'].format(ring=ring)}: {n(count)}" for ring, count in rings),
    ]


FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


def form_token(html: str) -> str:
    match = FORM_TOKEN.search(html)
    assert match is not None, html
    return match.group(1)


__all__ = ["API_KEYS", "AUTH"]
