"""``ripples bench --only scale``: attribution's cost per event as the stored history and the
company grow, next to the raw aiokafka consumer and the bare faust agent of the same run.

Each *series* is one company (``employees``) on a broker and a database of its own (the
step starts them: its own Tansu broker, new databases on the stack's PostgreSQL server), so
no other measurement's events are in it. The series' workload (``ripples.bench.workload``,
the same mix as every other step) goes in a segment at a time: all of a segment but its
last ``window`` events straight into the database with the store's own code in large
transactions (``load store``; not measured: the facts and derived tables do not depend on
where batches fall), then the window to the input topics while no worker runs, and a fresh
attribution worker with the batch size under test stores it from the backlog, measured
from its metrics and ``/proc`` and from PostgreSQL, sampled every quarter second (from the
end of its first batch to its last):

- ``rate``: events stored ÷ seconds over the window;
- ``worker_cpu_s_per_10k``: the worker's utime + stime per 10,000 events stored;
- ``postgres_ms_per_batch``: ``pg_stat_database.active_time`` (time PostgreSQL spent
  executing statements in that database) per batch the worker committed; and
  ``postgres_cpu_s_per_10k``, the CPU of the database's backends per 10,000 events (when
  the server's processes are on this machine);
- ``rss_mb`` / ``peak_rss_mb``: the worker's VmRSS after the window and its VmHWM.

The default sizes: a company of 10,000 employees measured at 100k, 1M and 3M stored events,
and companies of 1,000 and 50,000 employees at 100k, so that the growth with history
(3M ÷ 100k) and with the company (50k ÷ 1k employees) are each one ratio of one run.
The ceilings read records of the largest series' topics (its windows, topped up when they
are fewer than ``ceiling_records``), from the earliest offset:
``python -m ripples.bench.load consume`` (raw aiokafka ``getmany``, no group) and ``faust``
(the bare faust agent with ``take_events``, the same as the attribution step's).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from ripples import stack as local

Say = Callable[[str], None]


@dataclass(frozen=True)
class Sizes:
    """What the scale step measures (``--scale-sizes``, ``--scale-employees``)."""

    marks: tuple[int, ...] = (100_000, 1_000_000, 3_000_000)  # stored events, the series
    employees: tuple[int, ...] = (1_000, 10_000, 50_000)  # companies, at marks[0]
    series_employees: int = 10_000  # the company whose history grows through the marks
    window: int = 40_000  # measured events at the end of each segment (at most half)
    ceiling_records: int = 300_000  # records the ceilings read
    batch_size: int | None = None  # ATTRIBUTION_BATCH_SIZE measured (default: the worker's)
    fill_batch: int = 100_000  # events per transaction of the (unmeasured) fill
    timeout_s: float = 1800.0  # per segment

    @classmethod
    def quick(cls) -> Sizes:
        return cls((20_000, 60_000, 120_000), (200, 1_000, 5_000), 1_000, 10_000, 50_000)

    @classmethod
    def tiny(cls) -> Sizes:
        return cls(
            (3_000, 6_000), (20, 60), 20, 1_500, 500, batch_size=25, fill_batch=1_000,
            timeout_s=180,
        )  # fmt: skip  # 60 batches of 25: the window outlasts the first sample on a busy machine


@dataclass(frozen=True)
class Place:
    """Where the step may start what it needs: a PostgreSQL server (a database URL on it;
    the step creates and drops databases beside it), the environment the attribution
    workers start with (API keys, quick group timeouts, …) and a folder for their state."""

    postgres: str
    env: dict[str, str]
    folder: Path


@dataclass
class Sample:
    at: float
    stored: float
    batches: float
    cpu: float
    pg_active_ms: float
    pg_cpu: float | None


@dataclass
class Step:
    """One measured window."""

    employees: int
    stored: int  # events stored at the window's end
    window: int
    rate: float
    worker_cpu_s_per_10k: float
    postgres_ms_per_batch: float
    postgres_cpu_s_per_10k: float | None
    batches: float
    events_per_batch: float
    rss_mb: float
    peak_rss_mb: float
    seconds: float
    fill_s: float
    samples: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"scale_{_short(self.stored)}_events_{_short(self.employees)}_employees"


def _short(n: int) -> str:
    if n >= 1_000_000 and n % 100_000 == 0:
        return f"{n / 1_000_000:g}M"
    if n >= 1_000 and n % 100 == 0:
        return f"{n / 1_000:g}k"
    return str(n)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (``/proc/<pid>/stat``), or None when it is not readable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_kb(pid: int, name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric_name, _, rest = head.partition("{")
        if metric_name == name and all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += float(value)
    return total


def window_figures(samples: Sequence[Sample]) -> dict[str, float | None]:
    """The window's figures from the samples of a worker storing it: from the first sample
    after its first batch (so the start-up and the first fetch do not count; the first
    sample when no other came between it and the last) to the last sample."""
    first = next((s for s in samples[:-1] if s.stored > 0), samples[0])
    last = samples[-1]
    events = last.stored - first.stored
    seconds = last.at - first.at
    batches = last.batches - first.batches
    if events <= 0 or seconds <= 0 or batches <= 0:
        raise RuntimeError(
            f"a window too short to measure ({events:.0f} events and {batches:.0f} batches "
            f"between samples, {seconds:.2f} s): take a window of at least ten batches "
            "(--scale-window)"
        )
    pg_cpu = (
        None
        if first.pg_cpu is None or last.pg_cpu is None
        else (last.pg_cpu - first.pg_cpu) * 10_000 / events
    )
    return {
        "events": events,
        "seconds": seconds,
        "batches": batches,
        "rate": events / seconds,
        "worker_cpu_s_per_10k": (last.cpu - first.cpu) * 10_000 / events,
        "postgres_ms_per_batch": (last.pg_active_ms - first.pg_active_ms) / batches,
        "postgres_cpu_s_per_10k": pg_cpu,
    }


class Scale:
    """Runs the series; ``steps`` and ``ceilings`` hold what was measured."""

    def __init__(self, place: Place, sizes: Sizes, say: Say, progress: Say) -> None:
        self.place = place
        self.sizes = sizes
        self.say = say
        self.progress = progress
        self.run_id = uuid.uuid4().hex[:6]
        self.state = local.State(place.folder)
        self.state.prepare()
        self.steps: list[Step] = []
        self.ceilings: dict[str, dict[str, float]] = {}

    # --- parts ---------------------------------------------------------------------------

    def _broker(self) -> local.Broker:
        port = free_port()
        broker = local.Broker(
            f"scale-broker-{self.run_id}", f"127.0.0.1:{port}", marker="tansu", port=port
        )
        broker.start(self.state, self.place.env)
        broker.wait_ready(30)
        return broker

    def _worker(self, bootstrap: str, database: str, batch_size: int | None) -> local.Service:
        spec = next(s for s in local.ALL_SERVICES if s.name == "attribution")
        port = free_port()
        worker = local.Service(
            f"scale-attribution-{self.run_id}",
            f"http://127.0.0.1:{port}",
            marker=spec.module,
            spec=spec,
            port=port,
        )
        env = self.place.env | {
            spec.port_variable: str(port),
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DATABASE_URL": database,
            "DATABASE_MIGRATE": "true",
            "LOG_LEVEL": "WARNING",
            "KAFKA_SESSION_TIMEOUT_S": self.place.env.get("KAFKA_SESSION_TIMEOUT_S", "6"),
            "KAFKA_HEARTBEAT_INTERVAL_S": self.place.env.get("KAFKA_HEARTBEAT_INTERVAL_S", "1"),
            "KAFKA_REBALANCE_TIMEOUT_S": self.place.env.get("KAFKA_REBALANCE_TIMEOUT_S", "6"),
        }
        if batch_size:
            env["ATTRIBUTION_BATCH_SIZE"] = str(batch_size)
        worker.start(self.state, env)
        worker.wait_ready(120)
        return worker

    def _database(self, employees: int) -> str:
        name = f"bench_scale_{self.run_id}_{employees}"

        async def create() -> None:
            admin = await asyncpg.connect(self.place.postgres)
            try:
                await admin.execute(f'create database "{name}"')
            finally:
                await admin.close()

        asyncio.run(create())
        return self.place.postgres.rsplit("/", 1)[0] + f"/{name}"

    def _drop(self, database: str) -> None:
        name = database.rsplit("/", 1)[1]

        async def drop() -> None:
            admin = await asyncpg.connect(self.place.postgres)
            try:
                await admin.execute(f'drop database if exists "{name}" with (force)')
            finally:
                await admin.close()

        asyncio.run(drop())

    def _store(self, database: str, total: int, employees: int, start: int, stop: int) -> float:
        from ripples.bench.harness import load

        started = time.monotonic()
        load(
            "store",
            "--database",
            database,
            "--events",
            str(total),
            "--employees",
            str(employees),
            "--start",
            str(start),
            "--stop",
            str(stop),
            "--batch",
            str(self.sizes.fill_batch),
            "--prefix",
            f"s{self.run_id}e{employees}-",
            timeout_s=self.sizes.timeout_s,
        )
        return time.monotonic() - started

    def _fill(self, bootstrap: str, total: int, employees: int, start: int, stop: int) -> float:
        from ripples.bench.harness import load

        started = time.monotonic()
        load(
            "fill",
            "--bootstrap",
            bootstrap,
            "--events",
            str(total),
            "--employees",
            str(employees),
            "--start",
            str(start),
            "--stop",
            str(stop),
            "--prefix",
            f"s{self.run_id}e{employees}-",
            timeout_s=self.sizes.timeout_s,
        )
        return time.monotonic() - started

    # --- one segment ---------------------------------------------------------------------

    def _segment(
        self, bootstrap: str, database: str, employees: int, total: int, start: int, stop: int
    ) -> Step:
        """Events ``start``..``stop`` of the series into the database: all but the window
        straight into it with the store's own code in large transactions (``load store``:
        the stored facts and derived tables do not depend on where batches fall, as the
        kill test shows; not measured), then the window through the broker by a fresh
        worker with the batch size under test, measured."""
        label = f"{_short(employees)} employees, {_short(stop)} events"
        window = min(self.sizes.window, (stop - start) // 2)
        fill_s = 0.0
        if stop - window > start:
            self.progress(f"scale: {label}: storing events {start:,}-{stop - window:,} (fill)")
            fill_s += self._store(database, total, employees, start, stop - window)
        self.progress(f"scale: {label}: writing the window {stop - window:,}-{stop:,}")
        fill_s += self._fill(bootstrap, total, employees, stop - window, stop)
        worker = self._worker(bootstrap, database, self.sizes.batch_size)
        try:
            pid = self.state.read_pid(worker.name)
            assert pid is not None, "the worker wrote no pid"
            samples = asyncio.run(self._watch(worker, pid, database, window, label))
            figures = window_figures(samples)
            step = Step(
                employees=employees,
                stored=stop,
                window=int(figures["events"] or 0),
                rate=float(figures["rate"] or 0),
                worker_cpu_s_per_10k=float(figures["worker_cpu_s_per_10k"] or 0),
                postgres_ms_per_batch=float(figures["postgres_ms_per_batch"] or 0),
                postgres_cpu_s_per_10k=figures["postgres_cpu_s_per_10k"],
                batches=float(figures["batches"] or 0),
                events_per_batch=float(figures["events"] or 0) / float(figures["batches"] or 1),
                rss_mb=status_kb(pid, "VmRSS") / 1024,
                peak_rss_mb=status_kb(pid, "VmHWM") / 1024,
                seconds=float(figures["seconds"] or 0),
                fill_s=fill_s,
                samples=len(samples),
            )
        finally:
            worker.stop(self.state)
        self.say(
            f"      {label}: {step.rate:,.0f} events/s, worker {step.worker_cpu_s_per_10k:.2f} "
            f"CPU s per 10k, PostgreSQL {step.postgres_ms_per_batch:.0f} ms per batch of "
            f"{step.events_per_batch:,.0f}, RSS {step.rss_mb:.0f} MB (fill {fill_s:.0f} s)"
        )
        return step

    async def _watch(
        self, worker: local.Service, pid: int, database: str, segment: int, label: str
    ) -> list[Sample]:
        """Sample until the worker stored ``segment`` events (its own counter: a fresh
        process), then once more after PostgreSQL flushed its statistics."""
        name = database.rsplit("/", 1)[1]
        conn = await asyncpg.connect(database)
        samples: list[Sample] = []
        deadline = time.monotonic() + self.sizes.timeout_s
        try:
            own = await conn.fetchval("select pg_backend_pid()")
            async with httpx.AsyncClient(timeout=10) as client:

                async def sample() -> Sample:
                    text = (await client.get(f"{worker.address}/metrics")).text
                    at = time.monotonic()
                    active = await conn.fetchval(
                        "select active_time from pg_stat_database where datname = $1", name
                    )
                    backends = [
                        r["pid"]
                        for r in await conn.fetch(
                            "select pid from pg_stat_activity where datname = $1 and pid <> $2 "
                            "and backend_type = 'client backend'",
                            name,
                            own,
                        )
                    ]
                    times = [cpu_seconds(b) for b in backends]
                    return Sample(
                        at,
                        metric(text, "attribution_events_processed_total", outcome="stored"),
                        metric(text, "attribution_batch_size_events_count"),
                        cpu_seconds(pid) or 0.0,
                        float(active or 0.0),
                        None if None in times else sum(t or 0.0 for t in times),
                    )

                while time.monotonic() < deadline:
                    s = await sample()
                    samples.append(s)
                    self.progress(f"scale: {label}: {s.stored:,.0f}/{segment:,} stored")
                    if s.stored >= segment:
                        break
                    await asyncio.sleep(0.25 if len(samples) > 10 else 0.05)
                else:
                    raise RuntimeError(f"scale: {label}: not stored within the time allowed")
                # a backend's statistics reach pg_stat_database at most once a second, and
                # an idle backend's within ~10 s: wait until the window's have arrived
                first_active = next((x.pg_active_ms for x in samples if x.stored > 0), 0.0)
                final = await sample()
                settle = time.monotonic() + 12
                previous = -1.0
                while time.monotonic() < settle and not (
                    final.pg_active_ms > first_active and final.pg_active_ms == previous
                ):
                    previous = final.pg_active_ms
                    await asyncio.sleep(1.0)
                    final = await sample()
                last = samples[-1]
                samples[-1] = Sample(
                    last.at,
                    last.stored,
                    last.batches,
                    last.cpu,
                    final.pg_active_ms,
                    last.pg_cpu,
                )
        finally:
            await conn.close()
        return samples

    # --- the ceilings --------------------------------------------------------------------

    def _ceilings(self, bootstrap: str, on_topics: int) -> None:
        """Both ceilings over ``ceiling_records`` records of the topics (which hold the
        windows, ``on_topics`` records: more are written first when that is not enough
        for the count and the bare faust agent's first batch, which does not count)."""
        from ripples.bench.harness import load

        count = self.sizes.ceiling_records
        missing = count + 4_000 - on_topics
        if missing > 0:
            self.progress(f"scale: {missing:,} more records for the ceilings")
            load(
                "fill",
                "--bootstrap",
                bootstrap,
                "--events",
                str(missing),
                "--prefix",
                f"c{self.run_id}-",
                timeout_s=self.sizes.timeout_s,
            )
        for kind, name in (("consume", "raw_consume"), ("faust", "bare_faust")):
            self.progress(f"scale: ceiling {name} over {count:,} records")
            run = load(kind, "--bootstrap", bootstrap, "--count", str(count), timeout_s=600)
            self.ceilings[name] = {
                "rate": run["count"] / max(run["seconds"], 1e-6),
                "records": run["count"],
                "seconds": run["seconds"],
            }

    # --- the whole step ------------------------------------------------------------------

    def series(self) -> Iterator[tuple[int, tuple[int, ...]]]:
        """(employees, marks) of each series: the small and large companies at the first
        mark, the series company through every mark (last, so the ceilings read its
        topics)."""
        sizes = self.sizes
        for employees in sizes.employees:
            if employees != sizes.series_employees:
                yield employees, sizes.marks[:1]
        yield sizes.series_employees, sizes.marks

    def run(self) -> list[Step]:
        for employees, marks in self.series():
            broker = self._broker()
            database = self._database(employees)
            try:
                previous = 0
                for mark in marks:
                    step = self._segment(
                        broker.address, database, employees, marks[-1], previous, mark
                    )
                    self.steps.append(step)
                    previous = mark
                if employees == self.sizes.series_employees:
                    on_topics = sum(s.window for s in self.steps if s.employees == employees)
                    self._ceilings(broker.address, on_topics)
            finally:
                broker.stop(self.state)
                self._drop(database)
        return self.steps


# --- what the steps say ------------------------------------------------------------------------


def growth(steps: Sequence[Step], sizes: Sizes) -> dict[str, float | None]:
    """The target ratios: the last mark ÷ the first for the series company, the largest
    company ÷ the smallest at the first mark (worker CPU per 10k and PostgreSQL per batch)."""
    series = {s.stored: s for s in steps if s.employees == sizes.series_employees}
    first_mark = {s.employees: s for s in steps if s.stored == sizes.marks[0]}
    out: dict[str, float | None] = {}
    small, large = min(first_mark), max(first_mark)
    lo, hi = series.get(sizes.marks[0]), series.get(sizes.marks[-1])
    for key in ("worker_cpu_s_per_10k", "postgres_ms_per_batch"):
        out[f"{key}_history"] = (
            None
            if lo is None or hi is None or not getattr(lo, key)
            else getattr(hi, key) / getattr(lo, key)
        )
        a, b = first_mark[small], first_mark[large]
        out[f"{key}_company"] = getattr(b, key) / getattr(a, key) if getattr(a, key) else None
    return out


def markdown(steps: Sequence[Step], ceilings: dict[str, dict[str, float]], at: str) -> str:
    """The table for docs/performance.md."""
    bare = ceilings.get("bare_faust", {}).get("rate")
    raw = ceilings.get("raw_consume", {}).get("rate")
    lines = [
        f"Run of {at}: ceilings in the same run: raw aiokafka consumer "
        f"**{raw or 0:,.0f} records/s**, bare faust agent **{bare or 0:,.0f} records/s**.",
        "",
        "| employees | stored events | rate (events/s) | × bare faust | worker CPU s per "
        "10k events | PostgreSQL ms per batch | PostgreSQL CPU s per 10k | events per batch "
        "| RSS (peak) MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in steps:
        pg_cpu = "—" if s.postgres_cpu_s_per_10k is None else f"{s.postgres_cpu_s_per_10k:.2f}"
        share = f"{s.rate / bare:.2f}" if bare else "—"
        lines.append(
            f"| {s.employees:,} | {s.stored:,} | {s.rate:,.0f} | {share} | "
            f"{s.worker_cpu_s_per_10k:.2f} | {s.postgres_ms_per_batch:.0f} | {pg_cpu} | "
            f"{s.events_per_batch:,.0f} | {s.rss_mb:.0f} ({s.peak_rss_mb:.0f}) |"
        )
    return "\n".join(lines) + "\n"


def plot(
    steps: Sequence[Step], ceilings: dict[str, dict[str, float]], sizes: Sizes, out: Path
) -> Path:
    """A PNG: rate and the two costs against stored events (the series company) and
    against the company's size (at the first mark)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    series = sorted(
        (s for s in steps if s.employees == sizes.series_employees), key=lambda s: s.stored
    )
    companies = sorted((s for s in steps if s.stored == sizes.marks[0]), key=lambda s: s.employees)
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), constrained_layout=True)
    for row, (group, attr, label) in enumerate(
        (
            (series, "stored", f"stored events ({sizes.series_employees:,} employees)"),
            (companies, "employees", f"employees (at {sizes.marks[0]:,} stored events)"),
        )
    ):
        xs = [getattr(s, attr) for s in group]
        rate_ax, cost_ax = axes[row]
        rate_ax.plot(xs, [s.rate for s in group], "o-", label="attribution (one worker)")
        for name, style in (("bare_faust", "--"), ("raw_consume", ":")):
            if name in ceilings:
                rate_ax.axhline(ceilings[name]["rate"], linestyle=style, color="grey")
                rate_ax.annotate(
                    name.replace("_", " "),
                    (xs[0], ceilings[name]["rate"]),
                    textcoords="offset points",
                    xytext=(2, 3),
                    fontsize=8,
                    color="grey",
                )
        rate_ax.set_xscale("log")
        rate_ax.set_yscale("log")
        rate_ax.set_xlabel(label)
        rate_ax.set_ylabel("events/s")
        rate_ax.set_title("rate")
        cost_ax.plot(xs, [s.worker_cpu_s_per_10k for s in group], "o-", label="worker CPU s / 10k")
        cost_ax.set_xscale("log")
        cost_ax.set_xlabel(label)
        cost_ax.set_ylabel("worker CPU s per 10,000 events")
        twin = cost_ax.twinx()
        twin.plot(
            xs,
            [s.postgres_ms_per_batch for s in group],
            "s--",
            color="tab:red",
            label="PostgreSQL ms / batch",
        )
        twin.set_ylabel("PostgreSQL ms per batch", color="tab:red")
        cost_ax.set_title("cost: worker CPU (o) and PostgreSQL per batch (s)")
        cost_ax.set_ylim(bottom=0)
        twin.set_ylim(bottom=0)
    fig.suptitle("Attribution, one worker: cost per event as history and company grow")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


BEGIN, END = "<!-- scale-bench:begin -->", "<!-- scale-bench:end -->"


def write_doc(doc: Path, table: str, image: Path) -> None:
    """Put ``table`` and the image between the markers of ``doc`` (kept when absent)."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    rel = os.path.relpath(image, doc.parent)
    block = f"{BEGIN}\n{table}\n![the scale benchmark]({rel})\n{END}"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.write_text(text, encoding="utf-8")
