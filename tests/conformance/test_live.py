"""The running services against their committed documents: each serves exactly its
committed `/openapi.json`, and schemathesis' server-error, status-code and response-schema
checks pass on every operation, with the service's key, on data the pipeline really stored
(issue 20: `?employee_id=%00` was a 500 and `employee_id=` answered everyone's rows, neither
in the document; ingest is fuzzed by tests/reliability/test_fuzz.py with the same checks)."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
import requests

from tests import samples
from tests.conformance.conftest import AUTH, SERVICES, document
from tests.conformance.fuzz import Run, fuzz, operations, validate
from tests.conftest import Running

pytestmark = pytest.mark.integration

# A few hundred cases in all (ingest's 2,400 run in tests/reliability/test_fuzz.py).
EXAMPLES = {"attribution": 200, "notifier": 100}
SEEDED = [t for t in samples.DATA if t != "ripples.applicant.erased.v1"]


@pytest.mark.parametrize("service", SERVICES)
async def test_served_document_is_the_committed_one(
    services: dict[str, Running], service: str
) -> None:
    async with httpx.AsyncClient(timeout=15) as client:
        response = await client.get(f"{services[service].address}/openapi.json")
    assert response.status_code == 200
    assert response.json() == orjson.loads(document(service).read_bytes())


async def _poll(address: str, path: str, timeout_s: float = 90) -> None:
    async with httpx.AsyncClient(base_url=address, headers=AUTH, timeout=15) as client:
        for _ in range(int(timeout_s / 0.5)):
            response = await client.get(path)
            if response.status_code == 200 and response.json():
                return
            await asyncio.sleep(0.5)
    pytest.fail(f"{address}{path} never had data")


@pytest.fixture(scope="module")
async def seeded(services: dict[str, Running]) -> dict[str, Running]:
    """Every contract event type (one each) through ingest, stored by attribution and turned
    into recognitions in the notifier's ledger, so the checks read real answers."""
    batch = [samples.event(t) for t in SEEDED]
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{services['ingest'].address}/v1/events:batch",
            content=orjson.dumps(batch),
            headers={**AUTH, "Content-Type": "application/cloudevents-batch+json"},
        )
    assert response.status_code == 202, response.text
    await _poll(services["attribution"].address, "/v1/sharers")
    await _poll(services["notifier"].address, "/v1/recognitions")
    return services


def _known(service: Running, run: Run) -> None:
    """The id routes with ids that exist, so their 200 bodies are checked too."""
    session = requests.Session()
    known = {
        "/v1/sharers/{employee_id}": {"employee_id": "emp-1"},
        "/v1/conversions/{applicant_id}": {"applicant_id": "app-9d1e"},
    }
    # A share link's token, so the browser route's 200 page is checked as well.
    link = session.post(f"{service.address}/v1/report/links", json={}, headers=AUTH)
    assert link.status_code == 201, link.text
    known["/reports/{token}"] = {"token": link.json()["url"].rsplit("/", 1)[1]}
    for op in operations(document("attribution")):
        if op.path in known:
            query = {} if op.path.startswith("/reports/") else {"model": "linear"}
            case = op.Case(path_parameters=known[op.path], query=query)
            response = case.call(base_url=service.address, session=session, headers=AUTH)
            assert response.status_code == 200, response.text
            validate(case, response, run)


def _declared(path: str, method: str, status: int) -> dict[str, object]:
    spec = orjson.loads(document("attribution").read_bytes())
    responses: dict[str, dict[str, object]] = spec["paths"][path][method]["responses"]
    assert str(status) in responses, (path, method, status, "not documented")
    return responses[str(status)]


@pytest.mark.parametrize("fmt", ["html", "pdf", "csv", "md"])
async def test_the_served_report_answers_as_documented(
    seeded: dict[str, Running], fmt: str
) -> None:
    """Each format in the media type and with the headers the document declares."""
    async with httpx.AsyncClient(base_url=seeded["attribution"].address, timeout=60) as client:
        response = await client.get(f"/v1/report?format={fmt}&locale=da", headers=AUTH)
    declared = _declared("/v1/report", "get", response.status_code)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] in declared["content"]  # type: ignore[operator]
    assert response.headers["content-language"] == "da"
    disposition = response.headers.get("content-disposition")
    if fmt == "html":
        assert disposition is None
    else:
        assert disposition == f'inline; filename="ripples-report-da.{fmt}"'
        assert "Content-Disposition" in declared["headers"]  # type: ignore[operator]


async def test_a_share_link_answers_as_documented(seeded: dict[str, Running]) -> None:
    """201 with a URL that opens the report without a key (200 HTML with the page headers);
    the same token altered is a 403 HTML page; every status and header is in the document."""
    async with httpx.AsyncClient(base_url=seeded["attribution"].address, timeout=60) as client:
        created = await client.post("/v1/report/links", json={"locale": "da"}, headers=AUTH)
        _declared("/v1/report/links", "post", created.status_code)
        assert created.status_code == 201, created.text
        assert set(created.json()) == {"url", "expires_at"}
        path = httpx.URL(created.json()["url"]).path
        opened = await client.get(path)
        tampered = await client.get(path[:-2] + ("AA" if not path.endswith("AA") else "BB"))
    for response, status in ((opened, 200), (tampered, 403)):
        declared = _declared("/reports/{token}", "get", response.status_code)
        assert response.status_code == status, response.text[:300]
        assert response.headers["content-type"] in declared["content"]  # type: ignore[operator]
        for name in declared["headers"]:  # type: ignore[attr-defined]
            assert name.lower() in response.headers, (status, name)


@pytest.mark.parametrize(
    "service",
    [
        "attribution",
        "notifier",
    ],
)
def test_schemathesis_checks_pass(seeded: dict[str, Running], service: str) -> None:
    running = seeded[service]
    run = fuzz(document(service), running.address, EXAMPLES[service], lambda _: AUTH)
    if service == "attribution":
        _known(running, run)
    print(run.summary())
    assert not run.failures, "\n".join(run.failures[:10])
    assert set(run.per_operation) == {op.label for op in operations(document(service))}
    assert any(s == 200 for s in run.statuses), run.summary()
    assert any(400 <= s < 500 for s in run.statuses), run.summary()
