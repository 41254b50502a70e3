"""Fixtures for the connector tests: ingest with its connectors configured, a database of
its own, and local HTTP servers that play the vendors (Lever's API, Teamtailor's API,
LinkedIn's API) on 127.0.0.1, so the real httpx code path runs."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.cloudevents import InvalidEvent, from_kafka
from shared.events import Envelope
from tests import sealed
from tests.conftest import API_KEYS, Running, fresh_database, start_service
from tests.conftest import metric as metric  # for the connector tests that import it from here

SECRETS = {
    "INGEST_APPLICANT_ID_SECRET": "test-applicant-secret",
    "INGEST_GREENHOUSE_SECRET_KEY": "greenhouse-secret",
    "INGEST_TEAMTAILOR_SIGNATURE_KEY": "teamtailor-key",
    "INGEST_LEVER_SIGNATURE_TOKEN": "lever-signature-token",
    "INGEST_LEVER_API_KEY": "lever-api-key",
    # INGEST_TEAMTAILOR_API_KEY is given as a file (INGEST_TEAMTAILOR_API_KEY_FILE) below.
    "INGEST_LINKEDIN_CLIENT_SECRET": "linkedin-client-secret",
}
TEAMTAILOR_API_KEY = "teamtailor-api-key"
READER_KEY = "test-key-reader"
"""The key of ``POST /v1/keys:lookup`` (INGEST_KEY_READER_API_KEYS) of the ingests started
here: the tests open the sealed records they read as the consumers do."""
KEY_APIS: set[str] = set()
"""The running ingests (addresses) whose keys open the sealed records read here."""
ALLOWED_HOSTS = "careers.example.com,*.jobs.example.org"
AUTH = {"Authorization": f"Bearer {API_KEYS[0]}"}


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    at: float
    body: bytes = b""


Handler = Callable[
    [str, str, dict[str, list[str]], dict[str, str]], tuple[int, dict[str, str], Any]
]


@dataclass
class VendorServer:
    """A local HTTP server answering with ``handler``; it records every request.

    ``script`` holds answers (status, headers, body) served, in order, before ``handler`` is
    asked again: a test puts 429s or 500s there to play a vendor in trouble."""

    handler: Handler
    requests: list[Seen] = field(default_factory=list)
    address: str = ""
    script: list[tuple[int, dict[str, str], Any]] = field(default_factory=list)

    def start(self) -> None:
        vendor = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer("GET")

            def do_PUT(self) -> None:
                self._answer("PUT")

            def _answer(self, method: str) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                headers = {k.lower(): v for k, v in self.headers.items()}
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                seen = Seen(method, parts.path, query, headers, time.monotonic(), raw)
                vendor.requests.append(seen)
                if vendor.script:
                    status, extra, body = vendor.script.pop(0)
                else:
                    status, extra, body = vendor.handler(method, parts.path, query, headers)
                payload = json.dumps(body).encode()
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.address = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
async def ingest_db(postgres: Running) -> AsyncIterator[str]:
    """A database of the module's own (ingest migrates it at start-up)."""
    async with fresh_database(postgres, "connectors") as url:
        yield url


LEVER_ARCHIVED: dict[str, dict[str, Any]] = {}
"""Opportunities the Lever emulator shows as archived: id → ``{"archivedAt", "reason"}``."""


def lever_opportunity(
    _: str, path: str, __: Any, headers: dict[str, str]
) -> tuple[int, dict[str, str], Any]:
    """Lever's ``GET /opportunities/{id}?expand=applications`` (documented shape,
    https://hire.lever.co/developer/documentation#retrieve-a-single-opportunity): a hired
    candidate's opportunity is ``archived`` with ``archivedAt`` and a hired reason."""
    if headers.get("authorization") != "Basic bGV2ZXItYXBpLWtleTo=":  # lever-api-key:
        return 401, {}, {"code": "Unauthorized", "message": "bad key"}
    opportunity = path.rsplit("/", 1)[1]
    return (
        200,
        {},
        {
            "data": {
                "id": opportunity,
                "name": "Shane Smith",
                "emails": ["shane@example.com"],
                "phones": [{"type": "mobile", "value": "(123) 456-7891"}],
                "sources": [
                    "Company website",
                    "ripples_ref=LvRef0000001&ripples_vid=vid-lever-0000000001",
                ],
                "origin": "applied",
                "createdAt": 1780000000000,
                "archived": LEVER_ARCHIVED.get(opportunity),
                "applications": [
                    {
                        "id": "app-lever-1",
                        "type": "posting",
                        "posting": "posting-lever-9",
                        "createdAt": 1780000000000,
                        "opportunityId": opportunity,
                        "candidateId": opportunity,
                    }
                ],
            }
        },
    )


