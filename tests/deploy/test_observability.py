"""The queries against the real thing: a real Prometheus (Debian's binary, on loopback)
scrapes the services of this checkout, started as processes against the real broker and
PostgreSQL, with the Ripples alert rules loaded. Every PromQL expression of the dashboards
and rules must parse, every rule must evaluate, and every metric they name must be exported
by the running services. The SQL panels run against a database migrated by the services."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml

from ripples import stack
from shared.db import migrate
from tests.conftest import Running, free_port, start_broker, start_service
from tests.deploy.pydeps import ROOT
from tests.deploy.queries import (
    RULES,
    SERVICE_PREFIXES,
    dashboard_promql,
    dashboard_sql,
    metric_names,
    plain_promql,
    plain_sql,
    rule_promql,
)

pytestmark = pytest.mark.integration

PRESENT = [s.name for s in stack.ALL_SERVICES if s.exists()]
FAST_GROUPS = {
    "KAFKA_SESSION_TIMEOUT_S": "6",
    "KAFKA_HEARTBEAT_INTERVAL_S": "1",
    "KAFKA_REBALANCE_TIMEOUT_S": "6",
}


@pytest.fixture(scope="module")
def service_database(postgres: Running) -> Iterator[str]:
    """One database for the services of this module."""
    name = f"deploy_{uuid.uuid4().hex[:12]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(postgres.address)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'create database "{name}"'))
    yield postgres.address.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(run(f'drop database "{name}" with (force)'))


@pytest.fixture(scope="module")
def services(
    broker: Running, service_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Running]]:
    running: dict[str, Running] = {}
    try:
        for name in PRESENT:
            running[name] = start_service(
                name,
                tmp_path_factory.mktemp(name),
                broker,
                DATABASE_URL=service_database,
                **FAST_GROUPS,
            )
        yield running
    finally:
        for service in running.values():
            service.stop()


def query(base: str, path: str, **params: str) -> dict[str, Any]:
    response = httpx.get(f"{base}{path}", params=params, timeout=10)
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def prometheus(
    prometheus_bin: str, services: dict[str, Running], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in sorted(RULES.glob("*.yml"))],
        "scrape_configs": [
            {
                "job_name": name,
                "static_configs": [{"targets": [service.address.removeprefix("http://")]}],
            }
            for name, service in services.items()
        ],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (folder / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            prometheus_bin,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # Some traffic first, so request counters have series.
        for service in services.values():
            httpx.get(f"{service.address}/livez", timeout=5)
            httpx.get(f"{service.address}/readyz", timeout=5)
        deadline = time.monotonic() + 30
        while True:
            try:
                up = query(base, "/api/v1/query", query="up == 1")["data"]["result"]
                scraped = {r["metric"]["job"] for r in up}
                rules = query(base, "/api/v1/rules")["data"]["groups"]
                evaluated = all(
                    not r["lastEvaluation"].startswith("0001-") for g in rules for r in g["rules"]
                )
                if scraped == set(services) and rules and evaluated:
                    break
            except (httpx.HTTPError, ValueError):
                pass  # not listening yet, or its plain-text 503 while the TSDB starts
            assert time.monotonic() < deadline, (folder / "prometheus.log").read_text()[-3000:]
            time.sleep(0.2)
        time.sleep(2.5)  # a few more scrapes and rule evaluations
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_every_promql_expression_parses(prometheus: str) -> None:
    expressions = dashboard_promql() + rule_promql()
    assert len(expressions) > 30
    for expr in expressions:
        answer = query(prometheus, "/api/v1/query", query=plain_promql(expr))
        assert answer["status"] == "success", f"{expr}\n{answer.get('error')}"


def test_a_broken_expression_is_refused(prometheus: str) -> None:
    answer = query(prometheus, "/api/v1/query", query="sum by (job (up)")
    assert answer["status"] == "error"
    assert answer["errorType"] == "bad_data"


def test_every_rule_evaluates(prometheus: str) -> None:
    groups = query(prometheus, "/api/v1/rules")["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == len(rule_promql())
    for rule in rules:
        assert rule["health"] in ("ok", "unknown"), f"{rule['name']}: {rule.get('lastError')}"
        assert rule.get("lastError", "") == "", rule["name"]


def missing_metrics(expressions: list[str], exported: set[str], service: str) -> set[str]:
    named = {m for e in expressions for m in metric_names(e) if m.startswith(f"{service}_")}
    return named - exported


def test_missing_metric_detection() -> None:
    exprs = ["sum(rate(ingest_events_accepted_total[5m]))", "ingest_not_exported_total > 0"]
    assert missing_metrics(exprs, {"ingest_events_accepted_total"}, "ingest") == {
        "ingest_not_exported_total"
    }


@pytest.mark.parametrize("service", SERVICE_PREFIXES)
def test_every_metric_named_is_exported(prometheus: str, service: str) -> None:
    if service not in PRESENT:
        pytest.skip(f"services/{service} is not in this checkout yet")
    exported = set(query(prometheus, "/api/v1/label/__name__/values")["data"])
    assert any(name.startswith(f"{service}_") for name in exported)
    missing = missing_metrics(dashboard_promql() + rule_promql(), exported, service)
    assert not missing, f"dashboards/rules name metrics {service} does not export: {missing}"


# --- SQL panels ---------------------------------------------------------------------------


@pytest.fixture
async def migrated(database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database)
    try:
        for name in PRESENT:
            folder = ROOT / "services" / name / "migrations"
            if folder.is_dir():
                await migrate(conn, name, folder)
        yield conn
    finally:
        await conn.close()


async def test_every_sql_panel_runs_on_a_migrated_database(
    migrated: asyncpg.Connection,
) -> None:
    if not (ROOT / "services" / "attribution" / "migrations").is_dir():
        pytest.skip("services/attribution (the owner of the reporting views) is not here yet")
    panels = dashboard_sql()
    assert len(panels) >= 8
    for title, sql in panels:
        try:
            await migrated.fetch(plain_sql(sql))
        except asyncpg.PostgresError as error:
            pytest.fail(f"panel {title!r}: {error}\n(deploy/README.md lists the views)")


async def test_a_broken_sql_panel_fails(database: str) -> None:
    conn = await asyncpg.connect(database)
    try:
        with pytest.raises(asyncpg.UndefinedTableError):
            await conn.fetch(plain_sql("select 1 from attribution.no_such_view"))
    finally:
        await conn.close()


def test_plain_sql_replaces_every_macro() -> None:
    assert plain_sql("select 1 where $__timeFilter(day) and m = '$model'") == (
        "select 1 where day between '2000-01-01T00:00:00Z' and '2100-01-01T00:00:00Z'"
        " and m = 'last_touch'"
    )
    for _, sql in dashboard_sql():
        plain_sql(sql)


# --- the compose commands, run for real ---------------------------------------------------


def compose_service(name: str) -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    service: dict[str, Any] = services[name]
    return service


def run_command(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert command[0] == "python"
    return subprocess.run(
        [sys.executable, *command[1:]],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)} | env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("name", PRESENT)
def test_compose_healthcheck_passes_on_a_ready_service(
    services: dict[str, Running], name: str
) -> None:
    command = compose_service(name)["healthcheck"]["test"][1:]
    port = services[name].address.rsplit(":", 1)[1]
    variable = f"{name.upper()}_PORT"
    assert run_command(command, {variable: port}).returncode == 0
    assert run_command(command, {variable: str(free_port())}).returncode != 0


async def test_topics_job_command_creates_the_topics(tmp_path: Path) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    from shared.events import TOPICS

    broker = start_broker(tmp_path)  # a fresh broker: no service has created topics on it
    try:
        job = compose_service("topics")
        env = {k: str(v) for k, v in job["environment"].items()}
        env["KAFKA_BOOTSTRAP_SERVERS"] = broker.address
        first = run_command(job["entrypoint"], env)
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip() == f"created topics: {[t.name for t in TOPICS]}"
        again = run_command(job["entrypoint"], env)
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip() == "created topics: []", "a second run changes nothing"
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.address)
        await admin.start()
        try:
            described = await admin.describe_topics([t.name for t in TOPICS])
        finally:
            await admin.close()
    finally:
        broker.stop()
    partitions = {d["topic"]: len(d["partitions"]) for d in described}
    assert partitions == {t.name: t.partitions for t in TOPICS}


# --- what an image holds is enough to run the service ---------------------------------------


def image_tree(service: str, folder: Path) -> tuple[Path, Path]:
    """The files the service's image would hold, without an engine: the packages of its
    requirements.txt (linked from this virtualenv's installed files) and what the runtime
    stage of its Dockerfile COPYs from the build context. Returns (app dir, site dir)."""
    from importlib import metadata

    from tests.deploy.pydeps import read_pins
    from tests.deploy.test_images import instructions, stages

    site = folder / "site-packages"
    for name in read_pins(ROOT / "services" / service / "requirements.txt"):
        dist = metadata.distribution(name)
        for file in dist.files or []:
            if file.parts[0] == "..":  # console scripts outside site-packages
                continue
            source = Path(str(dist.locate_file(file)))
            if source.is_file():
                target = site / file
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(source)
    from tests.deploy.smoke import DOCKERFILE, build_args

    runtime = stages(instructions(DOCKERFILE, build_args(service)))[-1]
    app = folder / "app"
    for keyword, args in runtime:
        parts = args.split()
        if keyword != "COPY" or any(p.startswith("--from=") for p in parts):
            continue
        *sources, destination = parts
        for source in sources:
            target = folder / destination.lstrip("/")
            if (ROOT / source).is_dir():
                shutil.copytree(
                    ROOT / source,
                    target,
                    ignore=shutil.ignore_patterns("__pycache__"),
                    dirs_exist_ok=True,  # COPY merges into what is there
                )
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, target)
    return app, site


@pytest.mark.parametrize("service", PRESENT)
def test_the_image_contents_run_the_service(
    broker: Running, service_database: str, tmp_path: Path, service: str
) -> None:
    app, site = image_tree(service, tmp_path)
    assert not (app / "tests").exists()
    assert not (app / "ripples").exists()
    spec = next(s for s in stack.ALL_SERVICES if s.name == service)
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": f"{app}{os.pathsep}{site}",
        "PYTHONNOUSERSITE": "1",
        "PYTHONUNBUFFERED": "1",
        "FAUST_DATADIR": str(tmp_path / "faust-data"),
        f"{service.upper()}_HOST": "127.0.0.1",
        spec.port_variable: str(port),
        "KAFKA_BOOTSTRAP_SERVERS": broker.address,
        "DATABASE_URL": service_database,
        f"{service.upper()}_API_KEYS": "image-test-key",
        # the notifier refuses to start without it (webhooks would be signed with no key)
        "NOTIFIER_WEBHOOK_SECRET": "image-test-secret",
        **FAST_GROUPS,
    }
    log = (tmp_path / "service.log").open("w")
    # -S: no site-packages of this virtualenv; only the image's packages are importable.
    process = subprocess.Popen(
        [sys.executable, "-S", "-m", f"services.{service}"],
        cwd=app,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "service.log").read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "service.log").read_text()[-3000:]
            time.sleep(0.2)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert f"{service}_http_requests_total" in metrics
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()
