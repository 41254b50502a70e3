"""The dispatcher against the real ledger (PostgreSQL) and local peers, with a test clock:
payloads, signature, retries, give-up, suppression, waiting for the employee, cap/digest."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import timedelta

import orjson
import pytest
from prometheus_client import REGISTRY

from shared.events import EmployeeRemoved, EmployeeRemovedEvent, RecognitionFacts
from tests.notifier.conftest import (
    SECRET,
    START,
    Harness,
    employee_event,
    recognition_event,
)
from tests.notifier.peers import Answer, HttpPeer

pytestmark = pytest.mark.integration


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_webhook_body_signature_and_locale(harness: Harness, peer: HttpPeer) -> None:
    await harness.employee(employee_event("e1", "webhook", f"{peer.url}/hook", locale="da"))
    await harness.recognize(recognition_event("reach_milestone:e1:10000", "e1"))
    assert await harness.dispatch() == 1
    (request,) = peer.requests
    assert request.path == "/hook"
    expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-ripples-signature"] == f"sha256={expected}"
    assert request.headers["x-ripples-recognition-id"] == "reach_milestone:e1:10000"
    body = request.json()
    assert body["recognition_id"] == "reach_milestone:e1:10000"
    assert body["kind"] == "reach_milestone"
    assert body["employee_id"] == "e1"
    assert body["locale"] == "da"
    assert "har nu været vist 10.000 gange" in body["text"]
    row = (await harness.ledger("e1"))["reach_milestone:e1:10000"]
    assert (row["status"], row["channel"], row["attempts"]) == ("sent", "webhook", 1)
    assert row["sent_at"] == START


async def test_duplicates_deliver_once(harness: Harness, peer: HttpPeer) -> None:
    await harness.employee(employee_event("e1", "webhook", peer.url))
    for _ in range(5):
        await harness.recognize(recognition_event("first_post:e1", "e1", "first_post"))
        await harness.dispatch()
    assert len(peer.requests) == 1
    assert (await harness.ledger("e1"))["first_post:e1"]["status"] == "sent"


@pytest.mark.parametrize(
    "failure",
    [
        Answer(500),
        Answer(503, {"Retry-After": "30"}),
        Answer(429, {"Retry-After": "30"}),
        Answer(reset=True),
        Answer(hang=True),
    ],
    ids=["500", "503", "429", "reset", "timeout"],
)
async def test_retries_then_success(harness: Harness, peer: HttpPeer, failure: Answer) -> None:
    harness.configure(request_timeout_s=0.3)
    peer.script = [failure]
    await harness.employee(employee_event("e1", "webhook", peer.url))
    await harness.recognize(recognition_event("first_post:e1", "e1", "first_post"))
    before = sample("notifier_delivery_attempts_total", channel="webhook")
    await harness.dispatch()
    row = (await harness.ledger("e1"))["first_post:e1"]
    assert (row["status"], row["attempts"]) == ("pending", 1)
    # Backoff with rand=1: 2 s after the first attempt; a Retry-After of 30 s is a floor.
    wait = 30.0 if "retry-after" in {k.lower() for k in failure.headers} else 2.0
    harness.advance(wait - 0.5)
    assert await harness.dispatch() == 0  # not due yet
    harness.advance(0.5)
    assert await harness.dispatch() == 1
    row = (await harness.ledger("e1"))["first_post:e1"]
    assert (row["status"], row["attempts"]) == ("sent", 2)
    assert len(peer.requests) == 2
    keys = {r.headers["x-ripples-recognition-id"] for r in peer.requests}
    assert keys == {"first_post:e1"}
    assert sample("notifier_delivery_attempts_total", channel="webhook") - before == 2


async def test_503_three_times_then_200(harness: Harness, peer: HttpPeer) -> None:
    peer.script = [Answer(503), Answer(503), Answer(503)]
    await harness.employee(employee_event("e1", "webhook", peer.url))
    await harness.recognize(recognition_event("first_post:e1", "e1", "first_post"))
    sent_before = sample("notifier_deliveries_total", channel="webhook", outcome="sent")
    for _ in range(4):
        await harness.dispatch()
        harness.advance(60)
    row = (await harness.ledger("e1"))["first_post:e1"]
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 4, "http_503")
    assert [r.headers["x-ripples-recognition-id"] for r in peer.requests] == ["first_post:e1"] * 4
    assert sample("notifier_deliveries_total", channel="webhook", outcome="sent") - sent_before == 1


async def test_gives_up_after_max_attempts_and_dead_letters(
    harness: Harness, peer: HttpPeer
) -> None:
    peer.default = Answer(502)
    await harness.employee(employee_event("e1", "webhook", peer.url))
    await harness.recognize(recognition_event("first_post:e1", "e1", "first_post"))
    failed_before = sample("notifier_deliveries_total", channel="webhook", outcome="failed")
    dead_before = sample("notifier_dead_letters_total", reason="delivery_failed")
    for _ in range(6):
        await harness.dispatch()
        harness.advance(120)
    assert len(peer.requests) == 4  # max_attempts
    row = (await harness.ledger("e1"))["first_post:e1"]
    assert row["status"] == "failed"
    assert row["last_error"] == "gave up after 4 attempts: http_502"
    ((key, value, headers),) = harness.dead
    assert key == b"e1"
    assert orjson.loads(value)["recognition_id"] == "first_post:e1"
    assert headers["ce_type"] == b"ripples.recognition.due.v1"
    assert headers["x-ripples-error"] == b"gave up after 4 attempts: http_502"
    assert headers["x-ripples-topic"] == b"ripples.recognitions"
    assert sample("notifier_deliveries_total", channel="webhook", outcome="failed") == (
        failed_before + 1
    )
    assert sample("notifier_dead_letters_total", reason="delivery_failed") == dead_before + 1


async def test_an_interrupted_last_attempt_counts_towards_max_attempts(
    harness: Harness, peer: HttpPeer
) -> None:
    """Each attempt crashes the process mid-send (it never records a result): the attempt
    still counts, and after max_attempts (4) the delivery fails instead of going out again."""
    await harness.employee(employee_event("e1", "webhook", peer.url))
    await harness.recognize(recognition_event("first_post:e1", "e1", "first_post"))
    async with harness.pool.acquire() as conn:
        # three attempts begun and interrupted, and a fourth begun by a process that died
        await conn.execute(
            """update notifier_deliveries set attempts = 4, in_flight = true, channel = 'webhook',
                   claimed_until = $1, first_attempt_at = $1""",
            harness.now,
        )
    harness.advance(1)
    await harness.dispatch()
    row = (await harness.ledger("e1"))["first_post:e1"]
    assert peer.requests == []
    assert (row["status"], row["attempts"]) == ("failed", 4)
    assert row["reason"] == "max_attempts"
    assert row["last_error"] == "gave up after 4 attempts: interrupted"
    ((_, _, headers),) = harness.dead
    assert headers["x-ripples-error"] == b"gave up after 4 attempts: interrupted"


async def test_no_retry_on_400(harness: Harness, peer: HttpPeer) -> None:
    peer.default = Answer(400)
    await harness.employee(employee_event("e1", "webhook", peer.url))
    await harness.recognize(recognition_event("first_post:e1", "e1", "first_post"))
    await harness.dispatch()
    harness.advance(3600)
    assert await harness.dispatch() == 0
    assert len(peer.requests) == 1
    row = (await harness.ledger("e1"))["first_post:e1"]
    assert (row["status"], row["attempts"], row["last_error"]) == ("failed", 1, "refused: http_400")
    assert len(harness.dead) == 1


async def test_suppressed_when_opted_out_none_or_removed(harness: Harness, peer: HttpPeer) -> None:
    await harness.employee(
        employee_event("opt", "webhook", peer.url, opt_out=True),
        employee_event("none", "none", None),
        employee_event("gone", "webhook", peer.url),
    )
    await harness.employee(
        EmployeeRemovedEvent(
            specversion="1.0",
            id="hr-removed",
            source="urn:example:hr",
            time=START,
            data=EmployeeRemoved(employee_id="gone"),
        )
    )
    for who in ("opt", "none", "gone"):
        await harness.recognize(recognition_event(f"first_post:{who}", who, "first_post"))
    await harness.dispatch()
    assert peer.requests == []
    reasons = {}
    for who in ("opt", "none", "gone"):
        row = (await harness.ledger(who))[f"first_post:{who}"]
        assert (row["status"], row["channel"], row["sent_at"]) == ("suppressed", "none", None)
        reasons[who] = row["last_error"]
    assert reasons == {"opt": "opted out", "none": "no notify channel", "gone": "employee removed"}


async def test_latest_employee_record_wins(harness: Harness, peer: HttpPeer) -> None:
    newer = employee_event("e1", "webhook", f"{peer.url}/new", time=START)
    older = employee_event(
        "e1", "webhook", f"{peer.url}/old", locale="da", time=START.replace(hour=1)
    )
    await harness.employee(newer)
    await harness.employee(older)  # arrives late, changes nothing
    await harness.recognize(recognition_event("first_post:e1", "e1", "first_post"))
    await harness.dispatch()
    (request,) = peer.requests
    assert request.path == "/new"
    assert request.json()["locale"] == "en"


async def test_waits_for_a_late_employee_record(harness: Harness, peer: HttpPeer) -> None:
    harness.configure(employee_wait_s=3600, employee_recheck_s=1000)
    await harness.recognize(recognition_event("first_post:late", "late", "first_post"))
    await harness.recognize(recognition_event("first_post:never", "never", "first_post"))
    await harness.dispatch()
    assert (await harness.ledger("late"))["first_post:late"]["status"] == "pending"
    harness.advance(600)
    await harness.employee(employee_event("late", "webhook", peer.url))
    assert await harness.dispatch() == 1  # the record made it due at once
    row = (await harness.ledger("late"))["first_post:late"]
    assert (row["status"], row["last_error"]) == ("sent", None)
    assert (await harness.ledger("never"))["first_post:never"]["status"] == "pending"
    harness.advance(3000)
    await harness.dispatch()
    row = (await harness.ledger("never"))["first_post:never"]
    assert (row["status"], row["last_error"]) == ("suppressed", "no employee record")
    assert len(peer.requests) == 1


async def test_daily_cap_and_next_day_digest(harness: Harness, peer: HttpPeer) -> None:
    harness.configure(daily_cap=2)
    await harness.employee(employee_event("e1", "webhook", peer.url, locale="da"))
    ids = ["first_post:e1", "reach_milestone:e1:1000", "reach_milestone:e1:10000",
           "inspired_colleague:e1:e7"]  # fmt: skip
    facts = [
        RecognitionFacts(post_count=1),
        RecognitionFacts(threshold=1000, impressions=1200),
        RecognitionFacts(threshold=10_000, impressions=10_100),
        RecognitionFacts(colleague_id="e7", colleague_display_name="Bo"),
    ]
    kinds = ["first_post", "reach_milestone", "reach_milestone", "inspired_colleague"]
    await harness.recognize(
        *(
            recognition_event(i, "e1", k, f, due_at=START + timedelta(minutes=n))
            for n, (i, k, f) in enumerate(zip(ids, kinds, facts, strict=True))
        )
    )
    await harness.dispatch()
    assert [r.json()["recognition_id"] for r in peer.requests] == ids[:2]
    ledger = await harness.ledger("e1")
    assert [ledger[i]["status"] for i in ids] == ["sent", "sent", "pending", "pending"]
    assert ledger[ids[2]]["last_error"] == "over the daily cap"
    # Later the same day: still capped, nothing goes out.
    harness.advance(12 * 3600)
    assert await harness.dispatch() == 0
    # Next UTC day, 00:00: one digest listing both.
    harness.now = START.replace(day=2, hour=0)
    await harness.dispatch()
    assert len(peer.requests) == 3
    digest = peer.requests[2].json()
    assert digest["kind"] == "digest"
    assert digest["recognition_id"] == "digest:e1:2026-06-02"
    assert digest["recognition_ids"] == ids[2:]
    assert digest["locale"] == "da"
    assert "10.000 visninger" in digest["text"]
    assert "Du inspirerede en kollega" in digest["text"]
    ledger = await harness.ledger("e1")
    for i in ids[2:]:
        assert (ledger[i]["status"], ledger[i]["digest_id"]) == ("sent", "digest:e1:2026-06-02")


async def test_cap_off_by_default(harness: Harness, peer: HttpPeer) -> None:
    await harness.employee(employee_event("e1", "webhook", peer.url))
    await harness.recognize(*(recognition_event(f"hire:e1:a{n}", "e1", "hire") for n in range(5)))
    await harness.dispatch()
    assert len(peer.requests) == 5


async def test_channel_concurrency_limit(harness: Harness, peer: HttpPeer) -> None:
    harness.configure(channel_concurrency=2)
    peer.default = Answer(hold=True)
    for n in range(4):
        await harness.employee(employee_event(f"c{n}", "webhook", peer.url))
        await harness.recognize(recognition_event(f"first_post:c{n}", f"c{n}", "first_post"))
    dispatching = asyncio.ensure_future(harness.dispatch())
    try:
        await peer.wait_for(2)
        for n in range(4):
            async with asyncio.timeout(10):
                while len(peer.gates) <= n:
                    await asyncio.sleep(0.01)
            peer.gates[n].set()  # answering one request lets the next one start
        assert await asyncio.wait_for(dispatching, 10) == 4
    finally:
        dispatching.cancel()
    assert len(peer.requests) == 4
    assert peer.max_in_flight == 2


async def test_channel_rate_limit(harness: Harness, peer: HttpPeer) -> None:
    # 2 messages per second, bursts of 2: at one instant, the 3rd waits 0.5 s, the 4th 1 s.
    harness.configure(channel_rate_per_s=2.0, channel_burst=2, channel_concurrency=1)
    for n in range(4):
        await harness.employee(employee_event(f"r{n}", "webhook", peer.url))
        await harness.recognize(recognition_event(f"first_post:r{n}", f"r{n}", "first_post"))
    assert await harness.dispatch() == 4
    assert sorted(harness.slept) == [0.5, 1.0]
    assert len(peer.requests) == 4


async def test_an_unusable_address_fails_without_retry(harness: Harness) -> None:
    await harness.employee(employee_event("e1", "webhook", "ftp://example.org/hook"))
    await harness.recognize(recognition_event("first_post:e1", "e1", "first_post"))
    await harness.dispatch()
    row = (await harness.ledger("e1"))["first_post:e1"]
    assert (row["status"], row["reason"]) == ("failed", "address_not_allowed")
    assert row["last_error"] == "refused: address not allowed: scheme"


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured log record with its extra fields (what the JSON log line holds)."""
    return "\n".join(str(vars(r)) for r in caplog.records)


