"""Every route a service serves is in its committed OpenAPI document, with every method it
serves (issue 20: "make every document complete"; the operational routes included). The
routes are read from each app's own route table (tests/routes.py, the discovery the access
tests use), so a route added later without its documentation fails here.

A ``HEAD`` that Starlette adds beside a ``GET`` is documented by that ``GET`` (RFC 9110
§9.3.2: the same answer without the body)."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from tests.conformance.conftest import SERVICES, document
from tests.routes import route_table

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def served(service: str) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every route ``service``'s app serves."""
    found = set()
    for route in route_table(service):
        path = re.sub(r"\{([^}:]+)(:[^}]*)?\}", r"{\1}", route.path)  # drop convertors
        methods = set(route.methods or ())
        if "GET" in methods:
            methods.discard("HEAD")
        found |= {(method.lower(), path) for method in methods}
    assert found, service
    return found


def documented(service: str) -> set[tuple[str, str]]:
    spec: dict[str, Any] = orjson.loads(document(service).read_bytes())
    return {
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    }


@pytest.mark.parametrize("service", SERVICES)
def test_every_served_route_is_documented(service: str) -> None:
    missing = served(service) - documented(service)
    assert not missing, f"served but not in services/{service}/openapi.json: {sorted(missing)}"


@pytest.mark.parametrize("service", SERVICES)
def test_every_documented_route_is_served(service: str) -> None:
    extra = documented(service) - served(service)
    assert not extra, f"in services/{service}/openapi.json but not served: {sorted(extra)}"
