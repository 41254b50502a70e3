"""Fixtures of the self-service tests: ingest with the employee's page configured, reading the
employee's figures from the real attribution service (its ``GET
/v1/employees/{employee_id}/ripples``), both on a broker of the module's own (attribution's
consumer group must not share a broker with another module's attribution processes).
"""

from __future__ import annotations

import asyncio
import html
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import (
    API_KEYS,
    AUTH,
    READER_KEY,
    Running,
    free_port,
    fresh_database,
    start_broker,
    start_service,
)
from tests.connectors.conftest import KEY_APIS

PAGE_SECRET = "test-page-secret"
OLD_PAGE_SECRET = "test-page-secret-old"
JOB_URL = "https://careers.example.com/jobs/{job_id}"
ALLOWED_HOSTS = "careers.example.com"
# Attribution's own key list, as a deployment mounts it: the page sends the first key.
ATTRIBUTION_KEY = ",".join(API_KEYS)
FAST = {
    "KAFKA_SESSION_TIMEOUT_S": "6",
    "KAFKA_HEARTBEAT_INTERVAL_S": "1",
    "KAFKA_REBALANCE_TIMEOUT_S": "6",
}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The module's own broker (overrides the session's)."""
    running = start_broker(tmp_path_factory.mktemp("page-broker"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def page_ingest_port() -> int:
    """The port page_ingest listens on, known before it starts: attribution (started first,
    ingest needs its address) asks it for the keys of sealed records."""
    return free_port()


@pytest.fixture(scope="module")
async def page_attribution(
    broker: Running,
    postgres: Running,
    page_ingest_port: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Running]:
    """The real attribution service, with a database of its own."""
    async with fresh_database(postgres, "page_attribution") as url:
        running = start_service(
            "attribution", tmp_path_factory.mktemp("page-attribution"), broker,
            DATABASE_URL=url,
            ATTRIBUTION_INGEST_URL=f"http://127.0.0.1:{page_ingest_port}",
            ATTRIBUTION_INGEST_API_KEY=READER_KEY,
            **FAST,
        )  # fmt: skip
        yield running
        running.stop()


async def my_ripples(
    attribution: str, employee_id: str, until: Any = lambda _: True, timeout_s: float = 45
) -> dict[str, Any]:
    """Attribution's answer of ``GET /v1/employees/{employee_id}/ripples`` once ``until`` holds
    for it (the events reach it through the broker)."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    async with httpx.AsyncClient(base_url=attribution, headers=AUTH, timeout=10) as client:
        while time.monotonic() < deadline:
            response = await client.get(f"/v1/employees/{employee_id}/ripples")
            last = (response.status_code, response.text[:300])
            if response.status_code == 200 and until(body := response.json()):
                return dict(body)
            await asyncio.sleep(0.3)
    pytest.fail(f"attribution's figures of {employee_id} never came: {last}")


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def posted(employee_id: str, impressions: int, days_ago: int = 5) -> list[dict[str, Any]]:
    """An employee's own post (recently: in the route's default 90 days) and its statistics."""
    now = datetime.now(UTC).replace(microsecond=0)
    post = f"urn:li:share:{uuid.uuid4().int % 10**12}"
    published = now - timedelta(days=days_ago)
    return [
        event(
            "post.published",
            {
                "post_id": post,
                "author_kind": "employee",
                "employee_id": employee_id,
                "published_at": stamp(published),
            },
            stamp(published),
        ),
        event(
            "post.metrics",
            {
                "post_id": post,
                "observed_at": stamp(now),
                "impressions": impressions,
                "reactions": 210,
                "comments": 14,
                "reshares": 6,
            },
            stamp(now),
        ),
    ]


@pytest.fixture(scope="module")
async def page_db(postgres: Running) -> AsyncIterator[str]:
    async with fresh_database(postgres, "page") as url:
        yield url


def page_env(attribution_url: str) -> dict[str, str]:
    """The page's settings of ingest (attribution's URL: the real service, or a dead one)."""
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
    page_attribution: Running,
    page_ingest_port: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Running]:
    running = start_service(
        "ingest",
        tmp_path_factory.mktemp("page"),
        broker,
        port=page_ingest_port,
        DATABASE_URL=page_db,
        INGEST_PUBLIC_BASE_URL="http://go.example.com",
        **page_env(page_attribution.address),
    )
    KEY_APIS.add(running.address)  # the records it seals are read opened (wait_for)
    yield running
    KEY_APIS.discard(running.address)
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
