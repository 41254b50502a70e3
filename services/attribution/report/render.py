"""The period report in every format, from results-API-shaped data (CONTRACT §9).

One renderer for the served report (``GET /v1/report``, the share links) and everything that
shows it: Markdown, CSV and HTML with inline SVG charts (axes, units, legends), every label from
the locale's catalogue and every number and date formatted for the locale by Babel
(``1.234,5`` and ``1. juni 2026`` in Danish). The PDF is this HTML, printed (``pdf.py``).
"""

from __future__ import annotations

import csv
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from babel.dates import format_date, format_time
from babel.numbers import format_decimal, format_percent

from services.attribution.report import graph as ripple_graph
from services.attribution.report.catalogue import CATALOGUES

GROUPS = ("company", "ambassadors", "spillover", "independent")
ORIGINS = ("own", "suggested", "template")
HOW = ("reach", "ratio", "emv", "rings", "credit", "baseline", "sure", "origin", "drivers")


@dataclass
class Week:
    start: datetime
    posts: int
    impressions: int
    applicants: int


@dataclass
class ReportData:
    """What the report shows: the JSON answers of ``/v1/summary``, ``/v1/sharers`` and
    ``/v1/ripples`` for the period, and the period's weeks."""

    summary: dict[str, Any]
    sharers: list[dict[str, Any]]
    ripples: dict[str, Any]
    weeks: list[Week] = field(default_factory=list)
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    names: dict[str, str | None] = field(default_factory=dict)
    """Display names of the graph's employees, as ``/v1/sharers`` gives them (None: removed)."""


class Words:
    """The locale's labels and its number and date formats."""

    def __init__(self, locale: str) -> None:
        self.locale = locale
        self.catalogue = CATALOGUES[locale]

    def __call__(self, key: str, **values: Any) -> str:
        text = self.catalogue[key]
        return text.format(**values) if values else text

    def number(self, value: float | None, decimals: int = 0) -> str:
        if value is None:
            return "–"
        pattern = "#,##0." + "0" * decimals if decimals else "#,##0"
        return format_decimal(value, format=pattern, locale=self.locale)

    def ratio(self, value: float | None, decimals: int = 2) -> str:
        return "–" if value is None else f"{self.number(value, decimals)}×"

    def interval(self, bounds: Sequence[float] | None, unit: str = "×", decimals: int = 2) -> str:
        if not bounds:
            return "–"
        return f"{self.number(bounds[0], decimals)}–{self.number(bounds[1], decimals)}{unit}"

    def percent(self, level: float) -> str:
        return format_percent(level, locale=self.locale)

    def date(self, value: datetime | str) -> str:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return format_date(value.astimezone(UTC), format="long", locale=self.locale)

    def short_date(self, value: datetime) -> str:
        return format_date(value.astimezone(UTC), format="d MMM", locale=self.locale)

    def moment(self, value: datetime) -> str:
        utc = value.astimezone(UTC)
        return f"{self.date(utc)} {format_time(utc, format='short', locale=self.locale)} UTC"

    def model(self, model: str) -> str:
        return self.catalogue.get(f"model.{model}", model)

    def ring(self, key: str) -> str:
        if key == "0":
            return self("ring.company")
        if key == "independent":
            return self("ring.independent")
        return self("ring.n", ring=key)

    def chance(self, bounds: Sequence[float] | None, no_effect: float) -> str:
        if not bounds:
            return self("chance.unknown")
        if bounds[0] > no_effect or bounds[1] < no_effect:
            return self("chance.yes")
        return self("chance.not_yet")


def _ring_order(key: str) -> tuple[int, int]:
    return (1, 0) if key == "independent" else (0, int(key))


def _credit_rows(w: Words, credit: dict[str, float]) -> list[tuple[str, str, float]]:
    """(ring key, label, credit), company first, independent last."""
    return [(k, w.ring(k), credit[k]) for k in sorted(credit, key=_ring_order)]


def period_text(w: Words, summary: dict[str, Any]) -> str:
    period = summary.get("period") or {}
    start, end = period.get("from"), period.get("to")
    if not start and not end:
        return w("all_time")
    return w(
        "period_range",
        start=w.date(start) if start else w("beginning"),
        end=w.date(end) if end else w("now"),
    )


