"""Crypto-shredding on ingest's side: the people's keys, sealing what ingest publishes, erasure.

Ingest publishes an employee's and an applicant's personal fields *sealed*
(:mod:`shared.sealing`; the wire format is in docs/asyncapi.yaml): encrypted under a key of that
person's own, kept in ``ingest_keys`` (migration 0009) and served to the consumers by
``POST /v1/keys:lookup``. Erasing a person deletes their key, and with it every copy of their
personal fields on every topic.

- **Subjects.** A key belongs to ``employee:{employee_id}`` or to ``applicant:{digest}``, the
  HMAC-SHA256 of the applicant id under ``INGEST_APPLICANT_ID_SECRET`` (never the id itself;
  an unkeyed SHA-256 when the secret is not set, as for the removed members' URNs). Keys are
  random (:func:`shared.sealing.new_key`) and made on first need: every key a publish needs is
  fetched, or made, in one statement (:meth:`KeyStore.keys_for`).
- **Erasure.** ``employee.removed`` (unless an upsert newer than the removal is known: the
  person is back, the removal changes nothing, as for the directory) and ``applicant.erased``
  unlink the subject from its key once the broker has acknowledged the erasure (a later event
  about the same person gets a new key) and schedule the key's end ``INGEST_SHRED_GRACE_S``
  later, so that consumers behind can still open what was published before; 0 deletes it in
  the erasure's own transaction. A key past its end is never served again, and the sweep
  (after each erasure, and every ``INGEST_SHRED_SWEEP_INTERVAL_S``) deletes its row.
- **At rest.** With ``INGEST_TOKEN_KEYS`` set, each key is stored encrypted with it, as the
  LinkedIn tokens are (:class:`services.ingest.tokens.TokenCipher`, bound to the kid); without
  it, as is (the local stack sets it).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

import msgspec
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.ingest.database import DB_ERRORS, Database, answering_503, unavailable
from services.ingest.tokens import Executor, TokenCipher, TokenKeyError
from shared import kafka, sealing
from shared.auth import ApiKeys
from shared.cloudevents import _field_error as field_error
from shared.events import (
    ApplicantAppliedEvent,
    ApplicantErasedEvent,
    ApplicantHiredEvent,
    EmployeePreferencesEvent,
    EmployeeRemovedEvent,
    EmployeeUpsertedEvent,
    Envelope,
)
from shared.http import ProblemError, json_response, problem_response, read_body
from shared.metrics import preinit

log = logging.getLogger(__name__)

KEYS = Counter(
    "ingest_keys_total",
    "Personal keys made, erased (unlinked from their person) and shredded (deleted).",
    ["outcome"],
)
preinit(KEYS, ("created", "erased", "shredded"))
KEY_LOOKUPS = Counter(
    "ingest_key_lookups_total",
    "Key ids asked for on POST /v1/keys:lookup, by answer (served or shredded).",
    ["outcome"],
)
preinit(KEY_LOOKUPS, ("served", "shredded"))

# The members of `data` each event type seals (paths of member names), CONTRACT §1 fields.
EMPLOYEE_FIELDS: tuple[tuple[str, ...], ...] = (
    ("display_name",),
    ("notify", "address"),
    ("linkedin_member_urn",),
)
PREFERENCE_FIELDS: tuple[tuple[str, ...], ...] = (("notify", "address"),)
APPLICANT_TYPES = (ApplicantAppliedEvent, ApplicantHiredEvent, ApplicantErasedEvent)
SEALED_TYPES: frozenset[type] = frozenset(
    (EmployeeUpsertedEvent, EmployeePreferencesEvent, EmployeeRemovedEvent, *APPLICANT_TYPES)
)
"""The event types a publish must look at: the sealed ones, and the removal (an erasure)."""
ERASURE_TYPES: frozenset[type] = frozenset((EmployeeRemovedEvent, ApplicantErasedEvent))
"""What a publish looks at with sealing off: the erasures (of keys made while it was on)."""

_decode = msgspec.json.Decoder(dict[str, object]).decode
_encode = msgspec.json.Encoder().encode


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def employee_subject(employee_id: str) -> str:
    return f"employee:{employee_id}"


def applicant_subject(secret: str, applicant_id: str) -> str:
    """``applicant:{HMAC-SHA256 hex of the applicant id}``: the id itself is never stored."""
    message = b"applicant-key:" + applicant_id.encode()
    if not secret:
        return "applicant:" + hashlib.sha256(message).hexdigest()
    return "applicant:" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def key_unavailable() -> ProblemError:
    """A stored key that does not unwrap: INGEST_TOKEN_KEYS lost the key that wrapped it."""
    return ProblemError(
        503,
        "key-unavailable",
        "Key unavailable",
        "a personal key does not unwrap with INGEST_TOKEN_KEYS (keep every token key listed"
        " while keys wrapped with it exist)",
        headers={"Retry-After": "5"},
    )


class KeyStore:
    """``ingest_keys``: make, fetch, erase, look up and sweep the people's keys."""

    def __init__(
        self,
        database: Database,
        cipher: TokenCipher | None,
        applicant_secret: str,
        grace_s: float,
        acquire_timeout_s: float = 5.0,
    ) -> None:
        self.database = database
        self.cipher = cipher
        self.applicant_secret = applicant_secret
        self.grace_s = grace_s
        # A publish may already hold a connection of the pool (the ATS webhooks' delivery
        # lock): waiting for another one is bounded (TimeoutError, a 503), never a deadlock
        # when every connection is held so.
        self.acquire_timeout_s = acquire_timeout_s

    def _wrap(self, kid: str, key: bytes) -> tuple[bytes, bool]:
        if self.cipher is None:
            return key, False
        return self.cipher.encrypt(_b64(key), kid), True

    def _unwrap(self, kid: str, stored: bytes, wrapped: bool) -> bytes:
        if not wrapped:
            return bytes(stored)
        if self.cipher is None:
            raise key_unavailable()
        try:
            return _unb64(self.cipher.decrypt(stored, kid))
        except TokenKeyError:
            log.error("personal key does not unwrap", extra={"kid": kid})
            raise key_unavailable() from None

    async def keys_for(self, subjects: Collection[str]) -> dict[str, tuple[str, bytes]]:
        """{subject: (kid, key)} of every subject, the missing keys made: one statement
        (again only when a concurrent publish made one of them meanwhile)."""
        wanted = sorted(set(subjects))
        fresh = [sealing.new_key() for _ in wanted]
        stored = [self._wrap(kid, key) for kid, key in fresh]
        found: dict[str, tuple[str, bytes]] = {}
        pool = self.database.pool
        for _attempt in range(3):
            async with pool.acquire(timeout=self.acquire_timeout_s) as conn:
                rows = await conn.fetch(
                    "with wanted (subject, kid, key, wrapped) as ("
                    " select * from unnest($1::text[], $2::text[], $3::bytea[], $4::bool[])),"
                    " made as (insert into ingest_keys (kid, subject, key, wrapped)"
                    " select kid, subject, key, wrapped from wanted"
                    " on conflict (subject) do nothing returning kid, subject, key, wrapped, true)"
                    " select kid, subject, key, wrapped, false as made from ingest_keys"
                    " where subject = any($1::text[]) union all select * from made",
                    wanted,
                    [kid for kid, _ in fresh],
                    [key for key, _ in stored],
                    [flag for _, flag in stored],
                )
            for row in rows:
                if row["made"]:
                    KEYS.labels("created").inc()
                found[row["subject"]] = (
                    row["kid"],
                    self._unwrap(row["kid"], row["key"], row["wrapped"]),
                )
            if len(found) == len(wanted):
                return found
        raise RuntimeError("personal keys were neither found nor made")  # pragma: no cover

    async def erase(
        self, employees: Sequence[tuple[str, datetime]], applicants: Collection[str]
    ) -> None:
        """Unlink the keys of removed employees (``(employee_id, time of the removal)``; not
        when the directory knows a newer upsert) and of erased applicants (subjects) from
        their person, schedule their shredding after the grace, and sweep."""
        pool = self.database.pool
        async with pool.acquire(timeout=self.acquire_timeout_s) as conn, conn.transaction():
            erased = await conn.fetch(
                "update ingest_keys set subject = null,"
                " shred_after = now() + make_interval(secs => $4)"
                " where subject = any($3::text[]) or subject in (select 'employee:' || e"
                " from unnest($1::text[], $2::timestamptz[]) as removal (e, at)"
                " where not exists (select from ingest_employees d"
                " where d.employee_id = removal.e and d.updated_at > removal.at))"
                " returning kid",
                [e for e, _ in employees],
                [at for _, at in employees],
                sorted(set(applicants)),
                float(self.grace_s),
            )
            KEYS.labels("erased").inc(len(erased))
            await self._sweep(conn)

    async def _sweep(self, conn: Executor) -> int:
        deleted = await conn.fetch(
            "delete from ingest_keys where shred_after <= now() returning kid"
        )
        KEYS.labels("shredded").inc(len(deleted))
        return len(deleted)

    async def sweep(self) -> int:
        """Delete the keys past their grace; how many."""
        async with self.database.pool.acquire(timeout=self.acquire_timeout_s) as conn:
            return await self._sweep(conn)

    async def lookup(self, kids: Collection[str]) -> tuple[dict[str, bytes], list[str]]:
        """The keys of ``kids`` still served ({kid: key}), and the others (shredded: past
        their grace, deleted, or never made), sorted."""
        async with self.database.pool.acquire(timeout=self.acquire_timeout_s) as conn:
            rows = await conn.fetch(
                "select kid, key, wrapped from ingest_keys where kid = any($1::text[])"
                " and (shred_after is null or shred_after > now())",
                sorted(set(kids)),
            )
        keys = {row["kid"]: self._unwrap(row["kid"], row["key"], row["wrapped"]) for row in rows}
        return keys, sorted(set(kids) - keys.keys())


