"""Applicant key ids (kids) in attribution (issue 14, crypto-shredding; docs/security.md
"Topics"). On ``ripples.applicants`` an applicant's id is its kid and the real id is sealed
under the applicant's own key; :func:`shared.sealing.open_records` splices the real id back
before decoding. Here, in the batch's transaction:

- :func:`resolve` (before :func:`store.apply_batch`): remembers ``kid → applicant_id`` for the
  applicants opened (``attribution.applicant_kids``), unless the applicant or the kid was
  erased; drops every record of an erased kid (``attribution.erased_kids``; counted, not
  dead-lettered); turns a record whose key is shredded (its applicant was erased) into the
  erasure of the kid's applicant when the kid is mapped, else into nothing but the kid
  recorded erased.
- :func:`finish` (after it): every erased applicant's kids leave ``applicant_kids`` and are
  recorded erased, so no table holds the real id after the erasure (the store's erasure
  keeps anonymous counts only), and the caller evicts their keys from its cache.
- :func:`seal_outputs` (when the outbox is sent): a ``credit.assigned`` of an applicant with
  a kid goes out keyed by the kid, ``data.applicant_id`` (and a CloudEvent ``subject`` naming
  the applicant) = kid and ``data.sealed`` =
  ``{"applicant_id": real}``; a ``hire`` recognition with ``recognition_id`` (and CloudEvent
  id) ``hire:{employee_id}:{kid}`` and ``data.sealed`` = ``{"recognition_id":
  "hire:{employee_id}:{real}"}``, both under the applicant's key; one whose key is shredded
  is not sent (its applicant was erased). Without a kid (plaintext input) an output is sent
  as it is. Sealing when the row is sent, not when it is written, covers every writer of
  the outbox (a batch, a recompute) and keeps the key lookup out of the batch transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from services.attribution.store import Conn, applicant_hash
from shared import sealing
from shared.cloudevents import KafkaHeaders, to_kafka
from shared.events import (
    ApplicantErased,
    ApplicantErasedEvent,
    CreditAssignedEvent,
    Envelope,
    RecognitionDueEvent,
)

APPLICANT_TYPES = frozenset(
    {"ripples.applicant.applied.v1", "ripples.applicant.hired.v1", "ripples.applicant.erased.v1"}
)
ERASED_TYPE = "ripples.applicant.erased.v1"


@dataclass
class Resolved:
    """What :func:`resolve` made of a batch: the events to apply (in order, each with its
    record), the kids erased by it, and the count of records dropped (erased kids)."""

    events: list[tuple[Any, Envelope]] = field(default_factory=list)
    erased_kids: set[str] = field(default_factory=set)
    dropped: Counter[str] = field(default_factory=Counter)


async def resolve(
    conn: Conn, items: Sequence[tuple[Any, Envelope, sealing.Opening | None]]
) -> Resolved:
    """See the module's documentation; ``items`` are (record, event, its opening or None)."""
    out = Resolved()
    kids = {o.kid for _, e, o in items if o is not None and o.kid and e.type in APPLICANT_TYPES}
    if not kids:
        out.events = [(r, e) for r, e, _ in items]
        return out
    erased = {
        r["kid"]
        for r in await conn.fetch(
            "select kid from attribution.erased_kids where kid = any($1::text[])", sorted(kids)
        )
    }
    shredded = {
        o.kid for _, e, o in items if o is not None and o.kid and o.shredded and o.kid not in erased
    }
    mapped: dict[str, str] = {}
    if shredded:
        mapped = {
            r["kid"]: r["applicant_id"]
            for r in await conn.fetch(
                "select kid, applicant_id from attribution.applicant_kids "
                "where kid = any($1::text[])",
                sorted(shredded),
            )
        }
    opened = {
        o.kid: getattr(e.data, "applicant_id", None)
        for _, e, o in items
        if o is not None and o.kid and not o.shredded and e.type in APPLICANT_TYPES
    }
    erased_applicants = set()
    if opened:
        hashes = {applicant_hash(a): a for a in opened.values() if isinstance(a, str)}
        erased_applicants = {
            hashes[r["applicant_hash"]]
            for r in await conn.fetch(
                "select applicant_hash from attribution.erased_applicants "
                "where applicant_hash = any($1::text[])",
                sorted(hashes),
            )
        }
    remember: dict[str, str] = {}
    for record, event, opening in items:
        kid = opening.kid if opening is not None else None
        if kid is None or event.type not in APPLICANT_TYPES:
            out.events.append((record, event))
            continue
        assert opening is not None
        if kid in erased or kid in out.erased_kids:
            out.dropped[event.type] += 1
            continue
        if opening.shredded:
            out.erased_kids.add(kid)
            if kid in mapped:  # its applicant was erased: the erasure of the real id
                erasure = ApplicantErasedEvent(
                    specversion="1.0",
                    id=event.id,
                    source=event.source,
                    time=event.time,
                    data=ApplicantErased(applicant_id=mapped[kid]),
                )
                out.events.append((record, erasure))
            else:
                out.dropped[event.type] += 1
            continue
        applicant_id = getattr(event.data, "applicant_id", None)
        if event.type == ERASED_TYPE:
            out.erased_kids.add(kid)
        elif isinstance(applicant_id, str) and applicant_id not in erased_applicants:
            remember[kid] = applicant_id
        out.events.append((record, event))
    if remember:
        await conn.execute(
            "insert into attribution.applicant_kids (kid, applicant_id) "
            "select * from unnest($1::text[], $2::text[]) on conflict do nothing",
            list(remember),
            list(remember.values()),
        )
    return out


