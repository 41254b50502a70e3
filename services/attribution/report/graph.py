"""The ripple graph as a picture: who inspired whom, ring by ring (CONTRACT §7 `/v1/ripples`).

``layout`` is pure: the same nodes, edges and names give the same positions, and therefore
``svg_graph`` gives the same bytes. Ring 1 (the ambassadors) is the left column, each further
ring a column to the right; within a column a colleague sits near the colleagues who inspired
them (the mean row of their drawn inspirers), ties broken by how many they inspired and then by
id, so nothing depends on dict or database order. At most ``limit`` colleagues are drawn (the
ones who inspired most); the picture says how many more there are.

Names are the ones ``/v1/sharers`` gives (an employee's display name); an employee without one
(removed: erased personal fields) is drawn as "—", never by id. Applicants are never in the
graph: its nodes are employees.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

NO_NAME = "—"
LIMIT = 40
ROW = 22
COLUMN = 210
LEFT = 24
TOP = 64
NAME_LENGTH = 22
EXPOSURE_STYLE = {
    "reshare": ("#1f6fb2", ""),
    "engagement": ("#d9822b", ' stroke-dasharray="5 3"'),
}


@dataclass(frozen=True)
class PlacedNode:
    employee_id: str
    ring: int
    name: str
    inspired: int
    x: float
    y: float


@dataclass(frozen=True)
class PlacedEdge:
    source: str
    target: str
    weight: float
    exposure: str
    x1: float
    y1: float
    x2: float
    y2: float
    width: float


@dataclass(frozen=True)
class Layout:
    nodes: tuple[PlacedNode, ...]
    edges: tuple[PlacedEdge, ...]
    rings: tuple[int, ...]
    hidden: int
    """Ringed colleagues not drawn (beyond ``limit``)."""
    width: float
    height: float


def _before(stamp: Any, until: datetime | None) -> bool:
    if until is None or stamp is None:
        return True
    value = stamp if isinstance(stamp, datetime) else datetime.fromisoformat(str(stamp))
    return value < until


def layout(
    nodes: Sequence[Mapping[str, Any]],
    edges: Sequence[Mapping[str, Any]],
    names: Mapping[str, str | None],
    limit: int = LIMIT,
    until: datetime | None = None,
) -> Layout:
    """Positions for the ringed colleagues placed before ``until`` and the edges between the
    drawn ones. Pure and deterministic; ``limit`` bounds the nodes drawn."""
    ring_of = {
        str(n["employee_id"]): int(n["ring"])
        for n in nodes
        if n.get("ring") is not None
        and int(n["ring"]) >= 1
        and _before(n.get("first_shared_at"), until)
    }
    kept = [
        e
        for e in edges
        if str(e["from"]) in ring_of and str(e["to"]) in ring_of and e["from"] != e["to"]
    ]
    inspired: dict[str, int] = dict.fromkeys(ring_of, 0)
    for e in kept:
        inspired[str(e["from"])] += 1
    ranked = sorted(ring_of, key=lambda i: (-inspired[i], ring_of[i], i))
    drawn = set(ranked[: max(limit, 0)])
    hidden = len(ring_of) - len(drawn)
    kept = sorted(
        (e for e in kept if e["from"] in drawn and e["to"] in drawn),
        key=lambda e: (str(e["from"]), str(e["to"])),
    )
    parents: dict[str, list[str]] = {}
    for e in kept:
        parents.setdefault(str(e["to"]), []).append(str(e["from"]))
    rings = tuple(sorted({ring_of[i] for i in drawn}))
    row: dict[str, int] = {}
    columns: dict[int, list[str]] = {}
    for ring in rings:
        members = [i for i in drawn if ring_of[i] == ring]

        def place(i: str) -> tuple[float, int, str]:
            above = [row[p] for p in parents.get(i, []) if p in row]
            centre = sum(above) / len(above) if above else float("inf")
            return (centre, -inspired[i], i)

        members.sort(key=place)
        columns[ring] = members
        for index, i in enumerate(members):
            row[i] = index
    tallest = max((len(m) for m in columns.values()), default=0)
    height = TOP + max(tallest, 1) * ROW + 24
    position: dict[str, tuple[float, float]] = {}
    placed: list[PlacedNode] = []
    for column, ring in enumerate(rings):
        members = columns[ring]
        offset = (tallest - len(members)) * ROW / 2
        for index, i in enumerate(members):
            x = LEFT + column * COLUMN
            y = TOP + offset + index * ROW + ROW / 2
            position[i] = (x, y)
            name = names.get(i) or NO_NAME
            if len(name) > NAME_LENGTH:
                name = name[: NAME_LENGTH - 1] + "…"
            placed.append(PlacedNode(i, ring, name, inspired[i], x, y))
    heaviest = max((float(e["weight"]) for e in kept), default=1.0) or 1.0
    placed_edges = tuple(
        PlacedEdge(
            str(e["from"]),
            str(e["to"]),
            float(e["weight"]),
            str(e["exposure"]),
            *position[str(e["from"])],
            *position[str(e["to"])],
            round(1 + 4 * float(e["weight"]) / heaviest, 2),
        )
        for e in kept
    )
    width = LEFT + max(len(rings), 1) * COLUMN + 20
    return Layout(tuple(placed), placed_edges, rings, hidden, width, height)


def _e(text: Any) -> str:
    return html.escape(str(text))


def svg_graph(
    graph: Layout,
    label: Any,
    number: Any,
) -> str:
    """The laid-out graph as inline SVG. ``label(key, **values)`` gives the locale's words,
    ``number(value, decimals)`` formats a number for the locale."""
    w, h = graph.width, graph.height + 34
    parts = [
        f'<svg class="chart graph" viewBox="0 0 {w:.0f} {h:.0f}" width="{w:.0f}" '
        f'height="{h:.0f}" role="img" aria-label="{_e(label("graph.aria"))}">',
    ]
    if not graph.nodes:
        parts.append(f'<text x="{LEFT}" y="30">{_e(label("graph.none"))}</text></svg>')
        return "".join(parts)
    for column, ring in enumerate(graph.rings):
        parts.append(
            f'<text x="{LEFT + column * COLUMN - 6}" y="20" class="charttitle">'
            f"{_e(label('graph.ring', ring=number(ring)))}</text>"
        )
    parts.append(f'<text x="{LEFT - 6}" y="40" class="axis">{_e(label("graph.axis"))}</text>')
    for edge in graph.edges:
        colour, dash = EXPOSURE_STYLE.get(edge.exposure, ("#5b6773", ""))
        parts.append(
            f'<line x1="{edge.x1:.1f}" y1="{edge.y1:.1f}" x2="{edge.x2:.1f}" y2="{edge.y2:.1f}" '
            f'stroke="{colour}" stroke-width="{edge.width:.2f}" stroke-opacity="0.75"{dash}>'
            f"<title>{_e(label(f'graph.{edge.exposure}'))}</title></line>"
        )
        mx, my = edge.x1 + (edge.x2 - edge.x1) * 0.62, edge.y1 + (edge.y2 - edge.y1) * 0.62
        parts.append(
            f'<text x="{mx:.1f}" y="{my - 3:.1f}" text-anchor="middle" class="edgelabel">'
            f"{_e(number(edge.weight, 2))}</text>"
        )
    for node in graph.nodes:
        radius = 5 + min(node.inspired, 10) * 0.6
        parts.append(
            f'<circle cx="{node.x:.1f}" cy="{node.y:.1f}" r="{radius:.1f}" fill="#2eaf7d" '
            f'stroke="#1d2630" stroke-width="0.8"/>'
        )
        parts.append(
            f'<text x="{node.x + radius + 4:.1f}" y="{node.y + 4:.1f}" class="nodelabel">'
            f"{_e(node.name)}</text>"
        )
    y = graph.height + 8
    x = LEFT
    for kind, (colour, dash) in EXPOSURE_STYLE.items():
        parts.append(
            f'<line x1="{x}" y1="{y}" x2="{x + 30}" y2="{y}" stroke="{colour}" '
            f'stroke-width="3"{dash}/>'
        )
        text = label(f"graph.{kind}")
        parts.append(f'<text x="{x + 36}" y="{y + 4}">{_e(text)}</text>')
        x += 36 + 7 * len(text) + 24  # about 7 px a character at 12 px
    parts.append(f'<text x="{x}" y="{y + 4}">{_e(label("graph.weight"))}</text>')
    if graph.hidden:
        parts.append(
            f'<text x="{LEFT}" y="{y + 22}" class="charttitle">'
            f"{_e(label('graph.more', n=number(graph.hidden), shown=number(len(graph.nodes))))}"
            "</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
