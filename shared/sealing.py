"""Crypto-shredding of personal fields on the topics: seal, open, and the JSON splicing.

A record on a topic cannot be edited, and the local broker (Tansu) neither compacts nor
expires, so erasure cannot reach a personal value once it is on a topic. Instead, ingest
publishes an employee's or an applicant's personal fields *sealed*: encrypted (AES-256-GCM)
under a key of that person's own, kept by ingest and served to the consumers
(``POST /v1/keys:lookup``). Erasure deletes the key; from then on every copy of those fields
on every topic (and in every dump of it) is ciphertext nobody can open.

On the topic, the CloudEvent ``data`` of a sealed record lacks the sealed fields and carries
one extra member instead::

    "sealed": {"kid": "k_<32 hex>", "alg": "A256GCM", "iv": "<base64url>", "ct": "<base64url>"}

``ct`` is the encryption of the JSON object of the sealed fields, in the same nesting as in
``data`` (e.g. ``{"display_name": "…", "notify": {"address": "…"}}``); the associated data is
the key id, so a sealed member moved under another key does not open. Opening merges the
object back into ``data`` (:func:`splice`), so what a consumer decodes is the event as sent.

AES-GCM is ``cryptography``'s (``AESGCM``), as for the LinkedIn tokens at rest
(services/ingest/tokens.py): a well-kept, audited implementation, not hand-written crypto.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ALG = "A256GCM"
MEMBER = "sealed"
"""The name of the member of ``data`` that holds the sealed fields."""
KEY_BYTES = 32
_NONCE_BYTES = 12
_KID_PREFIX = "k_"


class SealError(ValueError):
    """A sealed member that is malformed or does not open with its key (tampered, or the
    wrong key): the record is poison, not erased."""


def new_key() -> tuple[str, bytes]:
    """A fresh key id (``k_`` + 32 random hex digits, no relation to the person) and key."""
    return _KID_PREFIX + secrets.token_hex(16), AESGCM.generate_key(bit_length=256)


def is_kid(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) == len(_KID_PREFIX) + 32
        and value.startswith(_KID_PREFIX)
        and all(c in "0123456789abcdef" for c in value[len(_KID_PREFIX) :])
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise SealError(f"sealed.{what} is not a string")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SealError(f"sealed.{what} is not base64url") from None


def seal(kid: str, key: bytes, fields: Mapping[str, Any]) -> dict[str, str]:
    """The ``sealed`` member holding ``fields`` (a JSON object) under ``key``."""
    nonce = os.urandom(_NONCE_BYTES)
    ct = AESGCM(key).encrypt(nonce, msgspec.json.encode(fields), kid.encode())
    return {"kid": kid, "alg": ALG, "iv": _b64(nonce), "ct": _b64(ct)}


def kid_of(sealed: object) -> str:
    """The key id a ``sealed`` member names; :class:`SealError` when there is none."""
    if not isinstance(sealed, Mapping) or not is_kid(sealed.get("kid")):
        raise SealError("sealed.kid is missing or malformed")
    return str(sealed["kid"])


def open_sealed(key: bytes, sealed: Mapping[str, Any]) -> dict[str, Any]:
    """The fields a ``sealed`` member holds; :class:`SealError` if it does not open."""
    kid = kid_of(sealed)
    if sealed.get("alg") != ALG:
        raise SealError(f"sealed.alg is not {ALG}")
    nonce, ct = _unb64(sealed.get("iv"), "iv"), _unb64(sealed.get("ct"), "ct")
    if len(nonce) != _NONCE_BYTES or len(key) != KEY_BYTES:
        raise SealError("sealed.iv or the key has the wrong length")
    try:
        fields = msgspec.json.decode(AESGCM(key).decrypt(nonce, ct, kid.encode()))
    except InvalidTag:
        raise SealError("sealed does not open with the key of its kid") from None
    except msgspec.DecodeError:
        raise SealError("sealed holds no JSON") from None
    if not isinstance(fields, dict):
        raise SealError("sealed holds no JSON object")
    return fields


def splice(data: dict[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with ``fields`` merged in (nested objects merged member by member): the
    inverse of taking sealed fields out of ``data``. Mutates and returns ``data``."""
    for name, value in fields.items():
        inner = data.get(name)
        if isinstance(value, Mapping) and isinstance(inner, dict):
            splice(inner, value)
        else:
            data[name] = value
    return data