def key_figures(data: ReportData, w: Words) -> list[tuple[str, str, str]]:
    """(section, figure, value) — the one table every format shares."""
    s = data.summary
    rows: list[tuple[str, str, str]] = []
    for group in GROUPS:
        g, label = s[group], w(f"group.{group}")
        rows += [
            ("reach", w("fig.posts", group=label), w.number(g["posts"])),
            ("reach", w("fig.impressions", group=label), w.number(g["impressions"])),
            ("reach", w("fig.clicks", group=label), w.number(g["clicks"])),
            ("reach", w("fig.mean", group=label), w.number(g["mean_impressions_per_post"], 1)),
        ]
    rows.append(("reach", w("fig.spillover_sharers"), w.number(s["spillover"].get("sharers"))))
    rows.append(("reach", w("fig.reach_ratio"), w.ratio(s["reach_ratio"])))
    emv = s["emv"]
    rows.append(("value", w("fig.emv"), f"{w.number(emv['value'], 2)} {emv['currency']}"))
    applicants, hires = s["applicants"], s["hires"]
    rows += [
        ("applicants", w("fig.applicants"), w.number(applicants["total"])),
        ("applicants", w("fig.attributed"), w.number(applicants["attributed"])),
        ("applicants", w("fig.unattributed"), w.number(applicants["unattributed"])),
    ]
    rows += [
        ("applicants", w("fig.credit", ring=label), w.number(value, 2))
        for _, label, value in _credit_rows(w, applicants["credit_by_ring"])
    ]
    rows += [
        ("hires", w("fig.hires"), w.number(hires["total"])),
        ("hires", w("fig.attributed"), w.number(hires["attributed"])),
    ]
    rows += [
        ("hires", w("fig.credit", ring=label), w.number(value, 2))
        for _, label, value in _credit_rows(w, hires["credit_by_ring"])
    ]
    r = s["ripples"]
    rows += [
        ("ripples", w("fig.ring_sharers", ring=ring["ring"]), w.number(ring["sharers"]))
        for ring in r["rings"]
    ]
    rows += [
        ("ripples", w("fig.inspired"), w.number(r["inspired"])),
        ("ripples", w("fig.expected"), w.number(r["expected_by_chance"], 1)),
        ("ripples", w("fig.baseline"), w.number(r["baseline_adjusted"], 1)),
        ("ripples", w("fig.lift"), w.ratio(r["lift"])),
    ]
    return rows + evidence_figures(s, w)


def evidence_figures(s: dict[str, Any], w: Words) -> list[tuple[str, str, str]]:
    """(section, figure, value) rows of CONTRACT §10's figures, when the service has them."""
    rows: list[tuple[str, str, str]] = []
    u = s.get("uncertainty")
    if u:
        level = w.percent(u["level"])
        rows += [
            (
                "evidence",
                w("fig.interval", figure=w("tile.reach_ratio"), level=level),
                w.interval(u.get("reach_ratio")),
            ),
            (
                "evidence",
                w("fig.interval", figure=w("fig.lift"), level=level),
                w.interval(u.get("lift")),
            ),
            (
                "evidence",
                w("fig.interval", figure=w("fig.baseline"), level=level),
                w.interval(u.get("baseline_adjusted"), "", 1),
            ),
        ]
    origin = s.get("content_origin")
    if origin:
        for key in ORIGINS:
            label = w(f"origin.{key}")
            rows.append(
                ("evidence", w("fig.posts_in", origin=label), w.number(origin[key]["posts"]))
            )
            rows.append(
                (
                    "evidence",
                    w("fig.posts_in_mean", origin=label),
                    w.number(origin[key]["mean_impressions_per_post"], 1),
                )
            )
        rows.append(("evidence", w("fig.own_vs"), w.ratio(origin["own_vs_prepared"])))
        rows.append(("evidence", w("fig.own_vs_interval"), w.interval(origin.get("interval"))))
    drivers = s.get("drivers")
    if drivers:
        rows += [
            ("evidence", w("fig.drivers"), w.number(drivers["employees"])),
            ("evidence", w("fig.followers"), w.number(drivers["followers_spearman"], 2)),
            ("evidence", w("fig.activity"), w.number(drivers["activity_spearman"], 2)),
        ]
    scale = s.get("scale_up")
    if scale:
        for target in scale["targets"]:
            n = target["ambassadors"]
            rows += [
                (
                    "estimate",
                    w("fig.est_impressions", n=w.number(n)),
                    f"{w.number(target['impressions'])} "
                    f"({w.interval(target.get('impressions_interval'), '', 0)})",
                ),
                (
                    "estimate",
                    w("fig.est_applicants", n=w.number(n)),
                    f"{w.number(target['applicants'], 1)} "
                    f"({w.interval(target.get('applicants_interval'), '', 1)})",
                ),
            ]
    for job in s["applicants"].get("jobs", []):
        name = job["family"] or w("no_family")
        if job["hard_to_recruit"]:
            name += w("hard")
        rows.append(
            (
                "jobs",
                w("fig.job", name=name),
                f"{w.number(job['applicants'])} ({w.number(job['attributed'])})",
            )
        )
    return rows


