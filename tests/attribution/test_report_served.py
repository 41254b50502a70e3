"""CONTRACT §9 against the attribution API over a real database with data: the period report
in all four formats and both locales, Danish number and date formats, no English on the Danish
page, the PDF read back with poppler's pdftotext, and share links that open without a key and
stop working when expired, tampered with or signed by an unknown secret."""

from __future__ import annotations

import dataclasses
import html
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from services.attribution.api import create_api
from services.attribution.report.links import Link, sign
from tests.attribution import scenario
from tests.attribution.conftest import SETTINGS, envelopes, feed
from tests.conftest import API_KEYS

pytestmark = pytest.mark.integration

KEY = {"Authorization": f"Bearer {API_KEYS[0]}"}
SECRETS = ("report-link-secret-new", "report-link-secret-old")
PERIOD = {"from": "2026-06-01T00:00:00Z", "to": "2026-07-01T00:00:00Z"}
TYPES = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
}
# Words of the English page that must not be left on the Danish one (whole words, any case).
ENGLISH = (
    "the", "and", "of", "with", "per", "post", "posts", "impressions", "applicants", "hires",
    "reach", "company", "sharers", "chance", "week", "weeks", "credit", "spillover",
    "ambassadors", "inspired", "expected", "generated", "how", "sure", "total", "mean", "page",
    "colleagues", "none", "attributed", "estimate", "followers", "top", "name", "computed",
    "lift", "value", "earned", "media", "ratio", "independent",
)  # fmt: skip


