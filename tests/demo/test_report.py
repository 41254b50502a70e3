"""The period report (services/attribution/report, the one renderer) renders every format in
both locales from results-API-shaped data."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from ripples import report as client
from ripples.demo import scenario, truth
from services.attribution import report
from services.attribution.report.catalogue import DA, EN
from services.attribution.report.render import GROUPS

NOW = datetime(2026, 9, 1, tzinfo=UTC)


def as_api(value: object) -> object:
    """What the value looks like after a JSON round trip (datetimes as RFC 3339)."""
    return orjson.loads(orjson.dumps(value))


@pytest.fixture(scope="module")
def data() -> report.ReportData:
    pilot = scenario.generate(11, now=NOW)
    facts = pilot.facts(
        {i: NOW for i in range(len(pilot.clicks))},
        {a.candidate: NOW for a in pilot.applications if a.applied_at is None},
    )
    weeks = []
    for k in range(pilot.start.isocalendar().week, pilot.start.isocalendar().week + 12):
        start = pilot.start + timedelta(weeks=k - pilot.start.isocalendar().week)
        week = truth.summary(facts, start=start, end=start + timedelta(weeks=1))
        weeks.append(
            report.Week(
                start,
                sum(week[g]["posts"] for g in GROUPS),
                sum(week[g]["impressions"] for g in GROUPS),
                week["applicants"]["total"],
            )
        )
    summary: dict[str, Any] = as_api(truth.summary(facts))  # type: ignore[assignment]
    # the service's intervals (the truth has the points only): the reach ratio's leaves out
    # 1× (distinguishable from chance), the baseline-adjusted one reaches down to 0 (not yet)
    summary["uncertainty"] |= {
        "reach_ratio": [summary["reach_ratio"] * 0.8, summary["reach_ratio"] * 1.3],
        "lift": None if summary["ripples"]["lift"] is None else [0.7, 9.0],
        "baseline_adjusted": [0.0, summary["ripples"]["baseline_adjusted"] + 3],
    }
    summary["content_origin"]["interval"] = [1.4, 4.1]
    summary["scale_up"]["assumptions"] = {"en": "Assumed: like today's.", "da": "Antaget."}
    for target in summary["scale_up"]["targets"]:
        target["impressions_interval"] = [target["impressions"] / 2, target["impressions"] * 2]
        target["applicants_interval"] = [0.0, target["applicants"] * 2]
    return report.ReportData(
        summary,
        as_api(truth.sharers(facts)),
        as_api(truth.ripples_graph(facts)),
        weeks,
    )


def render(data: report.ReportData, fmt: str, locale: str = "en") -> str:
    return report.render(data, fmt, locale).decode("utf-8")


def test_markdown_shows_the_headline_figures(data: report.ReportData) -> None:
    text = render(data, "md")
    ratio = data.summary["reach_ratio"]
    assert f"{ratio:.2f}×" in text
    assert "Baseline-adjusted spillover" in text
    assert "Ring 3 sharers" in text
    top = data.sharers[0]
    assert top["display_name"] or top["employee_id"] in text


def test_the_catalogues_have_the_same_words() -> None:
    assert set(DA) == set(EN)
    for key, text in EN.items():
        assert set(re.findall(r"{(\w+)}", DA[key])) == set(re.findall(r"{(\w+)}", text)), key


def test_danish_numbers_and_dates(data: report.ReportData) -> None:
    """Babel's Danish formats: a dot between thousands, a comma before decimals, long dates."""
    data.summary["period"] = {"from": "2026-06-01T00:00:00Z", "to": "2026-09-01T00:00:00Z"}
    md = render(data, "md", "da")
    assert md.startswith("# Ripples-rapport: 1. juni 2026 til 1. september 2026")
    total = data.summary["ambassadors"]["impressions"]
    assert total >= 1000
    assert f"| Ambassadører (ring 1): visninger | {total:,} |".replace(",", ".") in md
    mean = data.summary["ambassadors"]["mean_impressions_per_post"]
    danish = f"{mean:,.1f}".replace(",", "_").replace(".", ",").replace("_", ".")
    assert f"gennemsnitlige visninger pr. opslag | {danish} |" in md
    assert "June" in render(data, "html", "en")


def test_markdown_is_tables(data: report.ReportData) -> None:
    md = render(data, "md")
    assert md.startswith("# Ripples report")
    assert "| Reach ratio (ambassador ÷ company post) |" in md