def evidence_sentences(s: dict[str, Any], w: Words) -> list[str]:
    """CONTRACT §10's figures in plain words: each effect with its interval, whether it is
    distinguishable from chance yet, and how much more data would narrow it."""
    u = s.get("uncertainty")
    if not u:
        return []
    level = w.percent(u["level"])
    out: list[str] = []
    posts = s["ambassadors"]["posts"] + s["company"]["posts"]
    if s["reach_ratio"] is not None:
        out.append(
            w(
                "s.reach",
                ratio=w.ratio(s["reach_ratio"], 1),
                level=level,
                interval=w.interval(u.get("reach_ratio"), "×", 1),
                chance=w.chance(u.get("reach_ratio"), 1.0),
                posts=w.number(3 * posts),
            )
        )
    else:
        out.append(w("s.reach_none"))
    r = s["ripples"]
    if r["lift"] is not None:
        out.append(
            w(
                "s.lift",
                lift=w.ratio(r["lift"], 1),
                level=level,
                interval=w.interval(u.get("lift"), "×", 1),
                chance=w.chance(u.get("lift"), 1.0),
            )
        )
    else:
        out.append(w("s.lift_none"))
    out.append(
        w(
            "s.baseline",
            n=w.number(r["baseline_adjusted"], 1),
            level=level,
            interval=w.interval(u.get("baseline_adjusted"), "", 1),
            chance=w.chance(u.get("baseline_adjusted"), 0.0),
        )
    )
    origin = s.get("content_origin")
    if origin and origin["own_vs_prepared"] is not None:
        out.append(
            w(
                "s.origin",
                ratio=w.ratio(origin["own_vs_prepared"], 1),
                level=level,
                interval=w.interval(origin.get("interval"), "×", 1),
                own=w.number(origin["own"]["posts"]),
                prepared=w.number(origin["suggested"]["posts"] + origin["template"]["posts"]),
                chance=w.chance(origin.get("interval"), 1.0),
            )
        )
    elif origin:
        out.append(w("s.origin_none"))
    drivers = s.get("drivers")
    if drivers:
        followers, activity = drivers["followers_spearman"], drivers["activity_spearman"]
        if followers is None and activity is None:
            out.append(w("s.drivers_few", n=w.number(drivers["employees"])))
        else:
            out.append(
                w(
                    "s.drivers",
                    n=w.number(drivers["employees"]),
                    followers=w.number(followers, 2),
                    activity=w.number(activity, 2),
                )
            )
    scale = s.get("scale_up")
    if scale and scale["targets"]:
        target = scale["targets"][0]
        assumptions = scale.get("assumptions") or {}
        out.append(
            w(
                "s.scale",
                n=w.number(target["ambassadors"]),
                impressions=w.number(target["impressions"]),
                impressions_interval=w.interval(target.get("impressions_interval"), "", 0),
                applicants=w.number(target["applicants"], 1),
                applicants_interval=w.interval(target.get("applicants_interval"), "", 1),
                today=w.number(scale["ambassadors"]),
                assumptions=assumptions.get(w.locale) or assumptions.get("en", ""),
            ).strip()
        )
    hard = [j for j in s["applicants"].get("jobs", []) if j["hard_to_recruit"]]
    if hard:
        items = "; ".join(
            w(
                "s.hard_item",
                family=j["family"] or w("no_family"),
                applicants=w.number(j["applicants"]),
                attributed=w.number(j["attributed"]),
            )
            for j in hard
        )
        out.append(w("s.hard", items=items))
    return out


