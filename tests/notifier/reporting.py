"""The real attribution service's report routes for the scheduled-report tests: its API app
over a migrated (empty) attribution database, served over TCP by uvicorn on a free port, and
helpers that read what the report's receivers got."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import subprocess
from collections.abc import AsyncIterator
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path

import asyncpg
import uvicorn

from services.attribution.api import create_api
from services.attribution.settings import AttributionSettings
from shared.db import migrate
from tests.conftest import API_KEYS, free_port

MIGRATIONS = Path(__file__).parents[2] / "services" / "attribution" / "migrations"
LINK_SECRET = "report-link-secret-for-the-schedule-tests"


@dataclasses.dataclass
class Attribution:
    url: str
    server: uvicorn.Server


@contextlib.asynccontextmanager
async def served_attribution(database: str, port: int | None = None) -> AsyncIterator[Attribution]:
    """Attribution's API (CONTRACT §9 report routes included) on 127.0.0.1, over ``database``;
    bootstrap samples kept small so the PDF is quick on a loaded machine."""
    conn = await asyncpg.connect(database)
    await migrate(conn, "attribution", MIGRATIONS)
    await conn.close()
    pool = await asyncpg.create_pool(database, min_size=1, max_size=4)
    assert pool is not None
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    settings = AttributionSettings(
        api_keys=API_KEYS,
        report_link_secret=(LINK_SECRET,),
        public_base_url=url,
        bootstrap_samples=50,
    )

    async def get_pool() -> asyncpg.Pool:
        return pool

    async def ready() -> dict[str, bool]:
        return {"database": True}

    config = uvicorn.Config(
        create_api(get_pool, ready, settings), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.02)
        yield Attribution(url, server)
    finally:
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)
        await pool.close()


def pdf_attachment(mail: Message) -> tuple[str, bytes]:
    """The one PDF an e-mail carries: (file name, bytes)."""
    found = [
        (part.get_filename() or "", part.get_payload(decode=True))
        for part in mail.walk()
        if part.get_content_type() == "application/pdf"
    ]
    assert len(found) == 1, [p.get_content_type() for p in mail.walk()]
    name, data = found[0]
    assert isinstance(data, bytes)
    return name, data


def pdf_text(data: bytes, tmp: Path) -> str:
    """What poppler's pdftotext reads from a PDF (`make tools` installs poppler-utils)."""
    path = tmp / "report.pdf"
    path.write_bytes(data)
    done = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, timeout=30
    )
    return done.stdout.decode()


def mail_text(mail: Message) -> str:
    for part in mail.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text part")


def subject(mail: Message) -> str:
    """The decoded Subject header (RFC 2047 encoded words)."""
    return str(make_header(decode_header(mail["Subject"])))
