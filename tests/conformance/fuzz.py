"""Schema-driven requests against a running service: schemathesis generates valid and
deliberately invalid requests from a committed OpenAPI document, sends them and runs its
``not_a_server_error``, ``status_code_conformance`` and ``response_schema_conformance`` checks
on every answer. Derandomized (hypothesis ``derandomize=True``, no example database), so a
failure reproduces on the next run with the same code and document."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# Error answers that are not problem documents, as their documents declare: the pages a person
# sees in a browser — an attribution share link that has expired or is not valid, and the
# LinkedIn connect flow's pages (a bad or used invitation, LinkedIn's refusal), the employee's
# page and the overview's share link.
_HTML = "text/html; charset=utf-8"
HTML_ERRORS = {
    ("GET /reports/{token}", 403): _HTML,
    **{("GET /connect/linkedin/{token}", status): _HTML for status in (403, 410, 503)},
    **{("GET /connect/linkedin/callback", status): _HTML for status in (400, 409, 410, 502, 503)},
    # the employee's page, its forms and the overview's share link (da/en pages)
    **{
        (f"GET /{page}/{{token}}", status): _HTML
        for page in ("me", "overview")
        for status in (403, 503)
    },
    **{
        (f"POST /me/{{token}}/{action}", status): _HTML
        for action in ("links", "linkedin", "posts", "preferences")
        for status in (400, 403, 409, 415, 422, 503)
    },
}


@dataclass
class Run:
    """What a run sent and what it found."""

    statuses: Counter[int] = field(default_factory=Counter)
    per_operation: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        kinds = Counter(f.rsplit("→", 1)[-1].strip() for f in self.failures)
        return (
            f"statuses {dict(sorted(self.statuses.items()))}; per operation "
            f"{dict(self.per_operation)}; failures {dict(kinds)}"
        )


def operations(spec: Path) -> list[Any]:
    schema = schemathesis.openapi.from_path(str(spec))
    return [result.ok() for result in schema.get_all_operations()]


def _problem_json(response: Any) -> str | None:
    kind = response.headers.get("content-type", "")
    if isinstance(kind, list):  # schemathesis' own responses hold lists of values
        kind = kind[0] if kind else ""
    return None if kind == "application/problem+json" else str(kind)


def validate(case: schemathesis.Case, response: Any, run: Run) -> None:
    """Record ``response``'s status and every check that fails on it."""
    run.statuses[response.status_code] += 1
    run.per_operation[case.operation.label] += 1
    try:
        case.validate_response(response, checks=CHECKS)
    except (Exception, FailureGroup) as exc:  # one group naming every failed check
        titles = [getattr(e, "title", repr(e)) for e in getattr(exc, "exceptions", [exc])]
        where = f"{case.operation.label} {case.path_parameters or ''} {case.query or ''}"
        run.failures.append(f"{where} → {response.status_code}: {'; '.join(titles)}"[:500])
    if response.status_code >= 400 and (kind := _problem_json(response)) is not None:
        if HTML_ERRORS.get((case.operation.label, response.status_code)) == kind:
            return
        run.failures.append(f"{case.operation.label} → {response.status_code} as {kind}")


def fuzz(
    spec: Path,
    base_url: str,
    examples: int,
    headers: Callable[[int], Mapping[str, str]],
) -> Run:
    """Send ``examples`` generated requests (valid and invalid ones, every operation of
    ``spec``) to ``base_url``; ``headers(n)`` gives the headers of the n-th request."""
    run = Run()
    session = requests.Session()
    strategies = [
        op.as_strategy(generation_mode=mode)
        for op in operations(spec)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies))
    def send(case: schemathesis.Case) -> None:
        try:
            response = case.call(
                base_url=base_url,
                session=session,
                headers=dict(headers(run.statuses.total())),
                timeout=15,
                allow_redirects=False,
            )
        except requests.RequestException as exc:  # a dropped connection is a failure too
            run.failures.append(f"{case.operation.label}: {type(exc).__name__} {exc}")
            return
        validate(case, response, run)

    send()
    return run
