"""A webhook receiver standing in for the employees' recognition inbox.

It verifies ``X-Ripples-Signature`` (CONTRACT §6) on every delivery and keeps what arrived,
so the demo can show the recognitions and the end-to-end test can count them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class Received:
    body: dict[str, Any]
    signature_ok: bool
    recognition_header: str | None


@dataclass
class Sink:
    secret: str
    received: list[Received] = field(default_factory=list)

    async def receive(self, request: Request) -> Response:
        raw = await request.body()
        expected = "sha256=" + hmac.new(self.secret.encode(), raw, hashlib.sha256).hexdigest()
        signature = request.headers.get("x-ripples-signature", "")
        self.received.append(
            Received(
                orjson.loads(raw),
                hmac.compare_digest(signature, expected),
                request.headers.get("x-ripples-recognition-id"),
            )
        )
        return Response(status_code=204)

    def recognition_ids(self) -> set[str]:
        """Every recognition id delivered, digests included."""
        ids: set[str] = set()
        for item in self.received:
            if "recognition_ids" in item.body:
                ids.update(item.body["recognition_ids"])
            elif "recognition_id" in item.body:
                ids.add(item.body["recognition_id"])
        return ids

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/recognitions", self.receive, methods=["POST"])])


@contextlib.asynccontextmanager
async def serving(sink: Sink, port: int) -> AsyncIterator[str]:
    """Serve ``sink`` on 127.0.0.1:``port`` while the block runs; yields its URL."""
    server = uvicorn.Server(
        uvicorn.Config(
            sink.app(),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start (e.g. the port is taken)
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/recognitions"
    finally:
        server.should_exit = True
        await task