@pytest.fixture(scope="module")
def lever_api() -> Iterator[VendorServer]:
    server = VendorServer(lever_opportunity)
    server.start()
    yield server
    server.stop()


TEAMTAILOR_APPLICATIONS: dict[str, dict[str, Any]] = {}
"""The job applications the Teamtailor emulator knows: id → its JSON:API document."""


def teamtailor_document(
    application_id: str,
    candidate_id: str,
    job_id: str,
    stage: tuple[str, str, str],
    attributes: dict[str, Any],
) -> dict[str, Any]:
    """``GET /v1/job-applications/{id}?include=candidate,job,stage`` as Teamtailor's API answers
    it (https://docs.teamtailor.com/, JSON:API: ``data`` with ``attributes`` and
    ``relationships``, the related resources in ``included``); ``stage`` = (id, name,
    stage-type). The included candidate carries the personal data the API holds, which
    ingest must never pass on."""
    base = "https://api.teamtailor.com/v1"
    stage_id, stage_name, stage_type = stage

    def related(kind: str, ident: str) -> dict[str, Any]:
        return {
            "links": {
                "self": f"{base}/job-applications/{application_id}/relationships/{kind}",
                "related": f"{base}/job-applications/{application_id}/{kind}",
            },
            "data": {"type": f"{kind}s", "id": ident},
        }

    return {
        "data": {
            "id": application_id,
            "type": "job-applications",
            "links": {"self": f"{base}/job-applications/{application_id}"},
            "attributes": attributes,
            "relationships": {
                "candidate": related("candidate", candidate_id),
                "job": related("job", job_id),
                "stage": related("stage", stage_id),
            },
        },
        "included": [
            {
                "id": candidate_id,
                "type": "candidates",
                "attributes": {
                    "first-name": "Ingrid",
                    "last-name": "Teamtailorsen",
                    "email": "ingrid@example.com",
                    "phone": "+45 12 34 56 78",
                },
            },
            {"id": job_id, "type": "jobs", "attributes": {"title": "Backend developer"}},
            {
                "id": stage_id,
                "type": "stages",
                "attributes": {"name": stage_name, "stage-type": stage_type},
            },
        ],
    }


def teamtailor_application(
    _: str, path: str, query: dict[str, list[str]], headers: dict[str, str]
) -> tuple[int, dict[str, str], Any]:
    """Teamtailor's ``GET /v1/job-applications/{id}``: ``Authorization: Token token=…`` and an
    ``X-Api-Version`` are required (docs.teamtailor.com, Authentication and Versioning)."""
    if headers.get("authorization") != f"Token token={TEAMTAILOR_API_KEY}":
        return 401, {}, {"errors": [{"status": "401", "title": "Unauthorized"}]}
    if not headers.get("x-api-version"):
        return 406, {}, {"errors": [{"status": "406", "title": "X-Api-Version missing"}]}
    application = path.rsplit("/", 1)[1]
    if not path.startswith("/v1/job-applications/") or application not in TEAMTAILOR_APPLICATIONS:
        return 404, {}, {"errors": [{"status": "404", "title": "Not found"}]}
    if query.get("include") != ["candidate,job,stage"]:
        return 400, {}, {"errors": [{"status": "400", "title": "include expected"}]}
    return 200, {"X-Api-Version": headers["x-api-version"]}, TEAMTAILOR_APPLICATIONS[application]


_TEAMTAILOR_APIS: dict[str, VendorServer] = {}
"""The Teamtailor emulator of each running ingest (by its address). ``connectors`` owns it,
so modules that re-export only ``connectors`` (tests/security) need no further fixture."""


@pytest.fixture(scope="module")
def teamtailor_api(connectors: Running) -> VendorServer:
    return _TEAMTAILOR_APIS[connectors.address]


