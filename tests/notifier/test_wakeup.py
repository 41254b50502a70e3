"""Prompt delivery: a stored recognition wakes the dispatcher, so it does not wait for the
fallback sweep; and the notifier's consumer does not let a fetch wait 1.5 s at the broker.

The sweep is set an hour apart here, so a delivery within the tests' bounded waits can only
come from a wake-up; the wake-up counter says which cause woke the dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY

from services.notifier import store, worker
from services.notifier.channels import Channels
from services.notifier.dispatcher import Dispatcher
from services.notifier.messages import Templates
from services.notifier.settings import NotifierSettings
from shared import streaming
from shared.settings import DatabaseSettings, KafkaSettings
from tests.conftest import API_KEYS, Running, start_service
from tests.notifier.conftest import SECRET, Harness, employee_event, recognition_event
from tests.notifier.peers import Answer, HttpPeer
from tests.notifier.test_service import ENV, ledger, metric, publish

HOUR = 3600.0


def wakeups(cause: str) -> float:
    return REGISTRY.get_sample_value("notifier_dispatch_wakeups_total", {"cause": cause}) or 0.0


@contextlib.asynccontextmanager
async def running(harness: Harness) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(harness.dispatcher.run())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.integration
async def test_a_recorded_recognition_wakes_the_idle_dispatcher(
    harness: Harness, peer: HttpPeer
) -> None:
    harness.configure(dispatch_interval_s=HOUR)
    await harness.employee(employee_event("e1", "webhook", peer.url))
    before = wakeups("recorded"), wakeups("interval")
    async with running(harness):
        await asyncio.sleep(0.2)  # the first look finds nothing; the dispatcher waits
        assert not peer.requests
        await harness.recognize(recognition_event("first_post:e1", "e1", "first_post"))
        harness.dispatcher.wake.set()  # what the consumer does after its commit
        (request,) = await peer.wait_for(1, timeout_s=10)
        async with asyncio.timeout(10):  # the result is recorded after the peer answered
            while (await harness.ledger("e1"))["first_post:e1"]["status"] != "sent":
                await asyncio.sleep(0.01)
    assert request.json()["recognition_id"] == "first_post:e1"
    assert wakeups("recorded") == before[0] + 1
    assert wakeups("interval") == before[1]


@pytest.mark.integration
async def test_a_wake_during_a_look_that_found_nothing_is_not_lost(
    harness: Harness, peer: HttpPeer
) -> None:
    """The recognition is committed (and the wake set) after the dispatcher's claim found
    nothing but before it starts waiting: it must look again at once, not after the sweep."""
    harness.configure(dispatch_interval_s=HOUR)
    await harness.employee(employee_event("e1", "webhook", peer.url))
    dispatcher = harness.dispatcher
    look = dispatcher._start_due
    looks = 0

    async def look_then_record() -> tuple[int, list[asyncio.Task[None]]]:
        nonlocal looks
        looks += 1
        claimed, tasks = await look()
        if looks == 1:
            assert claimed == 0
            await harness.recognize(recognition_event("first_post:e1", "e1", "first_post"))
            dispatcher.wake.set()
        return claimed, tasks

    dispatcher._start_due = look_then_record  # type: ignore[method-assign]
    async with running(harness):
        await peer.wait_for(1, timeout_s=10)
    assert looks >= 2


@pytest.mark.integration
async def test_a_held_peer_does_not_hold_back_another_employees_message(
    harness: Harness, peer: HttpPeer
) -> None:
    harness.configure(dispatch_interval_s=HOUR)
    held = HttpPeer()
    await held.start()
    try:
        held.default = Answer(hold=True)
        await harness.employee(employee_event("slow", "webhook", held.url))
        await harness.employee(employee_event("quick", "webhook", peer.url))
        async with running(harness):
            await harness.recognize(recognition_event("first_post:slow", "slow", "first_post"))
            harness.dispatcher.wake.set()
            await held.wait_for(1, timeout_s=10)  # the peer holds this one
            await harness.recognize(recognition_event("first_post:quick", "quick", "first_post"))
            harness.dispatcher.wake.set()
            (request,) = await peer.wait_for(1, timeout_s=10)
            assert request.json()["recognition_id"] == "first_post:quick"
            assert (await harness.ledger("slow"))["first_post:slow"]["status"] == "pending"
            held.gates[0].set()
            async with asyncio.timeout(10):
                while (await harness.ledger("slow"))["first_post:slow"]["status"] != "sent":
                    await asyncio.sleep(0.01)
    finally:
        await held.stop()


@pytest.mark.integration
async def test_a_retry_goes_out_when_due_with_the_sweep_an_hour_away(
    pool: asyncpg.Pool, peer: HttpPeer
) -> None:
    """On the real clock: a 503, then the retry 0.2 s later (backoff), which only the
    dispatcher's timer for the earliest pending row can send."""
    settings = NotifierSettings(
        webhook_secret=SECRET,
        dispatch_interval_s=HOUR,
        max_age_s=0.0,  # the events are of START, months before the real clock
        backoff_base_s=0.2,
        backoff_max_s=0.2,
        channel_rate_per_s=1000.0,
        channel_burst=1000,
        allow_loopback=True,
        allow_http=True,
    )
    async with httpx.AsyncClient(timeout=5) as client:
        dispatcher = Dispatcher(
            settings,
            pool,
            Channels(settings, client),
            Templates.load(),
            _no_dead_letters,
            lambda: datetime.now(UTC),
            rand=lambda: 1.0,
        )
        peer.script = [Answer(status=503)]
        now = datetime.now(UTC)
        async with pool.acquire() as conn, conn.transaction():
            await store.record_employees(conn, [employee_event("e1", "webhook", peer.url)], now)
            event = recognition_event("first_post:e1", "e1", "first_post", due_at=now)
            await store.record_recognitions(conn, [store.Received(event, 0, 0)], now)
        before = wakeups("due")
        task = asyncio.create_task(dispatcher.run())
        try:
            await peer.wait_for(2, timeout_s=10)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert wakeups("due") > before
    assert [r.json()["recognition_id"] for r in peer.requests] == ["first_post:e1"] * 2