@pytest.fixture
async def api(pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    async def get_pool() -> asyncpg.Pool:
        return pool

    async def ready() -> dict[str, bool]:
        return {"database": True, "partitions_assigned": True}

    settings = dataclasses.replace(
        SETTINGS, report_link_secret=SECRETS, public_base_url="http://attribution"
    )
    app = create_api(get_pool, ready, settings)
    await feed(pool, envelopes(scenario.EVENTS))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://attribution") as client:
        yield client


async def served(api: httpx.AsyncClient, **query: str) -> httpx.Response:
    response = await api.get("/v1/report", params=PERIOD | query, headers=KEY)
    assert response.status_code == 200, response.text
    return response


def visible_text(page: str) -> str:
    """What a reader sees of an HTML page: no style sheet, no tags, entities decoded."""
    page = re.sub(r"<style>.*?</style>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def danish(value: float, decimals: int) -> str:
    english = f"{value:,.{decimals}f}"
    return english.replace(",", "_").replace(".", ",").replace("_", ".")


async def test_every_format_in_both_locales(api: httpx.AsyncClient) -> None:
    for locale, title in (("en", "Ripples report"), ("da", "Ripples-rapport")):
        for fmt, media_type in TYPES.items():
            response = await served(api, locale=locale, format=fmt)
            assert response.headers["content-type"] == media_type, (locale, fmt)
            assert response.headers["content-language"] == locale
            body = response.content
            if fmt == "pdf":
                assert body.startswith(b"%PDF-")
                continue
            text = body.decode("utf-8")
            if fmt == "html":
                assert text.startswith(f"<!doctype html><html lang='{locale}'>")
                assert f"<title>{title}: " in text
                assert text.count("<svg") >= 8  # rings, reach, credit and weekly charts
                assert not re.search(r"<(script|link|img)\b", text), "self-contained"
            elif fmt == "md":
                assert text.startswith(f"# {title}: ")
            else:
                header = "section,figure,value" if locale == "en" else "afsnit,nøgletal,værdi"
                assert text.splitlines()[0] == header
    default = await api.get("/v1/report", params=PERIOD, headers=KEY)
    assert default.headers["content-type"] == TYPES["html"]  # format default html
    assert default.headers["content-language"] == "en"  # locale default en


async def test_numbers_and_dates_follow_the_locale(api: httpx.AsyncClient) -> None:
    summary = (await api.get("/v1/summary", params=PERIOD, headers=KEY)).json()
    emv = summary["emv"]["value"]
    assert emv >= 1000, "the scenario's earned media value shows the thousands separator"
    csv_da = (await served(api, locale="da", format="csv")).text
    csv_en = (await served(api, locale="en", format="csv")).text
    assert f'værdi,Optjent medieværdi,"{danish(emv, 2)} DKK"' in csv_da  # e.g. 2.491,00
    assert f'value,Earned media value,"{emv:,.2f} DKK"' in csv_en  # e.g. 2,491.00
    page_da = (await served(api, locale="da")).text
    page_en = (await served(api, locale="en")).text
    assert "1. juni 2026 til 1. juli 2026" in page_da
    assert "June 1, 2026 to July 1, 2026" in page_en
    ratio = summary["reach_ratio"]
    assert f"<b>{danish(ratio, 1)}×</b>" in page_da
    assert f"<b>{ratio:,.1f}×</b>" in page_en


async def test_no_english_left_on_the_danish_page(api: httpx.AsyncClient) -> None:
    text = visible_text((await served(api, locale="da")).text)
    found = sorted({w for w in ENGLISH if re.search(rf"\b{w}\b", text, re.I)})
    assert found == [], f"English words on the Danish page: {found}"
    english = visible_text((await served(api, locale="en")).text)
    assert {"reach", "applicants", "company"} <= {w.lower() for w in re.findall(r"\w+", english)}


async def test_the_pdf_reads_back_with_its_title_period_and_headline_figures(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    pdftotext = shutil.which("pdftotext")
    assert pdftotext, "pdftotext missing: run 'make tools' (installs poppler-utils)"
    summary = (await api.get("/v1/summary", params=PERIOD, headers=KEY)).json()
    expected = {
        "da": (
            "Hvad medarbejdernes deling gav",
            "1. juni 2026 til 1. juli 2026",
            f"{danish(summary['reach_ratio'], 1)}×",
            f"af {summary['applicants']['total']} ansøgere",
            danish(summary["emv"]["value"], 0),
        ),
        "en": (
            "What employee advocacy brought",
            "June 1, 2026 to July 1, 2026",
            f"{summary['reach_ratio']:,.1f}×",
            f"of {summary['applicants']['total']} applicants",
            f"{summary['emv']['value']:,.0f}",
        ),
    }
    for locale, needles in expected.items():
        pdf = tmp_path / f"report.{locale}.pdf"
        pdf.write_bytes((await served(api, locale=locale, format="pdf")).content)
        out = subprocess.run(
            [pdftotext, str(pdf), "-"], capture_output=True, text=True, check=True, timeout=60
        ).stdout
        flat = " ".join(out.split())
        for needle in needles:
            assert needle in flat, (locale, needle)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("locale=fr", "locale"),
        ("locale=", "locale"),
        ("format=docx", "format"),
        ("format=text", "format"),
        ("model=nope", "model"),
        ("from=2026-07-01T00:00:00Z&to=2026-06-01T00:00:00Z", "to"),
    ],
)
async def test_bad_parameters_are_422_naming_them(
    api: httpx.AsyncClient, query: str, field: str
) -> None:
    response = await api.get(f"/v1/report?{query}", headers=KEY)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def link(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await api.post("/v1/report/links", json=PERIOD | body, headers=KEY)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_a_share_link_opens_without_a_key(api: httpx.AsyncClient) -> None:
    before = datetime.now(UTC)
    made = await link(api, locale="da", model="linear", expires_in_s=3600)
    assert made["url"].startswith("http://attribution/reports/")
    expires = datetime.fromisoformat(made["expires_at"])
    assert before + timedelta(seconds=3590) <= expires <= before + timedelta(seconds=3610)
    opened = await api.get(made["url"])  # no Authorization header
    assert opened.status_code == 200
    assert opened.headers["content-type"] == TYPES["html"]
    assert opened.headers["cache-control"] == "no-store"
    assert opened.headers["referrer-policy"] == "no-referrer"
    page = opened.text
    assert page.startswith("<!doctype html><html lang='da'>")
    assert "1. juni 2026 til 1. juli 2026" in page
    assert "krediteringsmodel lineær" in page


async def test_expired_tampered_and_unknown_links_are_403_pages(api: httpx.AsyncClient) -> None:
    made = await link(api, locale="da")
    token = made["url"].rsplit("/", 1)[1]
    payload, signature = token.split(".")
    period = (datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC))
    past = datetime.now(UTC) - timedelta(seconds=1)
    future = datetime.now(UTC) + timedelta(hours=1)
    expired = sign(Link(*period, "last_touch", "da", past), SECRETS[0])
    unknown = sign(Link(*period, "last_touch", "en", future), "not-our-secret")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    cases = {
        expired: ("da", "Dette rapportlink er udløbet"),
        f"{payload}.{flipped}": ("da", "Dette rapportlink er ikke gyldigt"),
        f"{payload[:-2]}.{signature}": ("en", "This report link is not valid"),
        unknown: ("en", "This report link is not valid"),
        "not-a-token": ("en", "This report link is not valid"),
    }
    for bad, (locale, heading) in cases.items():
        response = await api.get(f"/reports/{bad}")
        assert response.status_code == 403, bad
        assert response.headers["content-type"] == TYPES["html"]
        assert f"<html lang='{locale}'>" in response.text
        assert f"<h1>{heading}</h1>" in response.text
    # the same link signed by the older secret still opens (rotation)
    rotated = sign(Link(*period, "last_touch", "en", future), SECRETS[1])
    assert (await api.get(f"/reports/{rotated}")).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expires_in_s": 5}, "expires_in_s"),
        ({"expires_in_s": "3600"}, "expires_in_s"),
        ({"expires_in_s": True}, "expires_in_s"),
        ({"locale": "fr"}, "locale"),
        ({"model": 3}, "model"),
        ({"from": "yesterday"}, "from"),
    ],
)
async def test_bad_link_requests_are_422_naming_the_field(
    api: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await api.post("/v1/report/links", json=body, headers=KEY)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_the_ripple_graph_shows_who_inspired_whom_with_names_only_where_allowed(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    # Dina (d1, ring 3) leaves: her name is erased; the graph keeps her place, shown as "—".
    await feed(
        pool,
        envelopes([scenario.ev("employee.removed", "2026-06-20T00:00:00Z", {"employee_id": "d1"})]),
    )
    for locale, heading in (("en", "Who inspired whom"), ("da", "Hvem inspirerede hvem")):
        page = (await served(api, locale=locale)).text
        found = re.search(r'<svg class="chart graph".*?</svg>', page, re.S)
        assert found, "the ripple graph is drawn"
        svg = found.group(0)
        assert heading in page
        for column in ("ring 1", "ring 2", "ring 3"):
            assert f">{column}</text>" in svg
        names = re.findall(r'class="nodelabel">([^<]*)<', svg)
        assert sorted(names) == sorted(["Anna", "Bo", "Carl", "Gry", "—"]), names
        assert "d1" not in svg
        assert "Dina" not in svg
        assert "ap1" not in svg
        assert svg.count("<line") >= 4  # amb1→c1, c1→d1, amb2→g1, c1→g1
        assert 'stroke-dasharray="5 3"' in svg  # Gry's engagements look unlike the reshares
        # the same data gives the same picture
        again = (await served(api, locale=locale)).text
        assert svg in again
