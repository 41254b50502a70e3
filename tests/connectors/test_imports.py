"""Spreadsheet imports (CONTRACT §11) through the real ingest process: the events read back
from the topic, all-or-nothing, idempotent re-imports, the CSV variants Excel and Google
Sheets export, and ``ripples import`` against the running service."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from shared.events import APPLICANTS, EMPLOYEES, EmployeeUpsertedEvent, JobUpsertedEvent
from tests.conftest import API_KEYS, Running
from tests.connectors.conftest import topic_events

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {API_KEYS[0]}", "Content-Type": "text/csv"}
FIRST = ["Søren", "Åse", "Ærling", "Mette", "Jørgen", "Birgitte", "Øjvind", "Lærke", "Bjørn"]
LAST = ["Sørensen", "Ærø", "Østergaard", "Nørgaard", "Aagaard", "Højbjerg", "Kjærgaard"]
HEADER = (
    "employee_id;display_name;ambassador;department;locale;notify_channel;notify_address;"
    "recognition_opt_out;linkedin_member_urn;followers"
)


def employees_csv(
    run: str, n: int, sep: str = ";", newline: str = "\r\n", bom: bool = True, suffix: str = ""
) -> bytes:
    lines = [HEADER.replace(";", sep)]
    for i in range(n):
        name = f"{FIRST[i % len(FIRST)]} {LAST[i % len(LAST)]}{suffix}"
        cells = [
            f"{run}-{i}",
            f'"{name}"',
            "ja" if i % 3 == 0 else "nej",
            '"Salg; Øst"',
            "da" if i % 2 else "en",
            "email",
            f"e{i}@example.com",
            "0",
            "",
            str(i * 10),
        ]
        lines.append(sep.join(cells))
    text = newline.join(lines) + newline
    return ("\ufeff" if bom else "").encode() + text.encode()


async def post(connectors: Running, path: str, body: bytes, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=connectors.address, timeout=30) as client:
        return await client.post(path, content=body, headers=AUTH, params=params)


async def test_150_danish_employees_import_in_one_call_and_a_reimport_publishes_nothing(
    connectors: Running, broker: Running
) -> None:
    run = uuid.uuid4().hex[:8]
    body = employees_csv(run, 150)
    dry = await post(connectors, "/v1/employees:import", body, dry_run="true")
    assert dry.status_code == 200, dry.text
    assert dry.json()["rows"] == 150
    assert dry.json()["published"] == 150
    response = await post(connectors, "/v1/employees:import", body)
    assert response.status_code == 202, response.text
    assert response.json() == {"rows": 150, "published": 150}
    again = await post(connectors, "/v1/employees:import", body)
    assert again.json() == {"rows": 150, "published": 0}
    # Sentinels: the same 150 keys with changed content, published after the re-import, so
    # reading up to them reads anything the re-import could have published.
    changed = await post(connectors, "/v1/employees:import", employees_csv(run, 150, suffix="x"))
    assert changed.json() == {"rows": 150, "published": 150}
    events = [
        e
        for e in await topic_events(broker.address, EMPLOYEES.name, timeout_s=30)
        if isinstance(e, EmployeeUpsertedEvent) and e.data.employee_id.startswith(run)
    ]
    assert len(events) == 300
    assert len({e.id for e in events}) == 300  # the re-import added none
    first = next(
        e for e in events if e.data.employee_id == f"{run}-0" and "x" not in e.data.display_name
    )
    assert first.data.display_name == "Søren Sørensen"
    assert first.data.department == "Salg; Øst"
    assert first.source == "urn:ripples:import"
    assert first.data.ambassador is True


async def test_a_bad_line_imports_nothing_and_is_named(
    connectors: Running, broker: Running
) -> None:
    run = uuid.uuid4().hex[:8]
    good = employees_csv(run, 5).decode("utf-8-sig").split("\r\n")
    good[3] = good[3].replace(";da;", ";fr;").replace(";en;", ";fr;")  # line 4: locale
    body = "\r\n".join(good).encode()
    response = await post(connectors, "/v1/employees:import", body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [(e["line"], e["column"]) for e in response.json()["errors"]] == [(4, "locale")]
    # nothing published: the same file without the bad line publishes all 4 rows as new
    del good[3]
    fixed = await post(connectors, "/v1/employees:import", "\r\n".join(good).encode())
    assert fixed.json() == {"rows": 4, "published": 4}


@pytest.mark.parametrize(
    ("sep", "newline", "bom"),
    [(";", "\r\n", True), (",", "\n", False), (",", "\r\n", True), (";", "\n", False)],
)
async def test_the_variants_excel_and_sheets_export(
    connectors: Running, sep: str, newline: str, bom: bool
) -> None:
    body = employees_csv(uuid.uuid4().hex[:8], 3, sep, newline, bom)
    response = await post(connectors, "/v1/employees:import", body)
    assert response.json() == {"rows": 3, "published": 3}, response.text


async def test_jobs_import_and_limits(connectors: Running, broker: Running) -> None:
    run = uuid.uuid4().hex[:8]
    body = f"job_id,title,family,hard_to_recruit\r\n{run},Sygeplejerske,Sundhed,ja\r\n".encode()
    assert (await post(connectors, "/v1/jobs:import", body)).json() == {"rows": 1, "published": 1}
    [job] = [
        e
        for e in await topic_events(broker.address, APPLICANTS.name, timeout_s=30)
        if isinstance(e, JobUpsertedEvent) and e.data.job_id == run
    ]
    assert job.data.hard_to_recruit is True
    assert job.data.title == "Sygeplejerske"
    async with httpx.AsyncClient(base_url=connectors.address, timeout=30) as client:
        no_key = await client.post(
            "/v1/jobs:import", content=body, headers={"Content-Type": "text/csv"}
        )
        assert no_key.status_code == 401
        json = await client.post(
            "/v1/jobs:import", content=body, headers={**AUTH, "Content-Type": "application/json"}
        )
        assert json.status_code == 415
        big = await client.post("/v1/jobs:import", content=b"x" * (9 * 1024 * 1024), headers=AUTH)
        assert big.status_code == 413


def test_the_cli_imports_with_a_dry_run_first(connectors: Running, tmp_path) -> None:
    run = uuid.uuid4().hex[:8]
    path = tmp_path / "medarbejdere.csv"
    path.write_bytes(employees_csv(run, 20))
    root = str(Path(__file__).resolve().parents[2])
    env = {
        **os.environ,
        "RIPPLES_API_KEY": API_KEYS[0],
        "RIPPLES_HOME": str(tmp_path / "st"),
        "PYTHONPATH": root,
    }
    command = [
        sys.executable,
        "-m",
        "ripples",
        "import",
        "employees",
        str(path),
        "--ingest",
        connectors.address,
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "20 rows valid, 20 new or changed" in result.stdout
    assert "imported: 20 rows, 20 published" in result.stdout
    assert "importing  [##############################] 100%" in result.stderr
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"employee_id;display_name\r\nx;\r\n")
    result = subprocess.run(
        [*command[:5], str(bad), *command[6:]],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "line 2, display_name: required" in result.stdout


async def test_a_preference_event_is_accepted_and_keyed_apart(
    connectors: Running, broker: Running
) -> None:
    """ripples.employee.preferences.v1 through POST /v1/events: on ripples.employees under
    prefs:{employee_id}:{fields}; one older than a removal ingest knows of stays off."""
    run = uuid.uuid4().hex[:8]

    def event(kind: str, time: str, data: dict[str, object]) -> dict[str, object]:
        return {
            "specversion": "1.0",
            "id": f"{run}-{kind}-{time}",
            "source": "urn:ripples:test",
            "type": f"ripples.employee.{kind}.v1",
            "time": time,
            "data": {"employee_id": run, **data},
        }

    headers = {
        "Authorization": AUTH["Authorization"],
        "Content-Type": "application/cloudevents-batch+json",
    }
    kept = event(
        "preferences", "2026-06-01T10:00:00Z", {"locale": "da", "recognition_opt_out": True}
    )
    removed = event("removed", "2026-06-01T11:00:00Z", {})
    late = event(
        "preferences",
        "2026-06-01T10:30:00Z",
        {"notify": {"channel": "email", "address": "x@example.com"}},
    )
    after = event("preferences", "2026-06-01T12:00:00Z", {"locale": "en"})
    async with httpx.AsyncClient(base_url=connectors.address, timeout=30) as client:
        for body in ([kept, removed], [late], [after]):
            response = await client.post("/v1/events:batch", json=body, headers=headers)
            assert response.status_code == 202, response.text
    events = await topic_events(
        broker.address, EMPLOYEES.name, until=frozenset({str(after["id"])}), timeout_s=30
    )
    mine = {e.id: e for e in events if e.data.employee_id == run}
    assert set(mine) == {kept["id"], removed["id"], after["id"]}  # `late` stayed off
    assert mine[str(kept["id"])].key == f"prefs:{run}:locale,recognition_opt_out".encode()
