"""Applicant key ids (kids) in the notifier (issue 14, crypto-shredding; docs/security.md
"Topics"). Attribution sends a ``hire`` recognition with ``recognition_id`` (and CloudEvent
id) ``hire:{employee_id}:{kid}`` and the contract's id sealed under the applicant's key;
ingest sends ``applicant.erased`` with the kid as ``applicant_id`` and the real id sealed.
:func:`shared.sealing.open_records` splices the real values back before decoding; here:

- :func:`restore_id`: an opened hire recognition gets its contract id as CloudEvent id too
  (the ledger's ``event_id``, as before sealing);
- :func:`recognitions`: remembers ``kid → applicant_id`` of the hire recognitions opened
  (``notifier_applicant_kids``), unless the applicant or the kid was erased; drops (counts,
  never dead-letters) every recognition of an erased kid, and one whose key is shredded (its
  applicant was erased: the kid's applicant, if mapped, is erased now);
- :func:`erasures`: ``applicant.erased`` opened erases the real id as before; one whose key
  is shredded erases the kid's mapped applicant; either way the applicant's kids leave the
  mapping and are recorded erased (``notifier_erased_kids``), so no table keeps the real id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from services.notifier import metrics, store
from shared import sealing
from shared.events import ApplicantErasedEvent, Envelope, RecognitionDueEvent

Item = tuple[Envelope, Any, sealing.Opening | None]
"""A decoded event, its record and, when it was sealed, its opening."""


def restore_id(event: Envelope, opening: sealing.Opening | None) -> Envelope:
    """An opened hire recognition with the contract's recognition id as its CloudEvent id
    (it had the id on the topic, ``hire:{employee_id}:{kid}``)."""
    if opening is None or opening.kid is None or not isinstance(event, RecognitionDueEvent):
        return event
    on_topic = f"hire:{event.data.employee_id}:{opening.kid}"
    if event.id == on_topic and event.data.recognition_id != on_topic:
        return msgspec.structs.replace(event, id=event.data.recognition_id)
    return event


def _hire_applicant(event: RecognitionDueEvent) -> str | None:
    prefix = f"hire:{event.data.employee_id}:"
    if event.data.kind != "hire" or not event.data.recognition_id.startswith(prefix):
        return None
    return event.data.recognition_id[len(prefix) :] or None


async def _erased_kids(conn: store.Conn, kids: set[str]) -> set[str]:
    if not kids:
        return set()
    return {
        r["kid"]
        for r in await conn.fetch(
            "select kid from notifier_erased_kids where kid = any($1::text[])", sorted(kids)
        )
    }


async def _mapped(conn: store.Conn, kids: set[str]) -> dict[str, str]:
    if not kids:
        return {}
    return {
        r["kid"]: r["applicant_id"]
        for r in await conn.fetch(
            "select kid, applicant_id from notifier_applicant_kids where kid = any($1::text[])",
            sorted(kids),
        )
    }


async def _forget(
    conn: store.Conn, applicant_ids: Sequence[str], kids: set[str], now: datetime
) -> set[str]:
    """Erase ``applicant_ids`` (:func:`store.erase_applicants`), unmap their kids and record
    them (and ``kids``) erased; every kid erased, for the key cache to evict."""
    erased = set(kids)
    if applicant_ids:
        await store.erase_applicants(conn, applicant_ids, now)
        erased |= {
            r["kid"]
            for r in await conn.fetch(
                "delete from notifier_applicant_kids where applicant_id = any($1::text[]) "
                "returning kid",
                sorted(set(applicant_ids)),
            )
        }
    if erased:
        await conn.execute(
            "delete from notifier_applicant_kids where kid = any($1::text[])", sorted(erased)
        )
        await conn.execute(
            "insert into notifier_erased_kids select unnest($1::text[]) on conflict do nothing",
            sorted(erased),
        )
    return erased


async def recognitions(
    conn: store.Conn, items: Sequence[Item], now: datetime
) -> tuple[list[Item], set[str]]:
    """The recognitions to record (see the module's documentation), and the kids erased."""
    kids = {o.kid for _, _, o in items if o is not None and o.kid}
    if not kids:
        return list(items), set()
    erased = await _erased_kids(conn, kids)
    mapped = await _mapped(
        conn, {o.kid for _, _, o in items if o is not None and o.kid and o.shredded}
    )
    keep: list[Item] = []
    remember: dict[str, str] = {}
    newly: set[str] = set()
    applicants: list[str] = []
    for item in items:
        event, _, opening = item
        kid = opening.kid if opening is not None else None
        if kid is None:
            keep.append(item)
            continue
        assert opening is not None
        if kid in erased or kid in newly:
            metrics.DROPPED.labels("erased").inc()
            continue
        if opening.shredded:
            newly.add(kid)
            if kid in mapped:
                applicants.append(mapped[kid])
            metrics.DROPPED.labels("erased").inc()
            continue
        if isinstance(event, RecognitionDueEvent) and (a := _hire_applicant(event)):
            remember[kid] = a
        keep.append(item)
    if remember:
        hashes = {store.applicant_hash(a): a for a in remember.values()}
        gone = {
            hashes[r["applicant_hash"]]
            for r in await conn.fetch(
                "select applicant_hash from notifier_erased_applicants"
                " where applicant_hash = any($1::text[])",
                sorted(hashes),
            )
        }
        rows = [(k, a) for k, a in remember.items() if a not in gone]
        if rows:
            await conn.executemany(
                "insert into notifier_applicant_kids values ($1, $2) on conflict do nothing",
                rows,
            )
    forgotten = await _forget(conn, applicants, newly, now) if newly else set()
    return keep, forgotten


async def erasures(conn: store.Conn, items: Sequence[Item], now: datetime) -> set[str]:
    """Apply the ``applicant.erased`` events (see the module's documentation); the kids
    erased."""
    kids = {o.kid for _, _, o in items if o is not None and o.kid}
    mapped = await _mapped(
        conn, {o.kid for _, _, o in items if o is not None and o.kid and o.shredded}
    )
    ids: list[str] = []
    for event, _, opening in items:
        assert isinstance(event, ApplicantErasedEvent)
        if opening is None or opening.kid is None:
            ids.append(event.data.applicant_id)  # plaintext: the real id
        elif not opening.shredded:
            ids.append(event.data.applicant_id)  # opened: the real id spliced back
        elif opening.kid in mapped:
            ids.append(mapped[opening.kid])
    return await _forget(conn, ids, kids, now)


RECOGNITION_TYPE = b"ripples.recognition.due.v1"


async def seal_dead_letter(
    conn: store.Conn,
    client: sealing.KeyClient | None,
    value: bytes,
    headers: dict[str, bytes],
) -> tuple[bytes, dict[str, bytes]] | None:
    """A hire recognition the dispatcher dead-letters (its delivery failed) as it came on
    the topic: the id naming the applicant's kid, the contract's id sealed under the
    applicant's key, so the dead-letter topic keeps no applicant id either; None when the key
    is shredded (the applicant was erased: nothing to keep). Anything else unchanged."""
    if headers.get("ce_type") != RECOGNITION_TYPE or b'"sealed"' in value:
        return value, headers
    data = msgspec.json.decode(value)
    real = data.get("recognition_id") if isinstance(data, dict) else None
    prefix = f"hire:{data.get('employee_id')}:" if isinstance(data, dict) else ""
    if data.get("kind") != "hire" or not isinstance(real, str) or not real.startswith(prefix):
        return value, headers
    kid = await conn.fetchval(
        "select kid from notifier_applicant_kids where applicant_id = $1 order by kid limit 1",
        real[len(prefix) :],
    )
    if kid is None:
        return value, headers  # a plaintext recognition: as before
    if client is None:
        raise sealing.KeyServiceUnavailable("no key service configured to seal a dead letter")
    key = (await client.keys([kid]))[kid]
    if key is None:
        return None
    on_topic = f"{prefix}{kid}"
    data["recognition_id"] = on_topic
    data[sealing.MEMBER] = sealing.seal(kid, key, {"recognition_id": real})
    out = dict(headers)
    if out.get("ce_id") == real.encode():
        out["ce_id"] = on_topic.encode()
    return msgspec.json.encode(data), out
