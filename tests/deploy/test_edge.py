"""The public edge exposes only ingest's public routes: the compose edge (Caddy, run here with
the committed Caddyfile in front of a stand-in upstream) and the Kubernetes Ingress (its
rules evaluated with the path semantics the Ingress API defines), both against one table."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.conftest import free_port
from tests.deploy.pydeps import ROOT

CADDYFILE = ROOT / "deploy" / "caddy" / "Caddyfile"
K8S = ROOT / "deploy" / "k8s"

# (request path, passed on to ingest?)
ROUTES = [
    ("/r/AbC123xyz", True),
    ("/v1/webhooks/greenhouse", True),
    ("/v1/webhooks/linkedin?challengeCode=x", True),
    ("/connect/linkedin?token=t", True),
    ("/connect/linkedin/callback?code=c&state=s", True),
    ("/me/eyJ0b2tlbiI6MX0.c2ln", True),
    ("/me/eyJ0b2tlbiI6MX0.c2ln/preferences", True),
    ("/overview/eyJ0b2tlbiI6MX0.c2ln", True),
    ("/v1/overview", False),
    ("/v1/employees/emp-1/page-links", False),
    ("/mex/abc", False),
    ("/v1/events", True),
    ("/v1/events:batch", True),
    ("/v1/links", True),
    ("/", False),
    ("/rx/AbC123xyz", False),
    ("/metrics", False),
    ("/readyz", False),
    ("/livez", False),
    ("/openapi.json", False),
    ("/v1/eventsX", False),
    ("/v1/events/x", False),
    ("/v1/links/abc", False),
    ("/v1/linkedin/invitations", False),
    ("/v1/employees:import", False),
    ("/v1/sharers", False),
    ("/v1/summary", False),
    ("/v1/recognitions", False),
    ("/v1/webhooksX", False),
]


# --- compose: Caddy itself, with the committed Caddyfile ---------------------------------------


class _Upstream(BaseHTTPRequestHandler):
    seen: list[str] = []  # noqa: RUF012 (one list per test, reset below)

    def _answer(self) -> None:
        type(self).seen.append(self.path)
        self.send_response(200)
        self.send_header("X-Upstream", "ingest")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def caddy() -> str:
    path = shutil.which("caddy")
    if path is None:
        pytest.fail("caddy is not installed: run 'make tools' (installs Debian's caddy)")
    return path


@pytest.fixture
def edge(caddy: str, tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """Caddy on a free port with the committed Caddyfile; the upstream a local stand-in for
    ingest that records the paths it was given."""
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    _Upstream.seen = []
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        # Plain HTTP on a local port instead of the public host name: no certificate here.
        "RIPPLES_EDGE_SITE": f"http://127.0.0.1:{port}",
        "RIPPLES_EDGE_UPSTREAM": f"127.0.0.1:{upstream.server_address[1]}",
    }
    with (tmp_path / "caddy.log").open("wb") as log:
        process = subprocess.Popen(
            [caddy, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while not _port_open(port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("caddy did not start:\n" + (tmp_path / "caddy.log").read_text())
            time.sleep(0.05)
        yield f"127.0.0.1:{port}", _Upstream.seen
    finally:
        process.terminate()
        process.wait(10)
        upstream.shutdown()
        upstream.server_close()


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def _raw_get(address: str, target: str) -> tuple[int, str]:
    """GET with the request target sent as is (no client-side normalisation)."""
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), 5) as sock:
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    return int(head.split()[1]), head


def test_caddyfile_is_valid(caddy: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [caddy, "validate", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "RIPPLES_EDGE_SITE": ":8443"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("path", "public"), ROUTES)
def test_the_compose_edge_passes_on_only_public_routes(
    edge: tuple[str, list[str]], path: str, public: bool
) -> None:
    address, seen = edge
    status, head = _raw_get(address, path)
    if public:
        assert status == 200, head
        assert "X-Upstream: ingest" in head
        assert seen == [path]
    else:
        assert status == 404, head
        assert seen == []


@pytest.mark.parametrize("path", ["/v1/webhooks/../sharers", "/r/../metrics", "/r/%2e%2e/metrics"])
def test_the_compose_edge_is_not_fooled_by_dot_segments(
    edge: tuple[str, list[str]], path: str
) -> None:
    address, seen = edge
    status, _ = _raw_get(address, path)
    # Either refused at the edge, or passed on with a path ingest routes to nothing public.
    assert status == 404 or all(urlsplit(p).path.startswith(("/r/", "/v1/webhooks/")) for p in seen)
    assert not any(p.rstrip("/").endswith(("/sharers", "/metrics")) and ".." not in p for p in seen)


def test_compose_publishes_the_edge_and_keeps_the_rest_local(docker_compose: str) -> None:
    from tests.deploy import smoke

    model = smoke.render_compose(docker_compose)
    edge = model["services"]["edge"]
    (port,) = edge["ports"]
    assert port["target"] == 443
    assert not port.get("host_ip"), "the edge is the one public port"
    for name, service in model["services"].items():
        if name != "edge":
            assert all(p["host_ip"] == "127.0.0.1" for p in service.get("ports", [])), name
    assert edge["environment"]["RIPPLES_EDGE_UPSTREAM"] == "ingest:8080"
    public = model["services"]["ingest"]["environment"]["INGEST_PUBLIC_BASE_URL"]
    assert public == f"https://{edge['environment']['RIPPLES_EDGE_SITE']}"
    assert {"source": str(CADDYFILE), "target": "/etc/caddy/Caddyfile"}.items() <= next(
        v for v in edge["volumes"] if v["target"] == "/etc/caddy/Caddyfile"
    ).items()


# --- Kubernetes: the Ingress rules, as the Ingress API defines their matching ---------------


def _ingress_matches(path: str, rule_path: str, path_type: str) -> bool:
    """networking.k8s.io/v1 semantics: Exact = the whole path, case-sensitive; Prefix =
    element-wise on '/'-split elements (a trailing slash is ignored; /foo matches /foo/bar,
    not /foobar)."""
    path = urlsplit(path).path
    if path_type == "Exact":
        return path == rule_path
    assert path_type == "Prefix", path_type
    wanted = [p for p in rule_path.split("/") if p]
    got = [p for p in path.split("/") if p]
    return got[: len(wanted)] == wanted


def _render(overlay: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="module", params=["prod", "dev"])
def ingress(request: pytest.FixtureRequest) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    docs = _render(request.param)
    (found,) = [d for d in docs if d["kind"] == "Ingress"]
    return found, docs


@pytest.mark.parametrize(("path", "public"), ROUTES)
def test_the_ingress_passes_on_only_public_routes(
    ingress: tuple[dict[str, Any], list[dict[str, Any]]], path: str, public: bool
) -> None:
    doc, _ = ingress
    (rule,) = doc["spec"]["rules"]
    matched = [
        p["backend"]
        for p in rule["http"]["paths"]
        if _ingress_matches(path, p["path"], p["pathType"])
    ]
    assert bool(matched) == public, path
    for backend in matched:
        assert backend == {"service": {"name": "ingest", "port": {"name": "metrics"}}}
    assert "defaultBackend" not in doc["spec"]


def test_the_ingress_has_tls_from_cert_manager_on_the_public_host(
    ingress: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    doc, docs = ingress
    (rule,) = doc["spec"]["rules"]
    (tls,) = doc["spec"]["tls"]
    assert tls["hosts"] == [rule["host"]]
    assert tls["secretName"]
    assert doc["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
    (config,) = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("ingest-config")
    ]
    assert config["data"]["INGEST_PUBLIC_BASE_URL"] == f"https://{rule['host']}"


def test_the_ingress_matcher_is_the_documented_one() -> None:
    """The examples of the Kubernetes Ingress documentation ("Examples" table)."""
    assert _ingress_matches("/foo", "/foo", "Prefix")
    assert _ingress_matches("/foo/", "/foo", "Prefix")
    assert _ingress_matches("/aaa/bbb", "/aaa/bbb/", "Prefix")
    assert _ingress_matches("/aaa/bbb/ccc", "/aaa/bbb", "Prefix")
    assert not _ingress_matches("/aaa/bbbxyz", "/aaa/bbb", "Prefix")
    assert not _ingress_matches("/foo/", "/foo", "Exact")
    assert not _ingress_matches("/FOO", "/foo", "Exact")
