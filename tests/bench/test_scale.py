"""``ripples bench --only scale`` at a tiny size against a real broker (the step's own),
PostgreSQL and attribution workers: the JSON holds a figure per step with positive numbers,
the two ceilings, the growth ratios; the Markdown table and the PNG plot are written. It
checks the output's structure, never how fast anything is."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ripples.bench import harness, scale
from tests.conftest import API_KEYS, Running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

PNG = b"\x89PNG\r\n\x1a\n"


def test_window_figures_are_the_differences_between_two_samples() -> None:
    samples = [
        scale.Sample(0.0, 0, 0, 1.0, 10.0, 2.0),
        scale.Sample(1.0, 400, 1, 1.5, 30.0, 2.5),
        scale.Sample(3.0, 1400, 6, 2.5, 130.0, 3.5),
    ]
    got = scale.window_figures(samples)  # from the end of the first batch
    assert got["events"] == 1000
    assert got["rate"] == 500.0  # 1000 events in 2 s
    assert got["worker_cpu_s_per_10k"] == 10.0  # 1 CPU s for 1000 events
    assert got["postgres_ms_per_batch"] == 20.0  # 100 ms over 5 batches
    assert got["postgres_cpu_s_per_10k"] == 10.0
    with pytest.raises(RuntimeError):
        scale.window_figures(samples[:1])


def test_the_doc_block_is_replaced_between_its_markers(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\nbefore\n", encoding="utf-8")
    scale.write_doc(doc, "| a |\n", tmp_path / "images" / "x.png")
    scale.write_doc(doc, "| b |\n", tmp_path / "images" / "x.png")
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Performance\n\nbefore\n")
    assert text.count(scale.BEGIN) == 1
    assert "| b |" in text
    assert "| a |" not in text
    assert "(images/x.png)" in text


def test_a_tiny_scale_step_writes_every_figure_the_table_and_the_plot(
    postgres: Running, tmp_path: Path
) -> None:
    place = scale.Place(
        postgres.address,
        dict(os.environ) | {"ATTRIBUTION_API_KEYS": ",".join(API_KEYS)},
        tmp_path / "scale",
    )
    target = harness.Target("-", "-", "-", "-", API_KEYS[0], "", {}, scale=place)
    doc = tmp_path / "docs" / "performance.md"
    doc.parent.mkdir()
    doc.write_text("# Performance\n", encoding="utf-8")
    out = tmp_path / "result.json"
    lines: list[str] = []
    assert harness.run(target, harness.Plan.tiny(), out, lines.append, ["scale"], doc) == 0

    data = json.loads(out.read_text())
    figures = data["figures"]
    steps = {
        name: f for name, f in figures.items() if name.startswith("scale_") and "_events_" in name
    }
    # the series company at every mark, the other companies at the first
    assert {(f["detail"]["stored"], f["detail"]["employees"]) for f in steps.values()} == {
        (3_000, 20),
        (6_000, 20),
        (3_000, 60),
    }
    for name, f in steps.items():
        d = f["detail"]
        assert f["value"] > 0, name
        assert d["rate"] == f["value"], name
        assert f["ceiling"] == "scale_bare_faust", name
        assert f["ratio"] > 0, name
        for key in ("worker_cpu_s_per_10k", "postgres_ms_per_batch", "rss_mb", "peak_rss_mb"):
            assert d[key] > 0, (name, key)
        assert d["batches"] > 0, name
        assert 0 < d["window"] <= d["stored"], name
    for ceiling in ("scale_raw_consume", "scale_bare_faust"):
        assert figures[ceiling]["value"] > 0, ceiling
    for key in ("worker_cpu_s_per_10k", "postgres_ms_per_batch"):
        for axis in ("history", "company"):
            growth = figures[f"scale_growth_{key}_{axis}"]
            assert growth["value"] > 0, growth
            assert growth["target"].startswith("<= 1.25"), growth

    text = doc.read_text(encoding="utf-8")
    assert text.count(scale.BEGIN) == 1
    assert text.count(scale.END) == 1
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(steps)  # the head and a row per step
    image = doc.parent / "images" / "scale-bench.png"
    assert image.read_bytes().startswith(PNG)
    assert data["scale_plot"] == str(image)
