"""``ripples bench``: each measurement next to the ceiling of its own part, in the same run.

Every measurement is a warm-up round plus ``rounds`` measured rounds; a rate is the median
over the rounds, latencies are percentiles over every request of every round. Load comes
from separate processes (``python -m ripples.bench.load``); the harness only starts them,
reads the services' ``/metrics`` and ``/proc/<pid>/status``, and serves the webhook sink
for the end-to-end measurement.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response

from ripples.bench import scale as scaling
from ripples.demo.sink import Sink, serving

Say = Callable[[str], None]


@dataclass
class TimedSink(Sink):
    """The demo's webhook sink, noting when each message arrived (monotonic clock)."""

    arrivals: list[float] = field(default_factory=list)

    async def receive(self, request: Request) -> Response:
        response = await super().receive(request)
        self.arrivals.append(time.monotonic())
        return response


@dataclass(frozen=True)
class Target:
    """Where the measured stack is."""

    ingest: str
    attribution: str
    notifier: str
    bootstrap: str
    api_key: str
    webhook_secret: str
    pids: dict[str, int]  # service name -> pid, for memory
    # more attribution workers in the same consumer group (the scaling run)
    more_attribution: tuple[str, ...] = ()
    # where the scale step may start its own broker, databases and workers (none: skipped)
    scale: scaling.Place | None = None


@dataclass(frozen=True)
class Plan:
    """How much load: ``quick`` is about a minute, the default about five."""

    rounds: int = 3
    produce_events: int = 20_000
    batch_processes: int = 2
    batch_concurrency: int = 4
    single_requests: int = 6_000
    single_processes: int = 2
    single_concurrency: int = 8
    redirect_requests: int = 10_000
    attribution_events: int = 20_000
    e2e_rate: float = 200.0
    e2e_seconds: float = 10.0  # per round
    e2e_tracked_per_s: float = 2.0
    memory_events: int = 40_000
    drain_timeout_s: float = 240.0
    # Pause the consumers (SIGSTOP attribution and the notifier) during each round of the
    # produce ceiling and the ingest measurements, so that those measure the producer and
    # ingest rather than attribution consuming the backlog the rounds create; the ceiling
    # and ingest are measured under the same condition. Resumed after every round.
    pause_consumers: bool = True
    scale: scaling.Sizes = field(default_factory=scaling.Sizes)

    @classmethod
    def quick(cls, rounds: int = 1) -> Plan:
        return cls(
            scale=scaling.Sizes.quick(),
            rounds=rounds,
            produce_events=5_000,
            single_requests=600,
            redirect_requests=600,
            attribution_events=5_000,
            e2e_seconds=6.0,
            memory_events=8_000,
        )

    @classmethod
    def tiny(cls) -> Plan:
        """One tiny round of everything (the smoke test)."""
        return cls(
            rounds=1,
            produce_events=500,
            batch_processes=1,
            batch_concurrency=2,
            single_requests=60,
            single_processes=1,
            single_concurrency=4,
            redirect_requests=60,
            attribution_events=500,
            e2e_rate=20.0,
            e2e_seconds=3.0,
            e2e_tracked_per_s=2.0,
            memory_events=1_000,
            drain_timeout_s=90.0,
            scale=scaling.Sizes.tiny(),
        )


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    ceiling: str | None = None  # the name of the figure this one is divided by
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    detail: dict[str, Any] = field(default_factory=dict)


# --- pure helpers -----------------------------------------------------------------------------


START_DELAY_S = 1.0
"""How long after spawning them the batch load processes start sending together (they
import and prepare their requests meanwhile; one that is late starts at once, and the
window still runs from the first start)."""


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100) of ``values``; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least 1
    return float(ordered[int(rank) - 1])


def combine(results: Sequence[dict[str, Any]]) -> tuple[int, float, list[float], int]:
    """Several load processes run side by side: total count, the wall time (from the first
    process's start to the last one's end when they say when, else the longest), every
    latency sample, every error.

    The longest of the processes' own times is not the wall time when they do not start
    together: two batch processes whose ~0.1 s rounds started 50 ms apart each ran partly
    alone, and count / longest overstated the rate."""
    count = sum(int(r["count"]) for r in results)
    seconds = max(float(r["seconds"]) for r in results)
    if all("started" in r and "ended" in r for r in results):
        window = max(float(r["ended"]) for r in results) - min(float(r["started"]) for r in results)
        seconds = max(seconds, window)
    latencies = [float(x) for r in results for x in r.get("latencies_ms", [])]
    errors = sum(int(r.get("errors", 0)) for r in results)
    return count, seconds, latencies, errors


def metric_sum(text: str, name: str, **labels: str) -> float:
    """The sum of every sample of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        if metric != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += float(value)
    return total


def ratio(value: float, ceiling: float) -> float | None:
    return round(value / ceiling, 3) if ceiling > 0 else None


def read_status_kb(pid: int, field_name: str) -> int | None:
    """``VmHWM``/``VmRSS`` of a process in kB, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


