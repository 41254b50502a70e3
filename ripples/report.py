"""The period report: what the advocacy programme brought, from the results API.

``ripples report [--from] [--to] [--model] [--format text|md|html|csv] [--out FILE]``

The data comes only from the public APIs (attribution's ``/v1/summary``, ``/v1/sharers``,
``/v1/ripples``; the notifier's ``/v1/recognitions``), so the report shows what any other
client would see. The HTML format is one self-contained file with inline SVG charts.
"""

from __future__ import annotations

import csv
import html
import io
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

FORMATS = ("text", "md", "html", "csv")
MODELS = ("first_touch", "last_touch", "linear", "position_based", "time_decay")
GROUPS = (
    ("company", "Company page"),
    ("ambassadors", "Ambassadors (ring 1)"),
    ("spillover", "Spillover sharers (ring ≥ 2)"),
    ("independent", "Independent sharers"),
)

HOW = (
    (
        "Reach",
        "A post's reach is its latest polled LinkedIn snapshot (impressions); sums are "
        "over posts published in the period, grouped by the author's ring.",
    ),
    (
        "Reach ratio",
        "Mean impressions per ambassador post ÷ mean impressions per company page post.",
    ),
    (
        "Earned media value",
        "Employee posts only: impressions ÷ 1000 × CPM + clicks × CPC, "
        "with the prices set in the attribution service.",
    ),
    (
        "Rings",
        "Ring 1 are the ambassadors. A colleague is in ring k+1 when, within 14 days "
        "before their first share, they reshared or engaged with a post of a ring-k "
        "colleague; otherwise they are independent.",
    ),
    (
        "Applicant credit",
        "Touches are tracked-link clicks by the applicant's browser within 30 "
        "days before applying, the link code they applied through, and "
        "referrals. The chosen model splits each application's credit of 1 "
        "among the touches; hires are credited like their application.",
    ),
    (
        "Spillover with a baseline",
        "Among colleagues outside the programme who had not shared "
        "before the period, the exposed ones who started sharing "
        "are compared with what the unexposed colleagues' adoption "
        "rate would predict: baseline-adjusted = observed − expected "
        "by chance; lift = exposed rate ÷ unexposed rate.",
    ),
    (
        "How sure the numbers are",
        "95 % intervals from a seeded bootstrap (the attribution service resamples the "
        "period's posts within each group for the reach ratios, and the exposed and "
        "unexposed colleagues for lift and baseline-adjusted spillover; the same data give "
        "the same intervals). An effect is distinguishable from chance when its interval "
        "leaves out 'no effect' (a ratio of 1×, a baseline-adjusted count of 0). An "
        "interval's width shrinks with the square root of the posts or colleagues behind "
        "it: about four times as many halve it.",
    ),
    (
        "Own words vs prepared text",
        "Mean impressions per employee post written in the employee's own words ÷ mean per "
        "post of suggested or template text.",
    ),
    (
        "What drives reach",
        "Spearman rank correlation, over the period's sharers, of mean impressions per post "
        "with their follower count (network size) and with their number of posts "
        "(activity); shown when at least five sharers are known.",
    ),
)


@dataclass
class Week:
    start: datetime
    posts: int
    impressions: int
    applicants: int