@dataclass
class Plan:
    """One piece of a publish (``events[start:end]``): the subjects whose keys it needs and
    the erasures it makes once the broker has it."""

    start: int
    end: int = 0
    subjects: set[str] = field(default_factory=set)
    removed: list[tuple[str, datetime]] = field(default_factory=list)
    erased_applicants: set[str] = field(default_factory=set)


def plans(events: Sequence[Envelope], applicant_secret: str) -> list[Plan]:
    """``events`` in pieces, each cut where an event is about a person erased earlier in the
    same piece, so that it is sealed under the person's *new* key (the erasure is applied in
    between). A removal older than an upsert of the same batch changes nothing (the latest
    CloudEvent ``time`` wins) and erases nothing; an employee event no newer than a removal
    before it is sealed under the key the removal shreds (it is superseded)."""
    latest: dict[str, datetime] = {}
    for event in events:
        if isinstance(event, EmployeeUpsertedEvent):
            at = latest.get(event.data.employee_id)
            latest[event.data.employee_id] = event.time if at is None else max(at, event.time)
    out = [Plan(0)]
    erased: dict[str, datetime | None] = {}  # subject -> the removal's time (None: applicant)
    for index, event in enumerate(events):
        subject = _subject(event, applicant_secret)
        if subject is None:
            continue
        if subject in erased:
            removed_at = erased[subject]
            if removed_at is None or event.time > removed_at:
                out[-1].end = index
                out.append(Plan(index))
                erased = {}
        piece = out[-1]
        if isinstance(event, EmployeeRemovedEvent):
            employee = event.data.employee_id
            if employee not in latest or latest[employee] <= event.time:
                piece.removed.append((employee, event.time))
                erased[subject] = event.time
            continue
        if isinstance(event, EmployeePreferencesEvent) and (
            event.data.notify is None or event.data.notify.address is None
        ):
            continue  # nothing of it is sealed
        piece.subjects.add(subject)
        if isinstance(event, ApplicantErasedEvent):
            piece.erased_applicants.add(subject)
            erased[subject] = None
    out[-1].end = len(events)
    return out


