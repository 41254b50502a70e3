"""The ripple graph's layout (services/attribution/report/graph.py): positions ring by ring,
the same bytes for the same data, a bound on what is drawn, and names only as sharers has them."""

from __future__ import annotations

import html
import itertools
import random
from datetime import UTC, datetime

from services.attribution.report import graph
from services.attribution.report.render import Words


def _pilot(n: int = 150, seed: int = 3) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    nodes = [
        {"employee_id": f"emp-{i:03d}", "ring": 1, "first_shared_at": "2026-06-01T08:00:00Z"}
        for i in range(8)
    ]
    edges = []
    for i in range(8, n):
        parent = rng.choice(nodes[: max(8, i // 2)])
        ring = parent["ring"] + 1
        nodes.append(
            {"employee_id": f"emp-{i:03d}", "ring": ring, "first_shared_at": "2026-06-10T08:00:00Z"}
        )
        edges.append(
            {
                "from": parent["employee_id"],
                "to": f"emp-{i:03d}",
                "weight": rng.choice((1.0, 0.5, 0.25)),
                "exposure": rng.choice(("reshare", "engagement")),
            }
        )
    nodes.append({"employee_id": "emp-indep", "ring": None, "first_shared_at": None})
    return nodes, edges


def test_rings_are_columns_left_to_right() -> None:
    nodes = [
        {"employee_id": "a", "ring": 1},
        {"employee_id": "b", "ring": 2},
        {"employee_id": "c", "ring": 3},
        {"employee_id": "x", "ring": None},
    ]
    edges = [
        {"from": "a", "to": "b", "weight": 1.0, "exposure": "reshare"},
        {"from": "b", "to": "c", "weight": 0.5, "exposure": "engagement"},
    ]
    laid = graph.layout(nodes, edges, {"a": "Anne", "b": None})
    xs = {n.employee_id: n.x for n in laid.nodes}
    assert xs["a"] < xs["b"] < xs["c"]
    assert "x" not in xs  # independent sharers have no place in the ripples
    assert laid.rings == (1, 2, 3)
    names = {n.employee_id: n.name for n in laid.nodes}
    assert names == {"a": "Anne", "b": "—", "c": "—"}  # removed or unknown: no name, no id
    widths = {(e.source, e.target): e.width for e in laid.edges}
    assert widths[("a", "b")] > widths[("b", "c")]  # the heavier edge is the wider line
    assert all(0 <= n.y <= laid.height and 0 <= n.x <= laid.width for n in laid.nodes)


def test_same_data_same_bytes_whatever_the_order() -> None:
    nodes, edges = _pilot()
    w = Words("da")
    first = graph.svg_graph(graph.layout(nodes, edges, {}), w, w.number)
    rng = random.Random(1)
    rng.shuffle(nodes)
    rng.shuffle(edges)
    again = graph.svg_graph(graph.layout(nodes, edges, {}), w, w.number)
    assert first == again


def test_150_nodes_are_bounded_and_the_rest_is_said() -> None:
    nodes, edges = _pilot(150)
    laid = graph.layout(nodes, edges, {}, limit=40)
    assert len(laid.nodes) == 40
    assert laid.hidden == 150 - 40
    drawn = {n.employee_id for n in laid.nodes}
    assert all(e.source in drawn and e.target in drawn for e in laid.edges)
    inspired = sorted((n.inspired for n in laid.nodes), reverse=True)
    # the drawn are the ones who inspired most
    assert min(inspired) >= max(
        sum(1 for e in edges if e["from"] == n["employee_id"])
        for n in nodes
        if n["employee_id"] not in drawn and n["ring"] is not None
    )
    for locale, words in (("en", "110 more"), ("da", "110 kolleger mere")):
        w = Words(locale)
        svg = graph.svg_graph(laid, w, w.number)
        assert words in svg
        assert html.escape(w("graph.reshare")) in svg
        assert w("graph.engagement") in svg
        assert 'stroke-dasharray="5 3"' in svg  # the engagement edges look different
    assert laid.height < 40 * graph.ROW + 200


def test_rows_in_a_column_do_not_overlap() -> None:
    nodes, edges = _pilot(150)
    laid = graph.layout(nodes, edges, {}, limit=60)
    for ring in laid.rings:
        ys = sorted(n.y for n in laid.nodes if n.ring == ring)
        assert all(b - a >= graph.ROW - 1e-9 for a, b in itertools.pairwise(ys))


def test_only_colleagues_placed_before_the_period_end() -> None:
    nodes, edges = _pilot(30)
    laid = graph.layout(nodes, edges, {}, until=datetime(2026, 6, 5, tzinfo=UTC))
    assert {n.ring for n in laid.nodes} == {1}
    assert not laid.edges


def test_no_graph_says_so() -> None:
    w = Words("en")
    svg = graph.svg_graph(graph.layout([], [], {}), w, w.number)
    assert w("graph.none") in svg