def test_csv_has_every_key_figure(data: report.ReportData) -> None:
    rows = list(csv.reader(io.StringIO(render(data, "csv"))))
    assert rows[0] == ["section", "figure", "value"]
    figures = {(section, figure): value for section, figure, value in rows[1:]}
    assert figures[("applicants", "Applicants")] == f"{data.summary['applicants']['total']:,}"
    assert ("ripples", "Lift") in figures


def test_html_is_self_contained_with_charts(data: report.ReportData) -> None:
    page = render(data, "html")
    assert page.startswith("<!doctype html>")
    assert page.count("<svg") >= 8  # rings, 2 reach bars, 2 credit bars, 3 trend charts
    assert page.count('class="axisline"') >= 14  # every bar and trend chart has axes
    assert "impressions per post" in page  # the bar charts' units
    assert not re.search(r"<(script|link|img)\b", page), "nothing loaded from elsewhere"
    for ring in data.summary["ripples"]["rings"]:
        assert f"ring {ring['ring']}: {ring['sharers']} sharers" in page
    assert "How each number is computed" in page


def test_the_evidence_in_plain_words(data: report.ReportData) -> None:
    """CONTRACT §10 in every format: each effect with its interval, said to be
    distinguishable from chance or not yet, and how much more data would narrow it."""
    s = data.summary
    text = render(data, "md")
    low, high = s["uncertainty"]["reach_ratio"]
    assert f"interval {low:.1f}–{high:.1f}×): distinguishable from chance" in text
    assert "beyond what chance predicts" in text
    assert f"0.0–{s['ripples']['baseline_adjusted'] + 3:.1f}): not yet distinguishable" in text
    assert "more ambassador and company posts would halve the interval" in text
    assert "own words reached" in text
    assert "Hard-to-recruit families:" in text
    assert "ρ = " in text
    rows = list(csv.reader(io.StringIO(render(data, "csv"))))
    figures = {(section, figure): value for section, figure, value in rows[1:]}
    assert figures[("evidence", "Reach ratio, 95% interval")] == f"{low:.2f}–{high:.2f}×"
    first = s["applicants"]["jobs"][0]
    assert (
        figures[("jobs", f"{first['family']} (hard to recruit): applicants (attributed)")]
        == f"{first['applicants']} ({first['attributed']})"
    )
    first_target = s["scale_up"]["targets"][0]
    assert f"Estimate: {first_target['ambassadors']} ambassadors would likely bring" in text
    assert "Assumed: like today's." in text
    assert figures[
        ("estimate", f"{first_target['ambassadors']} ambassadors: impressions (estimate)")
    ].startswith(f"{first_target['impressions']:,.0f} (")
    assert "<h2>How sure, in plain words</h2>" in render(data, "html")
    danish = render(data, "html", "da")
    assert "<h2>Hvor sikre tallene er, i almindelige ord</h2>" in danish
    assert "kan skelnes fra tilfældighed" in danish
    assert "Antaget." in danish  # the service's own Danish assumptions


def test_older_answers_without_the_evidence_still_render(data: report.ReportData) -> None:
    summary = dict(data.summary)
    for key in ("uncertainty", "content_origin", "drivers", "scale_up"):
        summary.pop(key)
    summary["applicants"] = {k: v for k, v in summary["applicants"].items() if k != "jobs"}
    old = report.ReportData(summary, data.sharers, data.ripples, data.weeks)
    for locale in ("en", "da"):
        assert "## How sure" not in render(old, "md", locale)
        assert "## Hvor sikre" not in render(old, "md", locale)


def test_ripples_report_fetches_the_served_report_with_the_key() -> None:
    """`ripples report` renders nothing itself: it asks attribution's /v1/report (and
    /v1/report/links for --share) with the stack's key."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return httpx.Response(201, json={"url": "u", "expires_at": "e"})
        return httpx.Response(200, content=b"%PDF-1.7", headers={"content-type": "application/pdf"})

    mock = httpx.MockTransport(answer)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    body = client.fetch("http://a", "k1", start, None, "linear", "da", "pdf", transport=mock)
    assert body == b"%PDF-1.7"
    link = client.share_link("http://a", "k1", start, None, expires_in_s=60, transport=mock)
    assert link == {"url": "u", "expires_at": "e"}
    get, post = seen
    assert get.url.path == "/v1/report"
    assert dict(get.url.params) == {
        "model": "linear", "locale": "da", "format": "pdf", "from": "2026-06-01T00:00:00Z"
    }  # fmt: skip
    assert orjson.loads(post.content) == {
        "model": "last_touch", "locale": "en", "expires_in_s": 60, "from": "2026-06-01T00:00:00Z"
    }  # fmt: skip
    assert {r.headers["authorization"] for r in seen} == {"Bearer k1"}