async def finish(conn: Conn, events: Sequence[Envelope], erased_kids: set[str]) -> set[str]:
    """After the batch's erasures: the kids of every erased applicant (and ``erased_kids``)
    recorded erased and unmapped; the kids, for the caller to evict from its key cache."""
    erased_ids = sorted(
        {e.data.applicant_id for e in events if isinstance(e, ApplicantErasedEvent)}
    )
    kids = set(erased_kids)
    if erased_ids:
        kids |= {
            r["kid"]
            for r in await conn.fetch(
                "delete from attribution.applicant_kids where applicant_id = any($1::text[]) "
                "returning kid",
                erased_ids,
            )
        }
    if kids:
        await conn.execute(
            "delete from attribution.applicant_kids where kid = any($1::text[])", sorted(kids)
        )
        await conn.execute(
            "insert into attribution.erased_kids select unnest($1::text[]) on conflict do nothing",
            sorted(kids),
        )
    return kids


Record = tuple[bytes, bytes, KafkaHeaders]
"""A record to send: key, value, headers (:func:`shared.cloudevents.to_kafka`)."""


def _hire_applicant(event: RecognitionDueEvent) -> str | None:
    data = event.data
    prefix = f"hire:{data.employee_id}:"
    if data.kind != "hire" or not data.recognition_id.startswith(prefix):
        return None
    return data.recognition_id[len(prefix) :] or None


def _applicant_of(event: Envelope) -> str | None:
    if isinstance(event, CreditAssignedEvent):
        return event.data.applicant_id
    if isinstance(event, RecognitionDueEvent):
        return _hire_applicant(event)
    return None


_encode = msgspec.json.Encoder().encode


async def seal_outputs(
    conn: Conn, client: sealing.KeyClient | None, events: Sequence[Envelope]
) -> list[Record | None]:
    """Each output event as the record to send (see the module's documentation), or None
    when it must not be sent (its applicant's key is shredded). One query for the kids, one
    key lookup for those not cached; :class:`shared.sealing.KeyServiceUnavailable` (the
    caller backs off) when ingest cannot answer."""
    applicants = {a for e in events if (a := _applicant_of(e)) is not None}
    kid_of: dict[str, str] = {}
    if applicants:
        kid_of = {
            r["applicant_id"]: r["kid"]
            for r in await conn.fetch(
                "select distinct on (applicant_id) applicant_id, kid "
                "from attribution.applicant_kids where applicant_id = any($1::text[]) "
                "order by applicant_id, kid",
                sorted(applicants),
            )
        }
    keys: dict[str, bytes | None] = {}
    if kid_of:
        if client is None:
            raise sealing.KeyServiceUnavailable("no key service configured to seal outputs")
        keys = await client.keys(kid_of.values())
    out: list[Record | None] = []
    for event in events:
        applicant = _applicant_of(event)
        kid = kid_of.get(applicant) if applicant is not None else None
        if kid is None:
            out.append(to_kafka(event))
            continue
        key = keys[kid]
        if key is None:
            out.append(None)  # erased: the erasure will drop its rows, nothing goes out
            continue
        out.append(_sealed(event, kid, key))
    return out


def _sealed(event: Envelope, kid: str, key: bytes) -> Record:
    if isinstance(event, CreditAssignedEvent):
        real = event.data.applicant_id
        event = msgspec.structs.replace(
            event,
            subject=kid if event.subject == real else event.subject,  # the CloudEvent subject
            data=msgspec.structs.replace(event.data, applicant_id=kid),
        )
        fields: dict[str, str] = {"applicant_id": real}
    else:
        assert isinstance(event, RecognitionDueEvent)
        real = event.data.recognition_id
        on_topic = f"hire:{event.data.employee_id}:{kid}"
        event = msgspec.structs.replace(
            event,
            id=on_topic if event.id == real else event.id,
            subject=on_topic if event.subject == real else event.subject,
            data=msgspec.structs.replace(event.data, recognition_id=on_topic),
        )
        fields = {"recognition_id": real}
    record_key, value, headers = to_kafka(event)
    data = msgspec.json.decode(value)
    data[sealing.MEMBER] = sealing.seal(kid, key, fields)
    return record_key, _encode(data), headers
