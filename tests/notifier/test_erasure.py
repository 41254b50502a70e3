"""Erasure in the notifier (issue 14, part 5), against the real ledger (PostgreSQL):

- the ledger keeps no colleague's name: it is looked up in the employee records when the
  message is rendered, so a message not yet sent when the colleague is removed says "a
  colleague" instead (re-rendered), and a removed employee's own messages are dropped;
- ``applicant.erased`` leaves no applicant id in the ledger: a hire recognition keeps only a
  digest of the id, one not yet sent is dropped, and a replay of either after the erasure is
  neither stored nor sent again (one message per recognition id, CONTRACT §6).
"""

from __future__ import annotations

import pytest

from services.notifier import store
from shared.events import (
    EmployeeRemoved,
    EmployeeRemovedEvent,
    RecognitionDueEvent,
    RecognitionFacts,
)
from tests.notifier.conftest import START, Harness, employee_event, recognition_event
from tests.notifier.peers import Answer, HttpPeer

pytestmark = pytest.mark.integration


def removal(employee_id: str) -> EmployeeRemovedEvent:
    return EmployeeRemovedEvent(
        specversion="1.0",
        id=f"rm-{employee_id}",
        source="urn:example:hr",
        time=START.replace(hour=10),
        data=EmployeeRemoved(employee_id=employee_id),
    )


async def ledger_text(harness: Harness) -> str:
    async with harness.pool.acquire() as conn:
        rows = await conn.fetch("select t::text from notifier_deliveries t")
    return "\n".join(r[0] for r in rows)


def inspired(inspirer: str, colleague: str, name: str | None = None) -> RecognitionDueEvent:
    return recognition_event(
        f"inspired_colleague:{inspirer}:{colleague}",
        inspirer,
        "inspired_colleague",
        # an older attribution put the name in the event: the notifier does not keep it
        RecognitionFacts(colleague_id=colleague, colleague_display_name=name),
    )


async def test_colleague_names_come_from_the_records_and_go_with_a_removal(
    harness: Harness, peer: HttpPeer
) -> None:
    await harness.employee(
        employee_event("e1", "webhook", peer.url),
        employee_event("e7", "none", None, name="Bo Jensen"),
        employee_event("e8", "none", None, name="Ida Berg"),
    )
    await harness.recognize(inspired("e1", "e7", "Bo Jensen"))
    assert "Bo Jensen" not in await ledger_text(harness)
    await harness.dispatch()
    assert "Bo Jensen started sharing" in peer.requests[0].json()["text"]

    # A message naming Ida, not sent yet when she is removed, goes out without her name.
    await harness.recognize(inspired("e1", "e8", "Ida Berg"))
    await harness.employee(removal("e8"))
    await harness.dispatch()
    text = peer.requests[1].json()["text"]
    assert "Ida Berg" not in text
    assert "a colleague started sharing" in text
    assert "Ida Berg" not in await ledger_text(harness)


async def test_a_dead_lettered_recognition_carries_no_name(
    harness: Harness, peer: HttpPeer
) -> None:
    peer.default = Answer(400)  # refused: dead-lettered at once
    await harness.employee(
        employee_event("e1", "webhook", peer.url),
        employee_event("e7", "none", None, name="Bo Jensen"),
    )
    await harness.recognize(inspired("e1", "e7"))
    await harness.dispatch()
    assert "Bo Jensen" in peer.requests[0].json()["text"]  # the message names him
    ((_, value, _),) = harness.dead
    assert b"e7" in value
    assert b"Bo Jensen" not in value  # the dead-letter topic does not


async def test_a_removed_employees_pending_messages_are_dropped(
    harness: Harness, peer: HttpPeer
) -> None:
    await harness.employee(employee_event("e1", "webhook", peer.url, name="Mette Holm"))
    await harness.recognize(recognition_event("first_post:e1", "e1", "first_post"))
    await harness.employee(removal("e1"))
    await harness.dispatch()
    assert peer.requests == []
    row = (await harness.ledger("e1"))["first_post:e1"]
    assert row["status"] == "suppressed"
    async with harness.pool.acquire() as conn:
        person = await conn.fetchrow("select * from notifier_employees where employee_id = 'e1'")
    assert (person["display_name"], person["address"], person["removed"]) == (None, None, True)


async def test_applicant_erasure_keeps_one_message_per_id_without_the_id(
    harness: Harness, peer: HttpPeer
) -> None:
    await harness.employee(employee_event("e1", "webhook", peer.url))
    sent = recognition_event("hire:e1:apl_sent", "e1", "hire", RecognitionFacts(job_id="j1"))
    await harness.recognize(sent)
    await harness.dispatch()
    assert [r.json()["recognition_id"] for r in peer.requests] == ["hire:e1:apl_sent"]
    pending = recognition_event("hire:e1:apl_late", "e1", "hire", RecognitionFacts(job_id="j1"))
    await harness.recognize(pending)

    async with harness.pool.acquire() as conn, conn.transaction():
        await store.erase_applicants(conn, ["apl_sent", "apl_late"], harness.now)
    text = await ledger_text(harness)
    assert "apl_sent" not in text
    assert "apl_late" not in text
    rows = {r["recognition_id"]: r for r in (await harness.ledger("e1")).values()}
    digest = store.applicant_hash("apl_sent")
    assert rows[f"hire:e1:erased:{digest}"]["status"] == "sent"
    dropped = rows[f"hire:e1:erased:{store.applicant_hash('apl_late')}"]
    assert (dropped["status"], dropped["last_error"]) == ("suppressed", store.ERASED)
    assert dropped["reason"] == "erased"

    # A replay of both recognitions after the erasure: nothing stored, nothing sent.
    await harness.recognize(sent, pending)
    await harness.dispatch()
    assert len(peer.requests) == 1
    assert set(await harness.ledger("e1")) == set(rows)
    assert "apl_" not in await ledger_text(harness)


def test_every_colon_split_of_a_hire_id_is_a_candidate_applicant() -> None:
    assert store._hire_applicants("hire:e1:apl_x") == ["apl_x"]
    assert store._hire_applicants("hire:e:1:a:b") == ["1:a:b", "a:b", "b"]
    assert store._hire_applicants("first_post:e1") == []