def _subject(event: Envelope, applicant_secret: str) -> str | None:
    if isinstance(event, ApplicantAppliedEvent | ApplicantHiredEvent | ApplicantErasedEvent):
        return applicant_subject(applicant_secret, event.data.applicant_id)
    if isinstance(event, EmployeeUpsertedEvent | EmployeePreferencesEvent | EmployeeRemovedEvent):
        return employee_subject(event.data.employee_id)
    return None


def seal_records(
    events: Sequence[Envelope],
    records: list[kafka.Record],
    keys: dict[str, tuple[str, bytes]],
    applicant_secret: str,
) -> None:
    """Replace, in ``records`` (those of ``events``, in order), the value of each employee
    upsert and preference with the personal fields sealed, and the key and value of each
    applicant event with the applicant's kid in place of the id (docs/asyncapi.yaml)."""
    for index, event in enumerate(events):
        if isinstance(event, ApplicantAppliedEvent | ApplicantHiredEvent | ApplicantErasedEvent):
            kid, key = keys[applicant_subject(applicant_secret, event.data.applicant_id)]
            topic, _, value, headers = records[index]
            data = _decode(value or b"{}")
            data[sealing.MEMBER] = sealing.seal(kid, key, {"applicant_id": data["applicant_id"]})
            data["applicant_id"] = kid
            records[index] = (topic, kid.encode(), _encode(data), headers)
        elif isinstance(event, EmployeeUpsertedEvent | EmployeePreferencesEvent):
            upsert = isinstance(event, EmployeeUpsertedEvent)
            paths = EMPLOYEE_FIELDS if upsert else PREFERENCE_FIELDS
            topic, record_key, value, headers = records[index]
            data = _decode(value or b"{}")
            taken = sealing.take(data, paths)
            if not taken:  # nothing personal in it (e.g. a preference without an address)
                continue
            kid, key = keys[employee_subject(event.data.employee_id)]
            data[sealing.MEMBER] = sealing.seal(kid, key, taken)
            records[index] = (topic, record_key, _encode(data), headers)


