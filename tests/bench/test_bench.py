"""``ripples bench``: its pure helpers on hand-computed examples, and one tiny round of every
measurement against a real broker, PostgreSQL and the three services (a smoke test: it checks
that the JSON holds every figure with its ratio, never how fast anything is)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from ripples.bench import harness, load
from ripples.demo import run as demo
from tests.conftest import API_KEYS, Running, start_service

SECRET = "bench-webhook"
FIGURES = {
    "raw_produce",
    "ingest_batch",
    "ingest_single",
    "ingest_single_p99_at_half_load",
    "redirector",
    "bare_faust_consume",
    "attribution",
    "end_to_end_p99",
    "memory_ingest",
    "memory_attribution",
    "memory_notifier",
}


def test_percentile_is_the_nearest_rank() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0, 10.0, 9.0, 8.0, 7.0, 6.0]
    assert harness.percentile(values, 50) == 5.0  # rank ceil(10 * 0.5) = 5
    assert harness.percentile(values, 99) == 10.0  # rank ceil(9.9) = 10
    assert harness.percentile(values, 10) == 1.0
    assert harness.percentile([], 99) == 0.0


def test_processes_side_by_side_add_counts_and_take_the_longest_time() -> None:
    runs = [
        {"count": 100, "seconds": 2.0, "latencies_ms": [1.0, 2.0], "errors": 1},
        {"count": 300, "seconds": 4.0, "latencies_ms": [3.0]},
    ]
    assert harness.combine(runs) == (400, 4.0, [1.0, 2.0, 3.0], 1)
    # Processes that say when they ran are measured over their common window: these two
    # ran 2 s and 4 s, but from 10.0 to 15.0 (not together the whole time).
    timed = [
        {"count": 100, "seconds": 2.0, "started": 10.0, "ended": 12.0},
        {"count": 300, "seconds": 4.0, "started": 11.0, "ended": 15.0},
    ]
    assert harness.combine(timed) == (400, 5.0, [], 0)


def test_metric_sum_adds_the_samples_whose_labels_match() -> None:
    text = "\n".join(
        [
            "# HELP attribution_consumer_lag lag",
            'attribution_consumer_lag{topic="ripples.posts"} 7.0',
            'attribution_consumer_lag{topic="ripples.links"} 3.0',
            'attribution_consumer_lag_other{topic="ripples.links"} 100.0',
            'attribution_events_processed_total{type="x",outcome="stored"} 5.0',
            'attribution_events_processed_total{type="y",outcome="duplicate"} 2.0',
        ]
    )
    assert harness.metric_sum(text, "attribution_consumer_lag") == 10.0
    assert harness.metric_sum(text, "attribution_events_processed_total", outcome="stored") == 5.0
    assert harness.ratio(50.0, 200.0) == 0.25
    assert harness.ratio(50.0, 0.0) is None


def test_the_load_client_encodes_a_whole_request_once() -> None:
    raw = load.request_bytes(
        "POST", "http://127.0.0.1:8080/v1/events?x=1", [("Content-Type", "a/b")], b"{}"
    )
    assert raw == (
        b"POST /v1/events?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: a/b\r\n"
        b"Content-Length: 2\r\n\r\n{}"
    )
    assert (
        load.request_bytes("GET", "http://h:1/r/abc") == b"GET /r/abc HTTP/1.1\r\nHost: h:1\r\n\r\n"
    )


def test_the_load_client_reads_status_length_and_close_from_the_head() -> None:
    head = b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\nContent-Length: 17"
    assert load.parse_head(head) == (202, 17, False)
    assert load.parse_head(b"HTTP/1.1 302 Found\r\nlocation: /x") == (302, 0, False)
    assert load.parse_head(b"HTTP/1.1 503 X\r\nConnection: close\r\ncontent-length: 3") == (
        503,
        3,
        True,
    )
    assert load.parse_head(b"HTTP/1.0 200 OK") == (200, 0, True)
    with pytest.raises(load.HttpError):
        load.parse_head(b"SSH-2.0-OpenSSH")
    with pytest.raises(load.HttpError):
        load.parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked")


@pytest.fixture(scope="module")
async def target(
    own_broker: Running, postgres: Running, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[harness.Target]:
    env = {
        "NOTIFIER_WEBHOOK_SECRET": SECRET,
        "INGEST_LINK_ALLOWED_HOSTS": "example.com",
        "LOG_LEVEL": "WARNING",
    } | demo.DEMO_ENV
    started: dict[str, Running] = {}
    try:
        for name in ("ingest", "attribution", "notifier"):
            database = f"bench_{uuid.uuid4().hex[:10]}"
            admin = await asyncpg.connect(postgres.address)
            await admin.execute(f'create database "{database}"')
            await admin.close()
            started[name] = start_service(
                name,
                tmp_path_factory.mktemp(name),
                own_broker,
                DATABASE_URL=postgres.address.rsplit("/", 1)[0] + f"/{database}",
                **env,
            )
        pids = {n: r.state.read_pid(n) for n, r in started.items()}
        yield harness.Target(
            ingest=started["ingest"].address,
            attribution=started["attribution"].address,
            notifier=started["notifier"].address,
            bootstrap=own_broker.address,
            api_key=API_KEYS[0],
            webhook_secret=SECRET,
            pids={n: p for n, p in pids.items() if p is not None},
        )
    finally:
        for service in started.values():
            service.stop()


@pytest.mark.integration
def test_one_tiny_round_writes_every_figure(target: harness.Target, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    lines: list[str] = []
    assert harness.run(target, harness.Plan.tiny(), out, lines.append) == 0
    data = json.loads(out.read_text())
    assert set(data["figures"]) == FIGURES
    for name, figure in data["figures"].items():
        assert figure["value"] > 0, name
    assert data["figures"]["ingest_batch"]["ceiling"] == "raw_produce"
    assert data["figures"]["ingest_batch"]["ratio"] > 0
    assert data["figures"]["attribution"]["ceiling"] == "bare_faust_consume"
    assert data["figures"]["attribution"]["ratio"] > 0
    e2e = data["figures"]["end_to_end_p99"]["detail"]
    assert e2e["recognitions_received"] == e2e["applications"] > 0
    assert data["machine"]["nproc"] >= 1
    assert any(line.startswith("measurement") for line in "\n".join(lines).splitlines())
