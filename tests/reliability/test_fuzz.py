"""Schema-driven fuzzing of the ingest API: schemathesis generates requests from the committed
``services/ingest/openapi.json`` (valid and deliberately invalid ones) and sends them to a real
ingest process with a real broker and database. No request may get a 5xx or lose its
answer, every status and body is the one the document declares (schemathesis'
``status_code_conformance`` and ``response_schema_conformance``), and every 4xx is
problem+json. The same runner checks attribution and the notifier in tests/conformance."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.conformance.fuzz import fuzz, operations
from tests.conftest import Running
from tests.reliability.conftest import AUTH

pytestmark = pytest.mark.integration

SPEC = Path(__file__).parents[2] / "services" / "ingest" / "openapi.json"
EXAMPLES = 2_400


def _headers(n: int) -> Mapping[str, str]:
    # Half the requests carry a valid key, so the checks behind authentication run too.
    return AUTH if n % 2 == 0 else {}


def test_generated_requests_never_get_a_5xx(armed_ingest: Running) -> None:
    run = fuzz(SPEC, armed_ingest.address, EXAMPLES, _headers)
    print(run.summary())
    assert not run.failures, "\n".join(run.failures[:10])
    assert run.statuses.total() >= 2_000
    # The run reached every operation and both sides of the gate.
    assert set(run.per_operation) == {op.label for op in operations(SPEC)}
    assert any(s < 300 for s in run.statuses)
    assert any(400 <= s < 500 for s in run.statuses)