class Sweeper:
    """Deletes the keys past their grace every ``interval_s`` (every replica; harmless)."""

    def __init__(self, store: KeyStore, interval_s: float) -> None:
        self.store = store
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.interval_s > 0:
            self._task = asyncio.create_task(self._run(), name="key-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.store.sweep()
            except (ProblemError, *DB_ERRORS) as exc:
                log.warning("key sweep failed", extra={"reason": type(exc).__name__})


def database_down(exc: BaseException) -> ProblemError:
    """The 503 for a database failure while keys were needed (only its class is logged:
    PostgreSQL's message may quote values)."""
    log.warning("personal keys not read", extra={"reason": type(exc).__name__})
    return unavailable()


# --- POST /v1/keys:lookup ------------------------------------------------------------------

KEY_LOOKUP = "/v1/keys:lookup"
MAX_LOOKUP_KIDS = 1000
_NO_STORE = {"Cache-Control": "no-store"}


class _Lookup(msgspec.Struct, forbid_unknown_fields=True):
    kids: Annotated[list[str], msgspec.Meta(min_length=1, max_length=MAX_LOOKUP_KIDS)]


_decode_lookup = msgspec.json.Decoder(_Lookup).decode


def _invalid(field_name: str, detail: str) -> ProblemError:
    return ProblemError(
        422,
        "invalid-lookup",
        "Invalid key lookup",
        f"{field_name}: {detail}",
        errors=[{"field": field_name, "detail": detail}],
    )


class KeyReaders:
    """Who may call ``POST /v1/keys:lookup``: a key of ``INGEST_KEY_READER_API_KEYS`` only.
    Those keys open everyone's personal fields, so the HR systems' ``INGEST_API_KEYS`` are
    refused there (403), and the reader keys work on no other route."""

    def __init__(self, readers: Sequence[str], others: ApiKeys) -> None:
        self._readers = (
            ApiKeys(readers, "INGEST_KEY_READER_API_KEYS", realm="ripples-ingest-keys")
            if readers
            else None
        )
        self._others = others
        self._forbidden = ProblemError(
            403,
            "forbidden",
            "Forbidden",
            "this key cannot read personal keys: send a key of INGEST_KEY_READER_API_KEYS",
        )

    def check(self, headers: Sequence[tuple[bytes, bytes]]) -> ProblemError | None:
        if self._readers is not None and self._readers.check(headers) is None:
            return None
        if self._others.check(headers) is None:
            return self._forbidden
        return (self._readers or self._others).check(headers)


class RequireKeys:
    """ASGI middleware: :class:`shared.auth.RequireKey` for every route but
    ``POST /v1/keys:lookup``, which takes the reader keys (:class:`KeyReaders`)."""

    def __init__(self, app: ASGIApp, keys: ApiKeys, readers: KeyReaders) -> None:
        self.app = app
        self.keys = keys
        self.readers = readers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            error = (
                self.readers.check(scope["headers"])
                if path == KEY_LOOKUP
                else self.keys.refusal(scope)
            )
            if error is not None:
                await problem_response(error, scope["path"])(scope, receive, send)
                return
        await self.app(scope, receive, send)


class KeyApi:
    """``POST /v1/keys:lookup``: ``{"kids": [...]}`` → ``{"keys": {kid: key}, "shredded":
    [...]}``, every kid asked in exactly one of the two (unknown = shredded)."""

    def __init__(self, store: KeyStore, max_body_bytes: int) -> None:
        self.store = store
        self.max_body_bytes = max_body_bytes

    async def lookup(self, request: Request) -> Response:
        body = await read_body(request, self.max_body_bytes)
        try:
            kids = _decode_lookup(body).kids
        except msgspec.ValidationError as exc:
            raise _invalid(field_error(exc).field, str(exc)) from None
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise _invalid("$", f"not JSON: {exc}") from None
        for position, kid in enumerate(kids):
            if not sealing.is_kid(kid):
                shown = kid if len(kid) <= 64 else kid[:64] + "…"
                raise _invalid(
                    f"kids[{position}]", f"{shown!r} is not a key id (k_ and 32 hex digits)"
                )
        with answering_503():
            found, shredded = await self.store.lookup(kids)
        KEY_LOOKUPS.labels("served").inc(len(found))
        KEY_LOOKUPS.labels("shredded").inc(len(shredded))
        return json_response(
            {"keys": {kid: _b64(key) for kid, key in found.items()}, "shredded": shredded},
            headers=_NO_STORE,
        )
