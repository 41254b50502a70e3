"""``ripples``: run Ripples on this machine.

ripples up                 start the broker, PostgreSQL and every service; wait until ready
ripples status             what runs, with pids and addresses
ripples logs SERVICE       a component's log (-f to follow)
ripples bench              measure it next to the raw ceilings (bench/results/*.json)
ripples down               stop everything, leave no process behind
ripples migrate            apply every service's database migrations (DATABASE_URL), once
ripples recompute          re-derive attribution's results from its facts after a settings change
ripples import employees FILE.csv   import a spreadsheet (a dry run first, then the import)
ripples import jobs FILE.csv
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx

from ripples import report
from ripples import stack as local


def _say(line: str) -> None:
    print(line, flush=True)


def cmd_up(args: argparse.Namespace) -> int:
    stack = local.build(local.state_from_cwd())
    _say(f"Starting Ripples (state in {stack.state.root})")
    started = time.monotonic()
    try:
        local.up(stack, _say, timeout_s=args.timeout)
    except local.StackError as exc:
        _say(f"error: {exc}")
        return 1
    _say(f"\nReady in {time.monotonic() - started:.1f} s.")
    for service in stack.services:
        _say(
            f"  {service.name:<12} {service.address}   "
            f"(OpenAPI {service.address}/openapi.json, metrics {service.address}/metrics)"
        )
    _say(f"  {'broker':<12} {stack.env['KAFKA_BOOTSTRAP_SERVERS']}")
    _say(f"  {'postgres':<12} {stack.env['DATABASE_URL']}")
    source = (
        "RIPPLES_API_KEY" if stack.api_key != _file_key(stack) else str(stack.state.api_key_file)
    )
    _say(f"\nAPI key of all three services (from {source}):\n  {stack.api_key}")
    _say(
        '\nTry:\n  curl -H "Authorization: Bearer $(cat .ripples/api_key)" '
        "-H 'Content-Type: application/cloudevents+json' -d @event.json "
        "http://127.0.0.1:8080/v1/events\n"
        '  curl -H "Authorization: Bearer $(cat .ripples/api_key)" '
        "http://127.0.0.1:8081/v1/summary\n"
        "  an employee's own page (open the url it answers in a browser):\n"
        '  curl -X POST -H "Authorization: Bearer $(cat .ripples/api_key)" '
        f"{_address(stack, 'ingest')}/v1/employees/EMPLOYEE_ID/page-links"
    )
    _say("Stop with: ripples down")
    return 0


def _address(stack: local.Stack, name: str) -> str:
    return next((s.address for s in stack.services if s.name == name), "http://127.0.0.1:8080")


def _file_key(stack: local.Stack) -> str | None:
    path = stack.state.api_key_file
    return path.read_text().strip() if path.exists() else None


def cmd_status(_: argparse.Namespace) -> int:
    stack = local.build(local.state_from_cwd())
    rows = list(local.status(stack))
    _say(f"{'component':<12} {'state':<9} {'pid':>8}  address")
    for name, state, pid, address in rows:
        _say(f"{name:<12} {state:<9} {pid:>8}  {address}")
    return 0 if all(state != "stopped" for _, state, _, _ in rows) else 3


def cmd_logs(args: argparse.Namespace) -> int:
    stack = local.build(local.state_from_cwd())
    try:
        stack.component(args.service)
    except local.StackError as exc:
        _say(f"error: {exc}")
        return 2
    for line in local.log_tail(stack.state, args.service, args.lines):
        _say(line)
    if not args.follow:
        return 0
    path = stack.state.log_file(args.service)
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            while True:
                chunk = handle.readline()
                if chunk:
                    sys.stdout.write(chunk.decode(errors="replace"))
                    sys.stdout.flush()
                else:
                    time.sleep(0.2)
    except KeyboardInterrupt:
        return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ripples.demo import run

    return run.main(args.seed, args.small)


def cmd_bench(args: argparse.Namespace) -> int:
    from ripples.bench import harness

    only = [o.strip() for o in args.only.split(",")] if args.only else []
    return harness.main(
        args.quick,
        args.rounds,
        args.out,
        args.events,
        _say,
        only,
        args.attribution_workers,
        scale_sizes=args.scale_sizes,
        scale_employees=args.scale_employees,
        scale_window=args.scale_window,
        scale_doc=args.scale_doc,
    )


def cmd_down(args: argparse.Namespace) -> int:
    stack = local.build(local.state_from_cwd())
    _say("Stopping Ripples")
    local.down(stack, _say)
    if args.purge:
        local.remove_state(stack.state)
        _say(f"  removed {stack.state.root}")
    return 0


def _sizes(value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part.replace("_", "")) for part in value.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of counts: {value!r}"
        ) from None
    if not sizes or min(sizes) < 10:
        raise argparse.ArgumentTypeError(f"counts of at least 10 expected: {value!r}")
    return sizes


def _time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def cmd_report(args: argparse.Namespace) -> int:
    stack = local.build(local.state_from_cwd())
    urls = {s.name: s.address for s in stack.services}
    attribution = args.attribution or urls.get("attribution")
    if attribution is None:
        _say("error: no attribution service in this checkout; pass --attribution URL")
        return 2
    try:
        if args.share:
            link = report.share_link(
                attribution, stack.api_key, args.start, args.end, args.model, args.locale,
                args.share,
            )  # fmt: skip
            _say(f"{link['url']}\n  (opens without a key until {link['expires_at']})")
            return 0
        body = report.fetch(
            attribution, stack.api_key, args.start, args.end, args.model, args.locale, args.format
        )
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code != 401:
            raise
        _say("error: the API refused the key; set RIPPLES_API_KEY to a key it accepts")
        return 1
    except httpx.HTTPError as exc:
        _say(f"error: the results API did not answer ({exc}); is the stack up? (ripples up)")
        return 1
    if args.out:
        Path(args.out).write_bytes(body)
        _say(f"wrote {args.out}")
    elif args.format == "pdf":
        _say("error: a PDF is not for the terminal; pass --out FILE")
        return 2
    else:
        sys.stdout.write(body.decode("utf-8"))
    return 0


class _Upload:
    """The file's bytes in chunks, drawing a bar of the bytes httpx has taken to send (it
    asks for the next chunk once the previous one was written to the socket)."""

    CHUNK = 64 * 1024

    def __init__(self, data: bytes, label: str) -> None:
        self.data = data
        self.label = label

    def __iter__(self) -> Iterator[bytes]:
        total = len(self.data)
        for start in range(0, total, self.CHUNK):
            yield self.data[start : start + self.CHUNK]
            self._draw(min(start + self.CHUNK, total), total)
        if not total:
            self._draw(0, 0)
        sys.stderr.write("\n")

    def _draw(self, done: int, total: int) -> None:
        width = 30
        filled = width if not total else done * width // total
        percent = 100 if not total else done * 100 // total
        sys.stderr.write(
            f"\r{self.label:<10} [{'#' * filled}{'.' * (width - filled)}] {percent:3d}%"
            f" {done // 1024} / {total // 1024} KiB"
        )
        sys.stderr.flush()


def cmd_import(args: argparse.Namespace) -> int:
    """POST the file to /v1/{kind}:import: a dry run (every error at once), then the import."""
    stack = local.build(local.state_from_cwd())
    base = args.ingest or {s.name: s.address for s in stack.services}["ingest"]
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        _say(f"error: {args.file}: {exc.strerror}")
        return 2
    url = f"{base.rstrip('/')}/v1/{args.kind}:import"
    headers = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "text/csv"}
    with httpx.Client(timeout=args.timeout) as client:
        for dry_run, label in ((True, "checking"), (False, "importing")):
            try:
                response = client.post(
                    url,
                    params={"dry_run": "true"} if dry_run else None,
                    content=_Upload(data, label),
                    headers={**headers, "Content-Length": str(len(data))},
                )
            except httpx.HTTPError as exc:
                _say(f"error: ingest did not answer ({exc}); is the stack up? (ripples up)")
                return 1
            body = response.json() if "json" in response.headers.get("content-type", "") else {}
            if response.status_code == 422 and "errors" in body:
                _say(f"{args.file}: {body.get('detail', 'invalid')}")
                for error in body["errors"]:
                    column = f", {error['column']}" if error.get("column") else ""
                    _say(f"  line {error.get('line', '?')}{column}: {error.get('detail')}")
                return 1
            if response.status_code >= 400:
                _say(f"error: {response.status_code} {body.get('detail') or response.text}")
                return 1
            if dry_run:
                _say(f"{body['rows']} rows valid, {body['published']} new or changed")
        _say(f"imported: {body['rows']} rows, {body['published']} published")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """The deployments' admin step (``python -m shared.db migrate`` does the same)."""
    from shared import db

    return db.main(["migrate"])