async def _fault(harness: Harness, when: str, sqlstate: str, times: int) -> None:
    """A real PostgreSQL error from the ledger: a trigger on notifier_deliveries raising
    ``sqlstate`` on the first ``times`` updates matching ``when`` (a sequence counts them:
    nextval is not rolled back with the failed statement). Its message quotes a value, as
    PostgreSQL's own messages do (``Key (x)=(value)``)."""
    async with harness.pool.acquire() as conn:
        await conn.execute(
            f"""create sequence fault_count;
            create function fault() returns trigger language plpgsql as $$
            begin
                if nextval('fault_count') <= {times} then
                    raise exception 'refused value %', 'secret-value-' || new.employee_id
                        using errcode = '{sqlstate}';
                end if;
                return new;
            end $$;
            create trigger fault before update on notifier_deliveries
                for each row when ({when}) execute function fault();"""
        )


async def test_a_transient_database_error_during_a_send_is_retried(
    harness: Harness, peer: HttpPeer, caplog: pytest.LogCaptureFixture
) -> None:
    """The send went out, recording it failed with a serialization failure (40001,
    transient): the row stays pending under its claim, which runs out, and the next claim
    sends again with the same key and records it; the log names the class only. Failed
    before on the log: it quoted the message ('SerializationError: refused value
    secret-value-e1')."""
    await harness.employee(employee_event("e1", "webhook", peer.url))
    await harness.recognize(recognition_event("first_post:e1", "e1", "first_post"))
    await _fault(harness, "new.status = 'sent'", "40001", 1)
    await harness.dispatch()
    row = (await harness.ledger("e1"))["first_post:e1"]
    assert (row["status"], len(peer.requests)) == ("pending", 1)
    harness.advance(harness.settings.claim_lease_s + 1)
    assert await harness.dispatch() == 1
    row = (await harness.ledger("e1"))["first_post:e1"]
    assert (row["status"], row["reason"]) == ("sent", None)
    assert [r.headers["x-ripples-recognition-id"] for r in peer.requests] == ["first_post:e1"] * 2
    assert harness.dead == []
    logged = _logged(caplog)
    assert "secret-value" not in logged
    assert "SerializationError (40001)" in logged