@pytest.mark.integration
async def test_an_employee_record_stored_while_deciding_makes_the_wait_end_at_once(
    harness: Harness,
) -> None:
    """The dispatcher read no record for e1, then e1's record was stored (its wake-up of
    waiting rows found this row not waiting yet), then the row is put to wait: it must be
    due now, not at the recheck, which only the timer would catch."""
    await harness.recognize(recognition_event("first_post:e1", "e1", "first_post"))
    await harness.recognize(recognition_event("first_post:e2", "e2", "first_post"))
    await harness.employee(employee_event("e1", "webhook", "http://127.0.0.1:9/"))
    later = harness.now + timedelta(seconds=30)
    async with harness.pool.acquire() as conn:
        claimed = await store.claim_due(conn, harness.now, 10, 60)
        (token,) = {d.claim_token for d in claimed}
        ids = ["first_post:e1", "first_post:e2"]
        assert await store.wait_for_employee(conn, ids, token, later, harness.now)
        rows = await conn.fetch(
            "select recognition_id, next_attempt_at, last_error from notifier_deliveries"
        )
    due = {r["recognition_id"]: r["next_attempt_at"] for r in rows}
    assert due == {"first_post:e1": harness.now, "first_post:e2": later}
    assert {r["last_error"] for r in rows} == {store.WAITING}


async def _no_dead_letters(key: bytes, value: bytes, headers: dict[str, bytes]) -> None:
    raise AssertionError("nothing should be dead-lettered")


async def test_the_consumer_fetch_waits_at_most_the_setting() -> None:
    """faust creates its consumer with fetch_max_wait_ms=1500; the notifier's is shorter."""
    app = worker.build(
        NotifierSettings(api_keys=API_KEYS),
        KafkaSettings(bootstrap_servers="127.0.0.1:9"),
        DatabaseSettings(url="postgresql://nobody@127.0.0.1:9/none"),
    )
    thread = app.consumer._thread  # not started: nothing connects
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == streaming.FETCH_MAX_WAIT_MS == 100
    finally:
        await consumer.stop()
        thread.thread_loop.close()


# --- the process: consumer -> ledger -> wake -> sent, with the sweep an hour away ----------


@pytest.fixture(scope="module")
def slow_sweep(
    broker: Running, notifier_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    env = ENV | {"NOTIFIER_DISPATCH_INTERVAL_S": str(HOUR)}
    service = start_service(
        "notifier", tmp_path_factory.mktemp("notifier"), broker, DATABASE_URL=notifier_db, **env
    )
    yield service
    service.stop()


@pytest.mark.integration
async def test_the_service_delivers_a_stored_recognition_without_the_sweep(
    slow_sweep: Running, producer: AIOKafkaProducer, peer: HttpPeer
) -> None:
    employee = "wake-e1"
    key = f"first_post:{employee}"
    # Whichever is stored last (the recognition, or the employee record it waits for) wakes
    # the dispatcher; the sweep would come only in an hour.
    await publish(producer, employee_event(employee, "webhook", peer.url))
    await publish(producer, recognition_event(key, employee, "first_post"))
    async with asyncio.timeout(30):
        while not any(r.json().get("recognition_id") == key for r in peer.requests):
            await asyncio.sleep(0.05)
    row = (await ledger(slow_sweep, employee))[key]
    assert (row["status"], row["attempts"]) == ("sent", 1)
    assert await metric(slow_sweep, "notifier_dispatch_wakeups_total", cause="recorded") >= 1
    assert await metric(slow_sweep, "notifier_dispatch_wakeups_total", cause="interval") == 0
