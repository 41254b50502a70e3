"""``ripples up/status/logs/down`` as a user runs them, in a fresh folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from ripples.stack import ALL_SERVICES, POSTGRES_DB, POSTGRES_USER, process_alive
from tests import samples, sealed
from tests.conftest import free_port

pytestmark = pytest.mark.integration

RIPPLES = [sys.executable, "-m", "ripples"]


class User:
    """Runs ``ripples`` commands in one folder with one environment."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*RIPPLES, *args],
            cwd=self.folder,
            env=self.env,
            text=True,
            capture_output=True,
            timeout=180,
        )
        if check and result.returncode != 0:
            pytest.fail(f"ripples {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def pids(self) -> dict[str, int]:
        folder = self.folder / ".ripples" / "pids"
        return {p.stem: int(p.read_text()) for p in folder.glob("*.pid")}


@pytest.fixture
def user(tmp_path: Path) -> Iterator[User]:
    tmp_path.chmod(0o755)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "RIPPLES_API_KEY")
    }
    env |= {"RIPPLES_BROKER_PORT": str(free_port()), "RIPPLES_POSTGRES_PORT": str(free_port())}
    for spec in ALL_SERVICES:
        env[spec.port_variable] = str(free_port())
    person = User(tmp_path, env)
    yield person
    person.run("down", "--purge", check=False)


# every service this checkout has (ripples up starts each one that exists)
MARKERS = {"broker": "tansu", "postgres": "postgres"} | {
    spec.name: spec.module for spec in ALL_SERVICES if spec.exists()
}


async def test_up_post_read_back_and_down(user: User) -> None:
    out = user.run("up").stdout
    key = (user.folder / ".ripples" / "api_key").read_text().strip()
    assert key in out, "up prints the API key"
    ingest = f"http://127.0.0.1:{user.env['INGEST_PORT']}"
    assert ingest in out, "up prints the URLs"
    assert (user.folder / ".ripples" / "api_key").stat().st_mode & 0o077 == 0

    status = user.run("status").stdout
    for name in MARKERS:
        assert name in status
    assert "stopped" not in status

    event = samples.event("ripples.employee.upserted.v1")
    invalid = samples.event("ripples.employee.upserted.v1", {"employee_id": "e-9"})
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/cloudevents+json"}
    async with httpx.AsyncClient(base_url=ingest, timeout=10) as client:
        accepted = await client.post("/v1/events", content=orjson.dumps(event), headers=headers)
        assert accepted.status_code == 202
        refused = await client.post("/v1/events", content=orjson.dumps(invalid), headers=headers)
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["errors"][0]["field"] == "data.display_name"
        anonymous = await client.post(
            "/v1/events",
            content=orjson.dumps(event),
            headers={"Content-Type": headers["Content-Type"]},
        )
        assert anonymous.status_code == 401
        metrics = (await client.get("/metrics")).text
    assert 'ingest_events_accepted_total{type="ripples.employee.upserted.v1"} 1.0' in metrics
    assert (
        'ingest_events_rejected_total{reason="missing_field",'
        'type="ripples.employee.upserted.v1"} 1.0'
    ) in metrics

    # the name is sealed on the topic (docs/security.md "Topics"): opened with ingest's key
    stack_secrets = orjson.loads((user.folder / ".ripples" / "secrets.json").read_bytes())
    database = f"postgresql://{POSTGRES_USER}@127.0.0.1:{user.env['RIPPLES_POSTGRES_PORT']}"
    keys = sealed.key_table(
        f"{database}/{POSTGRES_DB}", stack_secrets["INGEST_TOKEN_KEYS"].split(",")
    )
    found = await sealed.read_events(
        f"127.0.0.1:{user.env['RIPPLES_BROKER_PORT']}", "ripples.employees", {event["id"]}, keys
    )
    assert found[event["id"]][1].data.display_name == "Mette Jensen"

    logs = user.run("logs", "ingest", "-n", "50").stdout
    assert '"service":"ingest"' in logs
    assert key not in logs, "the API key never appears in logs"
    secrets_file = user.folder / ".ripples" / "secrets.json"
    assert secrets_file.stat().st_mode & 0o077 == 0
    for secret in orjson.loads(secrets_file.read_bytes()).values():
        assert secret not in logs

    pids = user.pids()
    assert set(pids) == set(MARKERS)
    user.run("down")
    for name, pid in pids.items():
        assert not process_alive(pid, MARKERS[name]), f"{name} is still running"
    assert not list((user.folder / ".ripples" / "pids").glob("*.pid"))
    assert user.run("status", check=False).returncode == 3


def test_up_is_idempotent_and_brings_back_a_crashed_service(user: User) -> None:
    user.run("up")
    first = user.pids()
    again = user.run("up").stdout
    assert "starting" not in again
    assert user.pids() == first

    os.kill(first["ingest"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process_alive(first["ingest"], MARKERS["ingest"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "stopped" in user.run("status", check=False).stdout

    restarted = user.run("up").stdout
    assert "ingest       starting" in restarted
    second = user.pids()
    assert second["ingest"] != first["ingest"]
    assert {k: v for k, v in second.items() if k != "ingest"} == {
        k: v for k, v in first.items() if k != "ingest"
    }
    response = httpx.get(f"http://127.0.0.1:{user.env['INGEST_PORT']}/readyz")
    assert response.status_code == 200


def test_api_key_from_the_environment(user: User) -> None:
    user.env["RIPPLES_API_KEY"] = "key-from-env"
    out = user.run("up").stdout
    assert "key-from-env" in out
    response = httpx.post(
        f"http://127.0.0.1:{user.env['INGEST_PORT']}/v1/events",
        content=orjson.dumps(samples.event("ripples.applicant.erased.v1")),
        headers={
            "Authorization": "Bearer key-from-env",
            "Content-Type": "application/cloudevents+json",
        },
    )
    assert response.status_code == 202


def test_logs_of_an_unknown_component(user: User) -> None:
    result = user.run("logs", "nonsense", check=False)
    assert result.returncode == 2
    assert "broker, postgres, ingest" in result.stdout