async def test_a_data_error_during_a_send_fails_the_delivery_with_a_closed_reason(
    harness: Harness, peer: HttpPeer, caplog: pytest.LogCaptureFixture
) -> None:
    """Recording the attempt refused by the database (22023, a data exception) every time:
    the delivery fails at once with the closed reason 'rejected' and is dead-lettered,
    nothing sent; the log and the ledger name the class only. Failed before: the row stayed
    pending (claimed again and refused at every lease) and the log quoted the message
    ('InvalidParameterValueError: refused value secret-value-e1')."""
    await harness.employee(employee_event("e1", "webhook", peer.url))
    await harness.recognize(recognition_event("first_post:e1", "e1", "first_post"))
    await _fault(harness, "new.attempts > old.attempts", "22023", 1000)
    await harness.dispatch()
    row = (await harness.ledger("e1"))["first_post:e1"]
    assert (row["status"], row["reason"]) == ("failed", "rejected")
    assert row["last_error"] == "refused: data: InvalidParameterValueError (22023)"
    assert peer.requests == []
    ((_, value, headers),) = harness.dead
    assert orjson.loads(value)["recognition_id"] == "first_post:e1"
    assert b"secret-value" not in headers["x-ripples-error"]
    logged = _logged(caplog)
    assert "secret-value" not in logged
    assert "InvalidParameterValueError (22023)" in logged
