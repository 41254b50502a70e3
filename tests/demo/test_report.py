"""The period report renders every format from results-API-shaped data."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

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


def test_the_evidence_in_plain_words(data: report.ReportData) -> None:
    """CONTRACT §10 in every format: each effect with its interval, said to be
    distinguishable from chance or not yet, and how much more data would narrow it."""
    s = data.summary
    text = report.render(data, "text")
    low, high = s["uncertainty"]["reach_ratio"]
    assert f"interval {low:.1f}–{high:.1f}×): distinguishable from chance" in text
    assert "beyond what chance predicts" in text
    assert f"0.0–{s['ripples']['baseline_adjusted'] + 3:.1f}): not yet distinguishable" in text
    assert "more ambassador and company posts would halve the interval" in text
    assert "own words reached" in text
    assert "Hard-to-recruit families:" in text
    assert "ρ = " in text
    rows = list(csv.reader(io.StringIO(report.render(data, "csv"))))
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
    assert "How sure, in plain words" in report.render(data, "md")
    assert "<h2>How sure, in plain words</h2>" in report.render(data, "html")


def test_older_answers_without_the_evidence_still_render(data: report.ReportData) -> None:
    summary = dict(data.summary)
    for key in ("uncertainty", "content_origin", "drivers", "scale_up"):
        summary.pop(key)
    summary["applicants"] = {k: v for k, v in summary["applicants"].items() if k != "jobs"}
    old = report.ReportData(summary, data.sharers, data.ripples, data.weeks, data.recognitions)
    assert "IN PLAIN WORDS" not in report.render(old, "text")
