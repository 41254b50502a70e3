"""Schema-driven fuzzing of the ingest API: schemathesis generates requests from the committed
``services/ingest/openapi.json`` (valid and deliberately invalid ones) and sends them to a real
ingest process with a real broker and database. No request may get a 5xx or lose its
answer; every 4xx is problem+json."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.conftest import Running
from tests.reliability.conftest import AUTH

pytestmark = pytest.mark.integration

SPEC = Path(__file__).parents[2] / "services" / "ingest" / "openapi.json"
SCHEMA = schemathesis.openapi.from_path(str(SPEC))
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
EXAMPLES = 2_400


def _cases() -> st.SearchStrategy[schemathesis.Case]:
    strategies = [
        op.as_strategy(generation_mode=mode)
        for op in OPERATIONS
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]
    return st.one_of(strategies)


def test_generated_requests_never_get_a_5xx(armed_ingest: Running) -> None:
    session = requests.Session()
    statuses: Counter[int] = Counter()
    per_operation: Counter[str] = Counter()
    failures: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_cases())
    def send(case: schemathesis.Case) -> None:
        # Half the requests carry a valid key, so the checks behind authentication run too.
        headers = dict(AUTH) if statuses.total() % 2 == 0 else {}
        try:
            response = case.call(
                base_url=armed_ingest.address,
                session=session,
                headers=headers,
                timeout=15,
                allow_redirects=False,
            )
        except requests.RequestException as exc:  # a dropped connection is a failure too
            failures.append(f"{case.operation.label}: {type(exc).__name__} {exc}")
            raise
        statuses[response.status_code] += 1
        per_operation[case.operation.label] += 1
        if response.status_code >= 500:
            failures.append(f"{case.operation.label} → {response.status_code} {response.text}")
        elif response.status_code >= 400:
            kind = response.headers.get("content-type", [""])[0]  # header values are lists
            if kind != "application/problem+json":
                failures.append(f"{case.operation.label} → {response.status_code} as {kind}")
        assert response.status_code < 500, response.text

    send()
    print(f"statuses {dict(sorted(statuses.items()))}; per operation {dict(per_operation)}")
    assert not failures, failures[:10]
    assert statuses.total() >= 2_000
    # The run reached every operation and both sides of the gate.
    assert set(per_operation) == {op.label for op in OPERATIONS}
    assert any(s < 300 for s in statuses)
    assert any(400 <= s < 500 for s in statuses)