@pytest.fixture(scope="module")
def connectors(
    broker: Running,
    ingest_db: str,
    lever_api: VendorServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Running]:
    teamtailor_api = VendorServer(teamtailor_application)
    teamtailor_api.start()
    tmp = tmp_path_factory.mktemp("connectors")
    key_file = tmp / "teamtailor-api-key"
    key_file.write_text(TEAMTAILOR_API_KEY + "\n")
    running = start_service(
        "ingest",
        tmp,
        broker,
        DATABASE_URL=ingest_db,
        INGEST_LINK_ALLOWED_HOSTS=ALLOWED_HOSTS,
        INGEST_PUBLIC_BASE_URL="http://go.example.com",
        INGEST_LEVER_API_BASE_URL=lever_api.address + "/v1",
        INGEST_TEAMTAILOR_API_BASE_URL=teamtailor_api.address,
        INGEST_TEAMTAILOR_API_KEY_FILE=str(key_file),
        INGEST_VENDOR_BACKOFF_S="0.1",
        INGEST_LINKEDIN_ORGANIZATION_URN="urn:li:organization:2414183",
        INGEST_KEY_READER_API_KEYS=READER_KEY,
        **SECRETS,
    )
    _TEAMTAILOR_APIS[running.address] = teamtailor_api
    KEY_APIS.add(running.address)
    yield running
    KEY_APIS.discard(running.address)
    running.stop()
    del _TEAMTAILOR_APIS[running.address]
    teamtailor_api.stop()


@pytest.fixture
async def http(connectors: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=connectors.address, timeout=15) as client:
        yield client


async def read_events(
    bootstrap: str, topic: str, ids: set[str], timeout_s: float = 20.0
) -> dict[str, tuple[bytes | None, Envelope]]:
    """:func:`tests.conftest.read_events` with the sealed records opened with the keys of
    the ingests in :data:`KEY_APIS` (:mod:`tests.sealed`): {id: (kafka key, event)}."""
    return await sealed.read_events(bootstrap, topic, ids, _keys(), timeout_s)


def _keys() -> sealed.Lookup:
    return sealed.key_api(set(KEY_APIS), READER_KEY)


async def topic_events(
    bootstrap: str, topic: str, until: frozenset[str] = frozenset(), timeout_s: float = 20.0
) -> list[Envelope]:
    """The events on ``topic`` from the start, read at least up to the end offsets and until
    every CloudEvent id in ``until`` was seen, the sealed records opened
    (:mod:`tests.sealed`).

    The local broker under-reports end offsets for multi-record batches, so a check that
    something was *not* published sends a sentinel event with the same key afterwards and
    reads ``until`` it: anything published before it on that partition has been read."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        if not partitions:  # not created yet (a fresh broker)
            await asyncio.sleep(0)  # let aiokafka's no-group task start, or stop() trips on it
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        events: list[Envelope] = []
        async with asyncio.timeout(timeout_s):
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]] or (
                until - {e.id for e in events}
            ):
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    for _, value, headers in await sealed.open_records(records, _keys()):
                        try:
                            events.append(from_kafka(headers, value or b""))
                        except InvalidEvent:  # another test's poison record on the broker
                            continue
        return events
    finally:
        await consumer.stop()


async def wait_for(
    bootstrap: str,
    topic: str,
    predicate: Callable[[Envelope], bool],
    count: int = 1,
    timeout_s: float = 20.0,
) -> list[Envelope]:
    """The events on ``topic`` matching ``predicate``, once there are at least ``count``."""
    async with asyncio.timeout(timeout_s):
        while True:
            found = [e for e in await topic_events(bootstrap, topic) if predicate(e)]
            if len(found) >= count:
                return found
            await asyncio.sleep(0.2)


async def seed_employee(
    client: httpx.AsyncClient, employee_id: str, email: str | None, member_urn: str | None
) -> None:
    """An HR upsert through /v1/events, with the `work_email` extension field."""
    data: dict[str, Any] = {"employee_id": employee_id, "display_name": "Test Person"}
    if email:
        data["work_email"] = email
    if member_urn:
        data["linkedin_member_urn"] = member_urn
    event = {
        "specversion": "1.0",
        "id": f"hr-{uuid.uuid4()}",
        "source": "urn:test:hr",
        "type": "ripples.employee.upserted.v1",
        "time": "2026-06-01T08:00:00Z",
        "data": data,
    }
    response = await client.post(
        "/v1/events",
        content=orjson.dumps(event),
        headers={**AUTH, "Content-Type": "application/cloudevents+json"},
    )
    assert response.status_code == 202, response.text


def state_dir(running: Running) -> Path:
    return Path(running.state.root)