# --- running load processes -------------------------------------------------------------------


def load(*argv: str, timeout_s: float = 600.0) -> dict[str, Any]:
    return load_many([list(argv)], timeout_s)[0]


def load_many(commands: Sequence[Sequence[str]], timeout_s: float = 600.0) -> list[dict[str, Any]]:
    """Start every load process at once, wait for all, return their JSON lines."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ripples.bench.load", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for argv in commands
    ]
    out: list[dict[str, Any]] = []
    for proc in procs:
        try:
            stdout, stderr = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            for other in procs:
                other.kill()
                other.wait()
            raise RuntimeError(f"load process {argv_of(proc)} took over {timeout_s} s") from None
        # faust writes terminal escapes before our line; the JSON starts at the brace
        lines = [line[line.index("{") :] for line in stdout.decode().splitlines() if "{" in line]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(
                f"load process failed ({proc.returncode}): {stderr.decode()[-2000:]}"
            )
        out.append(json.loads(lines[-1]))
    return out


def argv_of(proc: subprocess.Popen[bytes]) -> str:
    args = proc.args
    return " ".join(str(a) for a in args[3:5]) if isinstance(args, list) else str(args)


@contextlib.contextmanager
def consumers_stopped(pids: Sequence[int]) -> Iterator[None]:
    """SIGSTOP ``pids`` for the block, SIGCONT them after, whatever happens: also when the
    harness itself gets SIGTERM meanwhile (turned into an exception so this still resumes
    them). Keep the block shorter than the consumers' session timeout (6 s in the local
    stack), or their group rebalances when they resume (they recover, only slower)."""

    def terminate(signum: int, _: object) -> None:
        raise SystemExit(128 + signum)

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, terminate) if main else None
    stopped = []
    try:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
        yield
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        if main:
            signal.signal(signal.SIGTERM, previous)


class Bench:
    def __init__(self, target: Target, plan: Plan, say: Say, progress: Say) -> None:
        self.target = target
        self.plan = plan
        self.say = say
        self.progress = progress
        self.run_id = uuid.uuid4().hex[:6]
        self.figures: dict[str, Figure] = {}
        self.rss_samples: dict[str, list[int]] = {}
        self.pauses: list[float] = []
        self.scale_run: scaling.Scale | None = None

    def _prefix(self, what: str, round_: int, process: int = 0) -> str:
        return f"bn{self.run_id}{what}{round_}x{process}-"

    def _rounds(self, name: str, one: Callable[[int], dict[str, Any]]) -> list[dict[str, Any]]:
        """A warm-up round (index 0, discarded) then the measured rounds."""
        results = []
        for r in range(self.plan.rounds + 1):
            label = "warm-up" if r == 0 else f"round {r}/{self.plan.rounds}"
            self.progress(f"{name}: {label}")
            result = one(r)
            if r:
                results.append(result)
        return results

    def add(self, figure: Figure) -> Figure:
        self.figures[figure.name] = figure
        return figure

    # --- the ceilings and the HTTP measurements ------------------------------------------

    def _paused(self, one: Callable[[int], dict[str, Any]]) -> Callable[[int], dict[str, Any]]:
        """``one`` with the consumers (every service of ``target.pids`` but ingest) stopped
        while it runs (``Plan.pause_consumers``); how long each pause lasted is noted."""

        def paused(r: int) -> dict[str, Any]:
            pids = [pid for name, pid in self.target.pids.items() if name != "ingest"]
            if not self.plan.pause_consumers or not pids:
                return one(r)
            started = time.monotonic()
            with consumers_stopped(pids):
                result = one(r)
            self.pauses.append(round(time.monotonic() - started, 2))
            return result

        return paused

    def _conditions(self) -> dict[str, Any]:
        return {
            "consumers_paused": self.plan.pause_consumers,
            "longest_pause_s": max(self.pauses, default=0.0),
        }

    def produce_ceiling(self) -> Figure:
        """Raw produce with ingest's technique and settings (``load produce``: the same
        producer settings and ``shared.kafka.BatchSender``, chunks of 500 from as many
        concurrent senders as the batch measurement has clients). Measured round by round
        together with the batch endpoint (:meth:`_produce_and_batch`)."""
        return self._produce_and_batch()[0]

    def ingest_batch(self) -> Figure:
        return self._produce_and_batch()[1]

    def _produce_and_batch(self) -> tuple[Figure, Figure]:
        """The produce ceiling and the batch endpoint in pairs of rounds (a ceiling round,
        then a batch round, each with the consumers paused), so that each ratio compares
        figures taken moments apart under the same conditions: on a shared machine the load
        changes more between steps than within a pair."""
        if "ingest_batch" in self.figures:
            return self.figures["raw_produce"], self.figures["ingest_batch"]
        p = self.plan
        n = p.produce_events
        clients = p.batch_processes * p.batch_concurrency
        per = max(500, n // p.batch_processes)

        def ceiling(r: int) -> float:
            x = load(
                "produce",
                "--bootstrap",
                self.target.bootstrap,
                "--events",
                str(n if r else max(500, n // 5)),
                "--batch",
                "500",
                "--concurrency",
                str(clients),
                "--prefix",
                self._prefix("p", r),
            )
            return float(x["count"]) / float(x["seconds"])

        def endpoint(r: int) -> dict[str, Any]:
            # Every process prepares its requests, then they start sending together.
            start_at = time.time() + START_DELAY_S
            runs = load_many(
                [
                    [
                        "batch",
                        "--url",
                        f"{self.target.ingest}/v1/events:batch",
                        "--key",
                        self.target.api_key,
                        "--events",
                        str(per if r else max(500, per // 5)),
                        "--concurrency",
                        str(p.batch_concurrency),
                        "--prefix",
                        self._prefix("b", r, i),
                        "--start-at",
                        f"{start_at:.3f}",
                    ]
                    for i in range(p.batch_processes)
                ]
            )
            count, seconds, latencies, errors = combine(runs)
            return {"rate": count / seconds, "latencies": latencies, "errors": errors}

        def pair(r: int) -> dict[str, Any]:
            raw = self._paused(lambda r: {"rate": ceiling(r)})(r)["rate"]
            return {"ceiling": raw, **self._paused(endpoint)(r)}

        results = self._rounds("raw produce + ingest batch", pair)
        ceilings = [x["ceiling"] for x in results]
        raw = self.add(
            Figure(
                "raw_produce",
                statistics.median(ceilings),
                "events/s",
                detail={
                    "rounds": ceilings,
                    "technique": "shared.kafka.BatchSender, ingest's producer settings, "
                    f"500-event chunks from {clients} concurrent senders",
                    **self._conditions(),
                },
            )
        )
        rate = statistics.median(x["rate"] for x in results)
        share = ratio(rate, raw.value)
        batch = self.add(
            Figure(
                "ingest_batch",
                rate,
                "events/s",
                "raw_produce",
                share,
                ">= 50,000 events/s and >= 0.5 x raw produce",
                rate >= 50_000 and (share or 0) >= 0.5,
                {
                    "rounds": [x["rate"] for x in results],
                    "ratio_per_round": [ratio(x["rate"], x["ceiling"]) for x in results],
                    "events_per_request": 500,
                    "clients": clients,
                    "processes": p.batch_processes,
                    "request_p99_ms": percentile([v for x in results for v in x["latencies"]], 99),
                    "errors": sum(x["errors"] for x in results),
                    **self._conditions(),
                },
            )
        )
        return raw, batch

    def _single(self, r: int, requests: int, rate: float) -> dict[str, Any]:
        p = self.plan
        per = max(10, requests // p.single_processes)
        runs = load_many(
            [
                [
                    "single",
                    "--url",
                    f"{self.target.ingest}/v1/events",
                    "--key",
                    self.target.api_key,
                    "--events",
                    str(per),
                    "--concurrency",
                    str(p.single_concurrency),
                    "--rate",
                    str(rate / p.single_processes),
                    "--prefix",
                    self._prefix(f"s{int(rate)}", r, i),
                ]
                for i in range(p.single_processes)
            ]
        )
        count, seconds, latencies, errors = combine(runs)
        return {"rate": count / seconds, "latencies": latencies, "errors": errors}

    def ingest_single(self) -> list[Figure]:
        n = self.plan.single_requests
        flat = self._rounds(
            "ingest single (flat out)",
            self._paused(lambda r: self._single(r, n if r else n // 5, 0.0)),
        )
        rate = statistics.median(x["rate"] for x in flat)
        latencies = [v for x in flat for v in x["latencies"]]
        half = rate / 2
        halved = self._rounds(
            f"ingest single (at {half:,.0f} req/s)",
            self._paused(lambda r: self._single(r, n // 2 if r else n // 10, half)),
        )
        half_latencies = [v for x in halved for v in x["latencies"]]
        p99_half = percentile(half_latencies, 99)
        return [
            self.add(
                Figure(
                    "ingest_single",
                    rate,
                    "requests/s",
                    target=">= 3,000 requests/s",
                    met=rate >= 3000,
                    detail={
                        "rounds": [x["rate"] for x in flat],
                        "p50_ms": percentile(latencies, 50),
                        "p99_ms": percentile(latencies, 99),
                        "errors": sum(x["errors"] for x in flat),
                        "clients": self.plan.single_processes * self.plan.single_concurrency,
                        **self._conditions(),
                    },
                )
            ),
            self.add(
                Figure(
                    "ingest_single_p99_at_half_load",
                    p99_half,
                    "ms",
                    target="p99 < 20 ms at half the flat-out rate",
                    met=p99_half < 20,
                    detail={
                        "offered_requests_per_s": half,
                        "achieved_requests_per_s": statistics.median(x["rate"] for x in halved),
                        "p50_ms": percentile(half_latencies, 50),
                        "errors": sum(x["errors"] for x in halved),
                        **self._conditions(),
                    },
                )
            ),
        ]

    def redirector(self) -> Figure:
        response = httpx.post(
            f"{self.target.ingest}/v1/links",
            headers={"Authorization": f"Bearer {self.target.api_key}"},
            json={"target_url": "https://example.com/jobs/bench", "employee_id": "bench-e"},
            timeout=10,
        )
        response.raise_for_status()
        body = response.json()
        code = body.get("link_code") or body.get("code")
        url = f"{self.target.ingest}/r/{code}"
        p = self.plan
        processes, concurrency = p.single_processes, p.single_concurrency

        def one(r: int, requests: int, rate: float) -> dict[str, Any]:
            per = max(10, requests // processes)
            runs = load_many(
                [
                    [
                        "get",
                        "--url",
                        url,
                        "--requests",
                        str(per),
                        "--concurrency",
                        str(concurrency),
                        "--rate",
                        str(rate / processes),
                    ]
                    for _ in range(processes)
                ]
            )
            count, seconds, latencies, errors = combine(runs)
            return {"rate": count / seconds, "latencies": latencies, "errors": errors}

        n = p.redirect_requests
        flat = self._rounds(
            "redirector (flat out)", self._paused(lambda r: one(r, n if r else n // 5, 0.0))
        )
        rate = statistics.median(x["rate"] for x in flat)
        latencies = [v for x in flat for v in x["latencies"]]
        half = rate / 2
        halved = self._rounds(
            f"redirector (at {half:,.0f} req/s)",
            self._paused(lambda r: one(r, n // 2 if r else n // 10, half)),
        )
        half_latencies = [v for x in halved for v in x["latencies"]]
        p99_half = percentile(half_latencies, 99)
        return self.add(
            Figure(
                "redirector",
                rate,
                "requests/s",
                target="p99 < 10 ms (at half the flat-out rate, as for single events)",
                met=p99_half < 10,
                detail={
                    "rounds": [x["rate"] for x in flat],
                    "p50_ms": percentile(latencies, 50),
                    "p99_ms": percentile(latencies, 99),
                    "p99_at_half_load_ms": p99_half,
                    "p50_at_half_load_ms": percentile(half_latencies, 50),
                    "offered_at_half_load_requests_per_s": half,
                    "errors": sum(x["errors"] for x in flat) + sum(x["errors"] for x in halved),
                    "clients": processes * concurrency,
                    "note": "every GET also publishes a link.clicked event; no visitor cookie "
                    "is sent back, so every GET is a first visit (a new visitor id and cookie)",
                    **self._conditions(),
                },
            )
        )

    # --- attribution and its faust ceiling -------------------------------------------------

    def _metrics(self, service: str) -> str:
        addresses = {
            "attribution": (self.target.attribution, *self.target.more_attribution),
            "notifier": (self.target.notifier,),
        }
        return "\n".join(httpx.get(f"{a}/metrics", timeout=10).text for a in addresses[service])

    def lag(self, service: str) -> float:
        return metric_sum(self._metrics(service), f"{service}_consumer_lag")

    def processed(self) -> float:
        return metric_sum(self._metrics("attribution"), "attribution_events_processed_total")

    def drain(self, what: str) -> float:
        """Wait until attribution (and the notifier) have consumed everything; seconds."""
        started = time.monotonic()
        deadline = started + self.plan.drain_timeout_s
        quiet = 0
        last = -1.0
        while time.monotonic() < deadline:
            lag = self.lag("attribution") + self.lag("notifier")
            done = self.processed()
            quiet = quiet + 1 if lag == 0 and done == last else 0
            if quiet >= 3:
                return time.monotonic() - started
            last = done
            self.progress(f"{what}: waiting for the consumers to catch up (lag {lag:,.0f})")
            time.sleep(0.5)
        raise RuntimeError(f"the consumers did not catch up within {self.plan.drain_timeout_s} s")

    def attribution(self) -> list[Figure]:
        n = self.plan.attribution_events
        drained = self.drain("attribution")

        def one(r: int) -> dict[str, Any]:
            m = n if r else max(500, n // 5)
            before = self.processed()
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ripples.bench.load",
                    "produce",
                    "--bootstrap",
                    self.target.bootstrap,
                    "--events",
                    str(m),
                    "--prefix",
                    self._prefix("a", r),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            first: float | None = None
            deadline = time.monotonic() + self.plan.drain_timeout_s
            while time.monotonic() < deadline:
                done = self.processed() - before
                now = time.monotonic()
                if done > 0 and first is None:
                    first = now
                if done >= m and proc.poll() is not None and self.lag("attribution") == 0:
                    break
                time.sleep(0.05)
            else:
                proc.kill()
                raise RuntimeError("attribution did not store the benchmark events in time")
            proc.communicate()
            assert first is not None
            return {"rate": m / max(now - first, 1e-6), "events": m}

        results = self._rounds("attribution (one worker)", one)
        rate = statistics.median(x["rate"] for x in results)

        def bare(r: int) -> dict[str, Any]:
            return load_many(
                [
                    [
                        "faust",
                        "--bootstrap",
                        self.target.bootstrap,
                        "--count",
                        str(n if r else max(500, n // 5)),
                    ]
                ],
                timeout_s=self.plan.drain_timeout_s,
            )[0]

        faust_runs = self._rounds("bare faust agent", bare)
        ceiling = statistics.median(x["count"] / x["seconds"] for x in faust_runs)
        self.add(
            Figure(
                "bare_faust_consume",
                ceiling,
                "records/s",
                detail={"rounds": [x["count"] / x["seconds"] for x in faust_runs]},
            )
        )
        share = ratio(rate, ceiling)
        return [
            self.add(
                Figure(
                    "attribution",
                    rate,
                    "events/s",
                    "bare_faust_consume",
                    share,
                    ">= 8,000 mixed events/s per worker and >= 0.6 x bare faust",
                    rate >= 8000 and (share or 0) >= 0.6,
                    {
                        "rounds": [x["rate"] for x in results],
                        "events_per_round": n,
                        "backlog_drained_first_s": round(drained, 1),
                        "workers": 1 + len(self.target.more_attribution),
                    },
                )
            ),
            self.figures["bare_faust_consume"],
        ]

    # --- end to end -----------------------------------------------------------------------

    def end_to_end(self) -> Figure:
        """A warm-up round, then the measured rounds; percentiles over every recognition of
        every measured round."""
        rounds = self._rounds("end to end", lambda r: asyncio.run(self._end_to_end(r)))
        p = self.plan
        latencies = [x for r in rounds for x in r["latencies_ms"]]
        applications = sum(r["applications"] for r in rounds)
        received = len(latencies)
        p99 = percentile(latencies, 99)
        stages = {
            f"{name}_{q}": percentile([x for r in rounds for x in r["stages_ms"][name]], pct)
            for name in rounds[0]["stages_ms"]
            for q, pct in (("p50", 50), ("p99", 99))
        }
        return self.add(
            Figure(
                "end_to_end_p99",
                p99,
                "ms",
                target="p99 < 1 s at 200 events/s",
                met=p99 < 1000 and received == applications,
                detail={
                    "p50_ms": percentile(latencies, 50),
                    "max_ms": max(latencies, default=0.0),
                    "offered_events_per_s": p.e2e_rate,
                    "applications": applications,
                    "recognitions_received": received,
                    "rounds_p99_ms": [percentile(r["latencies_ms"], 99) for r in rounds],
                    "stages_ms": stages,
                    "path": "POST /v1/events applicant.applied -> attribution -> "
                    "recognition.due -> notifier -> webhook sink",
                },
            )
        )

    async def _end_to_end(self, round_: int) -> dict[str, Any]:
        """One round: fresh employees with a webhook to the sink, the background load at the
        offered rate, and ``e2e_tracked_per_s`` applications a second referred by them.

        Latency = the sink received the ``first_applicant`` message − the application POST
        started, both on this process's monotonic clock. The stages come from the notifier's
        ledger (``due_at``: attribution stored the recognition; ``sent_at``: the peer
        answered) on the wall clock, which every process here shares."""
        p = self.plan
        tracked = max(1, int(p.e2e_seconds * p.e2e_tracked_per_s))
        sink = TimedSink(self.target.webhook_secret)
        port = _free_port()
        headers = {
            "Authorization": f"Bearer {self.target.api_key}",
            "Content-Type": "application/cloudevents+json",
        }
        run = f"bn{self.run_id}e2e{round_}"
        name = "end to end" + (" (warm-up)" if round_ == 0 else f" round {round_}")
        async with (
            serving(sink, port) as sink_url,
            httpx.AsyncClient(timeout=10) as client,
        ):
            people = [f"{run}-emp{i}" for i in range(tracked)]
            batch = [
                _event(
                    f"{run}-hr{i}",
                    "employee.upserted",
                    {
                        "employee_id": e,
                        "display_name": f"Bench {i}",
                        "notify": {"channel": "webhook", "address": sink_url},
                    },
                )
                for i, e in enumerate(people)
            ]
            response = await client.post(
                f"{self.target.ingest}/v1/events:batch",
                content=orjson.dumps(batch),
                headers=headers | {"Content-Type": "application/cloudevents-batch+json"},
            )
            response.raise_for_status()
            await asyncio.to_thread(self.drain, f"{name} (employees)")
            # The background: the mixed workload at the offered rate, from a load process.
            background_rate = max(1.0, p.e2e_rate - p.e2e_tracked_per_s)
            background = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "ripples.bench.load",
                "single",
                "--url",
                f"{self.target.ingest}/v1/events",
                "--key",
                self.target.api_key,
                "--events",
                str(int(background_rate * p.e2e_seconds)),
                "--rate",
                str(background_rate),
                "--concurrency",
                "8",
                "--prefix",
                f"{run}-bg-",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            posted: dict[str, tuple[float, float]] = {}  # id -> (monotonic, wall clock)
            started = time.monotonic()
            for i, e in enumerate(people):
                due = started + i / p.e2e_tracked_per_s
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                self.progress(f"{name}: application {i + 1}/{tracked}")
                event = _event(
                    f"{run}-app{i}",
                    "applicant.applied",
                    {
                        "applicant_id": f"{run}-a{i}",
                        "job_id": "bench",
                        "applied_at": _now(),
                        "referrer_employee_id": e,
                    },
                )
                posted[f"first_applicant:{e}"] = (time.monotonic(), time.time())
                answer = await client.post(
                    f"{self.target.ingest}/v1/events", content=orjson.dumps(event), headers=headers
                )
                answer.raise_for_status()
            await background.communicate()
            arrived: dict[str, float] = {}
            deadline = time.monotonic() + 60
            while len(arrived) < len(posted) and time.monotonic() < deadline:
                for item, at in zip(sink.received, sink.arrivals, strict=False):
                    rid = item.recognition_header or item.body.get("recognition_id")
                    if rid in posted and rid not in arrived:
                        arrived[rid] = at
                self.progress(f"{name}: {len(arrived)}/{len(posted)} recognitions arrived")
                await asyncio.sleep(0.02)
            ledger = await self._ledger(client, [rid.split(":", 1)[1] for rid in arrived])
        stages: dict[str, list[float]] = {
            "posted_to_recognition_stored": [],
            "recognition_stored_to_sent": [],
        }
        for rid in arrived:
            row = ledger.get(rid)
            if row is None or not row.get("sent_at"):
                continue
            stored = datetime.fromisoformat(row["due_at"]).timestamp()
            sent = datetime.fromisoformat(row["sent_at"]).timestamp()
            stages["posted_to_recognition_stored"].append((stored - posted[rid][1]) * 1000)
            stages["recognition_stored_to_sent"].append((sent - stored) * 1000)
        return {
            "applications": len(posted),
            "latencies_ms": [(arrived[k] - posted[k][0]) * 1000 for k in arrived],
            "stages_ms": stages,
        }

    async def _ledger(
        self, client: httpx.AsyncClient, employees: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """The notifier's ledger rows of these employees (``GET /v1/recognitions``)."""
        rows: dict[str, dict[str, Any]] = {}
        auth = {"Authorization": f"Bearer {self.target.api_key}"}  # valid on all three
        for employee in employees:
            answer = await client.get(
                f"{self.target.notifier}/v1/recognitions",
                params={"employee_id": employee},
                headers=auth,
            )
            if answer.status_code == 401:
                answer.raise_for_status()  # a refused key, not a ledger still filling
            if answer.status_code == 200:
                rows.update((row["recognition_id"], row) for row in answer.json())
        return rows

    # --- memory ---------------------------------------------------------------------------

    def memory(self) -> list[Figure]:
        """Push ``memory_events`` through ingest in four quarters, let the consumers catch
        up after each, sample each service's RSS; then its peak (VmHWM)."""
        n = self.plan.memory_events
        quarter = max(500, n // 4)
        samples: dict[str, list[int]] = {name: [] for name in self.target.pids}
        for q in range(4):
            done = 0
            while done < quarter:
                chunk = min(quarter - done, 200_000)
                self.progress(f"memory: quarter {q + 1}/4, {done:,}/{quarter:,} events")
                load_many(
                    [
                        [
                            "batch",
                            "--url",
                            f"{self.target.ingest}/v1/events:batch",
                            "--key",
                            self.target.api_key,
                            "--events",
                            str(chunk // 2),
                            "--concurrency",
                            "4",
                            "--prefix",
                            self._prefix(f"m{q}_{done}", 0, i),
                        ]
                        for i in range(2)
                    ],
                    timeout_s=3600,
                )
                done += chunk
            self.drain(f"memory: quarter {q + 1}/4")
            for name, pid in self.target.pids.items():
                rss = read_status_kb(pid, "VmRSS")
                if rss is not None:
                    samples[name].append(rss)
        figures = []
        for name, pid in self.target.pids.items():
            peak = read_status_kb(pid, "VmHWM")
            series = samples[name]
            growth = (series[-1] - series[0]) / 1024 if len(series) >= 2 else 0.0
            peak_mb = (peak or 0) / 1024
            figures.append(
                self.add(
                    Figure(
                        f"memory_{name}",
                        peak_mb,
                        "MB peak RSS",
                        target="< 200 MB after one million events, flat growth",
                        met=peak_mb < 200 and growth < 0.1 * max(peak_mb, 1),
                        detail={
                            "events": quarter * 4,
                            "rss_after_each_quarter_mb": [round(x / 1024, 1) for x in series],
                            "growth_first_to_last_quarter_mb": round(growth, 1),
                            "pid": pid,
                        },
                    )
                )
            )
        return figures

    # --- scale ----------------------------------------------------------------------------

    def scale(self) -> list[Figure]:
        """``ripples.bench.scale``: attribution as the stored history and the company grow,
        with the raw aiokafka consumer and the bare faust agent as ceilings."""
        if self.target.scale is None:
            self.say("      skipped: no place to start the scale step's broker and workers")
            return []
        sizes = self.plan.scale
        run = scaling.Scale(self.target.scale, sizes, self.say, self.progress)
        steps = run.run()
        self.scale_run = run
        figures = [
            self.add(Figure(f"scale_{name}", c["rate"], "records/s", detail=dict(c)))
            for name, c in run.ceilings.items()
        ]
        bare = run.ceilings.get("bare_faust", {}).get("rate", 0.0)
        for step in steps:
            detail = asdict(step)
            figures.append(
                self.add(
                    Figure(
                        step.name,
                        step.rate,
                        "events/s",
                        "scale_bare_faust",
                        ratio(step.rate, bare),
                        detail=detail,
                    )
                )
            )
        # the targets of issue 18, each a ratio of this run
        at_1m = [
            s for s in steps if s.stored == 1_000_000 and s.employees == sizes.series_employees
        ]
        if at_1m:
            share = ratio(at_1m[0].rate, bare)
            figures.append(
                self.add(
                    Figure(
                        "scale_attribution_at_1M",
                        at_1m[0].rate,
                        "events/s",
                        "scale_bare_faust",
                        share,
                        ">= 30,000 mixed events/s into 1M stored events and >= 1.5 x bare faust",
                        at_1m[0].rate >= 30_000 and (share or 0) >= 1.5,
                    )
                )
            )
        for key, value in scaling.growth(steps, sizes).items():
            if value is None:
                continue
            what = (
                f"{sizes.marks[-1]:,} ÷ {sizes.marks[0]:,} stored events"
                if key.endswith("history")
                else f"{max(sizes.employees):,} ÷ {min(sizes.employees):,} employees"
            )
            figures.append(
                self.add(
                    Figure(
                        f"scale_growth_{key}",
                        value,
                        "x",
                        target=f"<= 1.25 ({what})",
                        met=value <= 1.25,
                    )
                )
            )
        return figures

    def run_all(self, only: Sequence[str] = ()) -> list[Figure]:
        steps: list[tuple[str, Callable[[], object]]] = [
            # one step: the ceiling and the batch endpoint are measured in pairs of rounds
            ("raw produce (ceiling) and ingest batch", self.ingest_batch),
            ("ingest single", self.ingest_single),
            ("redirector", self.redirector),
            ("attribution + bare faust", self.attribution),
            ("end to end", self.end_to_end),
            ("memory", self.memory),
            ("scale", self.scale),
        ]
        if only:
            if any("ingest batch".startswith(o) for o in only):  # measured with the ceiling
                only = ["raw", *only]
            steps = [s for s in steps if any(s[0].startswith(o) for o in only)]
        for i, (name, step) in enumerate(steps, 1):
            self.say(f"[{i}/{len(steps)}] {name}")
            started = time.monotonic()
            step()
            self.say(f"      done in {time.monotonic() - started:.1f} s")
        return list(self.figures.values())


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _event(event_id: str, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "urn:ripples:bench",
        "type": f"ripples.{kind}.v1",
        "time": _now(),
        "data": data,
    }


# --- output ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    memory_kb = read_meminfo_kb()
    return {
        "nproc": os.cpu_count(),
        "memory_mb": round(memory_kb / 1024) if memory_kb else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
    }


def read_meminfo_kb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def table(figures: Sequence[Figure]) -> str:
    rows = [("measurement", "value", "unit", "ceiling", "ratio", "target", "met")]
    for f in figures:
        extra = ""
        if "p99_ms" in f.detail:
            extra = f" (p50 {f.detail['p50_ms']:.1f} ms, p99 {f.detail['p99_ms']:.1f} ms)"
        elif f.name == "end_to_end_p99":
            extra = f" (p50 {f.detail['p50_ms']:.0f} ms)"
        elif f.name.startswith("memory_"):
            extra = f" (growth {f.detail['growth_first_to_last_quarter_mb']:+.1f} MB)"
        rows.append(
            (
                f.name,
                f"{f.value:,.1f}{extra}",
                f.unit,
                f.ceiling or "",
                "" if f.ratio is None else f"{f.ratio:.2f}",
                f.target,
                {True: "yes", False: "NO", None: ""}[f.met],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    )


def result(figures: Sequence[Figure], plan: Plan, seconds: float) -> dict[str, Any]:
    return {
        "at": _now(),
        "seconds": round(seconds, 1),
        "machine": machine(),
        "plan": asdict(plan),
        "figures": {f.name: asdict(f) for f in figures},
    }


def write(data: dict[str, Any], out: Path | None, folder: Path) -> Path:
    if out is None:
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / (datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return out


# --- the command ----------------------------------------------------------------------------


def main(
    quick: bool = False,
    rounds: int | None = None,
    out: str | None = None,
    memory_events: int | None = None,
    say: Say = print,
    only: Sequence[str] = (),
    workers: int = 1,
    scale_sizes: Sequence[int] = (),
    scale_employees: Sequence[int] = (),
    scale_window: int | None = None,
    scale_doc: str | None = "docs/performance.md",
) -> int:
    """``ripples bench``: use the running local stack, or bring it up (and down after).
    The scale step's table and plot go into ``scale_doc`` (when that file exists)."""
    from ripples import stack as local

    stack = local.build(local.state_from_cwd())
    started_here = not all(c.running(stack.state) for c in stack.components)
    if started_here:
        say("Starting the local stack for the benchmark …")
        local.up(stack, say)
    extra: list[local.Service] = []
    try:
        for i in range(1, workers):  # more attribution workers, same consumer group
            spec = next(s for s in local.ALL_SERVICES if s.name == "attribution")
            port = spec.port + 10 * i
            worker = local.Service(
                f"attribution{i + 1}",
                f"http://127.0.0.1:{port}",
                marker=spec.module,
                spec=spec,
                port=port,
            )
            say(f"Starting attribution worker {i + 1} on port {port} …")
            worker.start(stack.state, stack.env | {spec.port_variable: str(port)})
            extra.append(worker)
            worker.wait_ready(90)
        pids = {
            s.name: pid for s in stack.services if (pid := stack.state.read_pid(s.name)) is not None
        }
        urls = {s.name: s.address for s in stack.services}
        target = Target(
            ingest=urls["ingest"],
            attribution=urls["attribution"],
            notifier=urls["notifier"],
            bootstrap=stack.env["KAFKA_BOOTSTRAP_SERVERS"],
            api_key=stack.api_key,
            webhook_secret=stack.env.get("NOTIFIER_WEBHOOK_SECRET", ""),
            pids=pids,
            more_attribution=tuple(w.address for w in extra),
            scale=scaling.Place(
                stack.env["DATABASE_URL"], dict(stack.env), stack.state.root / "bench-scale"
            ),
        )
        plan = Plan.quick(rounds or 1) if quick else Plan(rounds=rounds or 3)
        if memory_events:
            plan = replace(plan, memory_events=memory_events)
        sizes = plan.scale
        if scale_sizes:
            sizes = replace(sizes, marks=tuple(sorted(scale_sizes)))
        if scale_employees:
            employees = tuple(sorted(scale_employees))
            sizes = replace(
                sizes,
                employees=employees,
                series_employees=employees[1 if len(employees) > 2 else 0],
            )
        if scale_window:
            sizes = replace(sizes, window=scale_window)
        plan = replace(plan, scale=sizes)
        doc = Path(scale_doc) if scale_doc and Path(scale_doc).exists() else None
        return run(target, plan, Path(out) if out else None, say, only, doc)
    finally:
        for worker in extra:
            worker.stop(stack.state)
        if started_here:
            local.down(stack, say)


def run(
    target: Target,
    plan: Plan,
    out: Path | None,
    say: Say = print,
    only: Sequence[str] = (),
    scale_doc: Path | None = None,
) -> int:
    """Run the measurements, write the JSON (and, when the scale step ran and ``scale_doc``
    is given, its table and plot into that Markdown file, the PNG beside it in images/)."""

    def progress(line: str) -> None:
        if sys.stdout.isatty():
            sys.stdout.write("\r\033[K      " + line[:110])
            sys.stdout.flush()

    def said(line: str) -> None:
        if sys.stdout.isatty():
            sys.stdout.write("\r\033[K")
        say(line)

    m = machine()
    said(
        f"Ripples bench: {m['nproc']} CPUs, {m['memory_mb']} MB, Python {m['python']}; "
        f"{plan.rounds} round(s) after a warm-up"
    )
    started = time.monotonic()
    bench = Bench(target, plan, said, progress)
    figures = bench.run_all(only)
    data = result(figures, plan, time.monotonic() - started)
    path = write(data, out, Path("bench/results"))
    if bench.scale_run is not None and bench.scale_run.steps:
        image = scaling.plot(
            bench.scale_run.steps,
            bench.scale_run.ceilings,
            plan.scale,
            (scale_doc.parent if scale_doc else path.parent) / "images" / "scale-bench.png",
        )
        data["scale_plot"] = str(image)
        write(data, path, Path("bench/results"))
        if scale_doc is not None:
            scaling.write_doc(
                scale_doc,
                scaling.markdown(bench.scale_run.steps, bench.scale_run.ceilings, data["at"]),
                image,
            )
            said(f"scale: table and plot written into {scale_doc} ({image})")
    said("")
    said(table(figures))
    said(f"\n{data['seconds']:.0f} s; wrote {path}")
    return 0
