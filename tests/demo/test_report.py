"""The period report renders every format from results-API-shaped data."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from ripples import report
from ripples.demo import scenario, truth

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
                sum(week[g]["posts"] for g, _ in report.GROUPS),
                sum(week[g]["impressions"] for g, _ in report.GROUPS),
                week["applicants"]["total"],
            )
        )
    recognitions = [
        {
            "recognition_id": rid,
            "kind": rid.split(":")[0],
            "employee_id": e,
            "status": "sent",
            "channel": "webhook",
            "attempts": 1,
            "sent_at": None,
        }
        for rid, e in truth.recognitions(facts).items()
    ]
    return report.ReportData(
        as_api(truth.summary(facts)),
        as_api(truth.sharers(facts)),
        as_api(truth.ripples_graph(facts)),
        weeks,
        recognitions,
    )


def test_text_report_shows_the_headline_figures(data: report.ReportData) -> None:
    text = report.render(data, "text")
    ratio = data.summary["reach_ratio"]
    assert f"{ratio:.2f}×" in text
    assert "Baseline-adjusted spillover" in text
    assert "Ring 3 sharers" in text
    assert "Recognitions sent" in text
    top = data.sharers[0]
    assert (top["display_name"] or top["employee_id"])[:26] in text


def test_markdown_is_tables(data: report.ReportData) -> None:
    md = report.render(data, "md")
    assert md.startswith("# Ripples report")
    assert "| Reach ratio (ambassador ÷ company post) |" in md


def test_csv_has_every_key_figure(data: report.ReportData) -> None:
    rows = list(csv.reader(io.StringIO(report.render(data, "csv"))))
    assert rows[0] == ["section", "figure", "value"]
    figures = {(section, figure): value for section, figure, value in rows[1:]}
    assert figures[("applicants", "Applicants")] == f"{data.summary['applicants']['total']:,}"
    assert ("ripples", "Lift") in figures


def test_html_is_self_contained_with_charts(data: report.ReportData) -> None:
    page = report.render(data, "html")
    assert page.startswith("<!doctype html>")
    assert page.count("<svg") >= 8  # rings, 2 reach bars, 2 credit bars, 3 trend charts
    assert not re.search(r"<(script|link|img)\b", page), "nothing loaded from elsewhere"
    for ring in data.summary["ripples"]["rings"]:
        assert f"ring {ring['ring']}: {ring['sharers']} sharers" in page
    assert "How each number is computed" in page