def how(w: Words, level: float = 0.95) -> list[tuple[str, str]]:
    """(title, text) of how each number is computed."""
    return [
        (w(f"how.{key}"), w(f"how.{key}_text", level=w.percent(level)) if key == "sure"
         else w(f"how.{key}_text"))
        for key in HOW
    ]  # fmt: skip


def _level(s: dict[str, Any]) -> float:
    u = s.get("uncertainty")
    return float(u["level"]) if u else 0.95


def _name(row: dict[str, Any]) -> str:
    return str(row["display_name"] or row["employee_id"])


# --- markdown, csv -------------------------------------------------------------------------


def _md(text: str) -> str:
    """A table cell: no pipes or line breaks from data."""
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(data: ReportData, locale: str) -> str:
    w = Words(locale)
    s = data.summary
    lines = [
        f"# {w('report')}: {period_text(w, s)}",
        "",
        w("md_sub", model=f"`{w.model(s['model'])}`", generated=w.moment(data.generated_at)),
        "",
    ]
    section = ""
    for sec, figure, value in key_figures(data, w):
        if sec != section:
            title = w(f"section.{sec}")
            lines += [
                "",
                f"## {title[:1].upper()}{title[1:]}",
                "",
                f"| {w('csv.figure')} | {w('csv.value')} |",
                "|---|---:|",
            ]
            section = sec
        lines.append(f"| {_md(figure)} | {value} |")
    sentences = evidence_sentences(s, w)
    if sentences:
        lines += ["", f"## {w('h.sure')}", ""]
        lines += [f"- {sentence}" for sentence in sentences]
    columns = ("name", "ring", "posts", "impressions", "applicant_credit", "hire_credit")
    lines += [
        "",
        f"## {w('h.top')}",
        "",
        "| " + " | ".join(w(f"col.{c}") for c in columns) + " |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in data.sharers[:10]:
        ring = w("ring.independent") if row["ring"] is None else str(row["ring"])
        lines.append(
            f"| {_md(_name(row))} | {ring} | {w.number(row['posts'])} "
            f"| {w.number(row['impressions'])} | {w.number(row['applicant_credit'], 2)} "
            f"| {w.number(row['hire_credit'], 2)} |"
        )
    lines += ["", f"## {w('h.how')}", ""]
    lines += [f"- **{title}**: {text}" for title, text in how(w, _level(s))]
    return "\n".join(lines) + "\n"


def render_csv(data: ReportData, locale: str) -> str:
    w = Words(locale)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([w("csv.section"), w("csv.figure"), w("csv.value")])
    for section, figure, value in key_figures(data, w):
        writer.writerow([w(f"section.{section}"), figure, value])
    return out.getvalue()


# --- HTML with inline SVG -------------------------------------------------------------------

COLOURS = {
    "company": "#7f8c8d",
    "ambassadors": "#1f6fb2",
    "spillover": "#2eaf7d",
    "independent": "#e0a030",
}
RING_COLOURS = ("#7f8c8d", "#1f6fb2", "#2eaf7d", "#58c4a0", "#8fd8bd", "#bfe9d8", "#dff4ec")


def _e(text: Any) -> str:
    return html.escape(str(text))


def svg_rings(rings: Sequence[dict[str, Any]], w: Words, size: int = 360) -> str:
    """Concentric ripples: the company page in the middle, each ring a wider circle with its
    sharer count."""
    centre = size / 2
    count = max(len(rings), 1)
    step = (size / 2 - 30) / (count + 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {size} {size}" width="{size}" height="{size}" '
        f'role="img" aria-label="{_e(w("rings.aria"))}">'
    ]
    for i, ring in reversed(list(enumerate(rings, start=1))):
        colour = RING_COLOURS[min(ring["ring"], len(RING_COLOURS) - 1)]
        parts.append(
            f'<circle cx="{centre}" cy="{centre}" r="{step * (i + 1):.1f}" '
            f'fill="{colour}" fill-opacity="0.35" stroke="{colour}" stroke-width="2"/>'
        )
        y = centre - step * (i + 1) + step / 2 + 5
        label = w("rings.label", ring=ring["ring"], n=w.number(ring["sharers"]))
        parts.append(
            f'<text x="{centre}" y="{y:.1f}" text-anchor="middle" class="ringlabel">'
            f"{_e(label)}</text>"
        )
    parts.append(f'<circle cx="{centre}" cy="{centre}" r="{step:.1f}" fill="#7f8c8d"/>')
    parts.append(
        f'<text x="{centre}" y="{centre + 4}" text-anchor="middle" fill="#fff" '
        f'class="ringlabel">{_e(w("rings.company"))}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def svg_bars(
    items: Sequence[tuple[str, float | None, str]],
    w: Words,
    unit: str,
    decimals: int = 0,
    width: int = 520,
) -> str:
    """Horizontal bars: (label, value, colour), with a zero line and the unit under them."""
    row = 34
    height = row * len(items) + 34
    top = max((v or 0 for _, v, _ in items), default=0) or 1
    bottom = 5 + row * len(items)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{_e(unit)}">',
        f'<line x1="190" y1="5" x2="190" y2="{bottom}" class="axisline"/>',
        f'<line x1="190" y1="{bottom}" x2="{width - 70}" y2="{bottom}" class="axisline"/>',
        f'<text x="190" y="{bottom + 12}" text-anchor="middle" class="axis">0</text>',
        f'<text x="{width - 70}" y="{bottom + 12}" text-anchor="middle" class="axis">'
        f"{w.number(top, decimals)}</text>",
        f'<text x="{(190 + width - 70) / 2}" y="{bottom + 26}" text-anchor="middle" '
        f'class="axis">{_e(unit)}</text>',
    ]
    for i, (label, value, colour) in enumerate(items):
        y = 5 + i * row
        length = (width - 260) * (value or 0) / top
        parts.append(f'<text x="0" y="{y + 20}" class="barlabel">{_e(label)}</text>')
        parts.append(
            f'<rect x="190" y="{y + 5}" width="{length:.1f}" height="22" fill="{colour}" rx="3"/>'
        )
        parts.append(
            f'<text x="{195 + length:.1f}" y="{y + 21}" class="barvalue">'
            f"{w.number(value, decimals)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def svg_trend(weeks: Sequence[Week], w: Words, width: int = 640, height: int = 160) -> str:
    """Three small multiples over the weeks: posts, impressions, applicants; the y axis from 0
    to the highest week, the x axis the weeks' first days."""
    if not weeks:
        return f"<p>{_e(w('series.none'))}</p>"
    series = (
        (w("series.posts"), [x.posts for x in weeks], "#1f6fb2"),
        (w("series.impressions"), [x.impressions for x in weeks], "#2eaf7d"),
        (w("series.applicants"), [x.applicants for x in weeks], "#e0a030"),
    )
    out = []
    base = height - 38
    for title, values, colour in series:
        top = max(values) or 1
        gap = (width - 60) / len(values)
        bar = max(gap * 0.7, 1)
        heading = w("series.per_week", series=title)
        parts = [
            f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{_e(heading)}">',
            f'<text x="0" y="14" class="charttitle">{_e(heading)}</text>',
            f'<line x1="48" y1="24" x2="48" y2="{base}" class="axisline"/>',
            f'<line x1="48" y1="{base}" x2="{width}" y2="{base}" class="axisline"/>',
            f'<text x="44" y="30" text-anchor="end" class="axis">{w.number(top)}</text>',
            f'<text x="44" y="{base}" text-anchor="end" class="axis">0</text>',
            f'<text x="{width / 2}" y="{height - 2}" text-anchor="middle" class="axis">'
            f"{_e(w('unit.week'))}</text>",
        ]
        for i, (week, value) in enumerate(zip(weeks, values, strict=True)):
            h = (base - 30) * value / top
            x = 50 + i * gap
            tip = w("series.week_of", date=w.date(week.start), value=w.number(value))
            parts.append(
                f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{_e(tip)}</title></rect>'
            )
            if len(weeks) <= 16 or i % math.ceil(len(weeks) / 16) == 0:
                parts.append(
                    f'<text x="{x + bar / 2:.1f}" y="{base + 13}" '
                    f'text-anchor="middle" class="axis">{_e(w.short_date(week.start))}</text>'
                )
        parts.append("</svg>")
        out.append("".join(parts))
    return "".join(out)


CSS = """
body { font-family: system-ui, "DejaVu Sans", sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #1d2630; }
h1 { margin-bottom: 0; } .sub { color: #5b6773; margin-top: .2rem; }
.tiles { display: flex; flex-wrap: wrap; gap: 1rem; margin: 1.5rem 0; }
.tile { background: #f2f6f9; border-radius: 8px; padding: .8rem 1.2rem; min-width: 10rem; }
.tile b { display: block; font-size: 1.7rem; } .tile span { color: #5b6773; }
.row { display: flex; flex-wrap: wrap; gap: 2rem; align-items: flex-start; }
table { border-collapse: collapse; margin: 1rem 0; }
td, th { padding: .3rem .8rem; border-bottom: 1px solid #dde3e8; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.chart text { font-size: 12px; fill: #1d2630; } .ringlabel { font-size: 12px; }
.charttitle { font-weight: bold; } .chart .axis { fill: #5b6773; font-size: 10px; }
.axisline { stroke: #8a96a3; stroke-width: 1; }
.chart .edgelabel { font-size: 9px; fill: #3a4550; } .chart .nodelabel { font-size: 11px; }
.legend { color: #5b6773; font-size: .9rem; }
.how dt { font-weight: bold; margin-top: .6rem; } .how dd { margin-left: 0; color: #3a4550; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  .tile { min-width: 8rem; padding: .5rem .8rem; } .tile b { font-size: 1.3rem; }
  h2 { break-after: avoid; } svg, tr, .tile, li, dt, dd { break-inside: avoid; }
  svg.chart { max-width: 100%; height: auto; }
}
"""


def svg_ripple_graph(data: ReportData, w: Words) -> str:
    """Who inspired whom up to the period's end, ring by ring (``graph.py``)."""
    end = (data.summary.get("period") or {}).get("to")
    names = {r["employee_id"]: r["display_name"] for r in data.sharers} | data.names
    laid = ripple_graph.layout(
        data.ripples.get("nodes", []),
        data.ripples.get("edges", []),
        names,
        until=datetime.fromisoformat(end) if end else None,
    )
    return ripple_graph.svg_graph(laid, w, w.number)


def render_html(data: ReportData, locale: str) -> str:
    w = Words(locale)
    s = data.summary
    r = s["ripples"]
    tiles = [
        (w("tile.reach_ratio"), w.ratio(s["reach_ratio"], 1), w("tile.reach_ratio_note")),
        (
            w("tile.applicants"),
            w.number(s["applicants"]["attributed"]),
            w("tile.applicants_note", total=w.number(s["applicants"]["total"])),
        ),
        (
            w("tile.hires"),
            w.number(s["hires"]["attributed"]),
            w("tile.hires_note", total=w.number(s["hires"]["total"])),
        ),
        (
            w("tile.baseline"),
            w.number(r["baseline_adjusted"], 1),
            w(
                "tile.baseline_note",
                inspired=w.number(r["inspired"]),
                expected=w.number(r["expected_by_chance"], 1),
            ),
        ),
        (w("tile.emv"), w.number(s["emv"]["value"]), s["emv"]["currency"]),
    ]
    reach = [(w(f"group.{g}"), s[g]["mean_impressions_per_post"], COLOURS[g]) for g in GROUPS]
    totals = [(w(f"group.{g}"), s[g]["impressions"], COLOURS[g]) for g in GROUPS]

    def credit_bars(credit: dict[str, float]) -> list[tuple[str, float | None, str]]:
        return [
            (label, value, RING_COLOURS[min(int(k) if k.isdigit() else 6, 6)])
            for k, label, value in _credit_rows(w, credit)
        ]

    credit = credit_bars(s["applicants"]["credit_by_ring"])
    hires = credit_bars(s["hires"]["credit_by_ring"])
    sharer_rows = "".join(
        f"<tr><td>{_e(_name(row))}</td>"
        f"<td>{_e(w('ring.independent') if row['ring'] is None else row['ring'])}</td>"
        f"<td>{w.number(row['posts'])}</td><td>{w.number(row['impressions'])}</td>"
        f"<td>{w.number(row['applicant_credit'], 2)}</td>"
        f"<td>{w.number(row['hire_credit'], 2)}</td>"
        f"<td>{w.number(len(row['inspired']))}</td></tr>"
        for row in data.sharers[:15]
    )
    columns = ("name", "ring", "posts", "impressions", "applicant_credit", "hire_credit")
    header = "".join(f"<th>{_e(w(f'col.{c}'))}</th>" for c in (*columns, "inspired"))
    sentences = evidence_sentences(s, w)
    none = f"<p>{_e(w('h.none'))}</p>"
    parts = [
        f"<!doctype html><html lang='{locale}'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_e(w('report'))}: {_e(period_text(w, s))}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{_e(w('title'))}</h1>",
        "<p class='sub'>"
        + _e(
            w(
                "sub",
                period=period_text(w, s),
                model=w.model(s["model"]),
                generated=w.moment(data.generated_at),
            )
        )
        + "</p>",
        "<div class='tiles'>",
        *(
            f"<div class='tile'><span>{_e(t)}</span><b>{_e(v)}</b><span>{_e(n)}</span></div>"
            for t, v, n in tiles
        ),
        "</div>",
        f"<h2>{_e(w('h.ripples'))}</h2><div class='row'><div>",
        svg_rings(r["rings"], w),
        f"<p class='legend'>{_e(w('legend.rings'))}</p></div>",
        f"<table><tr><th>{_e(w('h.spillover'))}</th><th></th></tr>",
        f"<tr><td>{_e(w('h.inspired'))}</td><td>{w.number(r['inspired'])}</td></tr>",
        f"<tr><td>{_e(w('fig.expected'))}</td><td>{w.number(r['expected_by_chance'], 1)}</td></tr>",
        f"<tr><td>{_e(w('h.baseline'))}</td><td>{w.number(r['baseline_adjusted'], 1)}</td></tr>",
        f"<tr><td>{_e(w('fig.lift'))}</td><td>{w.ratio(r['lift'])}</td></tr>",
        "</table></div>",
        f"<h2>{_e(w('h.graph'))}</h2>",
        svg_ripple_graph(data, w),
        f"<p class='legend'>{_e(w('legend.graph'))}</p>",
        *(
            [f"<h2>{_e(w('h.sure'))}</h2><ul>"]
            + [f"<li>{_e(x)}</li>" for x in sentences]
            + ["</ul>"]
            if sentences
            else []
        ),
        f"<h2>{_e(w('h.reach'))}</h2><div class='row'><div>",
        f"<h3>{_e(w('h.mean'))}</h3>",
        svg_bars(reach, w, w("unit.impressions_per_post"), 1),
        "</div><div>",
        f"<h3>{_e(w('h.total'))}</h3>",
        svg_bars(totals, w, w("unit.impressions")),
        "</div></div>",
        f"<h2>{_e(w('h.credit'))}</h2><div class='row'><div>",
        f"<h3>{_e(w('h.applicants'))}</h3>",
        svg_bars(credit, w, w("unit.credit"), 2) if credit else none,
        f"</div><div><h3>{_e(w('h.hires'))}</h3>",
        svg_bars(hires, w, w("unit.credit"), 2) if hires else none,
        "</div></div>",
        f"<h2>{_e(w('h.weeks'))}</h2>",
        svg_trend(data.weeks, w),
        f"<h2>{_e(w('h.top'))}</h2><table><tr>{header}</tr>{sharer_rows}</table>",
        f"<h2>{_e(w('h.how'))}</h2><dl class='how'>",
        *(f"<dt>{_e(t)}</dt><dd>{_e(x)}</dd>" for t, x in how(w, _level(s))),
        "</dl></body></html>",
    ]
    return "".join(parts)


def render_link_problem(locale: str, expired: bool) -> str:
    """The page a share link answers when it has expired or is not valid."""
    w = Words(locale)
    kind = "expired" if expired else "invalid"
    return (
        f"<!doctype html><html lang='{locale}'><head><meta charset='utf-8'>"
        f"<title>{_e(w(f'link.{kind}'))}</title><style>{CSS}</style></head><body>"
        f"<h1>{_e(w(f'link.{kind}'))}</h1><p>{_e(w(f'link.{kind}_text'))}</p></body></html>"
    )