@dataclass
class ReportData:
    summary: dict[str, Any]
    sharers: list[dict[str, Any]]
    ripples: dict[str, Any]
    weeks: list[Week] = field(default_factory=list)
    recognitions: list[dict[str, Any]] | None = None
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def _stamp(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else _stamp(value)


def _week_start(value: datetime) -> datetime:
    day = value.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def fetch(
    attribution: str,
    notifier: str | None,
    start: datetime | None,
    end: datetime | None,
    model: str = "last_touch",
    timeout_s: float = 30.0,
    *,
    api_key: str,
) -> ReportData:
    """Everything the report shows, from the running services' APIs (``api_key``: one key
    both accept, CONTRACT §7 "Access")."""
    headers = {"Authorization": f"Bearer {api_key}"}
    params = {"model": model} | {
        k: v for k, v in (("from", _iso(start)), ("to", _iso(end))) if v is not None
    }
    with httpx.Client(base_url=attribution, headers=headers, timeout=timeout_s) as client:
        summary = _get(client, "/v1/summary", params)
        sharers = _get(client, "/v1/sharers", params)
        ripples = _get(client, "/v1/ripples", {})
        first = [
            datetime.fromisoformat(n["first_shared_at"])
            for n in ripples["nodes"]
            if n.get("first_shared_at")
        ]
        begin = start or (min(first) if first else datetime.now(UTC) - timedelta(weeks=12))
        finish = end or datetime.now(UTC)
        weeks: list[Week] = []
        cursor = _week_start(begin)
        while cursor < finish and len(weeks) < 105:
            nxt = cursor + timedelta(weeks=1)
            week = _get(
                client, "/v1/summary", {"model": model, "from": _stamp(cursor), "to": _stamp(nxt)}
            )
            weeks.append(
                Week(
                    cursor,
                    sum(week[g]["posts"] for g, _ in GROUPS),
                    sum(week[g]["impressions"] for g, _ in GROUPS),
                    week["applicants"]["total"],
                )
            )
            cursor = nxt
    recognitions = None
    if notifier:
        with httpx.Client(base_url=notifier, headers=headers, timeout=timeout_s) as client:
            recognitions = _get_all(client, "/v1/recognitions?limit=500")
    return ReportData(summary, sharers, ripples, weeks, recognitions)


def _get(client: httpx.Client, path: str, params: dict[str, str]) -> Any:
    response = client.get(path, params=params)
    response.raise_for_status()
    return response.json()


def _get_all(client: httpx.Client, path: str, max_pages: int = 1000) -> list[Any]:
    """Every row of a paginated list: the pages joined, following ``Link: <…>; rel="next"``
    (RFC 8288) until there is none. A next page elsewhere than the service itself is
    refused: the client carries the API key."""
    rows: list[Any] = []
    url: httpx.URL | None = client.base_url.join(path)
    for _ in range(max_pages):
        if url is None:
            break
        response = client.get(url)
        response.raise_for_status()
        rows.extend(response.json())
        following = response.links.get("next", {}).get("url")
        url = None if following is None else url.join(following)
        if url is not None and (url.scheme, url.netloc) != (
            client.base_url.scheme,
            client.base_url.netloc,
        ):
            raise httpx.HTTPError(f"{path}: the next page points elsewhere ({url.host})")
    return rows


# --- figures --------------------------------------------------------------------------------


def _number(value: float | int | None, decimals: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{decimals}f}"


def _ring_label(key: str) -> str:
    return {"0": "company (ring 0)", "independent": "independent"}.get(key, f"ring {key}")


def _ring_order(key: str) -> tuple[int, int]:
    return (1, 0) if key == "independent" else (0, int(key))


def _credit_rows(credit: dict[str, float]) -> list[tuple[str, float]]:
    return [(_ring_label(k), credit[k]) for k in sorted(credit, key=_ring_order)]


def _period(data: ReportData) -> str:
    period = data.summary.get("period") or {}
    start, end = period.get("from"), period.get("to")
    if not start and not end:
        return "all time"
    return f"{start or 'the beginning'} to {end or 'now'}"


def _recognition_counts(data: ReportData) -> dict[str, Counter[str]]:
    """status → kind → count."""
    out: dict[str, Counter[str]] = {}
    for item in data.recognitions or []:
        out.setdefault(item["status"], Counter())[item["kind"]] += 1
    return out


def key_figures(data: ReportData) -> list[tuple[str, str, str]]:
    """(section, figure, value) — the one table every format shares."""
    s = data.summary
    rows: list[tuple[str, str, str]] = []
    for group, label in GROUPS:
        g = s[group]
        rows += [
            ("reach", f"{label}: posts", _number(g["posts"])),
            ("reach", f"{label}: impressions", _number(g["impressions"])),
            ("reach", f"{label}: clicks", _number(g["clicks"])),
            (
                "reach",
                f"{label}: mean impressions per post",
                _number(g["mean_impressions_per_post"], 1),
            ),
        ]
    rows.append(("reach", "Spillover sharers", _number(s["spillover"].get("sharers"))))
    rows.append(
        (
            "reach",
            "Reach ratio (ambassador ÷ company post)",
            "–" if s["reach_ratio"] is None else f"{s['reach_ratio']:.2f}×",
        )
    )
    emv = s["emv"]
    rows.append(("value", "Earned media value", f"{_number(emv['value'], 2)} {emv['currency']}"))
    applicants, hires = s["applicants"], s["hires"]
    rows += [
        ("applicants", "Applicants", _number(applicants["total"])),
        ("applicants", "Attributed", _number(applicants["attributed"])),
        ("applicants", "Unattributed", _number(applicants["unattributed"])),
    ]
    rows += [
        ("applicants", f"Credit, {label}", _number(value, 2))
        for label, value in _credit_rows(applicants["credit_by_ring"])
    ]
    rows += [
        ("hires", "Hires", _number(hires["total"])),
        ("hires", "Attributed", _number(hires["attributed"])),
    ]
    rows += [
        ("hires", f"Credit, {label}", _number(value, 2))
        for label, value in _credit_rows(hires["credit_by_ring"])
    ]
    r = s["ripples"]
    rows += [
        ("ripples", f"Ring {ring['ring']} sharers", _number(ring["sharers"])) for ring in r["rings"]
    ]
    rows += [
        ("ripples", "Inspired colleagues (observed)", _number(r["inspired"])),
        ("ripples", "Expected by chance", _number(r["expected_by_chance"], 1)),
        ("ripples", "Baseline-adjusted spillover", _number(r["baseline_adjusted"], 1)),
        ("ripples", "Lift", "–" if r["lift"] is None else f"{r['lift']:.2f}×"),
    ]
    rows += evidence_figures(s)
    counts = _recognition_counts(data)
    if data.recognitions is not None:
        for status in ("sent", "suppressed", "pending", "failed"):
            rows.append(
                (
                    "recognitions",
                    f"Recognitions {status}",
                    _number(sum(counts.get(status, Counter()).values())),
                )
            )
    return rows


def _interval(bounds: Sequence[float] | None, unit: str = "×", decimals: int = 2) -> str:
    if not bounds:
        return "–"
    return f"{bounds[0]:,.{decimals}f}–{bounds[1]:,.{decimals}f}{unit}"


def _chance(bounds: Sequence[float] | None, no_effect: float) -> str:
    if not bounds:
        return "not yet measurable"
    if bounds[0] > no_effect or bounds[1] < no_effect:
        return "distinguishable from chance"
    return "not yet distinguishable from chance"


def evidence_figures(s: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(section, figure, value) rows of CONTRACT §10's figures, when the service has them."""
    rows: list[tuple[str, str, str]] = []
    u = s.get("uncertainty")
    if u:
        level = f"{u['level']:.0%}"
        rows += [
            ("evidence", f"Reach ratio, {level} interval", _interval(u["reach_ratio"])),
            ("evidence", f"Lift, {level} interval", _interval(u["lift"])),
            (
                "evidence",
                f"Baseline-adjusted spillover, {level} interval",
                _interval(u["baseline_adjusted"], "", 1),
            ),
        ]
    origin = s.get("content_origin")
    if origin:
        for key, label in (
            ("own", "own words"),
            ("suggested", "suggested"),
            ("template", "template"),
        ):
            rows.append(("evidence", f"Posts in {label}", _number(origin[key]["posts"])))
            rows.append(
                (
                    "evidence",
                    f"Posts in {label}: mean impressions",
                    _number(origin[key]["mean_impressions_per_post"], 1),
                )
            )
        ratio = origin["own_vs_prepared"]
        rows.append(
            (
                "evidence",
                "Own words vs prepared (mean impressions)",
                "–" if ratio is None else f"{ratio:.2f}×",
            )
        )
        rows.append(("evidence", "Own words vs prepared, interval", _interval(origin["interval"])))
    drivers = s.get("drivers")
    if drivers:
        rows += [
            ("evidence", "Sharers behind the drivers", _number(drivers["employees"])),
            (
                "evidence",
                "Reach vs followers (Spearman)",
                _number(drivers["followers_spearman"], 2),
            ),
            ("evidence", "Reach vs activity (Spearman)", _number(drivers["activity_spearman"], 2)),
        ]
    scale = s.get("scale_up")
    if scale:
        for target in scale["targets"]:
            n = target["ambassadors"]
            rows += [
                (
                    "estimate",
                    f"{n} ambassadors: impressions (estimate)",
                    f"{_number(target['impressions'])} "
                    f"({_interval(target.get('impressions_interval'), '', 0)})",
                ),
                (
                    "estimate",
                    f"{n} ambassadors: applicants credited (estimate)",
                    f"{_number(target['applicants'], 1)} "
                    f"({_interval(target.get('applicants_interval'), '', 1)})",
                ),
            ]
    for job in s["applicants"].get("jobs", []):
        name = job["family"] or "no family"
        if job["hard_to_recruit"]:
            name += " (hard to recruit)"
        rows.append(
            (
                "jobs",
                f"{name}: applicants (attributed)",
                f"{_number(job['applicants'])} ({_number(job['attributed'])})",
            )
        )
    return rows


def evidence_sentences(s: dict[str, Any]) -> list[str]:
    """CONTRACT §10's figures in plain words: each effect with its interval, whether it is
    distinguishable from chance yet, and how much more data would narrow it."""
    u = s.get("uncertainty")
    if not u:
        return []
    level = f"{u['level']:.0%}"
    out: list[str] = []
    posts = s["ambassadors"]["posts"] + s["company"]["posts"]
    if s["reach_ratio"] is not None:
        out.append(
            f"Ambassador posts reached {s['reach_ratio']:.1f}× the company page's mean "
            f"({level} interval {_interval(u['reach_ratio'], '×', 1)}): "
            f"{_chance(u['reach_ratio'], 1.0)}. About {3 * posts:,} more ambassador and "
            "company posts would halve the interval."
        )
    else:
        out.append("Reach ratio: not measurable yet (no ambassador or company posts with reach).")
    r = s["ripples"]
    if r["lift"] is not None:
        out.append(
            f"Colleagues exposed to the programme started sharing {r['lift']:.1f}× as often as "
            f"the unexposed ({level} interval {_interval(u['lift'], '×', 1)}): "
            f"{_chance(u['lift'], 1.0)}."
        )
    else:
        out.append("Lift: not measurable yet (no unexposed colleague started sharing).")
    out.append(
        f"{r['baseline_adjusted']:.1f} colleagues started sharing beyond what chance predicts "
        f"({level} interval {_interval(u['baseline_adjusted'], '', 1)}): "
        f"{_chance(u['baseline_adjusted'], 0.0)}. About three times as many colleagues in "
        "the comparison would halve the interval."
    )
    origin = s.get("content_origin")
    if origin and origin["own_vs_prepared"] is not None:
        out.append(
            f"Posts in the employees' own words reached {origin['own_vs_prepared']:.1f}× the "
            f"mean of prepared posts ({level} interval {_interval(origin['interval'], '×', 1)},"
            f" {origin['own']['posts']} own vs "
            f"{origin['suggested']['posts'] + origin['template']['posts']} prepared): "
            f"{_chance(origin['interval'], 1.0)}."
        )
    elif origin:
        out.append("Own words vs prepared text: not measurable yet (posts of both kinds needed).")
    drivers = s.get("drivers")
    if drivers:
        followers, activity = drivers["followers_spearman"], drivers["activity_spearman"]
        if followers is None and activity is None:
            out.append(
                f"What drives reach: too few sharers ({drivers['employees']}) to say; five "
                "are needed."
            )
        else:
            out.append(
                f"Over {drivers['employees']} sharers, reach per post follows network size "
                f"with ρ = {_number(followers, 2)} and activity with ρ = {_number(activity, 2)} "
                "(1 = in step, 0 = unrelated)."
            )
    scale = s.get("scale_up")
    if scale and scale["targets"]:
        target = scale["targets"][0]
        out.append(
            f"Estimate: {target['ambassadors']} ambassadors would likely bring about "
            f"{_number(target['impressions'])} impressions "
            f"({_interval(target.get('impressions_interval'), '', 0)}) and "
            f"{_number(target['applicants'], 1)} credited applicants "
            f"({_interval(target.get('applicants_interval'), '', 1)}) in a period like this one, "
            f"scaled from the {scale['ambassadors']} ambassadors of today. "
            + scale["assumptions"]["en"]
        )
    hard = [j for j in s["applicants"].get("jobs", []) if j["hard_to_recruit"]]
    if hard:
        out.append(
            "Hard-to-recruit families: "
            + "; ".join(
                f"{j['family'] or 'no family'} {j['applicants']} applicants, "
                f"{j['attributed']} through employees or tracked links"
                for j in hard
            )
            + "."
        )
    return out


def top_sharers(data: ReportData, limit: int = 10) -> list[dict[str, Any]]:
    return data.sharers[:limit]


# --- text, markdown, csv -------------------------------------------------------------------


def render_text(data: ReportData) -> str:
    s = data.summary
    out = io.StringIO()
    out.write(f"Ripples report — {_period(data)} — credit model {s['model']}\n")
    out.write("=" * 76 + "\n")
    section = ""
    for sec, figure, value in key_figures(data):
        if sec != section:
            out.write(f"\n{sec.upper()}\n")
            section = sec
        out.write(f"  {figure:<56} {value:>16}\n")
    sentences = evidence_sentences(s)
    if sentences:
        out.write("\nHOW SURE, IN PLAIN WORDS\n")
        for sentence in sentences:
            out.write(f"  - {sentence}\n")
    out.write("\nTOP SHARERS\n")
    out.write(
        f"  {'name':<26} {'ring':>5} {'posts':>6} {'impressions':>12} "
        f"{'applicants':>10} {'hires':>6}\n"
    )
    for row in top_sharers(data):
        ring = "ind." if row["ring"] is None else str(row["ring"])
        out.write(
            f"  {(row['display_name'] or row['employee_id'])[:26]:<26} {ring:>5} "
            f"{row['posts']:>6} {row['impressions']:>12,} "
            f"{row['applicant_credit']:>10.2f} {row['hire_credit']:>6.2f}\n"
        )
    out.write("\nHOW THE NUMBERS ARE COMPUTED\n")
    for title, text in HOW:
        out.write(f"  {title}: {text}\n")
    return out.getvalue()


def render_markdown(data: ReportData) -> str:
    s = data.summary
    lines = [
        f"# Ripples report: {_period(data)}",
        "",
        f"Credit model: `{s['model']}`. Generated {_iso(data.generated_at)}.",
        "",
    ]
    section = ""
    for sec, figure, value in key_figures(data):
        if sec != section:
            lines += ["", f"## {sec.capitalize()}", "", "| figure | value |", "|---|---:|"]
            section = sec
        lines.append(f"| {figure} | {value} |")
    sentences = evidence_sentences(s)
    if sentences:
        lines += ["", "## How sure, in plain words", ""]
        lines += [f"- {sentence}" for sentence in sentences]
    lines += [
        "",
        "## Top sharers",
        "",
        "| name | ring | posts | impressions | applicant credit | hire credit |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in top_sharers(data):
        ring = "independent" if row["ring"] is None else row["ring"]
        lines.append(
            f"| {row['display_name'] or row['employee_id']} | {ring} | {row['posts']} "
            f"| {row['impressions']:,} | {row['applicant_credit']:.2f} "
            f"| {row['hire_credit']:.2f} |"
        )
    lines += ["", "## How the numbers are computed", ""]
    lines += [f"- **{title}**: {text}" for title, text in HOW]
    return "\n".join(lines) + "\n"


def render_csv(data: ReportData) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "figure", "value"])
    for row in key_figures(data):
        writer.writerow(row)
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


def svg_rings(rings: Sequence[dict[str, Any]], size: int = 360) -> str:
    """Concentric ripples: the company page in the middle, each ring a wider circle with its
    sharer count."""
    centre = size / 2
    count = max(len(rings), 1)
    step = (size / 2 - 30) / (count + 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {size} {size}" width="{size}" height="{size}" '
        'role="img" aria-label="Ripple rings with sharer counts">'
    ]
    for i, ring in reversed(list(enumerate(rings, start=1))):
        colour = RING_COLOURS[min(ring["ring"], len(RING_COLOURS) - 1)]
        parts.append(
            f'<circle cx="{centre}" cy="{centre}" r="{step * (i + 1):.1f}" '
            f'fill="{colour}" fill-opacity="0.35" stroke="{colour}" stroke-width="2"/>'
        )
        y = centre - step * (i + 1) + step / 2 + 5
        parts.append(
            f'<text x="{centre}" y="{y:.1f}" text-anchor="middle" class="ringlabel">'
            f"ring {ring['ring']}: {ring['sharers']} sharers</text>"
        )
    parts.append(f'<circle cx="{centre}" cy="{centre}" r="{step:.1f}" fill="#7f8c8d"/>')
    parts.append(
        f'<text x="{centre}" y="{centre + 4}" text-anchor="middle" fill="#fff" '
        'class="ringlabel">company</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def svg_bars(
    items: Sequence[tuple[str, float | None, str]], width: int = 520, unit: str = ""
) -> str:
    """Horizontal bars: (label, value, colour)."""
    row = 34
    height = row * len(items) + 10
    top = max((v or 0 for _, v, _ in items), default=0) or 1
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img">'
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
            f"{_number(value, 0)}{unit}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def svg_trend(weeks: Sequence[Week], width: int = 640, height: int = 150) -> str:
    """Three small multiples over the weeks: posts, impressions, applicants."""
    if not weeks:
        return "<p>No weeks in the period.</p>"
    series = (
        ("Posts", [w.posts for w in weeks], "#1f6fb2"),
        ("Impressions", [w.impressions for w in weeks], "#2eaf7d"),
        ("Applicants", [w.applicants for w in weeks], "#e0a030"),
    )
    out = []
    for title, values, colour in series:
        top = max(values) or 1
        gap = (width - 60) / len(values)
        bar = max(gap * 0.7, 1)
        parts = [
            f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{title} per week">',
            f'<text x="0" y="14" class="charttitle">{title} per week</text>',
        ]
        for i, (week, value) in enumerate(zip(weeks, values, strict=True)):
            h = (height - 50) * value / top
            x = 50 + i * gap
            parts.append(
                f'<rect x="{x:.1f}" y="{height - 25 - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>week of '
                f"{week.start:%d %b}: {value:,}</title></rect>"
            )
            if len(weeks) <= 16 or i % math.ceil(len(weeks) / 16) == 0:
                parts.append(
                    f'<text x="{x + bar / 2:.1f}" y="{height - 8}" '
                    f'text-anchor="middle" class="axis">{week.start:%d %b}</text>'
                )
        parts.append(
            f'<text x="0" y="{height - 25 - (height - 50):.1f}" class="axis">{top:,}</text>'
        )
        parts.append("</svg>")
        out.append("".join(parts))
    return "".join(out)


CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px;
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
.charttitle { font-weight: bold; } .axis { fill: #5b6773; font-size: 10px; }
.how dt { font-weight: bold; margin-top: .6rem; } .how dd { margin-left: 0; color: #3a4550; }
"""


def render_html(data: ReportData) -> str:
    s = data.summary
    r = s["ripples"]
    tiles = [
        (
            "Reach ratio",
            "–" if s["reach_ratio"] is None else f"{s['reach_ratio']:.1f}×",
            "ambassador vs company post",
        ),
        (
            "Applicants credited",
            _number(s["applicants"]["attributed"]),
            f"of {_number(s['applicants']['total'])} applicants",
        ),
        (
            "Hires credited",
            _number(s["hires"]["attributed"]),
            f"of {_number(s['hires']['total'])} hires",
        ),
        (
            "Baseline-adjusted spillover",
            _number(r["baseline_adjusted"], 1),
            f"{r['inspired']} inspired, {_number(r['expected_by_chance'], 1)} expected by chance",
        ),
        ("Earned media value", _number(s["emv"]["value"]), s["emv"]["currency"]),
    ]
    lift = "–" if r["lift"] is None else f"{r['lift']:.2f}×"
    counts = _recognition_counts(data)
    if data.recognitions is not None:
        tiles.append(
            (
                "Recognitions sent",
                _number(sum(counts.get("sent", Counter()).values())),
                "messages to colleagues",
            )
        )
    reach = [(label, s[g]["mean_impressions_per_post"], COLOURS[g]) for g, label in GROUPS]
    totals = [(label, s[g]["impressions"], COLOURS[g]) for g, label in GROUPS]
    credit = [
        (label, value, RING_COLOURS[min(int(k) if k.isdigit() else 6, 6)])
        for k, (label, value) in zip(
            sorted(s["applicants"]["credit_by_ring"], key=_ring_order),
            _credit_rows(s["applicants"]["credit_by_ring"]),
            strict=True,
        )
    ]
    hires = [
        (label, value, RING_COLOURS[min(int(k) if k.isdigit() else 6, 6)])
        for k, (label, value) in zip(
            sorted(s["hires"]["credit_by_ring"], key=_ring_order),
            _credit_rows(s["hires"]["credit_by_ring"]),
            strict=True,
        )
    ]
    sharer_rows = "".join(
        f"<tr><td>{_e(row['display_name'] or row['employee_id'])}</td>"
        f"<td>{'independent' if row['ring'] is None else row['ring']}</td>"
        f"<td>{row['posts']}</td><td>{row['impressions']:,}</td>"
        f"<td>{row['applicant_credit']:.2f}</td><td>{row['hire_credit']:.2f}</td>"
        f"<td>{len(row['inspired'])}</td></tr>"
        for row in top_sharers(data, 15)
    )
    recognition_rows = "".join(
        f"<tr><td>{_e(status)}</td><td>{_e(kind)}</td><td>{n}</td></tr>"
        for status, kinds in sorted(counts.items())
        for kind, n in sorted(kinds.items())
    )
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>Ripples report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>What employee advocacy brought</h1>",
        f"<p class='sub'>Ripples report for {_e(_period(data))} · credit model "
        f"<code>{_e(s['model'])}</code> · generated {_e(_iso(data.generated_at))}</p>",
        "<div class='tiles'>",
        *(
            f"<div class='tile'><span>{_e(t)}</span><b>{_e(v)}</b><span>{_e(n)}</span></div>"
            for t, v, n in tiles
        ),
        "</div>",
        "<h2>The ripples</h2><div class='row'>",
        svg_rings(r["rings"]),
        "<table><tr><th>spillover</th><th></th></tr>",
        f"<tr><td>Colleagues inspired (observed)</td><td>{r['inspired']}</td></tr>",
        f"<tr><td>Expected by chance</td><td>{_number(r['expected_by_chance'], 1)}</td></tr>",
        f"<tr><td>Baseline-adjusted</td><td>{_number(r['baseline_adjusted'], 1)}</td></tr>",
        f"<tr><td>Lift</td><td>{lift}</td></tr>",
        "</table></div>",
        *(
            ["<h2>How sure, in plain words</h2><ul>"]
            + [f"<li>{_e(x)}</li>" for x in evidence_sentences(s)]
            + ["</ul>"]
            if evidence_sentences(s)
            else []
        ),
        "<h2>Reach: company page vs ambassadors vs colleagues</h2><div class='row'><div>",
        "<h3>Mean impressions per post</h3>",
        svg_bars(reach),
        "</div><div>",
        "<h3>Total impressions</h3>",
        svg_bars(totals),
        "</div></div>",
        "<h2>Applicants and hires credited, by ring</h2><div class='row'><div>",
        "<h3>Applicants</h3>",
        svg_bars(credit) if credit else "<p>None attributed.</p>",
        "</div><div><h3>Hires</h3>",
        svg_bars(hires) if hires else "<p>None attributed.</p>",
        "</div></div>",
        "<h2>Week by week</h2>",
        svg_trend(data.weeks),
        "<h2>Top sharers</h2><table><tr><th>name</th><th>ring</th><th>posts</th>"
        "<th>impressions</th><th>applicant credit</th><th>hire credit</th>"
        f"<th>inspired</th></tr>{sharer_rows}</table>",
    ]
    if data.recognitions is not None:
        parts.append(
            "<h2>Recognitions</h2><table><tr><th>status</th><th>kind</th>"
            f"<th>count</th></tr>{recognition_rows}</table>"
        )
    parts += [
        "<h2>How each number is computed</h2><dl class='how'>",
        *(f"<dt>{_e(t)}</dt><dd>{_e(x)}</dd>" for t, x in HOW),
        "</dl></body></html>",
    ]
    return "".join(parts)


RENDERERS = {"text": render_text, "md": render_markdown, "html": render_html, "csv": render_csv}


def render(data: ReportData, fmt: str) -> str:
    return RENDERERS[fmt](data)
