"""Pieces every Ripples OpenAPI 3.1 document shares: the bearer-key scheme, the problem
responses (with their headers and an example each), the operational paths and the licence.

Each service's ``openapi.py`` builds its document from these, so a 401, a 422 naming a
parameter or a 503 with ``Retry-After`` reads the same in all three."""

from __future__ import annotations

from typing import Any

from shared.http import PROBLEM_BASE, PROBLEM_SCHEMA

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
"""The ``security`` of an operation that needs ``Authorization: Bearer <key>``."""
OPEN: list[dict[str, list[str]]] = []
"""The ``security`` of an open operation (probes, vendor webhooks, browser routes)."""

SECURITY_SCHEMES = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key of the service (`INGEST_API_KEYS`, `ATTRIBUTION_API_KEYS`, "
        "`NOTIFIER_API_KEYS`; the local stack's key is valid on all three).",
    }
}
LICENSE = {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
NAMING_PROBLEM = {
    "allOf": [
        PROBLEM_REF,
        {
            "required": ["errors"],
            "properties": {"errors": {"minItems": 1}},
            "description": "`errors[].field` names what is wrong.",
        },
    ]
}
"""A problem document that always names the field or parameter (``errors`` is required)."""
RETRY_AFTER = {
    "description": "Seconds to wait before trying again.",
    "required": True,
    "schema": {"type": "integer", "minimum": 0},
    "example": 1,
}


def components(schemas: dict[str, Any]) -> dict[str, Any]:
    """``components`` of a document: its schemas, the problem schema and the key scheme."""
    return {"schemas": {**schemas, "Problem": PROBLEM_SCHEMA}, "securitySchemes": SECURITY_SCHEMES}


def problem(
    status: int,
    description: str,
    kind: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, Any] | None = None,
    errors: list[dict[str, Any]] | None = None,
    naming: bool = False,
) -> dict[str, Any]:
    """A response whose body is a problem document, with an example of one; ``naming``: every
    such answer carries ``errors`` (schema :data:`NAMING_PROBLEM`)."""
    example: dict[str, Any] = {
        "type": PROBLEM_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        example["errors"] = errors
    out: dict[str, Any] = {
        "description": description,
        "content": {
            "application/problem+json": {
                "schema": NAMING_PROBLEM if naming else PROBLEM_REF,
                "example": example,
            }
        },
    }
    if headers:
        out["headers"] = headers
    return out


def unauthorized() -> dict[str, Any]:
    return problem(
        401,
        "Missing or invalid API key.",
        "unauthorized",
        "Unauthorized",
        "send a valid API key as `Authorization: Bearer <key>`",
        headers={
            "WWW-Authenticate": {
                "description": "The scheme to use: `Bearer`.",
                "required": True,
                "schema": {"type": "string"},
                "example": 'Bearer realm="ripples"',
            }
        },
    )


def unavailable(description: str, kind: str = "database-unavailable") -> dict[str, Any]:
    return problem(
        503,
        description,
        kind,
        "Service unavailable",
        "the database is not reachable; retry later",
        headers={"Retry-After": RETRY_AFTER},
    )


def invalid_parameter(description: str, field: str, detail: str) -> dict[str, Any]:
    """A 422 whose problem always names the parameter (schema :data:`NAMING_PROBLEM`)."""
    return problem(
        422,
        description,
        "invalid-parameter",
        "Invalid query parameter",
        f"`{field}`: {detail}",
        errors=[{"field": field, "detail": detail}],
        naming=True,
    )


def not_found(detail: str) -> dict[str, Any]:
    return problem(404, "Unknown id.", "not-found", "Not found", detail)


INTERNAL_ERROR = problem(
    500,
    "The service failed to answer (a bug, logged with its traceback).",
    "internal-error",
    "Internal error",
    "the request failed inside the service; it has been logged",
)


def json_body(schema: dict[str, Any], example: Any) -> dict[str, Any]:
    return {"application/json": {"schema": schema, "example": example}}


def operational_paths(
    service: str, ready: str, checks: list[str], extra_errors: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The OpenAPI paths of :func:`shared.http.operational_routes`; ``ready`` says what
    ``/readyz`` checks, ``checks`` names them, ``extra_errors`` are answered on every route
    (ingest's 431)."""
    errors = {**(extra_errors or {}), "500": INTERNAL_ERROR}
    readiness = {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": {"type": "string", "enum": ["ready", "not ready"]},
            "checks": {
                "type": "object",
                "additionalProperties": {"type": "string", "enum": ["ok", "failing"]},
            },
        },
    }

    def get(
        name: str, summary: str, responses: dict[str, Any], description: str = ""
    ) -> dict[str, Any]:
        operation: dict[str, Any] = {
            "operationId": f"{service}{name}",
            "summary": summary,
            "tags": ["operations"],
            "security": OPEN,
            "responses": {**responses, **errors},
        }
        if description:
            operation["description"] = description
        return {"get": operation}

    return {
        "/livez": get(
            "Livez",
            "The process is alive",
            {
                "200": {
                    "description": "Alive (nothing outside the process is checked).",
                    "content": json_body(
                        {
                            "type": "object",
                            "required": ["status"],
                            "properties": {"status": {"const": "live"}},
                        },
                        {"status": "live"},
                    ),
                }
            },
        ),
        "/readyz": get(
            "Readyz",
            ready,
            {
                "200": {
                    "description": "Ready.",
                    "content": json_body(
                        readiness, {"status": "ready", "checks": dict.fromkeys(checks, "ok")}
                    ),
                },
                "503": {
                    "description": "Not ready: a dependency is failing.",
                    "content": json_body(
                        readiness,
                        {
                            "status": "not ready",
                            "checks": {
                                c: "failing" if i == 0 else "ok" for i, c in enumerate(checks)
                            },
                        },
                    ),
                },
            },
        ),
        "/metrics": get(
            "Metrics",
            "Prometheus metrics",
            {
                "200": {
                    "description": "The Prometheus text exposition format (0.0.4).",
                    "content": {
                        "text/plain": {
                            "schema": {"type": "string"},
                            "example": f'{service}_http_requests_total{{route="/livez",'
                            'method="GET",status="200"} 1.0\n',
                        }
                    },
                }
            },
        ),
        "/openapi.json": get(
            "Openapi",
            "This document",
            {
                "200": {
                    "description": "This OpenAPI 3.1 document, as committed in the repository.",
                    "content": json_body(
                        {
                            "type": "object",
                            "required": ["openapi", "info", "paths"],
                            "properties": {
                                "openapi": {"const": "3.1.0"},
                                "info": {"type": "object"},
                                "paths": {"type": "object"},
                            },
                        },
                        {
                            "openapi": "3.1.0",
                            "info": {"title": "…", "version": "1.0.0"},
                            "paths": {},
                        },
                    ),
                }
            },
        ),
    }
