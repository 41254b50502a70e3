"""Bad query and path parameters get a 422 problem+json naming the parameter, from the
running attribution service and notifier (issue 20: empty values were treated as absent;
issue 13 part 5: `from=0001-01-01T00:00:00+01:00`, year 0 in UTC, was a 500). Each 422 carries
`errors[].field`, as the documents now require (`shared.openapi.NAMING_PROBLEM`), on the
served report's query and share-link body too."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conformance.conftest import AUTH
from tests.conftest import Running

pytestmark = pytest.mark.integration

LONG = "e" * 257
QUERY_CASES = [
    ("from=", "from"),
    ("to=", "to"),
    ("model=", "model"),
    ("from=%00", "from"),
    ("from=2026-01-01T00:00:00Z%00", "from"),
    ("model=linear%00", "model"),
    ("model=%1B", "model"),
    ("from=0001-01-01T00:00:00%2B01:00", "from"),  # year 0 in UTC
    ("to=9999-12-31T23:59:59-01:00", "to"),  # year 10000 in UTC
    ("from=20260101T000000Z", "from"),  # ISO 8601 basic format, not RFC 3339
    ("from=2026-01-01", "from"),  # a date, not a date-time
    ("from=2026-01-01T00:00:00", "from"),  # no offset
    ("from=2026-02-30T00:00:00Z", "from"),
    ("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to"),
    ("from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00%2B01:00", "to"),  # the same instant
    ("model=shapley", "model"),
]
ROUTES = ["/v1/summary", "/v1/sharers", "/v1/sharers/emp-1", "/v1/report"]
REPORT_CASES = [
    ("locale=", "locale"),
    ("locale=de", "locale"),
    ("locale=da%00", "locale"),
    ("format=", "format"),
    ("format=xlsx", "format"),
    ("format=pdf%1B", "format"),
]
LINK_CASES = [
    (b"[]", "body"),
    (b"not json", "body"),
    (b"null", "body"),
    (b'{"from": 1}', "from"),
    (b'{"from": "2026-01-01"}', "from"),
    (b'{"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}', "to"),
    (b'{"model": "shapley"}', "model"),
    (b'{"locale": "de"}', "locale"),
    (b'{"expires_in_s": 59}', "expires_in_s"),
    (b'{"expires_in_s": 99999999}', "expires_in_s"),
    (b'{"expires_in_s": true}', "expires_in_s"),
    (b'{"expires_in_s": 60.5}', "expires_in_s"),
]
PATH_CASES = [
    ("/v1/sharers/a%00b", "employee_id"),
    ("/v1/sharers/%07", "employee_id"),
    (f"/v1/sharers/{LONG}", "employee_id"),
    ("/v1/conversions/a%00b", "applicant_id"),
    ("/v1/conversions/%C2%85", "applicant_id"),  # U+0085, a C1 control character
    (f"/v1/conversions/{LONG}", "applicant_id"),
]


@pytest.fixture(scope="module")
async def attribution(services: dict[str, Running]) -> AsyncIterator[httpx.AsyncClient]:
    address = services["attribution"].address
    async with httpx.AsyncClient(base_url=address, headers=AUTH, timeout=15) as client:
        yield client


def _names(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 422
    assert [e["field"] for e in body["errors"]] == [field], body


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("query", "field"), QUERY_CASES)
async def test_bad_query_parameter_is_named(
    attribution: httpx.AsyncClient, route: str, query: str, field: str
) -> None:
    _names(await attribution.get(f"{route}?{query}"), field)


@pytest.mark.parametrize(("query", "field"), REPORT_CASES)
async def test_bad_report_parameter_is_named(
    attribution: httpx.AsyncClient, query: str, field: str
) -> None:
    _names(await attribution.get(f"/v1/report?{query}"), field)


@pytest.mark.parametrize(("body", "field"), LINK_CASES)
async def test_bad_share_link_body_is_named(
    attribution: httpx.AsyncClient, body: bytes, field: str
) -> None:
    response = await attribution.post(
        "/v1/report/links", content=body, headers={"Content-Type": "application/json"}
    )
    _names(response, field)


@pytest.mark.parametrize(("path", "field"), PATH_CASES)
async def test_bad_path_parameter_is_named(
    attribution: httpx.AsyncClient, path: str, field: str
) -> None:
    _names(await attribution.get(path), field)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:01Z&model=linear",
        "from=2026-01-01t00:00:00z",  # RFC 3339 allows lower-case T and Z
        "from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z",
        "to=0001-01-01T01:00:00%2B01:00",  # year 1, 00:00 UTC: the earliest instant
    ],
)
async def test_good_parameters_are_answered(attribution: httpx.AsyncClient, query: str) -> None:
    response = await attribution.get(f"/v1/summary?{query}")
    assert response.status_code == 200, response.text[:300]


NOTIFIER_CASES = [
    ("employee_id=%00", "employee_id"),  # issue 20: a 500
    ("employee_id=a%00b", "employee_id"),  # issue 20: a 500
    ("employee_id=", "employee_id"),  # issue 20: 200 with everyone's rows
    (f"employee_id={LONG}", "employee_id"),
    ("limit=0", "limit"),
    ("limit=501", "limit"),
    ("limit=", "limit"),
    ("cursor=not-from-a-link", "cursor"),
]


@pytest.mark.parametrize(("query", "field"), NOTIFIER_CASES)
async def test_notifier_bad_parameter_is_named(
    services: dict[str, Running], query: str, field: str
) -> None:
    address = services["notifier"].address
    async with httpx.AsyncClient(base_url=address, headers=AUTH, timeout=15) as client:
        _names(await client.get(f"/v1/recognitions?{query}"), field)
