"""A minimal worker built like the services: a faust agent taking batches from a contract
topic, dead-lettering what it cannot decode, and a Starlette API served from the same loop.
Run by test_streaming.py as ``python -m tests.integration.faust_probe``."""

from __future__ import annotations

import os
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared import logs, streaming
from shared.cloudevents import InvalidEvent, from_kafka
from shared.events import DEAD_LETTERS, LINKS
from shared.http import json_response
from shared.settings import kafka_settings

app = streaming.faust_app("ripples-probe", kafka_settings())
links = streaming.topic(app, LINKS)
dead_letters = streaming.topic(app, DEAD_LETTERS)
seen: dict[str, Any] = {"ids": [], "batches": 0, "dead": 0}


@app.agent(links, concurrency=1)
async def consume(stream: Any) -> None:
    async for batch in stream.take_events(500, within=0.2):
        seen["batches"] += 1
        for event in batch:
            headers = dict(event.headers or {})
            try:
                decoded = from_kafka(headers.items(), event.value)
            except InvalidEvent as exc:
                seen["dead"] += 1
                await dead_letters.send(
                    key=event.key,
                    value=event.value,
                    headers=streaming.dead_letter_headers(
                        "probe",
                        str(exc),
                        event.message.topic,
                        event.message.partition,
                        event.message.offset,
                        headers,
                    ),
                )
                continue
            seen["ids"].append(decoded.id)


async def state(_: Request) -> Response:
    return json_response(seen | {"assigned": len(app.consumer.assignment())})


app.service(
    streaming.HttpServer(
        Starlette(routes=[Route("/state", state)]), "127.0.0.1", int(os.environ["PROBE_PORT"])
    )
)

if __name__ == "__main__":
    logs.configure("probe")
    streaming.run(app)
