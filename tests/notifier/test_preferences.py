"""The employee's own preferences (CONTRACT §11) in the notifier, against the real ledger
(PostgreSQL) and the real dispatcher: each field the employee set overrides the HR record's
value, in either order of arrival; a later HR upsert never resets it; per field the latest
preference event wins; a removal deletes the preference (its address) too."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from services.notifier import store
from shared.cloudevents import to_kafka
from shared.events import (
    EmployeePreferences,
    EmployeePreferencesEvent,
    EmployeeRemoved,
    EmployeeRemovedEvent,
    Envelope,
    Notify,
)
from tests.conftest import Running, start_service
from tests.notifier.conftest import SECRET, START, Harness, employee_event, recognition_event
from tests.notifier.peers import HttpPeer

pytestmark = pytest.mark.integration
_ids = itertools.count(1)


def preferences(employee_id: str, time: datetime, **fields: object) -> EmployeePreferencesEvent:
    return EmployeePreferencesEvent(
        specversion="1.0",
        id=f"pref-{next(_ids)}",
        source="urn:ripples:employee-page",
        time=time,
        data=EmployeePreferences(employee_id=employee_id, **fields),  # type: ignore[arg-type]
    )


async def effective(harness: Harness, employee_id: str) -> store.Employee:
    async with harness.pool.acquire() as conn:
        return (await store.employees(conn, [employee_id]))[employee_id]


HOUR = timedelta(hours=1)


@pytest.mark.parametrize("preference_first", [False, True], ids=["hr-first", "pref-first"])
async def test_a_preference_overrides_the_hr_record_in_either_order(
    harness: Harness, peer: HttpPeer, preference_first: bool
) -> None:
    hr = employee_event("e1", "email", "mette@example.com", locale="en", time=START)
    pref = preferences(
        "e1",
        START + HOUR,
        locale="da",
        notify=Notify(channel="webhook", address=peer.url),
    )
    for event in (pref, hr) if preference_first else (hr, pref):
        await harness.employee(event)
    person = await effective(harness, "e1")
    assert (person.channel, person.address, person.locale) == ("webhook", peer.url, "da")
    assert person.opt_out is False  # not set by the employee: the HR value
    assert person.display_name == "Mette Holm"

    # The message goes where the employee asked, in their language.
    await harness.recognize(recognition_event("reach:e1", "e1"))
    await harness.dispatch()
    assert [r.json()["locale"] for r in peer.requests] == ["da"]


async def test_a_later_hr_upsert_never_resets_a_preference(harness: Harness) -> None:
    await harness.employee(employee_event("e1", "email", "a@example.com", time=START))
    await harness.employee(
        preferences(
            "e1",
            START + HOUR,
            notify=Notify(channel="slack", address="https://hooks.slack.com/services/T/B/X"),
            recognition_opt_out=True,
        )
    )
    # The next HR sync, later, with other values: the HR record changes, the preference stays.
    await harness.employee(
        employee_event(
            "e1",
            "teams",
            "https://x.webhook.office.com/y",
            locale="da",
            name="Mette H. Holm",
            time=START + 2 * HOUR,
        )
    )
    person = await effective(harness, "e1")
    assert (person.channel, person.opt_out) == ("slack", True)
    assert person.address == "https://hooks.slack.com/services/T/B/X"
    assert person.locale == "da"  # never set by the employee: the newer HR value
    assert person.display_name == "Mette H. Holm"


async def test_per_field_the_latest_preference_wins_and_a_field_left_out_stays(
    harness: Harness,
) -> None:
    await harness.employee(employee_event("e1", "email", "a@example.com", time=START))
    late = preferences("e1", START + 3 * HOUR, recognition_opt_out=False)
    early = preferences("e1", START + HOUR, recognition_opt_out=True, locale="da")
    middle = preferences("e1", START + 2 * HOUR, notify=Notify(channel="none"))
    await harness.employee(late, early)  # out of order, in one batch
    await harness.employee(middle)
    person = await effective(harness, "e1")
    assert person.opt_out is False  # the latest opt-out event
    assert person.locale == "da"  # set only by the early event, left out by the others
    assert (person.channel, person.address) == ("none", None)


async def test_an_opt_out_preference_suppresses_the_message(
    harness: Harness, peer: HttpPeer
) -> None:
    await harness.employee(employee_event("e1", "webhook", peer.url, time=START))
    await harness.employee(preferences("e1", START + HOUR, recognition_opt_out=True))
    await harness.employee(employee_event("e1", "webhook", peer.url, time=START + 2 * HOUR))
    await harness.recognize(recognition_event("reach:e1", "e1"))
    await harness.dispatch()
    assert peer.requests == []
    row = (await harness.ledger("e1"))["reach:e1"]
    assert (row["status"], row["reason"]) == ("suppressed", "opted_out")


async def test_a_removal_deletes_the_preference_and_an_older_one_does_not_come_back(
    harness: Harness,
) -> None:
    slack = Notify(channel="slack", address="https://hooks.slack.com/services/T/B/SECRET")
    await harness.employee(employee_event("e1", "email", "a@example.com", time=START))
    await harness.employee(preferences("e1", START + HOUR, notify=slack))
    removal = EmployeeRemovedEvent(
        specversion="1.0",
        id="rm-e1",
        source="urn:example:hr",
        time=START + 2 * HOUR,
        data=EmployeeRemoved(employee_id="e1"),
    )
    await harness.employee(removal)
    await harness.employee(preferences("e1", START + HOUR, notify=slack))  # a replay
    async with harness.pool.acquire() as conn:
        dump = await conn.fetch("select t::text from notifier_preferences t")
    assert dump == []
    person = await effective(harness, "e1")
    assert (person.removed, person.address, person.channel) == (True, None, None)


# --- through the broker and the notifier process --------------------------------------------


@pytest.fixture(scope="module")
def notifier(
    broker: Running, notifier_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    running = start_service(
        "notifier",
        tmp_path_factory.mktemp("notifier"),
        broker,
        DATABASE_URL=notifier_db,
        NOTIFIER_WEBHOOK_SECRET=SECRET,
        NOTIFIER_DISPATCH_INTERVAL_S="0.2",
    )
    yield running
    running.stop()


async def test_the_notifier_process_uses_the_preference_over_a_later_hr_upsert(
    notifier: Running, broker: Running, notifier_db: str, peer: HttpPeer
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.address)
    await producer.start()

    async def publish(*events: Envelope) -> None:
        for event in events:
            key, value, headers = to_kafka(event)
            await producer.send_and_wait(event.topic.name, value, key=key, headers=headers)

    try:
        await publish(
            employee_event("svc-pref", "webhook", f"{peer.url}/hr", time=START),
            preferences(
                "svc-pref",
                START + HOUR,
                locale="da",
                notify=Notify(channel="webhook", address=f"{peer.url}/mine"),
            ),
            employee_event("svc-pref", "webhook", f"{peer.url}/hr2", time=START + 2 * HOUR),
        )
        # The three records are on different keys (partitions): wait until all are stored,
        # so the recognition cannot overtake them.
        conn = await asyncpg.connect(notifier_db)
        try:
            async with asyncio.timeout(30):
                while not await conn.fetchval(
                    "select exists (select 1 from notifier_preferences p"
                    " join notifier_employees e using (employee_id)"
                    " where employee_id = 'svc-pref' and e.event_time = $1"
                    " and p.notify_at is not null)",
                    START + 2 * HOUR,
                ):
                    await asyncio.sleep(0.1)
        finally:
            await conn.close()
        await publish(recognition_event("reach_milestone:svc-pref:10000", "svc-pref"))
        (request,) = await peer.wait_for(1)
    finally:
        await producer.stop()
    assert request.path == "/mine"
    assert request.json()["locale"] == "da"
