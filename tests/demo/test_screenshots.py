"""The served report looked at as a person would (issue 17 part 9): the demo pilot fed into a
real database, the report served by the attribution API in both locales and as a PDF, then
headless Chromium's screenshots and pdftoppm's pages checked for what a reader must see —
the PDF's text (pdftotext) has the title, the period and the headline figures with their
intervals; the pictures are real pictures (size, many colours, the charts' colours drawn).
No pixel comparison. RIPPLES_WRITE_SCREENSHOTS=docs/images writes the pictures the README
shows (python -m ripples.demo.screenshots does the same from a `make demo` stack)."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from PIL import Image

from ripples.demo import scenario, screenshots
from ripples.demo.player import Player, _event, _stamp
from services.attribution.api import create_api
from services.attribution.report.render import Words
from tests.attribution.conftest import SETTINGS, envelopes, feed, pool  # noqa: F401
from tests.conftest import API_KEYS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        screenshots.chromium() is None or shutil.which("pdftoppm") is None,
        reason="chromium or poppler-utils missing: run 'make tools' as root",
    ),
]

KEY = {"Authorization": f"Bearer {API_KEYS[0]}"}
RUN = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)


def pilot_events(pilot: scenario.Scenario) -> list[dict[str, Any]]:
    """The pilot as events: what the player sends, plus the links, clicks and applications it
    plays through ingest's routes and the ATS webhooks (here at the times a run gives them)."""
    events = Player("http://ingest", API_KEYS[0], {}, "http://sink").events(pilot)
    for link in pilot.links:
        data = {"link_code": link.key, "target_url": f"https://jobs.example/{link.job}"}
        data |= {"job_id": link.job} | ({"employee_id": link.employee} if link.employee else {})
        events.append(_event("link.created", f"l-{link.key}", pilot.start, data))
    clicks = [(c.link, c.visitor, RUN - timedelta(minutes=30)) for c in pilot.clicks]
    for i, (link, visitor, at) in enumerate(clicks + pilot.imported_clicks):
        data = {"link_code": link, "visitor_id": visitor, "at": _stamp(at)}
        events.append(_event("link.clicked", f"c-{i}", at, data))
    for a in pilot.applications:
        applied = a.applied_at or RUN
        data = {"applicant_id": a.candidate, "job_id": a.job, "applied_at": _stamp(applied)}
        data |= {"visitor_id": a.visitor} if a.visitor else {}
        data |= {"link_code": a.ref} if a.ref else {}
        data |= {"referrer_employee_id": a.referrer} if a.referrer else {}
        events.append(_event("applicant.applied", f"a-{a.candidate}", applied, data))
        hired = a.hired_at(applied)
        if hired is not None:
            data = {"applicant_id": a.candidate, "job_id": a.job, "hired_at": _stamp(hired)}
            events.append(_event("applicant.hired", f"h-{a.candidate}", hired, data))
    return events


@pytest.fixture
async def served(pool: asyncpg.Pool) -> dict[str, bytes]:  # noqa: F811
    pilot = scenario.generate(7, now=RUN)
    await feed(pool, envelopes(sorted(pilot_events(pilot), key=lambda e: e["time"])))

    async def get_pool() -> asyncpg.Pool:
        return pool

    async def ready() -> dict[str, bool]:
        return {"database": True, "partitions_assigned": True}

    app = create_api(get_pool, ready, dataclasses.replace(SETTINGS))
    period = {"from": _stamp(pilot.start), "to": _stamp(pilot.end)}
    out: dict[str, bytes] = {"start": pilot.start.isoformat().encode()}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://attribution") as client:
        for locale, fmt in (("en", "html"), ("da", "html"), ("da", "pdf"), ("en", "pdf")):
            response = await client.get(
                "/v1/report", params=period | {"locale": locale, "format": fmt}, headers=KEY
            )
            assert response.status_code == 200, response.text
            out[f"{locale}.{fmt}"] = response.content
        summary = await client.get("/v1/summary", params=period, headers=KEY)
        out["summary"] = summary.content
    return out


def colours(path: Path) -> int:
    image = Image.open(path).convert("RGB")
    return len(image.getcolors(1 << 20) or [])


def has_colour(path: Path, rgb: tuple[int, int, int], tolerance: int = 24) -> bool:
    image = Image.open(path).convert("RGB")
    return any(
        all(abs(a - b) <= tolerance for a, b in zip(pixel, rgb, strict=True))
        for _, pixel in image.getcolors(1 << 20) or []
    )


def pdf_text(pdf: bytes, tmp: Path) -> str:
    path = tmp / "r.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


async def test_a_reader_sees_title_period_figures_and_charts(
    served: dict[str, bytes], tmp_path: Path
) -> None:
    import orjson

    summary = orjson.loads(served["summary"])
    ratio, interval = summary["reach_ratio"], summary["uncertainty"]["reach_ratio"]
    out = Path(os.environ.get("RIPPLES_WRITE_SCREENSHOTS") or tmp_path / "images")
    shots = screenshots.take(
        {"en": served["en.html"], "da": served["da.html"]}, served["da.pdf"], out
    )
    names = sorted(p.name for p in shots)
    assert names[:2] == ["report-da.png", "report-en.png"]
    assert "report-pdf-1.png" in names
    for shot in shots:
        size = shot.stat().st_size
        assert 20_000 < size < screenshots.MAX_BYTES, (shot.name, size)  # a picture, and small
        assert colours(shot) >= 16, shot.name  # not a blank or one-colour page
    for locale in ("en", "da"):
        shot = out / f"report-{locale}.png"
        # the charts are drawn: the ambassadors' blue and the spillover green of the bars
        assert has_colour(shot, (0x1F, 0x6F, 0xB2)), shot.name
        assert has_colour(shot, (0x2E, 0xAF, 0x7D)), shot.name
    assert has_colour(out / "report-pdf-1.png", (0x1F, 0x6F, 0xB2))
    for locale, title, words in (
        ("da", "Ripples-rapport", ("Rækkeviddeforhold", "Hvem inspirerede hvem")),
        ("en", "Ripples report", ("Reach ratio", "Who inspired whom")),
    ):
        text = re.sub(r"\s+", " ", pdf_text(served[f"{locale}.pdf"], tmp_path))
        assert title in text
        for word in words:
            assert word.lower() in text.lower(), (locale, word)
        if locale == "da":
            figure = f"{ratio:.1f}".replace(".", ",")
            low, high = (f"{x:.1f}".replace(".", ",") for x in interval)
        else:
            figure = f"{ratio:.1f}"
            low, high = (f"{x:.1f}" for x in interval)
        assert f"{figure}×" in text, (locale, figure)
        assert f"{low}–{high}×" in text, (locale, low, high)  # the headline with its interval
        start = datetime.fromisoformat(served["start"].decode())
        assert Words(locale).date(start) in text, "the period's first day"
