"""The deployment smoke run: every Ripples container of a rendered deployment (docker compose,
a kustomize overlay) started as a local process with exactly what the manifests give it.

No Docker engine runs on these machines, so a container is reproduced from the rendered
output: its command (the manifest's, else the image's ``ENTRYPOINT``/``CMD`` from its
Dockerfile), its environment (the image's ``ENV``, then the manifest's ``environment`` /
``envFrom`` / ``env``), and the files mounted into it (compose ``secrets``, Kubernetes
Secret volumes), written to a temporary folder. Then the manifests' world is mapped onto this
machine, and only that:

- host names: ``kafka…:PORT`` → the local Tansu broker, ``postgres…:PORT`` → the local
  PostgreSQL, ``ingest|attribution|notifier…:PORT`` → the port that service got here;
- a service's own port variable (``INGEST_PORT``…) → a free port, and its ``*_HOST``
  ``0.0.0.0`` → ``127.0.0.1`` (a container's 0.0.0.0 is its own network namespace);
- the broker's abilities: ``KAFKA_ENABLE_IDEMPOTENCE`` → ``false``, because the local broker
  (Tansu) has no idempotent producer (InitProducerId fails; INFRA-NOTES), and
  ``KAFKA_SECURITY_PROTOCOL`` → ``PLAINTEXT`` (``KAFKA_SASL_MECHANISM`` emptied): it speaks
  neither TLS nor SASL (the SCRAM user's files must still be mounted: checked);
- the notifier's egress settings → what lets it reach the local webhook receiver
  (``LOCAL_RECEIVER``: a deployment allows https to public addresses only);
- container paths → host paths: mounted files → the temporary folder, ``/tmp`` (tmpfs /
  emptyDir) → a folder per container, the image's ``/opt/venv`` → this checkout's ``.venv``
  and its ``WORKDIR /app`` → this checkout (the image copies ``shared/`` and ``services/``
  there). ``PATH`` is the image's, with those folders mapped.

Nothing else of the developer's shell reaches a process (the test reads it back from
``/proc/<pid>/environ``). What a container lacks is named: the container and the variable or
the file.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import orjson

from ripples import stack
from tests.deploy.pydeps import ROOT

VENV = ROOT / ".venv"
# The base image's PATH (python:3.11.7-slim-bookworm), which the Dockerfiles extend.
IMAGE_BASE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
SERVICES = tuple(s.name for s in stack.ALL_SERVICES)

# What a deployment must give each Ripples program (a variable or its ``_FILE`` form) for
# the product to work: the services' connections, keys and connector secrets. A service may
# start without some of these (a connector answers 503 until configured), so the run alone
# would not say which one is missing; this table does.
REQUIRED: dict[str, tuple[str, ...]] = {
    "ingest": (
        "KAFKA_BOOTSTRAP_SERVERS",
        "DATABASE_URL",
        "INGEST_API_KEYS",
        "INGEST_PUBLIC_BASE_URL",
        "INGEST_LINK_ALLOWED_HOSTS",
        "INGEST_APPLICANT_ID_SECRET",
        "INGEST_GREENHOUSE_SECRET_KEY",
        "INGEST_TEAMTAILOR_SIGNATURE_KEY",
        "INGEST_LEVER_SIGNATURE_TOKEN",
        "INGEST_LEVER_API_KEY",
        "INGEST_LINKEDIN_CLIENT_SECRET",
        "INGEST_LINKEDIN_CLIENT_ID",
        "INGEST_CONNECT_SECRET",
        "INGEST_TOKEN_KEYS",
        "INGEST_TEAMTAILOR_API_KEY",
        # the employee's page (CONTRACT §11): its link secrets, the figures from attribution,
        # and the careers page a job link points to
        "INGEST_PAGE_LINK_SECRETS",
        "INGEST_ATTRIBUTION_URL",
        "INGEST_ATTRIBUTION_API_KEY",
        "INGEST_JOB_URL_TEMPLATE",
        # crypto-shredding (docs/security.md "Topics"): the consumers' reader keys
        "INGEST_KEY_READER_API_KEYS",
    ),
    "attribution": (
        "KAFKA_BOOTSTRAP_SERVERS",
        "DATABASE_URL",
        "ATTRIBUTION_API_KEYS",
        # the keys of sealed records, from ingest
        "ATTRIBUTION_INGEST_URL",
        "ATTRIBUTION_INGEST_API_KEY",
    ),
    "notifier": (
        "KAFKA_BOOTSTRAP_SERVERS",
        "DATABASE_URL",
        "NOTIFIER_API_KEYS",
        "NOTIFIER_WEBHOOK_SECRET",
        # the page link under every message (the same secrets and address as ingest's)
        "NOTIFIER_PAGE_LINK_SECRETS",
        "NOTIFIER_PAGE_BASE_URL",
        # the keys of sealed records, from ingest
        "NOTIFIER_INGEST_URL",
        "NOTIFIER_INGEST_API_KEY",
    ),
    "topics": ("KAFKA_BOOTSTRAP_SERVERS",),
    "migrate": ("DATABASE_URL",),
}

# What the local broker cannot do that Apache Kafka can (see the module docstring).
LOCAL_BROKER = {
    "KAFKA_ENABLE_IDEMPOTENCE": "false",
    "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
    "KAFKA_SASL_MECHANISM": "",
}

# Settings that let the notifier deliver to the smoke run's local webhook receiver (plain
# HTTP on 127.0.0.1), which a deployment's egress rules refuse (https to public addresses
# only): the one place for them, applied only where the manifests set them.
LOCAL_RECEIVER: dict[str, str] = {"NOTIFIER_ALLOW_HTTP": "true", "NOTIFIER_ALLOW_LOOPBACK": "true"}

_HOSTS = re.compile(
    r"\b(?P<host>(?P<name>kafka|postgres|ingest|attribution|notifier)(?:[\w-]*)(?:\.[\w.-]+)?)"
    r":(?P<port>\d+)\b"
)


class SmokeError(AssertionError):
    pass


@dataclass
class Container:
    """One Ripples container as the rendered manifests define it (container paths)."""

    name: str  # compose service name, or "Kind/name" in Kubernetes
    program: str  # ingest, attribution, notifier, topics, migrate
    one_shot: bool  # a job that must exit 0 before the services start
    argv: list[str]
    env: dict[str, str]
    files: dict[str, bytes]  # container path → content
    depends_on: dict[str, str] = field(default_factory=dict)  # compose: name → condition
    workdir: str = "/app"
    # Directories mounted empty (tmpfs / emptyDir).
    scratch: tuple[str, ...] = ("/tmp",)


# --- the image: Dockerfile ENTRYPOINT, CMD and ENV of the runtime stage --------------------


# One Dockerfile builds every service image; its build arguments per service (docker compose
# passes these: a test compares them with docker-compose.yml's ``build.args``).
DOCKERFILE = ROOT / "services" / "Dockerfile"


def build_args(program: str) -> dict[str, str]:
    spec = next(s for s in stack.ALL_SERVICES if s.name == program)
    return {"SERVICE": program, "PORT": str(spec.port)}


def _dockerfile_lines(path: Path, args: Mapping[str, str]) -> list[str]:
    """The instructions, continuation lines joined, comments dropped, and the build arguments
    a stage declares (``ARG NAME``) replaced by their values in the lines after it."""
    text = path.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    out: list[str] = []
    declared: set[str] = set()
    for line in (line for line in lines if line and not line.startswith("#")):
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            declared = set()
        elif keyword.upper() == "ARG":
            name = rest.split("=", 1)[0].strip()
            if name not in args:
                raise SmokeError(f"{path}: no value for the build argument {name}")
            declared.add(name)
        for name in declared:
            line = line.replace("${" + name + "}", args[name])
        out.append(line)
    return out


@dataclass(frozen=True)
class Image:
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    env: dict[str, str]
    workdir: str


def image(dockerfile: Path, args: Mapping[str, str]) -> Image:
    """What the image built from ``dockerfile`` with these build arguments starts with (its
    last stage)."""
    lines = _dockerfile_lines(dockerfile, args)
    last = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: dict[str, str] = {"PATH": IMAGE_BASE_PATH}
    workdir = "/"
    for line in lines[last + 1 :]:
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "ENV":
            for key, value in re.findall(r"(\w+)=(\"[^\"]*\"|\S+)", rest):
                env[key] = value.strip('"').replace("$PATH", env.get("PATH", ""))
        elif instruction == "ENTRYPOINT":
            entrypoint = tuple(json.loads(rest))
        elif instruction == "CMD":
            cmd = tuple(json.loads(rest))
        elif instruction == "WORKDIR":
            workdir = rest.strip()
    return Image(entrypoint, cmd, env, workdir)


def _program(image_name: str) -> str:
    """``ghcr.io/ripples/ripples-ingest:0.1.0`` → ``ingest``."""
    return image_name.rsplit("/", 1)[-1].split(":", 1)[0].removeprefix("ripples-")


def _image_of(image_name: str) -> Image:
    return image(DOCKERFILE, build_args(_program(image_name)))


def _program_of(argv: list[str], image_program: str, name: str, env: Mapping[str, str]) -> str:
    """Which Ripples program a container runs: the service its image starts (the module the
    entrypoint names, or the one ``RIPPLES_SERVICE`` names), or the job."""
    text = " ".join(argv)
    if "RIPPLES_SERVICE" in text and env.get("RIPPLES_SERVICE"):
        text += f" services.{env['RIPPLES_SERVICE']}"
    if "migrate" in text and ("shared.db" in text or "ripples" in argv[:1]):
        return "migrate"
    if "ensure_topics" in text:
        return "topics"
    for service in SERVICES:
        if f"services.{service}" in text:
            return service
    raise SmokeError(f"{name}: cannot tell which Ripples program {argv} runs ({image_program})")


# --- docker compose ---------------------------------------------------------------------------


def render_compose(docker_compose: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``docker compose config --format json`` of the repository's compose file."""
    result = subprocess.run(
        [docker_compose, "--project-directory", str(ROOT), "config", "--format", "json"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise SmokeError(f"docker compose config failed: {result.stderr}")
    rendered: dict[str, Any] = json.loads(result.stdout)
    return rendered


COMPOSE_SECRETS = ROOT / "deploy" / "compose" / "secrets"


def compose_containers(model: dict[str, Any], secrets_dir: Path) -> list[Container]:
    """Every service of the compose model that runs a Ripples image; the secret files are
    read from ``secrets_dir``, which ``deploy/compose/init-secrets.sh`` filled (the model
    names them under ``deploy/compose/secrets/``)."""
    containers = []
    for name, service in model["services"].items():
        if not service.get("image", "").split("/")[-1].startswith("ripples-"):
            continue
        built = _image_of(service["image"])
        entrypoint = service.get("entrypoint") or list(built.entrypoint)
        command = service.get("command")
        if command is None:
            command = [] if service.get("entrypoint") else list(built.cmd)
        argv = [*entrypoint, *command]
        files: dict[str, bytes] = {}
        for secret in service.get("secrets", []):
            target = secret.get("target") or f"/run/secrets/{secret['source']}"
            if not target.startswith("/"):
                target = f"/run/secrets/{target}"
            declared = model.get("secrets", {}).get(secret["source"])
            if declared is None:
                raise SmokeError(f"{name}: secret {secret['source']} is not declared")
            declared_path = Path(declared["file"])
            if declared_path.parent != COMPOSE_SECRETS:
                raise SmokeError(
                    f"{name}: secret {secret['source']} is not under {COMPOSE_SECRETS}"
                )
            path = secrets_dir / declared_path.name
            if not path.is_file():
                raise SmokeError(
                    f"{name}: secret file {path} is missing (deploy/compose/init-secrets.sh "
                    "did not create it)"
                )
            files[target] = path.read_bytes()
        depends = {
            dep: spec.get("condition", "") for dep, spec in service.get("depends_on", {}).items()
        }
        scratch = tuple(t.split(":", 1)[0] for t in service.get("tmpfs", []))
        environment = built.env | {k: str(v) for k, v in (service.get("environment") or {}).items()}
        containers.append(
            Container(
                name=name,
                program=_program_of(argv, service["image"], name, environment),
                one_shot=service.get("restart") == "no",
                argv=argv,
                env=environment,
                files=files,
                depends_on=depends,
                workdir=service.get("working_dir") or built.workdir,
                scratch=scratch,
            )
        )
    return containers


def compose_problems(model: dict[str, Any], containers: list[Container]) -> list[str]:
    """Start-order problems: a container that reaches Kafka or PostgreSQL (or runs after a
    job) must wait for it to be healthy (or to have completed)."""
    problems = []
    jobs = {c.name for c in containers if c.one_shot}
    for container in containers:
        wants = {"kafka": "service_healthy", "postgres": "service_healthy"}
        text = (
            " ".join(container.env.values())
            + " "
            + " ".join(v.decode(errors="replace") for v in container.files.values())
        )
        reached = {m["name"] for m in _HOSTS.finditer(text)}
        for dependency in ("kafka", "postgres"):
            if dependency in reached and dependency in model["services"]:
                got = container.depends_on.get(dependency)
                if got != wants[dependency]:
                    problems.append(
                        f"{container.name}: reaches {dependency} but does not wait for it "
                        f"(depends_on {dependency}: condition {wants[dependency]}; has {got})"
                    )
        if not container.one_shot:
            for job in sorted(jobs):
                if container.depends_on.get(job) != "service_completed_successfully":
                    problems.append(
                        f"{container.name}: does not wait for the job {job} "
                        "(depends_on: condition service_completed_successfully)"
                    )
    return problems


# --- Kubernetes --------------------------------------------------------------------------------


def render_kustomize(kubectl: str, folder: Path) -> list[dict[str, Any]]:
    import yaml

    result = subprocess.run(
        [kubectl, "kustomize", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise SmokeError(f"kubectl kustomize {folder} failed: {result.stderr}")
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def k8s_containers(
    docs: list[dict[str, Any]], secrets: list[dict[str, Any]] | None
) -> list[Container]:
    """Every Deployment and Job container running a Ripples image. ``secrets`` are the
    Secret objects the operator creates (from the documented script); None: what the
    manifests ask for only, every Secret key they name standing in as created."""
    configmaps = {
        d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"
    }
    secret_data = {
        s["metadata"]["name"]: {k: base64.b64decode(v) for k, v in (s.get("data") or {}).items()}
        | {k: v.encode() for k, v in (s.get("stringData") or {}).items()}
        for s in [*(secrets or []), *(d for d in docs if d["kind"] == "Secret")]
    }
    if secrets is None:
        secret_data = _AnySecret()
    containers = []
    for doc in docs:
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for spec in pod["containers"]:
            if not spec["image"].split("/")[-1].startswith("ripples-"):
                continue
            name = f"{doc['kind']}/{doc['metadata']['name']}"
            built = _image_of(spec["image"])
            if "command" in spec:
                argv = [*spec["command"], *spec.get("args", [])]
            else:
                argv = [*built.entrypoint, *spec.get("args", built.cmd)]
            env = dict(built.env)
            for source in spec.get("envFrom", []):
                if "configMapRef" in source:
                    ref = source["configMapRef"]["name"]
                    if ref not in configmaps:
                        raise SmokeError(f"{name}: envFrom ConfigMap {ref} does not exist")
                    env |= configmaps[ref]
                if "secretRef" in source:
                    ref = source["secretRef"]["name"]
                    if ref not in secret_data:
                        raise SmokeError(f"{name}: envFrom Secret {ref} is not created")
                    env |= {k: v.decode() for k, v in secret_data[ref].items()}
            for item in spec.get("env", []):
                if "value" in item:
                    env[item["name"]] = str(item["value"])
                    continue
                ref = item.get("valueFrom", {})
                if "configMapKeyRef" in ref:
                    cm, key = ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"]
                    if key not in configmaps.get(cm, {}):
                        raise SmokeError(
                            f"{name}: {item['name']} refers to ConfigMap {cm} key {key}, "
                            "which does not exist"
                        )
                    env[item["name"]] = configmaps[cm][key]
                elif "secretKeyRef" in ref:
                    sec, key = ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"]
                    if key not in secret_data.get(sec, {}):
                        raise SmokeError(
                            f"{name}: {item['name']} refers to Secret {sec} key {key}, "
                            "which is not created"
                        )
                    env[item["name"]] = secret_data[sec][key].decode()
            files: dict[str, bytes] = {}
            scratch: list[str] = []
            for mount in spec.get("volumeMounts", []):
                volume = volumes.get(mount["name"])
                if volume is None:
                    raise SmokeError(f"{name}: mounts volume {mount['name']}, which the pod lacks")
                if "emptyDir" in volume:
                    scratch.append(mount["mountPath"])
                    continue
                if "secret" not in volume:
                    continue
                secret_name = volume["secret"]["secretName"]
                data = secret_data.get(secret_name)
                if data is None:
                    raise SmokeError(f"{name}: mounts Secret {secret_name}, which is not created")
                items = volume["secret"].get("items") or [{"key": k, "path": k} for k in data]
                for item in items:
                    if item["key"] not in data:
                        raise SmokeError(
                            f"{name}: mounts key {item['key']} of Secret {secret_name}, which "
                            "the documented secret script does not create"
                        )
                    files[f"{mount['mountPath'].rstrip('/')}/{item['path']}"] = data[item["key"]]
            containers.append(
                Container(
                    name=name,
                    program=_program_of(argv, spec["image"], name, env),
                    one_shot=doc["kind"] == "Job",
                    argv=argv,
                    env=env,
                    files=files,
                    workdir=spec.get("workingDir", built.workdir),
                    scratch=tuple(scratch),
                )
            )
    return containers


class _AnySecret(dict[str, dict[str, bytes]]):
    """Every Secret and key exists (standing in for the operator's Secret)."""

    def __missing__(self, name: str) -> dict[str, bytes]:
        return _AnyKey()

    def __contains__(self, name: object) -> bool:
        return True

    def get(self, name: str, default: Any = None) -> dict[str, bytes]:  # type: ignore[override]
        return _AnyKey()


class _AnyKey(dict[str, bytes]):
    def __missing__(self, key: str) -> bytes:
        return b"(created by the operator)"

    def __contains__(self, key: object) -> bool:
        return True

    def get(self, key: str, default: Any = None) -> bytes:  # type: ignore[override]
        return b"(created by the operator)"


def k8s_secrets(kubectl: str, namespace: str, env: Mapping[str, str]) -> list[dict[str, Any]]:
    """The Secret(s) ``deploy/k8s/create-secret.sh`` makes (rendered, not applied)."""
    import yaml

    script = ROOT / "deploy" / "k8s" / "create-secret.sh"
    if not script.is_file():
        raise SmokeError(f"{script.relative_to(ROOT)} is missing: nothing creates ripples-secrets")
    result = subprocess.run(
        ["bash", str(script), namespace, "--dry-run"],
        env={"PATH": str(Path(kubectl).parent) + ":/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise SmokeError(f"{script.name} failed: {result.stderr}")
    return [d for d in yaml.safe_load_all(result.stdout) if d]


# --- what a container lacks --------------------------------------------------------------------


def problems(containers: Iterable[Container]) -> list[str]:
    """Each required setting a container is not given, and each ``_FILE`` that names a file
    not mounted into it (or an empty one)."""
    found = []
    for container in containers:
        for variable in REQUIRED.get(container.program, ()):
            if container.env.get(variable, "").strip():
                continue
            path = container.env.get(variable + "_FILE")
            if not path:
                found.append(f"{container.name}: no {variable} (nor {variable}_FILE)")
            elif path not in container.files:
                found.append(
                    f"{container.name}: {variable}_FILE names {path}, which is not mounted"
                )
            elif not container.files[path].strip():
                found.append(f"{container.name}: {variable}_FILE names {path}, which is empty")
        template = container.env.get("INGEST_JOB_URL_TEMPLATE", "")
        if container.program == "ingest" and template:
            host = urlsplit(template).hostname or ""
            allowed = [
                h.strip() for h in container.env.get("INGEST_LINK_ALLOWED_HOSTS", "").split(",")
            ]
            if "{job_id}" not in template or not any(
                host == h or (h.startswith("*.") and host.endswith(h[1:])) for h in allowed if h
            ):
                found.append(
                    f"{container.name}: INGEST_JOB_URL_TEMPLATE {template} lacks {{job_id}} or "
                    "its host is not on INGEST_LINK_ALLOWED_HOSTS"
                )
        for variable, path in container.env.items():
            if (
                variable.endswith("_FILE")
                and path.startswith("/run/secrets/")
                and path not in container.files
            ):
                found.append(f"{container.name}: {variable} names {path}, which is not mounted")
    return sorted(set(found))


def setting(container: Container, variable: str) -> str:
    """A setting's value as the program reads it (the variable or its file)."""
    if container.env.get(variable):
        return container.env[variable]
    path = container.env.get(variable + "_FILE", "")
    return container.files.get(path, b"").decode().strip()


# --- the local world ---------------------------------------------------------------------------


@dataclass
class World:
    broker: str  # host:port
    postgres: str  # host:port
    ports: dict[str, int]  # service → local port
    root: Path  # where the containers' files go

    def host(self, match: re.Match[str]) -> str:
        name = match["name"]
        if name == "kafka":
            return self.broker
        if name == "postgres":
            return self.postgres
        return f"127.0.0.1:{self.ports[name]}"


@dataclass
class Local:
    """A container as a local process: its argv, environment and working folder."""

    container: Container
    argv: list[str]
    env: dict[str, str]
    cwd: Path


def localise(container: Container, world: World) -> Local:
    folder = world.root / re.sub(r"[^\w.-]", "_", container.name)
    mounts: dict[str, Path] = {"/opt/venv": VENV, "/app": ROOT}
    for path in container.scratch:
        mounts[path] = folder / "scratch" / path.strip("/")
        mounts[path].mkdir(parents=True, exist_ok=True)
    for path, content in container.files.items():
        local = folder / "files" / path.strip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(_hosts(content.decode(), world).encode())
        local.chmod(0o600)
        mounts[path] = local

    def mapped(value: str) -> str:
        for prefix in sorted(mounts, key=len, reverse=True):
            if value == prefix or value.startswith(prefix + "/"):
                return str(mounts[prefix]) + value[len(prefix) :]
        return value

    env = {}
    for variable, value in container.env.items():
        if variable == "PATH":
            env[variable] = ":".join(mapped(part) for part in value.split(":"))
        else:
            env[variable] = mapped(_hosts(value, world))
    env |= {k: v for k, v in LOCAL_BROKER.items() if k in env}
    if container.program == "notifier":
        env |= {k: v for k, v in LOCAL_RECEIVER.items() if k in env}
    if container.program in SERVICES:
        prefix = container.program.upper()
        env[f"{prefix}_PORT"] = str(world.ports[container.program])
        if env.get(f"{prefix}_HOST", "0.0.0.0") == "0.0.0.0":
            env[f"{prefix}_HOST"] = "127.0.0.1"
    program = shutil.which(container.argv[0], path=env.get("PATH", ""))
    if program is None:
        raise SmokeError(f"{container.name}: {container.argv[0]} is not on the image's PATH")
    return Local(container, [program, *container.argv[1:]], env, Path(mapped(container.workdir)))


def _hosts(value: str, world: World) -> str:
    return _HOSTS.sub(world.host, value)


# --- running ---------------------------------------------------------------------------------


@dataclass
class Started:
    local: Local
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 25) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def environ(self) -> dict[str, str]:
        """The environment the running process has (read back from /proc)."""
        raw = Path(f"/proc/{self.process.pid}/environ").read_bytes()
        return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def start(local: Local, logs: Path) -> Started:
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / (re.sub(r"[^\w.-]", "_", local.container.name) + ".log")
    with log.open("ab") as handle:
        process = subprocess.Popen(
            local.argv,
            cwd=local.cwd,
            env=local.env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Started(local, process, log)


def stop(started: Started) -> None:
    if started.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            started.process.terminate()
        try:
            started.process.wait(15)
        except subprocess.TimeoutExpired:
            started.process.kill()
            started.process.wait(5)


def run_job(local: Local, logs: Path, timeout_s: float = 90) -> None:
    started = start(local, logs)
    try:
        code = started.process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        stop(started)
        raise SmokeError(f"{local.container.name}: still running after {timeout_s:.0f} s") from None
    if code != 0:
        raise SmokeError(f"{local.container.name}: exited {code}; its log ends:\n{started.tail()}")


def wait_ready(started: Started, port: int, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    status = "no answer"
    while time.monotonic() < deadline:
        if started.process.poll() is not None:
            raise SmokeError(
                f"{started.local.container.name}: exited {started.process.returncode} before "
                f"it was ready; its log ends:\n{started.tail()}"
            )
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            if response.status_code == 200:
                return
            status = f"{response.status_code} {response.text[:300]}"
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        time.sleep(0.3)
    raise SmokeError(
        f"{started.local.container.name}: /readyz never answered 200 in {timeout_s:.0f} s "
        f"(last: {status}); its log ends:\n{started.tail()}"
    )


def database_roles(containers: Iterable[Container]) -> set[str]:
    """The PostgreSQL users the containers' database URLs name."""
    roles = set()
    for container in containers:
        url = setting(container, "DATABASE_URL")
        match = re.match(r"^[a-z]+://([^:/@]+)(?::[^@]*)?@", url)
        if match:
            roles.add(match[1])
    return roles


async def create_roles(postgres_url: str, roles: Iterable[str]) -> None:
    """The operator's step before the first migration (deploy/postgres/roles.sh): the login
    roles the manifests use (the local server trusts local connections: no passwords)."""
    import asyncpg

    conn = await asyncpg.connect(postgres_url)
    try:
        for role in roles:
            if not await conn.fetchval("select 1 from pg_roles where rolname = $1", role):
                await conn.execute(f'create role "{role}" login')
    finally:
        await conn.close()


@contextlib.contextmanager
def running(containers: list[Container], world: World) -> Iterator[dict[str, Started]]:
    """The jobs run to completion (in manifest order), then every service started and
    ready; yields the services by program name."""
    asyncio.run(
        create_roles(f"postgresql://ripples@{world.postgres}/ripples", database_roles(containers))
    )
    logs = world.root / "logs"
    for container in containers:
        if container.one_shot:
            run_job(localise(container, world), logs)
    services: dict[str, Started] = {}
    try:
        for container in containers:
            if not container.one_shot:
                services[container.program] = start(localise(container, world), logs)
        for program, started in services.items():
            wait_ready(started, world.ports[program])
        yield services
    finally:
        for started in services.values():
            stop(started)


# --- the pilot through the public routes --------------------------------------------------


def _event(kind: str, data: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "type": f"ripples.{kind}.v1",
        "id": str(uuid.uuid4()),
        "source": "urn:ripples:deploy-smoke",
        "time": at.isoformat().replace("+00:00", "Z"),
        "data": data,
    }


def _stamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key.split(',')[0].strip()}"}


async def pilot(services: dict[str, Started], world: World, sink_url: str) -> dict[str, Any]:
    """An ambassador's post, a tracked link and its redirect, a signed Greenhouse
    application through it; returns the attribution summary once the applicant is there."""
    ingest = services["ingest"].local.container
    key = setting(ingest, "INGEST_API_KEYS")
    allowed = setting(ingest, "INGEST_LINK_ALLOWED_HOSTS").split(",")[0].strip()
    careers = "https://" + (("jobs." + allowed[2:]) if allowed.startswith("*.") else allowed)
    now = datetime.now(UTC).replace(microsecond=0)
    base = f"http://127.0.0.1:{world.ports['ingest']}"
    async with httpx.AsyncClient(base_url=base, headers=_bearer(key), timeout=30) as api:
        events = [
            _event(
                "employee.upserted",
                {
                    "employee_id": "emp-smoke",
                    "display_name": "Smoke Ambassador",
                    "ambassador": True,
                    "locale": "da",
                    "notify": {"channel": "webhook", "address": sink_url},
                },
                now - timedelta(days=3),
            ),
            _event(
                "post.published",
                {
                    "post_id": "urn:li:share:1",
                    "author_kind": "employee",
                    "employee_id": "emp-smoke",
                    "published_at": _stamp(now - timedelta(days=2)),
                },
                now - timedelta(days=2),
            ),
            _event(
                "post.metrics",
                {"post_id": "urn:li:share:1", "observed_at": _stamp(now), "impressions": 1200},
                now,
            ),
            # the job an employee makes a link for on their page (INGEST_JOB_URL_TEMPLATE)
            _event("job.upserted", {"job_id": "job-smoke", "title": "Smoke"}, now),
        ]
        response = await api.post(
            "/v1/events:batch",
            content=orjson.dumps(events),
            headers={"Content-Type": "application/cloudevents-batch+json"},
        )
        _expect(response, 202, "ingest POST /v1/events:batch")
        response = await api.post(
            "/v1/events",
            content=orjson.dumps(
                _event(
                    "employee.upserted",
                    {"employee_id": "emp-colleague", "display_name": "Smoke Colleague"},
                    now - timedelta(days=3),
                )
            ),
            headers={"Content-Type": "application/cloudevents+json"},
        )
        _expect(response, 202, "ingest POST /v1/events")
        response = await api.post(
            "/v1/links",
            json={
                "target_url": f"{careers}/jobs/smoke",
                "employee_id": "emp-smoke",
                "job_id": "job-smoke",
            },
        )
        _expect(response, 201, "ingest POST /v1/links")
        code = response.json()["link_code"]
        await _connect(api, ingest)
        async with httpx.AsyncClient(base_url=base, follow_redirects=False) as browser:
            response = await browser.get(f"/r/{code}")
        _expect(response, 302, "ingest GET /r/{code}")
        cookie = response.headers.get("set-cookie", "")
        match = re.search(r"ripples_vid=([^;]+)", cookie)
        if match is None:
            raise SmokeError(f"ingest GET /r/{{code}} set no ripples_vid cookie: {cookie!r}")
        source_url = f"{careers}/jobs/smoke?" + urlencode(
            {"ripples_ref": code, "ripples_vid": match[1]}
        )
        # Greenhouse's documented webhook: header `Signature: sha256 <hex HMAC-SHA256 of the
        # body keyed with the secret key>`
        # (https://developers.greenhouse.io/webhooks.html#authentication; the same scheme on
        # https://developers.greenhouse.io/onboarding_webhooks.html).
        body = orjson.dumps(
            {
                "action": "new_candidate_application",
                "payload": {
                    "application": {
                        "id": 424242,
                        "applied_at": _stamp(now),
                        "candidate": {"id": 4242, "first_name": "(not sent on)"},
                        "jobs": [{"id": "job-smoke", "name": "Smoke"}],
                        "source": {"id": 1, "public_name": "Careers site"},
                        "custom_fields": {"ripples_source_url": {"value": source_url}},
                    }
                },
            }
        )
        secret = setting(ingest, "INGEST_GREENHOUSE_SECRET_KEY").encode()
        signature = hmac.new(secret, body, hashlib.sha256).hexdigest()
        response = await api.post(
            "/v1/webhooks/greenhouse",
            content=body,
            headers={"Content-Type": "application/json", "Signature": f"sha256 {signature}"},
        )
        _expect(response, 202, "ingest POST /v1/webhooks/greenhouse", also=(200, 204))
    attribution = services["attribution"].local.container
    headers = _bearer(setting(attribution, "ATTRIBUTION_API_KEYS") or key)
    url = f"http://127.0.0.1:{world.ports['attribution']}/v1/summary"
    async with httpx.AsyncClient(headers=headers, timeout=10) as client:
        deadline = time.monotonic() + 90
        summary: dict[str, Any] = {}
        while time.monotonic() < deadline:
            response = await client.get(url, params={"model": "linear"})
            _expect(response, 200, "attribution GET /v1/summary")
            summary = response.json()
            if summary["applicants"]["attributed"] >= 1:
                return summary
            await asyncio.sleep(0.5)
    raise SmokeError(f"attribution never credited the smoke applicant: {summary}")


async def _connect(api: httpx.AsyncClient, ingest: Container) -> None:
    """The LinkedIn connect flow as far as LinkedIn: an invitation (503 unless the client id,
    client secret, connect secret and token keys are all given; a malformed token key stops
    ingest at start) and its signed link, which sends the browser to LinkedIn's authorization
    page with the deployment's client id."""
    response = await api.post("/v1/linkedin/invitations", json={"employee_id": "emp-smoke"})
    _expect(response, 201, "ingest POST /v1/linkedin/invitations")
    path = "/connect/" + response.json()["url"].split("/connect/", 1)[1]
    async with httpx.AsyncClient(base_url=str(api.base_url), follow_redirects=False) as browser:
        response = await browser.get(path)
    _expect(response, 302, "ingest GET /connect/linkedin/{token}")
    location = response.headers["location"]
    client_id = setting(ingest, "INGEST_LINKEDIN_CLIENT_ID")
    if "/authorization?" not in location or urlencode({"client_id": client_id}) not in location:
        raise SmokeError(f"the connect link did not send the browser to LinkedIn: {location}")


PAGE_LINK = re.compile(r"https?://[^\s\"'<>)\]]+/me/[A-Za-z0-9._~-]+")


async def employee_page(
    services: dict[str, Started],
    world: World,
    employee: str,
    notified: Iterable[str] = (),
    until: Callable[[dict[str, Any]], bool] = lambda _: True,
    job: str | None = None,
) -> dict[str, Any]:
    """The employee's page as the deployment wires it (CONTRACT §11): a page link made through
    ingest's ``POST /v1/employees/{id}/page-links`` under its public address, and the page
    ``GET /me/{token}`` answering 200 with the employee's figures exactly as attribution's
    ``GET /v1/employees/{id}/ripples`` gives them (so ingest reaches attribution with a key
    it accepts); then every page link found in ``notified`` (the notifier's messages: signed
    with its own setting) opens the same page. ``until``: what attribution's answer must show
    first (its figures of a fact lag the summary's a little); ``job``: a job to make a link
    for on the page (:func:`_job_link`). Returns attribution's answer."""
    from services.ingest.page.texts import TEXTS
    from tests.selfservice.conftest import expected_figures, shown_figures

    ingest = services["ingest"].local.container
    public = setting(ingest, "INGEST_PUBLIC_BASE_URL").rstrip("/")
    attribution = services["attribution"].local.container
    headers = _bearer(setting(attribution, "ATTRIBUTION_API_KEYS"))
    url = f"http://127.0.0.1:{world.ports['attribution']}/v1/employees/{employee}/ripples"
    base = f"http://127.0.0.1:{world.ports['ingest']}"
    api_headers = _bearer(setting(ingest, "INGEST_API_KEYS"))
    async with (
        httpx.AsyncClient(headers=headers, timeout=10) as figures,
        httpx.AsyncClient(base_url=base, timeout=30) as client,
    ):

        async def answer() -> dict[str, Any]:
            response = await figures.get(url)
            _expect(response, 200, "attribution GET /v1/employees/{employee_id}/ripples")
            body: dict[str, Any] = response.json()
            return body

        deadline = time.monotonic() + 90
        while not until(latest := await answer()):
            if time.monotonic() > deadline:
                raise SmokeError(f"attribution's figures of {employee} never settled: {latest}")
            await asyncio.sleep(0.5)
        response = await client.post(f"/v1/employees/{employee}/page-links", headers=api_headers)
        _expect(response, 201, "ingest POST /v1/employees/{employee_id}/page-links")
        links = [response.json()["url"], *notified]
        for link in links:
            if not link.startswith(public + "/me/"):
                raise SmokeError(f"a page link is not under ingest's public address {public}")
            # attribution may still be settling the pilot's last facts: the page is compared
            # with the route's answer of the same moment (the same before and after it)
            deadline = time.monotonic() + 60
            while True:
                before = await answer()
                response = await client.get("/me/" + link.split("/me/", 1)[1])
                _expect(response, 200, "ingest GET /me/{token}")
                page = response.text
                if any(TEXTS[loc]["figures_unavailable"] in page for loc in TEXTS):
                    raise SmokeError(
                        "the employee's page says the figures are unavailable: ingest did not "
                        "get them from attribution; its log ends:\n" + services["ingest"].tail()
                    )
                shown, wanted = shown_figures(page), expected_figures(before, "da")
                if shown == wanted:
                    break
                if before == await answer() or time.monotonic() > deadline:
                    raise SmokeError(f"the page shows {shown}; attribution answered {wanted}")
                await asyncio.sleep(0.5)
        if job is not None:
            await _job_link(client, "/me/" + links[0].split("/me/", 1)[1], ingest, job)
    return before


async def _job_link(client: httpx.AsyncClient, path: str, ingest: Container, job: str) -> None:
    """The page's "make my link" form for a job: the link leads, through the redirector, to
    the deployment's INGEST_JOB_URL_TEMPLATE for that job (a host links may point to)."""
    public = setting(ingest, "INGEST_PUBLIC_BASE_URL").rstrip("/")
    deadline = time.monotonic() + 30
    while f'<option value="{job}">' not in (page := (await client.get(path)).text):
        if time.monotonic() > deadline:
            raise SmokeError(f"the employee's page never offered the job {job}")
        await asyncio.sleep(0.3)
    token = re.search(r'name="form_token" value="([^"]+)"', page)
    if token is None:
        raise SmokeError("the employee's page has no form token")
    made = await client.post(
        f"{path}/links",
        data={"form_token": token[1], "job_id": job},
        headers={"Origin": public, "Sec-Fetch-Site": "same-origin"},
    )
    _expect(made, 303, "ingest POST /me/{token}/links")
    code = parse_qs(urlsplit(made.headers["location"]).query)["link"][0]
    follow = await client.get(f"/r/{code}")
    _expect(follow, 302, "ingest GET /r/{code} of the page's job link")
    target = setting(ingest, "INGEST_JOB_URL_TEMPLATE").replace("{job_id}", job)
    if not follow.headers["location"].startswith(target):
        raise SmokeError(f"the job link leads to {follow.headers['location']}, not {target}")


def page_links(texts: Iterable[str]) -> list[str]:
    """The employee's page links in messages."""
    return sorted({m for text in texts for m in PAGE_LINK.findall(text)})


def _expect(response: httpx.Response, status: int, what: str, also: tuple[int, ...] = ()) -> None:
    if response.status_code != status and response.status_code not in also:
        raise SmokeError(f"{what} answered {response.status_code}: {response.text[:500]}")
