"""`make deploy-smoke`: docker compose and both kustomize overlays, rendered, each Ripples
container run as a local process with exactly what its manifests give it (tests/deploy/smoke.py
says what is mapped and why), then a small pilot through the public routes: every /readyz
200, events, a link and its redirect, a signed Greenhouse application, the applicant credited
in the attribution API, the ambassador's recognitions at a local webhook receiver, and the
employee's page (a page link from ingest's route and the one in the notifier's messages)
showing the ambassador's figures from attribution.

One broker and one PostgreSQL per render, the renders one after another (the consumer group
ids are the same in all of them)."""

from __future__ import annotations

import asyncio
import copy
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from ripples.demo.sink import Sink, serving
from tests.conftest import Running, free_port, start_broker, start_postgres, stop_postgres
from tests.deploy import smoke
from tests.deploy.pydeps import ROOT

pytestmark = pytest.mark.integration

OVERLAYS = ("prod", "dev")
NAMESPACES = {"prod": "ripples", "dev": "ripples-dev"}


@pytest.fixture
def compose_secrets(tmp_path: Path) -> Path:
    folder = tmp_path / "compose-secrets"
    subprocess.run(
        ["bash", str(ROOT / "deploy" / "compose" / "init-secrets.sh"), str(folder)],
        check=True,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    return folder


def compose_plan(docker_compose: str, secrets: Path) -> list[smoke.Container]:
    model = smoke.render_compose(docker_compose)
    containers = smoke.compose_containers(model, secrets)
    found = smoke.problems(containers) + smoke.compose_problems(model, containers)
    if found:
        pytest.fail("docker-compose.yml:\n  " + "\n  ".join(found))
    return containers


def k8s_plan(kubectl: str, overlay: str) -> list[smoke.Container]:
    docs = smoke.render_kustomize(kubectl, ROOT / "deploy" / "k8s" / "overlays" / overlay)
    # What the manifests ask for is checked before the Secret is made: a missing variable
    # is named even where nothing creates the Secret yet.
    found = smoke.problems(smoke.k8s_containers(docs, None))
    if found:
        pytest.fail(f"overlay {overlay}:\n  " + "\n  ".join(found))
    try:
        return smoke.k8s_containers(docs, smoke.k8s_secrets(kubectl, NAMESPACES[overlay], {}))
    except smoke.SmokeError as exc:
        pytest.fail(f"overlay {overlay}: {exc}")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[smoke.World]:
    broker = start_broker(tmp_path / "broker")
    postgres: Running | None = None
    try:
        postgres = start_postgres(tmp_path / "postgres")
        yield smoke.World(
            broker=broker.address,
            postgres=postgres.address.split("@", 1)[1].split("/", 1)[0],
            ports={name: free_port() for name in smoke.SERVICES},
            root=tmp_path / "containers",
        )
    finally:
        if postgres is not None:
            stop_postgres(postgres)
        broker.stop()


def credited(figures: dict[str, Any]) -> bool:
    """The ambassador's own figures with the pilot's applicant and impressions in them."""
    return bool(figures["applicants"]["attributed"] >= 1 and figures["reach"]["impressions"])


def run_pilot(containers: list[smoke.Container], world: smoke.World) -> None:
    with smoke.running(containers, world) as services:
        for started in services.values():
            given = started.local.env
            assert started.environ() == given, f"{started.local.container.name}: environment"
        notifier = services["notifier"].local.container
        sink = Sink(smoke.setting(notifier, "NOTIFIER_WEBHOOK_SECRET"))

        async def play() -> tuple[dict[str, Any], dict[str, Any]]:
            async with serving(sink, free_port()) as sink_url:
                summary = await smoke.pilot(services, world, sink_url)
                deadline = time.monotonic() + 60
                while "first_applicant:emp-smoke" not in sink.recognition_ids():
                    if time.monotonic() > deadline:
                        pytest.fail(
                            "no first_applicant recognition reached the webhook receiver; "
                            f"got {sorted(sink.recognition_ids())}; the notifier log ends:\n"
                            + services["notifier"].tail()
                        )
                    await asyncio.sleep(0.3)
                # every message carries the employee's page link (the notifier's setting)
                messages = [orjson.dumps(r.body).decode() for r in sink.received]
                notified = smoke.page_links(messages)
                if not notified:
                    pytest.fail("no message at the webhook receiver links the employee's page")
                page = await smoke.employee_page(
                    services, world, "emp-smoke", notified, until=credited, job="job-smoke"
                )
                return summary, page

        summary, page = asyncio.run(play())
    assert summary["applicants"]["total"] == 1
    assert summary["applicants"]["credit_by_ring"]["1"] == pytest.approx(1.0)
    assert summary["ambassadors"]["impressions"] == 1200
    assert all(item.signature_ok for item in sink.received)
    assert {"first_post:emp-smoke", "reach_milestone:emp-smoke:1000"} <= sink.recognition_ids()
    # the page's figures are the ambassador's own, not zeros
    assert page["reach"]["impressions"] == 1200
    assert page["applicants"]["attributed"] == 1


def test_compose_smoke(docker_compose: str, compose_secrets: Path, world: smoke.World) -> None:
    run_pilot(compose_plan(docker_compose, compose_secrets), world)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_smoke(kubectl: str, overlay: str, world: smoke.World) -> None:
    run_pilot(k8s_plan(kubectl, overlay), world)


# --- the smoke run can fail: what a manifest lacks is named -----------------------------------


def test_a_variable_removed_from_compose_is_named(
    docker_compose: str, compose_secrets: Path
) -> None:
    model = smoke.render_compose(docker_compose)
    broken = copy.deepcopy(model)
    del broken["services"]["attribution"]["environment"]["DATABASE_URL_FILE"]
    found = smoke.problems(smoke.compose_containers(broken, compose_secrets))
    assert "attribution: no DATABASE_URL (nor DATABASE_URL_FILE)" in found


def test_a_secret_removed_from_compose_is_named(docker_compose: str, compose_secrets: Path) -> None:
    model = smoke.render_compose(docker_compose)
    broken = copy.deepcopy(model)
    service = broken["services"]["notifier"]
    path = service["environment"]["NOTIFIER_WEBHOOK_SECRET_FILE"]
    service["secrets"] = [s for s in service["secrets"] if s["target"] != path]
    found = smoke.problems(smoke.compose_containers(broken, compose_secrets))
    assert f"notifier: NOTIFIER_WEBHOOK_SECRET_FILE names {path}, which is not mounted" in found


def test_a_secret_file_removed_from_a_deployment_is_named(kubectl: str) -> None:
    docs = smoke.render_kustomize(kubectl, ROOT / "deploy" / "k8s" / "overlays" / "prod")
    (deployment,) = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "notifier"
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    path = next(e["value"] for e in container["env"] if e["name"] == "NOTIFIER_WEBHOOK_SECRET_FILE")
    for volume in deployment["spec"]["template"]["spec"]["volumes"]:
        if "secret" in volume:
            items = volume["secret"]["items"]
            volume["secret"]["items"] = [i for i in items if not path.endswith("/" + i["path"])]
    found = smoke.problems(smoke.k8s_containers(docs, None))
    assert (
        f"Deployment/notifier: NOTIFIER_WEBHOOK_SECRET_FILE names {path}, which is not mounted"
        in found
    )
