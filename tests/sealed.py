"""Reading ingest's sealed records back in tests, as the consumers do (docs/asyncapi.yaml,
"Sealed personal fields"): each sealed value opened with its key (``shared.sealing``), from
ingest's key API (:func:`key_api`) or straight from its key table (:func:`key_table`), then
decoded. The record key stays as on the topic (an applicant's kid)."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka.structs import ConsumerRecord

from services.ingest.tokens import TokenCipher, parse_keys
from shared import sealing
from shared.events import Envelope
from tests import conftest

Lookup = Callable[[list[str]], Awaitable[dict[str, bytes]]]
"""kids -> {kid: key} of those still served."""
Opened = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


def key_api(addresses: Collection[str], reader_key: str) -> Lookup:
    """Keys from ``POST /v1/keys:lookup`` of the ingests at ``addresses``."""

    async def lookup(kids: list[str]) -> dict[str, bytes]:
        keys: dict[str, bytes] = {}
        headers = {"Authorization": f"Bearer {reader_key}"}
        async with httpx.AsyncClient(timeout=15, headers=headers) as client:
            for address in sorted(addresses):
                for start in range(0, len(kids), 1000):
                    wanted = [k for k in kids[start : start + 1000] if k not in keys]
                    if not wanted:
                        continue
                    answer = await client.post(f"{address}/v1/keys:lookup", json={"kids": wanted})
                    assert answer.status_code == 200, answer.text
                    for kid, key in answer.json()["keys"].items():
                        keys[kid] = base64.urlsafe_b64decode(key + "=")
        return keys

    return lookup


def key_table(database_url: str, token_keys: Sequence[str] = ()) -> Lookup:
    """Keys from ingest's ``ingest_keys``, unwrapped with its INGEST_TOKEN_KEYS if it has
    them (services/ingest/keys.py)."""
    cipher = TokenCipher(parse_keys(token_keys)) if token_keys else None

    async def lookup(kids: list[str]) -> dict[str, bytes]:
        conn = await asyncpg.connect(database_url)
        try:
            rows = await conn.fetch(
                "select kid, key, wrapped from ingest_keys where kid = any($1::text[])"
                " and (shred_after is null or shred_after > now())",
                kids,
            )
        finally:
            await conn.close()
        keys = {}
        for row in rows:
            key = bytes(row["key"])
            if row["wrapped"]:
                assert cipher is not None, "the keys are wrapped: give the INGEST_TOKEN_KEYS"
                key = base64.urlsafe_b64decode(cipher.decrypt(key, row["kid"]) + "=")
            keys[row["kid"]] = key
        return keys

    return lookup


async def open_records(records: Sequence[ConsumerRecord[Any, Any]], lookup: Lookup) -> list[Opened]:
    """(key, value, headers) of each record, a sealed value opened: the value is the event's
    data as it was posted. A value whose key is not served (shredded) stays sealed."""
    members: list[dict[str, Any] | None] = []
    for record in records:
        data = None
        if record.value is not None and b'"sealed"' in record.value:
            with contextlib.suppress(orjson.JSONDecodeError):
                data = orjson.loads(record.value)
        ok = isinstance(data, dict) and isinstance(data.get("sealed"), dict)
        members.append(data if ok and sealing.is_kid(data["sealed"].get("kid")) else None)
    kids = sorted({d["sealed"]["kid"] for d in members if d is not None})
    keys = await lookup(kids) if kids else {}
    out: list[Opened] = []
    for record, data in zip(records, members, strict=True):
        value = record.value
        if data is not None and data["sealed"]["kid"] in keys:
            member = data.pop("sealed")
            sealing.splice(data, sealing.open_sealed(keys[member["kid"]], member))
            value = orjson.dumps(data)
        out.append((record.key, value, list(record.headers)))
    return out


async def read_events(
    bootstrap: str, topic: str, ids: set[str], lookup: Lookup, timeout_s: float = 20.0
) -> dict[str, tuple[bytes | None, Envelope]]:
    """:func:`tests.conftest.read_events` with the sealed records opened: {id: (kafka key,
    decoded event)}; fails if any id is missing after the timeout."""

    async def opener(records: list[Any]) -> list[Opened]:
        return await open_records(records, lookup)

    return await conftest.read_events(bootstrap, topic, ids, timeout_s, opener)