def take(data: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    """Remove the members at ``paths`` (each a path of member names) from ``data`` and return
    them in the same nesting (what :func:`seal` seals and :func:`splice` puts back). Members
    absent or null are left alone. Mutates ``data``."""
    taken: dict[str, Any] = {}
    for path in paths:
        parent: Any = data
        for name in path[:-1]:
            parent = parent.get(name) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or parent.get(path[-1]) is None:
            continue
        value = parent.pop(path[-1])
        target = taken
        for name in path[:-1]:
            target = target.setdefault(name, {})
        target[path[-1]] = value
    return taken


# --- the consumers' side: keys from ingest, sealed records opened before decoding -------------

EMPLOYEE_UPSERTED = "ripples.employee.upserted.v1"
SHREDDED_NAME = "\x00shredded"
"""What a shredded employee upsert's ``display_name`` (required by the contract) holds from
:func:`open_records` until :func:`without_shredded` sets it to None after decoding: no
person's name, never stored (a shredded key means the employee was removed)."""
LOOKUP_MAX = 1000
"""The most kids one ``POST /v1/keys:lookup`` may ask for."""


class KeyServiceUnavailable(Exception):
    """Ingest's key API did not answer with keys (unreachable, a timeout, a 5xx, a refused
    reader key, an answer not as specified): the batch is tried again, nothing acknowledged
    and nothing dead-lettered (:mod:`shared.failures` classifies it transient). The message
    holds the status or the error class, never a key."""


class KeyClient:
    """The keys of the kids a consumer meets, from ingest's ``POST /v1/keys:lookup``.

    - One request per call for the kids not cached (a batch's kids), split in requests of
      :data:`LOOKUP_MAX` when there are more.
    - An in-memory cache of the answers (keys, and shredded kids: a shredded key is never
      served again, so that answer is final), least recently used evicted past ``cache_size``
      entries; :meth:`forget` evicts the kids of an erasure the consumer applied.
    - ``httpx`` (pooled connections, timeouts) with the reader's bearer key."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        cache_size: int = 100_000,
        timeout_s: float = 10.0,
        transport: Any = None,
    ) -> None:
        self.cache_size = cache_size
        self._cache: OrderedDict[str, bytes | None] = OrderedDict()
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout_s,
            transport=transport,
        )
        self.lookups = 0  # requests made (for the tests and the metrics)

    async def aclose(self) -> None:
        await self._client.aclose()

    def cached(self, kid: str) -> bool:
        return kid in self._cache

    def forget(self, kids: Iterable[str]) -> None:
        for kid in kids:
            self._cache.pop(kid, None)

    async def keys(self, kids: Iterable[str]) -> dict[str, bytes | None]:
        """``{kid: key, or None when shredded}`` for every kid asked (each :func:`is_kid`);
        :class:`KeyServiceUnavailable` when ingest does not answer them all."""
        wanted = list(dict.fromkeys(kids))
        out: dict[str, bytes | None] = {}
        missing: list[str] = []
        for kid in wanted:
            if kid in self._cache:
                self._cache.move_to_end(kid)
                out[kid] = self._cache[kid]
            else:
                missing.append(kid)
        for start in range(0, len(missing), LOOKUP_MAX):
            answered = await self._lookup(missing[start : start + LOOKUP_MAX])
            for kid, key in answered.items():
                out[kid] = key
                self._cache[kid] = key
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    async def _lookup(self, kids: list[str]) -> dict[str, bytes | None]:
        self.lookups += 1
        try:
            response = await self._client.post("/v1/keys:lookup", json={"kids": kids})
        except httpx.HTTPError as exc:
            raise KeyServiceUnavailable(f"key lookup failed: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise KeyServiceUnavailable(f"key lookup answered {response.status_code}")
        try:
            body = msgspec.json.decode(response.content, type=_LookupAnswer)
        except msgspec.DecodeError:
            raise KeyServiceUnavailable("key lookup answer is not as specified") from None
        out: dict[str, bytes | None] = dict.fromkeys(body.shredded)
        for kid, text in body.keys.items():
            try:
                key = _unb64(text, "key")
            except SealError:
                raise KeyServiceUnavailable("key lookup answer holds a malformed key") from None
            if len(key) != KEY_BYTES:
                raise KeyServiceUnavailable("key lookup answer holds a malformed key")
            out[kid] = key
        if any(kid not in out for kid in kids):
            raise KeyServiceUnavailable("key lookup answer leaves kids out")
        return out


class _LookupAnswer(msgspec.Struct):
    keys: dict[str, str]
    shredded: list[str]


@dataclass(slots=True)
class Opening:
    """A record whose value held a ``sealed`` member, after :func:`open_records`.

    ``value`` and ``headers`` are what to decode (it has both, as a record does, so
    :func:`shared.streaming.decode` takes it): the value with the sealed fields spliced back
    (``fields`` holds them), or, when the key is ``shredded``, the value without them (the
    event as if they had never been given); None when the sealed member is ``poison``
    (malformed, tampered: dead-letter the record with that reason)."""

    record: Any
    kid: str | None
    value: bytes | None
    headers: Any
    fields: dict[str, Any] = field(default_factory=dict)
    shredded: bool = False
    poison: str | None = None


_SEALED_MARK = b'"' + MEMBER.encode() + b'"'


async def open_records(
    records: Sequence[Any],
    client: KeyClient | None,
    types: frozenset[str] | None = None,
    topics: frozenset[str] | None = None,
) -> dict[int, Opening]:
    """The records of a batch (anything with ``value`` and ``headers``) that hold a sealed
    member, by their index, opened: one key lookup for the batch's kids not cached (only
    records of ``types``, by ``ce_type``, and on ``topics``, by the records' ``topic``, when
    given). A record whose value does not contain
    ``"sealed"`` (a bytes search, nothing parsed) is not in the answer and decodes as it is;
    a plaintext batch costs a scan of its bytes.
    :class:`KeyServiceUnavailable` when the keys cannot be had (nothing opened: the batch is
    tried again). Without a client (no ingest URL or reader key configured) a sealed record
    is poison: dead-lettered with that reason, so the stream goes on and the record stays."""
    mark = _SEALED_MARK
    if topics is None:
        marked = [i for i, r in enumerate(records) if (v := r.value) is not None and mark in v]
    else:  # the topics no sealed record is published to are not even searched
        marked = [
            i
            for i, r in enumerate(records)
            if r.topic in topics and (v := r.value) is not None and mark in v
        ]
    found: dict[int, tuple[dict[str, Any], Any]] = {}
    out: dict[int, Opening] = {}
    for index in marked:
        record = records[index]
        try:
            data = msgspec.json.decode(record.value)
        except msgspec.DecodeError:
            continue  # garbage: decoding says why
        if not isinstance(data, dict) or MEMBER not in data:
            continue
        if types is not None and _event_type(record.headers) not in types:
            continue  # a type the consumer does not apply: decoded unopened, then skipped
        sealed = data.pop(MEMBER)
        try:
            kid = kid_of(sealed)
        except SealError as exc:
            out[index] = Opening(record, None, None, record.headers, poison=str(exc))
            continue
        found[index] = (data, sealed)
    if not found:
        return out
    if client is None:  # not configured: dead-lettered with the reason, the stream goes on
        for index, (_, sealed) in found.items():
            record = records[index]
            out[index] = Opening(
                record, kid_of(sealed), None, record.headers, poison="no key service configured"
            )
        return out
    keys = await client.keys(kid_of(sealed) for _, sealed in found.values())
    for index, (data, sealed) in found.items():
        record = records[index]
        kid = kid_of(sealed)
        key = keys[kid]
        if key is None:
            out[index] = Opening(
                record, kid, _encode(_absent(data, record.headers)), record.headers,
                shredded=True,
            )  # fmt: skip
            continue
        try:
            fields = open_sealed(key, sealed)
        except SealError as exc:
            out[index] = Opening(record, kid, None, record.headers, poison=str(exc))
            continue
        spliced = splice(data, fields)
        out[index] = Opening(record, kid, _encode(spliced), record.headers, fields)
    return out


_encode = msgspec.json.Encoder().encode


def _event_type(headers: Any) -> str:
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for name, raw in pairs:
        if name == "ce_type":
            return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    return ""


def _absent(data: dict[str, Any], headers: Any) -> dict[str, Any]:
    """A shredded record's data as if its sealed fields had never been given: a ``notify``
    left without its address goes (an address is required for any channel but ``none``), and
    an employee upsert's required ``display_name`` holds :data:`SHREDDED_NAME` until
    :func:`without_shredded`."""
    notify = data.get("notify")
    if isinstance(notify, dict) and "address" not in notify and notify.get("channel") != "none":
        del data["notify"]
    if _event_type(headers) == EMPLOYEE_UPSERTED and "display_name" not in data:
        data["display_name"] = SHREDDED_NAME
    return data


def without_shredded(event: Any) -> Any:
    """A decoded shredded employee upsert with ``display_name`` None instead of
    :data:`SHREDDED_NAME` (no name: the person was removed); any other event unchanged."""
    data = getattr(event, "data", None)
    if data is not None and getattr(data, "display_name", None) == SHREDDED_NAME:
        return msgspec.structs.replace(event, data=msgspec.structs.replace(data, display_name=None))
    return event
