"""The three committed OpenAPI documents: valid OpenAPI 3.1 (openapi-spec-validator), complete
(an operationId, declared security, the statuses each route can answer, an example for every
body) and valid examples. Issue 20: ingest's `application/json` media type carried a
`description`, no operation had an operationId or security, the probes declared no errors and
the licence had no URL."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson
import pytest
from openapi_spec_validator import validate

from services.attribution.openapi import openapi as attribution_openapi
from services.ingest.openapi import openapi as ingest_openapi
from services.notifier.openapi import openapi as notifier_openapi
from shared.openapi import NAMING_PROBLEM
from tests.conformance.conftest import SERVICES, document

GENERATED = {
    "ingest": ingest_openapi,
    "attribution": attribution_openapi,
    "notifier": notifier_openapi,
}
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
OPEN_PATHS = (
    "/livez",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/r/",
    "/reports/",
    "/v1/webhooks/",
    "/connect/",
    "/me/",
    "/overview/",
)
# Browser pages that answer a person with an HTML page, not a problem document: attribution's
# share link refused (expired or not valid), the connect flow's pages, the employee's page and
# the overview's share link (da/en).
HTML_ERRORS = {("/reports/{token}", "403")}
HTML_PAGES = ("/connect/", "/me/", "/overview/")


def _load(service: str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(document(service).read_bytes())
    return loaded


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = [
        (path, method, operation)
        for section in ("paths", "webhooks")
        for path, item in spec.get(section, {}).items()
        for method, operation in item.items()
        if method in METHODS
    ]
    assert found
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_valid_openapi_3_1(service: str) -> None:
    spec = _load(service)
    assert spec["openapi"] == "3.1.0"
    validate(spec)  # raises on the first violation


@pytest.mark.parametrize("service", SERVICES)
def test_committed_document_is_current(service: str) -> None:
    assert _load(service) == GENERATED[service](), "regenerate with: make openapi"


@pytest.mark.parametrize("service", SERVICES)
def test_licence_has_a_url(service: str) -> None:
    assert _load(service)["info"]["license"]["url"].startswith("https://")


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_has_a_unique_operation_id(service: str) -> None:
    ids = [op.get("operationId") for _, _, op in _operations(_load(service))]
    assert None not in ids
    assert len(set(ids)) == len(ids), ids


@pytest.mark.parametrize("service", SERVICES)
def test_security_is_declared_per_operation(service: str) -> None:
    spec = _load(service)
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    for path, method, op in _operations(spec):
        if path in spec.get("webhooks", {}) or path.startswith(OPEN_PATHS):
            assert op["security"] == [], (path, method)
            continue
        # ingest's key lookup takes the consumers' reader keys only (INGEST_KEY_READER_API_KEYS)
        scheme = (
            "keyReaderAuth" if (service, path) == ("ingest", "/v1/keys:lookup") else "bearerAuth"
        )
        assert op["security"] == [{scheme: []}], (path, method)
        unauthorized = op["responses"]["401"]
        assert "WWW-Authenticate" in unauthorized["headers"], (path, method)
        assert "application/problem+json" in unauthorized["content"]


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_declares_its_errors(service: str) -> None:
    spec = _load(service)
    for path, method, op in _operations(spec):
        if path in spec.get("webhooks", {}):
            continue
        codes = set(op["responses"])
        assert any(c >= "400" for c in codes), (path, method, codes)
        if any(p["in"] in ("query", "path") for p in op.get("parameters", [])):
            # A bad token is the page's 403 (a share link, an invitation that is not valid).
            assert codes & {"400", "403", "404", "422"}, (path, method, codes)
        if path.startswith("/v1/") and "503" in codes:
            unavailable = op["responses"]["503"]
            example = unavailable["content"]["application/problem+json"]["example"]
            if not example["type"].endswith("/not-configured"):  # broker or database down
                assert "Retry-After" in unavailable.get("headers", {}), (path, method)
        elif path.startswith("/v1/"):
            pytest.fail(f"{method} {path} declares no 503")
        for code, response in op["responses"].items():
            if (path, code) in HTML_ERRORS:
                assert set(response["content"]) == {"text/html; charset=utf-8"}, (path, code)
            elif code >= "400" and path.startswith(HTML_PAGES):
                assert "text/html" in response["content"], (path, code)
            elif code >= "400" and (code != "503" or path != "/readyz"):
                assert "application/problem+json" in response["content"], (path, code)


def _bodies(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    bodies = []
    for path, method, op in _operations(spec):
        request = op.get("requestBody", {}).get("content", {})
        bodies += [(f"{method} {path} request {t}", m) for t, m in request.items()]
        for code, response in op["responses"].items():
            content = response.get("content", {})
            bodies += [(f"{method} {path} {code} {t}", m) for t, m in content.items()]
    return bodies


@pytest.mark.parametrize("service", SERVICES)
def test_every_body_has_a_valid_example(service: str) -> None:
    spec = _load(service)
    for where, media in _bodies(spec):
        examples = [media["example"]] if "example" in media else []
        examples += [e["value"] for e in media.get("examples", {}).values()]
        assert examples, f"{where}: no example"
        schema = {"allOf": [media["schema"]], "components": spec["components"]}
        for example in examples:
            if where.endswith("text/plain"):
                assert isinstance(example, str)
                continue
            jsonschema.validate(
                example,
                schema,
                cls=jsonschema.Draft202012Validator,
                format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
            )


def test_notifier_documents_its_outgoing_webhook() -> None:
    webhook = _load("notifier")["webhooks"]["recognition"]["post"]
    headers = {p["name"] for p in webhook["parameters"] if p["in"] == "header"}
    assert {
        "X-Ripples-Signature",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    } <= headers
    body = _load("notifier")["components"]["schemas"]["Message"]
    assert {"recognition_id", "kind", "employee_id", "text", "locale"} <= set(body["required"])


def test_notifier_documents_the_recognitions_pages() -> None:
    op = _load("notifier")["paths"]["/v1/recognitions"]["get"]
    params = {p["name"]: p["schema"] for p in op["parameters"]}
    assert params["limit"] == {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}
    assert set(params) == {"employee_id", "limit", "cursor"}
    assert "Link" in op["responses"]["200"]["headers"]
    reason = _load("notifier")["components"]["schemas"]["Recognition"]["properties"]["reason"]
    assert set(reason["enum"]) == {
        None,
        "opted_out",
        "channel_none",
        "no_notify",
        "stale",
        "erased",
        "address_not_allowed",
        "rejected",
        "too_large",
        "server_error",
        "rate_limited",
        "timeout",
        "connection_error",
        "interrupted",
        "max_attempts",
    }


@pytest.mark.parametrize("service", ["attribution", "notifier"])
def test_every_422_requires_the_field_it_names(service: str) -> None:
    """Attribution's and the notifier's 422s always name the parameter or field (they send
    `errors[].field`: test_parameters.py), so their schema requires `errors` and schemathesis'
    response-schema check holds the services to it."""
    spec = _load(service)
    found = 0
    for path, method, op in _operations(spec):
        if "422" in op["responses"]:
            media = op["responses"]["422"]["content"]["application/problem+json"]
            assert media["schema"] == NAMING_PROBLEM, (path, method)
            assert media["example"]["errors"], (path, method)
            found += 1
    assert found