def cmd_recompute(args: argparse.Namespace) -> int:
    """Re-derive every derived attribution table with the ``ATTRIBUTION_*`` settings of this
    environment (DATABASE_URL), with a progress bar; the results API keeps answering."""
    import asyncio

    import asyncpg
    from rich.progress import Progress, TaskID

    from services.attribution.recompute import recompute
    from services.attribution.settings import AttributionSettings
    from shared.settings import database_settings, load

    settings = load(AttributionSettings, "ATTRIBUTION_")

    async def run() -> None:
        conn = await asyncpg.connect(database_settings().url)
        try:
            with Progress() as bar:
                tasks: dict[str, TaskID] = {}

                def progress(stage: str, done: int, total: int) -> None:
                    if stage not in tasks:
                        tasks[stage] = bar.add_task(stage, total=max(total, 1))
                    bar.update(tasks[stage], completed=done, total=max(total, 1))

                done = await recompute(conn, settings, progress)
        finally:
            await conn.close()
        _say(
            f"recomputed {done.employees} placements and {done.applicants} conversions from "
            f"{done.events} stored events in {done.seconds:.1f} s "
            f"({done.events / max(done.seconds, 1e-9):,.0f} events/s); "
            f"{done.credits_assigned} credit.assigned and {done.recognitions} new recognitions sent"
        )

    asyncio.run(run())
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="ripples",
        description="Run Ripples on this machine.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="start the local stack and wait until it is ready")
    up.add_argument(
        "--timeout",
        type=float,
        default=90.0,
        help="seconds to wait for each component (default 90)",
    )
    up.set_defaults(run=cmd_up)

    status = commands.add_parser("status", help="show what runs")
    status.set_defaults(run=cmd_status)

    logs = commands.add_parser("logs", help="show a component's log")
    logs.add_argument("service", help="broker, postgres, ingest, attribution or notifier")
    logs.add_argument("-n", "--lines", type=int, default=100, help="lines to show (100)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.set_defaults(run=cmd_logs)

    rep = commands.add_parser("report", help="the period report, from the results API")
    rep.add_argument("--from", dest="start", type=_time, help="period start (RFC 3339)")
    rep.add_argument("--to", dest="end", type=_time, help="period end, exclusive (RFC 3339)")
    rep.add_argument(
        "--model",
        choices=report.MODELS,
        default="last_touch",
        help="credit model (default last_touch)",
    )
    rep.add_argument("--locale", choices=report.LOCALES, default="en", help="da or en (en)")
    rep.add_argument("--format", choices=report.FORMATS, default="md")
    rep.add_argument("--out", help="write to this file instead of standard output")
    rep.add_argument(
        "--share", type=int, metavar="SECONDS", help="print a share link valid this long instead"
    )
    rep.add_argument("--attribution", help="results API URL (default: the local stack's)")
    rep.epilog = "The API key: RIPPLES_API_KEY, else the local stack's (.ripples/api_key)."
    rep.set_defaults(run=cmd_report)

    demo = commands.add_parser(
        "demo", help="reset the local stack, play a seeded pilot through it, show the report"
    )
    demo.add_argument("--seed", type=int, default=7, help="the pilot's random seed (7)")
    demo.add_argument("--small", action="store_true", help="a smaller pilot (45 employees)")
    demo.set_defaults(run=cmd_demo)

    bench = commands.add_parser(
        "bench", help="measure throughput, latency and memory next to the raw ceilings"
    )
    bench.add_argument("--quick", action="store_true", help="about a minute instead of five")
    bench.add_argument("--rounds", type=int, help="measured rounds after the warm-up (3)")
    bench.add_argument("--out", help="the JSON file (default bench/results/<timestamp>.json)")
    bench.add_argument(
        "--events", type=int, help="events for the memory run (default 40,000; try 1000000)"
    )
    bench.add_argument(
        "--only",
        help="comma-separated measurements to run: raw, ingest batch, ingest single, "
        "redirector, attribution, end, memory, scale (default: all)",
    )
    bench.add_argument(
        "--scale-sizes",
        type=_sizes,
        default=(),
        metavar="N,N,N",
        help="scale: stored events to measure at (default 100000,1000000,3000000)",
    )
    bench.add_argument(
        "--scale-employees",
        type=_sizes,
        default=(),
        metavar="N,N,N",
        help="scale: company sizes (default 1000,10000,50000; the middle one grows its history)",
    )
    bench.add_argument(
        "--scale-window", type=int, help="scale: events measured at each size (40000)"
    )
    bench.add_argument(
        "--scale-doc",
        default="docs/performance.md",
        help="scale: the Markdown file its table and plot go into (docs/performance.md)",
    )
    bench.add_argument(
        "--attribution-workers",
        type=int,
        default=1,
        help="start more attribution workers in the same group for the run (default 1)",
    )
    bench.set_defaults(run=cmd_bench)

    down = commands.add_parser("down", help="stop everything")
    down.add_argument(
        "--purge", action="store_true", help="also delete .ripples/ (database, logs, API key)"
    )
    down.set_defaults(run=cmd_down)

    imp = commands.add_parser("import", help="import employees or jobs from a CSV file")
    imp.add_argument("kind", choices=["employees", "jobs"])
    imp.add_argument("file", help="CSV (UTF-8, ; or , separated) with a header row")
    imp.add_argument("--ingest", help="ingest's address (default: the local stack's)")
    imp.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    imp.set_defaults(run=cmd_import)

    migrate = commands.add_parser(
        "migrate",
        help="apply every service's database migrations (DATABASE_URL or DATABASE_URL_FILE)",
    )
    migrate.set_defaults(run=cmd_migrate)

    recompute = commands.add_parser(
        "recompute",
        help="re-derive attribution's derived tables from the stored facts with the current "
        "ATTRIBUTION_* settings (DATABASE_URL), swapped in at once",
    )
    recompute.set_defaults(run=cmd_recompute)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.run(args)
    return code
