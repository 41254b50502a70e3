"""Privacy and secrets across a full run: the end-to-end pilot (tests/e2e, reused here on its
own broker and databases) through ingest, attribution and notifier as real processes, then

- no API key, secret, e-mail address, display name, LinkedIn member URN, ATS candidate id or
  applicant pseudonym in any service's log;
- no id, e-mail, name or URL in the label values of any service's ``/metrics``;
- erasure (``employee.removed.v1``, ``applicant.erased.v1`` sent through ingest) leaves none
  of the person's values in any table of ingest, attribution or notifier.

The redirector's allow-list is tested in tests/connectors/test_links.py
(``test_targets_off_the_allow_list_are_refused``,
``test_allow_list_is_enforced_again_at_redirect``).
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import orjson
import pytest

from tests import samples
from tests.conftest import API_KEYS
from tests.e2e.test_pipeline import (  # the e2e fixtures: one more pilot run, for this module
    SECRETS,
    Outcome,
    Pipeline,
    pipeline,
    played,
)

pytestmark = pytest.mark.integration
__all__ = ["pipeline", "played"]

EMAIL = re.compile(rb"[\w.+-]+@[\w-]+(\.[\w-]+)+")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
SERVICES = ("ingest", "attribution", "notifier")


def _personal(outcome: Outcome) -> dict[str, set[str]]:
    people = outcome.scenario.people
    return {
        "e-mail": {p.email for p in people},
        "display name": {p.name for p in people},
        "member URN": {p.member_urn for p in people if p.member_urn},
        "candidate id": {a.candidate for a in outcome.scenario.applications},
        "applicant pseudonym": set(outcome.pseudonyms.values()),
    }


def _find(text: bytes, value: str) -> bool:
    """``value`` in ``text`` as a whole token (so cand-1 is not found inside cand-12)."""
    pattern = rb"(?<![\w-])" + re.escape(value.encode()) + rb"(?![\w-])"
    return re.search(pattern, text) is not None


def test_logs_hold_no_secrets_and_no_personal_data(pipeline: Pipeline, played: Outcome) -> None:
    secrets = {"API key": set(API_KEYS), "secret": set(SECRETS.values())}
    searched = 0
    services = (pipeline.ingest, pipeline.attribution, pipeline.notifier)
    for name, service in zip(SERVICES, services, strict=True):
        log = service.state.log_file(name).read_bytes()
        assert log.count(b"\n") > 3, f"{name} logged (almost) nothing: the test would be empty"
        for what, values in (secrets | _personal(played)).items():
            for value in values:
                searched += 1
                assert not _find(log, value), f"{name} log holds a {what}"
        assert not EMAIL.search(log), f"{name} log holds an e-mail address"
    assert searched > 100


async def test_metric_labels_hold_no_ids_or_urls(pipeline: Pipeline, played: Outcome) -> None:
    personal = set().union(*_personal(played).values())
    employee_ids = {p.id for p in played.scenario.people}
    async with httpx.AsyncClient(timeout=10) as client:
        for service in (pipeline.ingest, pipeline.attribution, pipeline.notifier):
            text = (await client.get(f"{service.address}/metrics")).text
            values = {
                value
                for line in text.splitlines()
                if not line.startswith("#")
                for _, value in LABEL.findall(
                    line.split(" ", 1)[0] if "}" not in line else line[: line.rindex("}") + 1]
                )
            }
            assert values, f"{service.address}: no labelled metrics at all"
            for value in values:
                assert "@" not in value, value
                assert "://" not in value, value
                assert value not in personal, value
                assert value not in employee_ids, value
                assert not value.startswith(("apl_", "urn:li:", "emp-")), value


async def _text_of_every_table(url: str) -> bytes:
    """Every row of every table of the database, as text."""
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "select table_schema, table_name from information_schema.tables"
            " where table_type = 'BASE TABLE'"
            " and table_schema not in ('pg_catalog', 'information_schema')"
        )
        rows: list[str] = []
        for table in tables:
            name = f'"{table["table_schema"]}"."{table["table_name"]}"'
            rows += [r[0] for r in await conn.fetch(f"select t::text from {name} t")]  # noqa: S608
    finally:
        await conn.close()
    return "\n".join(rows).encode()


async def test_erasure_removes_the_personal_values_from_every_table(
    pipeline: Pipeline, played: Outcome
) -> None:
    scenario = played.scenario
    # An ambassador who shared (named in credits and in colleagues' recognitions) and a
    # credited applicant: the most widely copied personal data of the pilot.
    credited = {a.candidate for a in scenario.applications if a.referrer or a.ref}
    candidate = sorted(credited)[0]
    pseudonym = played.pseudonyms[candidate]
    person = next(p for p in scenario.people if p.ambassador and p.member_urn)
    databases = [
        s.env["DATABASE_URL"] for s in (pipeline.ingest, pipeline.attribution, pipeline.notifier)
    ]

    before = b"".join([await _text_of_every_table(url) for url in databases])
    for value in (person.name, pseudonym):
        assert _find(before, value), f"{value!r} was never stored: nothing to erase"

    later = (max(datetime.now(UTC), scenario.end) + timedelta(days=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    events = [
        samples.event("ripples.employee.removed.v1", {"employee_id": person.id}, time=later),
        samples.event("ripples.applicant.erased.v1", {"applicant_id": pseudonym}, time=later),
    ]
    headers = {
        "Authorization": f"Bearer {API_KEYS[0]}",
        "Content-Type": "application/cloudevents-batch+json",
    }
    async with httpx.AsyncClient(base_url=pipeline.ingest.address, timeout=15) as client:
        response = await client.post(
            "/v1/events:batch", content=orjson.dumps(events), headers=headers
        )
        assert response.status_code == 202, response.text

    wanted = {
        "display name": person.name,
        "e-mail": person.email,
        "member URN": person.member_urn,
        "applicant pseudonym": pseudonym,
        "candidate id": candidate,
    }
    left: dict[str, str] = wanted
    async with asyncio.timeout(30):
        while left:
            after = b"".join([await _text_of_every_table(url) for url in databases])
            left = {what: v for what, v in wanted.items() if _find(after, v)}
            if left:
                await asyncio.sleep(0.5)
    assert not left
