"""``ripples demo``: the whole pipeline on this machine, with a seeded pilot, in about a minute.

It resets the local stack's data, starts everything (``ripples up``), starts a webhook sink
for the recognition messages, plays twelve weeks of a pilot through the public surfaces,
waits until attribution and notifier have caught up, and prints the period report.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import orjson

from ripples import report
from ripples import stack as local
from ripples.demo import scenario as pilot
from ripples.demo import truth
from ripples.demo.player import Played, Player
from ripples.demo.sink import Sink, serving

SINK_PORT = 8099
# Quicker than production for a demo: recognitions leave at up to 50 a second.
DEMO_ENV = {
    "NOTIFIER_CHANNEL_RATE_PER_S": "50",
    "NOTIFIER_CHANNEL_BURST": "50",
    "NOTIFIER_DISPATCH_INTERVAL_S": "0.2",
}


def _to_stderr(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


class Progress:
    """A one-line progress bar (a line per tenth when the output is not a terminal)."""

    def __init__(self, total: int, label: str, out: Callable[[str], None] | None = None) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.label = label
        self.tty = sys.stderr.isatty()
        self.out = out or _to_stderr
        self.shown = -1

    def __call__(self, steps: int = 1) -> None:
        self.done = min(self.total, self.done + steps)
        share = self.done / self.total
        if self.tty:
            bar = "#" * int(share * 30)
            self.out(f"\r  {self.label:<28} [{bar:<30}] {share:>4.0%}")
            if self.done == self.total:
                self.out("\n")
        elif int(share * 10) > self.shown:
            self.shown = int(share * 10)
            self.out(f"  {self.label:<28} {share:>4.0%}\n")


def metric_sum(text: str, name: str) -> float | None:
    """The sum of every sample of ``name`` in a Prometheus exposition (None if absent)."""
    values = [
        float(m.group(1))
        for m in re.finditer(
            rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.eE+-]+)$", text, re.MULTILINE
        )
    ]
    return sum(values) if values else None


@dataclass
class Caught:
    seconds: float
    stable: bool


async def wait_caught_up(
    attribution: str,
    notifier: str,
    sink: Sink,
    timeout_s: float = 90,
    say: Callable[[str], None] = print,
    *,
    api_key: str,
) -> Caught:
    """Until both consumers report lag 0, the notifier has nothing pending, and the results
    and the sink have stopped changing for a moment."""
    started = time.monotonic()
    last: tuple[object, ...] = ()
    steady = 0
    auth = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(timeout=10) as client:
        while time.monotonic() - started < timeout_s:
            a = (await client.get(f"{attribution}/metrics")).text
            n = (await client.get(f"{notifier}/metrics")).text
            answer = await client.get(f"{attribution}/v1/summary", headers=auth)
            answer.raise_for_status()  # a refused key must not look like a settled pipeline
            summary = answer.text
            state = (
                metric_sum(a, "attribution_consumer_lag_messages"),
                metric_sum(n, "notifier_consumer_lag_messages"),
                metric_sum(n, "notifier_queue_depth"),
                summary,
                len(sink.received),
            )
            idle = state[0] == 0 and state[1] == 0 and state[2] == 0
            steady = steady + 1 if idle and state == last else 0
            last = state
            if steady >= 3:
                return Caught(time.monotonic() - started, True)
            await asyncio.sleep(0.5)
    say("  (gave up waiting for the pipeline to settle; showing what is there)")
    return Caught(time.monotonic() - started, False)


async def check_against_truth(
    attribution: str, scenario: pilot.Scenario, played: Played, sink: Sink, *, api_key: str
) -> list[str]:
    """Compare the results API with what the generator knows it generated."""
    facts = scenario.facts(played.click_times, played.applied_at)
    wanted = {
        "/v1/summary": truth.summary(facts),
        "/v1/sharers": truth.sharers(facts),
        "/v1/ripples": truth.ripples_graph(facts),
    }
    found: list[str] = []
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=attribution, headers=headers, timeout=30) as client:
        for path, want in wanted.items():
            response = await client.get(path)
            response.raise_for_status()
            got = truth.in_order(response.json())
            want = truth.in_order(orjson.loads(orjson.dumps(want, option=orjson.OPT_UTC_Z)))
            found += truth.differences(got, want, path)
            if path == "/v1/summary":
                found += truth.interval_problems(got, want)
    reachable = {p.id for p in scenario.people if p.channel == "webhook" and not p.opt_out}
    due = sum(1 for employee in truth.recognitions(facts).values() if employee in reachable)
    if len(sink.recognition_ids()) != due:
        found.append(f"recognitions: {len(sink.recognition_ids())} reached the sink, {due} due")
    if not found:
        return [
            "Checked against the ground truth the pilot generator computed: summary, "
            f"sharers, ripples and {due} recognitions all agree.\n"
        ]
    return ["The results differ from the pilot's ground truth:", *found[:20], ""]


async def page_line(ingest: str, api_key: str, employee_id: str, name: str) -> str:
    """One line with an ambassador's own page (CONTRACT §11): a page link made through
    ingest's ``POST /v1/employees/{id}/page-links``, opened once to check that it shows the
    figures from attribution."""
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=ingest, timeout=30) as client:
        response = await client.post(f"/v1/employees/{employee_id}/page-links", headers=headers)
        if response.status_code != 201:
            return f"(no page link for {name}: ingest answered {response.status_code})"
        url = response.json()["url"]
        page = await client.get("/me/" + url.split("/me/", 1)[1])
    if page.status_code != 200:
        return f"(the page of {name} answered {page.status_code})"
    if 'class="figure"' not in page.text:
        return f"{name}'s own page (their figures are not there yet): {url}"
    return f"{name}'s own page, with their figures (valid 30 days): {url}"


async def demo(seed: int, size: pilot.Size, say: Callable[[str], None] = print) -> int:
    started = time.monotonic()
    state = local.state_from_cwd()
    previous = local.build(state)
    if any(row[1] == "running" for row in local.status(previous)):
        say("Resetting the local stack (the demo starts from empty) …")
        await asyncio.to_thread(local.down, previous, lambda _: None)
    local.remove_state(state)
    stack = local.build(state, os.environ | DEMO_ENV)
    say("Starting Ripples on this machine …")
    await asyncio.to_thread(local.up, stack, say)
    urls = {s.name: s.address for s in stack.services}
    secrets = {k: stack.env[k] for k in local.LOCAL_SECRETS}
    sink = Sink(secrets["NOTIFIER_WEBHOOK_SECRET"])
    async with serving(sink, SINK_PORT) as sink_url:
        scenario = pilot.generate(seed, size, sink_url=sink_url)
        say(
            f"\nPlaying a {size.weeks}-week pilot: {len(scenario.people)} employees, "
            f"{sum(p.ambassador for p in scenario.people)} ambassadors, "
            f"{len(scenario.posts)} posts, {len(scenario.applications)} applications …"
        )
        player = Player(urls["ingest"], stack.api_key, secrets, sink_url, seed=seed)
        progress = Progress(player.steps(scenario), "through the public APIs")
        player.progress = progress
        played: Played = await player.play(scenario)
        progress(progress.total)
        say("Waiting for attribution and notifier to catch up …")
        caught = await wait_caught_up(
            urls["attribution"], urls["notifier"], sink, say=say, api_key=stack.api_key
        )
        say(
            f"  caught up in {caught.seconds:.1f} s; "
            f"{len(sink.received)} recognition messages reached the webhook sink "
            f"({sum(r.signature_ok for r in sink.received)} with a valid signature).\n"
        )
    truth_lines = await check_against_truth(
        urls["attribution"], scenario, played, sink, api_key=stack.api_key
    )
    for line in truth_lines:
        say(line)
    start, key = scenario.start, stack.api_key
    say(report.fetch(urls["attribution"], key, start, None, fmt="md").decode("utf-8"))
    html = state.root / "demo-report.html"
    html.write_bytes(report.fetch(urls["attribution"], key, start, None, fmt="html"))
    pdf = state.root / "demo-report.da.pdf"
    pdf.write_bytes(report.fetch(urls["attribution"], key, start, None, "last_touch", "da", "pdf"))
    ambassador = next(p for p in scenario.people if p.ambassador and not p.opt_out)
    say(await page_line(urls["ingest"], stack.api_key, ambassador.id, ambassador.name))
    say(f"Played {played.requests} requests; the demo took {time.monotonic() - started:.0f} s.")
    say(f"\nThe HTML report (with charts): {html}\nThe report in Danish, as a PDF: {pdf}")
    say("Running services:")
    for service in stack.services:
        say(f"  {service.name:<12} {service.address}  (API docs {service.address}/openapi.json)")
    say("\nMore: ripples report --locale da --format pdf --out rapport.pdf   ·   ripples status")
    say("Stop everything with: ripples down")
    return 0


def main(seed: int = 7, small: bool = False) -> int:
    size = pilot.SMALL if small else pilot.Size()
    try:
        return asyncio.run(demo(seed, size))
    except (local.StackError, RuntimeError, httpx.HTTPError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
